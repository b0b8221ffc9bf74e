"""Analysis room: exact null distributions for small matched designs (pure vector functions).

With 8 matched sets, exact enumeration beats asymptotics (DESIGN section 5). The libraries do not
cover these cases, so the code is written here and checked against R and brute-force enumeration:

* statsmodels has no exact conditional test for 2x2xK tables (R's ``mantelhaen.test(exact=TRUE)``);
  for 1:k matched sets it is the exact test behind conditional logistic regression;
* ``scipy.stats.wilcoxon`` has no exact distribution with ties or zeros, which set-level
  contrasts of counts (free days) always have;
* no library enumerates within-set permutations of 1:k sets of varying size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "ExactResult",
    "compute_exact_conditional",
    "compute_signed_rank",
    "compute_hodges_lehmann",
    "compute_permutation",
]

#: Relative tolerance of "probability <= observed" in two-sided exact p-values (R uses 1e-7).
REL_TOL = 1e-7
#: Above this many non-zero differences the signed-rank distribution is not enumerated
#: (the dynamic programme costs about n^3 operations); the normal approximation is used instead.
MAX_EXACT_SIGNED_RANK = 1000


@dataclass(frozen=True)
class ExactResult:
    """An exact (or Monte Carlo) test: statistic, its null mean, and three p-values."""

    statistic: float
    expected: float
    p_two_sided: float
    p_greater: float
    p_less: float
    n_informative: int
    exact: bool = True
    p_mid: float | None = None
    n_resamples: int | None = None
    mc_standard_error: float | None = None


def _pmf_power(pmf: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-fold convolution of ``pmf`` with itself (repeated squaring)."""
    if pmf.size == 2:  # Bernoulli: the k-fold sum is binomial
        return stats.binom.pmf(np.arange(k + 1), k, pmf[1] / pmf.sum())
    out, base = np.array([1.0]), pmf
    while k:
        if k & 1:
            out = np.convolve(out, base)
        k >>= 1
        if k:
            base = np.convolve(base, base)
    return out


