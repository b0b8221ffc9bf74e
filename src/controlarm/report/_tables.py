"""Report room: the report's tables as display-ready DataFrames.

This module owns the *content* of the outcome and methods tables and the order of the matched-set
listing; Table 1 and the flow live in :mod:`._table1`, number formatting in :mod:`._format` (both
re-exported here). Each builder returns a DataFrame of strings, ready to render as HTML, DOCX or
CSV; nothing in this module knows about HTML. Every table holds aggregates only, except
``sort_matched`` (the matched-set listing, by design patient-level).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ._format import (
    DASH,
    _finite,
    fmt_conventions,
    fmt_estimate,
    fmt_num,
    fmt_p,
    fmt_summary,
    fmt_test,
)
from ._table1 import flow_table, matched_counts, table_one

if TYPE_CHECKING:
    from ..analysis._results import Results

__all__ = [
    "DASH",
    "FRAMINGS",
    "fmt_num",
    "fmt_p",
    "fmt_estimate",
    "fmt_summary",
    "fmt_test",
    "fmt_conventions",
    "flow_table",
    "matched_counts",
    "table_one",
    "outcomes_table",
    "methods_table",
    "sort_matched",
]

FRAMINGS = ("matched", "published-style", "unmatched")


# --------------------------------------------------------------------------- outcomes
def _framings_present(results: "Results") -> list[str]:
    """``matched`` always, then the other framings that any test or estimate uses."""
    present = {"matched"}
    present |= {t.framing for o in results.outcomes for t in o.tests}
    present |= {e.framing for o in results.outcomes for e in o.estimates}
    return [f for f in FRAMINGS if f in present]


def outcomes_table(results: "Results") -> pd.DataFrame:
    """One row per outcome: arm summaries, then tests and estimates grouped by framing.

    Returns
    -------
    DataFrame
        Columns ``outcome, label, kind, treated, control`` and, per framing present
        (``matched`` always; ``published-style`` and ``unmatched`` when any result has them),
        ``<framing>_tests`` and ``<framing>_estimates``; then ``warnings`` (the warnings of that
        row's tests, deduplicated, in order) and ``attrs["warnings_by_framing"]`` (per row, framing
        -> its tests' warnings). Multiple entries in a cell are separated by newlines.
        ``attrs["framings"]`` lists the framings in column order.
    """
    framings = _framings_present(results)
    rows = []
    by_framing: list[dict[str, list[str]]] = []
    for o in results.outcomes:
        by_arm = {s.arm: s for s in o.summaries}
        row: dict[str, str] = {
            "outcome": o.outcome,
            "label": o.label,
            "kind": o.kind,
            "treated": fmt_summary(by_arm.get("treated")),
            "control": fmt_summary(by_arm.get("control")),
        }
        warnings: list[str] = []
        by_framing.append({})
        for framing in framings:
            tests = [t for t in o.tests if t.framing == framing]
            ests = [e for e in o.estimates if e.framing == framing]
            row[f"{framing}_tests"] = "\n".join(fmt_test(t) for t in tests) or DASH
            row[f"{framing}_estimates"] = "\n".join(fmt_estimate(e) for e in ests) or DASH
            by_framing[-1][framing] = list(dict.fromkeys(t.warning for t in tests if t.warning))
            for t in tests:
                if t.warning and t.warning not in warnings:
                    warnings.append(t.warning)
        row["warnings"] = "\n".join(warnings)
        rows.append(row)
    columns = ["outcome", "label", "kind", "treated", "control"]
    for framing in framings:
        columns += [f"{framing}_tests", f"{framing}_estimates"]
    columns.append("warnings")
    out = pd.DataFrame(rows, columns=columns)
    out.attrs["framings"] = framings
    out.attrs["warnings_by_framing"] = by_framing
    return out


def methods_table(results: "Results") -> pd.DataFrame:
    """Every test and estimate with its method, framing, conventions and reference."""
    rows = []
    for o in results.outcomes:
        for t in o.tests:
            detail = [f"alternative: {t.alternative}", f"n: {t.n}"]
            if _finite(t.statistic):
                detail.append(f"statistic: {fmt_num(t.statistic)}")
            if _finite(t.df):
                detail.append(f"df: {fmt_num(t.df)}")
            conv = fmt_conventions(t.conventions)
            rows.append(
                {
                    "outcome": o.label or o.outcome,
                    "type": "test",
                    "name": t.name,
                    "framing": t.framing,
                    "method": t.method,
                    "conventions": "\n".join(detail + ([conv] if conv else [])),
                    "reference": t.reference or DASH,
                }
            )
        for e in o.estimates:
            conv = fmt_conventions(e.conventions)
            rows.append(
                {
                    "outcome": o.label or o.outcome,
                    "type": "estimate",
                    "name": e.name,
                    "framing": e.framing,
                    "method": e.method,
                    "conventions": "\n".join([f"CI level: {e.ci_level:g}"] + ([conv] if conv else [])),
                    "reference": e.reference or DASH,
                }
            )
    return pd.DataFrame(rows, columns=["outcome", "type", "name", "framing", "method", "conventions", "reference"])


# --------------------------------------------------------------------------- the one patient-level table
def sort_matched(matched: pd.DataFrame) -> pd.DataFrame:
    """The matched table in report order: by set, treated first, then patient id.

    This is the only patient-level table of the room. It feeds ``matched_sets.csv`` (an
    analysis dataset) and the HTML listing, which appears only when ``report.listings`` is on; both
    carry pseudonymous ids unless ``report.real_ids`` is on.
    """
    cols = ["set_id", "role", "patient_id", "weight", "distance"]
    if matched is None or matched.empty:
        return pd.DataFrame(columns=cols)
    out = matched.copy()
    for col in ("weight", "distance"):
        if col not in out.columns:
            out[col] = float("nan")
    out["_role_rank"] = out["role"].map({"treated": 0, "control": 1}).fillna(2)
    out["_pid"] = out["patient_id"].astype(str)
    out = out.sort_values(["set_id", "_role_rank", "_pid"], kind="mergesort")
    return out[cols].reset_index(drop=True)
