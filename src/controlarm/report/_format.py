"""Report room: number and text formatting shared by every table, figure and export.

Rounding is half away from zero on the shortest decimal representation (what a reader rounding the
printed number by hand expects); missing values print as ``NA``; p-values below 0.001 as
``<0.001``. Nothing here knows about HTML or DOCX.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..analysis._results import ArmSummary, Estimate, TestResult

__all__ = ["DASH", "fmt_num", "fmt_p", "fmt_estimate", "fmt_summary", "fmt_test", "fmt_conventions",
           "fmt_value"]

DASH = "—"


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


def fmt_value(value: Any) -> str:
    """Any JSON value for a table cell: floats at three significant digits (up to six decimals).

    >>> fmt_value(0.04123), fmt_value(3), fmt_value(None), fmt_value(True), fmt_value([1, 2.5])
    ('0.0412', '3', 'NA', 'yes', '1, 2.50')
    """
    if value is None:
        return "NA"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not _finite(value):
            return "NA"
        if 0 < abs(value) < 1e-4:
            return format(value, ".2e")
        return fmt_num(value, _decimals_for(value, sig=3, max_decimals=6))
    if isinstance(value, Mapping):
        return _fmt_convention(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value(v) for v in value)
    return str(value)
