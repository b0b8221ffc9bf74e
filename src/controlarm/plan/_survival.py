"""Plan room: sample size for time to death (log-rank test), Schoenfeld's events formula.

Own code because no installed library gives Schoenfeld's events with unequal allocation and the
events-to-patients step under stated accrual and follow-up; the simulation computes the log-rank
statistic for all simulated trials at once (``logrank_z``), checked against the analysis room's
``compute_logrank`` in the tests.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..errors import InputError
from ._common import check_design, inflate, split, z_values
from ._simulate import simulate_rejections
from ._result import SampleSize

__all__ = ["plan_survival", "schoenfeld_events", "event_probability", "simulate_power_survival",
           "logrank_z", "REF_SCHOENFELD"]

REF_SCHOENFELD = ("Schoenfeld DA. Sample-size formula for the proportional-hazards regression "
                  "model. Biometrics 1983;39:499-503. doi:10.2307/2531021")
REF_COLLETT = ("Collett D. Modelling Survival Data in Medical Research, 3rd ed. CRC Press; 2015. "
               "Chapter 10. doi:10.1201/b18041")


def schoenfeld_events(hazard_ratio: float, *, alpha: float = 0.05, power: float = 0.8,
                      allocation: float = 1.0) -> float:
    """Events for a two-sided log-rank test: ``(z_{1-a/2} + z_{1-b})^2 / (pi_c pi_t log(HR)^2)``.

    References
    ----------
    Schoenfeld DA. Biometrics 1983;39:499-503. doi:10.2307/2531021

    Examples
    --------
    >>> round(schoenfeld_events(0.5), 1)
    65.3
    """
    if not hazard_ratio > 0 or hazard_ratio == 1:
        raise InputError(f"hazard_ratio must be positive and not 1; got {hazard_ratio!r}")
    za, zb = z_values(alpha, power)
    pt = allocation / (1 + allocation)
    return (za + zb) ** 2 / (pt * (1 - pt) * math.log(hazard_ratio) ** 2)


def event_probability(hazard: float, follow_up: float, accrual: float = 0.0) -> float:
    """P(death observed) with exponential survival, uniform accrual over ``accrual`` days and
    ``follow_up`` days of further follow-up after the last patient (fixed follow-up when
    ``accrual = 0``): ``1 - [exp(-l f) - exp(-l (a + f))] / (l a)`` (Collett 2015, 10.2)."""
    if accrual <= 0:
        return 1 - math.exp(-hazard * follow_up)
    return 1 - (math.exp(-hazard * follow_up) - math.exp(-hazard * (accrual + follow_up))) / (
        hazard * accrual)


def logrank_z(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Two-group log-rank ``z = (O - E) / sqrt(V)`` of the treated arm, row by row (trials in
    rows, patients in columns), vectorised. At each distinct death time with ``d`` deaths among
    ``N`` at risk (``N1`` treated), ``E = d N1 / N`` and ``V = d (N1/N)(1 - N1/N)(N - d)/(N - 1)``
    (hypergeometric); patients censored at a death time are at risk at it. Rows with no event
    give 0. Equals ``compute_logrank`` (checked in the tests, with ties)."""
    order = np.argsort(time, axis=1, kind="stable")
    t = np.take_along_axis(time, order, axis=1)
    e = np.take_along_axis(np.asarray(event, dtype=float), order, axis=1)
    g = np.take_along_axis(np.broadcast_to(np.asarray(group, dtype=float), time.shape), order,
                           axis=1)
    n = time.shape[1]
    idx = np.broadcast_to(np.arange(n), t.shape)
    new = np.ones_like(t, dtype=bool)
    new[:, 1:] = t[:, 1:] != t[:, :-1]
    end = np.ones_like(t, dtype=bool)
    end[:, :-1] = new[:, 1:]
    first = np.maximum.accumulate(np.where(new, idx, 0), axis=1)  # first index of the tie group
    last = np.minimum.accumulate(np.where(end, idx, n - 1)[:, ::-1], axis=1)[:, ::-1]
    ce = np.cumsum(e, axis=1)
    deaths = np.take_along_axis(ce, last, axis=1) - np.take_along_axis(ce - e, first, axis=1)
    cg = np.cumsum(g, axis=1) - g  # treated strictly before each position
    at_risk = (n - first).astype(float)
    at_risk_t = g.sum(axis=1, keepdims=True) - np.take_along_axis(cg, first, axis=1)
    frac = at_risk_t / at_risk
    o_e = (e * (g - frac)).sum(axis=1)
    ties = np.where(at_risk > 1, (at_risk - deaths) / np.maximum(at_risk - 1, 1), 0.0)
    var = (e * frac * (1 - frac) * ties).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, o_e / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)


