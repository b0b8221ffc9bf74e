"""Report room: Table 1 and the patient flow as data, with optional small-cell suppression.

This module owns the *numbers* behind Table 1 and the flow, in the JSON-ready form that
``results.json`` stores and every renderer (HTML, DOCX, CSV) reads: one statistic per cell plus its
display text. Display text is made here, once, so the page, the DOCX and the CSV cannot disagree.

Small-cell suppression (``[report] suppress_small_cells``): counts that come from the candidate pool
and lie between 1 and ``threshold - 1`` are shown as ``"<threshold"``. It applies to the pool and
matched-control columns of Table 1 (a binary count is shown as ``"<k"`` when small and as
``">n-k"`` when its complement ``n - count`` is small; the number missing; any summary of fewer
than ``threshold`` observed patients is replaced by "fewer than k observed"), to the column sizes,
and to the pool's steps of the flow (each exclusion reason, and ``n in`` / ``n out`` except the
number of matched controls, which is the analysed sample shown throughout the report). Zero is
shown. Trial counts are never suppressed. This is primary suppression only: a suppressed count can
sometimes be derived by subtracting shown totals, and proportions in the balance table are not
rounded, so a formal disclosure review may still be needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._format import DASH, _decimals_for, _finite, fmt_num

if TYPE_CHECKING:
    from ..cohort._flow import Flow

__all__ = ["FlowRow", "flow_data", "flow_rows", "flow_table", "matched_counts", "table_one",
           "table_one_data", "SUPPRESSED_ARMS"]

#: Table 1 columns whose counts come from the pool (suppressed when asked).
SUPPRESSED_ARMS = ("pool", "matched")
ARMS = ("treated", "pool", "matched")


def _small(n: Any, k: int | None) -> bool:
    return bool(k) and isinstance(n, (int, np.integer)) and 0 < int(n) < int(k)


def suppress(n: int, k: int | None) -> int | str:
    """``n``, or ``"<k"`` when ``0 < n < k`` (``k`` None or 0: never)."""
    return f"<{k}" if _small(n, k) else int(n)


# --------------------------------------------------------------------------- matched counts
def matched_counts(matched: pd.DataFrame) -> dict[str, int]:
    """Counts of the matched table: sets, treated rows, control rows and distinct controls."""
    if matched is None or matched.empty:
        return {"n_sets": 0, "n_treated": 0, "n_controls": 0, "n_controls_unique": 0}
    controls = matched.loc[matched["role"] == "control", "patient_id"]
    return {
        "n_sets": int(matched["set_id"].nunique()),
        "n_treated": int((matched["role"] == "treated").sum()),
        "n_controls": int(len(controls)),
        "n_controls_unique": int(controls.nunique()),
    }


# --------------------------------------------------------------------------- flow
def flow_data(flow: "Flow", small_cells: int | None = None) -> list[dict[str, Any]]:
    """The flow as ``results.json`` stores it: ``Flow.to_dict()`` with pool counts suppressed.

    A suppressed count becomes the string ``"<k"``; see the module notes for what is suppressed.
    """
    steps = flow.to_dict()
    pool_idx = [i for i, s in enumerate(steps) if s["group"] == "pool"]
    last_pool = pool_idx[-1] if pool_idx else None
    out = []
    for i, step in enumerate(steps):
        step = dict(step)
        if small_cells and step["group"] == "pool":
            step["excluded"] = {r: suppress(n, small_cells) for r, n in step["excluded"].items()}
            step["n_in"] = suppress(step["n_in"], small_cells)
            if i != last_pool:
                step["n_out"] = suppress(step["n_out"], small_cells)
        out.append(step)
    return out


class FlowRow:
    """One flow step with display text for every count (``"<5"`` kept as given)."""

    __slots__ = ("stage", "group", "n_in", "excluded", "n_excluded", "n_out")

    def __init__(self, stage: str, group: str, n_in: Any, excluded: Sequence[tuple[str, Any]], n_out: Any):
        self.stage, self.group = str(stage), str(group)
        self.n_in, self.n_out = str(n_in), str(n_out)
        self.excluded = tuple((str(r), str(n)) for r, n in excluded)
        counts = [n for _, n in excluded]
        if all(isinstance(n, int) for n in counts):
            self.n_excluded = str(sum(counts))
        elif isinstance(n_in, int) and isinstance(n_out, int):
            self.n_excluded = str(n_in - n_out)
        else:
            self.n_excluded = "NA"


def flow_rows(flow: "Flow | Sequence[Mapping[str, Any]]") -> list[FlowRow]:
    """Display rows of a :class:`Flow` or of the flow list stored in ``results.json``."""
    if hasattr(flow, "steps"):
        return [FlowRow(s.stage, s.group, s.n_in, s.excluded, s.n_out) for s in flow.steps]
    return [FlowRow(s["stage"], s["group"], s["n_in"], list(s.get("excluded", {}).items()), s["n_out"])
            for s in flow]


def flow_table(flow: "Flow | Sequence[Mapping[str, Any]]") -> pd.DataFrame:
    """The flow as a table: one row per step, exclusions listed with their counts."""
    rows = [{"group": r.group, "stage": r.stage, "n_in": r.n_in,
             "excluded": "\n".join(f"{reason}: {n}" for reason, n in r.excluded) or DASH,
             "n_excluded": r.n_excluded, "n_out": r.n_out} for r in flow_rows(flow)]
    return pd.DataFrame(rows, columns=["group", "stage", "n_in", "excluded", "n_excluded", "n_out"])


# --------------------------------------------------------------------------- Table 1
def _arm_frames(baseline: pd.DataFrame, matched: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Treated, pool-before-matching and matched-control rows of the baseline frame.

    Treated are the trial patients in the matched table (all trial patients if nothing matched);
    matched controls keep one row per set a control sits in, so a control reused under
    replacement counts once per use.
    """
    if matched is not None and not matched.empty:
        treated_ids = matched.loc[matched["role"] == "treated", ["patient_id"]].drop_duplicates()
        treated = treated_ids.merge(baseline, on="patient_id", how="left")
        control_ids = matched.loc[matched["role"] == "control", ["patient_id"]]
        controls = control_ids.merge(baseline, on="patient_id", how="left")
    else:
        treated = baseline[baseline["group"] == "trial"]
        controls = baseline.iloc[0:0]
    pool = baseline[baseline["group"] == "pool"]
    return {"treated": treated, "pool": pool, "matched": controls}