def compute_exact_conditional(tables: np.ndarray) -> ExactResult:
    """Exact conditional test of no association in K stratified 2x2 tables.

    Parameters
    ----------
    tables : array of shape (K, 2, 2)
        ``tables[k] = [[a, b], [c, d]]``: rows exposure (treated, control), columns outcome
        (event, no event). A 1:k matched set is the table ``[[t, 1 - t], [m - t, k - m + t]]``.

    Returns
    -------
    ExactResult
        ``statistic`` is ``S = sum(a)``. Conditional on all margins, each ``a_k`` is
        hypergeometric (for a 1:k set, Bernoulli(m/n)); the null distribution of ``S`` is their
        exact convolution. The two-sided p sums the probabilities not above that of the observed
        ``S`` (times ``1 + 1e-7``, as R does); the one-sided ones are ``P(S >= s)`` and
        ``P(S <= s)``; ``p_mid`` is twice the smaller one-sided mid-p
        (``P(S > s) + P(S = s) / 2``), capped at 1. Tables with a degenerate distribution (a
        concordant set) add a constant.

    Notes
    -----
    Tables with the same margins have the same distribution, so they are grouped: a group of
    ``K`` identical Bernoulli tables contributes a binomial, any other group a ``K``-fold
    convolution by repeated squaring. 1,000 matched 1:3 sets have at most 5 distinct margins,
    so the test costs a handful of convolutions whatever the number of sets.

    References
    ----------
    Breslow NE, Day NE. Statistical Methods in Cancer Research, Vol. I: The Analysis of
    Case-Control Studies. IARC Sci Publ 32; 1980. Chapter 7.
    Mehta CR, Patel NR, Gray R. Computing an exact confidence interval for the common odds ratio
    in several 2x2 contingency tables. J Am Stat Assoc 1985;80:969-973.
    doi:10.1080/01621459.1985.10478212

    Examples
    --------
    Five 1:3 sets, each with one control death and the treated patient alive (y = 1 = alive):

    >>> res = compute_exact_conditional([[[1, 0], [2, 1]]] * 5)
    >>> round(res.p_greater, 4)  # (3/4)^5
    0.2373
    """
    tables = np.asarray(tables, dtype=np.int64).reshape(-1, 2, 2)
    a, b, c, d = (tables[:, i, j] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    r1, c1, n = a + b, a + c, a + b + c + d
    lo, hi = np.maximum(0, r1 + c1 - n), np.minimum(r1, c1)
    s_obs = int(a.sum())
    margins, counts = np.unique(np.column_stack([n, c1, r1]), axis=0, return_counts=True)
    dist = np.array([1.0])
    for (nn, cc, rr), k in zip(margins.tolist(), counts.tolist()):
        lo_g, hi_g = max(0, rr + cc - nn), min(rr, cc)
        if hi_g > lo_g:
            pmf = stats.hypergeom(nn, cc, rr).pmf(np.arange(lo_g, hi_g + 1))
            dist = np.convolve(dist, _pmf_power(pmf, int(k)))
    dist = dist / dist.sum()
    idx = s_obs - int(lo.sum())
    p_obs = dist[idx]
    greater, less = dist[idx:].sum(), dist[: idx + 1].sum()
    mid = min(greater - p_obs / 2, less - p_obs / 2)
    return ExactResult(
        statistic=float(s_obs),
        expected=float(np.where(n > 0, r1 * c1 / np.maximum(n, 1), 0.0).sum()),
        p_two_sided=_clip(dist[dist <= p_obs * (1 + REL_TOL)].sum()),
        p_greater=_clip(greater),
        p_less=_clip(less),
        n_informative=int((hi > lo).sum()),
        p_mid=_clip(2 * mid),
    )


def _clip(p: float) -> float:
    return float(min(1.0, max(0.0, p)))


def _signed_rank_null(scores: np.ndarray, p: float = 0.5) -> np.ndarray:
    """Distribution of ``sum(score_i * B_i)``, ``B_i`` iid Bernoulli(p), integer scores >= 0.

    Element ``j`` is ``P(sum = j)``: the 2^n sign assignments counted exactly by dynamic
    programming (one shift-and-add per score). ``p = 1/2`` is the signed-rank null;
    ``p = Gamma / (1 + Gamma)`` is Rosenbaum's upper bounding distribution.
    """
    scores = np.asarray(scores).astype(np.int64)
    total = int(scores.sum())
    dist = np.zeros(total + 1)
    dist[0] = 1.0
    reach = 0
    for s in scores.tolist():
        new = dist * (1 - p)
        new[s : reach + s + 1] += p * dist[: reach + 1]
        dist = new
        reach += s
    return dist


def compute_signed_rank(d: Sequence[float]) -> tuple[ExactResult, dict[str, float]]:
    """Exact Wilcoxon signed-rank test of ``d`` against 0, ties and zeros allowed.

    Zeros are dropped (Wilcoxon's rule, as R's ``wilcox.test`` and ``exactRankTests``); tied
    ``|d|`` get average ranks. The statistic is ``V``, the sum of the ranks of the positive
    differences. Its exact conditional null distribution (given the ranks) comes from the 2^n
    sign assignments. The two-sided p is ``P(|V - E V| >= |v - E V|)``; the distribution is
    symmetric, so this is twice the smaller tail, capped at 1.

    Returns
    -------
    result : ExactResult
    moments : dict
        ``n_used``, ``n_zero``, ``variance`` (tie-corrected) and ``p_normal``, the two-sided
        normal-approximation p-value without continuity correction, for comparison with R.

    References
    ----------
    Wilcoxon F. Individual comparisons by ranking methods. Biometrics Bull 1945;1:80-83.
    doi:10.2307/3001968
    Hollander M, Wolfe DA, Chicken E. Nonparametric Statistical Methods, 3rd ed. Wiley; 2014.
    Section 3.1.
    """
    d = np.asarray(d, dtype=float)
    nonzero = d[d != 0]
    ranks = stats.rankdata(np.abs(nonzero))  # average ranks: multiples of 1/2
    scores = np.rint(2 * ranks).astype(np.int64)
    v2 = int(scores[nonzero > 0].sum())
    total = int(scores.sum())
    expected = total / 4
    variance = float((ranks**2).sum() / 4)
    z = (v2 / 2 - expected) / math.sqrt(variance) if variance > 0 else 0.0
    if nonzero.size <= MAX_EXACT_SIGNED_RANK:
        dist = _signed_rank_null(scores)
        dev = np.abs(2 * np.arange(total + 1) - total)
        obs_dev = abs(2 * v2 - total)
        ps = (dist[dev >= obs_dev].sum(), dist[v2:].sum(), dist[: v2 + 1].sum())
    else:
        ps = (2 * stats.norm.sf(abs(z)), stats.norm.sf(z), stats.norm.cdf(z))
    result = ExactResult(
        statistic=v2 / 2,
        expected=expected,
        p_two_sided=_clip(ps[0]),
        p_greater=_clip(ps[1]),
        p_less=_clip(ps[2]),
        n_informative=int(nonzero.size),
        exact=nonzero.size <= MAX_EXACT_SIGNED_RANK,
    )
    moments = {
        "n_used": int(nonzero.size),
        "n_zero": int(d.size - nonzero.size),
        "variance": variance,
        "p_normal": float(2 * stats.norm.sf(abs(z))) if variance > 0 else 1.0,
    }
    return result, moments


def compute_hodges_lehmann(d: Sequence[float], *, alpha: float = 0.05) -> dict[str, float]:
    """Hodges-Lehmann estimate of the centre of ``d`` with its exact distribution-free CI.

    The estimate is the median of the ``M = n(n+1)/2`` Walsh averages ``(d_i + d_j)/2, i <= j``.
    The interval is ``[W_(C), W_(M+1-C)]`` with ``C = M + 1 - t``, where ``t`` is the smallest
    value with ``P(T+ >= t) <= alpha/2`` under the untied signed-rank distribution (Hollander,
    Wolfe & Chicken 2014, section 3.3; R's ``wilcox.test(conf.int=TRUE)`` exact branch). Zeros
    are kept. When ``n`` is too small for the level, ``C = 1`` (the range of the Walsh
    averages) and the achieved level is reported.

    Returns
    -------
    dict
        ``estimate, ci_low, ci_high, achieved_level, n``.

    References
    ----------
    Hodges JL, Lehmann EL. Estimates of location based on rank tests. Ann Math Stat
    1963;34:598-611. doi:10.1214/aoms/1177704172
    Hollander M, Wolfe DA, Chicken E. Nonparametric Statistical Methods, 3rd ed. Wiley; 2014.
    Sections 3.2-3.3.
    """
    d = np.sort(np.asarray(d, dtype=float))
    n = d.size
    if n == 0:
        return {"estimate": None, "ci_low": None, "ci_high": None, "achieved_level": None, "n": 0}
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2)
    m = walsh.size
    if n <= MAX_EXACT_SIGNED_RANK:
        dist = _signed_rank_null(np.arange(1, n + 1))  # P(T+ = t), t = 0..M
        upper_tail = np.cumsum(dist[::-1])[::-1]  # P(T+ >= t)
        ok = np.nonzero(upper_tail <= alpha / 2)[0]
        t = int(ok[0]) if ok.size else m  # t = M gives C = 1
        c = max(1, m + 1 - t)
        achieved = 1 - 2 * float(upper_tail[m + 1 - c])
    else:  # normal approximation to the critical value (Hollander, Wolfe & Chicken, eq. 3.24)
        z = stats.norm.isf(alpha / 2)
        c = max(1, int(math.floor(m / 2 - z * math.sqrt(n * (n + 1) * (2 * n + 1) / 24))))
        achieved = 1 - alpha
    return {
        "estimate": float(np.median(walsh)),
        "ci_low": float(walsh[c - 1]),
        "ci_high": float(walsh[m - c]),
        "achieved_level": achieved,
        "n": int(n),
    }


