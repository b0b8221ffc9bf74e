"""Report room: the design figures (patient flow, Love plot, Kaplan–Meier curves) as SVG text, and
the pinned style every figure of the report shares (:func:`report_style`, :func:`figure_to_svg`);
the forest plot and matched-set structure live in :mod:`._figures_effects`, the lab trajectories
and swimmer plot in :mod:`._figures_patients`.

This module owns drawing. matplotlib and lifelines are imported inside the functions, so
``import controlarm`` never pays for them. Figures are built on ``matplotlib.figure.Figure`` with
the Agg canvas directly: no pyplot state, no global backend switch, no change to the caller's
rcParams (styling is applied inside ``matplotlib.rc_context``). Output is byte-deterministic: a
fixed ``svg.hashsalt`` makes the SVG element ids stable, ``metadata={"Date": None}`` drops the
timestamp, and every style parameter that affects drawing is pinned. Figures show aggregates
only (counts, SMDs, survival curves); no patient identifier is drawn.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from contextlib import contextmanager
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Iterator

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..cohort._flow import Flow
    from ..outcomes._endpoints import Endpoint
    from ._table1 import FlowRow

__all__ = ["flow_svg", "love_svg", "km_svg", "figure_to_svg", "report_style"]

#: Okabe–Ito colours, readable with colour-vision deficiency.
TREATED_COLOUR = "#0072B2"
CONTROL_COLOUR = "#D55E00"
POOL_COLOUR = "#999999"
BOX_EDGE = "#333333"

_RC: dict[str, Any] = {
    "svg.hashsalt": "controlarm-report",
    "svg.fonttype": "path",  # glyphs as paths: renders identically without the font installed
    "font.family": "DejaVu Sans",  # bundled with matplotlib, so the same everywhere
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "lines.linewidth": 1.5,
    "figure.dpi": 100.0,
    "savefig.dpi": 100.0,
    "savefig.bbox": None,
    "path.simplify": True,
    "text.usetex": False,
    "axes.unicode_minus": True,
}


@contextmanager
def report_style() -> Iterator[None]:
    """Pin the matplotlib parameters the report's figures depend on, for this block only."""
    import matplotlib
    from cycler import cycler

    rc = dict(_RC)
    rc["axes.prop_cycle"] = cycler(color=[TREATED_COLOUR, CONTROL_COLOUR, "#009E73", "#CC79A7"])
    with matplotlib.rc_context(rc):
        yield


def _new_figure(width: float, height: float) -> "Figure":
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # the Agg canvas, attached explicitly: no pyplot, no global backend
    return fig


def figure_to_svg(fig: "Figure") -> str:
    """The figure as a bare ``<svg>`` element (no XML prolog, DOCTYPE or metadata block).

    Call inside :func:`report_style` so the hash salt is in force.
    """
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    return re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)


# --------------------------------------------------------------------------- flow diagram
_GROUP_TITLES = {"trial": "Trial (treated)", "pool": "Candidate control pool"}
_LINE_H = 0.165  # inches per text line at 8 pt
_PAD = 0.12
_BOX_W = 2.4
_GAP = 0.32


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    return textwrap.wrap(text, width=width, subsequent_indent=indent, break_long_words=True) or [""]


def _box(ax: "Axes", cx: float, top: float, lines: list[str], *, align: str = "center",
         face: str = "white", bold_first: bool = False) -> tuple[float, float]:
    """Draw a rounded box whose top edge is at ``top``; return (top, bottom)."""
    from matplotlib.patches import FancyBboxPatch

    h = len(lines) * _LINE_H + 2 * _PAD
    x0 = cx - _BOX_W / 2
    ax.add_patch(
        FancyBboxPatch((x0, top - h), _BOX_W, h, boxstyle="round,pad=0,rounding_size=0.06",
                       linewidth=0.8, edgecolor=BOX_EDGE, facecolor=face)
    )
    for i, line in enumerate(lines):
        y = top - _PAD - (i + 0.5) * _LINE_H
        x = cx if align == "center" else x0 + _PAD
        ax.text(x, y, line, ha=align, va="center", fontsize=8,
                fontweight="bold" if (bold_first and i == 0) else "normal")
    return top, top - h


def _arrow(ax: "Axes", x0: float, y0: float, x1: float, y1: float) -> None:
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops={"arrowstyle": "-|>", "linewidth": 0.8, "color": BOX_EDGE,
                            "shrinkA": 0, "shrinkB": 0, "mutation_scale": 8})


def _stage_title(stage: str) -> str:
    stage = stage.replace("_", " ").strip()
    return stage[:1].upper() + stage[1:]


