"""Analysis room: Mantel-Haenszel effect estimates over matched sets (OR, RR and RD).

Each matched set is one 2x2 table (rows treated/control, columns y = 1 / y = 0). The odds ratio
and its Robins-Breslow-Greenland interval come from ``statsmodels`` ``StratifiedTable``, which
agrees with R's ``mantelhaen.test``. statsmodels has no Mantel-Haenszel risk ratio or risk
difference, so those are written here from the published formulas and checked against R's
``epiR::epi.2by2`` (``RR.mh.wald``, ``ARisk.mh.sato``, ``ARisk.mh.green``).

Matched sets are the sparse-data case: many strata of 2 to 11 patients. The Robins-Breslow-
Greenland variance of log OR, the Greenland-Robins variance of log RR and Sato's variance of the
RD are consistent there; the Greenland-Robins (1985) variance of the RD is not (with one treated
patient per set its treated-row term is always 0), so Sato's interval is the default for the RD.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError
from ._binary import set_tables
from ._results import Estimate
from ._sets import prepare

__all__ = ["compute_mh_risk_ratio", "compute_mh_risk_difference", "mh_odds_ratio",
           "mh_risk_ratio", "mh_risk_difference"]

REF_MH = (
    "Mantel N, Haenszel W. Statistical aspects of the analysis of data from retrospective studies "
    "of disease. J Natl Cancer Inst 1959;22:719-748. doi:10.1093/jnci/22.4.719"
)
REF_RBG = (
    "Robins J, Breslow N, Greenland S. Estimators of the Mantel-Haenszel variance consistent in "
    "both sparse data and large-strata limiting models. Biometrics 1986;42:311-323. "
    "doi:10.2307/2531052"
)
REF_GR = (
    "Greenland S, Robins JM. Estimation of a common effect parameter from sparse follow-up data. "
    "Biometrics 1985;41:55-68. doi:10.2307/2530643"
)
REF_SATO = (
    "Sato T. On the variance estimator for the Mantel-Haenszel risk difference. Biometrics "
    "1989;45:1323-1324"
)


def _cells(tables) -> tuple[np.ndarray, ...]:
    t = np.asarray(tables, dtype=float).reshape(-1, 2, 2)
    a, b, c, d = t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1]
    n1, n0 = a + b, c + d
    n = n1 + n0
    keep = (n1 > 0) & (n0 > 0)  # a table without one of the two rows carries no information
    return tuple(x[keep] for x in (a, b, c, d, n1, n0, n))


def compute_mh_risk_ratio(tables, *, alpha: float = 0.05) -> dict:
    """Mantel-Haenszel risk ratio (row 1 vs row 2, risk of column 1) with Greenland-Robins CI.

    ``RR = sum(a n0 / n) / sum(c n1 / n)``;
    ``Var(log RR) = sum((n1 n0 m1 - a c n) / n^2) / (sum(a n0 / n) sum(c n1 / n))`` with
    ``m1 = a + c``. Returns ``{"estimate", "ci_low", "ci_high", "se_log"}``, or
    ``{"not_estimable": reason}`` when either sum is 0.

    References
    ----------
    Greenland S, Robins JM. Biometrics 1985;41:55-68. doi:10.2307/2530643

    Examples
    --------
    >>> round(compute_mh_risk_ratio([[[3, 1], [1, 3]], [[2, 2], [1, 3]]])["estimate"], 4)
    2.5
    """
    a, b, c, d, n1, n0, n = _cells(tables)
    r, s = float((a * n0 / n).sum()), float((c * n1 / n).sum())
    if r == 0 or s == 0:
        return {"not_estimable": "sum(a*n0/n) = 0: no event among treated patients (RR = 0)"
                if r == 0 else "sum(c*n1/n) = 0: no event among controls (RR infinite)"}
    var = float(((n1 * n0 * (a + c) - a * c * n) / n**2).sum()) / (r * s)
    est = r / s
    z = float(stats.norm.isf(alpha / 2))
    se = math.sqrt(var) if var > 0 else 0.0
    return {"estimate": est, "ci_low": est * math.exp(-z * se), "ci_high": est * math.exp(z * se),
            "se_log": se}


def compute_mh_risk_difference(tables, *, alpha: float = 0.05, ci: str = "sato") -> dict:
    """Mantel-Haenszel risk difference (row 1 minus row 2, risk of column 1) with its CI.

    ``RD = sum((a n0 - c n1) / n) / sum(n1 n0 / n)``. With ``W = sum(n1 n0 / n)``:

    * ``ci="sato"``: ``Var = (RD sum(P) + sum(Q)) / W^2``, ``P = (n1^2 c - n0^2 a +
      n1 n0 (n0 - n1) / 2) / n^2``, ``Q = (a (n0 - c) + c (n1 - a)) / (2 n)`` (Sato 1989;
      consistent in sparse strata such as matched sets);
    * ``ci="greenland"``: ``Var = sum((a b n0^3 + c d n1^3) / (n1 n0 n^2)) / W^2`` (Greenland &
      Robins 1985; consistent only when strata are large).

    Returns ``{"estimate", "ci_low", "ci_high", "se"}``; the interval is None when the variance
    estimate is not positive (reason in ``"ci_note"``).

    References
    ----------
    Greenland S, Robins JM. Biometrics 1985;41:55-68. doi:10.2307/2530643
    Sato T. On the variance estimator for the Mantel-Haenszel risk difference. Biometrics
    1989;45:1323-1324.
    """
    if ci not in ("sato", "greenland"):
        raise InputError(f"ci must be 'sato' or 'greenland'; got {ci!r}")
    a, b, c, d, n1, n0, n = _cells(tables)
    w = float((n1 * n0 / n).sum())
    if w == 0:
        return {"not_estimable": "no table has both a treated and a control patient"}
    est = float(((a * n0 - c * n1) / n).sum()) / w
    if ci == "sato":
        p = (n1**2 * c - n0**2 * a + n1 * n0 * (n0 - n1) / 2) / n**2
        q = (a * (n0 - c) + c * (n1 - a)) / (2 * n)
        var = (est * float(p.sum()) + float(q.sum())) / w**2
    else:
        var = float(((a * b * n0**3 + c * d * n1**3) / (n1 * n0 * n**2)).sum()) / w**2
    out = {"estimate": est, "ci_low": None, "ci_high": None, "se": None}
    if var > 0:
        se = math.sqrt(var)
        z = float(stats.norm.isf(alpha / 2))
        out.update(ci_low=est - z * se, ci_high=est + z * se, se=se)
    else:
        out["ci_note"] = "the variance estimate is 0 (every table concordant within its rows)"
    return out


def _common_conventions(md) -> dict:
    return {"strata": "matched sets (one 2x2 table each: treated/control x y=1/y=0)",
            **md.conventions()}


def mh_odds_ratio(endpoints: pd.DataFrame, column: str, *, alpha: float = 0.05) -> Estimate:
    """Mantel-Haenszel common odds ratio over matched sets with the Robins-Breslow-Greenland CI.

    The odds ratio compares the odds of y = 1 in treated versus control patients. It is not
    estimable (value None, reason in ``conventions``) when ``sum(a d / n)`` or ``sum(b c / n)``
    is 0, for example when no treated patient has y = 0 (the estimate would be infinite).

    References
    ----------
    Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719-748. doi:10.1093/jnci/22.4.719
    Robins J, Breslow N, Greenland S. Biometrics 1986;42:311-323. doi:10.2307/2531052
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    md = prepare(endpoints, column)
    tables = set_tables(md).astype(float)
    n = tables.sum(axis=(1, 2))
    num = float((tables[:, 0, 0] * tables[:, 1, 1] / n).sum())
    den = float((tables[:, 0, 1] * tables[:, 1, 0] / n).sum())
    conv = {
        "odds_ratio": "odds of y = 1, treated vs control, pooled over matched sets",
        "ci": "Robins-Breslow-Greenland variance of log OR (as R mantelhaen.test)",
        "sum_ad_over_n": num,
        "sum_bc_over_n": den,
        **_common_conventions(md),
    }
    value = low = high = None
    if num == 0 or den == 0:
        which = "sum(a*d/n)" if num == 0 else "sum(b*c/n)"
        limit = "0" if num == 0 else "infinite"
        conv["not_estimable"] = (
            f"{which} = 0: no set has a treated patient with y = {1 if num == 0 else 0} together "
            f"with a control with y = {0 if num == 0 else 1}; the MH odds ratio would be {limit}"
        )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            st = StratifiedTable(tables.transpose(1, 2, 0))
            value = float(st.oddsratio_pooled)
            low, high = (float(x) for x in st.oddsratio_pooled_confint(alpha=alpha))
    return Estimate(
        name="mh_odds_ratio", value=value, ci_low=low, ci_high=high,
        method="Mantel-Haenszel odds ratio over matched sets", ci_level=1 - alpha,
        framing="matched", conventions=conv, reference=REF_MH + "; " + REF_RBG,
    )


