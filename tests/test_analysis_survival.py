"""Reference tests of the time-to-event methods (controlarm.analysis._survival).

Truth: R 4.2.2 survival 3.5-3 on the NCCTG lung data (tests/reference/expected/
km_logrank_cox_lung.json and analysis_extra.json), closed forms for 1:1 pairs, exact enumeration,
and the seed study's published p-value.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from controlarm.analysis import (
    compute_cox,
    compute_cox_robust,
    compute_km,
    compute_logrank,
    compute_logrank_scores,
    compute_rmst,
    cox_robust_by_set,
    cox_stratified_by_set,
    km_curves,
    km_estimates,
    km_median,
    logrank_permutation_by_set,
    logrank_stratified_by_pseudo_pair,
    logrank_stratified_by_set,
    logrank_unstratified,
    rmst_difference,
)
from controlarm.outcomes._endpoints import Endpoint

REF = Path(__file__).parent / "reference"
KM = json.loads((REF / "expected" / "km_logrank_cox_lung.json").read_text())
TTE = Endpoint("death", "Death", "time_to_event", "time", "time to death", event_column="event")


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    d = pd.read_csv(REF / "data" / "lung.csv")
    d["event"] = (d["status"] == 2).astype(int)
    return d


def lung_as_arms(lung: pd.DataFrame) -> pd.DataFrame:
    """lung with sex = 1 as the 'treated' arm and sex = 2 as 'control' (set ids are irrelevant here)."""
    return pd.DataFrame({"set_id": np.arange(len(lung)), "patient_id": [f"p{i}" for i in range(len(lung))],
                         "role": np.where(lung["sex"] == 1, "treated", "control"),
                         "time": lung["time"], "event": lung["event"]})


def seed_frame(treated_death_sets=()) -> pd.DataFrame:
    """8 sets of 1 treated + 3 controls followed 90 days; control 0 of sets 0-6 dies at day 10 + set."""
    rows = []
    for s in range(8):
        dead = s in treated_death_sets
        rows.append(dict(set_id=s, patient_id=f"T{s}", role="treated", time=50.0 + s if dead else 90.0,
                         event=int(dead)))
        for j in range(3):
            dies = j == 0 and s < 7
            rows.append(dict(set_id=s, patient_id=f"C{s}{j}", role="control",
                             time=10.0 + s if dies else 90.0, event=int(dies)))
    return pd.DataFrame(rows)


def test_logrank_unstratified_lung_sex(lung):
    """R: survdiff(Surv(time, status) ~ sex, data = lung): chisq 10.3267419548856."""
    ref = KM["logrank"]["lung_sex"]
    res = compute_logrank(lung["time"], lung["event"], lung["sex"] == 1)
    assert res.chisq == pytest.approx(ref["chisq"], rel=1e-10)
    assert res.p_value == pytest.approx(ref["p"], rel=1e-9)
    assert res.observed == ref["observed"][0]
    assert res.expected == pytest.approx(ref["expected"][0], rel=1e-10)
    lr = logrank_unstratified(lung_as_arms(lung), "time", "event")  # lifelines
    assert lr.statistic == pytest.approx(ref["chisq"], rel=1e-9)
    assert lr.p_value == pytest.approx(ref["p"], rel=1e-8)
    assert lr.framing == "unmatched"


def test_logrank_stratified_lung_ecog(lung):
    """R: survdiff(Surv(time, status) ~ sex + strata(ph.ecog), data = lung): chisq 10.7950596334964."""
    ref = KM["logrank"]["lung_sex_strata_ecog"]
    d = lung.dropna(subset=["ph.ecog"])
    res = compute_logrank(d["time"], d["event"], d["sex"] == 1, d["ph.ecog"])
    assert res.chisq == pytest.approx(ref["chisq"], rel=1e-10)
    assert res.p_value == pytest.approx(ref["p"], rel=1e-9)
    assert res.observed == ref["observed"][0]
    assert res.expected == pytest.approx(ref["expected"][0], rel=1e-10)


def test_cox_stratified_lung_inst(lung):
    """R: coxph(Surv(time, status) ~ sex + strata(inst), data = lung) (Efron ties)."""
    ref = KM["cox"]["lung_sex_strata_inst"]
    d = lung.dropna(subset=["inst"])
    fit = compute_cox(d["time"], d["event"], d["sex"] == 2, d["inst"])  # sex coded 1/2: female = +1
    assert fit["coef"] == pytest.approx(ref["coef"]["sex"], rel=1e-6)
    assert fit["se"] == pytest.approx(ref["se"]["sex"], rel=1e-6)
    assert fit["hr"] == pytest.approx(ref["hr"]["sex"], rel=1e-6)
    assert fit["hr_low"] == pytest.approx(ref["hr_lower95"]["sex"], rel=1e-6)
    assert fit["hr_high"] == pytest.approx(ref["hr_upper95"]["sex"], rel=1e-6)
    assert fit["p"] == pytest.approx(ref["p"]["sex"], rel=1e-5)
    assert fit["loglik"] == pytest.approx(ref["loglik"][1], rel=1e-9)


def test_km_curves_match_survfit(lung):
    """R: survfit(Surv(time, status) ~ sex, data = lung): full step function (time, n.risk, n.event,
    n.censor, surv) and summary(fit, times = c(30, 90, 180, 365, 540, 730)) with conf.type = "log-log"."""
    curves = km_curves(lung_as_arms(lung), TTE)
    assert list(curves.columns) == ["arm", "time", "survival", "ci_low", "ci_high", "at_risk", "events",
                                    "censored"]
    full = pd.DataFrame(KM["km"]["lung_by_sex"]["full"])
    for arm, stratum in (("treated", "sex=1"), ("control", "sex=2")):
        ours = curves[(curves.arm == arm) & (curves.time > 0)].reset_index(drop=True)
        r = full[full.strata == stratum].reset_index(drop=True)
        np.testing.assert_array_equal(ours["time"], r["time"])
        np.testing.assert_array_equal(ours["at_risk"], r["n_risk"])
        np.testing.assert_array_equal(ours["events"], r["n_event"])
        np.testing.assert_array_equal(ours["censored"], r["n_censor"])
        np.testing.assert_allclose(ours["survival"], r["surv"], rtol=1e-10)
    for row in KM["km"]["lung_by_sex"]["at_times"]["log_log"]:
        arm = "treated" if row["strata"] == "sex=1" else "control"
        c = curves[(curves.arm == arm) & (curves.time <= row["time"])].iloc[-1]
        assert c["survival"] == pytest.approx(row["surv"], rel=1e-10)
        assert [c["ci_low"], c["ci_high"]] == pytest.approx([row["lower"], row["upper"]], rel=1e-6)


def test_km_median_matches_survfit(lung):
    """R: summary(survfit(Surv(time, status) ~ sex, data = lung, conf.type = "log-log"))$table:
    median 270 [210, 306] (sex 1), 426 [345, 524] (sex 2)."""
    est = {e.name: e for e in km_estimates(lung_as_arms(lung), TTE)}
    for arm, stratum in (("treated", "sex=1"), ("control", "sex=2")):
        ref = KM["km"]["lung_by_sex"]["median"]["log_log"][stratum]
        e = est[f"km_median_{arm}"]
        assert (e.value, e.ci_low, e.ci_high) == (ref["median"], ref["0.95LCL"], ref["0.95UCL"])


def test_pseudo_pair_logrank_equals_mcnemar_seed_study():
    """Seed study (seed_study.md): with no treated death the log-rank test stratified by pseudo-pair
    equals McNemar's uncorrected chi2 = 7, p = 0.00815097 (R: mcnemar.test(..., correct = FALSE))."""
    res = logrank_stratified_by_pseudo_pair(seed_frame(), "time", "event")
    assert res.statistic == pytest.approx(7.0, rel=1e-12)
    assert res.p_value == pytest.approx(0.00815097, rel=1e-6)
    assert res.framing == "published-style" and res.warning