def _missing_text(missing: int, k: int | None) -> str:
    if not missing:
        return ""
    return f"; missing {suppress(missing, k)}"


def _binary(values: pd.Series, k: int | None) -> tuple[str, dict[str, Any]]:
    v = pd.to_numeric(values, errors="coerce")
    observed = v.dropna()
    missing = int(v.isna().sum())
    n_obs = int(len(observed))
    count = int((observed == 1).sum())
    stats: dict[str, Any] = {"n_observed": n_obs, "n_missing": missing, "count": count,
                             "percent": 100 * count / n_obs if n_obs else None, "suppressed": False}
    if n_obs == 0:
        return DASH, stats
    if _small(n_obs, k):
        cell = f"fewer than {k} observed"
        stats.update(n_observed=None, count=None, percent=None, suppressed=True)
    elif _small(count, k) or _small(n_obs - count, k):
        cell = f"<{k}" if _small(count, k) else f">{n_obs - k}"
        stats.update(count=None, percent=None, suppressed=True)
    else:
        cell = f"{count} ({fmt_num(100 * count / n_obs, 1)}%)"
    if _small(missing, k):
        stats.update(n_missing=None, n_observed=None, suppressed=True)
    return cell + _missing_text(missing, k), stats


def _continuous(values: pd.Series, decimals: int, nonnormal: bool, k: int | None) -> tuple[str, dict[str, Any]]:
    v = pd.to_numeric(values, errors="coerce")
    observed = v.dropna().to_numpy(dtype=float)
    missing = int(v.isna().sum())
    n_obs = int(observed.size)
    stats: dict[str, Any] = {"n_observed": n_obs, "n_missing": missing, "mean": None, "sd": None,
                             "median": None, "q1": None, "q3": None, "suppressed": False}
    if n_obs == 0:
        return DASH, stats
    if _small(n_obs, k):
        stats.update(n_observed=None, suppressed=True)
        return f"fewer than {k} observed" + _missing_text(missing, k), stats
    q1, med, q3 = (float(x) for x in np.percentile(observed, [25, 50, 75]))  # Hyndman & Fan type 7
    mean = float(observed.mean())
    sd = float(np.std(observed, ddof=1)) if n_obs > 1 else None
    stats.update(mean=mean, sd=sd, median=med, q1=q1, q3=q3)
    if nonnormal:
        cell = f"{fmt_num(med, decimals)} [{fmt_num(q1, decimals)}–{fmt_num(q3, decimals)}]"
    else:
        cell = f"{fmt_num(mean, decimals)} ({fmt_num(sd, decimals)})"
    if _small(missing, k):
        stats.update(n_missing=None, n_observed=None, suppressed=True)
    return cell + _missing_text(missing, k), stats


