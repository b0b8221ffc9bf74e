"""Per-patient trajectories relative to the index, for figures (swimmer plots, lab curves).

Same interval definitions as the endpoints (``cohort._intervals``), so a picture never disagrees
with a number. Times are days from each patient's index (floats); nothing here carries a calendar
date, so the report can show them without revealing when anyone was in hospital.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..cohort._intervals import device_intervals_sql, ecmo_intervals_sql, sql_list

if TYPE_CHECKING:
    from ..sources import Sources
    from ..spec import Study

__all__ = ["derive_trajectories"]


def derive_trajectories(sources: "Sources", matched: pd.DataFrame, study: "Study",
                        *, lab_categories: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
    """Support intervals, daily labs and clinical events of the matched patients, in days from index.

    Parameters
    ----------
    sources : Sources
    matched : DataFrame
        ``set_id, patient_id, role, hospitalization_id, index_time``.
    study : Study
    lab_categories : tuple of str, optional
        Labs to keep; by default the day-N labs of ``[[outcomes.labs]]`` plus ``crp``.

    Returns
    -------
    dict
        ``"support"``, ``"labs"``, ``"events"`` as described on :class:`controlarm._run.StudyRun`.
    """
    con = sources.con
    con.register("_traj_df", matched[["set_id", "patient_id", "role", "hospitalization_id", "index_time"]])
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _traj AS SELECT * FROM _traj_df")
    finally:
        con.unregister("_traj_df")
    horizon = max(study.outcomes.survival_days or (study.outcomes.free_days_horizon,))
    gap = study.outcomes.max_gap_hours
    cats = lab_categories or tuple(dict.fromkeys([lab.category for lab in study.outcomes.labs] + ["crp"]))
    days = "(epoch_us({t}) - epoch_us(m.index_time)) / 86400000000.0"
    # the matched stays: every scan below is cut to them before its windows
    stays = "SELECT DISTINCT hospitalization_id FROM _traj"
    # Consecutive records of the same category are merged into one episode (gaps and islands),
    # so a swimmer plot draws a handful of bars rather than one per charted hour.
    support = con.execute(f"""
        WITH s AS (
            SELECT hospitalization_id, 'device' AS kind, device_category AS category, start_dttm, end_dttm
                FROM ({device_intervals_sql(gap, only=stays)})
            UNION ALL
            SELECT hospitalization_id, 'ecmo', device_category, start_dttm, end_dttm
                FROM ({ecmo_intervals_sql(gap, only=stays)})
            UNION ALL
            SELECT hospitalization_id, 'icu', location_category, in_dttm, out_dttm FROM adt
                WHERE location_category = 'icu' AND hospitalization_id IN ({stays})
        ),
        marked AS (
            SELECT *, CASE WHEN lag(category) OVER w = category AND lag(end_dttm) OVER w = start_dttm
                           THEN 0 ELSE 1 END AS new_episode
            FROM s WHERE end_dttm > start_dttm
            WINDOW w AS (PARTITION BY hospitalization_id, kind ORDER BY start_dttm, category)
        ),
        numbered AS (
            SELECT *, sum(new_episode) OVER (PARTITION BY hospitalization_id, kind ORDER BY start_dttm, category
                                             ROWS UNBOUNDED PRECEDING) AS episode
            FROM marked
        ),
        episodes AS (
            SELECT hospitalization_id, kind, category, min(start_dttm) AS start_dttm, max(end_dttm) AS end_dttm
            FROM numbered GROUP BY hospitalization_id, kind, episode, category
        )
        SELECT m.patient_id, m.role, m.set_id, s.kind, s.category,
               {days.format(t='s.start_dttm')} AS start_day, {days.format(t='s.end_dttm')} AS end_day
        FROM _traj m JOIN episodes s USING (hospitalization_id)
        WHERE {days.format(t='s.end_dttm')} > -1 AND {days.format(t='s.start_dttm')} < {horizon}
        ORDER BY m.set_id, m.role DESC, m.patient_id, s.kind, start_day, s.category
    """).df()
    labs = con.execute(f"""
        SELECT m.patient_id, m.role, m.set_id, l.lab_category,
               CAST(floor({days.format(t='l.lab_collect_dttm')}) AS INTEGER) AS day,
               l.value_harmonised AS value
        FROM _traj m JOIN labs l USING (hospitalization_id)
        WHERE l.lab_category IN {sql_list(cats)} AND l.value_harmonised IS NOT NULL
          AND {days.format(t='l.lab_collect_dttm')} >= -1 AND {days.format(t='l.lab_collect_dttm')} < {horizon}
        ORDER BY m.set_id, m.role DESC, m.patient_id, l.lab_category, l.lab_collect_dttm, value
    """).df()
    events = con.execute(f"""
        SELECT * FROM (
            SELECT m.patient_id, m.role, m.set_id, 'administration' AS kind,
                   {days.format(t='a.admin_dttm')} AS day, a.product AS label
            FROM _traj m JOIN administration a USING (patient_id)
            UNION ALL
            SELECT m.patient_id, m.role, m.set_id, 'adverse_event',
                   {days.format(t='e.onset_dttm')}, e.term
            FROM _traj m JOIN adverse_event e USING (patient_id)
            UNION ALL
            SELECT m.patient_id, m.role, m.set_id, 'death', {days.format(t='p.death_dttm')}, 'death'
            FROM _traj m JOIN patient p USING (patient_id) WHERE p.death_dttm IS NOT NULL
            UNION ALL
            SELECT m.patient_id, m.role, m.set_id, 'discharge', {days.format(t='h.discharge_dttm')},
                   coalesce(h.discharge_category, 'discharge')
            FROM _traj m JOIN hospitalization h USING (hospitalization_id)
        ) WHERE day < {horizon}
        ORDER BY set_id, role DESC, patient_id, day, kind, label
    """).df()
    return {"support": support, "labs": labs, "events": events}
