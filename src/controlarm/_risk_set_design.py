"""The design stage for risk-set (time-aligned) matching: eligibility, covariates at each landmark, matching.

Joins three rooms for ``index.pool_method = "risk_set"``: the cohort room's eligibility intervals
cut at the trial patients' landmarks (``Eligibility.risk_set_rows``), the features room's
covariates as of each candidate-landmark (``derive_baseline`` accepts repeated patients), and the
matching room's ``risk_set_match``. A matched control's index is the landmark of its treated
patient on the control's own clock (origin + landmark), so neither arm accrues immortal time.

References
----------
Li YP, Propert KJ, Rosenbaum PR. Balanced risk set matching. J Am Stat Assoc 2001;96:870-882.
doi:10.1198/016214501753208573
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cohort import Cohort, FlowStep
from .errors import InputError

__all__ = ["design_risk_set"]


def _key(patient_id: str, start: float) -> str:
    return f"{patient_id}@{start:.6f}"


def design_risk_set(study, sources, cohort: Cohort) -> dict:
    """Covariates at every landmark, risk-set matching, balance and flow.

    Returns
    -------
    dict
        ``baseline, flow, match, matched, balance, kinds`` (as the pipeline's design stage).
        ``baseline`` has one row per trial patient and per pool candidate, the candidate's
        covariates taken at the landmark where they were matched, or else at their first landmark.
    """
    from .features import derive_baseline
    from .matching import balance_table
    from .matching._risk_set import risk_set_match

    m = study.matching
    if m.distance not in ("mahalanobis", "robust_mahalanobis"):
        raise InputError(
            f"matching.distance = {m.distance!r} cannot be used with index.pool_method = \"risk_set\": a "
            "propensity score has no meaning across landmarks. Fix: use distance = \"mahalanobis\" "
            "or \"robust_mahalanobis\"."
        )
    elig = cohort.eligibility
    trial = cohort.patients[cohort.patients["group"] == "trial"].reset_index(drop=True)
    landmarks = elig.landmarks.set_index("patient_id")["landmark_day"]
    pieces = elig.risk_set_rows()
    rows = pd.concat([
        trial[["patient_id", "hospitalization_id", "index_time"]].assign(group="trial"),
        pieces[["patient_id", "hospitalization_id", "index_time"]].assign(group="pool"),
    ], ignore_index=True)
    features = derive_baseline(sources, Cohort(patients=rows, flow=cohort.flow), study)
    kinds = features.attrs.get("kinds", {})
    names = [c.name for c in study.features.covariates]
    needed = list(m.covariates) + list(m.exact)

    treated = features.iloc[: len(trial)].reset_index(drop=True)
    treated["landmark"] = treated["patient_id"].map(landmarks)
    cand = features.iloc[len(trial):].reset_index(drop=True)
    cand["start"] = pieces["start"].to_numpy()
    cand["stop"] = pieces["stop"].to_numpy()
    cand["index_time"] = pieces["index_time"].to_numpy()
    cand["hospitalization_id"] = pieces["hospitalization_id"].to_numpy()

    flow = cohort.flow
    t_missing = treated[needed].isna().any(axis=1) | treated["landmark"].isna()
    t_reason = np.where(treated["landmark"].isna(), "no landmark (no clock origin)", "missing a matching covariate")
    flow = flow.then(FlowStep(stage="baseline covariates for matching", group="trial", n_in=len(treated),
                              excluded=_counts(pd.Series(t_reason[t_missing.to_numpy()]))))
    complete = cand[needed].notna().all(axis=1)
    n_pool = cand["patient_id"].nunique()
    usable = cand[complete]
    lost = n_pool - usable["patient_id"].nunique()
    flow = flow.then(FlowStep(stage="baseline covariates for matching", group="pool", n_in=n_pool,
                              excluded=(("missing a matching covariate at every landmark", lost),) if lost else ()))
    treated = treated[~t_missing].reset_index(drop=True)
    if treated.empty:
        raise InputError("No trial patient has a landmark and every matching covariate. Fix: check [matching] covariates and the data.")

    result = risk_set_match(
        treated, usable.reset_index(drop=True), covariates=list(m.covariates), ratio=m.ratio,
        method=m.method, distance=m.distance, exact=list(m.exact), caliper=m.caliper, reuse=m.replace,
    )
    matched = result.matched.copy()
    # a control's unit is "<patient>@<landmark>"; its index is the piece of eligibility starting at that landmark
    is_ctrl = matched["role"] == "control"
    landmark = matched["index_time"].astype(float)
    keys = [_key(p, L) if c else p for p, L, c in zip(matched["patient_id"], landmark, is_ctrl)]
    piece = usable.assign(_key=[_key(p, s) for p, s in zip(usable["patient_id"], usable["start"])]).set_index("_key")
    tri = trial.set_index("patient_id")
    matched["hospitalization_id"] = [piece.at[k, "hospitalization_id"] if c else tri.at[k, "hospitalization_id"]
                                     for k, c in zip(keys, is_ctrl)]
    matched["index_time"] = [piece.at[k, "index_time"] if c else tri.at[k, "index_time"] for k, c in zip(keys, is_ctrl)]
    matched["index_time"] = pd.to_datetime(matched["index_time"], utc=True)
    matched["landmark_day"] = landmark.to_numpy()
    matched = matched.drop(columns=["unit_id"])

    n_sets = int(matched.loc[matched["role"] == "treated", "set_id"].nunique())
    n_ctrl = int(matched.loc[is_ctrl, "patient_id"].nunique())
    n_usable = int(usable["patient_id"].nunique())
    flow = flow.then(FlowStep(stage="matching", group="trial", n_in=len(treated),
                              excluded=(("no control at risk within the restrictions", len(treated) - n_sets),)
                              if len(treated) > n_sets else ()))
    flow = flow.then(FlowStep(stage="matching", group="pool", n_in=n_usable,
                              excluded=(("at risk but not selected", n_usable - n_ctrl),) if n_usable > n_ctrl else ()))

    # Balance over every feature: the treated at their landmarks vs every candidate at every landmark
    # where it was at risk (before) and the matched controls at their landmark (after).
    design = pd.concat([
        treated[["patient_id"] + names].assign(treated=1),
        usable.assign(patient_id=[_key(p, s) for p, s in zip(usable["patient_id"], usable["start"])])[["patient_id"] + names]
        .assign(treated=0),
    ], ignore_index=True)
    m_units = matched.assign(patient_id=keys)[["set_id", "patient_id", "role", "weight"]]
    binary = [c for c, k in kinds.items() if k == "binary"]
    balance = balance_table(design, m_units, treatment="treated", covariates=names, binary=binary)

    # one descriptive row per pool candidate: at the landmark of their match, else their first landmark
    chosen = pd.Series(dict(zip(matched.loc[is_ctrl, "patient_id"], [k for k, c in zip(keys, is_ctrl) if c])))
    first = cand.assign(_key=[_key(p, s) for p, s in zip(cand["patient_id"], cand["start"])]).drop_duplicates("patient_id")
    first = first.set_index("patient_id")["_key"]
    pick = first.copy()
    pick.update(chosen)
    allc = cand.assign(_key=[_key(p, s) for p, s in zip(cand["patient_id"], cand["start"])])
    pool_rows = allc[allc["_key"].isin(set(pick.values))][["patient_id", "group"] + names]
    baseline = pd.concat([features.iloc[: len(trial)][["patient_id", "group"] + names], pool_rows], ignore_index=True)
    baseline.attrs["kinds"] = kinds
    return {"baseline": baseline, "flow": flow, "match": result, "matched": matched, "balance": balance, "kinds": kinds}


def _counts(reasons: pd.Series) -> tuple[tuple[str, int], ...]:
    return tuple((str(r), int(n)) for r, n in reasons.value_counts().sort_index().items())
