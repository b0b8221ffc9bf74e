"""The `features` room: baseline covariates as of each patient's index, computed in the engine.

One SQL query per covariate over the cohort (registered in the engine as ``_cohort``, with its row
number ``_row``), each returning ``_row, value``; keyed by row, so a patient may appear at several
index times (risk-set candidates evaluated at each treated patient's landmark). Labs and vitals take the last value in the look-back window
``[index - lookback, index]``; when several values share the latest time, the largest value wins
(a total order, so engines agree). Values are those harmonised by the sources room.

Why our own code: "last value before time zero, per patient, in a window" over CLIF tables is a
derivation no library offers; it must be identical for trial and pool patients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..cohort._intervals import device_intervals_sql, sql_list, sql_str, us_interval
from ..errors import InputError

if TYPE_CHECKING:
    from ..cohort import Cohort
    from ..sources import Sources
    from ..spec import Covariate, Study

__all__ = ["derive_baseline"]


def derive_baseline(sources: "Sources", cohort: "Cohort", study: "Study") -> pd.DataFrame:
    """Baseline covariates of every eligible patient, as of the index.

    Returns
    -------
    DataFrame
        ``patient_id, group`` plus one float column per covariate of ``[[features.covariates]]``
        (binary covariates as 0.0/1.0); NaN where no value exists in the window. Rows follow
        ``cohort.patients``. ``attrs["kinds"]`` maps covariate -> "binary"/"continuous".
    """
    con = sources.con
    cohort_df = cohort.patients[["patient_id", "hospitalization_id", "group", "index_time"]].reset_index(drop=True).copy()
    cohort_df["_row"] = range(len(cohort_df))
    con.register("_cohort_df", cohort_df)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _cohort AS SELECT * FROM _cohort_df")
    finally:
        con.unregister("_cohort_df")
    out = cohort.patients[["patient_id", "group"]].reset_index(drop=True).copy()
    for cov in study.features.covariates:
        lookback = cov.lookback_hours or study.features.default_lookback_hours
        sql = _covariate_sql(cov, lookback, study)
        values = con.execute(sql).df()
        column = np.full(len(out), np.nan)
        column[values["_row"].to_numpy(dtype=np.int64)] = pd.to_numeric(values["value"], errors="coerce").to_numpy(dtype=float)
        out[cov.name] = column
    out = out.reset_index(drop=True)
    out.attrs["kinds"] = {c.name: ("binary" if c.binary else "continuous") for c in study.features.covariates}
    return out


def _window(lookback_hours: float, time_col: str) -> str:
    us = int(round(lookback_hours * 3600e6))
    return f"{time_col} <= c.index_time AND {time_col} >= c.index_time - {us_interval(us)}"


def _covariate_sql(cov: "Covariate", lookback: float, study: "Study") -> str:
    kind = cov.kind
    if kind == "age":
        return """
            SELECT c._row,
                   date_diff('day', p.birth_date, CAST(c.index_time AS DATE)) / 365.25 AS value
            FROM _cohort c JOIN patient p USING (patient_id)"""
    if kind == "sex":
        return """
            SELECT c._row,
                   CASE p.sex_category WHEN 'Male' THEN 1.0 WHEN 'Female' THEN 0.0 END AS value
            FROM _cohort c JOIN patient p USING (patient_id)"""
    if kind == "days_since_admission":
        return """
            SELECT c._row,
                   (epoch_us(c.index_time) - epoch_us(h.admission_dttm)) / 86400000000.0 AS value
            FROM _cohort c JOIN hospitalization h USING (hospitalization_id)"""
    if kind == "vital":
        return _last_value_sql("vitals", "recorded_dttm", "vital_value", "vital_category", cov.category, lookback)
    if kind == "lab":
        _check_unit(cov)
        return _last_value_sql("labs", "lab_collect_dttm", "value_harmonised", "lab_category", cov.category, lookback)
    if kind == "bmi":
        w = _last_value_sql("vitals", "recorded_dttm", "vital_value", "vital_category", "weight_kg", lookback)
        h = _last_value_sql("vitals", "recorded_dttm", "vital_value", "vital_category", "height_cm", lookback)
        return f"""
            SELECT w._row, w.value / ((h.value / 100.0) * (h.value / 100.0)) AS value
            FROM ({w}) w JOIN ({h}) h USING (_row) WHERE h.value > 0"""
    if kind == "device_at_index":
        # cut to the cohort's stays before the holding window (the warehouse's other stays cannot
        # hold a device at a cohort patient's index)
        dev = device_intervals_sql(study.outcomes.max_gap_hours, only="SELECT hospitalization_id FROM _cohort")
        return f"""
            WITH dev AS ({dev})
            SELECT c._row,
                   max(CASE WHEN d.device_category IN {sql_list(cov.devices or ())} THEN 1.0 ELSE 0.0 END) AS value
            FROM _cohort c
            LEFT JOIN dev d ON d.hospitalization_id = c.hospitalization_id
                 AND d.start_dttm <= c.index_time AND c.index_time < d.end_dttm
            GROUP BY c._row"""
    if kind == "diagnosis":
        likes = " OR ".join(
            f"replace(upper(d.diagnosis_code), '.', '') LIKE {sql_str(code.replace('.', '').upper() + '%')}"
            for code in (cov.codes or ())
        )
        return f"""
            SELECT c._row,
                   CASE WHEN count(d.diagnosis_code) FILTER (WHERE {likes}) > 0 THEN 1.0 ELSE 0.0 END AS value
            FROM _cohort c LEFT JOIN hospital_diagnosis d USING (hospitalization_id)
            GROUP BY c._row"""
    raise InputError(f"features.covariates: kind {kind!r} is not supported")  # pragma: no cover - spec forbids it


def _last_value_sql(table: str, time_col: str, value_col: str, cat_col: str, category: str | None, lookback: float) -> str:
    return f"""
        SELECT _row, value FROM (
            SELECT c._row, t.{value_col} AS value,
                   row_number() OVER (PARTITION BY c._row
                                      ORDER BY t.{time_col} DESC, t.{value_col} DESC) AS rn
            FROM _cohort c JOIN {table} t USING (hospitalization_id)
            WHERE t.{cat_col} = {sql_str(category or '')} AND t.{value_col} IS NOT NULL
              AND {_window(lookback, 't.' + time_col)}
        ) WHERE rn = 1"""


def _check_unit(cov: "Covariate") -> None:
    """Labs arrive harmonised (sources room); a covariate may only ask for that harmonised unit."""
    from ..sources import harmonised_unit

    want = (cov.unit or "").strip()
    have = harmonised_unit(cov.category or "")
    if want and have and _norm(want) != _norm(have):
        raise InputError(
            f"features.covariates `{cov.name}`: unit {want!r} differs from the unit {cov.category} is "
            f"harmonised to ({have!r}). Fix: set unit = {have!r}."
        )


def _norm(unit: str) -> str:
    return unit.replace("µ", "u").replace("μ", "u").replace(" FEU", "").replace("ng/mL", "ug/L").lower()
