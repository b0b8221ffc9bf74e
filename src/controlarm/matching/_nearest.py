"""Greedy nearest-neighbour k:1 matching without replacement, as MatchIt's ``method = "nearest"``.

Matching runs in rounds: in round r every treated patient, taken in the processing order, gets
its r-th control (the nearest still-unused control of its exact stratum within the caliper)
before any treated patient gets an (r+1)-th. A treated patient with no eligible control in a round
keeps an empty slot. Greedy matching does not minimise the total distance; optimal matching
(a later method) does.

Tie rules (stated in the result's settings):

* score distances (``ps``, ``logit_ps``) follow MatchIt's ``nn_matchC_vec``: all patients are
  sorted by score (stable, so data order breaks equal scores); the nearest unused control on each
  side of the treated patient in that order is found and the left one (lower score) wins when the
  two are equally distant. So among equidistant controls the lower score wins, and among
  controls with the same score the one next to the treated patient in the sort order wins.
* metric distances (``mahalanobis``) follow MatchIt's ``nn_matchC``: the first control in data
  order among those at the minimum distance.

References
----------
Ho, D. E., Imai, K., King, G., & Stuart, E. A. (2011). MatchIt: Nonparametric preprocessing for
parametric causal inference. *Journal of Statistical Software*, 42(8), 1-28.
https://doi.org/10.18637/jss.v042.i08 (MatchIt 4.7.1: ``R/matchit2nearest.R``,
``src/nn_matchC_vec.cpp``, ``src/nn_matchC.cpp``).

Rosenbaum, P. R., & Rubin, D. B. (1985). Constructing a control group using multivariate matched
sampling methods that incorporate the propensity score. *The American Statistician*, 39(1),
33-38. https://doi.org/10.1080/00031305.1985.10479383
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from ._problem import Assignment, MatchingProblem

__all__ = ["match_nearest", "TIE_RULE_SCORE", "TIE_RULE_METRIC"]

TIE_RULE_SCORE = (
    "nearest by |score difference|; equal distances: the control with the lower score; equal scores: "
    "the control next to the treated patient in the stable sort of all patients by score (data order "
    "breaks equal scores), as MatchIt nn_matchC_vec"
)
TIE_RULE_METRIC = "nearest by distance; equal distances: the control that comes first in data order (MatchIt nn_matchC)"


def match_nearest(problem: MatchingProblem) -> Assignment:
    """Greedy nearest-neighbour k:1 matching without replacement.

    Parameters
    ----------
    problem : MatchingProblem
        Validated problem from the front door; ``problem.replace`` must be False.

    Returns
    -------
    Assignment
        Match matrix (one column per round) and pair distances.

    Notes
    -----
    Score distances use a sorted list per exact stratum and look only at the two neighbours of the
    treated patient, O(log n) per lookup plus O(n) for list removal; metric distances compute the
    distance to every unused control of the stratum, O(n_controls) per lookup.
    """
    if problem.replace:
        raise NotImplementedError("nearest matching with replacement is not available yet")
    if problem.distance.kind == "score":
        return _nearest_score(problem)
    return _nearest_metric(problem)


def _strata(problem: MatchingProblem) -> np.ndarray:
    if problem.strata is None:
        return np.zeros(problem.n_rows, dtype=np.int64)
    return problem.strata


def _empty(problem: MatchingProblem) -> tuple[np.ndarray, np.ndarray]:
    mm = np.full((problem.n_treated, problem.ratio), -1, dtype=np.int64)
    dist = np.full((problem.n_treated, problem.ratio), np.nan)
    return mm, dist


def _nearest_score(problem: MatchingProblem) -> Assignment:
    score = problem.distance.score
    assert score is not None
    order_all = np.argsort(score, kind="stable")  # R's sort.list (radix) is stable too
    pos = np.empty_like(order_all)
    pos[order_all] = np.arange(len(order_all))
    strata = _strata(problem)
    # per stratum: sorted positions (in the global score order) of the unused controls
    avail: dict[int, list[int]] = {}
    for c in problem.controls:
        avail.setdefault(int(strata[c]), []).append(int(pos[c]))
    for lst in avail.values():
        lst.sort()
    cal = problem.caliper
    mm, dist = _empty(problem)
    for r in range(problem.ratio):
        for k in problem.order:
            t = int(problem.treated[k])
            lst = avail.get(int(strata[t]))
            if not lst:
                continue
            st = score[t]
            i = bisect_left(lst, int(pos[t]))
            d_left = abs(score[order_all[lst[i - 1]]] - st) if i > 0 else np.inf
            d_right = abs(score[order_all[lst[i]]] - st) if i < len(lst) else np.inf
            if d_left <= d_right:
                j, d = i - 1, d_left
            else:
                j, d = i, d_right
            if not np.isfinite(d) or (cal is not None and d > cal):
                continue
            mm[k, r] = order_all[lst.pop(j)]
            dist[k, r] = d
    return Assignment(match_matrix=mm, pair_distance=dist, tie_rule=TIE_RULE_SCORE)


def _nearest_metric(problem: MatchingProblem) -> Assignment:
    strata = _strata(problem)
    groups: dict[int, np.ndarray] = {}
    for s in np.unique(strata[problem.controls]):
        groups[int(s)] = problem.controls[strata[problem.controls] == s]  # data order
    used = {s: np.zeros(len(rows), dtype=bool) for s, rows in groups.items()}
    cal = problem.caliper
    mm, dist = _empty(problem)
    for r in range(problem.ratio):
        for k in problem.order:
            t = int(problem.treated[k])
            s = int(strata[t])
            rows = groups.get(s)
            if rows is None:
                continue
            free = np.flatnonzero(~used[s])
            if free.size == 0:
                continue
            d = problem.distance.between(t, rows[free])
            if cal is not None:
                ok = d <= cal
                if not ok.any():
                    continue
                free, d = free[ok], d[ok]
            best = int(np.argmin(d))  # first minimum: data order breaks ties
            used[s][free[best]] = True
            mm[k, r] = rows[free[best]]
            dist[k, r] = d[best]
    return Assignment(match_matrix=mm, pair_distance=dist, tie_rule=TIE_RULE_METRIC)