def table_one_data(
    baseline: pd.DataFrame,
    matched: pd.DataFrame,
    covariate_kinds: Mapping[str, str],
    balance: pd.DataFrame | None = None,
    *,
    nonnormal: Iterable[str] = (),
    matching_covariates: Sequence[str] = (),
    exact: Sequence[str] = (),
    small_cells: int | None = None,
) -> dict[str, Any]:
    """Table 1 as JSON-ready data: per covariate and column, the statistics and their display text.

    Parameters
    ----------
    baseline, matched, covariate_kinds, balance, nonnormal, matching_covariates, exact
        As for :func:`table_one`.
    small_cells : int, optional
        Suppression threshold for the pool and matched-control columns (module notes); None: off.

    Returns
    -------
    dict
        ``n`` (patients per column; ints, or ``"<k"`` when suppressed), ``smd_denominator``,
        ``suppression`` (threshold or None) and ``rows``: one dict per covariate with ``covariate,
        kind, statistic, used_in_matching, cells`` (display text per column), ``stats`` (numbers
        per column: ``n_observed, n_missing`` and ``count, percent`` or ``mean, sd, median, q1,
        q3``; None where suppressed, with ``suppressed`` true) and ``smd_before, smd_after``.

    Notes
    -----
    Binary covariates: n (%) of patients with value 1 among those observed. Continuous: mean (SD,
    ``ddof=1``) or median [Q1–Q3] (linear interpolation, type 7). Matched controls are counted once
    per matched set they belong to and are not weighted; SMDs come unchanged from the matching
    room's balance table (which applies its own weights and denominator).
    """
    arms = _arm_frames(baseline, matched)
    nonnormal = set(nonnormal)
    smd: dict[str, tuple[Any, Any]] = {}
    if balance is not None and not balance.empty:
        for row in balance.itertuples(index=False):
            smd[str(row.covariate)] = (getattr(row, "smd_before", None), getattr(row, "smd_after", None))
    rows = []
    for cov, kind in covariate_kinds.items():
        if cov not in baseline.columns:
            continue
        cells: dict[str, str] = {}
        stats: dict[str, dict[str, Any]] = {}
        if kind == "binary":
            statistic = "n (%)"
            for arm, df in arms.items():
                cells[arm], stats[arm] = _binary(df[cov], small_cells if arm in SUPPRESSED_ARMS else None)
        else:
            skewed = cov in nonnormal
            statistic = "median [IQR]" if skewed else "mean (SD)"
            observed = pd.to_numeric(baseline[cov], errors="coerce").dropna()
            decimals = _decimals_for(float(observed.abs().median()) if len(observed) else float("nan"))
            for arm, df in arms.items():
                cells[arm], stats[arm] = _continuous(df[cov], decimals, skewed,
                                                     small_cells if arm in SUPPRESSED_ARMS else None)
        before, after = smd.get(cov, (None, None))
        rows.append({
            "covariate": str(cov),
            "kind": "binary" if kind == "binary" else "continuous",
            "statistic": statistic,
            "used_in_matching": "exact" if cov in exact else ("distance" if cov in matching_covariates else ""),
            "cells": cells,
            "stats": stats,
            "smd_before": float(before) if _finite(before) else None,
            "smd_after": float(after) if _finite(after) else None,
        })
    counts = matched_counts(matched)
    n = {"treated": int(len(arms["treated"])), "pool": int(len(arms["pool"])),
         "matched": counts["n_controls"], "matched_unique": counts["n_controls_unique"]}
    if small_cells:
        n = {k: (v if k == "treated" else suppress(v, small_cells)) for k, v in n.items()}
    return {
        "n": n,
        "smd_denominator": balance.attrs.get("smd_denominator") if balance is not None else None,
        "suppression": int(small_cells) if small_cells else None,
        "rows": rows,
    }


