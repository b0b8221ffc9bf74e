"""Greedy nearest-neighbour matching, as MatchIt's ``method = "nearest"``.

Matching runs in rounds: in round r every treated patient, taken in the processing order, gets
its r-th control (the nearest eligible control: same exact stratum, within the caliper and the
covariate calipers, not yet used unless matching with replacement, not already in its own set)
before any treated patient gets an (r+1)-th. A treated patient with no eligible control left in a
round keeps an empty slot. With variable ratio each treated patient has its own number of rounds
(``n_wanted``). Greedy matching does not minimise the total distance; optimal matching does
(``_optimal.py``).

Tie rules (stated in the result's settings):

* score distances (``ps``, ``logit_ps``) follow MatchIt's ``nn_matchC_vec``: all patients are
  sorted by score (stable, so data order breaks equal scores); the nearest eligible control on each
  side of the treated patient in that order is found and the left one (lower score) wins when the
  two are equally distant.
* metric and matrix distances follow MatchIt's ``nn_matchC``: the first control in data order
  among those at the minimum distance.

The score path keeps, per stratum, the controls in sorted order with two union-find "next alive"
pointers, so finding and removing a neighbour costs O(alpha(n)): greedy matching of 1,000 treated
patients among a million candidates takes a fraction of a second.

References
----------
Ho, D. E., Imai, K., King, G., & Stuart, E. A. (2011). MatchIt: Nonparametric preprocessing for
parametric causal inference. *Journal of Statistical Software*, 42(8), 1-28.
https://doi.org/10.18637/jss.v042.i08 (MatchIt 4.7.1: ``R/matchit2nearest.R``,
``src/nn_matchC_vec.cpp``, ``src/nn_matchC.cpp``).

Rosenbaum, P. R., & Rubin, D. B. (1985). Constructing a control group using multivariate matched
sampling methods that incorporate the propensity score. *The American Statistician*, 39(1),
33-38. https://doi.org/10.1080/00031305.1985.10479383

Ming, K., & Rosenbaum, P. R. (2000). Substantial gains in bias reduction from matching with a
variable number of controls. *Biometrics*, 56(1), 118-124.
https://doi.org/10.1111/j.0006-341X.2000.00118.x
"""

from __future__ import annotations

import numpy as np

from ._eligibility import strata_groups
from ._problem import Assignment, MatchingProblem

__all__ = ["match_nearest", "TIE_RULE_SCORE", "TIE_RULE_METRIC", "ming_rosenbaum_allocation"]

TIE_RULE_SCORE = (
    "nearest by |score difference|; equal distances: the control with the lower score; equal scores: "
    "the control next to the treated patient in the stable sort of all patients by score (data order "
    "breaks equal scores), as MatchIt nn_matchC_vec"
)
TIE_RULE_METRIC = "nearest by distance; equal distances: the control that comes first in data order (MatchIt nn_matchC)"


def ming_rosenbaum_allocation(n_treated: int, ratio: float, min_c: int, max_c: int, score_t: np.ndarray,
                              treated_higher: bool) -> np.ndarray:
    """Controls per treated patient for greedy variable-ratio matching (Ming & Rosenbaum 2000, p. 119).

    m = round(ratio x n1) controls in all; kmax treated patients get ``max_c``, kmin get ``min_c``
    and one gets the rest; treated patients with the most extreme score (highest when the treated
    have the higher mean score) get the fewest. This is MatchIt 4.7.1's ``matchit2nearest``.
    """
    m = int(np.floor(ratio * n_treated + 0.5))
    kmax = int(np.floor((m - min_c * (n_treated - 1)) / (max_c - min_c)))
    kmin = n_treated - kmax - 1
    kmed = m - (min_c * kmin + max_c * kmax)
    ratio0 = np.array([min_c] * kmin + [kmed] + [max_c] * kmax, dtype=np.int64)
    zero = np.flatnonzero(ratio0 == 0)
    for i in zero:  # MatchIt: make sure no treated unit is assigned 0 matches
        ratio0[i] = 1
        if i + 1 < len(ratio0):
            ratio0[i + 1] -= 1
    out = np.empty(n_treated, dtype=np.int64)
    order = np.argsort(-score_t if treated_higher else score_t, kind="stable")
    out[order] = ratio0
    return out


def match_nearest(problem: MatchingProblem) -> Assignment:
    """Greedy nearest-neighbour matching, in rounds, with or without replacement.

    Parameters
    ----------
    problem : MatchingProblem
        Validated problem from the front door.

    Returns
    -------
    Assignment
        Match matrix (one column per round) and pair distances.
    """
    wanted = problem.wanted()
    width = max(1, int(wanted.max(initial=1)))
    mm = np.full((problem.n_treated, width), -1, dtype=np.int64)
    dist = np.full((problem.n_treated, width), np.nan)
    score = problem.distance.kind == "score"
    for tpos, crow in strata_groups(problem):
        if len(crow) == 0 or len(tpos) == 0:
            continue
        rank = np.empty(problem.n_treated, dtype=np.int64)
        rank[problem.order] = np.arange(problem.n_treated)
        tpos = tpos[np.argsort(rank[tpos], kind="stable")]  # processing order within the stratum
        if score:
            _greedy_score(problem, tpos, crow, wanted, mm, dist)
        else:
            _greedy_metric(problem, tpos, crow, wanted, mm, dist)
    return Assignment(match_matrix=mm, pair_distance=dist, tie_rule=TIE_RULE_SCORE if score else TIE_RULE_METRIC,
                      info={"replace": problem.replace})


