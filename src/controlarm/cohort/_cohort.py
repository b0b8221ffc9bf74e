"""The `cohort` room: who enters the study and when their clock starts (the index date).

Trial patients start at their first administration of the investigational product. Pool
candidates start at the first moment every condition of the spec's pool rule holds at once
(location, respiratory device, medication within a window), computed as the earliest start of
the intersection of state intervals inside the engine. Every candidate who falls out is counted
under the first rule they fail, so the flow diagram adds up.

Why our own code: index dates for external controls are a core reason controlarm exists; no
library derives "the first time these conditions hold together" from CLIF event tables.

References
----------
Hernán MA, Robins JM. Using big data to emulate a target trial when a randomized trial is not
available. Am J Epidemiol 2016;183:758-764. doi:10.1093/aje/kwv254 (aligning time zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import DataContractError
from ._flow import Flow, FlowStep
from ._intervals import device_intervals_sql, sql_list, sql_str

if TYPE_CHECKING:
    from ..sources import Sources
    from ..spec import Study

__all__ = ["Cohort", "build_cohort"]


@dataclass(frozen=True)
class Cohort:
    """Eligible patients with their index time.

    ``patients`` has columns ``patient_id, hospitalization_id, group ("trial"/"pool"),
    index_time`` (UTC), ``age`` (years at index); one row per patient, sorted trial first then by
    patient_id. ``flow`` counts every exclusion with its reason.
    """

    patients: pd.DataFrame
    flow: Flow

    @property
    def n_trial(self) -> int:
        return int((self.patients["group"] == "trial").sum())

    @property
    def n_pool(self) -> int:
        return int((self.patients["group"] == "pool").sum())


def build_cohort(sources: "Sources", study: "Study") -> Cohort:
    """Derive index dates and apply eligibility for trial and pool patients.

    Parameters
    ----------
    sources : Sources
        Validated tables in the engine.
    study : Study
        Uses ``index``, ``cohort``, ``data.cutoff`` and ``outcomes.max_gap_hours``.

    Returns
    -------
    Cohort

    Raises
    ------
    DataContractError
        No trial patient receives the product, or no pool candidate is left.
    """
    con = sources.con
    frame = con.execute(_index_sql(study)).df()
    frame = frame.sort_values(["group", "patient_id"], ascending=[False, True], kind="mergesort")

    flow = Flow()
    trial = frame[frame["group"] == "trial"]
    no_product = trial["index_time"].isna()
    flow = flow.then(FlowStep(
        stage="enrolled in the trial",
        group="trial",
        n_in=len(trial),
        excluded=_reasons([(f"no administration of {study.index.product}", int(no_product.sum()))]),
    ))
    trial = trial[~no_product]
    if trial.empty:
        raise DataContractError(
            f"administration: no trial patient received product {study.index.product!r}. "
            f"Fix: check administration.product, or set index.product in the study file."
        )

    pool = frame[frame["group"] == "pool"].copy()
    reasons = _pool_reasons(pool, study)
    pool["_reason"] = reasons
    # dict.fromkeys keeps the order in which reasons first appear; list them in rule order instead
    counts = [(r, int((pool["_reason"] == r).sum())) for r in _rule_order(reasons)]
    flow = flow.then(FlowStep(stage="pool candidates", group="pool", n_in=len(pool), excluded=_reasons(counts)))
    pool = pool[pool["_reason"].isna()].drop(columns=["_reason"])
    if pool.empty:
        raise DataContractError(
            "No pool candidate meets the index rule and eligibility criteria "
            "(see the flow counts with `controlarm validate`). Fix: loosen [index.pool] or [cohort]."
        )

    cols = ["patient_id", "hospitalization_id", "group", "index_time", "age"]
    patients = pd.concat([trial[cols], pool[cols]], ignore_index=True)
    return Cohort(patients=patients, flow=flow)


def _reasons(pairs) -> tuple[tuple[str, int], ...]:
    return tuple((r, n) for r, n in pairs if n > 0)


def _rule_order(reasons: list[str | None]) -> list[str]:
    prefixes = ["no index: never on", "no index: never", "index before", "index after", "age unknown", "age below", "age above"]
    seen = sorted({r for r in reasons if r is not None})

    def rank(r: str) -> int:
        # "never on <drug> while" must sort after "never on <devices>" — rules are checked in that order
        if r.startswith("no index: never") and " while " in r:
            return 1
        return next((i for i, p in enumerate(prefixes) if r.startswith(p)), len(prefixes))

    return sorted(seen, key=lambda r: (rank(r), r))


def _rule_text(study: "Study") -> str:
    rule = study.index.pool
    parts = []
    if rule.devices:
        parts.append("on " + "/".join(rule.devices))
    if rule.location:
        parts.append(f"in {rule.location}")
    return " ".join(parts) or "the index rule"


def _pool_reasons(pool: pd.DataFrame, study: "Study") -> list[str | None]:
    """First failing rule for each pool candidate (None = eligible), in the order the rules are listed."""
    rule = study.index.pool
    c = study.cohort
    base = _rule_text(study)
    t = pool["index_time"]
    age = pool["age"]
    never = pool["base_time"].isna() | (not rule.medication)
    checks: list[tuple[pd.Series, str]] = [
        (t.isna() & never, f"no index: never {base}"),
        (t.isna() & ~never, f"no index: never on {rule.medication} while {base}"),
    ]
    if c.calendar_start:
        checks.append((t < pd.Timestamp(c.calendar_start, tz="UTC"), f"index before {c.calendar_start}"))
    if c.calendar_end:
        end = pd.Timestamp(c.calendar_end, tz="UTC") + pd.Timedelta(days=1)
        checks.append((t >= end, f"index after {c.calendar_end}"))
    checks.append((age.isna(), "age unknown (no birth_date)"))
    checks.append((age < c.age_min, f"age below {c.age_min:g}"))
    if c.age_max is not None:
        checks.append((age > c.age_max, f"age above {c.age_max:g}"))
    reason = pd.Series([None] * len(pool), index=pool.index, dtype=object)
    for mask, text in checks:  # first failing rule wins
        reason = reason.where(reason.notna() | ~mask.fillna(False).astype(bool), text)
    return reason.tolist()


def _index_sql(study: "Study") -> str:
    """One row per enrolled patient: group, index_time, base_time (pool rule without the drug), age."""
    rule = study.index.pool
    gap = study.outcomes.max_gap_hours
    conds: list[str] = []
    ctes = [f"dev AS ({device_intervals_sql(gap)})"]
    if rule.devices:
        ctes.append(
            "c_dev AS (SELECT hospitalization_id, start_dttm AS s, end_dttm AS e FROM dev "
            f"WHERE device_category IN {sql_list(rule.devices)} AND end_dttm > start_dttm)"
        )
        conds.append("c_dev")
    if rule.location:
        ctes.append(
            "c_loc AS (SELECT hospitalization_id, in_dttm AS s, out_dttm AS e FROM adt "
            f"WHERE location_category = {sql_str(rule.location)} AND out_dttm > in_dttm)"
        )
        conds.append("c_loc")
    base_conds = list(conds)
    if rule.medication:
        window_us = int(round(rule.medication_window_hours * 3600e6))
        ctes.append(
            "c_med AS (SELECT hospitalization_id, admin_dttm AS s, "
            f"admin_dttm + to_microseconds({window_us}) AS e FROM medication_admin_intermittent "
            f"WHERE lower(med_category) = lower({sql_str(rule.medication)}))"
        )
        conds.append("c_med")
    ctes.append(f"idx AS ({_intersection_sql(conds)})")
    ctes.append(f"base AS ({_intersection_sql(base_conds)})" if base_conds else
                "base AS (SELECT hospitalization_id, NULL::TIMESTAMPTZ AS t FROM hospitalization WHERE false)")
    product = sql_str(study.index.product)
    return f"""
        WITH {', '.join(ctes)},
        trial_idx AS (
            SELECT patient_id, min(admin_dttm) AS t FROM administration
            WHERE product = {product} GROUP BY patient_id
        )
        SELECT e.patient_id, e.hospitalization_id, e.arm AS "group",
               CASE WHEN e.arm = 'trial' THEN ti.t ELSE idx.t END AS index_time,
               base.t AS base_time,
               date_diff('day', p.birth_date,
                         CAST(timezone('UTC', CASE WHEN e.arm = 'trial' THEN ti.t ELSE idx.t END) AS DATE)
               ) / 365.25 AS age
        FROM enrollment e
        LEFT JOIN patient p ON p.patient_id = e.patient_id
        LEFT JOIN trial_idx ti ON ti.patient_id = e.patient_id
        LEFT JOIN idx ON idx.hospitalization_id = e.hospitalization_id
        LEFT JOIN base ON base.hospitalization_id = e.hospitalization_id
        ORDER BY e.patient_id
    """


def _intersection_sql(conds: list[str]) -> str:
    """Earliest start of the intersection of the interval sets ``conds`` (per hospitalization)."""
    if not conds:
        return "SELECT hospitalization_id, NULL::TIMESTAMPTZ AS t FROM hospitalization WHERE false"
    first = conds[0]
    if len(conds) == 1:
        return f"SELECT hospitalization_id, min(s) AS t FROM {first} GROUP BY hospitalization_id"
    starts = ", ".join(f"{c}.s" for c in conds)
    ends = ", ".join(f"{c}.e" for c in conds)
    joins = " ".join(
        f"JOIN {c} ON {c}.hospitalization_id = {first}.hospitalization_id" for c in conds[1:]
    )
    return (
        f"SELECT {first}.hospitalization_id, min(greatest({starts})) AS t FROM {first} {joins} "
        f"WHERE greatest({starts}) < least({ends}) GROUP BY {first}.hospitalization_id"
    )
