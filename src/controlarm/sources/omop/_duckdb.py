"""Register an OMOP folder (plus the trial tables) in DuckDB and create the CLIF-named views.

Room: ``sources`` (OMOP adapter). The engine layer routes the same SQL (``_sql``) to PostgreSQL
and Spark; this module is the DuckDB path that works today, and what the round-trip test uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ...errors import DataContractError, InputError
from ._cdm import CDM_TABLES, TRIAL_TABLES
from ._concepts import CONCEPT_COLUMNS, CONCEPT_MAP_RELATION, load_concept_map
from ._sql import CLIF_VIEW_TABLES, clif_views_sql, mapping_report_sql

__all__ = ["OmopMapping", "register_omop", "write_clif"]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


@dataclass(frozen=True)
class OmopMapping:
    """What :func:`register_omop` registered and what the mapping left out.

    Attributes
    ----------
    views : dict
        CLIF table -> name of the view created for it.
    omop_files : dict
        OMOP table -> file read (absent tables are registered empty and not listed).
    trial_files : dict
        Trial table -> file read.
    issues : tuple of (str, int or None, int)
        (message, concept_id or None, rows) for every non-zero count of ``mapping_report_sql``.
    """

    views: dict[str, str]
    omop_files: dict[str, Path]
    trial_files: dict[str, Path]
    issues: tuple[tuple[str, int | None, int], ...]

    def messages(self, top: int = 5) -> tuple[str, ...]:
        """One line per kind of issue: the rows in total and the most frequent concepts."""
        grouped: dict[str, list[tuple[int | None, int]]] = {}
        for msg, cid, n in self.issues:
            grouped.setdefault(msg, []).append((cid, n))
        out = []
        for msg, rows in grouped.items():
            total = sum(n for _, n in rows)
            by = sorted((r for r in rows if r[0] is not None), key=lambda r: (-r[1], r[0]))
            tail = ""
            if by:
                tail = " (concept_id: rows " + ", ".join(f"{c}: {n}" for c, n in by[:top])
                tail += f", and {len(by) - top} more concepts)" if len(by) > top else ")"
            out.append(f"OMOP: {total} {msg}{tail}.")
        return tuple(out)


def _find(folder: Path, name: str) -> Path | None:
    pq, cs = folder / f"{name}.parquet", folder / f"{name}.csv"
    if pq.is_file() and cs.is_file():
        raise DataContractError([f"{name}: both {name}.csv and {name}.parquet are in {folder}. Fix: keep one."])
    return pq if pq.is_file() else cs if cs.is_file() else None


def _reader(path: Path) -> str:
    if path.suffix == ".parquet":
        return f"read_parquet({_lit(str(path))})"
    return f"read_csv({_lit(str(path))}, header = true, all_varchar = true)"


def _register_omop_table(con, name: str, path: Path | None) -> None:
    cols = CDM_TABLES[name]
    if path is None:
        con.execute(f"CREATE TABLE {_q(name)} ({', '.join(f'{_q(c)} {t}' for c, t in cols)})")
        return
    found = {r[0].lower(): r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_reader(path)}").fetchall()}
    parts = []
    for c, t in cols:
        if c in found:
            parts.append(f"TRY_CAST({_q(found[c])} AS {t}) AS {_q(c)}")
        else:
            parts.append(f"CAST(NULL AS {t}) AS {_q(c)}")
    con.execute(f"CREATE VIEW {_q(name)} AS SELECT {', '.join(parts)} FROM {_reader(path)}")


def register_concept_map(con, concept_map: pd.DataFrame) -> None:
    """Register ``concept_map`` as the table ``_omop_concept_map`` (replacing an earlier one)."""
    frame = concept_map.reindex(columns=list(CONCEPT_COLUMNS) + ["map_order"]).copy()
    frame["concept_id"] = frame["concept_id"].astype("int64")
    frame["map_order"] = range(len(frame))
    con.register("_omop_concept_map_df", frame)
    con.execute(f"CREATE OR REPLACE TABLE {CONCEPT_MAP_RELATION} AS SELECT * FROM _omop_concept_map_df")
    con.unregister("_omop_concept_map_df")


def register_omop(con: duckdb.DuckDBPyConnection, folder: str | Path | None,
                  concept_map: pd.DataFrame | None = None, *, max_gap_hours: float = 24,
                  trial_folder: str | Path | None = None, prefix: str = "") -> OmopMapping:
    """Register OMOP tables and the trial tables, and create one CLIF view per CLIF table.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Its ``TimeZone`` is set to UTC (OMOP datetimes are read as UTC).
    folder : path or None
        Folder of ``<cdm_table>.parquet`` / ``.csv`` (person, visit_occurrence, visit_detail,
        measurement, procedure_occurrence, device_exposure, drug_exposure, condition_occurrence,
        death, care_site, concept_ancestor, ...). None: the OMOP tables are already in ``con``
        under their CDM names. An absent table is registered empty.
    concept_map : DataFrame, optional
        From :func:`load_concept_map`; default: the shipped map.
    max_gap_hours : float
        The study's ``outcomes.max_gap_hours`` (see :func:`clif_views_sql`).
    trial_folder : path, optional
        Where enrollment / administration / adverse_event are; default ``folder``. They are
        registered under their own names (with ``prefix``), unchanged.
    prefix : str
        Prefix of the view names (``""``: the views are called ``patient``, ``labs``, ...).

    Returns
    -------
    OmopMapping
        The view names, the files read and the counted issues (:meth:`OmopMapping.messages`).

    Raises
    ------
    InputError
        ``folder`` does not exist.
    """
    con.execute("SET TimeZone = 'UTC'")
    if concept_map is None:
        concept_map = load_concept_map()
    register_concept_map(con, concept_map)
    omop_files: dict[str, Path] = {}
    trial_files: dict[str, Path] = {}
    if folder is not None:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"OMOP source {folder} is not a folder. Fix: give the folder holding person.parquet, "
                             "visit_occurrence.parquet, ...")
        for name in CDM_TABLES:
            path = _find(folder, name)
            _register_omop_table(con, name, path)
            if path is not None:
                omop_files[name] = path
    tf = Path(trial_folder) if trial_folder is not None else (Path(folder) if folder is not None else None)
    if tf is not None:
        for name in TRIAL_TABLES:
            path = _find(tf, name)
            if path is not None:
                con.execute(f"CREATE VIEW {_q(prefix + name)} AS SELECT * FROM {_reader(path)}")
                trial_files[name] = path
    views = {}
    for table, sql in clif_views_sql(max_gap_hours).items():
        views[table] = prefix + table
        con.execute(f"CREATE VIEW {_q(prefix + table)} AS {sql}")
    issues = []
    for msg, sql in mapping_report_sql(max_gap_hours).items():
        for cid, n in con.execute(sql).fetchall():
            if n:
                issues.append((msg, None if cid is None else int(cid), int(n)))
    return OmopMapping(views=views, omop_files=omop_files, trial_files=trial_files, issues=tuple(issues))


_ORDER = {
    "patient": "patient_id", "hospitalization": "hospitalization_id",
    "adt": "hospitalization_id, in_dttm, location_category",
    "vitals": "hospitalization_id, recorded_dttm, vital_category",
    "labs": "hospitalization_id, lab_collect_dttm, lab_category, reference_unit",
    "respiratory_support": "hospitalization_id, recorded_dttm, device_category",
    "medication_admin_intermittent": "hospitalization_id, admin_dttm, med_category",
    "ecmo_mcs": "hospitalization_id, recorded_dttm, device_category",
    "hospital_diagnosis": "hospitalization_id, diagnosis_code",
}


def write_clif(con: duckdb.DuckDBPyConnection, out_folder: str | Path, mapping: OmopMapping) -> dict[str, Path]:
    """Write every CLIF view of ``mapping`` (and the trial tables) as ``<table>.parquet``.

    Rows are ordered by id and time (the views have no order), so the same OMOP input gives the
    same files. Returns table -> file written.
    """
    out = Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for table, view in mapping.views.items():
        path = out / f"{table}.parquet"
        con.execute(f"COPY (SELECT * FROM {_q(view)} ORDER BY {_ORDER[table]}) TO {_lit(str(path))} (FORMAT parquet)")
        written[table] = path
    for table, src in mapping.trial_files.items():
        path = out / f"{table}.parquet"
        con.execute(f"COPY (SELECT * FROM {_reader(src)}) TO {_lit(str(path))} (FORMAT parquet)")
        written[table] = path
    return written
