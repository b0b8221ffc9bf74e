"""Report room: the CSV exports (``table1.csv``, ``outcomes.csv``, ``matched_sets.csv``).

CSVs are tidy (one row per statistic) and safe to open in a spreadsheet: a text cell that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with ``'`` so it cannot run
as a formula (CSV injection; OWASP). Plain numbers, such as ``-0.25``, are left as numbers: a
spreadsheet reads them as values, never as formulas. Floats carry 10 significant digits, missing
values are empty fields, lines end in ``\\n``; the bytes are deterministic.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ._tables import sort_matched

__all__ = ["fmt_float", "matched_sets_csv", "neutralise", "outcomes_csv", "table1_csv", "write_csv"]

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` made inert for spreadsheets: formula triggers at the start are prefixed with ``'``.

    >>> neutralise("=HYPERLINK(\\"x\\")"), neutralise("-0.25"), neutralise("@SUM(A1)"), neutralise("age")
    ('\\'=HYPERLINK("x")', '-0.25', "'@SUM(A1)", 'age')
    """
    if text.startswith(_TRIGGERS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def fmt_float(x: Any) -> str:
    """A float at 10 significant digits; empty when missing or not finite."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(f):
        return ""
    text = format(f, ".10g")
    return "0" if text in ("-0", "0") else text


def _field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return fmt_float(value)
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return neutralise(str(value))


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text with every field formatted and neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([neutralise(str(h)) for h in header])
    for row in rows:
        writer.writerow([_field(v) for v in row])
    return buf.getvalue()


def matched_sets_csv(matched: pd.DataFrame) -> str:
    """``matched_sets.csv`` text: set_id, role, patient_id, weight, distance; report order.

    Rows are sorted by set, treated first, then patient id; floats carry 10 significant digits so
    the bytes do not depend on the last bits of a computation; missing values are empty fields.
    """
    table = sort_matched(matched)
    rows = ([row.set_id, row.role, str(row.patient_id), fmt_float(row.weight), fmt_float(row.distance)]
            for row in table.itertuples(index=False))
    return write_csv(["set_id", "role", "patient_id", "weight", "distance"], rows)


_T1_STATS = ("n_observed", "n_missing", "count", "percent", "mean", "sd", "median", "q1", "q3", "suppressed")


def table1_csv(table1: Mapping[str, Any]) -> str:
    """``table1.csv``: one row per covariate and column (treated, pool, matched), numbers and display."""
    header = ["covariate", "kind", "statistic", "used_in_matching", "column", "n_column", "display", *_T1_STATS,
              "smd_before", "smd_after"]
    n = table1.get("n") or {}
    rows = []
    for r in table1.get("rows") or []:
        for arm in ("treated", "pool", "matched"):
            st = (r.get("stats") or {}).get(arm) or {}
            rows.append([r.get("covariate"), r.get("kind"), r.get("statistic"), r.get("used_in_matching"), arm,
                         n.get(arm), (r.get("cells") or {}).get(arm), *(st.get(k) for k in _T1_STATS),
                         r.get("smd_before"), r.get("smd_after")])
    return write_csv(header, rows)


_OUT_HEADER = ["outcome", "label", "kind", "row_type", "framing", "name", "method", "arm", "n", "n_missing",
               "events", "proportion", "median", "q1", "q3", "mean", "sd", "statistic", "df", "p_value",
               "alternative", "estimate", "ci_low", "ci_high", "ci_level", "warning"]


def outcomes_csv(results: Mapping[str, Any]) -> str:
    """``outcomes.csv``: per outcome, one row per arm summary, test and estimate (``row_type``)."""
    outcomes = results.get("outcomes") or {}
    order = (results.get("analysis") or {}).get("outcome_order") or list(outcomes)
    order = list(order) + [k for k in outcomes if k not in order]
    rows = []
    for name in order:
        o = outcomes[name]
        base = {"outcome": name, "label": o.get("label"), "kind": o.get("kind")}
        for arm in ("treated", "control"):
            s = (o.get("summaries") or {}).get(arm)
            if s:
                rows.append({**base, "row_type": "summary", "arm": arm, **{k: s.get(k) for k in (
                    "n", "n_missing", "events", "proportion", "median", "q1", "q3", "mean", "sd")}})
        for t in o.get("tests", []):
            rows.append({**base, "row_type": "test", **{k: t.get(k) for k in (
                "framing", "name", "method", "n", "statistic", "df", "p_value", "alternative", "warning")}})
        for e in o.get("estimates", []):
            rows.append({**base, "row_type": "estimate", "framing": e.get("framing"), "name": e.get("name"),
                         "method": e.get("method"), "estimate": e.get("value"), "ci_low": e.get("ci_low"),
                         "ci_high": e.get("ci_high"), "ci_level": e.get("ci_level")})
    return write_csv(_OUT_HEADER, ([r.get(k) for k in _OUT_HEADER] for r in rows))
