"""End-to-end tests of ``controlarm.analysis.analyse`` on a synthetic copy of the seed study.

8 matched sets of 1 treated + 3 controls (1:3), no treated death, 5 control deaths by day 28 and 7
by day 60 (Grégoire et al. 2022, doi:10.3389/fimmu.2022.932360; /work/shared/reference/
seed_study.md). The published p-values must come out of the published-style McNemar test; the
exact conditional test is checked by brute force over all 4^8 treated-member assignments.
"""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from controlarm.analysis import PRIMARY_TEST, Results, analyse, km_curves
from controlarm.errors import DataContractError, InputError
from controlarm.outcomes._endpoints import Endpoint

# control deaths: (set, control index, day); sets 0-4 by day 28, one more in set 5 and a second in set 0
DEATHS = [(0, 0, 12), (1, 0, 15), (2, 0, 20), (3, 0, 9), (4, 0, 25), (5, 0, 40), (0, 1, 52)]

ENDPOINTS = (
    Endpoint("alive_d28", "Alive at day 28", "binary", "alive_d28", "alive at day 28 after index"),
    Endpoint("alive_d60", "Alive at day 60", "binary", "alive_d60", "alive at day 60 after index"),
    Endpoint("need_imv", "Needed IMV", "binary", "need_imv", "IMV at any time in follow-up",
             higher_is_better=False),
    Endpoint("time_to_death", "Time to death", "time_to_event", "time_to_death", "days from index to death",
             event_column="death"),
    Endpoint("imv_free_days_28", "IMV-free days to day 28", "count", "imv_free_days_28",
             "days alive and free of IMV to day 28; death counts as 0"),
    Endpoint("d_dimer_d7", "D-dimer at day 7", "continuous", "d_dimer_d7", "D-dimer on day 7 +/- 1",
             unit="µg/L", higher_is_better=False),
)


def seed_frame() -> pd.DataFrame:
    dies = {(s, j): day for s, j, day in DEATHS}
    rows = []
    for s in range(8):
        rows.append(dict(set_id=s, patient_id=f"T{s}", role="treated", alive_d28=1, alive_d60=1,
                         need_imv=int(s in (1, 4, 6)), time_to_death=90.0, death=0,
                         imv_free_days_28=float(28 - 3 * (s in (1, 4, 6))), d_dimer_d7=800.0 + 60 * s))
        for j in range(3):
            day = dies.get((s, j))
            rows.append(dict(
                set_id=s, patient_id=f"C{s}{j}", role="control",
                alive_d28=int(day is None or day > 28), alive_d60=int(day is None or day > 60),
                need_imv=int(j == 0 or s % 3 == 0), time_to_death=float(day or 90), death=int(day is not None),
                imv_free_days_28=0.0 if (day or 99) <= 28 else float(20 - j - s % 4),
                d_dimer_d7=np.nan if (day or 99) <= 7 else 1500.0 + 700 * j + 90 * s,
            ))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return seed_frame()


@pytest.fixture(scope="module")
def results(frame) -> Results:
    return analyse(frame, ENDPOINTS)


@pytest.mark.parametrize("outcome, r_p, chi2", [("alive_d28", 0.0253473, 5.0), ("alive_d60", 0.00815097, 7.0)])
def test_seed_study_published_p_values(results, outcome, r_p, chi2):
    """Paper: p = 0.025 (day 28), 0.0082 (day 60); R: mcnemar.test(matrix(c(0, 0, b, 24 - b), 2),
    correct = FALSE)$p.value = 0.0253473 (b = 5) and 0.00815097 (b = 7)."""
    t = results[outcome].test("mcnemar_pseudo_pairs")
    assert t.statistic == chi2
    assert t.p_value == pytest.approx(r_p, rel=1e-6)
    assert round(t.p_value, 3 if outcome == "alive_d28" else 4) == {"alive_d28": 0.025, "alive_d60": 0.0082}[outcome]
    assert t.framing == "published-style" and "too small" in t.warning


