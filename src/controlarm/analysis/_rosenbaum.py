"""Analysis room: Rosenbaum bounds (sensitivity to an unobserved confounder of strength Gamma).

Under Rosenbaum's model, two patients of the same matched set may differ in their odds of
treatment by at most a factor Gamma because of an unobserved covariate. For each Gamma the
one-sided p-value of a matched test is bounded above and below; the study's conclusion is
insensitive up to the largest Gamma at which the upper bound stays below alpha.

No Python library computes these bounds. R's ``rbounds`` and ``sensitivitymv`` do; the code is
checked against their output (``tests/reference/expected/rosenbaum_sensitivity.json``) and
against brute-force maximisation over the unobserved covariate on small designs. The bounds for
binary outcomes and the signed-rank bounds are computed exactly here (Poisson-binomial and
weighted-Bernoulli distributions by dynamic programming); rbounds uses the same exact binomial
for binary pairs and the normal approximation for the signed-rank test, which is also given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize, stats

from ._exact import _signed_rank_null

__all__ = [
    "compute_rosenbaum_binary",
    "compute_rosenbaum_signed_rank",
    "compute_hl_bounds",
    "compute_amplification",
    "critical_gamma",
    "REF_ROSENBAUM",
]

REF_ROSENBAUM = (
    "Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. Chapter 4. "
    "doi:10.1007/978-1-4757-3692-2"
)
REF_ROSENBAUM_HL = (
    "Rosenbaum PR. Hodges-Lehmann point estimates of treatment effect in observational studies. "
    "J Am Stat Assoc 1993;88:1250-1253. doi:10.1080/01621459.1993.10476405"
)
REF_AMPLIFY = (
    "Rosenbaum PR, Silber JH. Amplification of sensitivity analysis in matched observational "
    "studies. J Am Stat Assoc 2009;104:1398-1405. doi:10.1198/jasa.2009.tm08470"
)
REF_RBOUNDS = ("Keele L. rbounds: Perform Rosenbaum bounds sensitivity tests for matched and "
               "unmatched data. R package version 2.2")


def _poisson_binomial(p: np.ndarray) -> np.ndarray:
    """``P(sum B_i = j)`` for independent ``B_i ~ Bernoulli(p_i)``, by convolution."""
    dist = np.array([1.0])
    for q in np.asarray(p, dtype=float):
        dist = np.convolve(dist, [1 - q, q])
    return dist


def compute_rosenbaum_binary(m: Sequence[int], n: Sequence[int], t_obs: int,
                             gamma: float) -> dict[str, float]:
    """Rosenbaum bounds for a binary outcome in matched sets with one treated patient each.

    Parameters
    ----------
    m, n : sequences of int
        Number of patients with the outcome (``m_s``) and set size (``n_s``) of each set; sets
        with ``m_s = 0`` or ``m_s = n_s`` are uninformative and ignored.
    t_obs : int
        Number of informative sets whose treated patient has the outcome (the statistic ``T``).
    gamma : float
        Sensitivity parameter (>= 1).

    Returns
    -------
    dict
        ``upper_ge``/``lower_ge``: bounds on ``P(T >= t_obs)`` (Rosenbaum's one-sided p-value);
        ``upper_gt``/``lower_gt``: bounds on ``P(T > t_obs)`` (what ``rbounds::binarysens``
        reports for pairs). The upper bound takes ``P(treated has the outcome) = Gamma m /
        (Gamma m + n - m)`` in every set, the lower ``m / (m + Gamma (n - m))``; ``T`` is then a
        sum of independent Bernoullis whose exact distribution is computed. The bounds are
        sharp. For 1:1 pairs they are binomial with ``p = Gamma / (1 + Gamma)`` (Rosenbaum 2002,
        section 4.3.2).

    References
    ----------
    Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. Sections 4.3-4.4.
    doi:10.1007/978-1-4757-3692-2

    Examples
    --------
    110 discordant pairs in one direction, 12 in the other (Hammond's smoking data):

    >>> b = compute_rosenbaum_binary([1] * 122, [2] * 122, 110, 6.0)
    >>> round(b["upper_ge"], 4), round(b["upper_gt"], 4)
    (0.0969, 0.0564)
    """
    m, n = np.asarray(m, dtype=float), np.asarray(n, dtype=float)
    keep = (m > 0) & (m < n)
    m, n = m[keep], n[keep]
    out = {}
    for name, prob in (("upper", gamma * m / (gamma * m + n - m)),
                       ("lower", m / (m + gamma * (n - m)))):
        dist = _poisson_binomial(prob)
        out[f"{name}_ge"] = float(min(1.0, dist[t_obs:].sum()))
        out[f"{name}_gt"] = float(min(1.0, dist[t_obs + 1:].sum()))
    return out


def compute_rosenbaum_signed_rank(d: Sequence[float], gamma: float, *,
                                  exact: bool = True) -> dict[str, float]:
    """Rosenbaum bounds for the Wilcoxon signed-rank test in matched pairs.

    Zeros are dropped and ``|d|`` ranked with average ranks, as ``rbounds::psens``. With
    ``p+ = Gamma / (1 + Gamma)`` and ``p- = 1 / (1 + Gamma)``, the upper bound on the
    one-sided p-value of ``T`` (the sum of ranks of positive ``d``) is ``P(sum r_i B_i >= T)``
    with ``B_i ~ Bernoulli(p+)``, the lower bound the same with ``p-``.

    Returns
    -------
    dict
        ``T, E_upper, E_lower, V_upper, V_lower`` (moments ``p sum r`` and ``p (1 - p) sum
        r^2``), ``p_upper_normal``/``p_lower_normal`` (normal approximation without continuity
        correction, exactly ``rbounds::psens``), and, when ``exact``, ``p_upper``/``p_lower``
        from the exact distribution (dynamic programming over the 2^n sign patterns).

    References
    ----------
    Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. Section 4.3.3.
    doi:10.1007/978-1-4757-3692-2
    """
    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    r = stats.rankdata(np.abs(d))
    t = float(r[d > 0].sum())
    out: dict[str, float] = {"T": t, "n": int(d.size)}
    for name, p in (("upper", gamma / (1 + gamma)), ("lower", 1 / (1 + gamma))):
        e, v = p * r.sum(), p * (1 - p) * (r**2).sum()
        out[f"E_{name}"], out[f"V_{name}"] = float(e), float(v)
        out[f"p_{name}_normal"] = float(stats.norm.sf((t - e) / math.sqrt(v))) if v > 0 else 1.0
        if exact:
            dist = _signed_rank_null(np.rint(2 * r), p)  # scores 2 r are integers
            out[f"p_{name}"] = float(min(1.0, dist[int(round(2 * t)):].sum()))
    return out


def compute_hl_bounds(d: Sequence[float], gamma: float) -> dict[str, float]:
    """Bounds on the Hodges-Lehmann estimate for matched pairs at sensitivity ``gamma``.

    The estimate at Gamma = 1 solves ``T(theta) = N / 2``, where ``T(theta)`` is the signed-rank
    statistic of ``d - theta`` and ``N = n(n+1)/2``; its range over all unobserved covariates of
    strength Gamma solves ``T(theta) = p+ N`` (minimum) and ``T(theta) = p- N`` (maximum)
    (Rosenbaum 1993). Since ``T(theta)`` counts the Walsh averages above ``theta``, the solutions
    are order statistics of the Walsh averages (midpoint of two when the equation holds on an
    interval). Zeros are kept. ``rbounds::hlsens`` approximates the same quantities by a grid
    search with step ``pr`` (0.1 by default).

    Returns
    -------
    dict
        ``low, high`` (``low = high =`` the Hodges-Lehmann estimate at Gamma = 1).

    References
    ----------
    Rosenbaum PR. J Am Stat Assoc 1993;88:1250-1253. doi:10.1080/01621459.1993.10476405
    """
    d = np.asarray(d, dtype=float)
    i, j = np.triu_indices(d.size)
    w = np.sort((d[i] + d[j]) / 2)
    big_n = w.size

    def solve(p: float) -> float:
        k = p * big_n  # want #{W > theta} = k
        if abs(k - round(k)) < 1e-9:
            k = int(round(k))
            if k == 0:
                return float(w[-1])
            if k == big_n:
                return float(w[0])
            return float((w[big_n - k - 1] + w[big_n - k]) / 2)
        return float(w[big_n - int(math.floor(k)) - 1])

    return {"low": solve(gamma / (1 + gamma)), "high": solve(1 / (1 + gamma))}


def compute_amplification(gamma: float, lambdas: Sequence[float]) -> list[tuple[float, float]]:
    """Pairs ``(Lambda, Delta)`` equivalent to sensitivity ``gamma`` (Rosenbaum & Silber 2009).

    An unobserved covariate that raises the odds of treatment by ``Lambda`` and the odds of a
    higher outcome by ``Delta`` corresponds to ``Gamma = (Lambda Delta + 1) / (Lambda + Delta)``;
    for ``Lambda > Gamma``, ``Delta = (Gamma Lambda - 1) / (Lambda - Gamma)``. Values of
    ``Lambda <= Gamma`` are skipped (no finite Delta).

    References
    ----------
    Rosenbaum PR, Silber JH. J Am Stat Assoc 2009;104:1398-1405. doi:10.1198/jasa.2009.tm08470

    Examples
    --------
    >>> compute_amplification(1.25, [2.0])
    [(2.0, 2.0)]
    """
    return [(float(lam), float((gamma * lam - 1) / (lam - gamma))) for lam in lambdas
            if lam > gamma]


def critical_gamma(p_upper: Callable[[float], float], alpha: float, *,
                   gamma_max: float = 1000.0) -> float | None:
    """The largest Gamma at which ``p_upper(Gamma) <= alpha`` (the sensitivity value).

    None when the test is not significant at Gamma = 1; ``gamma_max`` when it stays significant
    up to there. Found by bracketing on log Gamma and Brent's method (relative tolerance 1e-6).

    References
    ----------
    Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. Chapter 4.
    """
    if p_upper(1.0) > alpha:
        return None
    if p_upper(gamma_max) <= alpha:
        return gamma_max
    f = lambda lg: p_upper(math.exp(lg)) - alpha  # noqa: E731
    return float(math.exp(optimize.brentq(f, 0.0, math.log(gamma_max), xtol=1e-7)))
