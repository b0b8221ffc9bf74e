"""The `engine` room: where SQL meets an engine. DuckDB (embedded, the default), PostgreSQL, Spark.

Every room writes its row-level SQL once, in DuckDB's dialect. This room opens the engine a data
source names (``data.source`` URL) and translates that one text for PostgreSQL and Spark with
sqlglot (``_dialect``), behind the small connection API the rooms already use (``_connection``).
"""

from ._connection import EngineResult, PostgresConnection, SparkConnection, SqlConnection, redact
from ._dialect import PG_SESSION_FUNCTIONS, bind_parameters, to_dialect
from ._load import copy_folder_to_postgres

__all__ = [
    "SqlConnection",
    "PostgresConnection",
    "SparkConnection",
    "EngineResult",
    "to_dialect",
    "bind_parameters",
    "PG_SESSION_FUNCTIONS",
    "redact",
    "copy_folder_to_postgres",
]