def test_cox_not_estimable_without_treated_events():
    """No treated death: HR not estimable, value None with a reason, and no warning leaks."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        test, est = cox_stratified_by_set(seed_frame(), "time", "event")
    assert est.value is None and test.p_value is None
    assert "no event in the treated arm" in est.conventions["not_estimable"]
    strat = logrank_stratified_by_set(seed_frame(), "time", "event")
    # each of 7 sets: E_treated = 1/4, V = 3/16 at the single death (4 at risk)
    assert strat.statistic == pytest.approx((7 / 4) ** 2 / (7 * 3 / 16), rel=1e-12)


def pairs_first_death(n_treated_first: int, n_control_first: int) -> pd.DataFrame:
    rows = []
    for s in range(n_treated_first + n_control_first):
        t_first = s < n_treated_first
        rows += [dict(set_id=s, patient_id=f"T{s}", role="treated", time=10.0 + s if t_first else 100.0 + s,
                      event=1),
                 dict(set_id=s, patient_id=f"C{s}", role="control", time=100.0 + s if t_first else 10.0 + s,
                      event=1)]
    return pd.DataFrame(rows)


def test_stratified_cox_and_logrank_on_pairs_closed_form():
    """Closed form for 1:1 pairs in which both die: the pair-stratified Cox MLE is HR = a/b with
    SE(log HR) = sqrt(1/a + 1/b) (a pairs where the treated dies first, b the reverse), and the
    pair-stratified log-rank chi2 is (a - b)^2 / (a + b) (Holt & Prentice 1974, Biometrika 61:17-30)."""
    df = pairs_first_death(7, 3)
    test, est = cox_stratified_by_set(df, "time", "event")
    assert est.value == pytest.approx(7 / 3, rel=1e-6)
    assert est.conventions["se"] == pytest.approx(np.sqrt(1 / 7 + 1 / 3), rel=1e-5)
    z = np.log(7 / 3) / np.sqrt(1 / 7 + 1 / 3)
    assert test.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-5)
    assert logrank_stratified_by_set(df, "time", "event").statistic == pytest.approx(16 / 10, rel=1e-12)


# --------------------------------------------------------------------------- KM CIs, RMST, robust Cox, permutation
EXTRA = json.loads((REF / "expected" / "analysis_extra.json").read_text())
CONF = {"log": "log", "log-log": "log_log", "plain": "plain"}


@pytest.mark.parametrize("conf_type", list(CONF))
@pytest.mark.parametrize("group", ["lung_overall", "lung_by_sex"])
def test_km_three_intervals_match_survfit(lung, conf_type, group):
    """R: summary(survfit(Surv(time, status) ~ 1 | sex, data = lung, conf.type = "log" | "log-log" |
    "plain"), times = c(30, 90, 180, 365, 540, 730)): survival, std.err (of S), limits to 1e-10."""
    subsets = {"all": lung} if group == "lung_overall" else {"sex=1": lung[lung.sex == 1], "sex=2": lung[lung.sex == 2]}
    for row in KM["km"][group]["at_times"][CONF[conf_type]]:
        d = subsets[row["strata"]]
        km = compute_km(d["time"], d["event"], conf_type=conf_type)
        r = km[km["time"] <= row["time"]].iloc[-1]
        assert r["surv"] == pytest.approx(row["surv"], rel=1e-10)
        assert r["std_err"] * r["surv"] == pytest.approx(row["std_err_surv"], rel=1e-10)
        assert [r["lower"], r["upper"]] == pytest.approx([row["lower"], row["upper"]], rel=1e-10)


@pytest.mark.parametrize("conf_type", list(CONF))
def test_km_median_three_intervals_match_survfit(lung, conf_type):
    """R: summary(survfit(..., conf.type = ...))$table: median and its 0.95 LCL/UCL, overall and by
    sex, for all three interval types (the log and plain limits differ from log-log)."""
    for group, subsets in (("lung_overall", {"all": lung}),
                           ("lung_by_sex", {"sex=1": lung[lung.sex == 1], "sex=2": lung[lung.sex == 2]})):
        for stratum, d in subsets.items():
            ref = KM["km"][group]["median"][CONF[conf_type]][stratum]
            med = km_median(compute_km(d["time"], d["event"], conf_type=conf_type))
            assert (med["median"], med["ci_low"], med["ci_high"]) == (ref["median"], ref["0.95LCL"], ref["0.95UCL"])


def test_km_full_step_function_greenwood(lung):
    """R: survfit(Surv(time, status) ~ 1, data = lung): every step's n.risk, n.event, surv, std.err
    (of the cumulative hazard, Greenwood) and log-interval lower limit."""
    full = pd.DataFrame(KM["km"]["lung_overall"]["full"])
    km = compute_km(lung["time"], lung["event"], conf_type="log")
    np.testing.assert_array_equal(km["n_risk"], full["n_risk"])
    np.testing.assert_allclose(km["surv"], full["surv"], rtol=1e-12)
    np.testing.assert_allclose(km["std_err"], full["std_err_cumhaz"], rtol=1e-10)
    np.testing.assert_allclose(km["lower"], full["lower_log"], rtol=1e-10)


@pytest.mark.parametrize("tau", ["365", "730"])
def test_rmst_matches_survfit(lung, tau):
    """R: summary(survfit(Surv(time, status) ~ sex, data = lung), rmean = tau)$table[, c("rmean",
    "se(rmean)")], tau = 365 and 730; and the difference of arms with its z-interval."""
    ref = EXTRA["rmst_lung_sex"]["by_tau"][tau]
    for i, sex in enumerate((1, 2)):
        d = lung[lung.sex == sex]
        rmst, se = compute_rmst(d["time"], d["event"], float(tau))
        assert rmst == pytest.approx(ref["rmean"][i], rel=1e-10)
        assert se == pytest.approx(ref["se"][i], rel=1e-10)
    est = rmst_difference(lung_as_arms(lung), TTE, tau=float(tau))
    diff = ref["rmean"][0] - ref["rmean"][1]
    half = stats.norm.isf(0.025) * np.hypot(*ref["se"])
    assert [est.value, est.ci_low, est.ci_high] == pytest.approx([diff, diff - half, diff + half], rel=1e-10)
    assert est.framing == "unmatched"


def test_cox_robust_cluster_matches_coxph(lung):
    """R: coxph(Surv(time, status) ~ sex + cluster(inst), data = lung[!is.na(lung$inst), ]) (Efron):
    coefficient, model SE, robust SE, z, p and HR CI to 1e-6. lifelines' robust SE is 3e-4 off here."""
    ref = EXTRA["cox_cluster_inst"]
    d = lung.dropna(subset=["inst"])
    fit = compute_cox_robust(d["time"], d["event"], d["sex"].astype(float), d["inst"])
    for ours, key in (("coef", "coef"), ("se", "se"), ("robust_se", "robust_se"), ("z", "z"), ("p", "p"),
                      ("hr", "hr"), ("hr_low", "hr_lower95"), ("hr_high", "hr_upper95")):
        assert fit[ours] == pytest.approx(ref[key], rel=1e-6), ours


