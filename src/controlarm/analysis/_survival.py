"""Analysis room: time-to-event outcomes in matched sets.

Kaplan-Meier per arm and the unstratified log-rank test come from lifelines. The log-rank test
stratified by matched set is written here because lifelines has none (``survdiff(... +
strata())`` in R): it sums observed minus expected events and the hypergeometric variances over
strata. The Cox model stratified by matched set uses lifelines ``CoxPHFitter(strata=...)``
(Efron ties, as R's ``coxph``), guarded so that an arm without events returns a non-estimable
hazard ratio instead of a diverging fit and a ``ConvergenceWarning``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._results import Estimate, TestResult
from ._sets import arms, prepare

__all__ = [
    "LogrankResult",
    "compute_logrank",
    "compute_cox",
    "km_curves",
    "km_estimates",
    "logrank_stratified_by_set",
    "logrank_unstratified",
    "logrank_stratified_by_pseudo_pair",
    "cox_stratified_by_set",
]

#: Newton-Raphson tolerances tighter than lifelines' defaults (precision 1e-7 leaves the
#: coefficient about 1e-6 from R's coxph); with these it agrees with R to about 1e-9.
FIT_OPTIONS = {"precision": 1e-12, "r_precision": 1e-14}

#: Days at which Kaplan-Meier survival is reported when follow-up reaches them.
KM_DAYS = (28, 60, 90)

REF_LOGRANK = (
    "Mantel N. Evaluation of survival data and two new rank order statistics arising in its "
    "consideration. Cancer Chemother Rep 1966;50:163-170; Peto R, Peto J. Asymptotically efficient "
    "rank invariant test procedures. J R Stat Soc A 1972;135:185-207. doi:10.2307/2344317"
)
REF_KM = (
    "Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat Assoc "
    "1958;53:457-481. doi:10.1080/01621459.1958.10501452"
)
REF_COX = (
    "Cox DR. Regression models and life-tables. J R Stat Soc B 1972;34:187-220. "
    "doi:10.1111/j.2517-6161.1972.tb00899.x; Efron B. The efficiency of Cox's likelihood function "
    "for censored data. J Am Stat Assoc 1977;72:557-565. doi:10.1080/01621459.1977.10480613"
)
UNMATCHED_WARNING = (
    "Unmatched analysis: the matched sets are ignored, so the comparison does not use the "
    "matching that made the arms comparable."
)
PSEUDO_PAIR_WARNING = (
    "Published-style analysis: each control forms a stratum with its set's treated patient, so "
    "every treated patient is counted k times. The strata are not independent and the p-value is "
    "too small. With no treated events it equals McNemar's uncorrected test on the pseudo-pairs "
    "(when the treated patient is followed up past the control's death)."
)


@dataclass(frozen=True)
class LogrankResult:
    """Log-rank test of group 1 versus group 0: observed and expected events in group 1."""

    observed: float
    expected: float
    variance: float
    chisq: float | None
    p_value: float | None


def compute_logrank(time, event, group, strata=None) -> LogrankResult:
    """(Stratified) log-rank test; R's ``survdiff(Surv(time, event) ~ group + strata(strata))``.

    At each distinct event time within a stratum, with ``n`` at risk (``n1`` in group 1) and ``d``
    events, ``E1 += d n1 / n`` and ``V += d (n1/n)(1 - n1/n)(n - d)/(n - 1)``. The statistic is
    ``(O1 - E1)^2 / V`` summed over strata, chi-squared on 1 df. Returns ``chisq = None`` when
    ``V = 0`` (no informative event).

    References
    ----------
    Mantel N. Cancer Chemother Rep 1966;50:163-170.
    Peto R, Peto J. J R Stat Soc A 1972;135:185-207. doi:10.2307/2344317
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float) > 0
    group = np.asarray(group, dtype=float) > 0
    strata = np.zeros(time.size) if strata is None else np.asarray(strata)
    obs = exp = var = 0.0
    for s in pd.unique(strata):
        m = strata == s
        t, e, g = time[m], event[m], group[m]
        ut, d = np.unique(t[e], return_counts=True)
        if ut.size == 0:
            continue
        ts, tg = np.sort(t), np.sort(t[g])
        n = ts.size - np.searchsorted(ts, ut, side="left")
        n1 = tg.size - np.searchsorted(tg, ut, side="left")
        frac = n1 / n
        obs += float((e & g).sum())
        exp += float((d * frac).sum())
        var += float((d * frac * (1 - frac) * (n - d) / np.maximum(n - 1, 1)).sum())
    if var <= 0:
        return LogrankResult(obs, exp, var, None, None)
    chisq = (obs - exp) ** 2 / var
    return LogrankResult(obs, exp, var, float(chisq), float(stats.chi2.sf(chisq, 1)))


