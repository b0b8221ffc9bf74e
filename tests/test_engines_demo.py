"""The demo study on every engine gives the same results.json (issue 8's "Must show").

The one SQL text of the rooms runs on DuckDB (Parquet folder, DuckDB file), on a real PostgreSQL
server (the demo loaded as CLIF tables, and as OMOP CDM tables read through the OMOP adapter) and on
Spark in local mode. Every value of results.json must be equal, bit for bit, except what names the
source: ``spec.data`` (the source URL and model), the spec hash (which hashes the study file, source
included) and the input file hashes (a database has no input files).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests._postgres import postgres_server, require_or_skip

#: results.json paths that name the source and may differ between engines.
SOURCE_KEYS = (".spec.data.", ".study.spec_hash", ".reproducibility.spec_hash", ".reproducibility.inputs")


def _flat(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flat(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _flat(v, f"{path}[{i}]")
    else:
        yield path, obj


def _differences(a: dict, b: dict) -> list[tuple]:
    fa, fb = dict(_flat(a)), dict(_flat(b))
    keys = sorted(set(fa) | set(fb))
    return [(k, fa.get(k), fb.get(k)) for k in keys
            if not k.startswith(SOURCE_KEYS) and (k not in fa or k not in fb or fa[k] != fb[k])]


#: The one line a JVM prints for Spark's incubator module, before any log configuration applies.
JVM_NOTICE = "WARNING: Using incubator modules: jdk.incubator.vector"


def _run(study: Path, out: Path, timeout: int = 1200) -> dict:
    res = subprocess.run([sys.executable, "-m", "controlarm", "run", str(study), "--out", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    # --quiet means quiet on every engine: no Spark start-up warnings or log lines either
    assert [line for line in res.stderr.splitlines() if line.strip() and line != JVM_NOTICE] == []
    return json.loads((out / "results.json").read_text())


def _with_source(demo: Path, where: Path, source: str, extra: str = "") -> Path:
    text = (demo / "study.toml").read_text()
    text, n = re.subn(r'(?m)^source = "data".*$', f'source = "{source}"{extra}', text)
    assert n == 1
    where.mkdir(parents=True, exist_ok=True)
    (where / "study.toml").write_text(text)
    return where / "study.toml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    """The demo's data and study file, and its results from the Parquet folder (the reference)."""
    out = tmp_path_factory.mktemp("engines") / "demo"
    res = subprocess.run([sys.executable, "-m", "controlarm", "demo", "--out", str(out), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    # The reference is `controlarm run` on the Parquet folder (the demo command adds no lock record).
    return out, _run(out / "study.toml", out.parent / "reference")


@pytest.fixture(scope="module")
def pg_uri():
    with postgres_server() as uri:
        yield uri


def test_reference_run_is_the_demo(demo):
    _, results = demo
    assert results["matching"]["n_sets"] == 8
    assert results["spec"]["data"]["source"] == "data"


def test_duckdb_file_gives_identical_results(demo, tmp_path):
    folder, reference = demo
    db = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(db))
    for f in sorted((folder / "data").glob("*.parquet")):
        con.execute(f"CREATE TABLE {f.stem} AS SELECT * FROM read_parquet('{f}')")
    con.close()
    study = _with_source(folder, tmp_path / "duck", str(db))
    assert _differences(reference, _run(study, tmp_path / "duck" / "out")) == []


def test_postgresql_clif_gives_identical_results(demo, pg_uri, tmp_path):
    from controlarm.engine import copy_folder_to_postgres

    folder, reference = demo
    counts = copy_folder_to_postgres(folder / "data", pg_uri + "&schema=clif", replace=True)
    assert counts["patient"] > 400 and counts["respiratory_support"] > 1000
    study = _with_source(folder, tmp_path / "pg", pg_uri + "&schema=clif")
    results = _run(study, tmp_path / "pg" / "out")
    assert _differences(reference, results) == []
    assert results["reproducibility"]["inputs"] == {}  # no files to hash; the password never appears
    assert "secret" not in (tmp_path / "pg" / "out" / "results.json").read_text()


def test_postgresql_omop_gives_identical_results(demo, pg_uri, tmp_path):
    from controlarm.engine import copy_folder_to_postgres
    from controlarm.sources.omop import export_omop

    folder, reference = demo
    omop = tmp_path / "omop"
    export_omop(folder / "data", omop)
    copy_folder_to_postgres(omop, pg_uri + "&schema=omop", replace=True)
    study = _with_source(folder, tmp_path / "pgomop", pg_uri + "&schema=omop", extra='\nmodel = "omop"')
    assert _differences(reference, _run(study, tmp_path / "pgomop" / "out")) == []


def test_spark_local_gives_identical_results(demo, tmp_path):
    _need_spark()
    folder, reference = demo
    study = _with_source(folder, tmp_path / "spark", f"spark://local[2]?path={folder / 'data'}")
    assert _differences(reference, _run(study, tmp_path / "spark" / "out", timeout=1800)) == []


def _need_spark():
    if shutil.which("java") is None:
        require_or_skip("Spark needs Java 17+, and java is not installed")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        require_or_skip("pyspark is not installed")


def test_spark_reads_nanosecond_parquet_and_names_a_file_it_cannot_read(tmp_path):
    """pandas writes Parquet TIMESTAMP(NANOS), which Spark refuses by default (PARQUET_TYPE_ILLEGAL).
    A Spark folder source reads those columns anyway, with the instants DuckDB reads from the same
    file; a file Spark cannot read is an InputError that names it, not a JVM traceback."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from controlarm.errors import InputError
    from controlarm.sources import open_sources
    from tests import _clif

    _need_spark()
    _clif.write(tmp_path)
    folder = tmp_path / "data"
    schema = pq.read_schema(folder / "respiratory_support.parquet")
    assert schema.field("recorded_dttm").type == pa.timestamp("ns", tz="UTC")  # what pandas wrote
    sql = "SELECT hospitalization_id, recorded_dttm, device_category FROM respiratory_support ORDER BY ALL"
    duck = open_sources(str(folder))
    try:
        expected = duck.con.execute(sql).fetchall()
    finally:
        duck.con.close()
    spark = open_sources(f"spark://local[1]?path={folder}")
    try:
        assert spark.con.execute(sql).fetchall() == expected
        assert len(expected) > 20
    finally:
        spark.con.close()
    (folder / "labs.parquet").write_bytes((folder / "labs.parquet").read_bytes()[:200])  # cut short
    with pytest.raises(InputError, match=r"labs\.parquet: this is not a readable Parquet file.*Fix: "):
        open_sources(f"spark://local[1]?path={folder}")


def test_spark_row_numbers_are_the_rows_of_the_file(tmp_path):
    """A Spark file read in many splits still numbers each row by its place in the file, so a
    validation message names the row a user finds at that line (not a gapped Spark row id)."""
    from pyspark.sql import SparkSession

    from controlarm.sources import open_sources
    from controlarm.sources._read import ROW_COLUMN, raw_relation
    from tests import _clif

    _need_spark()
    _clif.write(tmp_path)
    folder = tmp_path / "data"
    labs = _clif.tables()["labs"]
    n = 60_000
    big = labs.iloc[[i % len(labs) for i in range(n)]].reset_index(drop=True)
    big["lab_value"] = [f"row {i + 1}" for i in range(n)]  # what the file says each row is
    big.to_parquet(folder / "labs.parquet", index=False, row_group_size=2_000)
    # Small splits: the file is read by many tasks, as a warehouse-sized one would be.
    spark = (SparkSession.builder.master("local[2]").appName("controlarm-rows")
             .config("spark.sql.files.maxPartitionBytes", "16384").config("spark.sql.files.openCostInBytes", "0")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        src = open_sources(f"spark://session?path={folder}")
        assert spark.read.parquet(str(folder / "labs.parquet")).rdd.getNumPartitions() > 4
        got = src.df(f"SELECT {ROW_COLUMN} AS r, lab_value FROM {raw_relation('labs')}")
        assert len(got) == n
        assert (got["lab_value"] == "row " + got["r"].astype(str)).all()
        assert sorted(got["r"]) == list(range(1, n + 1))
        src.con.close()
    finally:
        spark.stop()


def test_postgresql_schema_without_tables_is_one_clear_message(pg_uri):
    from controlarm.errors import InputError
    from controlarm.sources import open_sources

    with pytest.raises(InputError, match=r"schema 'nosuch' .* holds no tables .*Fix: set \?schema="):
        open_sources(pg_uri + "&schema=nosuch")


def test_load_streams_parquet_in_batches_with_progress(pg_uri, tmp_path):
    """`controlarm load` copies a Parquet file batch by batch (memory stays flat at warehouse size)
    and reports rows copied per table; a CSV file is read whole (types from the whole file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from controlarm.engine import copy_folder_to_postgres
    from controlarm.engine._connection import PostgresConnection
    from controlarm.errors import InputError

    folder = tmp_path / "tables"
    folder.mkdir()
    n = 150_000  # more than two 64k batches
    pq.write_table(pa.table({"k": pa.array(range(n), pa.int64()), "x": pa.array([i * 0.5 for i in range(n)])}),
                   folder / "big.parquet", row_group_size=50_000)
    (folder / "small.csv").write_text("a,b\n1,x\n2,\n2.5,z\n")  # a float after two ints
    calls: list[tuple] = []
    counts = copy_folder_to_postgres(folder, pg_uri + "&schema=loadtest", replace=True,
                                     progress=lambda t, done, total: calls.append((t, done, total)))
    assert counts == {"big": n, "small": 3}
    big = [(d, t) for name, d, t in calls if name == "big"]
    assert len(big) >= 4 and big[0] == (0, n) and big[-1] == (n, n)
    assert all(a[0] <= b[0] for a, b in zip(big, big[1:]))
    con = PostgresConnection(pg_uri)
    try:
        assert con.execute("SELECT count(*), sum(k), sum(x) FROM loadtest.big").fetchall() == [
            (n, n * (n - 1) // 2, sum(i * 0.5 for i in range(n)))]
        assert con.execute("SELECT a FROM loadtest.small ORDER BY a").fetchall() == [(1.0,), (2.0,), (2.5,)]
    finally:
        con.close()
    res = subprocess.run([sys.executable, "-m", "controlarm", "load", str(folder), "--to",
                          pg_uri + "&schema=loadcli"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "big: 150000 rows" in res.stdout and "loaded 2 tables" in res.stdout
    # a damaged file is one message that names it, not a pyarrow or driver traceback: a cut footer ...
    good = (folder / "big.parquet").read_bytes()
    (folder / "big.parquet").write_bytes(good[:-100])
    res = subprocess.run([sys.executable, "-m", "controlarm", "load", str(folder), "--to",
                          pg_uri + "&schema=loadbad"], capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
    assert "big.parquet: this is not a readable Parquet file" in res.stderr and "Fix: " in res.stderr
    # ... and a damaged data page past the first batches (the footer reads, a later page does not)
    pq.write_table(pa.table({"s": pa.array([str(i * 7919) for i in range(n)])}), folder / "big.parquet",
                   row_group_size=50_000)
    damaged = bytearray((folder / "big.parquet").read_bytes())
    damaged[len(damaged) // 2:len(damaged) // 2 + 2000] = b"\xff" * 2000
    (folder / "big.parquet").write_bytes(bytes(damaged))
    with pytest.raises(InputError, match=r"big\.parquet: the copy into loadbad\.big stopped after [\d,]+ of "
                                         r"150,000 rows: .*Fix: "):
        copy_folder_to_postgres(folder, pg_uri + "&schema=loadbad", replace=True)
