"""Plan room: sample size for a continuous endpoint (day-7 log D-dimer), two-sample t-test.

The analytic size uses the exact noncentral-t power (as statsmodels' ``TTestIndPower``, which
the tests compare with); own code only so that allocation, dropout and the vectorised
simulation share one result type with the other endpoints.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..errors import InputError
from ._common import check_design, inflate, smallest_n, split
from ._simulate import simulate_rejections
from ._result import SampleSize

__all__ = ["plan_continuous", "power_ttest", "simulate_power_ttest", "REF_TTEST"]

REF_TTEST = ("Chow SC, Shao J, Wang H, Lokhnygina Y. Sample Size Calculations in Clinical "
             "Research, 3rd ed. CRC Press; 2017. Section 3.2. doi:10.1201/9781315183084")


def power_ttest(n_control: int, difference: float, sd: float, *, alpha: float = 0.05,
                allocation: float = 1.0) -> float:
    """Exact power of the two-sided Student t-test (noncentral t)."""
    n_t = n_control * allocation
    df = n_control + n_t - 2
    nc = abs(difference) / (sd * math.sqrt(1 / n_control + 1 / n_t))
    tc = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(tc, df, nc) + stats.nct.cdf(-tc, df, nc))


def _kernel_ttest(g: np.random.Generator, size: int, n_control: int, n_t: int, difference: float,
                  sd: float, alpha: float) -> int:
    xc = g.normal(0.0, sd, (size, n_control))
    xt = g.normal(difference, sd, (size, n_t))
    return int((stats.ttest_ind(xt, xc, axis=1).pvalue < alpha).sum())


def simulate_power_ttest(n_control: int, difference: float, sd: float, *, alpha: float = 0.05,
                         allocation: float = 1.0, n_sims: int = 10_000, seed: int = 0,
                         workers: int | None = 1, pool=None) -> tuple[float, float]:
    """Simulated power of the Student t-test on normal data (vectorised over trials, chunked and
    parallel, see ``_simulate``)."""
    n_t = split(n_control, allocation)
    return simulate_rejections(_kernel_ttest, (int(n_control), n_t, difference, sd, alpha),
                               n_sims, seed, workers=workers, pool=pool)


def plan_continuous(difference: float, sd: float, *, alpha: float = 0.05, power: float = 0.8,
                    allocation: float = 1.0, dropout: float = 0.0, n_sims: int = 10_000,
                    seed: int = 0, endpoint: str = "day-7 log D-dimer",
                    workers: int | None = 1) -> SampleSize:
    """Patients per arm for a difference in means compared by the two-sample t-test.

    Parameters
    ----------
    difference : float
        Assumed treated minus control mean, e.g. ``log(821 / 3553)`` for a ratio of geometric
        means of D-dimer on the log scale.
    sd : float
        Common standard deviation (e.g. of the controls' log D-dimer).

    Notes
    -----
    The smallest ``n_c`` whose exact noncentral-t power reaches the target, with ``r n_c``
    treated (rounded up). Normality on the log scale is the assumption the simulation checks
    nothing against; it only confirms the power computation.

    References
    ----------
    Chow SC, Shao J, Wang H, Lokhnygina Y. Sample Size Calculations in Clinical Research, 3rd ed.
    CRC Press; 2017. doi:10.1201/9781315183084
    """
    check_design(alpha, power, allocation, dropout)
    if not sd > 0 or difference == 0:
        raise InputError(f"sd must be > 0 and difference not 0; got sd={sd!r}, "
                         f"difference={difference!r}")
    r = allocation
    za, zb = stats.norm.isf(alpha / 2), stats.norm.ppf(power)
    n_normal = (za + zb) ** 2 * (1 + 1 / r) * (sd / difference) ** 2  # start: normal formula
    n_c = smallest_n(lambda n: power_ttest(n, difference, sd, alpha=alpha, allocation=r), power,
                     2, int(math.ceil(n_normal)) + 10)
    n_t = split(n_c, r)
    sim, se = simulate_power_ttest(n_c, difference, sd, alpha=alpha, allocation=r,
                                   n_sims=n_sims, seed=seed, workers=workers)
    return SampleSize(
        endpoint=endpoint, method="noncentral t (exact power)", test="Student t-test",
        n_control=n_c, n_treated=n_t, n_control_enrolled=inflate(n_c, dropout),
        n_treated_enrolled=inflate(n_t, dropout), alpha=alpha, power=power, allocation=r,
        dropout=dropout, effect={"difference": difference, "sd": sd,
                                 "standardised": difference / sd},
        analytic_power=power_ttest(n_c, difference, sd, alpha=alpha, allocation=r),
        simulated_power=sim, mc_se=se, n_simulations=n_sims, seed=seed,
        assumptions={"distribution": "normal with equal variances", "sidedness": "two-sided"},
        references=(REF_TTEST,),
    )
