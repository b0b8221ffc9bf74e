"""Report room: figures over time from index: lab trajectories and the swimmer plot.

Inputs are the saved analysis datasets (ADSL, ADLB) and trajectories, all in days from each
patient's index; nothing here sees a calendar date or draws a patient id. Trial patients are
labelled "Patient 1" to "Patient n" in the order of their matched sets. matplotlib is imported
inside the functions, with the pinned, deterministic style of :mod:`._figures`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._figures import CONTROL_COLOUR, TREATED_COLOUR, _new_figure, figure_to_svg, report_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["SUPPORT_LEVELS", "lab_summary", "labs_svg", "patient_numbers", "support_level", "swimmer_events",
           "swimmer_svg"]

#: Respiratory support, least to most invasive: (legend label, colour, device categories).
SUPPORT_LEVELS = (
    ("Room air", "#f2f2f2", ("Room Air",)),
    ("Nasal cannula / face mask", "#c6dbef", ("Nasal Cannula", "Face Mask", "Trach Collar")),
    ("High-flow nasal cannula", "#6baed6", ("High Flow NC",)),
    ("NIPPV / CPAP", "#2171b5", ("NIPPV", "CPAP")),
    ("IMV", "#08306b", ("IMV",)),
    ("ECMO", "#a50f15", ("ECMO",)),
)
OTHER_SUPPORT = ("Other", "#bdbdbd")
_EVENT_STYLE = {  # kind -> (legend label, marker, colour, size, vertical offset)
    "administration": ("Administration", "v", "#000000", 34, -0.36),
    "adverse_event": ("Adverse event (numbered)", "D", "#d62728", 30, 0.0),
    "discharge": ("Discharge", ">", "#2ca02c", 36, 0.0),
    "death": ("Death", "X", "#000000", 52, 0.0),
}


def support_level(kind: str, category: str) -> int | None:
    """Index into :data:`SUPPORT_LEVELS` of an episode (ECMO episodes are level ECMO); None: other."""
    if kind == "ecmo":
        return len(SUPPORT_LEVELS) - 1
    for i, (_, _, cats) in enumerate(SUPPORT_LEVELS):
        if category in cats:
            return i
    return None


def patient_numbers(adsl: pd.DataFrame) -> dict[str, int]:
    """Trial patient id -> 1..n, in the order of their matched sets (then id)."""
    treated = adsl[adsl["ARM"] == "treated"].sort_values(["SETID", "USUBJID"], kind="mergesort")
    return {str(pid): i for i, pid in enumerate(dict.fromkeys(treated["USUBJID"].astype(str)), start=1)}


def swimmer_events(adsl: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """The trial patients' events as drawn: ``patient`` (1..n), ``kind``, ``day``, ``label``, ``number``.

    ``number`` numbers the adverse events 1..m (by patient, then day) so the figure and its key
    table agree; it is 0 for other events.
    """
    numbers = patient_numbers(adsl)
    cols = ["patient", "kind", "day", "label", "number"]
    if events is None or events.empty or not numbers:
        return pd.DataFrame(columns=cols)
    ev = events[events["patient_id"].astype(str).isin(numbers)].copy()
    ev["patient"] = ev["patient_id"].astype(str).map(numbers).astype(int)
    ev["day"] = pd.to_numeric(ev["day"], errors="coerce").astype(float)
    ev["label"] = ev["label"].astype(str)
    ev = ev.sort_values(["patient", "day", "kind", "label"], kind="mergesort").reset_index(drop=True)
    is_ae = ev["kind"] == "adverse_event"
    ev["number"] = 0
    ev.loc[is_ae, "number"] = np.arange(1, int(is_ae.sum()) + 1)
    return ev[cols]


def swimmer_svg(adsl: pd.DataFrame, support: pd.DataFrame, events: pd.DataFrame, horizon: float = 60.0) -> str:
    """Swimmer plot of each trial patient: respiratory support, ICU stay and events by day from index.

    Parameters
    ----------
    adsl : DataFrame
        ``USUBJID, ARM, SETID`` (the subject-level dataset), for the patients and their order.
    support : DataFrame
        Episodes ``patient_id, kind (device/ecmo/icu), category, start_day, end_day``.
    events : DataFrame
        ``patient_id, kind (administration/adverse_event/death/discharge), day, label``.
    horizon : float
        Right end of the time axis at most, in days; the axis stops one day after the last
        episode or event drawn.

    Notes
    -----
    Each bar is coloured by the most invasive support of the episode (legend, least to most:
    room air, nasal cannula or face mask, high-flow nasal cannula, NIPPV or CPAP, IMV, ECMO); ECMO
    is drawn over the device bars. The thin black line under a bar is the ICU stay. Adverse events
    are numbered; the key lists their terms.
    """
    numbers = patient_numbers(adsl)
    ids = {v: k for k, v in numbers.items()}
    n = max(len(numbers), 1)
    sup = support[support["patient_id"].astype(str).isin(numbers)].copy() if support is not None else pd.DataFrame()
    ev = swimmer_events(adsl, events)
    ends = [0.0]
    if not sup.empty:
        ends.append(float(pd.to_numeric(sup["end_day"]).max()))
    if not ev.empty:
        ends.append(float(ev["day"].max()))
    right = min(float(horizon), max(ends) + 1.0)
    right = max(right, 7.0)
    with report_style():
        height = 1.55 + 0.42 * n
        fig = _new_figure(9.0, height)
        fig.subplots_adjust(left=0.1, right=0.74, top=1 - 0.25 / height, bottom=0.55 / height)
        ax = fig.add_subplot(1, 1, 1)
        for p in range(1, len(numbers) + 1):
            rows = sup[sup["patient_id"].astype(str) == ids[p]] if not sup.empty else sup
            _lane(ax, p, rows, right)
        used: set[str] = set()
        for row in ev.itertuples(index=False):
            label, marker, colour, size, dy = _EVENT_STYLE.get(row.kind, (row.kind, "o", "#555555", 24, 0.0))
            if not math.isfinite(row.day):
                continue
            ax.scatter([row.day], [row.patient + dy], marker=marker, s=size, color=colour, zorder=5,
                       edgecolors="white" if row.kind != "death" else None, linewidths=0.5,
                       label=None if label in used else label)
            used.add(label)
            if row.kind == "adverse_event":
                ax.text(row.day + 0.35, row.patient, str(row.number), ha="left", va="center", fontsize=7,
                        color="#d62728", fontweight="bold", zorder=6,
                        bbox={"boxstyle": "round,pad=0.12", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
        _support_legend(ax, sup)
        ax.set_yticks(range(1, len(numbers) + 1), [f"Patient {p}" for p in range(1, len(numbers) + 1)])
        ax.set_ylim(len(numbers) + 0.7, 0.3)
        ax.set_xlim(-1, right)
        step = 7 if right <= 63 else 14
        ax.set_xticks(np.arange(0, right + 0.01, step))
        ax.set_xlabel("Days from index (day 0: first administration)")
        ax.axvline(0, color="#999999", linewidth=0.8, linestyle=":", zorder=1)
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        return figure_to_svg(fig)


def _lane(ax: "Axes", y: float, rows: pd.DataFrame, right: float) -> None:
    """One patient's bars: device episodes, ECMO over them, the ICU stay as a line below."""
    if rows is None or rows.empty:
        return
    for kind, zorder in (("device", 2), ("ecmo", 3)):
        for r in rows[rows["kind"] == kind].itertuples(index=False):
            start, end = max(float(r.start_day), -1.0), min(float(r.end_day), right)
            if end <= start:
                continue
            level = support_level(r.kind, str(r.category))
            colour = SUPPORT_LEVELS[level][1] if level is not None else OTHER_SUPPORT[1]
            h = 0.44 if kind == "device" else 0.26
            ax.barh(y, end - start, left=start, height=h, color=colour, edgecolor="#555555", linewidth=0.4,
                    zorder=zorder)
    for r in rows[rows["kind"] == "icu"].itertuples(index=False):
        start, end = max(float(r.start_day), -1.0), min(float(r.end_day), right)
        if end > start:
            ax.plot([start, end], [y + 0.3, y + 0.3], color="#000000", linewidth=1.6, solid_capstyle="butt",
                    zorder=2)


