"""Reference tests of the binary-outcome methods (controlarm.analysis._binary, ._exact).

Truth comes from R 4.2.2 (tests/reference/expected/matched_tests.json, infert_clogit.json,
analysis_extra.json), from the seed study's published p-values, and from exact enumeration.
"""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from controlarm.analysis import (
    compute_clogit,
    compute_exact_conditional,
    compute_mcnemar,
    compute_mcnemar_exact,
    compute_mh_risk_difference,
    compute_mh_risk_ratio,
    conditional_logit,
    exact_conditional,
    mantel_haenszel,
    mcnemar_pairs,
    mcnemar_pseudo_pairs,
    mh_odds_ratio,
    mh_risk_difference,
    mh_risk_ratio,
)
from controlarm.errors import InputError

REF = Path(__file__).parent / "reference"
MATCHED = json.loads((REF / "expected" / "matched_tests.json").read_text())
TABLES = ["agresti_presidential", "small_10_5_1_8", "small_discordant_3_0", "balanced_7_7", "moderate_25_12"]


def pairs_frame(table_row_major) -> pd.DataFrame:
    """1:1 matched pairs from a 2x2 McNemar table [n11, n12, n21, n22] (rows treated, cols control)."""
    n11, n12, n21, n22 = table_row_major
    rows, s = [], 0
    for (yt, yc), count in zip([(1, 1), (1, 0), (0, 1), (0, 0)], [n11, n12, n21, n22]):
        for _ in range(count):
            rows += [dict(set_id=s, patient_id=f"t{s}", role="treated", y=yt),
                     dict(set_id=s, patient_id=f"c{s}", role="control", y=yc)]
            s += 1
    return pd.DataFrame(rows)


def seed_frame(n_deaths: int) -> pd.DataFrame:
    """8 sets of 1 treated + 3 controls; no treated death; one control death in each of the first
    ``n_deaths`` sets. ``alive`` is 1 for alive."""
    rows = []
    for s in range(8):
        rows.append(dict(set_id=s, patient_id=f"T{s}", role="treated", alive=1))
        for j in range(3):
            rows.append(dict(set_id=s, patient_id=f"C{s}{j}", role="control",
                             alive=0 if (j == 0 and s < n_deaths) else 1))
    return pd.DataFrame(rows)


def infert_frame() -> pd.DataFrame:
    """infert as matched sets: stratum = set, case = the 'treated' member, y = induced > 0."""
    d = pd.read_csv(REF / "data" / "infert.csv")
    return pd.DataFrame({"set_id": d["stratum"], "patient_id": [f"p{i}" for i in range(len(d))],
                         "role": np.where(d["case"] == 1, "treated", "control"),
                         "y": (d["induced"] > 0).astype(int)})


@pytest.mark.parametrize("name", TABLES)
def test_mcnemar_matches_r(name):
    """R: mcnemar.test(x, correct = FALSE), mcnemar.test(x), binom.test(b, b + c, 0.5)."""
    ref = MATCHED["mcnemar"][name]
    df = pairs_frame(ref["table_row_major"])
    unc = mcnemar_pairs(df, "y")
    assert unc.statistic == pytest.approx(ref["mcnemar_uncorrected"]["statistic"], rel=1e-12)
    assert unc.p_value == pytest.approx(ref["mcnemar_uncorrected"]["p"], rel=1e-9)
    cc = mcnemar_pseudo_pairs(df, "y", correction=True)  # 1:1 -> pseudo-pairs are the pairs
    assert cc.statistic == pytest.approx(ref["mcnemar_corrected"]["statistic"], rel=1e-12, abs=1e-14)
    assert cc.p_value == pytest.approx(ref["mcnemar_corrected"]["p"], rel=1e-9)
    ex = mcnemar_pseudo_pairs(df, "y", exact=True)
    assert ex.p_value == pytest.approx(ref["exact_binomial"]["p"], rel=1e-9)


