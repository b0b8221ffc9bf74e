"""The `outcomes` room: endpoints relative to each patient's index, derived inside the engine.

Definitions (identical for both arms; day d = the 24-hour window [index + (d-1)·24h, index + d·24h)):

- **Alive at day N**: no death at or before index + N days. Deaths come from
  ``patient.death_dttm``; a patient without a death is known alive up to ``data.cutoff`` (or, with
  no cutoff, up to hospital discharge). Alive-at-N is missing when follow-up ends before day N.
- **Time to death**: days from index to death, censored at the last time known alive or at the
  largest survival horizon, whichever comes first.
- **Need for IMV**: IMV or ECMO at any time after index up to the largest survival horizon, among
  patients on neither at the index (missing otherwise).
- **Free days to day H** (IMV, HFNO, oxygen, ICU): the number of days d = 1..H on which the
  patient was never on the support (IMV: IMV or ECMO; HFNO: High Flow NC; oxygen: any device other
  than Room Air, or ECMO; ICU: an adt location of category icu), if alive at day H; a patient who
  dies by day H gets ``free_days_death_value`` (0 by default, -1 as an option). A device record
  holds until the next record, at most ``max_gap_hours`` and never past discharge; days after
  discharge alive count as free. Ventilator-free days follow Yehya et al. and Schoenfeld et al.
- **Lab at day N**: the harmonised value whose collection time is nearest to index + N days,
  within ± window; ties by earlier time, then by larger value (a total order).

Why our own code: no package computes free-days endpoints or windowed labs relative to an index
date from CLIF tables; these definitions are a reason controlarm exists.

References
----------
Yehya N, Harhay MO, Curley MAQ, Schoenfeld DA, Reeder RW. Reappraisal of ventilator-free days in
critical care research. Am J Respir Crit Care Med 2019;200:828-836. doi:10.1164/rccm.201810-2050CP
Schoenfeld DA, Bernard GR; ARDS Network. Statistical evaluation of ventilator-free days as an
efficacy measure in clinical trials of treatments for acute respiratory distress syndrome.
Crit Care Med 2002;30:1772-1777. doi:10.1097/00003246-200208000-00016
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..cohort._intervals import device_intervals_sql, ecmo_intervals_sql, sql_str
from ._endpoints import Endpoint

if TYPE_CHECKING:
    from ..sources import Sources
    from ..spec import Study

__all__ = ["derive_endpoints", "endpoint_definitions"]

_FREE_DAYS = {
    "imv": ("IMV", "IMV (or ECMO)", "device_category = 'IMV' OR kind = 'ecmo'"),
    "hfno": ("HFNO", "high-flow nasal oxygen", "device_category = 'High Flow NC'"),
    "oxygen": ("oxygen", "any oxygen support (any device other than Room Air, or ECMO)",
               "device_category <> 'Room Air' OR kind = 'ecmo'"),
    "icu": ("ICU", "an ICU location", "kind = 'icu'"),
}


def endpoint_definitions(study: "Study") -> tuple[Endpoint, ...]:
    """The endpoints a study asks for, in report order."""
    o = study.outcomes
    defs: list[Endpoint] = []
    horizon_max = max(o.survival_days) if o.survival_days else o.free_days_horizon
    for n in o.survival_days:
        defs.append(Endpoint(
            name=f"alive_d{n}", label=f"Alive at day {n}", kind="binary", column=f"alive_d{n}",
            definition=f"No death recorded at or before index + {n} days (patient.death_dttm).",
        ))
    if o.survival_days:
        defs.append(Endpoint(
            name="time_to_death", label=f"Time to death (to day {horizon_max})", kind="time_to_event",
            column="death_time_days", event_column="death_event",
            definition=(f"Days from index to death; censored at the last time known alive or at day "
                        f"{horizon_max}, whichever is first."),
        ))
    if o.need_imv:
        defs.append(Endpoint(
            name="need_imv", label="Needed IMV or ECMO after index", kind="binary", column="need_imv",
            definition=(f"IMV or ECMO at any time after index up to day {horizon_max}, among patients "
                        "on neither at index (missing for patients on IMV/ECMO at index)."),
            higher_is_better=False,
        ))
    h = o.free_days_horizon
    for key in o.free_days:
        short, words, _ = _FREE_DAYS[key]
        defs.append(Endpoint(
            name=f"{key}_free_days_{h}", label=f"{short}-free days to day {h}", kind="count",
            column=f"{key}_free_days_{h}",
            definition=(f"Days 1..{h} (24-hour windows from index) without {words}, if alive at day {h}; "
                        f"{o.free_days_death_value} if dead by day {h}."),
        ))
    for lab in o.labs:
        defs.append(Endpoint(
            name=f"{lab.category}_d{lab.day}", label=f"{lab.category.replace('_', '-')} at day {lab.day}",
            kind="continuous", column=f"{lab.category}_d{lab.day}", unit=lab.unit,
            definition=(f"{lab.category} value nearest to index + {lab.day} days within ±{lab.window_days:g} days "
                        "(ties: earlier time, then larger value); harmonised units."),
            higher_is_better=False,
        ))
    return tuple(defs)


def derive_endpoints(sources: "Sources", index: pd.DataFrame, study: "Study") -> pd.DataFrame:
    """Endpoints for the patients in ``index``.

    Parameters
    ----------
    sources : Sources
    index : DataFrame
        ``patient_id, hospitalization_id, index_time`` (UTC); one row per patient.
    study : Study

    Returns
    -------
    DataFrame
        ``patient_id`` plus one column per endpoint column of :func:`endpoint_definitions`, in the
        row order of ``index``.
    """
    con = sources.con
    con.register("_index_df", index[["patient_id", "hospitalization_id", "index_time"]])
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _outcome_index AS SELECT * FROM _index_df")
    finally:
        con.unregister("_index_df")
    o = study.outcomes
    out = index[["patient_id"]].copy().reset_index(drop=True)
    horizon_max = max(o.survival_days) if o.survival_days else o.free_days_horizon

    vital = con.execute(_vital_sql(study, horizon_max)).df().set_index("patient_id")
    for n in o.survival_days:
        out[f"alive_d{n}"] = out["patient_id"].map(vital[f"alive_d{n}"]).astype(float)
    if o.survival_days:
        out["death_time_days"] = out["patient_id"].map(vital["death_time_days"]).astype(float)
        out["death_event"] = out["patient_id"].map(vital["death_event"]).astype(float)
    if o.need_imv:
        need = con.execute(_need_imv_sql(study, horizon_max)).df().set_index("patient_id")
        out["need_imv"] = out["patient_id"].map(need["need_imv"]).astype(float)
    if o.free_days:
        free = con.execute(_free_days_sql(study)).df().set_index("patient_id")
        for key in o.free_days:
            col = f"{key}_free_days_{o.free_days_horizon}"
            out[col] = out["patient_id"].map(free[col]).astype(float)
    for lab in o.labs:
        labs = con.execute(_lab_sql(lab.category, lab.day, lab.window_days)).df()
        col = f"{lab.category}_d{lab.day}"
        out[col] = out["patient_id"].map(dict(zip(labs["patient_id"], labs["value"]))).astype(float)
    return out


def _days_us(days: float) -> str:
    return f"to_microseconds({int(round(days * 86400e6))})"


def _last_known_alive(study: "Study") -> str:
    if study.data.cutoff is not None:
        return f"TIMESTAMPTZ '{study.data.cutoff.isoformat()} 00:00:00+00'"
    return "h.discharge_dttm"


def _vital_sql(study: "Study", horizon: int) -> str:
    cols = []
    for n in study.outcomes.survival_days:
        at = f"i.index_time + {_days_us(n)}"
        cols.append(
            f"CASE WHEN p.death_dttm IS NOT NULL AND p.death_dttm <= {at} THEN 0 "
            f"WHEN coalesce(p.death_dttm, {_last_known_alive(study)}) >= {at} THEN 1 END AS alive_d{n}"
        )
    end = f"i.index_time + {_days_us(horizon)}"
    known = f"coalesce(p.death_dttm, {_last_known_alive(study)})"
    return f"""
        SELECT i.patient_id, {', '.join(cols)},
               CASE WHEN p.death_dttm IS NOT NULL AND p.death_dttm <= {end} THEN 1 ELSE 0 END AS death_event,
               epoch(least({known}, {end}) - i.index_time) / 86400.0 AS death_time_days
        FROM _outcome_index i
        JOIN patient p USING (patient_id)
        JOIN hospitalization h ON h.hospitalization_id = i.hospitalization_id
    """


def _support_sql(study: "Study") -> str:
    """Every support interval (device, ECMO, ICU stay) tagged by kind."""
    gap = study.outcomes.max_gap_hours
    return f"""
        SELECT hospitalization_id, 'device' AS kind, device_category, start_dttm, end_dttm
            FROM ({device_intervals_sql(gap)})
        UNION ALL
        SELECT hospitalization_id, 'ecmo' AS kind, device_category, start_dttm, end_dttm
            FROM ({ecmo_intervals_sql(gap)})
        UNION ALL
        SELECT hospitalization_id, 'icu' AS kind, NULL AS device_category, in_dttm, out_dttm
            FROM adt WHERE location_category = 'icu'
    """


def _need_imv_sql(study: "Study", horizon: int) -> str:
    end = f"i.index_time + {_days_us(horizon)}"
    return f"""
        WITH s AS ({_support_sql(study)}),
        invasive AS (SELECT * FROM s WHERE (kind = 'device' AND device_category = 'IMV') OR kind = 'ecmo')
        SELECT i.patient_id,
               CASE WHEN bool_or(v.start_dttm <= i.index_time AND i.index_time < v.end_dttm) THEN NULL
                    WHEN bool_or(v.end_dttm > i.index_time AND v.start_dttm < {end}) THEN 1
                    ELSE 0 END AS need_imv
        FROM _outcome_index i
        LEFT JOIN invasive v ON v.hospitalization_id = i.hospitalization_id AND v.end_dttm > v.start_dttm
        GROUP BY i.patient_id
    """


def _free_days_sql(study: "Study") -> str:
    o = study.outcomes
    h = o.free_days_horizon
    at_h = f"i.index_time + {_days_us(h)}"
    # Day offsets touched by an interval [s, e): floor((s - index)/1 day) .. ceil((e - index)/1 day) - 1,
    # clipped to 0..H-1. Days are counted with a distinct set per kind.
    per_kind = ",\n".join(
        f"count(DISTINCT d.day) FILTER (WHERE {cond}) AS busy_{key}"
        for key, (_, _, cond) in _FREE_DAYS.items() if key in o.free_days
    )
    free_cols = ",\n".join(
        f"CASE WHEN dead THEN {o.free_days_death_value} ELSE {h} - coalesce(b.busy_{key}, 0) END AS {key}_free_days_{h}"
        for key in o.free_days
    )
    return f"""
        WITH s AS ({_support_sql(study)}),
        clipped AS (
            SELECT i.patient_id, s.kind, s.device_category,
                   greatest(0, CAST(floor(epoch(s.start_dttm - i.index_time) / 86400.0) AS BIGINT)) AS d0,
                   least({h - 1}, CAST(ceil(epoch(s.end_dttm - i.index_time) / 86400.0) AS BIGINT) - 1) AS d1
            FROM _outcome_index i
            JOIN s ON s.hospitalization_id = i.hospitalization_id
            WHERE s.end_dttm > s.start_dttm AND s.end_dttm > i.index_time AND s.start_dttm < {at_h}
        ),
        d AS (SELECT patient_id, kind, device_category, unnest(range(d0, d1 + 1)) AS day FROM clipped WHERE d1 >= d0),
        b AS (SELECT patient_id, {per_kind} FROM d GROUP BY patient_id),
        vs AS (
            SELECT i.patient_id, (p.death_dttm IS NOT NULL AND p.death_dttm <= {at_h}) AS dead
            FROM _outcome_index i JOIN patient p USING (patient_id)
        )
        SELECT vs.patient_id, {free_cols}
        FROM vs LEFT JOIN b USING (patient_id)
    """


def _lab_sql(category: str, day: int, window_days: float) -> str:
    target = f"i.index_time + {_days_us(day)}"
    return f"""
        SELECT patient_id, value FROM (
            SELECT i.patient_id, l.value_harmonised AS value,
                   row_number() OVER (
                       PARTITION BY i.patient_id
                       ORDER BY abs(epoch(l.lab_collect_dttm - ({target}))), l.lab_collect_dttm, l.value_harmonised DESC
                   ) AS rn
            FROM _outcome_index i
            JOIN labs l ON l.hospitalization_id = i.hospitalization_id
            WHERE l.lab_category = {sql_str(category)} AND l.value_harmonised IS NOT NULL
              AND abs(epoch(l.lab_collect_dttm - ({target}))) <= {float(window_days) * 86400.0}
        ) WHERE rn = 1
    """
