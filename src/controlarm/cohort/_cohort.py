"""The `cohort` room: who enters the study and when their clock starts (the index date).

Index rules (``[index]``):

* ``trial = "first_administration"``: a trial patient starts at the first administration of the
  investigational product (``administration.product``);
* ``"first_condition"`` (trial or pool): the first moment every part of the ``[index.pool]``
  condition holds at once (locations, respiratory devices, medications within a window), computed
  inside the engine as the earliest start of the intersection of state intervals (``_rules``);
* ``pool_method = "risk_set"``: a candidate's index is the landmark of the treated patient they
  are matched to, set later by risk-set matching; this room then gives each candidate's
  eligibility intervals (:func:`derive_eligibility`) and leaves their ``index_time`` empty.

Every patient who falls out is counted under the first rule they fail, so the flow diagram adds up.

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
from ._intervals import sql_str
from ._rules import condition_parts, intersection_sql, rule_text

if TYPE_CHECKING:
    from ..sources import Sources
    from ..spec import Study
    from ._eligibility import Eligibility

__all__ = ["Cohort", "build_cohort"]


@dataclass(frozen=True)
class Cohort:
    """Eligible patients with their index time.

    ``patients`` has columns ``patient_id, hospitalization_id, group ("trial"/"pool"),
    index_time`` (UTC), ``age`` (years at index); one row per patient, sorted trial first then by
    patient_id. ``flow`` counts every exclusion with its reason. Under ``pool_method =
    "risk_set"`` a pool candidate's ``index_time`` and ``age`` are empty (NaT/NaN): their index is
    the landmark set by risk-set matching, and ``eligibility`` holds their eligibility intervals.
    """

    patients: pd.DataFrame
    flow: Flow
    eligibility: "Eligibility | None" = None

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
        No trial patient receives the product (or meets the index rule), or no pool candidate is
        left.
    """
    con = sources.con
    # Pool rows that never meet the index condition fail on the condition alone (the first rule
    # checked), so they come back as counts, not rows: at 5M hospitalizations the row-per-patient
    # frame was 1.2 GB of pandas for patients who are only ever a number in the flow diagram.
    # The condition's parts are materialised once and intersected twice (with and without the
    # drug): the device part, a window over every respiratory record, was the cohort stage's cost,
    # and a query naming it twice ran it twice on every engine.
    parts = condition_parts(study.index.pool, study.outcomes.max_gap_hours)
    tables = {p.name: f"_cond_{p.name}" for p in parts}
    try:
        for p in parts:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {tables[p.name]} AS {p.sql}")
        cond = [tables[p.name] for p in parts]
        base = [tables[p.name] for p in parts if not p.medication]
        con.execute(f"CREATE OR REPLACE TEMP TABLE _index_rows AS {_index_sql(study, cond, base)}")
        frame = con.execute(
            'SELECT * FROM _index_rows WHERE "group" <> \'pool\' OR cond_time IS NOT NULL ORDER BY patient_id').df()
        never_rows = con.execute(
            'SELECT base_time IS NULL AS no_base, count(*) AS n FROM _index_rows '
            'WHERE "group" = \'pool\' AND cond_time IS NULL GROUP BY 1 ORDER BY 1').fetchall()
    finally:
        for name in ["_index_rows", *tables.values()]:
            con.execute(f"DROP TABLE IF EXISTS {name}")
    frame = frame.sort_values(["group", "patient_id"], ascending=[False, True], kind="mergesort")
    ix = study.index
    risk_set = ix.pool_method == "risk_set"

    flow = Flow()
    trial = frame[frame["group"] == "trial"].copy()
    trial_reasons = _trial_reasons(trial, study)
    trial["_reason"] = trial_reasons
    counts = [(r, int((trial["_reason"] == r).sum())) for r in dict.fromkeys(x for x in trial_reasons if x)]
    flow = flow.then(FlowStep(stage="enrolled in the trial", group="trial", n_in=len(trial), excluded=_reasons(counts)))
    trial = trial[trial["_reason"].isna()].drop(columns=["_reason"])
    if trial.empty:
        what = (f"received product {ix.product!r}" if ix.trial == "first_administration"
                else "received the product and met the index rule")
        raise DataContractError(
            f"administration: no trial patient {what}. "
            f"Fix: check administration.product and [index] in the study file."
        )

    eligibility = None
    pool = frame[frame["group"] == "pool"].copy()
    if risk_set:
        from ._eligibility import derive_eligibility

        eligibility = derive_eligibility(sources, study)
        ever = set(eligibility.intervals.loc[eligibility.intervals["group"] == "pool", "patient_id"])
        reasons = _risk_set_reasons(pool, study, ever)
        pool["index_time"] = pd.NaT
        pool["age"] = float("nan")
    else:
        reasons = _pool_reasons(pool, study)
    pool["_reason"] = reasons
    never = _never_counts(never_rows, study)
    counts = [(r, int((pool["_reason"] == r).sum()) + never.get(r, 0))
              for r in _rule_order([*reasons, *never])]
    flow = flow.then(FlowStep(stage="pool candidates", group="pool", n_in=len(pool) + sum(never.values()),
                              excluded=_reasons(counts)))
    pool = pool[pool["_reason"].isna()].drop(columns=["_reason"])
    if pool.empty:
        raise DataContractError(
            "No pool candidate meets the index rule and eligibility criteria "
            "(see the flow counts with `controlarm validate`). Fix: loosen [index.pool] or [cohort]."
        )

    cols = ["patient_id", "hospitalization_id", "group", "index_time", "age"]
    patients = pd.concat([trial[cols], pool[cols]], ignore_index=True)
    patients["index_time"] = pd.to_datetime(patients["index_time"], utc=True)
    return Cohort(patients=patients, flow=flow, eligibility=eligibility)


