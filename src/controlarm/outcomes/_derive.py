"""The `outcomes` room: endpoints relative to each patient's index, derived inside the engine.

Definitions (identical for both arms; day d = the 24-hour window [index + (d-1)·24h, index + d·24h)):

- **Alive at day N**: no death at or before index + N days. Deaths come from
  ``patient.death_dttm``; a patient without a death is known alive up to ``data.cutoff`` (or, with
  no cutoff, up to their last hospital discharge). Alive-at-N is missing when follow-up ends
  before day N.
- **Time to death**: days from index to death, censored at the last time known alive or at the
  largest survival horizon, whichever comes first.
- **Need for IMV or ECMO**: IMV or ECMO at any time after index up to the largest survival horizon,
  among patients on neither at the index (missing otherwise).
- **Free days to day H** (IMV, HFNO, oxygen, ICU, hospital): the number of days d = 1..H on which
  the patient was never on the support (IMV: IMV or ECMO; HFNO: High Flow NC; oxygen: any device
  other than Room Air, or ECMO; ICU: an adt location of category icu; hospital: inside any
  hospitalization, readmissions included), if not dead by day H; a patient who dies by day H gets
  ``free_days_death_value`` (0 by default, -1 as an option, which ranks death below any survivor,
  as Yehya et al. discuss). A device record holds until the next record, at most ``max_gap_hours``
  and never past discharge; days after discharge alive count as free. Two components are kept
  beside each free-days column, as Yehya et al. recommend reporting: ``<col>_alive`` (1 unless a
  death is recorded by day H) and ``<col>_days`` (days d = 1..H alive at the end of the day and
  free of the support, whatever happens later: equal to the endpoint for survivors).
  Ventilator-free days follow Schoenfeld et al. and Yehya et al.
- **WHO Clinical Progression Scale at day N** (``who_d{N}``): the worst score during day N (10 if
  dead by the end of day N; missing when the vital status at day N is unknown); the mapping from
  CLIF is in ``outcomes._status`` (Marshall et al. 2020).
- **Lab at day N**: the harmonised value whose collection time is nearest to index + N days,
  within ± window; ties by earlier time, then by larger value (a total order). Values whose unit
  cannot be harmonised are not candidates. Labs of every hospitalization of the patient count.

Every derivation is one SQL query over per-patient day bitmasks (``outcomes._status``); nothing
row-level runs in Python.

Why our own code: no package computes free-days endpoints or windowed labs relative to an index
date from CLIF tables; these definitions are a reason controlarm exists.

References
----------
Yehya N, Harhay MO, Curley MAQ, Schoenfeld DA, Reeder RW. Reappraisal of ventilator-free days in
critical care research. Am J Respir Crit Care Med 2019;200:828-836. doi:10.1164/rccm.201810-2050CP
Schoenfeld DA, Bernard GR; ARDS Network. Statistical evaluation of ventilator-free days as an
efficacy measure in clinical trials of treatments for acute respiratory distress syndrome.
Crit Care Med 2002;30:1772-1777. doi:10.1097/00003246-200208000-00016
WHO Working Group on the Clinical Characterisation and Management of COVID-19 infection. A minimal
common outcome measure set for COVID-19 clinical research. Lancet Infect Dis 2020;20:e192-e197.
doi:10.1016/S1473-3099(20)30483-7
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..cohort._intervals import sql_str
from ._endpoints import Endpoint
from ._status import (
    DAY_US,
    WHO_MASKS,
    WORD_DAYS,
    alive_sql,
    base_ctes,
    epoch_us,
    mask_col,
    plan_from_study,
    register_index,
    who_sql,
)

if TYPE_CHECKING:
    from ..sources import Sources
    from ..spec import Study

__all__ = ["derive_endpoints", "endpoint_definitions", "endpoints_sql"]

_FREE_DAYS = {
    "imv": ("IMV", "IMV (or ECMO)"),
    "hfno": ("HFNO", "high-flow nasal oxygen"),
    "oxygen": ("oxygen", "any oxygen support (any device other than Room Air, or ECMO)"),
    "icu": ("ICU", "an ICU location"),
    "hospital": ("Hospital", "a hospital stay (any hospitalization)"),
}


def _horizon_max(study: "Study") -> int:
    o = study.outcomes
    return max(o.survival_days) if o.survival_days else o.free_days_horizon


def endpoint_definitions(study: "Study") -> tuple[Endpoint, ...]:
    """The endpoints a study asks for, in report order."""
    o = study.outcomes
    defs: list[Endpoint] = []
    horizon_max = _horizon_max(study)
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
        short, words = _FREE_DAYS[key]
        defs.append(Endpoint(
            name=f"{key}_free_days_{h}", label=f"{short}-free days to day {h}", kind="count",
            column=f"{key}_free_days_{h}",
            definition=(f"Days 1..{h} (24-hour windows from index) without {words}, if alive at day {h}; "
                        f"{o.free_days_death_value} if dead by day {h}."),
        ))
    for n in o.who_scale_days:
        defs.append(Endpoint(
            name=f"who_d{n}", label=f"WHO clinical progression scale at day {n}", kind="count",
            column=f"who_d{n}",
            definition=(f"Worst WHO Clinical Progression Scale score (Marshall et al. 2020) during day {n} "
                        "(24-hour window from index): 10 dead; 9 ECMO; 7 IMV (7-8 not separable); 6 HFNO, "
                        "NIPPV or CPAP; 5 other oxygen; 4 in hospital without oxygen; 3 alive out of "
                        "hospital (0-3 not separable). Missing when the vital status is unknown."),
            higher_is_better=False,
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


def derive_endpoints(sources: "Sources", index: "pd.DataFrame | str", study: "Study") -> pd.DataFrame:
    """Endpoints for the patients in ``index``.

    Parameters
    ----------
    sources : Sources
    index : DataFrame or str
        ``patient_id, hospitalization_id, index_time`` (UTC); one row per patient (or per patient
        and landmark), or the name of such a relation already in the engine.
    study : Study

    Returns
    -------
    DataFrame
        ``patient_id`` plus one float column per endpoint column of :func:`endpoint_definitions`,
        then the components of each free-days endpoint (``<col>_alive``, ``<col>_days``); rows in
        the order of ``index`` (for a relation name: by patient_id, index_time).
    """
    register_index(sources, index, "_outcome_index")
    out = sources.con.execute(endpoints_sql(study, "_outcome_index")).df()
    out = out.drop(columns="_ord")
    for col in out.columns[1:]:
        out[col] = out[col].astype(float)
    return out.reset_index(drop=True)


def _free_days_sql(key: str, h: int, death_value: int, words: int) -> tuple[str, str, str]:
    """(endpoint, alive component, days component) SQL of one free-days endpoint."""
    at = h * DAY_US
    # days alive through the end of the day: day d (1-based) counts when death > d days
    n_alive = (f"CASE WHEN vs.death IS NULL THEN {h} "
               f"ELSE least({h}, greatest(0, CAST(floor((vs.death - 1) / {DAY_US}.0) AS BIGINT))) END")
    terms = []
    for w in range(words):
        n_w = f"least({WORD_DAYS}, greatest(0, ({n_alive}) - {w * WORD_DAYS}))"
        alive_mask = f"((CAST(1 AS BIGINT) << {n_w}) - 1)"
        busy = f"coalesce(ag.{mask_col(key, w)}, 0)"
        terms.append(f"bit_count((~{busy}) & {alive_mask})")
    days = " + ".join(terms)
    dead = f"vs.death <= {at}"
    endpoint = f"CASE WHEN NOT vs.has_p THEN NULL WHEN {dead} THEN {death_value} ELSE {days} END"
    alive = f"CASE WHEN NOT vs.has_p THEN NULL WHEN {dead} THEN 0 ELSE 1 END"
    days_col = f"CASE WHEN NOT vs.has_p THEN NULL ELSE {days} END"
    return endpoint, alive, days_col


def endpoints_sql(study: "Study", index_rel: str, dialect: str = "duckdb") -> str:
    """The single engine query behind :func:`derive_endpoints` (columns ``_ord, patient_id, ...``)."""
    o = study.outcomes
    horizon_max = _horizon_max(study)
    masks: list[str] = list(o.free_days)
    mask_days = o.free_days_horizon if o.free_days else 0
    if o.who_scale_days:
        masks += list(WHO_MASKS)
        mask_days = max(mask_days, max(o.who_scale_days))
    plan = plan_from_study(study, mask_days=mask_days, masks=tuple(masks),
                           need_days=horizon_max if o.need_imv else None)
    ctes = base_ctes(plan, index_rel, dialect)
    cols: dict[str, str] = {}
    for n in o.survival_days:
        cols[f"alive_d{n}"] = alive_sql(n)
    if o.survival_days:
        end = horizon_max * DAY_US
        cols["death_time_days"] = (f"CASE WHEN vs.has_p THEN least(coalesce(vs.death, vs.known), {end}) "
                                   f"/ {DAY_US}.0 END")
        cols["death_event"] = f"CASE WHEN NOT vs.has_p THEN NULL WHEN vs.death <= {end} THEN 1 ELSE 0 END"
    if o.need_imv:
        cols["need_imv"] = ("CASE WHEN vs.t0 IS NULL OR coalesce(ag.inv_at_0, 0) = 1 THEN NULL "
                            "WHEN coalesce(ag.inv_after, 0) = 1 THEN 1 ELSE 0 END")
    h = o.free_days_horizon
    components: dict[str, str] = {}
    for key in o.free_days:
        endpoint, alive, days = _free_days_sql(key, h, o.free_days_death_value, plan.words)
        cols[f"{key}_free_days_{h}"] = endpoint
        components[f"{key}_free_days_{h}_alive"] = alive
        components[f"{key}_free_days_{h}_days"] = days
    for n in o.who_scale_days:
        cols[f"who_d{n}"] = who_sql(n)
    joins = ["LEFT JOIN ag ON ag._ord = vs._ord"] if (plan.masks or plan.need_days is not None) else []
    if o.labs:
        specs = ", ".join(
            f"({i}, {sql_str(lab.category)}, {lab.day * DAY_US}, {int(round(lab.window_days * DAY_US))})"
            for i, lab in enumerate(o.labs))
        ctes.append(f"lspec AS (SELECT * FROM (VALUES {specs}) AS t(spec, category, target, win))")
        ctes.append(f"""lc AS (
            SELECT _ord, spec, value FROM (
                SELECT _ord, spec, value,
                       row_number() OVER (PARTITION BY _ord, spec ORDER BY abs(dt), dt, value DESC) AS rn
                FROM (
                    SELECT hs._ord, sp.spec, sp.win, l.value_harmonised AS value,
                           {epoch_us('l.lab_collect_dttm', dialect)} - hs.t0 - sp.target AS dt
                    FROM hs JOIN labs l ON l.hospitalization_id = hs.hospitalization_id
                    JOIN lspec sp ON sp.category = l.lab_category
                    WHERE l.value_harmonised IS NOT NULL
                ) a WHERE abs(dt) <= win
            ) b WHERE rn = 1)""")
        pivots = ", ".join(f"max(CASE WHEN spec = {i} THEN value END) AS lab_{i}" for i in range(len(o.labs)))
        ctes.append(f"lp AS (SELECT _ord, {pivots} FROM lc GROUP BY _ord)")
        joins.append("LEFT JOIN lp ON lp._ord = vs._ord")
        for i, lab in enumerate(o.labs):
            cols[f"{lab.category}_d{lab.day}"] = f"lp.lab_{i}"
    cols.update(components)
    select = ",\n               ".join(f"{expr} AS {name}" for name, expr in cols.items())
    select = (", " + select) if select else ""
    return f"""
        WITH {', '.join(ctes)}
        SELECT vs._ord, vs.patient_id{select}
        FROM vs {' '.join(joins)}
        ORDER BY vs._ord
    """