def km_curves(endpoints: pd.DataFrame, endpoint) -> pd.DataFrame:
    """Kaplan-Meier step functions per arm, for plots and tables.

    Parameters
    ----------
    endpoints : DataFrame
        The endpoint frame.
    endpoint : Endpoint
        A ``time_to_event`` endpoint (``column`` = time in days, ``event_column`` = 1 for event).

    Returns
    -------
    DataFrame
        ``arm, time, survival, ci_low, ci_high, at_risk, events, censored``: one row per distinct
        time (with a row at time 0) per arm. Each patient counts once per arm. The 95% CI is
        lifelines' exponential Greenwood (log-log) interval, R's ``conf.type = "log-log"``;
        ``attrs["ci"]`` says so.

    References
    ----------
    Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457-481. doi:10.1080/01621459.1958.10501452
    """
    from lifelines import KaplanMeierFitter

    a = arms(endpoints, endpoint.column, endpoint.event_column)
    frames = []
    for arm in ("treated", "control"):
        d = a[arm]
        if d.empty:
            continue
        km = KaplanMeierFitter().fit(d["y"], d["event"])
        et = km.event_table
        ci = km.confidence_interval_
        frames.append(pd.DataFrame({
            "arm": arm,
            "time": et.index.to_numpy(dtype=float),
            "survival": km.survival_function_.iloc[:, 0].to_numpy(),
            "ci_low": ci.iloc[:, 0].to_numpy(),
            "ci_high": ci.iloc[:, 1].to_numpy(),
            "at_risk": et["at_risk"].to_numpy(dtype=int),
            "events": et["observed"].to_numpy(dtype=int),
            "censored": et["censored"].to_numpy(dtype=int),
        }))
    cols = ["arm", "time", "survival", "ci_low", "ci_high", "at_risk", "events", "censored"]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    out.attrs["ci"] = "95% pointwise, log-log (exponential Greenwood), lifelines default"
    return out


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def km_estimates(endpoints: pd.DataFrame, endpoint, *, alpha: float = 0.05) -> list[Estimate]:
    """Kaplan-Meier median survival and survival at days ``KM_DAYS`` per arm, with CIs.

    Survival at day ``t`` is reported only when the arm's follow-up reaches ``t``. The median is
    None when not reached; its CI is where the log-log confidence band crosses 0.5 (R's
    ``survfit(conf.type = "log-log")``).

    References
    ----------
    Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457-481. doi:10.1080/01621459.1958.10501452
    Brookmeyer R, Crowley J. A confidence interval for the median survival time. Biometrics
    1982;38:29-41. doi:10.2307/2530286
    """
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    a = arms(endpoints, endpoint.column, endpoint.event_column)
    out = []
    for arm in ("treated", "control"):
        d = a[arm]
        if d.empty:
            continue
        km = KaplanMeierFitter(alpha=alpha).fit(d["y"], d["event"])
        ci = km.confidence_interval_
        mci = median_survival_times(ci)
        conv = {"arm": arm, "n": len(d), "ci": "log-log (exponential Greenwood)",
                "patients": "each patient once per arm"}
        med = _finite(km.median_survival_time_)
        out.append(Estimate(
            name=f"km_median_{arm}", value=med, ci_low=_finite(mci.iloc[0, 0]),
            ci_high=_finite(mci.iloc[0, 1]), method="Kaplan-Meier median survival (days)",
            ci_level=1 - alpha, framing="unmatched",
            conventions=conv | ({} if med is not None else {"median": "not reached"}),
            reference=REF_KM,
        ))
        for day in KM_DAYS:
            if day > d["y"].max():
                continue
            row = ci.loc[:day].iloc[-1]
            out.append(Estimate(
                name=f"km_survival_d{day}_{arm}",
                value=float(km.survival_function_at_times(day).iloc[0]),
                ci_low=float(row.iloc[0]), ci_high=float(row.iloc[1]),
                method=f"Kaplan-Meier survival at day {day}", ci_level=1 - alpha,
                framing="unmatched", conventions=conv, reference=REF_KM,
            ))
    return out


