"""Engine room: connections to PostgreSQL and Spark that speak the DuckDB connection's small API.

The rooms talk to their engine through five calls of DuckDB's Python connection: ``execute(sql,
params)`` returning something with ``df()`` / ``fetchall()`` / ``fetchone()``, ``executemany``,
``register(name, frame)`` and ``close()``. :class:`SqlConnection` gives those calls on PostgreSQL
(through ADBC, Arrow-native both ways) and on Spark (a ``SparkSession``), translating the DuckDB
text with :func:`._dialect.to_dialect`. DuckDB itself is used as it is: no wrapper, no cost.

Results come back as Arrow and are turned into pandas *through an in-memory DuckDB*, so that every
engine hands the rooms the same pandas types DuckDB would (timestamps ``datetime64[us, UTC]``,
integers with NULLs as floats, ...). PostgreSQL ``numeric`` (what ``sum(bigint)`` and ``avg`` give)
arrives as text from ADBC and is read as DOUBLE, which is what DuckDB gives for those aggregates.
"""

from __future__ import annotations

from pathlib import Path

from typing import Any

import duckdb

from ..errors import DataContractError, InputError
from ._dialect import MATERIALISE, PG_SESSION_FUNCTIONS, Statement, to_dialect

__all__ = ["SqlConnection", "PostgresConnection", "SparkConnection", "EngineResult"]


def _normalise_arrow(table):
    """Arrow table with PostgreSQL ``numeric`` (opaque text) columns read as float64."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cols, fields = [], []
    for field, col in zip(table.schema, table.columns):
        t = field.type
        if isinstance(t, pa.ExtensionType) or getattr(t, "extension_name", None):
            storage = pa.chunked_array([c.storage for c in col.chunks], type=t.storage_type)
            if pa.types.is_string(t.storage_type) or pa.types.is_large_string(t.storage_type):
                col = pc.cast(storage, pa.float64())
            else:
                col = storage
            field = pa.field(field.name, col.type)
        cols.append(col)
        fields.append(pa.field(field.name, field.type))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


class EngineResult:
    """What ``execute`` returns: an Arrow result read through DuckDB's conversions."""

    def __init__(self, table, duck: duckdb.DuckDBPyConnection):
        self._table = table
        self._duck = duck

    def _rel(self):
        return self._duck.from_arrow(self._table)

    def arrow(self):
        return self._table

    def df(self):
        import pandas as pd

        if self._table is None:
            return pd.DataFrame()
        return self._rel().df()

    def fetchall(self) -> list[tuple]:
        if self._table is None:
            return []
        return self._rel().fetchall()

    def fetchone(self):
        rows = self.fetchall()
        return rows[0] if rows else None

    @property
    def description(self):
        if self._table is None:
            return None
        return [(name,) for name in self._table.column_names]


class SqlConnection:
    """Common part of the PostgreSQL and Spark connections (see the module docstring).

    Attributes
    ----------
    dialect : {"postgres", "spark"}
    label : str
        How messages name the engine ("PostgreSQL", "Spark").
    """

    dialect = ""
    label = ""

    def __init__(self) -> None:
        self._duck = duckdb.connect(":memory:")
        self._duck.execute("SET TimeZone = 'UTC'")
        #: every statement sent to the engine, in order (for the log and for tests)
        self.history: list[str] = []

    # -- to be given by each engine
    def _run(self, statement: Statement):  # pragma: no cover - abstract
        raise NotImplementedError

    def register(self, name: str, frame) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the DuckDB-like API
    def execute(self, sql: str, params: Any = None) -> EngineResult:
        statements = to_dialect(sql, self.dialect, params)
        table = None
        for st in statements:
            self.history.append(st.sql)
            try:
                out = self._run(st)
            except Exception as exc:  # engine errors: name the engine and the statement's start
                raise DataContractError(
                    [f"{self.label} could not run a query ({_short(exc)}). The query began: "
                     f"{st.sql[:200]!r}. Fix: check that the tables and columns exist with the types "
                     "docs/data-model.md lists; report a bug if they do."]
                ) from None
            if out is not None:
                table = _normalise_arrow(out)
        return EngineResult(table, self._duck)

    def executemany(self, sql: str, rows) -> None:
        for row in rows:
            self.execute(sql, list(row))

    def close(self) -> None:
        try:
            self._close()
        finally:
            self._duck.close()


