"""Risk-set (time-aligned) matching for external controls.

Each treated patient has a *landmark*: the time since a common reference point at which it was
treated (for example the ICU day of its first infusion). A candidate qualifies for that treated
patient only if, at the same time since its own reference point, it is in the risk set: alive,
still in ICU and meeting the eligibility rule. The caller states this as eligibility intervals,
one row per interval during which the candidate qualifies (with its covariates as of that
interval, counting-process style). The matched control's index is then set to the landmark, so
no immortal time enters the comparison: both arms start the clock at the same time since the
reference point, and the control was event-free up to it.

A candidate may serve several treated patients only if ``reuse=True``, and then only at
different landmark times (never twice at the same landmark); with ``reuse=False`` each candidate
serves at most one treated patient.

References
----------
Li, Y. P., Propert, K. J., & Rosenbaum, P. R. (2001). Balanced risk set matching. *Journal of the
American Statistical Association*, 96(455), 870-882. https://doi.org/10.1198/016214501753208573

Lu, B. (2005). Propensity score matching with time-dependent covariates. *Biometrics*, 61(3),
721-728. https://doi.org/10.1111/j.1541-0420.2005.00356.x
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ._distance import METRIC_DISTANCES, mahalanobis_distance, robust_mahalanobis_distance
from ._eligibility import CandidateGraph
from ._optimal import DENSE_PAIRS, TIE_RULE_OPTIMAL, certified_solve
from ._result import MatchResult, build_audit, build_matched_table
from ._validate import check_choice, ids_preview

__all__ = ["risk_set_match"]

CLOSED = ("left", "both")
TIE_RULE_GREEDY = ("treated patients in landmark order (data order breaks ties), in rounds; nearest eligible "
                   "candidate; equal distances: the candidate interval that comes first in the candidates frame")


def _frame(df: object, name: str, cols: Sequence[str]) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{name} must be a pandas DataFrame; got {type(df).__name__}")
    absent = [c for c in dict.fromkeys(cols) if c not in df.columns]
    if absent:
        raise InputError(f"{name} has no column(s) {absent}; columns present: {list(df.columns)}")
    for c in cols:
        if df[c].isna().any():
            raise InputError(f"{name} column {c!r} has {int(df[c].isna().sum())} missing value(s); "
                             "risk-set matching needs complete rows")
    return df


def risk_set_match(
    treated: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    covariates: Sequence[str],
    id_column: str = "patient_id",
    landmark: str = "landmark",
    start: str = "start",
    stop: str = "stop",
    ratio: int = 1,
    method: str = "optimal",
    distance: str = "mahalanobis",
    exact: Sequence[str] = (),
    caliper: float | None = None,
    reuse: bool = False,
    closed: str = "left",
    k_nearest: int | None = None,
) -> MatchResult:
    """Match each treated patient at its landmark to candidates eligible at that time.

    Parameters
    ----------
    treated : DataFrame
        One row per treated patient: ``id_column``, ``landmark`` (time since the reference point,
        numeric), the covariates as of the landmark and the ``exact`` columns.
    candidates : DataFrame
        One row per eligibility interval of a candidate: ``id_column``, ``start``, ``stop`` (same
        time scale as the landmark), the covariates as of that interval, and the ``exact`` columns.
        A candidate's intervals must not overlap.
    covariates : sequence of str
        Covariates of the distance (numeric).
    landmark, start, stop : str
        Column names.
    ratio : int
        Controls per treated patient.
    method : {"optimal", "nearest"}
        "optimal": smallest total distance over all landmarks jointly (as many treated patients
        matched as possible first; certified as in ``match(method="optimal")``). "nearest": greedy,
        treated patients taken in landmark order.
    distance : {"mahalanobis", "robust_mahalanobis"}
        Computed between the treated patient's covariates at its landmark and the candidate's
        covariates in the interval that contains the landmark. The covariance is pooled within
        groups over the treated rows and every candidate interval that enters some risk set.
    exact : sequence of str
        Exact strata (compared between the treated row and the candidate's interval row).
    caliper : float, optional
        Largest allowed distance (raw units).
    reuse : bool
        Whether a candidate may serve several treated patients at different landmark times.
    closed : {"left", "both"}
        A candidate is at risk at time L when start <= L < stop ("left") or start <= L <= stop.
    k_nearest : int, optional
        Optimal method: first list length of the pruned graph (widened until certified).

    Returns
    -------
    MatchResult
        ``matched`` has ``index_time`` (the landmark, for the treated patient and its controls) and
        ``unit_id`` (the design row: treated id, or "candidate@landmark"); ``design_`` holds the
        covariates of every treated patient and every candidate at every landmark where it is at
        risk, so ``result.balance()`` needs no data. ``audit`` gives the risk-set size per treated
        patient and the reason when it got fewer controls than wanted.

    Raises
    ------
    InputError
        Missing columns or values, repeated treated ids, overlapping intervals of one candidate,
        stop < start, bad options.

    Notes
    -----
    An id present in both frames (a patient treated later, at risk before its own treatment) may
    serve as a control at an earlier landmark, as in Li, Propert & Rosenbaum (2001); it is never
    matched to itself. Leave it out of ``candidates`` if the protocol forbids that.
    """
    check_choice("method", method, ("optimal", "nearest"))
    check_choice("distance", distance, METRIC_DISTANCES)
    check_choice("closed", closed, CLOSED)
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Integral) or ratio < 1:
        raise InputError(f"matching.ratio must be an integer >= 1; got {ratio!r}")
    if not isinstance(reuse, (bool, np.bool_)):
        raise InputError(f"reuse must be True or False; got {reuse!r}")
    if caliper is not None and (isinstance(caliper, bool) or not isinstance(caliper, numbers.Real) or not caliper > 0):
        raise InputError(f"matching.caliper must be a positive number or None; got {caliper!r}")
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    exact = [exact] if isinstance(exact, str) else list(exact)
    if not covariates:
        raise InputError("matching.covariates must name at least one covariate")
    tdf = _frame(treated, "treated", [id_column, landmark, *covariates, *exact])
    cdf = _frame(candidates, "candidates", [id_column, start, stop, *covariates, *exact])
    for name, df, cols in (("treated", tdf, [landmark, *covariates]), ("candidates", cdf, [start, stop, *covariates])):
        for c in cols:
            if not pd.api.types.is_numeric_dtype(df[c]):
                raise InputError(f"{name} column {c!r} must be numeric; got dtype {df[c].dtype}")
    if tdf[id_column].duplicated().any():
        raise InputError(f"treated ids must be unique; repeated: {ids_preview(tdf[id_column][tdf[id_column].duplicated()].unique())}")
    if len(tdf) == 0 or len(cdf) == 0:
        raise InputError(f"risk-set matching needs treated patients and candidates; got {len(tdf)} and {len(cdf)} rows")
    s_, e_ = cdf[start].to_numpy(float), cdf[stop].to_numpy(float)
    if (e_ < s_).any():
        bad = cdf[id_column][e_ < s_].unique()
        raise InputError(f"candidate intervals must have {stop} >= {start}; not so for id(s) {ids_preview(bad)}")
    _check_overlap(cdf, id_column, start, stop)

    # ---- risk sets: eligible (treated, candidate-interval) pairs
    L = tdf[landmark].to_numpy(float)
    t_ids = tdf[id_column].to_numpy(dtype=object)
    c_ids = cdf[id_column].to_numpy(dtype=object)
    t_codes = _codes(tdf, cdf, exact)
    ti, cj = _risk_pairs(L, s_, e_, t_ids, c_ids, t_codes, closed)
    n_t, n_c = len(tdf), len(cdf)
    n_risk = np.bincount(ti, minlength=n_t)

    # ---- distance on the stacked rows: treated first, then candidate intervals
    X = np.vstack([tdf[covariates].to_numpy(float), cdf[covariates].to_numpy(float)])
    flag = np.r_[np.ones(n_t, dtype=np.int8), np.zeros(n_c, dtype=np.int8)]
    in_any = np.zeros(n_c, dtype=bool)
    in_any[cj] = True
    use = np.r_[np.ones(n_t, dtype=bool), in_any]
    if in_any.sum() == 0:
        raise InputError("no candidate is at risk at any treated patient's landmark; check the intervals and landmarks")
    build = mahalanobis_distance if distance == "mahalanobis" else robust_mahalanobis_distance
    sub = build(X[use], flag[use], covariates)
    where = np.full(len(X), -1, dtype=np.int64)
    where[use] = np.arange(int(use.sum()))
    d = sub.pairs(where[ti], where[n_t + cj])
    if caliper is not None:
        keep = d <= caliper
        ti, cj, d = ti[keep], cj[keep], d[keep]
    n_ok = np.bincount(ti, minlength=n_t)

    # ---- units: a candidate (no reuse) or a candidate at one landmark time (reuse)
    cand_codes, cand_uniques = pd.factorize(pd.Series(c_ids))
    cand_of_pair = cand_codes[cj]
    if reuse:
        lm_codes = pd.factorize(pd.Series(L))[0]
        unit_key = cand_of_pair.astype(np.int64) * (int(lm_codes.max()) + 1) + lm_codes[ti]
        units, unit_idx = np.unique(unit_key, return_inverse=True)
    else:
        units, unit_idx = np.unique(cand_of_pair, return_inverse=True)
    n_units = len(units)

    if method == "nearest":
        mm_pair = _greedy(ti, unit_idx, d, L, n_t, n_units, ratio)
        info = {"note": "greedy in landmark order"}
        tie_rule = TIE_RULE_GREEDY
    else:
        mm_pair, info = _optimal(ti, unit_idx, d, n_t, ratio, k_nearest)
        tie_rule = TIE_RULE_OPTIMAL

    # ---- result: ids are treated ids, then each candidate once
    ids_all = np.concatenate([t_ids, np.asarray(cand_uniques, dtype=object)])
    mm = np.full((n_t, ratio), -1, dtype=np.int64)
    pdist = np.full((n_t, ratio), np.nan)
    unit_ids = np.full((n_t, ratio), None, dtype=object)
    filled = mm_pair >= 0
    rows, slots = np.nonzero(filled)
    pairs = mm_pair[rows, slots]
    mm[rows, slots] = n_t + cand_of_pair[pairs]
    pdist[rows, slots] = d[pairs]
    unit_ids[rows, slots] = [f"{c_ids[cj[p]]}@{L[rows_]:g}" for p, rows_ in zip(pairs, rows)]
    matched = build_matched_table(ids_all, np.arange(n_t), mm, pdist, None, index_time=L, unit_ids=unit_ids)
    wanted = np.full(n_t, ratio, dtype=np.int64)
    audit, misses = build_audit(t_ids, mm, wanted, n_risk, n_ok, np.zeros(n_t, dtype=bool), discard_rule=None,
                                has_caliper=caliper is not None,
                                stratum_words="the risk set at its landmark" + (" (exact stratum)" if exact else ""))
    design = _design(tdf, cdf, covariates, t_ids, c_ids, L, ti, cj)
    n_got = filled.sum(axis=1)
    settings = {
        "method": f"risk_set ({method})", "distance": distance, "ratio": ratio, "replace": bool(reuse),
        "reuse": "a candidate may serve several treated patients, at different landmark times" if reuse
        else "each candidate serves at most one treated patient",
        "exact": exact, "caliper": caliper, "caliper_units": "raw" if caliper is not None else None,
        "caliper_raw": caliper, "at_risk_rule": f"{start} <= landmark {'<' if closed == 'left' else '<='} {stop}",
        "index_rule": "the control's index time is set to the treated patient's landmark",
        "tie_rule": tie_rule, "covariates": covariates, "id_column": id_column, "treatment": "treated",
        "covariance": sub.info.get("covariance"), "order": "landmark" if method == "nearest" else None, "seed": None,
    }
    info.update({"total_distance": float(np.nansum(pdist))})
    return MatchResult(
        matched=matched,
        match_matrix=pd.DataFrame([[ids_all[c] if c >= 0 else None for c in row] for row in mm],
                                  index=pd.Index(t_ids, name=id_column), columns=range(1, ratio + 1), dtype=object),
        unmatched_treated=tuple(t_ids[n_got == 0].tolist()),
        incomplete_treated=tuple(t_ids[(n_got > 0) & (n_got < ratio)].tolist()),
        n_treated=n_t, n_candidates=len(cand_uniques), method="risk_set", distance=distance, treatment="treated",
        covariates=tuple(covariates), id_column=id_column, settings=settings,
        covariance_=sub.info.get("covariance_matrix"), audit=audit,
        diagnostics={"total_distance": float(np.nansum(pdist)), "n_pairs": int(filled.sum()), "caliper_misses": misses,
                     "risk_set_size_median": float(np.median(n_risk)), "method": info},
        design_=design,
    )


def _check_overlap(cdf: pd.DataFrame, id_column: str, start: str, stop: str) -> None:
    o = cdf.sort_values([id_column, start], kind="stable")
    same = o[id_column].to_numpy()[1:] == o[id_column].to_numpy()[:-1]
    overlap = same & (o[start].to_numpy(float)[1:] < o[stop].to_numpy(float)[:-1])
    if overlap.any():
        bad = o[id_column].to_numpy()[1:][overlap]
        raise InputError(f"a candidate's eligibility intervals must not overlap; they do for id(s) {ids_preview(pd.unique(bad))}")


def _codes(tdf: pd.DataFrame, cdf: pd.DataFrame, exact: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    if not exact:
        return None
    both = pd.concat([tdf[exact], cdf[exact]], ignore_index=True)
    code = both.groupby(exact, sort=True, dropna=False).ngroup().to_numpy()
    return code[: len(tdf)], code[len(tdf):]


def _risk_pairs(L, s_, e_, t_ids, c_ids, codes, closed) -> tuple[np.ndarray, np.ndarray]:
    """All (treated, candidate interval) pairs with the interval covering the landmark (chunked)."""
    tis, cjs = [], []
    step = max(1, 4_000_000 // max(len(s_), 1))
    for a in range(0, len(L), step):
        Lb = L[a : a + step, None]
        ok = (s_[None, :] <= Lb) & ((Lb < e_[None, :]) if closed == "left" else (Lb <= e_[None, :]))
        ok &= t_ids[a : a + step, None] != c_ids[None, :]
        if codes is not None:
            ok &= codes[0][a : a + step, None] == codes[1][None, :]
        i, j = np.nonzero(ok)
        tis.append(i + a)
        cjs.append(j)
    return np.concatenate(tis).astype(np.int64), np.concatenate(cjs).astype(np.int64)


def _greedy(ti, unit, d, L, n_t, n_units, ratio) -> np.ndarray:
    """Treated in landmark order, in rounds; each takes its nearest unused unit (first pair on ties)."""
    mm = np.full((n_t, ratio), -1, dtype=np.int64)
    used = np.zeros(n_units, dtype=bool)
    order = np.lexsort((np.arange(len(d)), d, ti))  # per treated: by distance, then candidate row
    ti_s = ti[order]
    starts = np.searchsorted(ti_s, np.arange(n_t), "left")
    ends = np.searchsorted(ti_s, np.arange(n_t), "right")
    proc = np.argsort(L, kind="stable")
    for r in range(ratio):
        for t in proc:
            for p in order[starts[t]:ends[t]]:
                if not used[unit[p]]:
                    used[unit[p]] = True
                    mm[t, r] = p
                    break
    return mm


def _optimal(ti, unit, d, n_t, ratio, k_nearest) -> tuple[np.ndarray, dict]:
    order = np.lexsort((d, ti))
    ti_s, unit_s, d_s = ti[order], unit[order], d[order]
    starts = np.searchsorted(ti_s, np.arange(n_t), "left")
    counts = np.searchsorted(ti_s, np.arange(n_t), "right") - starts
    rank = np.arange(len(ti_s)) - starts[ti_s]
    k0 = k_nearest if k_nearest is not None else (None if len(d) <= DENSE_PAIRS else max(50, 8 * ratio))

    def lists(k):
        if k is None:
            return CandidateGraph(tp=ti_s, cr=np.arange(len(ti_s)), d=d_s, lb=np.full(n_t, np.inf))
        keep = rank < k[ti_s]
        nxt = np.where(counts > k, d_s[np.minimum(starts + k, len(d_s) - 1)], np.inf)
        return CandidateGraph(tp=ti_s[keep], cr=np.flatnonzero(keep), d=d_s[keep], lb=nxt)

    active = counts > 0
    hi = np.where(active, ratio, 0)
    tp, pair_sorted, dd, info = certified_solve(
        lists, n_treated=n_t, active=np.ones(n_t, dtype=bool), hi=hi, lo=np.minimum(hi, 1), total=None,
        bound=float(d.max()) if len(d) else 1.0, k0=k0, unit_of=lambda cr: (unit_s[cr], int(unit.max()) + 1 if len(unit) else 1),
    )
    mm = np.full((n_t, ratio), -1, dtype=np.int64)
    o = np.lexsort((pair_sorted, dd, tp))
    tp, pair_sorted = tp[o], pair_sorted[o]
    slot = np.arange(len(tp)) - np.searchsorted(tp, tp, "left")
    mm[tp, slot] = order[pair_sorted]
    return mm, info


def _design(tdf, cdf, covariates, t_ids, c_ids, L, ti, cj) -> pd.DataFrame:
    """Treated rows at their landmark and candidate rows at each landmark where they are at risk (deduplicated)."""
    t_part = pd.DataFrame({"unit_id": t_ids, "treated": 1})
    for c in covariates:
        t_part[c] = tdf[c].to_numpy(float)
    uid = pd.Series([f"{c_ids[j]}@{L[i]:g}" for i, j in zip(ti, cj)], dtype=object)
    c_part = pd.DataFrame({"unit_id": uid, "treated": 0})
    for c in covariates:
        c_part[c] = cdf[c].to_numpy(float)[cj]
    c_part = c_part.drop_duplicates("unit_id")
    return pd.concat([t_part, c_part], ignore_index=True)
