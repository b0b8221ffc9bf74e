"""Sources on PostgreSQL and Spark, and OMOP CDM sources on any engine.

Room: ``sources``. The engine room (``controlarm.engine``) gives a connection with DuckDB's small
API that translates the rooms' SQL; this module finds the contract tables in a PostgreSQL schema, a
Spark folder or a Spark database, and, for ``[data] model = "omop"``, builds the CLIF tables from
the OMOP CDM tables with the OMOP adapter's SQL (``sources.omop``) on the same engine. From the
``_raw_<t>`` views on, the typing, unit harmonisation and checks are the DuckDB path's
(``._read``), unchanged.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataContractError, InputError
from ._read import Sources, _finish, _folder_files, _lit, _q, _register_raw_views
from ._schema import TABLES

__all__ = ["open_engine_source", "open_omop_duckdb"]

def _url_parts(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its query, and the query's parameters (``spark://local[2]`` is no IPv6 host)."""
    from urllib.parse import parse_qsl

    bare, _, query = url.partition("?")
    return bare, dict(parse_qsl(query, keep_blank_values=True))


def open_engine_source(engine: str, url: str, base_dir: Path | None, omop=None) -> Sources:
    from ..engine import PostgresConnection, SparkConnection, redact

    found: dict[str, str] = {}
    numbers: dict[str, str | None] = {}  # contract table -> its row-number SQL, where not `number`
    warnings: list[str] = []
    if engine == "postgresql":
        from urllib.parse import urlencode

        bare, query = _url_parts(url)
        schema_name = query.pop("schema", "public")
        uri = bare + ("?" + urlencode(query) if query else "")
        con = PostgresConnection(uri)
        label = f"{redact(bare)} schema {schema_name}"
        try:
            present = {
                r[0].lower(): r[0]
                for r in con.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema_name]
                ).fetchall()
            }
        except BaseException:
            con.close()
            raise
        if not present:
            con.close()
            raise InputError(
                f"PostgreSQL schema {schema_name!r} at {redact(bare)} holds no tables (or does not exist). "
                "Fix: set ?schema= in data.source to the schema that holds the tables (patient, "
                "hospitalization, ... or the OMOP tables with data.model = \"omop\")."
            )
        if omop is not None:
            # The OMOP SQL names CDM tables bare: the warehouse schema goes on the search path
            # (after pg_temp, where this session's own relations live).
            con.run_native(f"SET search_path TO {_q(schema_name)}, public")
            present_omop = set(present)
        for name in TABLES:
            if name in present:
                found[name] = f"{_q(schema_name)}.{_q(present[name])}"
        location = Path(redact(bare).split("://", 1)[1] or ".")
        where_absent = "no table {t} in schema " + schema_name
    else:
        bare, query = _url_parts(url)
        master = bare.split("://", 1)[1].strip("/") or None
        if master in ("session", "default"):
            master = None
        con = SparkConnection(master)
        try:
            if "path" in query:
                folder = Path(query["path"]).expanduser()
                if not folder.is_absolute() and base_dir is not None:
                    folder = Path(base_dir) / folder
                if not folder.is_dir():
                    raise InputError(f"data source {url}: folder {folder} does not exist. Fix: set path= to "
                                     "the folder holding the table files.")
                files, problems, warnings = _folder_files(folder)
                if problems:
                    raise DataContractError(problems)
                if omop is not None:
                    from .omop import CDM_TABLES

                    present_omop = set()
                    for cdm in CDM_TABLES:
                        for fmt in ("parquet", "csv"):
                            file = folder / f"{cdm}.{fmt}"
                            if file.is_file():
                                _spark_table(con, file, fmt).createOrReplaceTempView(cdm)
                                present_omop.add(cdm)
                                break
                for name, (file, fmt) in files.items():
                    view = f"_src_{name}"
                    sdf = _spark_table(con, file, fmt)
                    sdf.createOrReplaceTempView(view)
                    found[name] = _q(view)
                    numbers[name] = _spark_file_rows(sdf)
                location = folder
                where_absent = "no {t}.parquet or {t}.csv in " + str(folder)
                label = f"Spark {folder}"
            else:
                database = query.get("database", "default")
                present = {r[0].lower(): r[0] for r in con.spark.sql(f"SHOW TABLES IN `{database}`").select("tableName").collect()}
                if omop is not None:
                    con.spark.sql(f"USE `{database}`")  # the OMOP SQL names CDM tables bare
                    present_omop = set(present)
                for name in TABLES:
                    if name in present:
                        found[name] = f"{_q(database)}.{_q(present[name])}"
                location = Path(database)
                where_absent = "no table {t} in Spark database " + database
                label = f"Spark database {database}"
        except BaseException:
            con.close()
            raise
    try:
        if omop is not None:
            found, mapping_warnings = _omop_views(con, found, present_omop, omop)
            warnings += mapping_warnings
        # Row numbers only name rows in messages. A Spark file is numbered as it lies on disk
        # (_spark_file_rows); a Spark table has no row order to tell a user about, so its rows get
        # their (increasing, gapped) row ids, and a PostgreSQL table its scan order.
        number = "monotonically_increasing_id() + 1" if engine == "spark" else "row_number() OVER ()"
        numbered = {name: (numbers.get(name) if ref == _q(f"_src_{name}") else None) or number
                    for name, ref in found.items()}
        ok, problems = _register_raw_views(con, found, label, numbered)
        files_out = {name: Path(name) for name in ok}
        if problems:
            raise DataContractError(problems)
        return _finish(con, files_out, warnings, where_absent, label, location=location, kind=engine)
    except BaseException:
        con.close()
        raise


