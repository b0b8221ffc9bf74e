"""Report room: the report's tables as display-ready DataFrames.

This module owns the *content* of every table the report shows (patient flow, Table 1, outcomes,
methods) and the number formatting they share. Each builder returns a DataFrame of strings, ready
to render as HTML here or as DOCX elsewhere; nothing in this module knows about HTML. Every table
holds aggregates only, except ``sort_matched`` (the matched-set listing, by design patient-level).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..analysis._results import ArmSummary, Estimate, Results, TestResult
    from ..cohort._flow import Flow

__all__ = [
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

DASH = "—"
FRAMINGS = ("matched", "published-style", "unmatched")


# --------------------------------------------------------------------------- number formatting
def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _decimals_for(magnitude: float, sig: int = 3, max_decimals: int = 3) -> int:
    """Decimals that show ``sig`` significant digits of a number of this magnitude."""
    if not _finite(magnitude) or magnitude == 0:
        return 2
    return int(min(max_decimals, max(0, sig - 1 - math.floor(math.log10(abs(magnitude))))))


def _round_half_up(x: float, decimals: int) -> str:
    """``x`` at ``decimals`` places, halves rounded away from zero on the shortest decimal repr.

    Python's ``format`` rounds the binary value half-to-even (0.0625 -> "0.062"); a reader
    rounding the printed number by hand expects "0.063".
    """
    q = Decimal(1).scaleb(-decimals)
    exact = Decimal(repr(float(x))).quantize(q, rounding=ROUND_HALF_UP, context=Context(prec=400))
    return format(exact, "f")


def fmt_num(x: Any, decimals: int | None = None) -> str:
    """A number for display: three significant digits unless ``decimals`` is given; NA when missing.

    >>> fmt_num(62.44), fmt_num(3.5), fmt_num(1523.7), fmt_num(float("nan")), fmt_num(0.5, 1)
    ('62.4', '3.50', '1524', 'NA', '0.5')
    """
    if not _finite(x):
        return "NA"
    x = float(x)
    d = _decimals_for(x) if decimals is None else decimals
    text = _round_half_up(x, d)
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.00"


def fmt_p(p: Any) -> str:
    """A p-value for display: three decimals, ``<0.001`` below that, NA when missing.

    >>> fmt_p(0.04123), fmt_p(0.0625), fmt_p(0.00002), fmt_p(None)
    ('0.041', '0.063', '<0.001', 'NA')
    """
    if not _finite(p):
        return "NA"
    p = float(p)
    return "<0.001" if p < 0.001 else _round_half_up(p, 3)


def fmt_estimate(e: "Estimate") -> str:
    """``name: value (95% CI low to high)``; "to" rather than a dash so negative bounds stay legible."""
    level = f"{100 * e.ci_level:g}%"
    ci = f"{level} CI {fmt_num(e.ci_low)} to {fmt_num(e.ci_high)}"
    return f"{e.name}: {fmt_num(e.value)} ({ci})"


def fmt_test(t: "TestResult") -> str:
    """``name: p = 0.041`` (the statistic and its conventions are listed in the methods table)."""
    p = fmt_p(t.p_value)
    return f"{t.name}: p {p}" if p.startswith("<") else f"{t.name}: p = {p}"


def fmt_summary(s: "ArmSummary | None") -> str:
    """One arm's summary: ``events/n (pct%)`` for binary data, ``median [Q1–Q3]`` otherwise.

    >>> from controlarm.analysis._results import ArmSummary
    >>> fmt_summary(ArmSummary("treated", n=8, events=6, proportion=0.75))
    '6/8 (75.0%)'
    >>> fmt_summary(ArmSummary("control", n=20, n_missing=4, median=1.2, q1=0.8, q3=2.5))
    '1.20 [0.800–2.50]; n = 20; missing 4'
    """
    if s is None:
        return DASH
    parts: list[str] = []
    if s.events is not None:
        prop = s.proportion if _finite(s.proportion) else (s.events / s.n if s.n else float("nan"))
        parts.append(f"{s.events}/{s.n} ({fmt_num(100 * prop, 1) if _finite(prop) else 'NA'}%)")
    if _finite(s.median):
        parts.append(f"{fmt_num(s.median)} [{fmt_num(s.q1)}–{fmt_num(s.q3)}]")
        if s.events is None:
            parts.append(f"n = {s.n}")
    elif s.events is None and _finite(s.mean):
        parts.append(f"{fmt_num(s.mean)} ({fmt_num(s.sd)}); n = {s.n}")
    if not parts:
        parts.append(f"n = {s.n}")
    if s.n_missing:
        parts.append(f"missing {s.n_missing}")
    return "; ".join(parts)


def _fmt_convention(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_fmt_convention(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt_convention(v) for v in value)
    if value is None:
        return "none"
    return str(value)


def fmt_conventions(conventions: Mapping[str, Any]) -> str:
    """``key: value`` lines, in the order the analysis room gave them."""
    return "\n".join(f"{k}: {_fmt_convention(v)}" for k, v in conventions.items())


# --------------------------------------------------------------------------- flow
def flow_table(flow: "Flow") -> pd.DataFrame:
    """The flow as a table: one row per step, exclusions listed with their counts."""
    rows = []
    for step in flow.steps:
        excluded = "\n".join(f"{reason}: {n}" for reason, n in step.excluded) or DASH
        rows.append(
            {
                "group": step.group,
                "stage": step.stage,
                "n_in": str(step.n_in),
                "excluded": excluded,
                "n_excluded": str(step.n_excluded),
                "n_out": str(step.n_out),
            }
        )
    return pd.DataFrame(rows, columns=["group", "stage", "n_in", "excluded", "n_excluded", "n_out"])


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


def _binary_cell(values: pd.Series) -> str:
    v = pd.to_numeric(values, errors="coerce")
    observed = v.dropna()
    if observed.empty:
        return DASH
    k = int((observed == 1).sum())
    cell = f"{k} ({fmt_num(100 * k / len(observed), 1)}%)"
    missing = int(v.isna().sum())
    return cell + (f"; missing {missing}" if missing else "")


def _continuous_cell(values: pd.Series, decimals: int, nonnormal: bool) -> str:
    v = pd.to_numeric(values, errors="coerce")
    observed = v.dropna().to_numpy(dtype=float)
    if observed.size == 0:
        return DASH
    if nonnormal:
        q1, med, q3 = np.percentile(observed, [25, 50, 75])  # Hyndman & Fan type 7
        cell = f"{fmt_num(med, decimals)} [{fmt_num(q1, decimals)}–{fmt_num(q3, decimals)}]"
    else:
        sd = float(np.std(observed, ddof=1)) if observed.size > 1 else float("nan")
        cell = f"{fmt_num(observed.mean(), decimals)} ({fmt_num(sd, decimals)})"
    missing = int(v.isna().sum())
    return cell + (f"; missing {missing}" if missing else "")


def table_one(
    baseline: pd.DataFrame,
    matched: pd.DataFrame,
    covariate_kinds: Mapping[str, str],
    balance: pd.DataFrame | None = None,
    *,
    nonnormal: Iterable[str] = (),
    matching_covariates: Sequence[str] = (),
    exact: Sequence[str] = (),
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

    Returns
    -------
    DataFrame
        Columns ``covariate, statistic, treated, pool, matched, smd_before, smd_after,
        used_in_matching`` (all strings); ``attrs`` holds ``n`` per column and
        ``smd_denominator``.

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
        if kind == "binary":
            stat = "n (%)"
            cells = {arm: _binary_cell(df[cov]) for arm, df in arms.items()}
        else:
            skewed = cov in nonnormal
            stat = "median [IQR]" if skewed else "mean (SD)"
            observed = pd.to_numeric(baseline[cov], errors="coerce").dropna()
            decimals = _decimals_for(float(observed.abs().median()) if len(observed) else float("nan"))
            cells = {arm: _continuous_cell(df[cov], decimals, skewed) for arm, df in arms.items()}
        before, after = smd.get(cov, (None, None))
        used = "exact" if cov in exact else ("distance" if cov in matching_covariates else "")
        rows.append(
            {
                "covariate": cov,
                "statistic": stat,
                **cells,
                "smd_before": fmt_num(before, 3) if _finite(before) else DASH,
                "smd_after": fmt_num(after, 3) if _finite(after) else DASH,
                "used_in_matching": used,
            }
        )
    out = pd.DataFrame(
        rows,
        columns=["covariate", "statistic", "treated", "pool", "matched", "smd_before", "smd_after", "used_in_matching"],
    )
    counts = matched_counts(matched)
    out.attrs["n"] = {
        "treated": int(len(arms["treated"])),
        "pool": int(len(arms["pool"])),
        "matched": counts["n_controls"],
        "matched_unique": counts["n_controls_unique"],
    }
    out.attrs["smd_denominator"] = (balance.attrs.get("smd_denominator") if balance is not None else None)
    return out


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
        ``<framing>_tests`` and ``<framing>_estimates``; then ``warnings`` (the published-style
        warnings of that row, deduplicated, in order). Multiple entries in a cell are separated
        by newlines. ``attrs["framings"]`` lists the framings in column order.
    """
    framings = _framings_present(results)
    rows = []
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
        for framing in framings:
            tests = [t for t in o.tests if t.framing == framing]
            ests = [e for e in o.estimates if e.framing == framing]
            row[f"{framing}_tests"] = "\n".join(fmt_test(t) for t in tests) or DASH
            row[f"{framing}_estimates"] = "\n".join(fmt_estimate(e) for e in ests) or DASH
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
    analysis dataset, pseudonymous ids by design) and the HTML listing, which appears only when
    ``report.listings`` is on.
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
