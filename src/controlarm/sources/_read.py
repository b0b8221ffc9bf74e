"""Open a study's data and register every contract table in an in-memory DuckDB connection.

Room: ``sources``. It gives the next rooms engine-side tables with canonical names and types
(docs/data-model.md). Reading problems that make a file unusable (missing folder, unreadable or
corrupt file, a CSV with a bad header, two files for one table) raise here; problems *inside*
readable tables are left for ``validate`` to collect and report all at once.

Why our own reader and not clifpy's: clifpy pins ``pandas==2.3.3`` and pulls build tools in, and it
loads tables into pandas; this room keeps row-level data inside DuckDB.

Layout of the connection (``Sources.con``), for each contract table ``t``:

* ``_raw_t``: the input as read, plus ``__row_number`` (1-based data row; a CSV header line is not
  counted), with listed columns renamed to their canonical spelling. Used by ``validate`` to show
  offending raw values.
* ``_typed_t``: ``__row_number`` and every listed column cast to its canonical type with
  ``TRY_CAST`` (a value that does not cast becomes NULL; ``validate`` reports it), then the
  unlisted columns unchanged.
* ``t``: the canonical table (a view): ``_typed_t`` without ``__row_number``. ``labs`` adds
  ``value_harmonised`` and ``unit_harmonised`` (see ``sources._units``).

Decisions:

* Times are ``TIMESTAMP WITH TIME ZONE``. The connection's ``TimeZone`` is set to UTC, so a naive
  time (CSV text without an offset, a Parquet ``TIMESTAMP`` without zone) is read as UTC and a time
  with an offset is converted to UTC. Rooms must not change the connection's ``TimeZone``.
* CSV files are read as text (``all_varchar``) with a fixed dialect (comma, double quote, UTF-8,
  header line), never sniffed: sniffing silently mis-read ragged files in testing. Ids keep leading
  zeros. Only an empty field is missing; ``"NA"`` or ``"n/a"`` are values (and fail a numeric cast).
* A ``str`` column read as a float (pandas writes integer ids with gaps as float64) turns ``7.0``
  into ``"7"``; an empty string counts as missing.
* Float ``NaN`` counts as missing. An ``int`` column accepts ``3`` and ``3.0`` but not ``3.5``. A
  ``bool`` column accepts true/false, t/f, yes/no, y/n, 1/0 (any case).
* Column names match case-insensitively and ignoring surrounding spaces; category *values* do not
  (see ``sources._schema``).
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..errors import DataContractError, InputError
from ._schema import DUCKDB_TYPES, TABLES, Column, TableSchema
from ._units import HARMONISED_LABS, lab_unit_factor

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Sources", "open_sources", "ROW_COLUMN", "raw_relation", "typed_relation", "UNIT_MAP"]

#: Name of the 1-based data-row column carried by ``_raw_<t>`` and ``_typed_<t>``.
ROW_COLUMN = "__row_number"
#: Name of the lab unit mapping table (lab_category, reference_unit, factor, unit_harmonised,
#: problem, assumed_feu).
UNIT_MAP = "_lab_unit_map"

_DUCKDB_SUFFIXES = (".duckdb", ".db")
_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")


def raw_relation(table: str) -> str:
    """Name of the relation holding ``table`` as read (with ``__row_number``)."""
    return f"_raw_{table}"


def typed_relation(table: str) -> str:
    """Name of the relation holding ``table`` typed (with ``__row_number``)."""
    return f"_typed_{table}"


@dataclass(frozen=True)
class Sources:
    """A study's tables, registered in an in-memory DuckDB connection.

    Attributes
    ----------
    con : duckdb.DuckDBPyConnection
        Holds one relation per contract table, named exactly as the table (``patient``,
        ``labs``, ...), with canonical types. ``TimeZone`` is UTC.
    tables : tuple of str
        Every contract table registered (absent optional tables included, as empty tables).
    files : dict
        Table -> input file it was read from (the DuckDB file for a DuckDB source); for hashing.
    location : Path
        The folder or DuckDB file that was opened.
    warnings : tuple of str
        Reading warnings (absent optional tables, unrecognised files).
    row_counts : dict
        Table -> number of rows (0 for an absent table).
    kind : {"folder", "duckdb"}
    absent : tuple of str
        Contract tables that had no input (required ones are reported by ``validate``).
    raw_columns : dict
        Table -> column names as found in the input (listed ones in canonical spelling).
    raw_types : dict
        Table -> {column: DuckDB type as read}.
    """

    con: duckdb.DuckDBPyConnection
    tables: tuple[str, ...]
    files: dict[str, Path]
    location: Path
    warnings: tuple[str, ...]
    row_counts: dict[str, int]
    kind: str = "folder"
    absent: tuple[str, ...] = ()
    raw_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    raw_types: dict[str, dict[str, str]] = field(default_factory=dict)

    def df(self, sql: str, params: Any = None) -> "pd.DataFrame":
        """Run ``sql`` on the connection and return the result as a pandas DataFrame.

        Parameters
        ----------
        sql : str
        params : sequence or mapping, optional
            Bound to ``?`` / ``$name`` placeholders.
        """
        return self.con.execute(sql, params).df() if params is not None else self.con.execute(sql).df()

    def label(self, table: str) -> str:
        """How messages name ``table``: its file name, ``file.duckdb:table``, or the bare name."""
        if table in self.files:
            if self.kind == "duckdb":
                return f"{self.files[table].name}:{table}"
            return self.files[table].name
        return table

    def close(self) -> None:
        """Close the DuckDB connection."""
        self.con.close()


# ---------------------------------------------------------------------------------------------
# SQL helpers
# ---------------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_list(values) -> str:
    return "(" + ", ".join(_lit(v) for v in values) + ")"


_NESTED = re.compile(r"^(STRUCT|MAP|UNION|LIST)\b|\[\]$|\[\d+\]$")


def cast_expressions(column: Column, raw_type: str) -> tuple[str, str]:
    """SQL for the typed value of ``column`` and for "this raw value does not cast".

    Returns
    -------
    typed : str
        Expression over the raw column giving the canonical value (NULL when missing or bad).
    bad : str
        Boolean expression, true where a value is present but cannot be cast.
    """
    r = _q(column.name)
    rt = raw_type.upper()
    target = DUCKDB_TYPES[column.dtype]
    if _NESTED.search(rt):
        return f"CAST(NULL AS {target})", f"({r} IS NOT NULL)"
    is_text = rt == "VARCHAR"
    if column.dtype == "str":
        if rt in ("DOUBLE", "FLOAT", "REAL"):  # ids written by pandas as floats: 7.0 -> "7"
            typed = (
                f"(CASE WHEN isnan({r}) THEN NULL WHEN isfinite({r}) AND {r} = floor({r}) "
                f"THEN CAST(TRY_CAST({r} AS BIGINT) AS VARCHAR) ELSE CAST({r} AS VARCHAR) END)"
            )
        else:
            typed = f"NULLIF(CAST({r} AS VARCHAR), '')"
        return typed, "FALSE"
    v = f"NULLIF(trim({r}), '')" if is_text else r
    if column.dtype == "float":
        d = f"TRY_CAST({v} AS DOUBLE)"
        typed = f"(CASE WHEN isfinite({d}) THEN {d} END)"
        bad = f"({v} IS NOT NULL AND ({d} IS NULL OR isinf({d})))"
    elif column.dtype == "int":
        if rt in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"):
            typed = f"CAST({v} AS BIGINT)"
        else:
            d = f"TRY_CAST({v} AS DOUBLE)"
            typed = f"(CASE WHEN isfinite({d}) AND {d} = floor({d}) THEN TRY_CAST({d} AS BIGINT) END)"
        bad = f"({v} IS NOT NULL AND {typed} IS NULL AND coalesce(NOT isnan(TRY_CAST({v} AS DOUBLE)), TRUE))"
    elif column.dtype == "bool":
        if rt == "BOOLEAN":
            typed = v
        elif is_text:
            low = f"lower({v})"
            typed = f"(CASE WHEN {low} IN {_sql_list(_TRUE)} THEN TRUE WHEN {low} IN {_sql_list(_FALSE)} THEN FALSE END)"
        else:
            d = f"TRY_CAST({v} AS DOUBLE)"
            typed = f"(CASE WHEN {d} = 1 THEN TRUE WHEN {d} = 0 THEN FALSE END)"
        bad = f"({v} IS NOT NULL AND {typed} IS NULL)"
    elif column.dtype == "date":
        typed = f"TRY_CAST({v} AS DATE)"
        bad = f"({v} IS NOT NULL AND {typed} IS NULL)"
    else:  # timestamp
        typed = f"TRY_CAST({v} AS TIMESTAMP WITH TIME ZONE)"
        bad = f"({v} IS NOT NULL AND {typed} IS NULL)"
    return typed, bad


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _resolve(source: str | Path, base_dir: Path | None) -> Path:
    text = str(source)
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme.lower() != "duckdb":
            raise InputError(
                f"data source {text!r}: the {scheme}:// engine is not supported. Fix: give a folder of "
                "Parquet/CSV files, a .duckdb file, postgresql://user@host/database?schema=name or "
                "spark://local[2]?path=folder."
            )
        text = rest
    if not text.strip():
        raise InputError("data source is empty. Fix: set data.source to a folder or a .duckdb file.")
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path.resolve()


def _canonical_names(schema: TableSchema, names: list[str], where: str) -> tuple[list[str], list[str]]:
    """Map input column names to canonical spelling; return (names, problems)."""
    listed = {c.name.lower(): c.name for c in schema.columns}
    out: list[str] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(names, start=1):
        name = raw.strip()
        if not name:
            problems.append(
                f"{where}: column {i} of the header has no name. Fix: give every column a name "
                "(or delete the empty column)."
            )
            name = f"column{i}"
        canon = listed.get(name.lower(), name)
        if canon.lower() in seen:
            problems.append(
                f"{where}: column name {name!r} appears twice (also {seen[canon.lower()]!r}; names are "
                "compared ignoring case). Fix: keep one column per name."
            )
        seen[canon.lower()] = name
        out.append(canon)
    return out, problems


def _csv_header(path: Path, schema: TableSchema) -> tuple[list[str], list[str]]:
    where = path.name
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            first = fh.readline()
    except UnicodeDecodeError:
        return [], [f"{where}: is not UTF-8 encoded. Fix: save the file as CSV UTF-8."]
    except OSError as exc:
        return [], [f"{where}: cannot be read ({exc.strerror or exc}). Fix: check the file's permissions."]
    if not first.strip():
        return [], [f"{where}: is empty (no header line). Fix: write a header line with the column names."]
    names = next(csv.reader([first]))
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        sep = "semicolon" if ";" in names[0] else "tab"
        return [], [
            f"{where}: the header looks {sep}-separated ({first.strip()[:60]!r}). "
            "Fix: save the file as comma-separated CSV."
        ]
    return _canonical_names(schema, names, where)


def _duckdb_error_text(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.startswith(("Possible", "*", "LINE", "^", "file =", "delimiter", "quote"))]
    return "; ".join(keep[:3])[:400]


def _register_csv(con, schema: TableSchema, path: Path) -> list[str]:
    names, problems = _csv_header(path, schema)
    if problems:
        return problems
    cols = "{" + ", ".join(f"{_lit(n)}: 'VARCHAR'" for n in names) + "}"
    store = f"_csv_{schema.name}"
    try:
        con.execute(
            f"CREATE TABLE {_q(store)} AS SELECT * FROM read_csv({_lit(str(path))}, header = true, "
            f"auto_detect = false, delim = ',', quote = '\"', escape = '\"', columns = {cols}, "
            "strict_mode = true, null_padding = false, encoding = 'utf-8')"
        )
    except duckdb.Error as exc:
        return [
            f"{path.name}: cannot be read as CSV ({_duckdb_error_text(exc)}). Fix: every row needs the "
            "same number of comma-separated fields as the header; quote fields that contain commas; "
            "save as UTF-8."
        ]
    con.execute(
        f"CREATE VIEW {_q(raw_relation(schema.name))} AS SELECT rowid + 1 AS {ROW_COLUMN}, * FROM {_q(store)}"
    )
    return []


def _register_parquet(con, schema: TableSchema, path: Path) -> list[str]:
    src = f"read_parquet({_lit(str(path))}, file_row_number = true)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_lit(str(path))})").fetchall()
        con.execute(f"SELECT count(*) FROM {src}").fetchall()
    except duckdb.Error as exc:
        return [
            f"{path.name}: cannot be read as Parquet ({_duckdb_error_text(exc)}). Fix: re-export the "
            "table as Parquet (for example with pandas DataFrame.to_parquet) or provide it as CSV."
        ]
    names = [row[0] for row in described]
    canon, problems = _canonical_names(schema, names, path.name)
    if problems:
        return problems
    select = ", ".join(f"{_q(n)} AS {_q(c)}" for n, c in zip(names, canon))
    con.execute(
        f"CREATE VIEW {_q(raw_relation(schema.name))} AS "
        f"SELECT file_row_number + 1 AS {ROW_COLUMN}, {select} FROM {src}"
    )
    return []


def _register_duckdb_table(con, schema: TableSchema, source_name: str, db_label: str) -> list[str]:
    ref = f"src.main.{_q(source_name)}"
    names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {ref}").fetchall()]
    canon, problems = _canonical_names(schema, names, f"{db_label}:{schema.name}")
    if problems:
        return problems
    select = ", ".join(f"{_q(n)} AS {_q(c)}" for n, c in zip(names, canon))
    view = _q(raw_relation(schema.name))
    try:
        con.execute(f"CREATE VIEW {view} AS SELECT rowid + 1 AS {ROW_COLUMN}, {select} FROM {ref}")
        con.execute(f"SELECT count(*) FROM {view}").fetchall()
    except duckdb.Error:  # a view in the source file has no rowid
        con.execute(f"DROP VIEW IF EXISTS {view}")
        con.execute(
            f"CREATE VIEW {view} AS SELECT row_number() OVER () AS {ROW_COLUMN}, {select} FROM {ref}"
        )
    return []


def _register_typed(con, schema: TableSchema, raw_types: dict[str, str] | None) -> None:
    """Create ``_typed_<t>`` and the canonical relation ``<t>``.

    The SQL is portable (explicit column lists, no ``EXCLUDE``; the lab unit map is a ``VALUES``
    relation rather than a table filled by ``INSERT``), so it runs on every engine.
    """
    typed_name = _q(typed_relation(schema.name))
    if raw_types is None:  # absent table: empty, with the right columns
        cols = ", ".join(f"{_q(c.name)} {DUCKDB_TYPES[c.dtype]}" for c in schema.columns)
        con.execute(f"CREATE TABLE {typed_name} ({ROW_COLUMN} BIGINT, {cols})")
        extras: list[str] = []
    else:
        parts = [ROW_COLUMN]
        for c in schema.columns:
            if c.name in raw_types:
                typed, _ = cast_expressions(c, raw_types[c.name])
                parts.append(f"{typed} AS {_q(c.name)}")
            else:
                parts.append(f"CAST(NULL AS {DUCKDB_TYPES[c.dtype]}) AS {_q(c.name)}")
        reserved = {c.name.lower() for c in schema.columns} | {ROW_COLUMN}
        if schema.name == "labs":
            reserved |= {"value_harmonised", "unit_harmonised"}
        extras = [n for n in raw_types if n.lower() not in reserved]
        parts += [_q(n) for n in extras]
        con.execute(
            f"CREATE VIEW {typed_name} AS SELECT {', '.join(parts)} FROM {_q(raw_relation(schema.name))}"
        )
    columns = [c.name for c in schema.columns] + extras
    if schema.name == "labs":
        _register_labs(con, columns)
    else:
        select = ", ".join(_q(c) for c in columns)
        con.execute(f"CREATE VIEW {_q(schema.name)} AS SELECT {select} FROM {typed_name}")


def _register_labs(con, columns: list[str]) -> None:
    cats = tuple(HARMONISED_LABS)
    pairs = con.execute(
        f"SELECT DISTINCT lab_category, reference_unit FROM {_q(typed_relation('labs'))} "
        f"WHERE lab_category IN {_sql_list(cats)} AND reference_unit IS NOT NULL"
    ).fetchall()
    rows = []
    for cat, unit in sorted(pairs):
        f = lab_unit_factor(cat, unit)
        rows.append((cat, unit, f.factor, f.unit, f.problem, f.assumed_feu))

    def lit(v) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, float):
            return repr(float(v)) if v == v else "NULL"
        return _lit(str(v))

    names = "lab_category, reference_unit, factor, unit_harmonised, problem, assumed_feu"
    typed = ("CAST(lab_category AS VARCHAR) AS lab_category, CAST(reference_unit AS VARCHAR) AS reference_unit, "
             "CAST(factor AS DOUBLE) AS factor, CAST(unit_harmonised AS VARCHAR) AS unit_harmonised, "
             "CAST(problem AS VARCHAR) AS problem, CAST(assumed_feu AS BOOLEAN) AS assumed_feu")
    if rows:
        values = ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)
        body = f"SELECT {typed} FROM (VALUES {values}) AS m({names})"
    else:
        body = (f"SELECT {typed} FROM (VALUES (NULL, NULL, NULL, NULL, NULL, NULL)) AS m({names}) "
                "WHERE 1 = 0")
    con.execute(f"CREATE VIEW {UNIT_MAP} AS {body}")
    in_cats = _sql_list(cats)
    select = ", ".join(f"l.{_q(c)}" for c in columns)
    con.execute(
        f"""
        CREATE VIEW labs AS
        SELECT {select},
               CASE WHEN l.lab_category IN {in_cats} THEN l.lab_value_numeric * m.factor
                    ELSE l.lab_value_numeric END AS value_harmonised,
               CASE WHEN l.lab_category IN {in_cats} THEN m.unit_harmonised
                    ELSE l.reference_unit END AS unit_harmonised
        FROM {_q(typed_relation('labs'))} AS l
        LEFT JOIN {UNIT_MAP} AS m
          ON l.lab_category = m.lab_category AND l.reference_unit = m.reference_unit
        """
    )


def _folder_files(folder: Path) -> tuple[dict[str, tuple[Path, str]], list[str], list[str]]:
    """Find ``<table>.parquet`` / ``<table>.csv``; return (found, problems, warnings)."""
    found: dict[str, tuple[Path, str]] = {}
    problems: list[str] = []
    warnings: list[str] = []
    entries = {p.name: p for p in folder.iterdir() if p.is_file()}
    for name in TABLES:
        pq, cs = entries.get(f"{name}.parquet"), entries.get(f"{name}.csv")
        if pq and cs:
            problems.append(
                f"{name}: both {name}.csv and {name}.parquet are in {folder}; it is unclear which to use. "
                "Fix: keep one of the two files."
            )
        elif pq:
            found[name] = (pq, "parquet")
        elif cs:
            found[name] = (cs, "csv")
    known = {f"{n}.{ext}" for n in TABLES for ext in ("parquet", "csv")}
    for fname in sorted(entries):
        if fname.lower().endswith((".csv", ".parquet")) and fname not in known:
            stem = fname.rsplit(".", 1)[0]
            close = difflib.get_close_matches(stem.lower(), list(TABLES), n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}.{fname.rsplit('.', 1)[1]}?)" if close else ""
            warnings.append(f"{fname}: not a contract table name, ignored{hint}.")
    return found, problems, warnings


def duckdb_config() -> dict[str, str]:
    """DuckDB settings from the environment: ``CONTROLARM_MEMORY_LIMIT`` (for example ``3GB``; DuckDB's
    default is 80% of RAM) and ``CONTROLARM_TEMP_DIR`` (where DuckDB spills when over the limit).

    Environment rather than study file: they change how a run uses the machine, never its results,
    so they stay out of the spec and its hash.
    """
    import os

    config = {}
    if os.environ.get("CONTROLARM_MEMORY_LIMIT"):
        config["memory_limit"] = os.environ["CONTROLARM_MEMORY_LIMIT"]
    if os.environ.get("CONTROLARM_TEMP_DIR"):
        config["temp_directory"] = os.environ["CONTROLARM_TEMP_DIR"]
    if os.environ.get("CONTROLARM_THREADS"):
        config["threads"] = os.environ["CONTROLARM_THREADS"]
    return config


def open_study_sources(study) -> Sources:
    """Open the data a study file names: ``[data] source``, ``model`` and ``[data.omop]``."""
    omop = study.data.omop
    return open_sources(study.data.source, base_dir=study.base_dir, model=study.data.model,
                        omop_concepts=omop.concepts if omop is not None else None,
                        max_gap_hours=study.outcomes.max_gap_hours)


def open_sources(source: str | Path, *, base_dir: Path | None = None, model: str = "clif",
                 omop_concepts: str | Path | None = None, max_gap_hours: float = 24) -> Sources:
    """Open a folder of Parquet/CSV files or a DuckDB file and register the contract tables.

    Parameters
    ----------
    source : str or Path
        A folder holding ``<table>.parquet`` or ``<table>.csv`` per table, or a path ending in
        ``.duckdb`` / ``.db`` (optionally written ``duckdb:///path``) holding tables of those names.
    base_dir : Path, optional
        Folder a relative ``source`` is resolved against (the study file's folder); default: the
        current working directory.

    model : {"clif", "omop"}
        ``"omop"``: the source holds OMOP CDM v5.4 tables (plus the trial tables under their own
        names), read as CLIF through the OMOP adapter (``sources.omop``, docs/omop.md) on the same
        engine.
    omop_concepts : path, optional
        Extra concept-map rows (``[data.omop] concepts``), relative to ``base_dir``.
    max_gap_hours : float
        ``outcomes.max_gap_hours``; the OMOP adapter turns exposure intervals into CLIF records
        under this rule.

    Returns
    -------
    Sources
        An in-memory DuckDB connection with one relation per contract table, typed canonically.
        Absent tables are registered empty; absent *optional* tables add a warning. Nothing is
        validated beyond readability: call ``controlarm.validate.validate_sources``.

    Raises
    ------
    InputError
        The source does not exist, or is neither a folder nor a DuckDB file.
    DataContractError
        A file cannot be read (corrupt Parquet, CSV with a bad header or ragged rows, not UTF-8),
        or a table has both a CSV and a Parquet file. All such problems are reported together.

    Notes
    -----
    Row numbers in later messages count data rows from 1 (a CSV header line is not counted), the
    same as a pandas index plus one.
    """
    omop = None
    if model == "omop":
        from .omop import load_concept_map

        omop = (load_concept_map(omop_concepts, base_dir=base_dir), float(max_gap_hours))
    engine = _engine_url(source)
    if engine is not None:
        from ._engines import open_engine_source

        return open_engine_source(engine, str(source), base_dir, omop)
    path = _resolve(source, base_dir)
    if not path.exists():
        rel = f" (resolved against {base_dir})" if base_dir is not None and not Path(str(source)).is_absolute() else ""
        raise InputError(
            f"data source {path} does not exist{rel}. Fix: set data.source to the folder holding "
            "the table files (patient.csv, hospitalization.csv, ...) or to a .duckdb file."
        )
    if path.is_dir():
        kind = "folder"
    elif path.suffix.lower() in _DUCKDB_SUFFIXES:
        kind = "duckdb"
    else:
        raise InputError(
            f"data source {path} is a file but not a DuckDB database (.duckdb or .db). "
            "Fix: point data.source at the folder that holds the table files."
        )

    config = duckdb_config()
    try:
        con = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:
        raise InputError(
            f"DuckDB refused the settings {config} from the environment ({_duckdb_error_text(exc)}). Fix: set "
            "CONTROLARM_MEMORY_LIMIT like 3GB, CONTROLARM_THREADS to a whole number and CONTROLARM_TEMP_DIR to "
            "a writable folder, or unset them."
        ) from None
    try:
        if omop is not None:
            from ._engines import open_omop_duckdb

            return open_omop_duckdb(con, path, kind, omop)
        return _open(con, path, kind)
    except BaseException:
        con.close()
        raise


def _open(con, path: Path, kind: str) -> Sources:
    con.execute("SET TimeZone = 'UTC'")
    problems: list[str] = []
    warnings: list[str] = []
    files: dict[str, Path] = {}

    if kind == "folder":
        found, problems, warnings = _folder_files(path)
        for name, (file, fmt) in found.items():
            register = _register_parquet if fmt == "parquet" else _register_csv
            errs = register(con, TABLES[name], file)
            if errs:
                problems += errs
            else:
                files[name] = file
        where_absent = "no {t}.parquet or {t}.csv in " + str(path)
    else:
        try:
            con.execute(f"ATTACH {_lit(str(path))} AS src (READ_ONLY)")
            in_file = {
                r[0].lower(): r[0]
                for r in con.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_catalog = 'src' AND table_schema = 'main'"
                ).fetchall()
            }
        except duckdb.Error as exc:
            raise DataContractError(
                [
                    f"{path.name}: cannot be opened as a DuckDB database ({_duckdb_error_text(exc)}). "
                    "Fix: check that it is a DuckDB file written by a compatible DuckDB version, or "
                    "export the tables to a folder of Parquet files."
                ]
            ) from None
        for name in TABLES:
            if name in in_file:
                errs = _register_duckdb_table(con, TABLES[name], in_file[name], path.name)
                if errs:
                    problems += errs
                else:
                    files[name] = path
        where_absent = "no table {t} in " + str(path)

    if problems:
        raise DataContractError(problems)
    return _finish(con, files, warnings, where_absent, path.name, location=path, kind=kind)


def _finish(con, files: dict, warnings: list[str], where_absent: str, label: str, *, location, kind: str) -> Sources:
    """Register the typed relations of every contract table and build :class:`Sources`."""
    raw_columns: dict[str, tuple[str, ...]] = {}
    raw_types: dict[str, dict[str, str]] = {}
    for name in [t for t in files if t in TABLES]:  # files may also list an OMOP source's CDM files
        raw_types[name] = {k: v for k, v in _describe(con, _q(raw_relation(name))).items() if k != ROW_COLUMN}
        raw_columns[name] = tuple(raw_types[name])

    absent = tuple(t for t in TABLES if t not in files)
    for t in absent:
        if not TABLES[t].required_table:
            warnings.append(f"{t}: optional table not found ({where_absent.format(t=t)}); treated as empty.")

    try:
        for name, schema in TABLES.items():
            _register_typed(con, schema, raw_types.get(name))
    except duckdb.Error as exc:
        raise DataContractError(
            [f"{label}: the tables could not be registered ({_duckdb_error_text(exc)}). Fix: check column types."]
        ) from None

    row_counts = {t: int(con.execute(f"SELECT count(*) FROM {_q(typed_relation(t))}").fetchall()[0][0]) for t in TABLES}
    return Sources(
        con=con,
        tables=tuple(TABLES),
        files=files,
        location=location,
        warnings=tuple(warnings),
        row_counts=row_counts,
        kind=kind,
        absent=absent,
        raw_columns=raw_columns,
        raw_types=raw_types,
    )


# ---------------------------------------------------------------------------------------------
# Engines other than DuckDB and OMOP sources live in ._engines; these two are shared
# ---------------------------------------------------------------------------------------------

_ENGINE_SCHEMES = {"postgresql": "postgresql", "postgres": "postgresql", "spark": "spark"}


def _engine_url(source) -> str | None:
    text = str(source)
    if "://" not in text:
        return None
    return _ENGINE_SCHEMES.get(text.partition("://")[0].lower())


def _describe(con, relation: str) -> dict[str, str]:
    """Column -> DuckDB type name of ``relation`` on any engine."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        return {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
    table = con.execute(f"SELECT * FROM {relation} LIMIT 0").arrow()
    probe = duckdb.connect(":memory:")
    try:
        rel = probe.from_arrow(table)
        return {n: str(t) for n, t in zip(rel.columns, rel.types)}
    finally:
        probe.close()


def _register_raw_views(con, found: dict[str, str], label: str,
                        number: str | dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """``_raw_<t>`` views over the relations ``found`` (contract table -> relation), columns renamed to
    their canonical spelling and numbered by ``number`` (SQL, or table -> SQL). Returns (table ->
    columns found there as named, problems)."""
    problems: list[str] = []
    ok: dict[str, str] = {}
    for name, ref in found.items():
        names = list(_describe(con, ref))
        canon, errs = _canonical_names(TABLES[name], names, f"{label}:{name}")
        if errs:
            problems += errs
            continue
        select = ", ".join(f"{_q(n)} AS {_q(c)}" for n, c in zip(names, canon))
        row = number[name] if isinstance(number, dict) else number
        con.execute(f"CREATE VIEW {_q(raw_relation(name))} AS SELECT {row} AS {ROW_COLUMN}, {select} FROM {ref}")
        ok[name] = ref
    return ok, problems