# --------------------------------------------------------------------------- score distances
def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        parent[i], i = root, parent[i]
    return root


def _greedy_score(problem, tpos, crow, wanted, mm, dist) -> None:
    s = problem.distance.score
    cs_all = s[crow]
    o = np.argsort(cs_all, kind="stable")  # crow is in data order, so ties keep data order
    cs, cr = cs_all[o], crow[o]
    m = len(cs)
    rows_t = problem.treated[tpos]
    st = s[rows_t]
    # position of each treated patient among the controls in the stable sort of all patients
    p_lo = np.searchsorted(cs, st, "left")
    p_hi = np.searchsorted(cs, st, "right")
    pos = p_lo.copy()
    for i in np.flatnonzero(p_hi > p_lo):
        pos[i] = p_lo[i] + np.searchsorted(cr[p_lo[i] : p_hi[i]], rows_t[i])
    cal = problem.caliper
    ccs = problem.covariate_calipers
    cov_vals = [cc.values for cc in ccs]
    cov_w = [cc.width for cc in ccs]

    def cov_ok(t_row: int, c_row: int) -> bool:
        return all(abs(v[c_row] - v[t_row]) <= w for v, w in zip(cov_vals, cov_w))

    cs_l = cs.tolist()
    cr_l = cr.tolist()
    if problem.replace:
        _score_with_replacement(tpos, rows_t, st, pos, cs_l, cr_l, wanted, cal, cov_ok, mm, dist)
        return
    # union-find over 0..m+1 (index i+1 = control i; 0 and m+1 are sentinels)
    left = np.arange(m + 2)
    right = np.arange(m + 2)
    for r in range(int(wanted[tpos].max(initial=0))):
        for i, k in enumerate(tpos):
            if wanted[k] <= r:
                continue
            x = st[i]
            t_row = int(rows_t[i])
            # nearest eligible on the left
            j = _find(left, int(pos[i]))  # largest alive index+1 <= pos (control index <= pos-1)
            jl, dl = -1, np.inf
            while j > 0:
                d = abs(cs_l[j - 1] - x)
                if cal is not None and d > cal:
                    break
                if not ccs or cov_ok(t_row, cr_l[j - 1]):
                    jl, dl = j - 1, d
                    break
                j = _find(left, j - 1)
            j = _find(right, int(pos[i]) + 1)
            jr, dr = -1, np.inf
            while j <= m:
                d = abs(cs_l[j - 1] - x)
                if cal is not None and d > cal:
                    break
                if not ccs or cov_ok(t_row, cr_l[j - 1]):
                    jr, dr = j - 1, d
                    break
                j = _find(right, j + 1)
            if jl < 0 and jr < 0:
                continue
            c = jl if (jl >= 0 and (jr < 0 or dl <= dr)) else jr
            mm[k, r] = cr_l[c]
            dist[k, r] = dl if c == jl else dr
            left[c + 1] = c  # remove control c
            right[c + 1] = c + 2


def _score_with_replacement(tpos, rows_t, st, pos, cs_l, cr_l, wanted, cal, cov_ok, mm, dist) -> None:
    """Each treated patient takes its nearest eligible controls in turn; nothing is used up."""
    m = len(cs_l)
    for i, k in enumerate(tpos):
        x, t_row = st[i], int(rows_t[i])
        lo, hi = int(pos[i]) - 1, int(pos[i])
        for r in range(int(wanted[k])):
            while lo >= 0 and not cov_ok(t_row, cr_l[lo]) and (cal is None or abs(cs_l[lo] - x) <= cal):
                lo -= 1
            while hi < m and not cov_ok(t_row, cr_l[hi]) and (cal is None or abs(cs_l[hi] - x) <= cal):
                hi += 1
            dl = abs(cs_l[lo] - x) if lo >= 0 else np.inf
            dr = abs(cs_l[hi] - x) if hi < m else np.inf
            if cal is not None:
                dl = dl if dl <= cal else np.inf
                dr = dr if dr <= cal else np.inf
            if not (np.isfinite(dl) or np.isfinite(dr)):
                break
            if dl <= dr:
                mm[k, r], dist[k, r] = cr_l[lo], dl
                lo -= 1
            else:
                mm[k, r], dist[k, r] = cr_l[hi], dr
                hi += 1


# --------------------------------------------------------------------------- metric and matrix distances
def _greedy_metric(problem, tpos, crow, wanted, mm, dist) -> None:
    used = np.zeros(len(crow), dtype=bool)
    cal = problem.caliper
    for r in range(int(wanted[tpos].max(initial=0))):
        for k in tpos:
            if wanted[k] <= r:
                continue
            t = int(problem.treated[k])
            free = ~used if not problem.replace else np.ones(len(crow), dtype=bool)
            if r > 0:  # not twice in the same set
                free &= ~np.isin(crow, mm[k, :r])
            idx = np.flatnonzero(free)
            if idx.size == 0:
                continue
            d = problem.distance.between(t, crow[idx])
            ok = np.isfinite(d)
            if cal is not None:
                ok &= d <= cal
            if problem.covariate_calipers:
                ok &= problem.cov_ok(np.full(idx.size, t), crow[idx])
            if not ok.any():
                continue
            idx, d = idx[ok], d[ok]
            best = int(np.argmin(d))  # first minimum: data order breaks ties
            if not problem.replace:
                used[idx[best]] = True
            mm[k, r] = crow[idx[best]]
            dist[k, r] = d[best]