def table_one_frame(data: Mapping[str, Any]) -> pd.DataFrame:
    """Table 1 data (from :func:`table_one_data` or ``results.json``) as a DataFrame of strings."""
    rows = [{
        "covariate": r["covariate"], "statistic": r["statistic"],
        **{arm: r["cells"].get(arm, DASH) for arm in ARMS},
        "smd_before": fmt_num(r["smd_before"], 3) if _finite(r["smd_before"]) else DASH,
        "smd_after": fmt_num(r["smd_after"], 3) if _finite(r["smd_after"]) else DASH,
        "used_in_matching": r["used_in_matching"],
    } for r in data["rows"]]
    out = pd.DataFrame(rows, columns=["covariate", "statistic", "treated", "pool", "matched", "smd_before",
                                      "smd_after", "used_in_matching"])
    out.attrs["n"] = dict(data["n"])
    out.attrs["smd_denominator"] = data.get("smd_denominator")
    return out


def table_one(
    baseline: pd.DataFrame,
    matched: pd.DataFrame,
    covariate_kinds: Mapping[str, str],
    balance: pd.DataFrame | None = None,
    *,
    nonnormal: Iterable[str] = (),
    matching_covariates: Sequence[str] = (),
    exact: Sequence[str] = (),
    small_cells: int | None = None,
) -> pd.DataFrame:
    """Table 1: baseline covariates of treated, the pool before matching and matched controls.

    Parameters
    ----------
    baseline : DataFrame
        ``patient_id, group`` plus one column per covariate (eligible patients).
    matched : DataFrame
        The tidy matched table (``set_id, patient_id, role, ...``).
    covariate_kinds : mapping
        Covariate -> ``"binary"`` or ``"continuous"``; gives the row order.
    balance : DataFrame, optional
        ``covariate, smd_before, smd_after``; its ``attrs["smd_denominator"]`` is copied to
        the result's attrs.
    nonnormal : iterable of str
        Continuous covariates shown as median [IQR] instead of mean (SD).
    matching_covariates, exact : sequence of str
        Covariates used in the distance and for exact matching; flagged in ``used_in_matching``.
    small_cells : int, optional
        Small-cell suppression threshold for the pool and matched-control columns.

    Returns
    -------
    DataFrame
        Columns ``covariate, statistic, treated, pool, matched, smd_before, smd_after,
        used_in_matching`` (all strings); ``attrs`` holds ``n`` per column and
        ``smd_denominator``. See :func:`table_one_data` for the conventions.
    """
    return table_one_frame(table_one_data(
        baseline, matched, covariate_kinds, balance, nonnormal=nonnormal,
        matching_covariates=matching_covariates, exact=exact, small_cells=small_cells))
