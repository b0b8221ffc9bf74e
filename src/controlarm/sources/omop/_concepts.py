"""The CLIF <-> OMOP concept map: shipped as data (``concepts.csv``), extended from the study file.

Room: ``sources`` (OMOP adapter). See ``CONCEPTS.md`` beside the CSV for the source of every row.
"""

from __future__ import annotations

import csv
import io
from importlib.resources import files
from pathlib import Path

import pandas as pd

from ...errors import InputError

__all__ = ["CONCEPT_COLUMNS", "CONCEPT_MAP_RELATION", "load_concept_map"]

#: Columns of concepts.csv (and of a user's extra concept file), in order.
CONCEPT_COLUMNS = ("clif_table", "clif_field", "clif_value", "omop_domain", "concept_id", "vocabulary_id",
                   "concept_code", "concept_name", "unit_qualifier", "note")
#: Name under which the engine registers the concept map for the mapping SQL.
CONCEPT_MAP_RELATION = "_omop_concept_map"

_REQUIRED = ("clif_table", "clif_field", "clif_value", "concept_id")


def _read(text: str, where: str) -> pd.DataFrame:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        return pd.DataFrame(columns=list(CONCEPT_COLUMNS))
    header = list(rows[0].keys())
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise InputError(f"{where}: concept file lacks column(s) {', '.join(missing)} (has {', '.join(header)}). "
                         f"Fix: use the columns of the shipped concepts.csv: {', '.join(CONCEPT_COLUMNS)}.")
    unknown = [c for c in header if c not in CONCEPT_COLUMNS]
    if unknown:
        raise InputError(f"{where}: unknown column(s) {', '.join(unknown)}. Fix: keep to {', '.join(CONCEPT_COLUMNS)}.")
    df = pd.DataFrame(rows).reindex(columns=list(CONCEPT_COLUMNS))
    bad = []
    for i, v in enumerate(df["concept_id"], start=2):
        try:
            int(str(v).strip())
        except ValueError:
            bad.append(f"line {i}: {v!r}")
    if bad:
        raise InputError(f"{where}: concept_id must be an integer; got {', '.join(bad[:5])}. Fix: give the OMOP concept_id.")
    empty = [str(i) for i, r in enumerate(df.itertuples(), start=2)
             if not all(str(getattr(r, c) or "").strip() for c in ("clif_table", "clif_field", "clif_value"))]
    if empty:
        raise InputError(f"{where}: clif_table, clif_field and clif_value must not be empty (line(s) {', '.join(empty[:5])}).")
    df["concept_id"] = df["concept_id"].map(lambda v: int(str(v).strip())).astype("int64")
    for c in CONCEPT_COLUMNS:
        if c != "concept_id":
            df[c] = df[c].map(lambda v: None if v is None or pd.isna(v) or str(v).strip() == "" else str(v).strip())
    return df


def load_concept_map(extra: str | Path | None = None, *, base_dir: Path | None = None) -> pd.DataFrame:
    """The concept map: the shipped rows, with a user's extra file applied.

    Parameters
    ----------
    extra : str or Path, optional
        A CSV with the same columns as ``concepts.csv`` (``[data.omop] concepts`` in the study
        file). A row replaces the shipped row with the same ``clif_table``, ``clif_field`` and
        ``concept_id``; other rows are added (after the shipped ones, so the shipped row of a CLIF
        value stays the one the exporter writes unless replaced).
    base_dir : Path, optional
        Folder a relative ``extra`` is resolved against (the study file's folder).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CONCEPT_COLUMNS` plus ``map_order`` (row order, used to pick the row the
        exporter writes for a CLIF value).

    Raises
    ------
    InputError
        The extra file is missing or malformed, or a concept id names two different CLIF values
        of the same (clif_table, clif_field), which would make reading ambiguous.
    """
    shipped = _read(files("controlarm.sources.omop").joinpath("concepts.csv").read_text(encoding="utf-8"),
                    "concepts.csv (shipped)")
    df = shipped
    if extra is not None:
        path = Path(extra).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        if not path.is_file():
            raise InputError(f"data.omop.concepts: {path} does not exist. Fix: give the path of your concept CSV "
                             "(relative to the study file).")
        user = _read(path.read_text(encoding="utf-8-sig"), path.name)
        key = ["clif_table", "clif_field", "concept_id"]
        twice = user[user.duplicated(key, keep=False)]
        if len(twice):
            r = twice.iloc[0]
            raise InputError(f"{path.name}: concept_id {r.concept_id} appears {len(twice)} times for "
                             f"{r.clif_table}.{r.clif_field}. Fix: keep one row per (clif_table, clif_field, concept_id).")
        replaced = shipped.merge(user[key], on=key, how="left", indicator=True)["_merge"] == "both"
        kept = shipped[~replaced.to_numpy()].copy()
        # A replaced row keeps its place, so "first row of a value" stays stable.
        repl = shipped[replaced.to_numpy()][key].merge(user, on=key, how="left")
        repl.index = shipped.index[replaced.to_numpy()]
        merged = pd.concat([kept, repl]).sort_index()
        added = user.merge(shipped[key], on=key, how="left", indicator=True)
        added = added[added["_merge"] == "left_only"].drop(columns="_merge")
        df = pd.concat([merged, added], ignore_index=True)
    df = df.reset_index(drop=True)
    df["map_order"] = range(len(df))
    clash = (df.groupby(["clif_table", "clif_field", "concept_id"])["clif_value"].nunique().loc[lambda s: s > 1])
    if len(clash):
        t, f, c = clash.index[0]
        values = sorted(df[(df.clif_table == t) & (df.clif_field == f) & (df.concept_id == c)].clif_value)
        raise InputError(f"concept map: concept_id {c} maps {t}.{f} to {len(values)} values ({', '.join(values)}); "
                         "reading OMOP would be ambiguous. Fix: keep one CLIF value per concept id.")
    dup = df.duplicated(["clif_table", "clif_field", "clif_value", "concept_id"])
    return df[~dup].reset_index(drop=True).assign(map_order=lambda d: range(len(d)))
