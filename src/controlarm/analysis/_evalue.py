"""Analysis room: E-values and the fragility index.

Both are closed formulas or short searches. The Python packages that offer them pull in heavy
dependencies or compute only part (no HR conversion, no reverse fragility), so they are written
here and checked against the worked examples of the papers that define them and against
brute-force search.
"""

from __future__ import annotations

import math

from scipy import stats

from ..errors import InputError

__all__ = ["compute_evalue", "compute_fragility", "REF_EVALUE", "REF_FRAGILITY"]

REF_EVALUE = (
    "VanderWeele TJ, Ding P. Sensitivity analysis in observational research: introducing the "
    "E-value. Ann Intern Med 2017;167:268-274. doi:10.7326/M16-2607"
)
REF_FRAGILITY = (
    "Walsh M, Srinathan SK, McAuley DF, et al. The statistical significance of randomized "
    "controlled trial results is frequently fragile: a case for a Fragility Index. J Clin "
    "Epidemiol 2014;67:622-628. doi:10.1016/j.jclinepi.2013.10.019; Khan MS, Fonarow GC, "
    "Friede T, et al. Application of the reverse fragility index to statistically nonsignificant "
    "randomized clinical trial results. JAMA Netw Open 2020;3:e2012469. "
    "doi:10.1001/jamanetworkopen.2020.12469"
)
MEASURES = ("RR", "OR", "HR")


def _to_rr(x: float, measure: str, rare: bool) -> float:
    if measure == "RR" or rare:
        return x
    if measure == "OR":
        return math.sqrt(x)
    return (1 - 0.5 ** math.sqrt(x)) / (1 - 0.5 ** math.sqrt(1 / x))  # HR, common outcome


def _e(rr: float) -> float:
    rr = 1 / rr if rr < 1 else rr
    return rr + math.sqrt(rr * (rr - 1))


def compute_evalue(estimate: float, ci_low: float | None = None, ci_high: float | None = None,
                   *, measure: str = "RR", rare: bool = True) -> dict[str, float | None]:
    """E-value of a ratio estimate and of the confidence limit closer to 1.

    Parameters
    ----------
    estimate, ci_low, ci_high : float
        The ratio and its confidence limits (> 0).
    measure : {"RR", "OR", "HR"}
        Risk ratio, odds ratio or hazard ratio.
    rare : bool
        Whether the outcome is rare (under about 15% by the end of follow-up). Then an OR or HR
        approximates the RR and is used as is; otherwise an OR becomes ``sqrt(OR)`` and an HR
        ``(1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))`` (VanderWeele & Ding 2017; VanderWeele
        2017, the rare-outcome rule).

    Returns
    -------
    dict
        ``rr, rr_low, rr_high`` (the RR scale used), ``evalue`` (``RR + sqrt(RR (RR - 1))``
        after inverting an RR below 1) and ``evalue_ci`` (of the limit closer to 1; 1 when the
        interval contains 1; None without an interval).

    References
    ----------
    VanderWeele TJ, Ding P. Ann Intern Med 2017;167:268-274. doi:10.7326/M16-2607

    Examples
    --------
    The paper's example, RR 3.9 (95% CI 1.8 to 8.7):

    >>> e = compute_evalue(3.9, 1.8, 8.7)
    >>> round(e["evalue"], 2), round(e["evalue_ci"], 2)
    (7.26, 3.0)
    """
    if measure not in MEASURES:
        raise InputError(f"measure must be one of {MEASURES}; got {measure!r}")
    for name, v in (("estimate", estimate), ("ci_low", ci_low), ("ci_high", ci_high)):
        if v is not None and not (v > 0 and math.isfinite(v)):
            raise InputError(f"{name} must be a positive finite ratio; got {v!r}")
    rr = _to_rr(estimate, measure, rare)
    lo = _to_rr(ci_low, measure, rare) if ci_low is not None else None
    hi = _to_rr(ci_high, measure, rare) if ci_high is not None else None
    out: dict[str, float | None] = {"rr": rr, "rr_low": lo, "rr_high": hi, "evalue": _e(rr),
                                    "evalue_ci": None}
    if lo is not None and hi is not None:
        if lo <= 1 <= hi:
            out["evalue_ci"] = 1.0
        else:
            out["evalue_ci"] = _e(lo if rr > 1 else hi)
    return out


def _fisher(a: int, n1: int, c: int, n0: int) -> float:
    return float(stats.fisher_exact([[a, n1 - a], [c, n0 - c]]).pvalue)


def compute_fragility(events_1: int, n_1: int, events_0: int, n_0: int, *,
                      alpha: float = 0.05) -> dict:
    """Fragility index (Walsh 2014), or reverse fragility index (Khan 2020), of a 2x2 result.

    With Fisher's exact two-sided p-value below ``alpha``, the fragility index is the number of
    patients in the group with fewer events whose outcome must change from non-event to event
    for p to reach ``alpha`` or more. With p at or above ``alpha``, the reverse fragility index
    is the number of changes that makes p fall below ``alpha``: non-events turned into events in
    the group with the higher risk, or events into non-events in the other group, whichever
    takes fewer changes.

    Returns
    -------
    dict
        ``p_value, significant, index`` (None when no number of changes suffices),
        ``kind`` ("fragility" or "reverse fragility"), ``group`` and ``direction`` of the
        changes, and ``p_after``.

    References
    ----------
    Walsh M, et al. J Clin Epidemiol 2014;67:622-628. doi:10.1016/j.jclinepi.2013.10.019
    Khan MS, et al. JAMA Netw Open 2020;3:e2012469. doi:10.1001/jamanetworkopen.2020.12469
    """
    if n_1 == 0 or n_0 == 0:
        return {"p_value": None, "significant": False, "alpha": alpha, "index": None,
                "kind": "not computed", "p_after": None, "test": "Fisher exact, two-sided",
                "note": "an arm has no patient with the outcome observed"}
    p0 = _fisher(events_1, n_1, events_0, n_0)
    out = {"p_value": p0, "significant": p0 < alpha, "alpha": alpha, "test": "Fisher exact, "
           "two-sided"}
    if p0 < alpha:
        g = 1 if events_1 <= events_0 else 0  # group with fewer events (ties: group 1)
        a, c = events_1, events_0
        k = 0
        while True:
            if (g == 1 and a >= n_1) or (g == 0 and c >= n_0):
                out.update(index=None, kind="fragility", p_after=None)
                return out
            a, c, k = (a + 1, c, k + 1) if g == 1 else (a, c + 1, k + 1)
            p = _fisher(a, n_1, c, n_0)
            if p >= alpha:
                out.update(index=k, kind="fragility", group=g, direction="non-event to event",
                           p_after=p)
                return out
    best = None
    more = 1 if events_1 / n_1 >= events_0 / n_0 else 0  # group with the higher risk
    for g, step in ((more, +1), (1 - more, -1)):
        a, c, k = events_1, events_0, 0
        while True:
            a, c, k = (a + step, c, k + 1) if g == 1 else (a, c + step, k + 1)
            if not (0 <= a <= n_1 and 0 <= c <= n_0):
                break
            p = _fisher(a, n_1, c, n_0)
            if p < alpha:
                if best is None or k < best[0]:
                    best = (k, g, "non-event to event" if step > 0 else "event to non-event", p)
                break
    if best is None:
        out.update(index=None, kind="reverse fragility", p_after=None)
    else:
        out.update(index=best[0], kind="reverse fragility", group=best[1], direction=best[2],
                   p_after=best[3])
    return out