def _spark_table(con, file: Path, fmt: str):
    """One table file as a Spark DataFrame, or an InputError that names the file.

    pandas writes timestamps as Parquet TIMESTAMP(NANOS), which Spark refuses to read
    (``PARQUET_TYPE_ILLEGAL``). Such columns are read as their int64 nanoseconds
    (``spark.sql.legacy.parquet.nanosAsLong``, a switch that touches nanosecond columns only) and
    turned into Spark timestamps, floored to the microsecond, which is Spark's resolution and also
    what DuckDB keeps of a nanosecond timestamp once it is cast to TIMESTAMP.
    """
    reader = con.spark.read
    try:
        if fmt == "csv":
            return reader.option("header", "true").csv(str(file))
        nanos = _nanosecond_columns(file)
        if not nanos:
            return reader.parquet(str(file))
        con.spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
        sdf = reader.parquet(str(file))
        quoted = {name: "`" + name.replace("`", "``") + "`" for name in sdf.columns}
        return sdf.selectExpr(*[
            f"timestamp_micros(({q} - pmod({q}, 1000)) div 1000) AS {q}" if name in nanos else q
            for name, q in quoted.items()
        ])
    except InputError:
        raise
    except Exception as exc:  # Spark's AnalysisException and the JVM's errors have no common base
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{file}: Spark cannot read this {fmt} file: {first}. Fix: check that the file "
                         f"is a complete {fmt} file (open it with pandas or DuckDB), or rewrite it.") from None


def _spark_file_rows(sdf) -> str | None:
    """SQL that gives each row of a Spark file source its row number in the file (1 = first).

    Spark reads a file in splits, in file order, one task per split, and
    ``monotonically_increasing_id()`` is the task's partition index times 2**33 plus the row's place
    in its split. Counting the rows of every split once (a scan that reads no column) gives each
    split's offset, hence the row's place in the file, without sending every row through one task
    as ``row_number() OVER ()`` would. An empty split needs no offset. ``None`` (gapped row ids)
    past 1,000 splits, where the CASE would outgrow its use.
    """
    counts = sorted(sdf.selectExpr("spark_partition_id() AS p").groupBy("p").count().collect())
    if len(counts) > 1000:
        return None
    offsets, total = {}, 0
    for split, n in counts:
        offsets[split] = total
        total += n
    # the place in the split, and the split's offset (none for the first split that has rows)
    row = "monotonically_increasing_id() - spark_partition_id() * 8589934592 + 1"
    case = " ".join(f"WHEN {split} THEN {offset}" for split, offset in offsets.items() if offset)
    return f"{row} + CASE spark_partition_id() {case} ELSE 0 END" if case else row