def _support_legend(ax: "Axes", sup: pd.DataFrame) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    levels = sorted({support_level(r.kind, str(r.category)) for r in sup.itertuples(index=False)
                     if r.kind != "icu"} - {None}) if not sup.empty else []
    extra = [Patch(facecolor=SUPPORT_LEVELS[i][1], edgecolor="#555555", linewidth=0.4) for i in levels]
    extra_labels = [SUPPORT_LEVELS[i][0] for i in levels]
    if not sup.empty and any(support_level(r.kind, str(r.category)) is None
                             for r in sup.itertuples(index=False) if r.kind != "icu"):
        extra.append(Patch(facecolor=OTHER_SUPPORT[1], edgecolor="#555555", linewidth=0.4))
        extra_labels.append(OTHER_SUPPORT[0])
    if not sup.empty and (sup["kind"] == "icu").any():
        extra.append(Line2D([0], [0], color="#000000", linewidth=1.6))
        extra_labels.append("ICU stay")
    ax.legend(extra + handles, extra_labels + labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              frameon=False, borderaxespad=0)


# --------------------------------------------------------------------------- lab trajectories
def lab_summary(adlb: pd.DataFrame) -> pd.DataFrame:
    """Median and IQR by lab, day and arm, over patients (each patient's daily median first).

    Returns
    -------
    DataFrame
        ``PARAMCD, PARAM, ARM, ADY, n, median, q1, q3``; quartiles by linear interpolation
        (Hyndman & Fan type 7).
    """
    cols = ["PARAMCD", "PARAM", "ARM", "ADY", "n", "median", "q1", "q3"]
    if adlb is None or adlb.empty:
        return pd.DataFrame(columns=cols)
    data = adlb.dropna(subset=["AVAL"])
    daily = data.groupby(["PARAMCD", "PARAM", "ARM", "ADY", "USUBJID"], sort=False)["AVAL"].median().reset_index()
    rows = []
    for (code, param, arm, day), grp in daily.groupby(["PARAMCD", "PARAM", "ARM", "ADY"], sort=True):
        q1, med, q3 = np.percentile(grp["AVAL"].to_numpy(dtype=float), [25, 50, 75])
        rows.append({"PARAMCD": code, "PARAM": param, "ARM": arm, "ADY": int(day), "n": int(len(grp)),
                     "median": float(med), "q1": float(q1), "q3": float(q3)})
    return pd.DataFrame(rows, columns=cols)


