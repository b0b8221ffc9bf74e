"""Report room: figures of the analysis: the forest plot and the matched-set structure.

Both draw from aggregate data (``results.json``): effect estimates with their confidence intervals,
and each matched set's controls' distances. matplotlib is imported inside the functions, with the
pinned, deterministic style of :mod:`._figures`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from ._figures import CONTROL_COLOUR, TREATED_COLOUR, _new_figure, figure_to_svg, report_style

__all__ = ["forest_svg", "sets_svg"]

_ROW_H = 0.3  # inches per forest row
_HEAD_H = 0.62  # inches per panel title and axis
_LOG_TICKS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0)


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _limits(panel: Mapping[str, Any]) -> tuple[float, float]:
    log, ref = bool(panel.get("log")), float(panel.get("ref", 1.0 if panel.get("log") else 0.0))
    vals = [float(v) for r in panel["rows"] for v in (r.get("value"), r.get("low"), r.get("high"))
            if _finite(v) and (not log or float(v) > 0)]
    if log and not vals:
        return 0.1, 10.0
    vals.append(ref)
    lo, hi = min(vals), max(vals)
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
        pad = max(0.15, 0.08 * (hi - lo))
        return 10 ** (lo - pad), 10 ** (hi + pad)
    pad = max(0.08 * (hi - lo), 0.05 * max(abs(lo), abs(hi), 1e-9))
    return lo - pad, hi + pad


def forest_svg(panels: Sequence[Mapping[str, Any]]) -> str:
    """Forest plot: one panel per effect scale, one row per outcome, point and confidence interval.

    Parameters
    ----------
    panels : sequence of mapping
        Each ``{"title", "log" (bool), "ref" (null value: 1 for ratios, 0 for differences),
        "rows": [{"label", "value", "low", "high", "text"}]}``. A row without a finite value is
        drawn as "not estimable"; a missing or infinite bound as an arrow to the panel's edge.

    Returns
    -------
    str
        A bare ``<svg>`` element; byte-deterministic.
    """
    panels = [p for p in panels if p.get("rows")]
    with report_style():
        heights = [_HEAD_H + _ROW_H * len(p["rows"]) for p in panels] or [1.0]
        total = sum(heights) + 0.2
        fig = _new_figure(8.0, total)
        top = 1.0 - 0.1 / total
        if not panels:
            ax = fig.add_axes((0.05, 0.05, 0.9, 0.9))
            ax.set_axis_off()
            ax.text(0.5, 0.5, "No effect estimate", ha="center", va="center")
            return figure_to_svg(fig)
        for panel, h in zip(panels, heights):
            rows = list(panel["rows"])
            ax_h = (_ROW_H * len(rows)) / total
            bottom = top - (0.3 / total) - ax_h
            ax = fig.add_axes((0.3, bottom, 0.45, ax_h))
            ax.tick_params(axis="y", labelsize=7.5)
            top -= h / total
            log = bool(panel.get("log"))
            ref = float(panel.get("ref", 1.0 if log else 0.0))
            lo, hi = _limits(panel)
            if log:
                ax.set_xscale("log")
                ticks = [t for t in _LOG_TICKS if lo <= t <= hi]
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                ax.set_xticks([], minor=True)
            ax.set_xlim(lo, hi)
            ax.set_ylim(len(rows) - 0.5, -0.5)
            ax.axvline(ref, color="#777777", linestyle="--", linewidth=0.9, zorder=1)
            for i, r in enumerate(rows):
                value = r.get("value")
                if not _finite(value) or (log and float(value) <= 0):
                    ax.text(ref, i, "  not estimable", ha="left", va="center", fontsize=8, color="#777777",
                            style="italic")
                    continue
                low = float(r["low"]) if _finite(r.get("low")) and (not log or float(r["low"]) > 0) else None
                high = float(r["high"]) if _finite(r.get("high")) else None
                left = low if low is not None else lo
                right = high if high is not None else hi
                ax.plot([left, right], [i, i], color=TREATED_COLOUR, linewidth=1.6, zorder=2,
                        solid_capstyle="butt")
                for end, edge in ((low, lo), (high, hi)):
                    if end is None:
                        ax.annotate("", xy=(edge, i), xytext=(float(value), i),
                                    arrowprops={"arrowstyle": "->", "color": TREATED_COLOUR, "linewidth": 1.2})
                ax.plot([float(value)], [i], marker="s", markersize=6, color=TREATED_COLOUR, zorder=3)
            ax.set_yticks(range(len(rows)), ["\n".join(textwrap.wrap(str(r["label"]), 34)[:2]) for r in rows])
            ax.tick_params(axis="y", length=0)
            for i, r in enumerate(rows):
                ax.text(1.03, i, str(r.get("text", "")), transform=ax.get_yaxis_transform(), ha="left",
                        va="center", fontsize=8)
            ax.set_title(str(panel["title"]), loc="left", fontsize=9, fontweight="bold", x=(0.02 - 0.3) / 0.45)
            ax.grid(axis="x", color="#eeeeee", linewidth=0.6, zorder=0)
        return figure_to_svg(fig)


def sets_svg(sets: Sequence[Mapping[str, Any]], distance: str = "") -> str:
    """The matched-set structure: one row per set, its controls placed at their distance.

    Parameters
    ----------
    sets : sequence of mapping
        ``{"set_id", "n_controls", "distances"}`` per set (``results.json`` ``matching.sets``).
    distance : str
        Name of the matching distance, for the axis label.

    Notes
    -----
    The treated patient of each set sits at 0; each control is a dot at its distance to that
    patient. Controls without a recorded distance (exact matching only) are counted in the label.
    """
    sets = list(sets)
    with report_style():
        n = max(len(sets), 1)
        height = 1.0 + 0.24 * n
        fig = _new_figure(8.0, height)
        fig.subplots_adjust(left=0.22, right=0.8, top=1 - 0.3 / height, bottom=0.62 / height)
        ax = fig.add_subplot(1, 1, 1)
        xmax = max([d for s in sets for d in s.get("distances", [])] + [1e-9])
        for i, s in enumerate(sets):
            ds = [float(d) for d in s.get("distances", [])]
            if ds:
                ax.plot([0, max(ds)], [i, i], color="#bbbbbb", linewidth=0.8, zorder=1)
                ax.scatter(ds, [i] * len(ds), s=26, color=CONTROL_COLOUR, zorder=3,
                           label="Control" if i == 0 else None)
            ax.scatter([0], [i], s=34, marker="s", color=TREATED_COLOUR, zorder=4,
                       label="Treated" if i == 0 else None)
        ax.set_yticks(range(len(sets)), [f"Set {s['set_id']} (1:{s['n_controls']})" for s in sets])
        ax.set_ylim(max(len(sets), 1) - 0.5, -0.5)
        ax.set_xlim(-0.04 * xmax, xmax * 1.08)
        ax.set_xlabel(f"Distance to the set's treated patient{f' ({distance})' if distance else ''}")
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", color="#eeeeee", linewidth=0.6, zorder=0)
        if sets:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, borderaxespad=0)
        return figure_to_svg(fig)