def mh_risk_ratio(endpoints: pd.DataFrame, column: str, *, alpha: float = 0.05) -> Estimate:
    """Mantel-Haenszel risk ratio over matched sets (risk of y = 1, treated vs control).

    Greenland-Robins variance of log RR, consistent for matched sets. Value None with the reason
    in ``conventions`` when no treated patient or no control has y = 1.

    References
    ----------
    Greenland S, Robins JM. Biometrics 1985;41:55-68. doi:10.2307/2530643
    """
    md = prepare(endpoints, column)
    res = compute_mh_risk_ratio(set_tables(md), alpha=alpha)
    conv = {"risk_ratio": "risk of y = 1, treated vs control, pooled over matched sets",
            "ci": "Wald on log RR, Greenland-Robins variance (as epiR RR.mh.wald)",
            **_common_conventions(md)}
    if "not_estimable" in res:
        conv["not_estimable"] = res["not_estimable"]
    else:
        conv["se_log_rr"] = res["se_log"]
    return Estimate(
        name="mh_risk_ratio", value=res.get("estimate"), ci_low=res.get("ci_low"),
        ci_high=res.get("ci_high"), method="Mantel-Haenszel risk ratio over matched sets",
        ci_level=1 - alpha, framing="matched", conventions=conv, reference=REF_GR,
    )