def _short(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return "; ".join(lines[:2])[:300]


class PostgresConnection(SqlConnection):
    """A PostgreSQL session through ADBC (``adbc-driver-postgresql``), time zone UTC.

    Parameters
    ----------
    uri : str
        A libpq URI, ``postgresql://user:password@host:port/database`` (``?host=/socket/dir``
        for a Unix socket).
    """

    dialect = "postgres"
    label = "PostgreSQL"

    def __init__(self, uri: str) -> None:
        super().__init__()
        try:
            import adbc_driver_postgresql.dbapi as pg
        except ImportError:  # pragma: no cover - pinned dependency
            raise InputError("PostgreSQL sources need adbc-driver-postgresql. Fix: run make install.") from None
        try:
            self._con = pg.connect(uri, autocommit=True)
        except Exception as exc:
            raise InputError(
                f"cannot connect to PostgreSQL at {redact(uri)} ({_short(exc)}). Fix: check the host, "
                "port, database, user and password in data.source, and that the server is running."
            ) from None
        self._cur = self._con.cursor()
        for st in ("SET TimeZone = 'UTC'", *PG_SESSION_FUNCTIONS):
            self._cur.execute(st)

    def _run(self, statement: Statement):
        self._cur.execute(statement.sql)
        if statement.returns_rows:
            return self._cur.fetch_arrow_table()
        return None

    def run_native(self, sql: str):
        """Run PostgreSQL text as it is (no translation); Arrow result or None."""
        self.history.append(sql)
        self._cur.execute(sql)
        try:
            return self._cur.fetch_arrow_table()
        except Exception:
            return None

    def register(self, name: str, frame) -> None:
        import pyarrow as pa

        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        self._cur.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')
        self._cur.adbc_ingest(name, table, mode="create", temporary=True)
        self._cur.execute(f'ANALYZE "{name}"')

    def unregister(self, name: str) -> None:
        self._cur.execute(f'DROP TABLE IF EXISTS pg_temp."{name}"')

    def ingest(self, name: str, table, schema: str) -> None:
        """Bulk-copy an Arrow ``table`` into a new table ``schema.name`` (binary COPY)."""
        self._cur.adbc_ingest(name, table, mode="create", db_schema_name=schema)

    def _close(self) -> None:
        try:
            self._cur.close()
        finally:
            self._con.close()


#: Errors-only log configuration for a local Spark session (see the file).
_LOG4J = Path(__file__).with_name("log4j2.properties")


class SparkConnection(SqlConnection):
    """A Spark session (local mode or the session ``spark-submit`` gives), time zone UTC.

    Parameters
    ----------
    master : str or None
        ``local[N]`` starts a local session; None takes the active session or the one
        ``spark-submit`` configured (``SparkSession.builder.getOrCreate()``).
    """

    dialect = "spark"
    label = "Spark"

    def __init__(self, master: str | None) -> None:
        super().__init__()
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise InputError(
                "Spark sources need PySpark. Fix: pip install 'pyspark==4.3.0' into controlarm's "
                "environment (it needs Java 17 or newer)."
            ) from None
        builder = SparkSession.builder.appName("controlarm")
        if master:
            builder = (builder.master(master)
                       .config("spark.ui.enabled", "false")
                       .config("spark.ui.showConsoleProgress", "false")
                       .config("spark.sql.shuffle.partitions", "4")
                       .config("spark.driver.memory", "3g")
                       .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                       .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_LOG4J.as_uri()}"))
        builder = builder.config("spark.sql.session.timeZone", "UTC")
        try:
            self.spark = builder.getOrCreate()
        except Exception as exc:
            raise InputError(f"cannot start Spark ({_short(exc)}). Fix: check that Java 17+ is installed.") from None
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        self.spark.sparkContext.setLogLevel("OFF")
        import logging

        # PySpark logs every failed query as JSON on stderr; controlarm reports the error itself.
        logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
        self._owned = bool(master)
        self._persisted: dict = {}

    def _run(self, statement: Statement):
        if statement.sql.startswith(MATERIALISE):
            name, _, body = statement.sql[len(MATERIALISE):].strip().partition(" AS ")
            frame = self.spark.sql(body).persist()
            frame.count()
            self._drop(name)
            frame.createOrReplaceTempView(name)
            self._persisted[name] = frame
            return None
        if statement.sql.startswith("DROP VIEW IF EXISTS "):
            name = statement.sql[len("DROP VIEW IF EXISTS "):].strip().strip("`")
            if name in self._persisted:  # a materialised table: release its cached data too
                self._drop(name)
                return None
        frame = self.spark.sql(statement.sql)
        if statement.returns_rows:
            return frame.toArrow()
        return None

    def register(self, name: str, frame) -> None:
        import pyarrow as pa

        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        sdf = self.spark.createDataFrame(table).persist()
        self._drop(name)
        sdf.createOrReplaceTempView(name)
        self._persisted[name] = sdf

    def _drop(self, name: str) -> None:
        old = self._persisted.pop(name, None)
        if old is not None:
            old.unpersist()
        self.spark.catalog.dropTempView(name)

    def unregister(self, name: str) -> None:
        self._drop(name)

    def _close(self) -> None:
        # A session this connection started is stopped; a spark-submit session belongs to its driver.
        if self._owned:
            self.spark.stop()


def redact(uri: str) -> str:
    """``uri`` without its password."""
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", uri)