def _nanosecond_columns(file: Path) -> set[str]:
    """Names of the top-level Parquet columns stored as nanosecond timestamps."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(file)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{file}: this is not a readable Parquet file ({exc}). Fix: rewrite it, or export "
                         "the table again.") from None
    return {f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"}


# OMOP CDM sources: the adapter's SQL makes the CLIF tables on the same engine

_OMOP_PREFIX = "_omopclif_"


def _omop_views(con, found: dict[str, str], present_omop: set[str], omop) -> tuple[dict[str, str], list[str]]:
    """Create the CLIF views of an OMOP source on ``con`` (any engine).

    ``found`` holds the trial tables found in the source (the CDM tables are read by their bare
    names); absent CDM tables become empty relations. Returns the contract table -> relation map
    and the adapter's counted mapping issues as warnings.
    """
    from .omop import CDM_TABLES, OmopMapping, clif_views_sql, mapping_report_sql, register_concept_map

    concept_map, gap = omop
    register_concept_map(con, concept_map)
    for cdm, cols in CDM_TABLES.items():
        if cdm not in present_omop:
            con.execute(f"CREATE TABLE {_q(cdm)} ({', '.join(f'{_q(c)} {t}' for c, t in cols)})")
    out = {name: ref for name, ref in found.items() if name in ("enrollment", "administration", "adverse_event")}
    for table, sql in clif_views_sql(gap).items():
        view = _OMOP_PREFIX + table
        # Materialised once: every room reads these tables several times, and a view would redo
        # the whole mapping (interval-to-event windows included) on each read.
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_q(view)} AS {sql}")
        out[table] = _q(view)
    issues = []
    for msg, sql in mapping_report_sql(gap).items():
        for cid, n in con.execute(sql).fetchall():
            if n:
                issues.append((msg, None if cid is None else int(cid), int(n)))
    mapping = OmopMapping(views={}, omop_files={}, trial_files={}, issues=tuple(issues))
    return out, list(mapping.messages())


def open_omop_duckdb(con, path: Path, kind: str, omop) -> Sources:
    """An OMOP folder (or DuckDB file) on DuckDB: the adapter's views, then the usual typing."""
    from .omop import CDM_TABLES

    con.execute("SET TimeZone = 'UTC'")
    warnings: list[str] = []
    present: set[str] = set()
    found: dict[str, str] = {}
    inputs: dict[str, Path] = {}
    trial = ("enrollment", "administration", "adverse_event")
    if kind == "folder":
        for name in (*CDM_TABLES, *trial):
            pq, cs = path / f"{name}.parquet", path / f"{name}.csv"
            if pq.is_file() and cs.is_file():
                raise DataContractError([f"{name}: both {name}.csv and {name}.parquet are in {path}. Fix: keep one."])
            file = pq if pq.is_file() else cs if cs.is_file() else None
            if file is None:
                continue
            reader = (f"read_parquet({_lit(str(file))})" if file.suffix == ".parquet"
                      else f"read_csv({_lit(str(file))}, header = true, all_varchar = true)")
            target = f"_src_{name}" if name in trial else name
            con.execute(f"CREATE VIEW {_q(target)} AS SELECT * FROM {reader}")
            inputs[f"omop:{name}" if name not in trial else name] = file
            if name in trial:
                found[name] = _q(target)
            else:
                present.add(name)
    else:
        con.execute(f"ATTACH {_lit(str(path))} AS src (READ_ONLY)")
        in_file = {r[0].lower(): r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'src' AND table_schema = 'main'"
        ).fetchall()}
        for name in (*CDM_TABLES, *trial):
            if name in in_file:
                ref = f"src.main.{_q(in_file[name])}"
                if name in trial:
                    found[name] = ref
                else:
                    con.execute(f"CREATE VIEW {_q(name)} AS SELECT * FROM {ref}")
                    present.add(name)
    found, mapping_warnings = _omop_views(con, found, present, omop)
    warnings += mapping_warnings
    ok, problems = _register_raw_views(con, found, path.name, "row_number() OVER ()")
    files: dict[str, Path] = {name: inputs.get(name, path) for name in ok}
    if problems:
        raise DataContractError(problems)
    files.update({k: v for k, v in inputs.items() if k not in files})  # the CDM files, for the input hashes
    return _finish(con, files, warnings, "no OMOP source for {t} in " + str(path), path.name, location=path,
                   kind=kind)