@pytest.mark.parametrize("outcome", ["alive_d28", "alive_d60"])
def test_exact_conditional_by_brute_force(frame, results, outcome):
    """Exact enumeration: all 4^8 = 65536 choices of the treated member in each set are equally likely
    under no effect; T = number of treated alive. Two-sided p sums P(T = t) <= P(T = t_obs)."""
    y = np.array([frame[frame.set_id == s].sort_values("role", ascending=False)[outcome].to_numpy()
                  for s in range(8)])  # row s: [treated, controls...]
    combos = np.array(list(itertools.product(range(4), repeat=8)))
    t = y[np.arange(8), combos].sum(axis=1)
    pmf = np.bincount(t, minlength=9) / combos.shape[0]
    t_obs = int(y[:, 0].sum())
    res = results[outcome].test("exact_conditional")
    assert res.statistic == t_obs == 8
    assert res.p_value == pytest.approx(pmf[pmf <= pmf[t_obs] * (1 + 1e-7)].sum(), rel=1e-12)
    assert res.conventions["p_greater"] == pytest.approx(pmf[t_obs:].sum(), rel=1e-12)
    assert res.p_value > 0.05  # the matched analysis does not support the published claim


def test_day28_layout_gives_three_quarters_to_the_fifth(results):
    """seed_study.md: 5 deaths in 5 different sets give a one-sided exact conditional p of (3/4)^5."""
    assert results["alive_d28"].test("exact_conditional").conventions["p_greater"] == pytest.approx(0.75**5)


def test_results_shape_and_json(results):
    """Every outcome has both arm summaries, named tests with citations, and serialises to JSON."""
    assert results.ratio == "1:3" and results.n_sets == 8
    assert [o.outcome for o in results.outcomes] == [e.name for e in ENDPOINTS]
    expected = {
        "binary": {"exact_conditional", "mantel_haenszel", "mantel_haenszel_cc", "mcnemar_pseudo_pairs",
                   "mcnemar_pseudo_pairs_cc", "mcnemar_pseudo_pairs_exact"},
        "time_to_event": {"logrank_stratified_by_set", "logrank_permutation_by_set", "cox_stratified_by_set",
                          "logrank_unstratified", "logrank_stratified_by_pseudo_pair"},
        "count": {"signed_rank_set_differences", "permutation_within_sets", "aligned_rank", "van_elteren",
                  "wilcoxon_signed_rank_pseudo_pairs", "mann_whitney_unpaired"},
    }
    expected["continuous"] = expected["count"]
    for o in results.outcomes:
        assert {s.arm for s in o.summaries} == {"treated", "control"}
        assert {t.name for t in o.tests} == expected[o.kind]
        for t in o.tests:
            assert t.reference and t.method and t.conventions and t.n > 0
            assert (t.warning is not None) == (t.framing != "matched")
        assert o.estimates
    text = json.dumps(results.to_dict())
    assert "NaN" not in text and "Infinity" not in text
    alive = results["alive_d28"].summaries
    assert (alive[0].events, alive[1].events) == (8, 19)
    assert results["time_to_death"].summaries[1].events == 7


def test_published_style_off(frame):
    """published_style=False leaves only matched (and unmatched log-rank) analyses."""
    r = analyse(frame, ENDPOINTS, published_style=False)
    assert all(t.framing != "published-style" for o in r.outcomes for t in o.tests)