def test_cox_robust_by_set_on_pairs():
    """Matched pairs where both die: the one-baseline Cox fit with robust variance clustered on pair
    gives an HR between 1 and the pair-stratified a/b, and is not estimable without treated events."""
    est = cox_robust_by_set(pairs_first_death(7, 3), "time", "event")
    assert est.value > 1 and est.conventions["robust_se"] > 0 and est.ci_low < est.value < est.ci_high
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        none = cox_robust_by_set(seed_frame(), "time", "event")
    assert none.value is None and "no event in the treated arm" in none.conventions["not_estimable"]


def test_logrank_many_strata_matches_survdiff(lung):
    """R: survdiff(Surv(time, status) ~ sex + strata(inst), data = lung[!is.na(lung$inst), ]) (18
    strata): chisq 8.52446736332317; observed and expected summed over strata."""
    ref = EXTRA["logrank_strata_inst"]
    d = lung.dropna(subset=["inst"])
    res = compute_logrank(d["time"], d["event"], d["sex"] == 1, d["inst"])
    assert res.chisq == pytest.approx(ref["chisq"], rel=1e-10)
    assert res.p_value == pytest.approx(ref["p"], rel=1e-9)
    assert res.observed == sum(ref["observed"][0::2])
    assert res.expected == pytest.approx(sum(ref["expected"][0::2]), rel=1e-10)