def _draw_flow(ax: "Axes", rows: list["FlowRow"], counts: dict[str, Any], ratio: str) -> float:
    """Draw the flow on ``ax`` (inch coordinates, y downward from 0); return the bottom y."""
    groups = list(dict.fromkeys(r.group for r in rows))
    col_w = 2 * _BOX_W + 0.5
    mirrored = len(groups) == 2  # trial exclusions on the left, pool on the right (CONSORT-like)
    bottoms: list[tuple[float, float]] = []
    for gi, group in enumerate(groups):
        left = gi * col_w
        if mirrored and gi == 0:
            main_cx, excl_cx, side = left + col_w - _BOX_W / 2 - 0.1, left + _BOX_W / 2 + 0.05, -1
        else:
            main_cx, excl_cx, side = left + _BOX_W / 2 + 0.1, left + col_w - _BOX_W / 2 - 0.05, 1
        ax.text(main_cx, -0.05, _GROUP_TITLES.get(group, _stage_title(group)), ha="center",
                va="top", fontsize=9, fontweight="bold")
        y = -0.4
        steps = [r for r in rows if r.group == group]
        for si, step in enumerate(steps):
            lines = _wrap(_stage_title(step.stage), 34) + [f"n = {step.n_in}"]
            _, bottom = _box(ax, main_cx, y, lines, bold_first=False)
            shown = [(reason, n) for reason, n in step.excluded if n != "0"]  # zero exclusions: table only
            if shown:
                ex_lines = [f"Excluded (n = {step.n_excluded})"]
                for reason, n in shown:
                    ex_lines += _wrap(f"• {reason}: {n}", 36, indent="   ")
                ex_h = len(ex_lines) * _LINE_H + 2 * _PAD
                ex_top = bottom - _GAP
                _box(ax, excl_cx, ex_top, ex_lines, align="left", face="#f6f6f6")
                mid = ex_top - ex_h / 2
                ax.plot([main_cx, main_cx], [bottom, mid], color=BOX_EDGE, linewidth=0.8)
                edge = excl_cx - side * _BOX_W / 2
                _arrow(ax, main_cx, mid, edge, mid)
                next_top = ex_top - ex_h - _GAP
            else:
                next_top = bottom - 2 * _GAP
            _arrow(ax, main_cx, mid if shown else bottom, main_cx, next_top)
            y = next_top
            if si == len(steps) - 1:
                lines = ["Included", f"n = {step.n_out}"]
                _, bottom = _box(ax, main_cx, y, lines, face="#eef4fa")
                bottoms.append((main_cx, bottom))

    if not groups:
        return -0.5
    lowest = min(b for _, b in bottoms)
    total_w = len(groups) * col_w
    top = lowest - 3 * _GAP
    lines = [
        f"Matched: {counts['n_sets']} sets ({ratio})",
        f"{counts['n_treated']} treated, {counts['n_controls']} controls",
    ]
    if counts["n_controls_unique"] != counts["n_controls"]:
        lines.append(f"({counts['n_controls_unique']} distinct controls; reused with replacement)")
    _, matched_bottom = _box(ax, total_w / 2, top, lines, face="#e8f3ec")
    for cx, b in bottoms:
        ax.plot([cx, cx], [b, top + _GAP * 1.5], color=BOX_EDGE, linewidth=0.8)
        _arrow(ax, cx, top + _GAP * 1.5, total_w / 2 + (cx - total_w / 2) * 0.3, top)
    return matched_bottom


def flow_svg(flow: "Flow | Sequence[Mapping[str, Any]]", matched: "pd.DataFrame | Mapping[str, Any]",
             ratio: str = "") -> str:
    """CONSORT-like flow diagram: per group, entries, exclusion boxes with reasons, then the sets.

    Parameters
    ----------
    flow : Flow or list of dict
        Steps in order (a :class:`Flow`, or the ``flow`` list of ``results.json``, whose counts may
        be suppressed strings such as ``"<5"``); each group's steps form a column. Reasons that
        excluded nobody are left out of the diagram (the flow table lists them).
    matched : DataFrame or mapping
        The tidy matched table, or its counts (``n_sets, n_treated, n_controls,
        n_controls_unique``), for the final box.
    ratio : str
        Matching ratio shown in the final box, for example ``"1:3"``.
    """
    from ._table1 import flow_rows, matched_counts

    counts = dict(matched) if isinstance(matched, Mapping) else matched_counts(matched)
    rows = flow_rows(flow)
    with report_style():
        # Lay out once on a scratch figure to learn the height, then draw at the right size.
        groups = list(dict.fromkeys(r.group for r in rows)) or ["trial"]
        width = len(groups) * (2 * _BOX_W + 0.5)
        scratch = _new_figure(width, 10)
        ax = scratch.add_axes((0, 0, 1, 1))
        bottom = _draw_flow(ax, rows, counts, ratio or "matched")
        height = -bottom + 0.15
        fig = _new_figure(width, height)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(-height, 0)
        ax.set_axis_off()
        _draw_flow(ax, rows, counts, ratio or "matched")
        return figure_to_svg(fig)