def _logrank_result(name, method, res: LogrankResult, framing, n, conv, warning=None) -> TestResult:
    conv = {"observed_treated": res.observed, "expected_treated": res.expected,
            "variance": res.variance, **conv}
    if res.chisq is None:
        conv["undefined"] = "no informative event (variance 0)"
    return TestResult(
        name=name, method=method, statistic=res.chisq, p_value=res.p_value,
        alternative="two-sided", framing=framing, n=n, conventions=conv, df=1.0,
        warning=warning, reference=REF_LOGRANK,
    )


def logrank_stratified_by_set(
    endpoints: pd.DataFrame, time_column: str, event_column: str
) -> TestResult:
    """Log-rank test stratified by matched set (each set its own baseline hazard).

    References
    ----------
    Mantel N. Cancer Chemother Rep 1966;50:163-170.
    """
    md = prepare(endpoints, time_column, event_column)
    f = md.frame
    res = compute_logrank(f["y"], f["event"], f["role"].eq("treated"), f["set_id"])
    conv = {"strata": "matched sets", "ties": "hypergeometric variance (R survdiff)",
            **md.conventions()}
    return _logrank_result("logrank_stratified_by_set", "Log-rank test stratified by matched set",
                           res, "matched", md.n_sets, conv)


def logrank_unstratified(
    endpoints: pd.DataFrame, time_column: str, event_column: str
) -> TestResult:
    """Log-rank test of treated versus controls ignoring the sets (lifelines ``logrank_test``).

    Each patient counts once per arm. R: ``survdiff(Surv(time, event) ~ arm)``.

    References
    ----------
    Mantel N. Cancer Chemother Rep 1966;50:163-170.
    """
    from lifelines.statistics import logrank_test

    a = arms(endpoints, time_column, event_column)
    t, c = a["treated"], a["control"]
    lr = logrank_test(t["y"], c["y"], t["event"], c["event"])
    res = compute_logrank(np.r_[t["y"], c["y"]], np.r_[t["event"], c["event"]],
                          np.r_[np.ones(len(t)), np.zeros(len(c))])
    conv = {"strata": "none (matched structure ignored)", "patients": "each patient once per arm",
            "n_missing_treated": a["n_missing"]["treated"],
            "n_missing_control": a["n_missing"]["control"]}
    res = LogrankResult(res.observed, res.expected, res.variance,
                        _finite(lr.test_statistic), _finite(lr.p_value))
    return _logrank_result("logrank_unstratified", "Log-rank test, unstratified (lifelines)", res,
                           "unmatched", len(t) + len(c), conv, UNMATCHED_WARNING)


def logrank_stratified_by_pseudo_pair(
    endpoints: pd.DataFrame, time_column: str, event_column: str
) -> TestResult:
    """Published-style log-rank test with one stratum per pseudo-pair (treated reused k times).

    With no treated event, and each treated patient followed past its controls' deaths, the
    statistic equals McNemar's uncorrected chi-squared on the pseudo-pairs (seed_study.md).

    References
    ----------
    Mantel N. Cancer Chemother Rep 1966;50:163-170.
    """
    md = prepare(endpoints, time_column, event_column)
    p = md.pseudo_pairs()
    k = np.arange(len(p))
    res = compute_logrank(np.r_[p["y_treated"], p["y_control"]],
                          np.r_[p["event_treated"], p["event_control"]],
                          np.r_[np.ones(len(p)), np.zeros(len(p))], np.r_[k, k])
    conv = {"strata": "pseudo-pairs: each control with its set's treated patient",
            **md.conventions()}
    return _logrank_result("logrank_stratified_by_pseudo_pair",
                           "Log-rank test stratified by pseudo-pair", res, "published-style",
                           len(p), conv, PSEUDO_PAIR_WARNING)