def _kernel_survival(g: np.random.Generator, size: int, n_control: int, n_t: int,
                     hazard_control: float, hazard_ratio: float, follow_up: float,
                     accrual: float, alpha: float) -> int:
    group = np.r_[np.zeros(n_control), np.ones(n_t)]
    rate = np.where(group == 1, hazard_control * hazard_ratio, hazard_control)
    times = g.exponential(1.0, (size, group.size)) / rate
    fu = follow_up + accrual * g.random((size, group.size))
    z = logrank_z(np.minimum(times, fu), times <= fu, group)
    return int((2 * stats.norm.sf(np.abs(z)) < alpha).sum())


def simulate_power_survival(n_control: int, hazard_control: float, hazard_ratio: float, *,
                            follow_up: float, accrual: float = 0.0, alpha: float = 0.05,
                            allocation: float = 1.0, n_sims: int = 1000, seed: int = 0,
                            workers: int | None = 1, pool=None) -> tuple[float, float]:
    """Simulated power of the log-rank test with exponential times, censoring at the end of each
    patient's follow-up (vectorised :func:`logrank_z`; seeded chunks run in parallel, identical
    for any number of workers); returns ``(power, Monte Carlo SE)``."""
    n_t = split(n_control, allocation)
    return simulate_rejections(_kernel_survival, (int(n_control), n_t, hazard_control,
                                                  hazard_ratio, follow_up, accrual, alpha),
                               n_sims, seed, workers=workers, pool=pool)


def plan_survival(hazard_ratio: float, *, control_survival: float, at_day: float,
                  follow_up: float, accrual: float = 0.0, alpha: float = 0.05,
                  power: float = 0.8, allocation: float = 1.0, dropout: float = 0.0,
                  n_sims: int = 1000, seed: int = 0, workers: int | None = 1) -> SampleSize:
    """Events, then patients, for time to death compared by the log-rank test.

    Parameters
    ----------
    hazard_ratio : float
        Assumed treated/control hazard ratio.
    control_survival, at_day : float
        Control-arm survival at ``at_day`` (e.g. 0.79 at day 28); gives the exponential control
        hazard ``-log(S) / at_day``.
    follow_up, accrual : float
        Days of follow-up: with ``accrual = 0`` every patient is followed ``follow_up`` days
        (administrative censoring, e.g. at day 60); otherwise uniform accrual over ``accrual``
        days and ``follow_up`` more days after the last enrolment.
    alpha, power, allocation, dropout, n_sims, seed
        As in ``plan_binary``.

    Notes
    -----
    Events ``D`` by Schoenfeld; patients ``N = D / P(event)``, ``P(event)`` averaged over the
    arms (weights ``1/(1+r)`` and ``r/(1+r)``), exponential survival with proportional hazards.

    References
    ----------
    Schoenfeld DA. Biometrics 1983;39:499-503. doi:10.2307/2531021
    Collett D. Modelling Survival Data in Medical Research, 3rd ed. CRC Press; 2015.
    doi:10.1201/b18041
    """
    check_design(alpha, power, allocation, dropout)
    if not 0 < control_survival < 1 or at_day <= 0 or follow_up <= 0 or accrual < 0:
        raise InputError("control_survival must be in (0, 1) and at_day, follow_up > 0, "
                         f"accrual >= 0; got {control_survival!r}, {at_day!r}, {follow_up!r}, "
                         f"{accrual!r}")
    r = allocation
    d = schoenfeld_events(hazard_ratio, alpha=alpha, power=power, allocation=r)
    lam = -math.log(control_survival) / at_day
    p_ev = (event_probability(lam, follow_up, accrual)
            + r * event_probability(lam * hazard_ratio, follow_up, accrual)) / (1 + r)
    n_total = d / p_ev
    n_c = int(math.ceil(n_total / (1 + r) - 1e-9))
    n_t = split(n_c, r)
    sim, se = simulate_power_survival(n_c, lam, hazard_ratio, follow_up=follow_up,
                                      accrual=accrual, alpha=alpha, allocation=r,
                                      n_sims=n_sims, seed=seed, workers=workers)
    return SampleSize(
        endpoint="time to death", method="Schoenfeld events / P(event)", test="log-rank",
        n_control=n_c, n_treated=n_t, n_control_enrolled=inflate(n_c, dropout),
        n_treated_enrolled=inflate(n_t, dropout), alpha=alpha, power=power, allocation=r,
        dropout=dropout, events=d,
        effect={"hazard_ratio": hazard_ratio, "control_survival": control_survival,
                "at_day": at_day, "control_hazard_per_day": lam},
        simulated_power=sim, mc_se=se, n_simulations=n_sims, seed=seed,
        assumptions={"survival": "exponential, proportional hazards", "follow_up_days": follow_up,
                     "accrual_days": accrual, "p_event": p_ev,
                     "dropout": "handled by inflating enrolment, not as censoring"},
        references=(REF_SCHOENFELD, REF_COLLETT),
    )