def mh_risk_difference(endpoints: pd.DataFrame, column: str, *, alpha: float = 0.05,
                       ci: str = "sato") -> Estimate:
    """Mantel-Haenszel risk difference over matched sets (treated minus control, y = 1).

    Parameters
    ----------
    ci : {"sato", "greenland"}
        Sato's variance (default; consistent for matched sets) or Greenland-Robins' (large
        strata only; reported for comparison with software that uses it).

    References
    ----------
    Greenland S, Robins JM. Biometrics 1985;41:55-68. doi:10.2307/2530643
    Sato T. Biometrics 1989;45:1323-1324.
    """
    md = prepare(endpoints, column)
    res = compute_mh_risk_difference(set_tables(md), alpha=alpha, ci=ci)
    conv = {"risk_difference": "risk of y = 1, treated minus control, pooled over matched sets",
            "ci": "Wald, Sato (1989) variance" if ci == "sato" else
            "Wald, Greenland-Robins (1985) variance (not consistent for sparse strata)",
            **_common_conventions(md)}
    for key in ("not_estimable", "ci_note"):
        if key in res:
            conv[key] = res[key]
    if res.get("se") is not None:
        conv["se"] = res["se"]
    return Estimate(
        name="mh_risk_difference" + ("" if ci == "sato" else "_greenland"),
        value=res.get("estimate"), ci_low=res.get("ci_low"), ci_high=res.get("ci_high"),
        method="Mantel-Haenszel risk difference over matched sets", ci_level=1 - alpha,
        framing="matched", conventions=conv,
        reference=REF_GR + ("; " + REF_SATO if ci == "sato" else ""),
    )