def compute_permutation(
    contributions: Sequence[np.ndarray],
    observed: Sequence[int] | None = None,
    *,
    max_enumeration: int = 2_000_000,
    n_resamples: int = 100_000,
    seed: int = 0,
) -> ExactResult:
    """Permutation test of ``S = sum_s X_s``, each ``X_s`` uniform over ``contributions[s]``.

    For a matched set, ``contributions[s][j]`` is the statistic when member ``j`` is the treated
    one, and ``observed[s]`` the index of the real treated member (default 0). All
    ``prod(len(c))`` assignments are enumerated when that is at most ``max_enumeration``;
    otherwise ``n_resamples`` random assignments are drawn with ``seed`` and
    ``p = (1 + #{|S*| >= |s|}) / (1 + n_resamples)`` (``exact=False``), with its Monte Carlo
    standard error ``sqrt(p (1 - p) / n_resamples)`` in ``mc_standard_error``. Comparisons allow a
    relative tolerance of 1e-9 of the largest ``|contribution|`` for floating-point sums. The
    two-sided p is ``P(|S - E S| >= |s - E S|)``.

    References
    ----------
    Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. Chapter 2.
    doi:10.1007/978-1-4757-3692-2
    """
    contributions = [np.asarray(c, dtype=float) for c in contributions]
    observed = [0] * len(contributions) if observed is None else list(observed)
    s_obs = float(sum(c[o] for c, o in zip(contributions, observed)))
    expected = float(sum(c.mean() for c in contributions))
    scale = max((float(np.abs(c).max()) for c in contributions), default=1.0)
    tol = 1e-9 * max(scale, 1.0) * max(len(contributions), 1)
    informative = sum(int(np.ptp(c) > 0) for c in contributions)
    log_size = sum(math.log(c.size) for c in contributions)
    exact = log_size <= math.log(max_enumeration) + 1e-12
    if exact:
        values = np.array([0.0])
        for c in sorted(contributions, key=len):
            values = (values[:, None] + c[None, :]).ravel()
        weights = None
    else:
        rng = np.random.default_rng(seed)
        values = np.zeros(n_resamples)
        for c in contributions:
            values += c[rng.integers(0, c.size, size=n_resamples)]
        weights = n_resamples
    dev = np.abs(values - expected)
    obs_dev = abs(s_obs - expected)
    counts = (
        int((dev >= obs_dev - tol).sum()),
        int((values >= s_obs - tol).sum()),
        int((values <= s_obs + tol).sum()),
    )
    if weights is None:
        ps = [k / values.size for k in counts]
        mc_se = None
    else:
        ps = [(1 + k) / (1 + weights) for k in counts]
        mc_se = math.sqrt(_clip(ps[0]) * (1 - _clip(ps[0])) / weights)
    return ExactResult(
        statistic=s_obs,
        expected=expected,
        p_two_sided=_clip(ps[0]),
        p_greater=_clip(ps[1]),
        p_less=_clip(ps[2]),
        n_informative=informative,
        exact=exact,
        n_resamples=weights,
        mc_standard_error=mc_se,
    )