def test_not_estimable_effects_are_none_without_warnings(frame):
    """No treated death: MH odds ratio and Cox HR are None with reasons; no warning leaks from analyse."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = analyse(frame, ENDPOINTS)
    est = {e.name: e for e in r["alive_d28"].estimates} | {e.name: e for e in r["time_to_death"].estimates}
    assert est["mh_odds_ratio"].value is None and "not_estimable" in est["mh_odds_ratio"].conventions
    assert est["hr_cox_stratified_by_set"].value is None
    assert r["time_to_death"].test("cox_stratified_by_set").p_value is None


def test_input_not_mutated_and_deterministic(frame):
    """Contract: the input frame is unchanged and two runs give identical results."""
    before = frame.copy()
    a, b = analyse(frame, ENDPOINTS, seed=3), analyse(frame, ENDPOINTS, seed=3)
    pd.testing.assert_frame_equal(frame, before)
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


def test_missing_outcomes_counted():
    """Missing outcomes: a treated NaN drops the patient and the set (counted in ArmSummary.n_missing
    and conventions); NaN for every control of a set drops that set."""
    df = seed_frame()
    df.loc[df.patient_id == "T2", "d_dimer_d7"] = np.nan
    df.loc[df.set_id == 3, "imv_free_days_28"] = np.where(df.loc[df.set_id == 3, "role"] == "control",
                                                          np.nan, 28.0)
    r = analyse(df, ENDPOINTS)
    dd = r["d_dimer_d7"]
    assert dd.summaries[0].n_missing == 1 and dd.summaries[0].n == 7
    assert dd.test("signed_rank_set_differences").n == 7
    assert dd.test("signed_rank_set_differences").conventions["n_sets_dropped"] == 1
    fd = r["imv_free_days_28"]
    assert fd.summaries[1].n_missing == 3
    assert fd.test("permutation_within_sets").conventions["n_sets_dropped"] == 1


def test_variable_ratio_and_pairs():
    """Variable ratio is labelled "1:1-3"; 1:1 sets add McNemar's test for pairs."""
    df = seed_frame()
    df = df[~df.patient_id.isin(["C01", "C02", "C11"])]
    r = analyse(df, ENDPOINTS[:1])
    assert r.ratio == "1:1-3"
    pairs = df[df.patient_id.str.endswith("0") | df.role.eq("treated")]
    rp = analyse(pairs, ENDPOINTS[:1])
    assert rp.ratio == "1:1"
    assert rp["alive_d28"].test("mcnemar").statistic == 5.0


def test_km_curves_columns(frame):
    """km_curves returns one step function per arm with the documented columns."""
    curves = km_curves(frame, ENDPOINTS[3])
    assert list(curves.columns) == ["arm", "time", "survival", "ci_low", "ci_high", "at_risk", "events",
                                    "censored"]
    ctrl = curves[curves.arm == "control"]
    assert ctrl["events"].sum() == 7 and ctrl["survival"].iloc[-1] == pytest.approx(17 / 24)
    assert (curves[curves.arm == "treated"]["survival"] == 1).all()


def test_bad_input_raises_clear_errors(frame):
    """Validation at the door: contract breaches raise DataContractError, bad arguments InputError."""
    two_treated = frame.copy()
    two_treated.loc[two_treated.patient_id == "C00", "role"] = "treated"
    with pytest.raises(DataContractError, match="exactly 1 treated"):
        analyse(two_treated, ENDPOINTS)
    with pytest.raises(DataContractError, match="missing columns"):
        analyse(frame.drop(columns="death"), ENDPOINTS)
    bad = frame.copy()
    bad.loc[0, "alive_d28"] = 2
    with pytest.raises(DataContractError, match="0/1"):
        analyse(bad, ENDPOINTS)
    with pytest.raises(InputError, match="alpha"):
        analyse(frame, ENDPOINTS, alpha=1.5)