def _reasons(pairs) -> tuple[tuple[str, int], ...]:
    return tuple((r, n) for r, n in pairs if n > 0)


def _rule_order(reasons: list[str | None]) -> list[str]:
    prefixes = ["no index: never on", "no index: never", "no eligible time", "index before", "index after",
                "age unknown", "age below", "age above"]
    seen = sorted({r for r in reasons if r is not None})

    def rank(r: str) -> int:
        # "never on <drug> while" must sort after "never on <devices>" — rules are checked in that order
        if r.startswith("no index: never") and " while " in r:
            return 1
        return next((i for i, p in enumerate(prefixes) if r.startswith(p)), len(prefixes))

    return sorted(seen, key=lambda r: (rank(r), r))


def _never_counts(rows, study: "Study") -> dict[str, int]:
    """Counts of the pool rows that never meet the condition, by their reason (as :func:`_never_checks`
    words it): ``rows`` holds (no state at all, n)."""
    rule = study.index.pool
    base = rule_text(rule)
    meds = "/".join(rule.medications)
    out: dict[str, int] = {}
    for no_base, n in rows:
        text = f"no index: never {base}" if (no_base or not rule.medications) else f"no index: never on {meds} while {base}"
        out[text] = out.get(text, 0) + int(n)
    return out


def _never_checks(frame: pd.DataFrame, study: "Study") -> list[tuple[pd.Series, str]]:
    """'Never in the state' and 'in the state but never on the drug' (the first-condition rule)."""
    rule = study.index.pool
    base = rule_text(rule)
    t = frame["cond_time"]
    never = frame["base_time"].isna() | (not rule.medications)
    meds = "/".join(rule.medications)
    return [
        (t.isna() & never, f"no index: never {base}"),
        (t.isna() & ~never, f"no index: never on {meds} while {base}"),
    ]


def _calendar_age_checks(frame: pd.DataFrame, study: "Study") -> list[tuple[pd.Series, str]]:
    c = study.cohort
    t = frame["index_time"]
    age = frame["age"]
    checks: list[tuple[pd.Series, str]] = []
    if c.calendar_start:
        checks.append((t < pd.Timestamp(c.calendar_start, tz="UTC"), f"index before {c.calendar_start}"))
    if c.calendar_end:
        end = pd.Timestamp(c.calendar_end, tz="UTC") + pd.Timedelta(days=1)
        checks.append((t >= end, f"index after {c.calendar_end}"))
    checks.append((age.isna(), "age unknown (no birth_date)"))
    checks.append((age < c.age_min, f"age below {c.age_min:g}"))
    if c.age_max is not None:
        checks.append((age > c.age_max, f"age above {c.age_max:g}"))
    return checks


