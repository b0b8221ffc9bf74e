"""Analysis room: rank tests for 1:k matched sets (aligned ranks and van Elteren).

Both tests compare the treated patient with the other members of their own set, any member of a
set being equally likely to be the treated one under no effect. Their exact distributions come
from enumerating those assignments (``_exact.compute_permutation``); above ``max_enumeration``
assignments the normal approximation with the exact permutation mean and variance is used,
which is what ``coin`` computes. No Python library offers either test for matched sets: scipy
and statsmodels have no stratified rank tests, so they are written here and checked against R's
``coin`` and against brute-force enumeration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError
from ._exact import ExactResult, compute_permutation
from ._results import TestResult
from ._sets import prepare

__all__ = ["compute_within_set_normal", "aligned_rank_test", "van_elteren_test"]

REF_ALIGNED = (
    "Hodges JL, Lehmann EL. Rank methods for combination of independent experiments in analysis "
    "of variance. Ann Math Stat 1962;33:482-497. doi:10.1214/aoms/1177704575; Lehmann EL. "
    "Nonparametrics: Statistical Methods Based on Ranks. Holden-Day; 1975. Section 3.3"
)
REF_VAN_ELTEREN = (
    "van Elteren PH. On the combination of independent two-sample tests of Wilcoxon. Bull Int "
    "Stat Inst 1960;37:351-361; Lehmann EL. Nonparametrics. Holden-Day; 1975. Section 3.3"
)


def compute_within_set_normal(contributions: Sequence[np.ndarray], observed: float) -> dict:
    """Normal approximation to ``S = sum_s X_s``, ``X_s`` uniform over ``contributions[s]``.

    ``E S = sum mean(c_s)``, ``Var S = sum mean((c_s - mean(c_s))^2)`` (the exact permutation
    moments); ``z = (s - E S) / sqrt(Var S)``. Returns ``expected, variance, z, p_two_sided,
    p_greater, p_less`` (p None when the variance is 0).
    """
    cs = [np.asarray(c, float) for c in contributions]
    e = float(sum(c.mean() for c in cs))
    v = float(sum(((c - c.mean()) ** 2).mean() for c in cs))
    out = {"expected": e, "variance": v, "z": None, "p_two_sided": None, "p_greater": None,
           "p_less": None}
    if v > 0:
        z = (observed - e) / math.sqrt(v)
        out.update(z=z, p_two_sided=float(2 * stats.norm.sf(abs(z))),
                   p_greater=float(stats.norm.sf(z)), p_less=float(stats.norm.cdf(z)))
    return out


def _members(md) -> list[np.ndarray]:
    """Outcome values per set, treated first (``MatchedData.frame`` is sorted that way)."""
    f = md.frame
    return [f["y"].to_numpy(float)[idx] for idx in f.groupby("set_id", sort=True).indices.values()]


def _within_set_result(name, method, contributions, md, conv, reference, *, max_enumeration,
                       exact) -> TestResult:
    if not contributions:
        return TestResult(name=name, method=method, statistic=None, p_value=None,
                          alternative="two-sided", framing="matched", n=0,
                          conventions={**conv, **md.conventions(),
                                       "undefined": "no complete matched set"},
                          reference=reference)
    observed = float(sum(c[0] for c in contributions))
    normal = compute_within_set_normal(contributions, observed)
    log_size = sum(math.log(c.size) for c in contributions)
    use_exact = exact and log_size <= math.log(max_enumeration) + 1e-12
    conv = {**conv, "null": "within each set any member equally likely to be the treated one",
            "expected": normal["expected"], "variance": normal["variance"], "z": normal["z"],
            "p_normal_approximation": normal["p_two_sided"],
            "n_assignments": float(math.exp(log_size)), **md.conventions()}
    if use_exact:
        res: ExactResult = compute_permutation(contributions, max_enumeration=max_enumeration)
        p, pg, pl = res.p_two_sided, res.p_greater, res.p_less
        conv["distribution"] = "exact enumeration of all assignments"
        conv["two_sided"] = "P(|S - E S| >= |s - E S|)"
    else:
        p, pg, pl = normal["p_two_sided"], normal["p_greater"], normal["p_less"]
        conv["distribution"] = ("normal approximation with the exact permutation mean and "
                                f"variance (more than {max_enumeration} assignments)"
                                if exact else "normal approximation (exact not requested)")
        if p is None:
            conv["undefined"] = "the permutation variance is 0 (no set has distinct values)"
    conv.update(p_greater=pg, p_less=pl)
    return TestResult(
        name=name, method=method + (", exact" if use_exact else ", normal approximation"),
        statistic=observed, p_value=p, alternative="two-sided", framing="matched", n=md.n_sets,
        conventions=conv, reference=reference,
    )


def aligned_rank_test(endpoints: pd.DataFrame, column: str, *, align: str = "mean",
                      exact: bool = True, max_enumeration: int = 2_000_000) -> TestResult:
    """Hodges-Lehmann aligned-rank test for 1:k matched sets.

    Each outcome is aligned by subtracting its set's mean (or median), which removes the
    between-set differences; the aligned values of all sets are then ranked together (average
    ranks for ties). The statistic is the sum of the treated patients' aligned ranks. Unlike
    ranking within sets (van Elteren), aligned ranks compare observations across sets, which
    gains power when sets are small, as 1:k sets are.

    Parameters
    ----------
    align : {"mean", "median"}
        Location subtracted within each set.
    exact : bool
        Enumerate all ``prod(n_s)`` assignments when at most ``max_enumeration``; otherwise (or
        when False) the normal approximation with the exact permutation moments (as R ``coin``).

    References
    ----------
    Hodges JL, Lehmann EL. Ann Math Stat 1962;33:482-497. doi:10.1214/aoms/1177704575
    Lehmann EL. Nonparametrics: Statistical Methods Based on Ranks. Holden-Day; 1975.
    """
    if align not in ("mean", "median"):
        raise InputError(f"align must be 'mean' or 'median'; got {align!r}")
    md = prepare(endpoints, column)
    members = _members(md)
    centre = np.mean if align == "mean" else np.median
    conv = {"alignment": f"y minus the {align} of its set",
            "ranks": "aligned values of all sets ranked together, average ranks for ties; "
            "aligned values within 1e-10 of the data's scale count as tied",
            "statistic": "sum of the treated patients' aligned ranks"}
    if not members:
        return _within_set_result("aligned_rank", "Aligned-rank test over matched sets", [], md,
                                  conv, REF_ALIGNED, max_enumeration=max_enumeration, exact=exact)
    aligned = np.concatenate([y - centre(y) for y in members])
    # floating-point noise must not break ties: snap to a grid 1e-10 of the data's scale
    tol = 1e-10 * max(1.0, float(np.abs(np.concatenate(members)).max(initial=0.0)))
    ranks = stats.rankdata(np.round(aligned / tol) * tol)
    bounds = np.cumsum([0] + [y.size for y in members])
    contributions = [ranks[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    return _within_set_result("aligned_rank", "Aligned-rank test over matched sets",
                              contributions, md, conv, REF_ALIGNED,
                              max_enumeration=max_enumeration, exact=exact)


def van_elteren_test(endpoints: pd.DataFrame, column: str, *, exact: bool = True,
                     max_enumeration: int = 2_000_000) -> TestResult:
    """van Elteren's stratified Wilcoxon test with matched sets as strata.

    Within each set the members are ranked (average ranks for ties); the statistic is
    ``sum_s R_s / (n_s + 1)``, the treated patient's within-set rank weighted by van Elteren's
    locally most powerful weight ``1 / (n_s + 1)``. With equal set sizes it is the stratified
    Wilcoxon rank-sum test of R ``coin::wilcox_test(y ~ group | set)``.

    References
    ----------
    van Elteren PH. Bull Int Stat Inst 1960;37:351-361.
    Lehmann EL. Nonparametrics. Holden-Day; 1975. Section 3.3.
    """
    md = prepare(endpoints, column)
    contributions = [stats.rankdata(y) / (y.size + 1) for y in _members(md)]
    conv = {"ranks": "within each set, average ranks for ties",
            "statistic": "sum over sets of treated rank / (set size + 1)",
            "weights": "1 / (n_s + 1) (van Elteren)"}
    return _within_set_result("van_elteren", "van Elteren stratified Wilcoxon test over matched "
                              "sets", contributions, md, conv, REF_VAN_ELTEREN,
                              max_enumeration=max_enumeration, exact=exact)
