"""The engine room's translation of DuckDB SQL for PostgreSQL and Spark.

Two kinds of test. Text tests check the rewrites sqlglot does not make (parameters, DDL, functions,
decimal literals, unaliased subqueries). Value tests run the same expressions on DuckDB and on a
real PostgreSQL server and compare the answers: DuckDB is the reference, because every derivation
was first checked there against hand-computed timelines.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from controlarm.engine import bind_parameters, to_dialect
from controlarm.engine._dialect import MATERIALISE
from tests._postgres import postgres_server


def _sql(sql: str, dialect: str, params=None) -> list[str]:
    return [s.sql for s in to_dialect(sql, dialect, params)]


def test_positional_and_named_parameters_become_literals():
    assert bind_parameters("SELECT ? AS a, ? AS b", ["x'y", 3]) == "SELECT 'x''y' AS a, 3 AS b"
    text = bind_parameters("SELECT list_contains($ids::VARCHAR[], id) FROM t WHERE s = '?' AND n = $n",
                           {"ids": ["a", "b"], "n": 2.5})
    assert text == "SELECT list_contains(['a', 'b']::VARCHAR[], id) FROM t WHERE s = '?' AND n = 2.5"
    assert bind_parameters("SELECT ?", [None]) == "SELECT NULL"
    assert bind_parameters("SELECT ?", [True]) == "SELECT TRUE"


def test_list_parameters_translate_to_each_engine():
    pg = _sql("SELECT list_contains($ids::VARCHAR[], id) FROM t", "postgres", {"ids": ["a"]})[0]
    assert "ARRAY['a']" in pg and "ANY" in pg
    sp = _sql("SELECT list_contains($ids::VARCHAR[], id) FROM t", "spark", {"ids": ["a"]})[0]
    assert "ARRAY_CONTAINS" in sp.upper()


def test_ddl_becomes_session_scoped_objects():
    pg = _sql("CREATE OR REPLACE TEMP TABLE x AS SELECT 1 AS a", "postgres")
    assert pg == ["DROP TABLE IF EXISTS pg_temp.x", "CREATE TEMP TABLE x AS SELECT 1 AS a", "ANALYZE pg_temp.x"]
    assert _sql("CREATE VIEW v AS SELECT 1 AS a", "postgres") == ["DROP VIEW IF EXISTS pg_temp.v",
                                                                 "CREATE TEMP VIEW v AS SELECT 1 AS a"]
    assert _sql("CREATE VIEW v AS SELECT 1 AS a", "spark") == ["CREATE OR REPLACE TEMPORARY VIEW v AS SELECT 1 AS a"]
    (mat,) = _sql("CREATE OR REPLACE TEMP TABLE x AS SELECT 1 AS a", "spark")
    assert mat.startswith(MATERIALISE) and mat.endswith("x AS SELECT 1 AS a")
    (empty,) = _sql("CREATE TABLE e (a BIGINT, b VARCHAR)", "spark")
    assert empty == ("CREATE OR REPLACE TEMPORARY VIEW e AS SELECT CAST(NULL AS BIGINT) AS a, "
                     "CAST(NULL AS STRING) AS b WHERE 1 = 0")


def test_function_rewrites():
    (pg,) = _sql("SELECT epoch_us(t), bit_count(m), isfinite(x), isnan(x), isinf(x) FROM t", "postgres")
    for f in ("pg_temp.epoch_us(", "pg_temp.bit_count(", "pg_temp.isfinite(", "pg_temp.isnan(", "pg_temp.isinf("):
        assert f in pg, (f, pg)
    (sp,) = _sql("SELECT epoch_us(t), DATE_DIFF('day', a, b), x / 365.25 FROM t", "spark")
    assert "UNIX_MICROS(t)" in sp
    assert "datediff(cast(b as date), cast(a as date))" in sp.lower()
    assert "CAST(365.25 AS DOUBLE)" in sp
    (shift,) = _sql("SELECT CAST(1 AS BIGINT) << (d + 1) FROM t", "postgres")
    assert "<< CAST((d + 1) AS INT)" in shift


def test_drops_name_session_objects():
    assert _sql("DROP TABLE IF EXISTS a", "postgres") == ["DROP TABLE IF EXISTS pg_temp.a"]
    assert _sql("DROP VIEW IF EXISTS v", "spark") == ["DROP VIEW IF EXISTS v"]


def test_subqueries_get_aliases_for_postgres():
    (pg,) = _sql("SELECT a FROM (SELECT 1 AS a) ORDER BY a", "postgres")
    assert "AS _sq1" in pg


# -- value tests on a real server ----------------------------------------------------------

@pytest.fixture(scope="module")
def pg():
    from controlarm.engine import PostgresConnection

    with postgres_server() as uri:
        con = PostgresConnection(uri)
        yield con
        con.close()


_T0 = dt.datetime(2020, 11, 3, 23, 59, 59, 999_999, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("expr", [
    "epoch_us(TIMESTAMPTZ '2020-11-03 23:59:59.999999+00')",
    "epoch_us(TIMESTAMPTZ '1969-12-31 23:00:00.000001+00')",
    "bit_count(CAST(4611686018427387903 AS BIGINT))",
    "bit_count(CAST(0 AS BIGINT))",
    "bit_count(CAST(-1 AS BIGINT))",
    "CAST(1 AS BIGINT) << 61",
    "bit_count(CAST(1 AS BIGINT) << 40 | CAST(1 AS BIGINT) << 3)",
    "isfinite(CAST('Infinity' AS DOUBLE))",
    "isfinite(CAST(2.5 AS DOUBLE))",
    "isnan(CAST('NaN' AS DOUBLE))",
    "isinf(CAST('-Infinity' AS DOUBLE))",
    "DATE_DIFF('day', TIMESTAMPTZ '2020-01-01 23:59:00+00', TIMESTAMPTZ '2020-01-02 00:01:00+00')",
    "DATE_DIFF('day', DATE '1950-02-28', CAST(TIMESTAMPTZ '2020-03-01 01:00:00+00' AS DATE)) / 365.25",
    "TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL '86400000001' MICROSECOND",
    "7 / 2",
    "least(3, NULL, 1)",
])
def test_postgres_gives_duckdb_answers(pg, expr):
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    expected = duck.execute(f"SELECT {expr} AS v").fetchall()[0][0]
    got = pg.execute(f"SELECT {expr} AS v").fetchall()[0][0]
    if isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-15, abs=0)
    else:
        assert got == expected


def test_postgres_parameters_and_registered_frames(pg):
    import pandas as pd

    frame = pd.DataFrame({"id": ["a", "b", "c"], "t": pd.to_datetime(["2020-01-01", "2020-01-02", None], utc=True)})
    pg.register("_frame", frame)
    out = pg.execute("SELECT id, t FROM _frame WHERE list_contains($ids::VARCHAR[], id) ORDER BY id",
                     {"ids": ["a", "c"]}).df()
    assert list(out["id"]) == ["a", "c"]
    assert str(out["t"].dtype) == str(duckdb.connect().execute(
        "SET TimeZone='UTC'; SELECT TIMESTAMPTZ '2020-01-01' AS t").df()["t"].dtype)
    pg.unregister("_frame")


def test_postgres_errors_name_the_engine_and_the_fix(pg):
    from controlarm.errors import DataContractError

    with pytest.raises(DataContractError, match=r"PostgreSQL could not run a query .*Fix:"):
        pg.execute("SELECT no_such_column FROM (SELECT 1 AS a)")
