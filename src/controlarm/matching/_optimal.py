"""Optimal matching: the total distance is minimal for the ratio and the restrictions.

Optimal k:1 matching without replacement is a minimum-cost flow (Rosenbaum 1989), solved here
as an assignment of controls to treated *slots* (``_solver.py``). To reach a million candidates the
problem is pruned to a sparse candidate graph: each treated patient keeps its K nearest eligible
candidates (inside its exact stratum, within the calipers). Pruning can change the optimum, so the
solution is checked and the pruning widened until it cannot:

**Optimality certificate.** Let L_t be t's list and b_t a lower bound on the distance of every
eligible control left off it. If some control c' in L_t is *unused* by the pruned optimum and
d(t, c') <= b_t, then no left-off edge of t can improve the solution. Proof by LP duality: in
any optimal dual of the pruned assignment problem an unused control has price 0, so every slot row
r of t has u_r <= d(t, c'); give each left-off control price 0 too; then for every left-off edge
u_r - w_c <= d(t, c') <= b_t <= d(t, c), so the dual stays feasible for the full problem with the
same objective, and the pruned optimum is optimal for the full problem. Treated patients whose
whole list is used (or who hold no unused candidate close enough) get K multiplied by 4 and the
problem is solved again, until every treated patient is certified (a complete list certifies
trivially). The loop ends: lists only grow, up to all eligible candidates.

Small problems (at most ``DENSE_PAIRS`` eligible pairs) skip pruning altogether.

Ties among optimal solutions are broken by the solver; they are deterministic for given data and
SciPy version.

References
----------
Rosenbaum, P. R. (1989). Optimal matching for observational studies. *Journal of the American
Statistical Association*, 84(408), 1024-1032. https://doi.org/10.1080/01621459.1989.10478868

Hansen, B. B., & Klopfer, S. O. (2006). Optimal full matching and related designs via network
flows. *Journal of Computational and Graphical Statistics*, 15(3), 609-627.
https://doi.org/10.1198/106186006X137047

Ming, K., & Rosenbaum, P. R. (2001). A note on optimal matching with variable controls using the
assignment algorithm. *Journal of Computational and Graphical Statistics*, 10(3), 455-463.
https://doi.org/10.1198/106186001317114938
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ._eligibility import CandidateGraph, candidate_lists, strata_groups
from ._line import LINE_MAX_CELLS, line_optimal
from ._nearest import match_nearest
from ._problem import Assignment, MatchingProblem
from ._solver import solve_slots

__all__ = ["match_optimal", "certified_solve", "DENSE_PAIRS", "TIE_RULE_OPTIMAL"]

DENSE_PAIRS = 400_000
GROWTH = 4
TIE_RULE_OPTIMAL = (
    "minimum total distance (exact, scipy LAPJVsp); among equally good solutions the solver's choice, "
    "deterministic for given data and SciPy version; controls of a set are listed by increasing distance "
    "(data order breaks ties)"
)
OBJECTIVE = (
    "lexicographic: (1) as many treated patients matched as possible, (2) then as many controls as possible "
    "(up to the ratio), (3) then the smallest total distance"
)


def certified_solve(
    lists: Callable[[np.ndarray | None], CandidateGraph],
    *,
    n_treated: int,
    active: np.ndarray,
    hi: np.ndarray,
    lo: np.ndarray,
    total: int | None,
    bound: float,
    k0: int | None,
    unit_of: Callable[[np.ndarray], tuple[np.ndarray, int]],
    fallback: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, dict]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Solve on pruned lists, widening until the optimality certificate holds for every treated patient.

    ``fallback`` (an exact solver for the whole problem) replaces the widening when the first
    pruned round cannot be certified. Returns (treated positions, control rows, distances, info).
    """
    k = None if k0 is None else np.where(active, k0, 0).astype(np.int64)
    info: dict = {"rounds": [], "solver": "scipy.sparse.csgraph.min_weight_full_bipartite_matching (LAPJVsp)"}
    while True:
        t0 = time.perf_counter()
        g = lists(k)
        unit, n_units = unit_of(g.cr)
        sol = solve_slots(g.tp, unit, g.d, n_treated=n_treated, n_units=n_units, hi=hi, lo=lo, total=total, bound=bound)
        # certificate: an unused listed control no farther than the bound on everything left off
        unused = ~sol.used_units[unit]
        best_unused = np.full(n_treated, np.inf)
        np.minimum.at(best_unused, g.tp[unused], g.d[unused])
        certified = ~np.isfinite(g.lb) | (best_unused <= g.lb) | ~active
        info["rounds"].append(
            {
                "k_max": None if k is None else int(k.max(initial=0)),
                "edges": int(len(g.tp)),
                "uncertified": int((~certified).sum()),
                "seconds": round(time.perf_counter() - t0, 4),
            }
        )
        if certified.all():
            break
        assert k is not None  # complete lists always certify
        if fallback is not None:
            tp, cr, d, extra = fallback()
            info.update(extra)
            info["certificate"] = ("not needed: the line algorithm is exact on the whole stratum (every slot filled; "
                                   "uncrossing pairs never costs more, so sorted pairing of the chosen controls is optimal)")
            info["pruned"] = False
            return tp, cr, d, info
        k = np.where(certified, k, k * GROWTH)
    info["certificate"] = (
        "every treated patient holds an unused candidate no farther than its nearest left-off eligible candidate "
        "(or its list is complete): the pruned optimum is optimal for the full problem (LP duality)"
    )
    info["pruned"] = k is not None
    return sol.tp, g.cr[_pick(g, unit, sol)], sol.d, info