@pytest.mark.parametrize("name", TABLES)
def test_exact_conditional_on_pairs_is_exact_mcnemar(name):
    """R: binom.test(b, b + c, 0.5)$p.value; for 1:1 pairs the exact conditional test is exact McNemar."""
    ref = MATCHED["mcnemar"][name]
    res = exact_conditional(pairs_frame(ref["table_row_major"]), "y")
    assert res.p_value == pytest.approx(ref["exact_binomial"]["p"], rel=1e-9)
    assert res.framing == "matched"


@pytest.mark.parametrize("name", TABLES)
def test_cmh_on_pairs_equals_mcnemar(name):
    """R: mcnemar.test(x, correct = FALSE/TRUE): CMH over 1:1 pairs equals McNemar, corrected or not."""
    ref = MATCHED["mcnemar"][name]
    df = pairs_frame(ref["table_row_major"])
    assert mantel_haenszel(df, "y").statistic == pytest.approx(
        ref["mcnemar_uncorrected"]["statistic"], rel=1e-10)
    cc = mantel_haenszel(df, "y", correction=True)
    assert cc.statistic == pytest.approx(ref["mcnemar_corrected"]["statistic"], rel=1e-10, abs=1e-14)
    assert cc.p_value == pytest.approx(ref["mcnemar_corrected"]["p"], rel=1e-9)


def test_cmh_and_mh_odds_ratio_infert_matched_sets():
    """R: mantelhaen.test(table(induced > 0, case, stratum), correct = FALSE/TRUE) on infert
    (83 matched sets, 1:2 and one 1:1)."""
    ref = MATCHED["infert_matched_sets"]
    df = infert_frame()
    unc, cc = mantel_haenszel(df, "y"), mantel_haenszel(df, "y", correction=True)
    assert unc.statistic == pytest.approx(ref["mantelhaen_uncorrected"]["statistic"], rel=1e-9)
    assert unc.p_value == pytest.approx(ref["mantelhaen_uncorrected"]["p_value"], rel=1e-9)
    assert unc.statistic == pytest.approx(ref["clogit_score"], rel=1e-9)
    assert cc.statistic == pytest.approx(ref["mantelhaen_correct"]["statistic"], rel=1e-9)
    assert cc.p_value == pytest.approx(ref["mantelhaen_correct"]["p_value"], rel=1e-9)
    orr = mh_odds_ratio(df, "y")
    assert orr.value == pytest.approx(ref["mantelhaen_uncorrected"]["estimate"]["common odds ratio"], rel=1e-9)
    assert [orr.ci_low, orr.ci_high] == pytest.approx(ref["mantelhaen_uncorrected"]["conf_int"], rel=1e-9)
    assert unc.n == 83


def test_exact_stratified_ucbadmissions():
    """R: mantelhaen.test(UCBAdmissions, exact = TRUE): S = 1198, p = 0.227762526798206."""
    ucb = pd.read_csv(REF / "data" / "ucbadmissions.csv")
    tables = []
    for _, g in ucb.groupby("Dept"):
        f = g.set_index(["Admit", "Gender"])["Freq"]
        tables.append([[f["Admitted", "Male"], f["Admitted", "Female"]],
                       [f["Rejected", "Male"], f["Rejected", "Female"]]])
    ref = MATCHED["ucb_mantelhaen"]["exact"]
    res = compute_exact_conditional(np.array(tables))
    assert res.statistic == ref["statistic"]
    assert res.p_two_sided == pytest.approx(ref["p_value"], rel=1e-9)


def test_exact_conditional_five_discordant_sets():
    """Exact enumeration: 5 sets with one control death each and the treated alive give a one-sided
    p of (3/4)^5 = 0.2373 (seed_study.md); two-sided by brute force over the 4^5 assignments."""
    res = exact_conditional(seed_frame(5), "alive")
    assert res.statistic == 8
    assert res.conventions["p_greater"] == pytest.approx(0.75**5, rel=1e-12)
    # brute force: in each discordant set the treated (alive) is any of 4 members, 3 of them alive
    probs: dict[int, float] = {}
    for combo in itertools.product(range(4), repeat=5):
        t = sum(1 for j in combo if j != 0)  # member 0 is the one who died
        probs[t] = probs.get(t, 0) + 4.0**-5
    p_two = sum(p for p in probs.values() if p <= probs[5] * (1 + 1e-7))
    assert res.p_value == pytest.approx(p_two, rel=1e-12)
    assert res.conventions["n_informative_sets"] == 5


