"""Plan room: sample size for a binary endpoint (mortality), two-proportion test.

Own code for the closed forms because statsmodels' ``NormalIndPower`` assumes one common
variance (it takes Cohen's h on the arcsine scale), not the pooled-null / unpooled-alternative
variances of Fleiss' formula that R's ``power.prop.test`` and most protocols use. The test
compares with both.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..errors import InputError
from ._common import check_design, inflate, split, z_values
from ._simulate import simulate_rejections
from ._result import SampleSize

__all__ = ["plan_binary", "power_binary", "simulate_power_binary", "REF_FLEISS", "REF_FTU"]

REF_FLEISS = ("Fleiss JL, Levin B, Paik MC. Statistical Methods for Rates and Proportions, 3rd ed. "
              "Wiley; 2003. Section 4.2. doi:10.1002/0471445428")
REF_FTU = ("Fleiss JL, Tytun A, Ury HK. A simple approximation for calculating sample sizes for "
           "comparing independent proportions. Biometrics 1980;36:343-346. doi:10.2307/2529990")


def _check_p(p_control: float, p_treated: float) -> None:
    for name, p in (("p_control", p_control), ("p_treated", p_treated)):
        if not 0 < p < 1:
            raise InputError(f"{name} must be a proportion in (0, 1); got {p!r}")
    if p_control == p_treated:
        raise InputError("p_control and p_treated must differ (no effect to detect); got "
                         f"{p_control!r} for both")


def _n_fleiss(p_c: float, p_t: float, alpha: float, power: float, r: float) -> float:
    za, zb = z_values(alpha, power)
    pbar = (p_c + r * p_t) / (1 + r)
    delta = abs(p_t - p_c)
    num = za * math.sqrt((1 + 1 / r) * pbar * (1 - pbar)) + \
        zb * math.sqrt(p_c * (1 - p_c) + p_t * (1 - p_t) / r)
    return num**2 / delta**2


def power_binary(n_control: float, p_control: float, p_treated: float, *, alpha: float = 0.05,
                 allocation: float = 1.0) -> float:
    """Normal-approximation power of the two-sided pooled two-proportion z-test (no correction)
    with ``n_control`` controls and ``allocation * n_control`` treated (R ``power.prop.test``
    with ``strict = FALSE`` for 1:1)."""
    r = allocation
    za = stats.norm.isf(alpha / 2)
    pbar = (p_control + r * p_treated) / (1 + r)
    sd0 = math.sqrt((1 + 1 / r) * pbar * (1 - pbar))
    sd1 = math.sqrt(p_control * (1 - p_control) + p_treated * (1 - p_treated) / r)
    return float(stats.norm.cdf((abs(p_treated - p_control) * math.sqrt(n_control) - za * sd0)
                                / sd1))


def _kernel_binary(g: np.random.Generator, size: int, n_control: int, n_t: int, p_control: float,
                   p_treated: float, alpha: float, correction: bool) -> int:
    """Rejections of Pearson's chi-squared test among ``size`` trials (vectorised)."""
    x_c = g.binomial(n_control, p_control, size).astype(float)
    x_t = g.binomial(n_t, p_treated, size).astype(float)
    n = n_control + n_t
    pbar = (x_c + x_t) / n
    var = pbar * (1 - pbar) * (1 / n_control + 1 / n_t)
    diff = np.abs(x_t / n_t - x_c / n_control)
    if correction:
        diff = np.maximum(diff - 0.5 * (1 / n_control + 1 / n_t), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(var > 0, diff**2 / var, 0.0)
    return int((stats.chi2.sf(chi2, 1) < alpha).sum())


def simulate_power_binary(n_control: int, p_control: float, p_treated: float, *,
                          alpha: float = 0.05, allocation: float = 1.0, correction: bool = False,
                          n_sims: int = 10_000, seed: int = 0, workers: int | None = 1,
                          pool=None) -> tuple[float, float]:
    """Simulated power of Pearson's chi-squared test (Yates-corrected if ``correction``) over
    ``n_sims`` seeded trials (chunked and parallel, see ``_simulate``); returns ``(power, Monte
    Carlo SE)``."""
    n_t = split(n_control, allocation)
    return simulate_rejections(_kernel_binary, (int(n_control), n_t, p_control, p_treated, alpha,
                                                correction), n_sims, seed, workers=workers,
                               pool=pool)


def plan_binary(p_control: float, p_treated: float, *, alpha: float = 0.05, power: float = 0.8,
                allocation: float = 1.0, dropout: float = 0.0, correction: bool = False,
                n_sims: int = 10_000, seed: int = 0, workers: int | None = 1) -> SampleSize:
    """Patients per arm to detect ``p_control`` vs ``p_treated`` with a two-sided test.

    Parameters
    ----------
    p_control, p_treated : float
        Event (death) probability in each arm, e.g. the matched controls' day-28 mortality and
        the assumed mortality under treatment.
    alpha, power : float
        Two-sided significance level and target power.
    allocation : float
        Treated patients per control (2 means 2:1).
    dropout : float
        Expected fraction lost to follow-up; enrolment is ``ceil(n / (1 - dropout))``.
    correction : bool
        Fleiss-Tytun-Ury continuity correction (matching a Yates-corrected chi-squared test).
    n_sims, seed : int
        Simulated trials at the computed size, and their seed.
    workers : int or None
        Processes for the simulation (1: this process; 0 or None: every core). The result does
        not depend on it.

    Returns
    -------
    SampleSize

    Notes
    -----
    Fleiss' formula for ``n_c`` controls and ``r n_c`` treated, with ``pbar = (p_c + r p_t) /
    (1 + r)``::

        n_c = [z_{1-a/2} sqrt((1 + 1/r) pbar qbar) + z_{1-b} sqrt(p_c q_c + p_t q_t / r)]^2 / d^2

    and, with correction, ``n_c' = n_c / 4 [1 + sqrt(1 + 2 (r + 1) / (r n_c |d|))]^2``. For
    ``r = 1`` without correction this is R's ``power.prop.test``.

    References
    ----------
    Fleiss JL, Levin B, Paik MC. Statistical Methods for Rates and Proportions, 3rd ed. Wiley;
    2003. doi:10.1002/0471445428
    Fleiss JL, Tytun A, Ury HK. Biometrics 1980;36:343-346. doi:10.2307/2529990

    Examples
    --------
    >>> plan_binary(0.5, 0.75, power=0.9, n_sims=2000).n_control  # power.prop.test: 76.65
    77
    """
    check_design(alpha, power, allocation, dropout)
    _check_p(p_control, p_treated)
    r = allocation
    n = _n_fleiss(p_control, p_treated, alpha, power, r)
    if correction:
        d = abs(p_treated - p_control)
        n = n / 4 * (1 + math.sqrt(1 + 2 * (r + 1) / (r * n * d))) ** 2
    n_c = int(math.ceil(n - 1e-9))
    n_t = split(n_c, r)
    sim, se = simulate_power_binary(n_c, p_control, p_treated, alpha=alpha, allocation=r,
                                    correction=correction, n_sims=n_sims, seed=seed,
                                    workers=workers)
    return SampleSize(
        endpoint="binary mortality", method="Fleiss" + (" with Fleiss-Tytun-Ury correction"
                                                         if correction else ""),
        test="Pearson chi-squared" + (" with Yates correction" if correction else ""),
        n_control=n_c, n_treated=n_t, n_control_enrolled=inflate(n_c, dropout),
        n_treated_enrolled=inflate(n_t, dropout), alpha=alpha, power=power, allocation=r,
        dropout=dropout, effect={"p_control": p_control, "p_treated": p_treated,
                                 "risk_difference": p_treated - p_control, "n_exact": n},
        analytic_power=None if correction else power_binary(n_c, p_control, p_treated,
                                                            alpha=alpha, allocation=r),
        simulated_power=sim, mc_se=se, n_simulations=n_sims, seed=seed,
        assumptions={"sidedness": "two-sided", "allocation": "treated per control"},
        references=(REF_FLEISS,) + ((REF_FTU,) if correction else ()),
    )
