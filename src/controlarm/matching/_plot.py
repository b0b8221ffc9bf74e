"""The Love plot: absolute standardised mean differences before and after matching.

matplotlib is imported only when a plot is drawn.

References
----------
Ahmed, A., Husain, A., Love, T. E., et al. (2006). Heart failure, chronic diuretic use, and
increase in mortality and hospitalization: an observational study using propensity score
methods. *European Heart Journal*, 27(12), 1431-1439. https://doi.org/10.1093/eurheartj/ehi890

Austin, P. C. (2009). Balance diagnostics for comparing the distribution of baseline covariates
between treatment groups in propensity-score matched samples. *Statistics in Medicine*, 28(25),
3083-3107. https://doi.org/10.1002/sim.3697
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["love_plot"]


def love_plot(balance: pd.DataFrame, *, threshold: float = 0.1, ax: Any = None) -> Any:
    """Draw |SMD| per covariate before (open circles) and after matching (filled), with a reference line.

    Parameters
    ----------
    balance : DataFrame
        Output of :func:`balance_table` (``covariate, smd_before, smd_after``).
    threshold : float
        Where to draw the reference line (|SMD| = 0.1 is the usual mark of adequate balance).
    ax : matplotlib Axes, optional
        Draw into these axes; a new figure otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(balance, pd.DataFrame) or not {"covariate", "smd_before", "smd_after"} <= set(balance.columns):
        raise InputError("love_plot needs the DataFrame returned by balance_table()")
    try:
        import matplotlib

        if ax is None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        raise InputError("love_plot needs matplotlib: pip install matplotlib") from None
    covs = [str(c) for c in balance["covariate"]]
    before = balance["smd_before"].astype(float).abs().to_numpy()
    after = balance["smd_after"].astype(float).abs().to_numpy()
    y = np.arange(len(covs))[::-1]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(covs) + 1.2))
    else:
        fig = ax.figure
    ax.scatter(before, y, facecolors="none", edgecolors="black", label="before matching")
    ax.scatter(after, y, color="black", label="after matching")
    ax.axvline(threshold, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels(covs)
    ax.set_xlabel("|standardised mean difference|")
    denom = balance.attrs.get("smd_denominator")
    if denom:
        ax.set_title(f"SMD denominator: {denom}", fontsize=7)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
