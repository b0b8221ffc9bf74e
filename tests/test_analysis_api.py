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

from controlarm.analysis import Results, analyse, km_curves
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
        "time_to_event": {"logrank_stratified_by_set", "cox_stratified_by_set", "logrank_unstratified",
                          "logrank_stratified_by_pseudo_pair"},
        "count": {"signed_rank_set_differences", "permutation_within_sets",
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