def _first_failing(frame: pd.DataFrame, checks: list[tuple[pd.Series, str]]) -> list[str | None]:
    reason = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    for mask, text in checks:  # first failing rule wins
        reason = reason.where(reason.notna() | ~mask.fillna(False).astype(bool), text)
    return reason.tolist()


def _trial_reasons(trial: pd.DataFrame, study: "Study") -> list[str | None]:
    """Trial patients: no administration of the product, then (first_condition) never meets the rule.

    Trial patients are not held to the pool's calendar window or age limits (the trial's own
    eligibility applied at enrolment).
    """
    ix = study.index
    checks = [(trial["admin_time"].isna(), f"no administration of {ix.product}")]
    if ix.trial == "first_condition":
        checks += _never_checks(trial, study)
    return _first_failing(trial, checks)


def _pool_reasons(pool: pd.DataFrame, study: "Study") -> list[str | None]:
    """First failing rule for each pool candidate (None = eligible), in the order the rules are listed."""
    return _first_failing(pool, _never_checks(pool, study) + _calendar_age_checks(pool, study))


def _risk_set_reasons(pool: pd.DataFrame, study: "Study", ever_eligible: set) -> list[str | None]:
    """Risk-set pool: never in the state, never on the drug, or never eligible inside the calendar
    window and age limits (the eligibility intervals are clipped to them)."""
    outside = ~pool["patient_id"].isin(ever_eligible)
    checks = _never_checks(pool, study) + [
        (outside, "no eligible time within the calendar window, age limits and before death")]
    return _first_failing(pool, checks)


def _index_sql(study: "Study", cond_parts: list[str], base_parts: list[str]) -> str:
    """One row per enrolled patient: group, index_time, admin_time, cond_time, base_time (the rule
    without the drug), age at index. ``cond_parts``/``base_parts``: the tables of the condition's
    merged parts, with and without the drug."""
    ix = study.index
    cond = intersection_sql(cond_parts) if cond_parts else None
    base = intersection_sql(base_parts) if base_parts else None
    empty = "SELECT hospitalization_id, CAST(NULL AS TIMESTAMP WITH TIME ZONE) AS t FROM hospitalization WHERE 1 = 0"
    cond_first = f"SELECT hospitalization_id, min(s) AS t FROM ({cond}) c GROUP BY hospitalization_id" if cond else empty
    base_first = f"SELECT hospitalization_id, min(s) AS t FROM ({base}) c GROUP BY hospitalization_id" if base else empty
    trial_t = "ti.t" if ix.trial == "first_administration" else "CASE WHEN ti.t IS NOT NULL THEN ci.t END"
    index_t = f"CASE WHEN e.arm = 'trial' THEN {trial_t} ELSE ci.t END"
    return f"""
        WITH cond_first AS ({cond_first}),
        base_first AS ({base_first}),
        trial_idx AS (
            SELECT patient_id, min(admin_dttm) AS t FROM administration
            WHERE product = {sql_str(ix.product)} GROUP BY patient_id
        ),
        x AS (
            SELECT e.patient_id, e.hospitalization_id, e.arm AS "group", {index_t} AS index_time,
                   ti.t AS admin_time, ci.t AS cond_time, bi.t AS base_time, p.birth_date
            FROM enrollment e
            LEFT JOIN patient p ON p.patient_id = e.patient_id
            LEFT JOIN trial_idx ti ON ti.patient_id = e.patient_id
            LEFT JOIN cond_first ci ON ci.hospitalization_id = e.hospitalization_id
            LEFT JOIN base_first bi ON bi.hospitalization_id = e.hospitalization_id
        )
        SELECT patient_id, hospitalization_id, "group", index_time, admin_time, cond_time, base_time,
               DATE_DIFF('day', birth_date, CAST(index_time AS DATE)) / 365.25 AS age
        FROM x
        ORDER BY patient_id
    """
