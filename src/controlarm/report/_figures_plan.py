"""Report room: the audit and plan figures as SVG text: the distribution of a matched-set p-value
over every allocation consistent with the arm counts (with the actual allocation marked), and the
power curves of the confirmatory trial.

Drawing only, from ``results.json`` content; matplotlib is imported inside the functions and the
pinned style of :mod:`._figures` makes the SVG byte-deterministic. Aggregates only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._figures import CONTROL_COLOUR, TREATED_COLOUR, _new_figure, figure_to_svg, report_style

__all__ = ["audit_distribution_svg", "power_curves_svg"]

_PALETTE = [TREATED_COLOUR, CONTROL_COLOUR, "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
            "#F0E442"]


def audit_distribution_svg(panels: Sequence[Mapping[str, Any]], alpha: float) -> str:
    """One panel per outcome: weighted share of allocations at each exact conditional p-value
    (bars), the actual allocation's p-value (solid line), the published-style p-value (dashed)
    and alpha (dotted).

    ``panels`` items: ``label``, ``points`` ([p, weight] pairs), ``actual_p``, ``published_p``.
    """
    n = max(1, len(panels))
    with report_style():
        fig = _new_figure(7.0, 1.9 * n + 0.4)
        axes = fig.subplots(n, 1, squeeze=False)[:, 0]
        for ax, pan in zip(axes, panels):
            pts = [(float(p), float(w)) for p, w in pan.get("points") or []]
            if pts:
                ax.bar([p for p, _ in pts], [w for _, w in pts], width=0.012, color="#999999",
                       label="allocations consistent with the counts")
            if pan.get("actual_p") is not None:
                ax.axvline(pan["actual_p"], color=TREATED_COLOUR, lw=1.8, label="actual allocation")
            if pan.get("published_p") is not None:
                ax.axvline(pan["published_p"], color=CONTROL_COLOUR, lw=1.2, ls="--",
                           label="published-style p (pseudo-pair McNemar)")
            ax.axvline(alpha, color="black", lw=0.8, ls=":", label=f"alpha = {alpha:g}")
            ax.set_xlim(0, 1.02)
            ax.set_ylabel("share")
            ax.set_title(str(pan.get("label", "")), loc="left")
        axes[0].legend(frameon=False, fontsize=7, loc="upper right")
        axes[-1].set_xlabel("exact conditional p-value (two-sided) over matched sets")
        fig.tight_layout()
        return figure_to_svg(fig)


def power_curves_svg(curves: Sequence[Mapping[str, Any]], target: float | None) -> str:
    """Simulated power (points, ±2 Monte Carlo SE bars) and the formula (dashed) against
    patients per control arm, one line per endpoint; the planned size is marked."""
    with report_style():
        fig = _new_figure(7.0, 3.6)
        ax = fig.add_subplot(1, 1, 1)
        for i, c in enumerate(curves):
            col = _PALETTE[i % len(_PALETTE)]
            pts = c.get("points") or []
            n = [p["n_control"] for p in pts]
            ps = [p["power_simulated"] for p in pts]
            se = [2 * (p.get("mc_se") or 0.0) for p in pts]
            ax.errorbar(n, ps, yerr=se, color=col, marker="o", ms=3, lw=1.2, capsize=2,
                        label=f"{c.get('endpoint')} ({c.get('effect_scenario')})")
            pa = [p.get("power_analytic") for p in pts]
            if all(v is not None for v in pa) and pa:
                ax.plot(n, pa, color=col, ls="--", lw=0.9)
            if c.get("n_control_planned") is not None:
                ax.axvline(c["n_control_planned"], color=col, lw=0.6, ls=":")
        if target is not None:
            ax.axhline(target, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("patients per control arm (log scale)")
        ax.set_ylabel("power")
        ax.legend(frameon=False, fontsize=7, loc="lower right")
        fig.tight_layout()
        return figure_to_svg(fig)
