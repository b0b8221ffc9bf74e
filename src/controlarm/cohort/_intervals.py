"""Interval SQL shared by the cohort, features and outcomes rooms' engine queries.

Why our own SQL: CLIF records device changes as events ("this device from recorded_dttm on"), and
no library turns those events into state intervals the way every ICU endpoint needs: a record
holds until the next record of the same hospitalization, at most ``max_gap_hours``, and never past
discharge. Every room that asks "what support was the patient on at time t" uses this one
definition, so index dates, baseline covariates and outcomes agree for both arms.
"""

from __future__ import annotations

__all__ = ["device_intervals_sql", "ecmo_intervals_sql", "sql_str", "sql_list"]


def sql_str(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


def device_intervals_sql(max_gap_hours: float) -> str:
    """Respiratory-support state intervals: ``hospitalization_id, device_category, start_dttm, end_dttm``.

    Records at the same instant are ordered by device_category so the result is a total order
    (engines otherwise disagree on ties).
    """
    gap = float(max_gap_hours)
    return f"""
        SELECT r.hospitalization_id, r.device_category,
               r.recorded_dttm AS start_dttm,
               least(
                   coalesce(lead(r.recorded_dttm) OVER w, h.discharge_dttm),
                   r.recorded_dttm + to_microseconds(CAST({gap} * 3600e6 AS BIGINT)),
                   h.discharge_dttm
               ) AS end_dttm
        FROM respiratory_support r
        JOIN hospitalization h USING (hospitalization_id)
        WINDOW w AS (PARTITION BY r.hospitalization_id ORDER BY r.recorded_dttm, r.device_category)
    """


def ecmo_intervals_sql(max_gap_hours: float) -> str:
    """ECMO state intervals from ``ecmo_mcs`` (rows whose device_category names ECMO)."""
    gap = float(max_gap_hours)
    return f"""
        SELECT e.hospitalization_id, e.device_category,
               e.recorded_dttm AS start_dttm,
               least(
                   coalesce(lead(e.recorded_dttm) OVER w, h.discharge_dttm),
                   e.recorded_dttm + to_microseconds(CAST({gap} * 3600e6 AS BIGINT)),
                   h.discharge_dttm
               ) AS end_dttm
        FROM ecmo_mcs e
        JOIN hospitalization h USING (hospitalization_id)
        WHERE upper(e.device_category) LIKE '%ECMO%'
        WINDOW w AS (PARTITION BY e.hospitalization_id ORDER BY e.recorded_dttm, e.device_category)
    """
