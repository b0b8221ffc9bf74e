"""Engine-side reads of the safety room: the rows of the trial patients and matched controls only.

Room: ``safety``. Every scan of a warehouse table (``administration``, ``vitals``,
``adverse_event``, ``patient``, ``hospital_diagnosis``) runs in the engine with the patient list
bound as a parameter (never registered on the shared connection), and returns a small frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["read_administrations", "read_adverse_events", "read_deaths", "read_context_flags", "normalise_code"]


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def normalise_code(code: str) -> str:
    """An ICD-10 code or prefix as compared: dots and spaces removed, upper case."""
    return str(code).replace(".", "").replace(" ", "").strip().upper()


def _pts(patients: pd.DataFrame) -> str:
    """The (patient, hospitalization) pairs as a ``VALUES`` relation.

    A ``VALUES`` list rather than two ``unnest`` calls in one SELECT: DuckDB and PostgreSQL zip
    those, Spark crosses them. The list holds the few dozen patients of a study.
    """
    pairs = list(zip(patients["patient_id"], patients["hospitalization_id"]))
    if not pairs:
        return ("SELECT CAST(NULL AS VARCHAR) AS patient_id, CAST(NULL AS VARCHAR) AS hospitalization_id "
                "WHERE 1 = 0")
    rows = ", ".join(f"({_lit(p)}, {_lit(h)})" for p, h in pairs)
    return f"SELECT patient_id, hospitalization_id FROM (VALUES {rows}) AS v(patient_id, hospitalization_id)"


def read_administrations(sources, patients: pd.DataFrame, product: str) -> pd.DataFrame:
    """Administrations of ``product`` to ``patients``, with the last weight at or before each.

    Returns
    -------
    DataFrame
        ``patient_id, admin_dttm, dose, dose_unit, route, lot, weight_kg`` (weight from ``vitals``
        ``weight_kg`` of the patient's given hospitalization; NaN when none was recorded before).
    """
    sql = f"""
    WITH pts AS ({_pts(patients)}),
    adm AS (
        SELECT row_number() OVER (ORDER BY a.patient_id, a.admin_dttm, a.dose, a.lot) AS rid,
               a.patient_id, p.hospitalization_id, a.admin_dttm, a.dose, a.dose_unit, a.route, a.lot
        FROM administration AS a JOIN pts AS p ON a.patient_id = p.patient_id
        WHERE a.product = $product AND a.admin_dttm IS NOT NULL
    ),
    w AS (
        SELECT v.hospitalization_id, v.recorded_dttm, v.vital_value
        FROM vitals AS v JOIN pts AS p ON v.hospitalization_id = p.hospitalization_id
        WHERE v.vital_category = 'weight_kg' AND v.vital_value IS NOT NULL AND v.recorded_dttm IS NOT NULL
    ),
    aw AS (
        SELECT adm.*, w.vital_value AS weight_kg,
               row_number() OVER (PARTITION BY adm.rid ORDER BY w.recorded_dttm DESC, w.vital_value DESC) AS rn
        FROM adm LEFT JOIN w ON w.hospitalization_id = adm.hospitalization_id AND w.recorded_dttm <= adm.admin_dttm
    )
    SELECT patient_id, admin_dttm, dose, dose_unit, route, lot, weight_kg
    FROM aw WHERE rn = 1 ORDER BY rid
    """
    return sources.df(sql, {"product": product})


def read_adverse_events(sources, patient_ids: Sequence[str]) -> pd.DataFrame:
    """Adverse events of the given patients: ``patient_id, onset_dttm, term, soc, grade, serious,
    relatedness, outcome``."""
    sql = """
    SELECT e.patient_id, e.onset_dttm, e.term, e.soc, e.grade, e.serious, e.relatedness, e.outcome
    FROM adverse_event AS e
    WHERE list_contains($pids::VARCHAR[], e.patient_id)
    ORDER BY e.patient_id, e.onset_dttm, e.term
    """
    return sources.df(sql, {"pids": list(patient_ids)})


def read_deaths(sources, patient_ids: Sequence[str]) -> pd.DataFrame:
    """``patient_id, death_dttm`` of the given patients who have a death time."""
    sql = """
    SELECT patient_id, min(death_dttm) AS death_dttm FROM patient
    WHERE list_contains($pids::VARCHAR[], patient_id) AND death_dttm IS NOT NULL
    GROUP BY patient_id ORDER BY patient_id
    """
    return sources.df(sql, {"pids": list(patient_ids)})


def read_context_flags(sources, patients: pd.DataFrame, events) -> pd.DataFrame:
    """Per patient, whether a diagnosis of their hospitalization starts with an event's prefixes.

    Parameters
    ----------
    patients : DataFrame
        ``patient_id, hospitalization_id``.
    events : sequence of ContextEvent

    Returns
    -------
    DataFrame
        ``patient_id`` plus, for event i, ``any_i`` (any matching code) and ``new_i`` (a matching
        code with ``poa_present = 0``: not present on admission). Codes and prefixes are compared
        without dots and spaces, in upper case.
    """
    cols = []
    for i, ev in enumerate(events):
        prefixes = sorted({normalise_code(c) for c in ev.codes if normalise_code(c)})
        cond = " OR ".join(f"starts_with(d.code, {_lit(p)})" for p in prefixes) or "FALSE"
        cols.append(f"coalesce(bool_or({cond}), FALSE) AS any_{i}")
        cols.append(f"coalesce(bool_or(({cond}) AND d.poa_present = 0), FALSE) AS new_{i}")
    select = ", ".join(["p.patient_id"] + cols)
    sql = f"""
    WITH pts AS ({_pts(patients)}),
    d AS (
        SELECT hospitalization_id, upper(replace(replace(trim(diagnosis_code), '.', ''), ' ', '')) AS code,
               poa_present
        FROM hospital_diagnosis WHERE diagnosis_code IS NOT NULL
    )
    SELECT {select}
    FROM pts AS p LEFT JOIN d ON d.hospitalization_id = p.hospitalization_id
    GROUP BY p.patient_id ORDER BY p.patient_id
    """
    return sources.df(sql)