@pytest.mark.parametrize("n_deaths, r_p", [(5, 0.0253473), (7, 0.00815097)])
def test_published_style_seed_study(n_deaths, r_p):
    """Seed study (Grégoire et al. 2022, doi:10.3389/fimmu.2022.932360): McNemar without
    continuity correction on 24 pseudo-pairs, b = control deaths, c = 0: chi2 = b, paper p = 0.025
    (day 28) and 0.0082 (day 60); R: mcnemar.test(matrix(c(19, 5, 0, 0), 2), correct = FALSE)."""
    res = mcnemar_pseudo_pairs(seed_frame(n_deaths), "alive")
    assert res.statistic == n_deaths
    assert res.p_value == pytest.approx(r_p, rel=1e-6)
    assert res.p_value == pytest.approx(stats.chi2.sf(n_deaths, 1), rel=1e-12)
    assert res.n == 24 and res.framing == "published-style"
    assert "not independent" in res.warning
    assert res.conventions["table"]["b_treated1_control0"] == n_deaths


def test_mh_odds_ratio_not_estimable_without_treated_deaths():
    """No treated death: the MH odds ratio of being alive is infinite; None with a reason, no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = mh_odds_ratio(seed_frame(5), "alive")
    assert est.value is None and est.ci_low is None
    assert "infinite" in est.conventions["not_estimable"]


def test_mcnemar_helpers_edge_cases():
    """McNemar with no discordant pair is undefined; b = c gives 0 with or without correction (R)."""
    assert compute_mcnemar(0, 0) == (None, None)
    assert compute_mcnemar(4, 4, correction=True) == (0.0, 1.0)
    with pytest.raises(InputError, match="1:1"):
        mcnemar_pairs(seed_frame(3), "alive")


def test_missing_outcomes_drop_patients_and_sets():
    """Missing handling: a treated NaN drops its set; a control NaN drops the patient only."""
    df = seed_frame(5)
    df.loc[(df.set_id == 0) & (df.role == "treated"), "alive"] = np.nan
    df.loc[(df.set_id == 1) & (df.patient_id == "C11"), "alive"] = np.nan
    before = df.copy()
    res = exact_conditional(df, "alive")
    pd.testing.assert_frame_equal(df, before)
    assert res.n == 7
    assert res.conventions["n_sets_dropped"] == 1
    assert res.conventions["n_missing_treated"] == 1 and res.conventions["n_missing_control"] == 1
    # set 1 now has 1 death among 3 members: P(treated alive) = 2/3; sets 2-4 give 3/4 each
    assert res.conventions["p_greater"] == pytest.approx((2 / 3) * 0.75**3, rel=1e-12)


# --------------------------------------------------------------------------- McNemar variants, MH RR/RD, clogit
EXTRA = json.loads((REF / "expected" / "analysis_extra.json").read_text())
CLOGIT = json.loads((REF / "expected" / "infert_clogit.json").read_text())


@pytest.mark.parametrize("name", TABLES)
def test_mcnemar_pairs_all_methods_match_r(name):
    """R: mcnemar.test(x, correct = TRUE), binom.test(b, b + c)$p.value, and the mid-p
    2 * (pbinom(min(b, c) - 1, b + c, 0.5) + dbinom(min(b, c), b + c, 0.5) / 2) (exact_midp)."""
    ref = MATCHED["mcnemar"][name]
    df = pairs_frame(ref["table_row_major"])
    cc = mcnemar_pairs(df, "y", method="corrected")
    assert cc.name == "mcnemar_cc" and cc.p_value == pytest.approx(ref["mcnemar_corrected"]["p"], rel=1e-9)
    ex = mcnemar_pairs(df, "y", method="exact")
    assert ex.name == "mcnemar_exact" and ex.p_value == pytest.approx(ref["exact_binomial"]["p"], rel=1e-9)
    mid = mcnemar_pairs(df, "y", method="mid-p")
    assert mid.name == "mcnemar_midp" and mid.p_value == pytest.approx(ref["exact_midp"], rel=1e-9)
    assert compute_mcnemar_exact(ref["b"], ref["c"])[1] == pytest.approx(ref["exact_midp"], rel=1e-9)
    with pytest.raises(InputError, match="method"):
        mcnemar_pairs(df, "y", method="bogus")


@pytest.mark.parametrize("name", TABLES)
def test_exact_conditional_mid_p_on_pairs(name):
    """For 1:1 pairs the exact conditional test's mid-p is McNemar's mid-p (R exact_midp)."""
    ref = MATCHED["mcnemar"][name]
    res = exact_conditional(pairs_frame(ref["table_row_major"]), "y")
    assert res.conventions["p_mid"] == pytest.approx(ref["exact_midp"], rel=1e-9)


def infert_tables() -> np.ndarray:
    d = infert_frame()
    from controlarm.analysis._binary import set_tables
    from controlarm.analysis._sets import prepare
    return set_tables(prepare(d, "y"))


def ucb_tables() -> np.ndarray:
    """UCBAdmissions with rows gender (male first), columns admitted first, one table per dept."""
    ucb = pd.read_csv(REF / "data" / "ucbadmissions.csv")
    out = []
    for _, g in ucb.groupby("Dept"):
        f = g.set_index(["Admit", "Gender"])["Freq"]
        out.append([[f["Admitted", "Male"], f["Rejected", "Male"]], [f["Admitted", "Female"], f["Rejected", "Female"]]])
    return np.array(out)


@pytest.mark.parametrize("data", ["mh_infert", "mh_ucb"])
def test_mh_risk_ratio_and_difference_match_epir(data):
    """R: epiR::epi.2by2(tables, method = "cohort.count")$massoc.detail: RR.mh.wald (Greenland-
    Robins), ARisk.mh.sato (Sato 1989) and ARisk.mh.green (Greenland-Robins 1985); infert as 83
    matched sets (case = 'treated', exposure induced > 0) and UCBAdmissions by department."""
    ref = EXTRA[data]
    tables = infert_tables() if data == "mh_infert" else ucb_tables()
    rr = compute_mh_risk_ratio(tables)
    assert [rr["estimate"], rr["ci_low"], rr["ci_high"]] == pytest.approx(
        [ref["RR_mh_wald"][k] for k in ("est", "lower", "upper")], rel=1e-9)
    for ci, key in (("sato", "RD_mh_sato"), ("greenland", "RD_mh_greenland")):
        rd = compute_mh_risk_difference(tables, ci=ci)
        assert [rd["estimate"], rd["ci_low"], rd["ci_high"]] == pytest.approx(
            [ref[key][k] for k in ("est", "lower", "upper")], rel=1e-9)


def test_mh_estimates_on_matched_sets():
    """The frame-level estimates wrap the same numbers (infert matched sets; epiR, as above), and
    the Greenland-Robins RD interval is labelled as not consistent for sparse strata."""
    ref = EXTRA["mh_infert"]
    df = infert_frame()
    rr, rd = mh_risk_ratio(df, "y"), mh_risk_difference(df, "y")
    assert rr.value == pytest.approx(ref["RR_mh_wald"]["est"], rel=1e-12)
    assert [rd.ci_low, rd.ci_high] == pytest.approx([ref["RD_mh_sato"]["lower"], ref["RD_mh_sato"]["upper"]], rel=1e-9)
    gr = mh_risk_difference(df, "y", ci="greenland")
    assert gr.name == "mh_risk_difference_greenland" and "not consistent" in gr.conventions["ci"]
    with pytest.raises(InputError, match="sato"):
        mh_risk_difference(df, "y", ci="wald")


def test_mh_risk_ratio_without_treated_deaths():
    """Seed study: every treated alive. The RR of being alive is finite (1 / (19/24) pooled over sets),
    the OR is not."""
    est = mh_risk_ratio(seed_frame(5), "alive")
    assert est.value == pytest.approx(1 / (19 / 24), rel=1e-12)
    assert est.ci_low < est.value < est.ci_high
    assert mh_risk_difference(seed_frame(5), "alive").value == pytest.approx(5 / 24, rel=1e-12)


@pytest.mark.parametrize("key", ["coef", "se", "z", "p", "or", "or_lower95", "or_upper95"])
def test_clogit_infert_coefficients(key):
    """R: clogit(case ~ spontaneous + induced + strata(stratum), data = infert) (method "exact"):
    coefficients, SEs, z, p and OR CI to 1e-6."""
    ref = CLOGIT["models"]["exact"]
    d = pd.read_csv(REF / "data" / "infert.csv")
    fit = compute_clogit(d["case"], d[["spontaneous", "induced"]], d["stratum"], names=["spontaneous", "induced"])
    ours = fit[{"or_lower95": "or_low", "or_upper95": "or_high"}.get(key, key)]
    assert ours == pytest.approx([ref[key]["spontaneous"], ref[key]["induced"]], rel=1e-6)


def test_clogit_infert_tests_and_likelihood():
    """R: the same clogit fit: log-likelihood at 0 and at the MLE, LR, Wald (unrounded
    fit$wald.test) and score tests on 2 df, and the covariance matrix, to 1e-6; and
    clogit(case ~ spontaneous + strata(stratum)) (spontaneous_only)."""
    ref = CLOGIT["models"]["exact"]
    d = pd.read_csv(REF / "data" / "infert.csv")
    fit = compute_clogit(d["case"], d[["spontaneous", "induced"]], d["stratum"])
    assert [fit["loglik_null"], fit["loglik"]] == pytest.approx(ref["loglik_null_and_fit"], rel=1e-9)
    for ours, r in ((fit["lr"], ref["lr_test"]), (fit["wald"], ref["wald_test"]), (fit["score"], ref["score_test"])):
        assert ours["statistic"] == pytest.approx(r["statistic"], rel=1e-6)
        assert ours["p"] == pytest.approx(r["p"], rel=1e-6)
    np.testing.assert_allclose(fit["vcov"], ref["vcov"], rtol=1e-6)
    so = CLOGIT["spontaneous_only"]
    one = compute_clogit(d["case"], d["spontaneous"], d["stratum"])
    assert one["coef"][0] == pytest.approx(so["coef"], rel=1e-6)
    assert one["se"][0] == pytest.approx(so["se"], rel=1e-6)
    for k in ("lr", "wald", "score"):
        assert one[k]["statistic"] == pytest.approx(so[k], rel=1e-6)
    assert one["lr"]["p"] == pytest.approx(so["p_lr"], rel=1e-6)


def test_conditional_logit_on_matched_sets():
    """R: clogit(case ~ induced_any + strata(stratum)) on infert (matched_tests.json): coefficient,
    SE; its score test equals the uncorrected CMH statistic 0.09."""
    ref = MATCHED["infert_matched_sets"]
    est = conditional_logit(infert_frame(), "y")
    assert np.log(est.value) == pytest.approx(ref["clogit_coef"], rel=1e-6)
    assert est.conventions["se"] == pytest.approx(ref["clogit_se"], rel=1e-6)
    assert est.conventions["score_test"]["statistic"] == pytest.approx(ref["clogit_score"], rel=1e-9)


def test_conditional_logit_separation_is_not_estimable():
    """No treated death: the conditional MLE is infinite; value None with the reason, no warning,
    and the score test (which needs no fit) is still reported."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = conditional_logit(seed_frame(5), "alive")
    assert est.value is None and "separation" in est.conventions["not_estimable"]
    assert est.conventions["score_test"]["statistic"] > 0