# --------------------------------------------------------------------------- options, sensitivity, comparison
def test_every_outcome_has_an_effect_estimate_with_ci(results):
    """DESIGN section 5: binary MH OR/RR/RD, survival HR or RMST difference, continuous HL; at least
    one estimate per outcome has a finite CI on the seed study (where the OR and HR are infinite)."""
    finite = {"binary": {"mh_risk_ratio", "mh_risk_difference"}, "time_to_event": {"rmst_difference"},
              "continuous": {"hodges_lehmann_set_difference"}, "count": {"hodges_lehmann_set_difference"}}
    for o in results.outcomes:
        for name in finite[o.kind]:
            e = o.estimate(name)
            assert e.ci_low is not None and e.ci_low <= e.value <= e.ci_high, (o.outcome, name)
    assert {e.name for e in results["alive_d28"].estimates} >= {
        "mh_odds_ratio", "mh_risk_ratio", "mh_risk_difference", "clogit_odds_ratio"}
    assert {e.name for e in results["time_to_death"].estimates} >= {
        "hr_cox_stratified_by_set", "hr_cox_robust_by_set", "rmst_difference"}


def test_sensitivity_attached_to_every_outcome(results):
    """Each outcome carries its sensitivity analyses in the shape the report renders."""
    expected = {"binary": {"rosenbaum_binary", "amplification", "evalue", "fragility"},
                "time_to_event": {"rosenbaum_logrank", "amplification", "evalue"},
                "count": {"rosenbaum_mstatistic", "amplification"},
                "continuous": {"rosenbaum_mstatistic", "amplification"}}
    for o in results.outcomes:
        assert {s.name for s in o.sensitivity} == expected[o.kind], o.outcome
        for s in o.to_dict()["sensitivity"]:
            assert list(s) == ["name", "label", "method", "columns", "rows", "summary", "conventions",
                               "reference"]
            assert s["summary"].endswith(".") and s["reference"]
            assert all(len(r) == len(s["columns"]) for r in s["rows"])
    rb = results["alive_d28"].sensitivity_analysis("rosenbaum_binary")
    assert rb.rows[0][1] == pytest.approx(0.75**5)  # Gamma = 1: the exact conditional one-sided p
    assert "P(T > t)" in " ".join(rb.columns) and "P(T >= t)" in " ".join(rb.columns)
    assert "not significant" in rb.summary
    off = analyse(seed_frame(), ENDPOINTS[:1], sensitivity=False)
    assert off["alive_d28"].sensitivity == ()


def test_multiplicity_holm_and_bh(frame):
    """Holm and Benjamini-Hochberg over the primary test of each outcome, checked by hand."""
    plain = analyse(frame, ENDPOINTS)
    ps = np.array([o.test(PRIMARY_TEST[o.kind]).p_value for o in plain.outcomes])
    m = ps.size
    order = np.argsort(ps)
    holm = np.empty(m)
    holm[order] = np.minimum(1, np.maximum.accumulate((m - np.arange(m)) * ps[order]))
    bh = np.empty(m)
    bh[order[::-1]] = np.minimum.accumulate((m / np.arange(m, 0, -1)) * ps[order[::-1]])
    for method, expected in (("holm", holm), ("bh", np.minimum(bh, 1))):
        r = analyse(frame, ENDPOINTS, multiplicity=method)
        got = [o.test(PRIMARY_TEST[o.kind]).p_adjusted for o in r.outcomes]
        assert got == pytest.approx(expected.tolist(), rel=1e-12)
        assert r.multiplicity["method"].lower().startswith("holm" if method == "holm" else "benjamini")
        assert len(r.multiplicity["family"]) == m
        assert all(t.p_adjusted is None for o in r.outcomes for t in o.tests if t.name != PRIMARY_TEST[o.kind])
    assert plain.multiplicity == {} and all(t.p_adjusted is None for o in plain.outcomes for t in o.tests)
    with pytest.raises(InputError, match="multiplicity"):
        analyse(frame, ENDPOINTS, multiplicity="bonferroni")