# --------------------------------------------------------------------------- Love plot
def love_svg(balance: pd.DataFrame, threshold: float = 0.1) -> str:
    """Love plot: absolute standardised mean difference per covariate, before and after matching.

    Parameters
    ----------
    balance : DataFrame
        ``covariate, smd_before, smd_after`` (one row per covariate, shown top to bottom).
    threshold : float
        Reference line; |SMD| < 0.1 is the usual mark of adequate balance (Austin 2009).

    References
    ----------
    Austin PC. Balance diagnostics for comparing the distribution of baseline covariates between
    treatment groups in propensity-score matched samples. Stat Med 2009;28:3083–3107.
    doi:10.1002/sim.3697
    """
    covs = [str(c) for c in balance["covariate"]] if not balance.empty else []
    before = pd.to_numeric(balance.get("smd_before", pd.Series(dtype=float)), errors="coerce").abs()
    after = pd.to_numeric(balance.get("smd_after", pd.Series(dtype=float)), errors="coerce").abs()
    with report_style():
        height = 1.3 + 0.32 * max(len(covs), 1)
        fig = _new_figure(8.0, height)
        longest = max((len(c) for c in covs), default=4)
        left = min(0.4, 0.06 + 0.0095 * longest)
        fig.subplots_adjust(left=left, right=0.7, top=1 - 0.35 / height, bottom=0.75 / height)
        ax = fig.add_subplot(1, 1, 1)
        ys = list(range(len(covs)))[::-1]
        ax.axvline(threshold, color="#777777", linestyle="--", linewidth=0.9, zorder=1)
        ax.scatter(before.to_numpy(), ys, s=36, facecolors="white", edgecolors=POOL_COLOUR,
                   linewidths=1.3, label="Before matching (treated vs pool)", zorder=3)
        ax.scatter(after.to_numpy(), ys, s=36, color=TREATED_COLOUR, label="After matching", zorder=4)
        ax.set_yticks(ys, covs)
        finite = [v for v in list(before) + list(after) if pd.notna(v)]
        xmax = max([0.5, threshold * 1.5] + [v * 1.1 for v in finite])
        ax.set_xlim(0, math.ceil(xmax * 10) / 10)
        ax.set_ylim(-0.7, len(covs) - 0.3)
        ax.set_xlabel("|Standardised mean difference|")
        ax.grid(axis="y", color="#eeeeee", linewidth=0.6, zorder=0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, borderaxespad=0)
        return figure_to_svg(fig)


# --------------------------------------------------------------------------- Kaplan–Meier
def km_svg(endpoints: pd.DataFrame, endpoint: "Endpoint", horizon: float = 60.0,
           tick_step: float = 10.0) -> str:
    """Kaplan–Meier curves by role (treated, control) with numbers at risk under the axis.

    Parameters
    ----------
    endpoints : DataFrame
        One row per matched patient: ``role`` plus ``endpoint.column`` (days from index) and
        ``endpoint.event_column`` (1 = event, 0 = censored).
    endpoint : Endpoint
        A ``time_to_event`` endpoint.
    horizon : float
        Right end of the time axis, in days.

    Notes
    -----
    Curves are unweighted product-limit estimates per arm with lifelines' default
    (exponential Greenwood) 95% pointwise bands; censoring is marked with "+". The numbers at
    risk are those still under observation at each tick (lifelines' convention, as in R's
    ``survival`` and KMunicate).

    References
    ----------
    Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat Assoc
    1958;53:457–481. doi:10.1080/01621459.1958.10501452
    Morris TP, Jarvis CI, Cragg W, et al. Proposals on Kaplan–Meier plots in medical research and
    a survey of stakeholder views: KMunicate. BMJ Open 2019;9:e030215.
    doi:10.1136/bmjopen-2019-030215
    """
    from lifelines import KaplanMeierFitter
    from lifelines.plotting import add_at_risk_counts

    time_col, event_col = endpoint.column, endpoint.event_column
    with report_style():
        fig = _new_figure(7.0, 4.8)
        fig.subplots_adjust(left=0.2, right=0.97, top=0.92, bottom=0.3)
        ax = fig.add_subplot(1, 1, 1)
        fitters, labels = [], []
        for role, label, colour in (("treated", "Treated", TREATED_COLOUR),
                                    ("control", "Control", CONTROL_COLOUR)):
            sub = endpoints.loc[endpoints["role"] == role, [time_col, event_col]].dropna()
            if sub.empty:
                continue
            kmf = KaplanMeierFitter(label=f"{label} (n = {len(sub)})")
            kmf.fit(sub[time_col].astype(float), event_observed=sub[event_col].astype(int))
            kmf.plot_survival_function(ax=ax, ci_show=True, show_censors=True, color=colour,
                                       censor_styles={"ms": 7, "mew": 1.0})
            fitters.append(kmf)
            labels.append(label)
        ticks = [tick_step * i for i in range(int(horizon // tick_step) + 1)]
        ax.set_xlim(0, horizon)
        ax.set_xticks(ticks)
        ax.set_ylim(0, 1.04)
        ax.set_xlabel("Days from index")
        ax.set_ylabel("Survival probability")
        ax.set_title(endpoint.label, loc="left")
        ax.legend(loc="lower left", frameon=False)
        if fitters:
            add_at_risk_counts(*fitters, labels=labels, rows_to_show=["At risk"], ax=ax, fig=fig,
                               xticks=ticks, fontsize=8)
        return figure_to_svg(fig)
