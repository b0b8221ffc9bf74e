"""Analysis room: the sensitivity analyses attached to each outcome (``SensitivityResult``).

This module only assembles: the computations live in ``_rosenbaum`` (Rosenbaum bounds,
amplification), ``_mstat`` (M-statistics for 1:k sets) and ``_evalue`` (E-values, fragility
index). Each analysis becomes a titled table with a one-sentence summary in words, the shape the
report renders for every kind of sensitivity analysis.

Every bound is one-sided in the direction of the observed effect (the direction is stated in
``conventions``): a sensitivity analysis asks how strong an unobserved confounder would have to be
to explain the observed difference away.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ._binary import set_tables
from ._evalue import REF_EVALUE, REF_FRAGILITY, compute_evalue, compute_fragility
from ._mstat import REF_MSTAT, compute_mscores, compute_mstat_bound
from ._results import Estimate, SensitivityResult
from ._rosenbaum import (
    REF_AMPLIFY,
    REF_RBOUNDS,
    REF_ROSENBAUM,
    REF_ROSENBAUM_HL,
    compute_amplification,
    compute_hl_bounds,
    compute_rosenbaum_binary,
    compute_rosenbaum_signed_rank,
    critical_gamma,
)
from ._sets import arms, prepare
from ._survival import compute_logrank_scores

__all__ = ["binary_sensitivity", "continuous_sensitivity", "time_to_event_sensitivity",
           "GAMMAS"]

GAMMAS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
LAMBDAS = (1.5, 2.0, 3.0, 5.0, 10.0)
#: E-values treat an outcome as rare below this risk among controls (VanderWeele & Ding 2017).
RARE = 0.15


def _gamma_summary(p1: float, gstar: float | None, alpha: float, what: str) -> str:
    if gstar is None:
        return (f"{what} is not significant even without unobserved confounding (Gamma = 1, "
                f"one-sided p = {p1:.3g} > {alpha:g}), so there is no conclusion for a confounder "
                "to explain away; the bounds are shown for completeness.")
    return (f"{what} stays significant at the {alpha:g} level (one-sided upper bound) up to "
            f"Gamma = {gstar:.3g}: an unobserved covariate would have to multiply the odds of "
            f"treatment by {gstar:.3g} within a matched set to explain the result away.")


def _amplification(gstar: float | None, alpha: float) -> SensitivityResult:
    gammas = [gstar] if gstar is not None else [1.5, 2.0, 3.0]
    rows = [(g, lam, delta) for g in gammas for lam, delta in compute_amplification(g, LAMBDAS)]
    if gstar is None:
        summary = ("The result is not significant at Gamma = 1; for scale, Gamma = 2 equals an "
                   "unobserved covariate that triples the odds of treatment and increases the "
                   "odds of a worse outcome fivefold (Lambda = 3, Delta = 5).")
    else:
        lam, delta = compute_amplification(gstar, [2 * gstar])[0]
        summary = (f"Gamma = {gstar:.3g} is the same as an unobserved covariate that multiplies "
                   f"the odds of treatment by {lam:.3g} and the odds of a worse outcome by "
                   f"{delta:.3g} (or any other pair in the table).")
    return SensitivityResult(
        name="amplification", label="Amplification of Gamma (Rosenbaum & Silber)",
        method="Gamma = (Lambda Delta + 1) / (Lambda + Delta)",
        columns=("Gamma", "Lambda (odds of treatment)", "Delta (odds of outcome)"),
        rows=tuple(rows), summary=summary,
        conventions={"gamma_shown": "the sensitivity value (largest Gamma still significant)"
                     if gstar is not None else "illustrative values (no sensitivity value)",
                     "alpha": alpha},
        reference=REF_AMPLIFY,
    )


def _evalue_result(estimates: list[Estimate], measures: dict[str, str], rare: bool,
                   risk: float | None) -> SensitivityResult:
    rows, skipped = [], []
    by_name = {e.name: e for e in estimates}
    for e in (by_name[n] for n in measures if n in by_name):  # in the order of ``measures``
        if e.value is None or e.ci_low is None or e.ci_high is None or e.ci_low <= 0:
            skipped.append(f"{e.name}: {e.conventions.get('not_estimable', 'no estimate or CI')}")
            continue
        ev = compute_evalue(e.value, e.ci_low, e.ci_high, measure=measures[e.name], rare=rare)
        rows.append((e.name, measures[e.name], e.value, e.ci_low, e.ci_high, ev["rr"],
                     ev["evalue"], ev["evalue_ci"]))
    if rows:
        first = rows[0]
        summary = (f"To explain away {first[0]} = {first[2]:.3g}, an unmeasured confounder would "
                   f"need a risk ratio of at least {first[6]:.3g} with both treatment and outcome; "
                   f"to move its confidence interval to include 1, at least {first[7]:.3g}.")
    else:
        summary = "No ratio estimate with a finite confidence interval, so no E-value."
    return SensitivityResult(
        name="evalue", label="E-values", method="E-value = RR + sqrt(RR (RR - 1)), RR >= 1",
        columns=("estimate", "measure", "value", "ci_low", "ci_high", "risk_ratio_scale",
                 "evalue", "evalue_ci"),
        rows=tuple(rows), summary=summary,
        conventions={"rare_outcome": rare, "control_risk": risk,
                     "rule": f"rare when the control risk is below {RARE:g}: OR and HR used as RR; "
                     "otherwise OR -> sqrt(OR), HR -> (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))",
                     "evalue_ci": "of the confidence limit closer to 1; 1 when the CI contains 1",
                     "not_computed": skipped},
        reference=REF_EVALUE,
    )


def binary_sensitivity(endpoints: pd.DataFrame, e, estimates: list[Estimate], *,
                       alpha: float = 0.05) -> list[SensitivityResult]:
    """Rosenbaum bounds (both tail conventions), amplification, E-values and fragility index."""
    md = prepare(endpoints, e.column)
    tab = set_tables(md)
    a, n = tab[:, 0, 0], tab.sum(axis=(1, 2))
    m = tab[:, 0, 0] + tab[:, 1, 0]
    inf = (m > 0) & (m < n)
    t, expected = int(a[inf].sum()), float((m[inf] / n[inf]).sum())
    flip = t < expected
    direction = ("treated patients have y = 0 more often than expected" if flip else
                 "treated patients have y = 1 more often than expected")
    if flip:
        m, a = n - m, 1 - a
        t = int(a[inf].sum())
    bounds = {g: compute_rosenbaum_binary(m[inf], n[inf], t, g) for g in GAMMAS}
    gstar = critical_gamma(lambda g: compute_rosenbaum_binary(m[inf], n[inf], t, g)["upper_ge"],
                           alpha)
    rows = tuple((g, b["upper_ge"], b["lower_ge"], b["upper_gt"], b["lower_gt"])
                 for g, b in bounds.items())
    rosen = SensitivityResult(
        name="rosenbaum_binary", label="Rosenbaum bounds, exact conditional test over matched sets",
        method="Exact bounds on the one-sided p-value of T = treated patients with the outcome "
               "(sum of independent Bernoullis with the extreme treatment probabilities)",
        columns=("Gamma", "p upper, P(T >= t) (Rosenbaum)", "p lower, P(T >= t) (Rosenbaum)",
                 "p upper, P(T > t) (rbounds)", "p lower, P(T > t) (rbounds)"),
        rows=rows, summary=_gamma_summary(bounds[1.0]["upper_ge"], gstar, alpha,
                                          "The exact conditional test"),
        conventions={"direction": direction, "statistic_t": t, "expected_t": expected,
                     "n_informative_sets": int(inf.sum()), "sensitivity_value": gstar,
                     "tail": "one-sided, in the direction of the observed effect",
                     "conventions": "P(T >= t) is Rosenbaum's p-value; rbounds::binarysens "
                     "reports P(T > t) (for pairs with t = max(b, c)); both are shown",
                     "alpha": alpha, **md.conventions()},
        reference=REF_ROSENBAUM + "; " + REF_RBOUNDS,
    )
    ctrl = arms(endpoints, e.column)["control"]["y"]
    risk = float(ctrl.mean()) if len(ctrl) else None
    ev = _evalue_result(estimates, {"mh_risk_ratio": "RR", "mh_odds_ratio": "OR",
                                    "clogit_odds_ratio": "OR"}, risk is not None and risk < RARE,
                        risk)
    return [rosen, _amplification(gstar, alpha), ev, _fragility(endpoints, e, alpha)]


def _fragility(endpoints: pd.DataFrame, e, alpha: float) -> SensitivityResult:
    a = arms(endpoints, e.column)
    bad = 0 if e.higher_is_better else 1  # the clinical "event" is the unwanted value
    y1, y0 = a["treated"]["y"].to_numpy(), a["control"]["y"].to_numpy()
    ev1, ev0 = int((y1 == bad).sum()), int((y0 == bad).sum())
    f = compute_fragility(ev1, y1.size, ev0, y0.size, alpha=alpha)
    who = {1: "treated", 0: "control"}.get(f.get("group"), "")
    event = f"{e.column} = {bad}"
    if f["p_value"] is None:
        summary = "Not computed: an arm has no patient with the outcome observed."
    elif f["index"] is None:
        summary = (f"No number of changed outcomes makes Fisher's p cross {alpha:g} "
                   f"(p = {f['p_value']:.3g}).")
    elif f["kind"] == "fragility":
        summary = (f"Fisher's p = {f['p_value']:.3g}: {f['index']} {who} patient(s) changing from "
                   f"no event to event ({event}) would make the result non-significant.")
    else:
        to = event if f["direction"] == "non-event to event" else f"{e.column} = {1 - bad}"
        summary = (f"Fisher's p = {f['p_value']:.3g} is not significant; {f['index']} {who} "
                   f"patient(s) changing to {to} would make it significant.")
    return SensitivityResult(
        name="fragility", label="Fragility index (Walsh) / reverse fragility index",
        method="Fisher's exact test on the two arms, outcomes changed one patient at a time",
        columns=("kind", "events treated", "n treated", "events control", "n control",
                 "p (Fisher)", "index", "group changed", "change", "p after"),
        rows=((f["kind"], ev1, y1.size, ev0, y0.size, f["p_value"], f["index"], who or None,
               f.get("direction"), f.get("p_after")),),
        summary=summary,
        conventions={"event": f"y = {bad} (the unwanted value of {e.name})",
                     "patients": "each patient once per arm; matched sets are not used, as in "
                     "Walsh et al.", "test": "Fisher exact, two-sided", "alpha": alpha},
        reference=REF_FRAGILITY,
    )


def _bound_rows(scores, gammas) -> tuple[tuple, ...]:
    out = []
    for g in gammas:
        b = compute_mstat_bound(scores, g)
        out.append((g, b["statistic"], b["expectation"], b["variance"], b["deviate"],
                    b["p_upper"]))
    return tuple(out)


def continuous_sensitivity(endpoints: pd.DataFrame, e, *, alpha: float = 0.05
                           ) -> list[SensitivityResult]:
    """M-statistic bounds (any 1:k sets), signed-rank and Hodges-Lehmann bounds (pairs)."""
    md = prepare(endpoints, e.column)
    f = md.frame
    y_all = f["y"].to_numpy(float)
    members = [y_all[idx] for idx in f.groupby("set_id", sort=True).indices.values()]
    out: list[SensitivityResult] = []
    if not members:
        return out
    d = np.array([y[0] - y[1:].mean() for y in members])
    sign = -1.0 if np.median(d) < 0 or (np.median(d) == 0 and d.sum() < 0) else 1.0
    direction = ("treated below their controls (the test looks for lower treated values)"
                 if sign < 0 else "treated above their controls")
    conv = {"direction": direction, "tail": "one-sided, in the direction of the observed effect",
            "alpha": alpha, **md.conventions()}
    try:
        scores = compute_mscores([sign * y for y in members])
    except InputError as exc:  # scale 0: most within-set differences are 0
        scores, reason = None, str(exc)
    gstar = None
    if scores is not None:
        p_up = lambda g: compute_mstat_bound(scores, g)["p_upper"]  # noqa: E731
        gstar = critical_gamma(p_up, alpha)
        out.append(SensitivityResult(
            name="rosenbaum_mstatistic", label="Rosenbaum bounds, M-statistic over matched sets",
            method="Huber M-statistic (psi trimmed at 2.5 x the median |within-set difference|), "
                   "separable approximation (sensitivitymv::senmv, method 'h')",
            columns=("Gamma", "statistic", "expectation (max)", "variance", "deviate",
                     "p upper (one-sided)"),
            rows=_bound_rows(scores, GAMMAS),
            summary=_gamma_summary(p_up(1.0), gstar, alpha, "The M-statistic test"),
            conventions={**conv, "sensitivity_value": gstar, "scores": "senmv method 'h': inner "
                         "0, trim 2.5, lambda 0.5", "approximation": "normal, separable "
                         "(Gastwirth, Krieger & Rosenbaum 2000)"},
            reference=REF_MSTAT,
        ))
    else:
        conv["m_statistic_not_computed"] = reason
    if all(y.size == 2 for y in members):
        dd = sign * d
        res = {g: compute_rosenbaum_signed_rank(dd, g) for g in GAMMAS}
        g_sr = critical_gamma(lambda g: compute_rosenbaum_signed_rank(dd, g)["p_upper"], alpha)
        gstar = g_sr  # for pairs the exact signed-rank bound is the reference
        out.append(SensitivityResult(
            name="rosenbaum_signed_rank",
            label="Rosenbaum bounds, Wilcoxon signed-rank test (pairs)",
            method="Bounds on the one-sided p-value of the signed-rank statistic: exact "
                   "(weighted Bernoulli sum) and normal approximation (rbounds::psens)",
            columns=("Gamma", "T", "p upper (exact)", "p lower (exact)", "p upper (normal)",
                     "p lower (normal)"),
            rows=tuple((g, r["T"], r["p_upper"], r["p_lower"], r["p_upper_normal"],
                        r["p_lower_normal"]) for g, r in res.items()),
            summary=_gamma_summary(res[1.0]["p_upper"], g_sr, alpha, "The signed-rank test"),
            conventions={**conv, "sensitivity_value": g_sr, "zeros": "dropped",
                         "ties": "average ranks", "normal": "no continuity correction (psens)"},
            reference=REF_ROSENBAUM + "; " + REF_RBOUNDS,
        ))
        hl = []
        for g in GAMMAS:
            b = compute_hl_bounds(dd, g)
            lo, hi = sorted((sign * b["low"], sign * b["high"]))
            hl.append((g, lo, hi))
        out.append(SensitivityResult(
            name="hodges_lehmann_bounds", label="Hodges-Lehmann estimate: range under Gamma",
            method="Solutions of T(theta) = p+ N and p- N (order statistics of Walsh averages)",
            columns=("Gamma", "estimate, minimum", "estimate, maximum"), rows=tuple(hl),
            summary=(f"At Gamma = 2 the treated-minus-control estimate could lie anywhere from "
                     f"{hl[4][1]:.3g} to {hl[4][2]:.3g} (at Gamma = 1 it is {hl[0][1]:.3g})."),
            conventions={**conv, "zeros": "kept", "difference": "treated minus control"},
            reference=REF_ROSENBAUM_HL,
        ))
    out.append(_amplification(gstar, alpha))
    return out


def time_to_event_sensitivity(endpoints: pd.DataFrame, e, estimates: list[Estimate], *,
                              alpha: float = 0.05) -> list[SensitivityResult]:
    """Rosenbaum bounds for the log-rank statistic over matched sets, amplification, E-values."""
    md = prepare(endpoints, e.column, e.event_column)
    f = md.frame
    scores = compute_logrank_scores(f["y"], f["event"], f["set_id"])
    sets = [scores[idx] for idx in f.groupby("set_id", sort=True).indices.values()]
    u = float(sum(s[0] for s in sets))
    sign = -1.0 if u < 0 else 1.0
    sets = [sign * s for s in sets]
    p_up = lambda g: compute_mstat_bound(sets, g)["p_upper"]  # noqa: E731
    gstar = critical_gamma(p_up, alpha) if sets else None
    direction = ("fewer treated events than expected" if sign < 0 else
                 "more treated events than expected")
    rosen = SensitivityResult(
        name="rosenbaum_logrank", label="Rosenbaum bounds, log-rank statistic over matched sets",
        method="Log-rank scores within sets, separable approximation to the upper bound",
        columns=("Gamma", "statistic", "expectation (max)", "variance", "deviate",
                 "p upper (one-sided)"),
        rows=_bound_rows(sets, GAMMAS) if sets else (),
        summary=_gamma_summary(p_up(1.0), gstar, alpha, "The log-rank test over matched sets")
        if sets else "No matched set with an outcome.",
        conventions={"direction": direction, "statistic": "sum of treated log-rank scores "
                     "(O - E), sign set so that larger means the observed direction",
                     "tail": "one-sided", "sensitivity_value": gstar, "alpha": alpha,
                     **md.conventions()},
        reference=REF_ROSENBAUM + "; " + REF_MSTAT,
    )
    ctrl = arms(endpoints, e.column, e.event_column)["control"]["event"]
    risk = float(ctrl.mean()) if len(ctrl) else None
    ev = _evalue_result(estimates, {"hr_cox_stratified_by_set": "HR",
                                    "hr_cox_robust_by_set": "HR"},
                        risk is not None and risk < RARE, risk)
    return [rosen, _amplification(gstar, alpha), ev]