def test_logrank_scores_sum_to_o_minus_e(lung):
    """Log-rank scores within strata sum to 0 in each stratum, and the scores of group 1 sum to the
    stratified O1 - E1 of compute_logrank (R survdiff, strata = ph.ecog)."""
    d = lung.dropna(subset=["ph.ecog"])
    s = compute_logrank_scores(d["time"], d["event"], d["ph.ecog"])
    assert pd.Series(s).groupby(d["ph.ecog"].to_numpy()).sum().abs().max() < 1e-9
    ref = KM["logrank"]["lung_sex_strata_ecog"]
    assert s[(d["sex"] == 1).to_numpy()].sum() == pytest.approx(ref["observed"][0] - ref["expected"][0], rel=1e-10)


def test_logrank_permutation_by_set_brute_force():
    """Exact enumeration: all 4^8 choices of the treated member per set, each relabelled frame
    scored by the stratified log-rank O - E (compute_logrank); p = P(|U| >= |u|)."""
    df = seed_frame(treated_death_sets=(2,))
    sets = [g.reset_index(drop=True) for _, g in df.groupby("set_id")]
    u_by_choice = []
    for s in sets:
        row = []
        for j in range(len(s)):
            grp = np.arange(len(s)) == j
            r = compute_logrank(s["time"], s["event"], grp)
            row.append(r.observed - r.expected)
        u_by_choice.append(np.array(row))
    total = np.array([0.0])
    for row in u_by_choice:
        total = (total[:, None] + row[None, :]).ravel()
    u_obs = sum(row[0] for row in u_by_choice)
    res = logrank_permutation_by_set(df, "time", "event")
    assert res.statistic == pytest.approx(u_obs, rel=1e-12)
    assert res.p_value == pytest.approx(np.mean(np.abs(total) >= abs(u_obs) - 1e-9), rel=1e-12)
    assert res.conventions["n_assignments"] == 4**8 and res.framing == "matched"


def test_logrank_permutation_monte_carlo_reports_error():
    """Above max_enumeration: seeded Monte Carlo, ApproximationWarning, Monte Carlo SE reported."""
    from controlarm.errors import ApproximationWarning

    with pytest.warns(ApproximationWarning):
        res = logrank_permutation_by_set(seed_frame(), "time", "event", max_enumeration=100, n_resamples=5000)
    se = res.conventions["monte_carlo_standard_error"]
    assert se == pytest.approx(np.sqrt(res.p_value * (1 - res.p_value) / 5000), rel=1e-12)
