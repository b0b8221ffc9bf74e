"""Plan room: power curves (data for figures) and a lazily imported matplotlib figure."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..errors import InputError
from ._binary import power_binary, simulate_power_binary
from ._continuous import power_ttest, simulate_power_ttest
from ._simulate import executor
from ._free_days import _align, _control_pmf, simulate_power_free_days, treated_distribution
from ._survival import simulate_power_survival

__all__ = ["power_curve", "plot_power_curves"]


def power_curve(endpoint: str, n_control: Sequence[int], *, alpha: float = 0.05,
                allocation: float = 1.0, n_sims: int = 2000, seed: int = 0,
                workers: int | None = 1, **effect) -> pd.DataFrame:
    """Power at each control-arm size, analytic (when a formula exists) and simulated.

    ``endpoint`` is ``"binary"`` (``p_control``, ``p_treated``), ``"survival"``
    (``hazard_ratio``, ``hazard_control``, ``follow_up``), ``"free_days"``
    (``control_values`` and ``odds_ratio`` or ``shift``) or ``"continuous"`` (``difference``,
    ``sd``). Returns columns ``endpoint, n_control, power_analytic, power_simulated, mc_se``.
    Every size uses the same seed (common random numbers: a smoother curve); ``workers``
    processes share the simulation without changing its result.
    """
    with executor(workers) as pool:
        return _power_curve(endpoint, n_control, alpha, allocation, n_sims, seed, pool, effect)


def _power_curve(endpoint, n_control, alpha, allocation, n_sims, seed, pool, effect):
    rows = []
    for n in (int(v) for v in n_control):
        if endpoint == "binary":
            pa = power_binary(n, effect["p_control"], effect["p_treated"], alpha=alpha,
                              allocation=allocation)
            ps, se = simulate_power_binary(n, effect["p_control"], effect["p_treated"],
                                           alpha=alpha, allocation=allocation, n_sims=n_sims,
                                           seed=seed, pool=pool)
        elif endpoint == "continuous":
            pa = power_ttest(n, effect["difference"], effect["sd"], alpha=alpha,
                             allocation=allocation)
            ps, se = simulate_power_ttest(n, effect["difference"], effect["sd"], alpha=alpha,
                                          allocation=allocation, n_sims=n_sims, seed=seed,
                                          pool=pool)
        elif endpoint == "free_days":
            s, p0 = _control_pmf(effect["control_values"])
            s1, p1 = treated_distribution(s, p0, odds_ratio=effect.get("odds_ratio"),
                                          shift=effect.get("shift"))
            _, pc, pt = _align(s, p0, s1, p1)
            pa = None
            ps, se = simulate_power_free_days(n, pc, pt, alpha=alpha, allocation=allocation,
                                              n_sims=n_sims, seed=seed, pool=pool)
        elif endpoint == "survival":
            pa = None
            ps, se = simulate_power_survival(n, effect["hazard_control"], effect["hazard_ratio"],
                                             follow_up=effect["follow_up"], alpha=alpha,
                                             allocation=allocation, n_sims=n_sims, seed=seed,
                                             pool=pool)
        else:
            raise InputError("endpoint must be binary, survival, free_days or continuous; got "
                             f"{endpoint!r}")
        rows.append({"endpoint": endpoint, "n_control": n, "power_analytic": pa,
                     "power_simulated": ps, "mc_se": se})
    return pd.DataFrame(rows)


def plot_power_curves(curves: pd.DataFrame, *, target: float | None = 0.8, ax=None):
    """A matplotlib figure of power against control-arm size, one line per endpoint, with
    +/- 2 Monte Carlo SE bands. matplotlib is imported only here."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise InputError("plot_power_curves needs matplotlib: pip install 'controlarm[report]'"
                         ) from None
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    for name, d in curves.groupby("endpoint", sort=False):
        line, = ax.plot(d["n_control"], d["power_simulated"], marker="o", label=f"{name} (sim.)")
        ax.fill_between(d["n_control"], d["power_simulated"] - 2 * d["mc_se"],
                        d["power_simulated"] + 2 * d["mc_se"], alpha=0.2,
                        color=line.get_color())
        if d["power_analytic"].notna().any():
            ax.plot(d["n_control"], d["power_analytic"].astype(float), ls="--",
                    color=line.get_color(), label=f"{name} (formula)")
    if target is not None:
        ax.axhline(target, color="grey", lw=0.8)
    ax.set_xlabel("patients per control arm")
    ax.set_ylabel("power")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, fontsize=8)
    return fig