def _pick(g: CandidateGraph, unit: np.ndarray, sol) -> np.ndarray:
    """Edge index of each chosen (treated, unit) pair."""
    n_units = int(unit.max()) + 1 if len(unit) else 1
    key = g.tp.astype(np.int64) * n_units + unit
    order = np.argsort(key, kind="stable")
    return order[np.searchsorted(key[order], sol.tp.astype(np.int64) * n_units + sol.unit)]


def _line_solve(problem: MatchingProblem, groups, hi: np.ndarray):
    """Exact optimum of a score-distance problem in which every slot can be filled (``_line.py``)."""
    t0 = time.perf_counter()
    score = problem.distance.score
    tps, crs, ds = [], [], []
    for tpos, crow in groups:
        tpos = tpos[hi[tpos] > 0]
        if len(tpos) == 0:
            continue
        k = int(hi[tpos][0])
        ti, ci = line_optimal(score[problem.treated[tpos]], k, score[crow])  # type: ignore[index]
        tps.append(tpos[ti])
        crs.append(crow[ci])
        ds.append(np.abs(score[crow[ci]] - score[problem.treated[tpos[ti]]]))  # type: ignore[index]
    e = np.zeros(0, dtype=np.int64)
    tp = np.concatenate(tps) if tps else e
    cr = np.concatenate(crs) if crs else e
    d = np.concatenate(ds) if ds else np.zeros(0)
    info = {"solver": "dynamic programming on the sorted scores (_line.py; exact for the whole stratum)",
            "line_seconds": round(time.perf_counter() - t0, 4),
            "why": "the first pruned round could not be certified (contested pool); every slot can be filled, so "
                   "the exact line algorithm replaced widening"}
    return tp, cr, d, info


def match_optimal(problem: MatchingProblem) -> Assignment:
    """Optimal matching without replacement (with replacement: each treated patient's nearest controls).

    Parameters
    ----------
    problem : MatchingProblem
        ``n_wanted`` gives the most controls per treated patient; ``min_controls`` and ``total`` make
        the ratio variable (each treated patient gets between min and max, ``total`` in all).
        ``options["k_nearest"]`` sets the first list length of the pruned graph (None: automatic).

    Returns
    -------
    Assignment
        Match matrix with each treated patient's controls sorted by distance; ``info`` reports the
        objective, the pruning rounds and the optimality certificate.
    """
    if problem.replace:
        a = match_nearest(problem)
        info = dict(a.info)
        info["note"] = ("with replacement the controls of one treated patient do not constrain another's, so "
                        "taking each treated patient's nearest eligible controls is optimal")
        return Assignment(match_matrix=a.match_matrix, pair_distance=a.pair_distance, tie_rule=a.tie_rule, info=info)
    active = problem.active if problem.active is not None else np.ones(problem.n_treated, dtype=bool)
    hi = np.where(active, problem.wanted(), 0).astype(np.int64)
    if problem.min_controls is not None:
        lo = np.where(active, problem.min_controls, 0)
    else:
        lo = np.minimum(hi, 1)
    k0 = problem.options.get("k_nearest")
    n_pairs = sum(len(tp) * len(cr) for tp, cr in strata_groups(problem))
    if k0 is None and n_pairs > DENSE_PAIRS:
        k0 = int(max(50, 8 * int(hi.max(initial=1))))
    rows = np.concatenate([problem.treated, problem.controls])
    bound = problem.caliper if problem.caliper is not None else problem.distance.upper_bound(rows)

    def unit_of(cr: np.ndarray) -> tuple[np.ndarray, int]:
        uniq, inv = np.unique(cr, return_inverse=True)
        return inv.astype(np.int64), len(uniq)

    groups = strata_groups(problem)
    fallback = None
    if (problem.distance.kind == "score" and problem.caliper is None and not problem.covariate_calipers
            and problem.min_controls is None
            and all(len(cr) >= hi[tp].sum() and len(cr) * hi[tp].sum() <= LINE_MAX_CELLS for tp, cr in groups)):
        def fallback():
            return _line_solve(problem, groups, hi)

    tp, cr, d, info = certified_solve(
        lambda k: candidate_lists(problem, k),
        n_treated=problem.n_treated, active=active, hi=hi, lo=lo, total=problem.total,
        bound=float(bound), k0=k0, unit_of=unit_of, fallback=fallback,
    )
    width = max(1, int(hi.max(initial=1)))
    mm = np.full((problem.n_treated, width), -1, dtype=np.int64)
    pdist = np.full((problem.n_treated, width), np.nan)
    o = np.lexsort((cr, d, tp))  # by treated, then distance, then data order
    tp, cr, d = tp[o], cr[o], d[o]
    slot = np.arange(len(tp)) - np.searchsorted(tp, tp, "left")
    mm[tp, slot] = cr
    pdist[tp, slot] = d
    info.update({"objective": OBJECTIVE, "total_distance": float(d.sum()), "n_pairs_eligible_max": int(n_pairs)})
    return Assignment(match_matrix=mm, pair_distance=pdist, tie_rule=TIE_RULE_OPTIMAL, info=info)
