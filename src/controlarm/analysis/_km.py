"""Analysis room: Kaplan-Meier curves, median survival and restricted mean survival time.

Written here, not taken from lifelines, because lifelines offers only one interval (its
"exponential Greenwood", R's log-log) while DESIGN section 5 asks for the three R offers (log,
log-log, plain), and its median rule and its restricted mean's variance differ from R's
``survfit``. The code follows ``survival::survfit`` and is checked against it on the NCCTG lung
data: step function, Greenwood standard errors, the three intervals, median with CI, and RMST
with its standard error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError
from ._results import Estimate
from ._sets import arms

__all__ = ["compute_km", "km_median", "compute_rmst", "km_curves", "km_estimates",
           "rmst_difference", "CONF_TYPES"]

CONF_TYPES = ("log", "log-log", "plain")
#: Days at which Kaplan-Meier survival is reported when follow-up reaches them.
KM_DAYS = (28, 60, 90)
#: R's tolerance for "the curve equals 1/2 on a flat stretch" (sqrt(.Machine$double.eps)).
TOL = math.sqrt(np.finfo(float).eps)

REF_KM = (
    "Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat Assoc "
    "1958;53:457-481. doi:10.1080/01621459.1958.10501452"
)
REF_MEDIAN = (
    "Brookmeyer R, Crowley J. A confidence interval for the median survival time. Biometrics "
    "1982;38:29-41. doi:10.2307/2530286"
)
REF_RMST = (
    "Royston P, Parmar MKB. Restricted mean survival time: an alternative to the hazard ratio for "
    "the design and analysis of randomized trials with a time-to-event outcome. BMC Med Res "
    "Methodol 2013;13:152. doi:10.1186/1471-2288-13-152"
)


def _check_conf_type(conf_type: str) -> None:
    if conf_type not in CONF_TYPES:
        raise InputError(f"conf_type must be one of {CONF_TYPES}; got {conf_type!r}")


def compute_km(time, event, *, conf_type: str = "log-log", alpha: float = 0.05) -> pd.DataFrame:
    """Kaplan-Meier estimate with Greenwood standard errors and pointwise confidence limits.

    Parameters
    ----------
    time, event : array
        Follow-up time and event indicator (1 = event, 0 = censored).
    conf_type : {"log", "log-log", "plain"}
        R ``survfit``'s ``conf.type``: ``S exp(+-z se)`` (capped at 1), ``S^exp(+-z se / log S)``,
        or ``S (1 +- z se)`` (clipped to [0, 1]), where ``se`` is the Greenwood standard error
        of the cumulative hazard, ``sqrt(sum d / (n (n - d)))``.

    Returns
    -------
    DataFrame
        One row per distinct time: ``time, n_risk, n_event, n_censor, surv, std_err, lower,
        upper``. Limits are NaN where R gives NA (log-log at S = 0 or 1 is taken as 1 at S = 1).

    References
    ----------
    Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457-481. doi:10.1080/01621459.1958.10501452
    Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data, 2nd ed. Wiley;
    2002. Section 1.4.
    """
    _check_conf_type(conf_type)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float) > 0
    ut, inv = np.unique(time, return_inverse=True)
    n_event = np.bincount(inv, weights=event, minlength=ut.size)
    n_total = np.bincount(inv, minlength=ut.size).astype(float)
    n_risk = n_total[::-1].cumsum()[::-1]
    surv = np.cumprod(1 - n_event / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
        se = np.sqrt(np.cumsum(terms))
        z = stats.norm.isf(alpha / 2)
        if conf_type == "log":
            lower, upper = surv * np.exp(-z * se), np.minimum(1.0, surv * np.exp(z * se))
        elif conf_type == "plain":
            lower = np.maximum(0.0, surv - z * se * surv)
            upper = np.minimum(1.0, surv + z * se * surv)
        else:
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            shift = z * se / np.log(xx)
            lower = np.exp(-np.exp(np.log(-np.log(xx)) - shift))
            upper = np.exp(-np.exp(np.log(-np.log(xx)) + shift))
            lower, upper = np.where(surv == 1, 1.0, lower), np.where(surv == 1, 1.0, upper)
    bad = ~np.isfinite(se)
    lower, upper = np.where(bad, np.nan, lower), np.where(bad, np.nan, upper)
    return pd.DataFrame({"time": ut, "n_risk": n_risk.astype(int), "n_event": n_event.astype(int),
                         "n_censor": (n_total - n_event).astype(int), "surv": surv, "std_err": se,
                         "lower": lower, "upper": upper})


def _first_below_half(times: np.ndarray, curve: np.ndarray) -> float | None:
    """R's quantile rule at p = 0.5: the first time the curve is <= 1/2; when it sits at exactly
    1/2 (within TOL) over a stretch, the midpoint of that time and the next time it drops."""
    ok = np.isfinite(curve)
    times, curve = times[ok], curve[ok]
    below = np.flatnonzero(curve <= 0.5 + TOL)
    if below.size == 0:
        return None
    i = below[0]
    if abs(curve[i] - 0.5) < TOL:
        later = np.flatnonzero(curve[i:] < 0.5 - TOL)
        if later.size:
            return float((times[i] + times[i + later[0]]) / 2)
    return float(times[i])


def km_median(curve: pd.DataFrame) -> dict[str, float | None]:
    """Median survival with its CI from a ``compute_km`` table, by R ``survfit``'s rule.

    The median is the first time S(t) <= 1/2 (the midpoint of a flat stretch at exactly 1/2);
    the CI runs from where the lower limit crosses 1/2 to where the upper limit does (Brookmeyer
    & Crowley 1982). None where a curve never reaches 1/2 (not reached).

    References
    ----------
    Brookmeyer R, Crowley J. Biometrics 1982;38:29-41. doi:10.2307/2530286
    """
    t = curve["time"].to_numpy()
    return {"median": _first_below_half(t, curve["surv"].to_numpy()),
            "ci_low": _first_below_half(t, curve["lower"].to_numpy()),
            "ci_high": _first_below_half(t, curve["upper"].to_numpy())}


def compute_rmst(time, event, tau: float) -> tuple[float, float]:
    """Restricted mean survival time to ``tau`` and its standard error (R ``survfit``'s).

    ``RMST = integral_0^tau S(t) dt`` of the Kaplan-Meier step function;
    ``Var = sum_{t_j <= tau} A_j^2 d_j / (n_j (n_j - d_j))`` with ``A_j = integral_{t_j}^tau S``
    (R ``print(survfit(...), rmean = tau)``). Terms with ``n_j = d_j`` are 0, as in R.

    References
    ----------
    Royston P, Parmar MKB. BMC Med Res Methodol 2013;13:152. doi:10.1186/1471-2288-13-152
    Klein JP, Moeschberger ML. Survival Analysis, 2nd ed. Springer; 2003. Section 4.5.
    """
    km = compute_km(time, event)
    km = km[km["time"] <= tau]
    t = np.r_[0.0, km["time"].to_numpy(), tau]
    s = np.r_[1.0, km["surv"].to_numpy()]
    areas = np.diff(t) * s  # area of each step, from the start of the step to the next time
    rmst = float(areas.sum())
    ev = km["n_event"].to_numpy() > 0
    d, n = km["n_event"].to_numpy(float), km["n_risk"].to_numpy(float)
    tail = areas[::-1].cumsum()[::-1][1:]  # area from each row's time to tau
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(ev & (n > d), d / (n * (n - d)), 0.0)
    return rmst, float(math.sqrt((tail**2 * h).sum()))


def km_curves(endpoints: pd.DataFrame, endpoint, *, conf_type: str = "log-log",
              alpha: float = 0.05) -> pd.DataFrame:
    """Kaplan-Meier step functions per arm, for plots and tables.

    Parameters
    ----------
    endpoints : DataFrame
        The endpoint frame.
    endpoint : Endpoint
        A ``time_to_event`` endpoint (``column`` = time in days, ``event_column`` = 1 for event).
    conf_type : {"log", "log-log", "plain"}
        Pointwise interval (R ``survfit``'s ``conf.type``); log-log by default.

    Returns
    -------
    DataFrame
        ``arm, time, survival, ci_low, ci_high, at_risk, events, censored``: one row per distinct
        time (with a row at time 0) per arm. Each patient counts once per arm;
        ``attrs["ci"]`` names the interval.

    References
    ----------
    Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457-481. doi:10.1080/01621459.1958.10501452
    """
    a = arms(endpoints, endpoint.column, endpoint.event_column)
    frames = []
    for arm in ("treated", "control"):
        d = a[arm]
        if d.empty:
            continue
        km = compute_km(d["y"], d["event"], conf_type=conf_type, alpha=alpha)
        start = pd.DataFrame({"time": [0.0], "n_risk": [len(d)], "n_event": [0], "n_censor": [0],
                              "surv": [1.0], "lower": [1.0], "upper": [1.0]})
        km = pd.concat([start, km[km["time"] > 0]], ignore_index=True) if (km["time"] > 0).all() \
            else km
        frames.append(pd.DataFrame({
            "arm": arm, "time": km["time"].to_numpy(float), "survival": km["surv"].to_numpy(),
            "ci_low": km["lower"].to_numpy(), "ci_high": km["upper"].to_numpy(),
            "at_risk": km["n_risk"].to_numpy(int), "events": km["n_event"].to_numpy(int),
            "censored": km["n_censor"].to_numpy(int),
        }))
    cols = ["arm", "time", "survival", "ci_low", "ci_high", "at_risk", "events", "censored"]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    out.attrs["ci"] = (f"{100 * (1 - alpha):g}% pointwise, {conf_type} (Greenwood), "
                       "as R survfit conf.type")
    return out


def _finite(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def km_estimates(endpoints: pd.DataFrame, endpoint, *, alpha: float = 0.05,
                 conf_type: str = "log-log") -> list[Estimate]:
    """Kaplan-Meier median survival and survival at days ``KM_DAYS`` per arm, with CIs.

    Survival at day ``t`` is reported only when the arm's follow-up reaches ``t``. The median is
    None when not reached; its CI is where the confidence band crosses 1/2 (R ``survfit``).

    References
    ----------
    Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457-481. doi:10.1080/01621459.1958.10501452
    Brookmeyer R, Crowley J. Biometrics 1982;38:29-41. doi:10.2307/2530286
    """
    _check_conf_type(conf_type)
    a = arms(endpoints, endpoint.column, endpoint.event_column)
    out = []
    for arm in ("treated", "control"):
        d = a[arm]
        if d.empty:
            continue
        km = compute_km(d["y"], d["event"], conf_type=conf_type, alpha=alpha)
        med = km_median(km)
        conv = {"arm": arm, "n": len(d), "ci": f"{conf_type} (Greenwood), R survfit conf.type",
                "patients": "each patient once per arm"}
        out.append(Estimate(
            name=f"km_median_{arm}", value=med["median"], ci_low=med["ci_low"],
            ci_high=med["ci_high"], method="Kaplan-Meier median survival (days)",
            ci_level=1 - alpha, framing="unmatched",
            conventions=conv | ({} if med["median"] is not None else {"median": "not reached"}),
            reference=REF_KM + "; " + REF_MEDIAN,
        ))
        for day in KM_DAYS:
            if day > d["y"].max():
                continue
            row = km[km["time"] <= day]
            s, lo, hi = ((1.0, 1.0, 1.0) if row.empty else
                         (row["surv"].iloc[-1], row["lower"].iloc[-1], row["upper"].iloc[-1]))
            out.append(Estimate(
                name=f"km_survival_d{day}_{arm}", value=float(s), ci_low=_finite(lo),
                ci_high=_finite(hi), method=f"Kaplan-Meier survival at day {day}",
                ci_level=1 - alpha, framing="unmatched", conventions=conv, reference=REF_KM,
            ))
    return out


def rmst_difference(endpoints: pd.DataFrame, endpoint, *, tau: float | None = None,
                    alpha: float = 0.05) -> Estimate:
    """Difference in restricted mean survival time to day ``tau``, treated minus control.

    Each arm's RMST and standard error come from its Kaplan-Meier curve (``compute_rmst``); the
    CI is ``diff +- z sqrt(se_t^2 + se_c^2)``. The arms are treated as independent samples, each
    patient counted once: matched sets are not used, so the framing is ``"unmatched"``.
    ``tau`` defaults to the shorter of the two arms' longest follow-up (so both curves are
    defined up to it).

    References
    ----------
    Royston P, Parmar MKB. BMC Med Res Methodol 2013;13:152. doi:10.1186/1471-2288-13-152
    """
    a = arms(endpoints, endpoint.column, endpoint.event_column)
    t, c = a["treated"], a["control"]
    conv: dict = {"difference": "treated minus control, in days",
                  "variance": "Greenwood-type, as R survfit(rmean = tau); arms independent",
                  "patients": "each patient once per arm"}
    if t.empty or c.empty:
        conv["not_estimable"] = "an arm has no observed outcome"
        return Estimate(name="rmst_difference", value=None, ci_low=None, ci_high=None,
                        method="Difference in restricted mean survival time", ci_level=1 - alpha,
                        framing="unmatched", conventions=conv, reference=REF_RMST)
    if tau is None:
        tau = float(min(t["y"].max(), c["y"].max()))
        conv["tau_rule"] = "shorter of the two arms' longest follow-up"
    rt, st = compute_rmst(t["y"], t["event"], tau)
    rc, sc = compute_rmst(c["y"], c["event"], tau)
    diff, se = rt - rc, math.sqrt(st**2 + sc**2)
    z = float(stats.norm.isf(alpha / 2))
    conv.update(tau=tau, rmst_treated=rt, se_treated=st, rmst_control=rc, se_control=sc, se=se)
    return Estimate(
        name="rmst_difference", value=diff, ci_low=diff - z * se, ci_high=diff + z * se,
        method=f"Difference in restricted mean survival time to day {tau:g}", ci_level=1 - alpha,
        framing="unmatched", conventions=conv, reference=REF_RMST,
    )