def test_style_option(frame):
    """style="pseudo-pair" keeps only the pseudo-pair re-analyses, "unpaired" only the unpaired ones;
    a style with published_style=False contradicts itself and raises."""
    pp = analyse(frame, ENDPOINTS, style="pseudo-pair")
    names = {t.name for o in pp.outcomes for t in o.tests if t.framing != "matched"}
    assert names == {"mcnemar_pseudo_pairs", "mcnemar_pseudo_pairs_cc", "mcnemar_pseudo_pairs_exact",
                     "logrank_stratified_by_pseudo_pair", "wilcoxon_signed_rank_pseudo_pairs"}
    up = analyse(frame, ENDPOINTS, style="unpaired")
    assert {t.name for o in up.outcomes for t in o.tests if t.framing != "matched"} == {
        "logrank_unstratified", "mann_whitney_unpaired"}
    with pytest.raises(InputError, match="published_style=False"):
        analyse(frame, ENDPOINTS, style="pseudo-pair", published_style=False)
    with pytest.raises(InputError, match="style"):
        analyse(frame, ENDPOINTS, style="paired")


def test_style_comparison_table(results):
    """One table sets the primary matched p beside the published-style p with the reason; on the
    seed study the published McNemar p-values are 0.025 and 0.0082, the matched ones far larger."""
    table = results.style_comparison()
    assert list(table.columns) == ["outcome", "label", "primary_test", "primary_p", "published_test",
                                   "published_p", "ratio_published_to_primary", "reason"]
    row = table.set_index("outcome").loc["alive_d28"]
    assert row["published_p"] == pytest.approx(0.0253473, rel=1e-6) and row["primary_p"] > 0.06
    assert "not independent" in row["reason"] and "variance" in row["reason"]
    assert results.to_dict()["style_comparison"][0]["outcome"] == "alive_d28"
    assert analyse(seed_frame(), ENDPOINTS, published_style=False).style_comparison().empty


def test_published_style_warnings_say_why(results):
    """Every published-style warning names the reuse of the treated patient, the lost independence,
    the understated variance and the direction of the bias."""
    for o in results.outcomes:
        for t in o.tests:
            if t.framing == "published-style":
                w = t.warning
                assert "reused" in w or "counted k times" in w, t.name
                assert "not independent" in w and "understate" in w and "too small" in w, t.name


def test_pairs_design_reports_all_mcnemar_variants():
    """1:1 sets report McNemar asymptotic, corrected, exact and mid-p beside the exact conditional
    test, and the signed-rank and Hodges-Lehmann sensitivity analyses for pairs."""
    df = seed_frame()
    pairs = df[df.patient_id.str.endswith("0") | df.role.eq("treated")]
    r = analyse(pairs, ENDPOINTS)
    assert {"mcnemar", "mcnemar_cc", "mcnemar_exact", "mcnemar_midp"} <= {t.name for t in r["alive_d28"].tests}
    assert {"rosenbaum_signed_rank", "hodges_lehmann_bounds"} <= {s.name for s in r["d_dimer_d7"].sensitivity}


def test_analysis_doctests():
    """The numpydoc examples of the analysis modules run."""
    import doctest
    import importlib

    for name in ("_binary", "_exact", "_evalue", "_rosenbaum", "_mh"):
        mod = importlib.import_module(f"controlarm.analysis.{name}")
        assert doctest.testmod(mod).failed == 0, name


@pytest.mark.parametrize("fill", [np.nan, 0.0])
def test_degenerate_outcomes_do_not_crash(fill):
    """Every outcome missing (no complete set) or constant (no information), with a variable ratio:
    analyse returns undefined tests (p None or 1) and not-estimable estimates, with no exception,
    no warning and JSON-safe output."""
    df = seed_frame()
    df = df[~df.patient_id.isin(["C01", "C02", "C11"])].copy()
    for e in ENDPOINTS:
        df[e.column] = fill
    df["death"] = 0.0 if fill == 0 else np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = analyse(df, ENDPOINTS, multiplicity="bh")
    text = json.dumps(r.to_dict())
    assert "NaN" not in text and "Infinity" not in text
    for o in r.outcomes:
        assert all(t.p_value is None or 0 <= t.p_value <= 1 for t in o.tests)