def labs_svg(adlb: pd.DataFrame, min_patients: int = 3) -> str:
    """Lab trajectories: median and IQR by day from index, per arm, one panel per lab.

    Parameters
    ----------
    adlb : DataFrame
        ``USUBJID, ARM, PARAMCD, PARAM, ADY, AVAL``.
    min_patients : int
        The time axis ends at the last day on which either arm has at least this many patients
        measured; days with fewer patients inside that range are still drawn.

    Notes
    -----
    Each patient contributes one value per day (the median of that day's measurements). A panel
    uses a logarithmic axis when its values are positive and span more than a factor of 20.
    """
    summary = lab_summary(adlb)
    codes = list(dict.fromkeys(adlb["PARAMCD"])) if adlb is not None and not adlb.empty else []
    with report_style():
        ncol = 2 if len(codes) > 1 else 1
        nrow = max(1, math.ceil(len(codes) / ncol))
        fig = _new_figure(8.0, 0.4 + 2.9 * nrow)
        fig.subplots_adjust(left=0.1, right=0.98, top=1 - 0.5 / (0.4 + 2.9 * nrow), bottom=0.55 / (0.4 + 2.9 * nrow),
                            wspace=0.28, hspace=0.45)
        if not codes:
            ax = fig.add_subplot(1, 1, 1)
            ax.set_axis_off()
            ax.text(0.5, 0.5, "No lab values", ha="center", va="center")
            return figure_to_svg(fig)
        for k, code in enumerate(codes):
            ax = fig.add_subplot(nrow, ncol, k + 1)
            s = summary[summary["PARAMCD"] == code]
            enough = s[s["n"] >= min_patients]
            last = int(enough["ADY"].max()) if not enough.empty else int(s["ADY"].max())
            s = s[s["ADY"] <= last]
            for arm, label, colour in (("treated", "Treated", TREATED_COLOUR), ("control", "Control", CONTROL_COLOUR)):
                a = s[s["ARM"] == arm]
                if a.empty:
                    continue
                ax.fill_between(a["ADY"], a["q1"], a["q3"], color=colour, alpha=0.18, linewidth=0, step=None)
                ax.plot(a["ADY"], a["median"], color=colour, marker="o", markersize=3,
                        label=f"{label}: median (IQR)")
            positive = s[["q1", "median", "q3"]].to_numpy(dtype=float)
            if positive.size and (positive > 0).all() and positive.max() / positive.min() > 20:
                from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

                ax.set_yscale("log")
                ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_title(str(s["PARAM"].iloc[0]) if not s.empty else str(code), loc="left")
            ax.set_xlabel("Days from index")
            ax.set_xlim(-1.5, last + 0.5)
            ax.grid(color="#eeeeee", linewidth=0.6)
            if k == 0:
                ax.legend(loc="upper right", frameon=False)
        return figure_to_svg(fig)