def compute_cox(time, event, group, strata=None, *, alpha: float = 0.05) -> dict:
    """Cox model of ``group`` (optionally stratified), Efron ties, via lifelines.

    R's ``coxph(Surv(time, event) ~ group + strata(strata))``; Newton-Raphson run to tighter
    tolerances than lifelines' defaults (``FIT_OPTIONS``).

    Returns a dict ``coef, se, z, p, hr, hr_low, hr_high, loglik`` or, when the hazard ratio is
    not estimable (no event in one group, or the fit does not converge), ``{"not_estimable":
    reason}``. Warnings raised by the fit are caught locally and never leak.
    """
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError, ConvergenceWarning

    df = pd.DataFrame({"time": np.asarray(time, float), "event": np.asarray(event, float),
                       "group": (np.asarray(group, float) > 0).astype(float)})
    if strata is not None:
        df["stratum"] = np.asarray(strata)
    ev = df["event"] > 0
    n1, n0 = int((ev & (df["group"] == 1)).sum()), int((ev & (df["group"] == 0)).sum())
    if n1 == 0 or n0 == 0:
        arm = "treated" if n1 == 0 else "control"
        return {"not_estimable": f"no event in the {arm} arm: the partial likelihood has no finite "
                "maximum (the hazard ratio would be 0 or infinite)"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cph = CoxPHFitter(alpha=alpha).fit(
                df, "time", "event", strata=["stratum"] if strata is not None else None,
                fit_options=FIT_OPTIONS)
        except (ConvergenceError, np.linalg.LinAlgError) as exc:
            return {"not_estimable": f"the Cox fit failed: {exc}"}
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        return {"not_estimable": "the Cox fit did not converge (monotone likelihood): "
                + "; ".join(str(w.message).split("\n")[0] for w in caught)}
    s = cph.summary.loc["group"]
    return {"coef": float(s["coef"]), "se": float(s["se(coef)"]), "z": float(s["z"]),
            "p": float(s["p"]), "hr": float(s["exp(coef)"]),
            "hr_low": float(s[f"exp(coef) lower {100 * (1 - alpha):g}%"]),
            "hr_high": float(s[f"exp(coef) upper {100 * (1 - alpha):g}%"]),
            "loglik": float(cph.log_likelihood_)}


def cox_stratified_by_set(endpoints: pd.DataFrame, time_column: str, event_column: str, *,
                          alpha: float = 0.05) -> tuple[TestResult, Estimate]:
    """Cox model stratified by matched set: Wald test and hazard ratio (treated vs control).

    Returns
    -------
    test : TestResult
        Wald test of log HR = 0 (``statistic`` is z^2); p None when not estimable.
    estimate : Estimate
        Hazard ratio with Wald CI; value None with the reason in ``conventions`` when not
        estimable (for example no death among treated patients).

    References
    ----------
    Cox DR. J R Stat Soc B 1972;34:187-220. doi:10.1111/j.2517-6161.1972.tb00899.x
    """
    md = prepare(endpoints, time_column, event_column)
    f = md.frame
    fit = compute_cox(f["y"], f["event"], f["role"].eq("treated"), f["set_id"], alpha=alpha)
    conv = {"strata": "matched sets", "ties": "Efron", "ci": "Wald, on log HR",
            "hazard_ratio": "treated vs control", **md.conventions()}
    if "not_estimable" in fit:
        conv["not_estimable"] = fit["not_estimable"]
        conv["score_test"] = "see logrank_stratified_by_set (the score test of this model)"
        stat = p = hr = lo = hi = None
    else:
        conv.update(coef=fit["coef"], se=fit["se"], z=fit["z"], loglik=fit["loglik"])
        stat, p, hr, lo, hi = fit["z"] ** 2, fit["p"], fit["hr"], fit["hr_low"], fit["hr_high"]
    test = TestResult(
        name="cox_stratified_by_set", method="Cox model stratified by matched set, Wald test",
        statistic=stat, p_value=p, alternative="two-sided", framing="matched", n=md.n_sets,
        conventions=conv, df=1.0, reference=REF_COX,
    )
    est = Estimate(
        name="hr_cox_stratified_by_set", value=hr, ci_low=lo, ci_high=hi,
        method="Hazard ratio, Cox model stratified by matched set", ci_level=1 - alpha,
        framing="matched", conventions=conv, reference=REF_COX,
    )
    return test, est
