"""Reference tests of the continuous and count methods (controlarm.analysis._continuous, ._exact).

Truth: R 4.2.2 on the sleep data (tests/reference/expected/matched_tests.json), rbounds on the
Rosenbaum lead pairs (rosenbaum_sensitivity.json), coin on sensitivitymv's mercury sets
(analysis_extra.json), and brute-force enumeration.
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
    aligned_rank_test,
    compute_hodges_lehmann,
    compute_signed_rank,
    hodges_lehmann_set_difference,
    mann_whitney_unpaired,
    permutation_within_sets,
    signed_rank_set_differences,
    van_elteren_test,
    wilcoxon_signed_rank_pseudo_pairs,
)
from controlarm.errors import ApproximationWarning

REF = Path(__file__).parent / "reference"
MATCHED = json.loads((REF / "expected" / "matched_tests.json").read_text())
ROSEN = json.loads((REF / "expected" / "rosenbaum_sensitivity.json").read_text())


def paired_frame(treated, control) -> pd.DataFrame:
    rows = []
    for s, (t, c) in enumerate(zip(treated, control)):
        rows += [dict(set_id=s, patient_id=f"t{s}", role="treated", y=t),
                 dict(set_id=s, patient_id=f"c{s}", role="control", y=c)]
    return pd.DataFrame(rows)


def sets_frame(sets) -> pd.DataFrame:
    """``sets`` = list of (treated value, [control values])."""
    rows = []
    for s, (t, cs) in enumerate(sets):
        rows.append(dict(set_id=s, patient_id=f"t{s}", role="treated", y=t))
        rows += [dict(set_id=s, patient_id=f"c{s}_{j}", role="control", y=c) for j, c in enumerate(cs)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    d = pd.read_csv(REF / "data" / "sleep.csv")
    d = d.sort_values(["group", "ID"])
    return paired_frame(d[d.group == 2]["extra"].to_numpy(), d[d.group == 1]["extra"].to_numpy())


@pytest.fixture(scope="module")
def lead() -> np.ndarray:
    d = pd.read_csv(REF / "data" / "rosenbaum_lead_pairs.csv")
    return (d["exposed"] - d["control"]).to_numpy(dtype=float)


def brute_signed_rank(d):
    """P-values of V by enumerating all 2^n sign vectors (zeros dropped, average ranks)."""
    d = np.asarray(d, float)
    d = d[d != 0]
    r = stats.rankdata(np.abs(d))
    v = r[d > 0].sum()
    e = r.sum() / 2
    vs = np.array([np.dot(r, s) for s in itertools.product([0, 1], repeat=d.size)])
    return np.mean(np.abs(vs - e) >= abs(v - e) - 1e-12), np.mean(vs >= v - 1e-12)


def test_signed_rank_sleep_exact(sleep):
    """R: exactRankTests::wilcox.exact(extra ~ group, paired = TRUE) and coin::wilcoxsign_test
    (distribution = "exact"): V = 45, p = 0.00390625; the normal approximation equals
    wilcox.test(..., paired = TRUE, correct = FALSE): p = 0.00763244164820552."""
    ref = MATCHED["sleep"]
    res = signed_rank_set_differences(sleep, "y")
    assert res.statistic == ref["wilcox_exact_exactRankTests"]["statistic"]
    assert res.p_value == pytest.approx(ref["wilcox_exact_exactRankTests"]["p_value"], rel=1e-12)
    assert res.p_value == pytest.approx(ref["coin_wilcoxsign_exact_wilcoxon"]["p"], rel=1e-12)
    assert res.conventions["p_normal_approximation"] == pytest.approx(
        ref["wilcox_paired_nocorrect"]["p_value"], rel=1e-9)
    assert "1 zero" in res.conventions["zeros"]


def test_wilcoxon_pseudo_pairs_sleep(sleep):
    """R: wilcox.test(extra ~ group, paired = TRUE) (ties and a zero: normal approximation with
    continuity correction): V = 45, p = 0.00909069801592506. For 1:1 sets pseudo-pairs are the pairs."""
    ref = MATCHED["sleep"]["wilcox_paired_correct"]
    res = wilcoxon_signed_rank_pseudo_pairs(sleep, "y")
    assert res.statistic == ref["statistic"]
    assert res.p_value == pytest.approx(ref["p_value"], rel=1e-9)
    assert res.framing == "published-style" and "not independent" in res.warning


def test_permutation_within_sets_sleep(sleep):
    """Exact enumeration of the 2^10 sign flips of the sleep differences: p = 4/1024. (R's
    exactRankTests::perm.test reports 0.01171875 because it maps non-integer scores to integers.)"""
    d = sleep[sleep.role == "treated"]["y"].to_numpy() - sleep[sleep.role == "control"]["y"].to_numpy()
    flips = np.array([np.dot(s, d) for s in itertools.product([1, -1], repeat=d.size)])
    brute = np.mean(np.abs(flips) >= abs(d.sum()) - 1e-9)
    res = permutation_within_sets(sleep, "y")
    assert res.p_value == pytest.approx(brute, rel=1e-12)
    assert res.p_value == pytest.approx(4 / 1024, rel=1e-12)
    assert res.statistic == pytest.approx(d.sum(), rel=1e-12)


def test_signed_rank_lead_pairs_moments(lead):
    """R: rbounds::psens(exposed, control, Gamma = 1) (psens_unrounded): T = 499, E = 264,
    V = 2858.625 (one zero dropped); wilcox.test(..., paired = TRUE, alternative = "greater",
    correct = FALSE): one-sided normal p = 5.53080153577363e-06."""
    ref = ROSEN["lead_pairs"]["psens_unrounded"][0]
    res, mom = compute_signed_rank(lead)
    assert res.statistic == ref["T"]
    assert res.expected == ref["E_upper"]
    assert mom["variance"] == ref["V"]
    assert mom["p_normal"] / 2 == pytest.approx(ROSEN["lead_pairs"]["wilcox_exact_one_sided"]["p_value"],
                                                rel=1e-9)
    assert res.exact and res.p_greater < 1e-5


def test_signed_rank_exact_with_ties_matches_enumeration(lead):
    """Exact enumeration: the dynamic programme equals brute force over 2^12 sign vectors, with ties
    and a zero (the first 13 lead-pair differences)."""
    d = lead[:13]
    p_two, p_greater = brute_signed_rank(d)
    res, _ = compute_signed_rank(d)
    assert res.p_two_sided == pytest.approx(p_two, rel=1e-12)
    assert res.p_greater == pytest.approx(p_greater, rel=1e-12)


def test_signed_rank_without_ties_matches_scipy():
    """scipy.stats.wilcoxon(d, method="exact") (no ties, no zeros), two-sided and greater."""
    d = np.random.default_rng(7).normal(0.4, 1, size=14)
    res, _ = compute_signed_rank(d)
    assert res.p_two_sided == pytest.approx(stats.wilcoxon(d, method="exact").pvalue, rel=1e-12)
    assert res.p_greater == pytest.approx(
        stats.wilcoxon(d, method="exact", alternative="greater").pvalue, rel=1e-12)


def test_hodges_lehmann_lead_pairs(lead):
    """Hodges-Lehmann estimate = median of the 561 Walsh averages of the lead-pair differences = 15.0,
    and the signed-rank statistic of d - theta changes sign there. (rbounds::hlsens at Gamma = 1
    reports 15.5 from its grid search; not matched.)"""
    i, j = np.triu_indices(lead.size)
    walsh = (lead[i] + lead[j]) / 2
    hl = compute_hodges_lehmann(lead)
    assert hl["estimate"] == np.median(walsh) == 15.0
    assert hl["ci_low"] < 15.0 < hl["ci_high"]
    assert 0.95 <= hl["achieved_level"] < 0.96


def test_hodges_lehmann_ci_inverts_exact_test():
    """Exact enumeration (Hollander, Wolfe & Chicken 2014, section 3.3): the CI is the set of theta
    whose two-sided exact signed-rank p (2^10 sign vectors) exceeds the achieved alpha; just outside
    it the test rejects at that level."""
    d = np.random.default_rng(3).normal(1.0, 2.0, size=10)
    hl = compute_hodges_lehmann(d, alpha=0.05)
    achieved_alpha = 1 - hl["achieved_level"]
    eps = 1e-7
    for theta, inside in ((hl["ci_low"] + eps, True), (hl["ci_high"] - eps, True),
                          (hl["ci_low"] - eps, False), (hl["ci_high"] + eps, False)):
        p_two, _ = brute_signed_rank(d - theta)
        assert (p_two > achieved_alpha + 1e-12) == inside
    # tiny n: the level cannot be reached; the interval is the range of the Walsh averages
    small = compute_hodges_lehmann([1.0, 2.0, 4.0], alpha=0.05)
    assert (small["ci_low"], small["ci_high"]) == (1.0, 4.0)
    assert small["achieved_level"] == pytest.approx(1 - 2 / 8)


SETS = [(5.0, [1.0]), (3.0, [4.0, 0.5]), (7.0, [2.0, 2.0, 6.0]), (1.0, [3.0, 2.5]), (4.0, [4.0])]


def test_permutation_within_sets_brute_force():
    """Exact enumeration over all prod(n_s) = 144 assignments of the treated member in 1:k sets of
    varying size; statistic = sum of treated - mean(controls)."""
    members = [np.r_[t, c] for t, c in SETS]
    stat = lambda y, j: y[j] - np.delete(y, j).mean()  # noqa: E731
    s_obs = sum(stat(y, 0) for y in members)
    all_s = np.array([sum(stat(y, j) for y, j in zip(members, combo))
                      for combo in itertools.product(*[range(len(y)) for y in members])])
    res = permutation_within_sets(sets_frame(SETS), "y")
    assert res.statistic == pytest.approx(s_obs, rel=1e-12)
    assert res.p_value == pytest.approx(np.mean(np.abs(all_s) >= abs(s_obs) - 1e-9), rel=1e-12)
    assert res.conventions["p_greater"] == pytest.approx(np.mean(all_s >= s_obs - 1e-9), rel=1e-12)
    assert res.conventions["n_assignments"] == 144


def test_permutation_monte_carlo_warns_and_is_reproducible():
    """Monte Carlo fallback: ApproximationWarning, same p with the same seed, close to the exact p."""
    df = sets_frame(SETS)
    exact = permutation_within_sets(df, "y").p_value
    with pytest.warns(ApproximationWarning):
        a = permutation_within_sets(df, "y", max_enumeration=10, n_resamples=20_000, seed=1)
    with pytest.warns(ApproximationWarning):
        b = permutation_within_sets(df, "y", max_enumeration=10, n_resamples=20_000, seed=1)
    assert a.p_value == b.p_value
    assert a.p_value == pytest.approx(exact, abs=0.02)
    assert "Monte Carlo" in a.conventions["distribution"]


def test_signed_rank_set_differences_counts_with_ties():
    """Exact enumeration over 2^n signs of the set contrasts d_s = treated - mean(controls) of
    free-day counts (ties and a zero), 1:3 sets."""
    sets = [(20.0, [10.0, 12.0, 14.0]), (0.0, [0.0, 0.0, 0.0]), (15.0, [12.0, 12.0, 12.0]),
            (28.0, [25.0, 25.0, 28.0]), (5.0, [10.0, 4.0, 7.0]), (12.0, [9.0, 9.0, 9.0])]
    d = [t - np.mean(c) for t, c in sets]
    p_two, _ = brute_signed_rank(d)
    res = signed_rank_set_differences(sets_frame(sets), "y")
    assert res.p_value == pytest.approx(p_two, rel=1e-12)
    hl = hodges_lehmann_set_difference(sets_frame(sets), "y")
    i, j = np.triu_indices(len(d))
    assert hl.value == pytest.approx(np.median((np.array(d)[i] + np.array(d)[j]) / 2))


def test_mann_whitney_exact_matches_enumeration():
    """Exact enumeration of all C(9, 3) = 84 splits of the pooled values (no ties): two-sided p of
    the Mann-Whitney U of the treated arm, P(|U - E U| >= |u - E U|)."""
    sets = [(9.5, [1.0, 2.0]), (8.0, [3.5, 4.0]), (6.5, [5.0, 7.0])]
    df = sets_frame(sets)
    x = np.array([t for t, _ in sets])
    pooled = np.r_[x, np.concatenate([c for _, c in sets])]
    ranks = stats.rankdata(pooled)
    u = lambda idx: ranks[list(idx)].sum() - 3 * 4 / 2  # noqa: E731
    us = np.array([u(idx) for idx in itertools.combinations(range(9), 3)])
    u_obs = u(range(3))
    res = mann_whitney_unpaired(df, "y")
    assert res.statistic == u_obs
    assert res.p_value == pytest.approx(np.mean(np.abs(us - 9) >= abs(u_obs - 9)), rel=1e-12)
    assert res.framing == "unmatched" and res.conventions["distribution"] == "exact"


def test_no_warnings_and_input_untouched(sleep):
    """The continuous functions neither warn (on exact paths) nor modify their input."""
    before = sleep.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (signed_rank_set_differences, permutation_within_sets, wilcoxon_signed_rank_pseudo_pairs,
                  mann_whitney_unpaired, hodges_lehmann_set_difference):
            f(sleep, "y")
    pd.testing.assert_frame_equal(sleep, before)


# --------------------------------------------------------------------------- aligned ranks, van Elteren, MC error
EXTRA = json.loads((REF / "expected" / "analysis_extra.json").read_text())


@pytest.fixture(scope="module")
def mercury() -> pd.DataFrame:
    m = pd.read_csv(REF / "data" / "sensitivitymv_mercury.csv")
    return sets_frame([(r.Treated, [r.Zero, r.One]) for r in m.itertuples()])


def test_van_elteren_mercury_matches_coin(mercury):
    """R: coin::independence_test(y ~ g | set, ytrafo = function(d) trafo(d, numeric_trafo =
    rank_trafo, block = set)) on sensitivitymv's mercury data (397 sets of 3: van Elteren's weight
    is constant): z = 19.0769072112542 (coin's sign refers to the control level)."""
    ref = EXTRA["coin_mercury"]
    res = van_elteren_test(mercury, "y")
    assert res.conventions["z"] == pytest.approx(-ref["van_elteren_z"], rel=1e-10)
    assert res.p_value == pytest.approx(ref["van_elteren_p"], rel=1e-9)
    assert "normal approximation" in res.method


def test_aligned_rank_mercury_matches_coin(mercury):
    """R: coin::independence_test(rank(round(y - ave(y, set), 10)) ~ g | set) on mercury: linear
    statistic, expectation and variance (controls' aligned-rank sum), z and p."""
    ref = EXTRA["coin_mercury"]
    res = aligned_rank_test(mercury, "y")
    total = 1191 * 1192 / 2
    assert res.statistic == total - ref["aligned_linear_control"]
    assert res.conventions["expected"] == pytest.approx(total - ref["aligned_expectation_control"], rel=1e-12)
    assert res.conventions["variance"] == pytest.approx(ref["aligned_variance"], rel=1e-10)
    assert res.conventions["z"] == pytest.approx(-ref["aligned_z"], rel=1e-10)
    assert res.p_value == pytest.approx(ref["aligned_p"], rel=1e-9)


def _brute_within_sets(contribs, observed=None):
    obs = sum(c[0] for c in contribs)
    e = sum(np.mean(c) for c in contribs)
    allv = np.array([sum(c[j] for c, j in zip(contribs, combo))
                     for combo in itertools.product(*[range(len(c)) for c in contribs])])
    return np.mean(np.abs(allv - e) >= abs(obs - e) - 1e-9)


def test_aligned_rank_and_van_elteren_exact_brute_force():
    """Exact enumeration over the 144 assignments of SETS (1:k, varying k): aligned ranks (mean
    alignment, joint ranking) and van Elteren's within-set ranks / (n + 1)."""
    members = [np.r_[t, c] for t, c in SETS]
    aligned = np.concatenate([y - y.mean() for y in members])
    ranks = stats.rankdata(aligned)
    bounds = np.cumsum([0] + [y.size for y in members])
    contribs = [ranks[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    res = aligned_rank_test(sets_frame(SETS), "y")
    assert res.p_value == pytest.approx(_brute_within_sets(contribs), rel=1e-12)
    ve = [stats.rankdata(y) / (y.size + 1) for y in members]
    res = van_elteren_test(sets_frame(SETS), "y")
    assert res.p_value == pytest.approx(_brute_within_sets(ve), rel=1e-12)
    assert res.statistic == pytest.approx(sum(c[0] for c in ve), rel=1e-12)


def test_monte_carlo_error_is_reported():
    """Monte Carlo permutation p-values carry their standard error sqrt(p (1 - p) / B)."""
    with pytest.warns(ApproximationWarning):
        res = permutation_within_sets(sets_frame(SETS), "y", max_enumeration=10, n_resamples=20_000, seed=1)
    p = res.p_value
    assert res.conventions["monte_carlo_standard_error"] == pytest.approx(np.sqrt(p * (1 - p) / 20_000), rel=1e-12)
    assert "99%" in res.conventions["monte_carlo_error"]


def test_aligned_rank_ties_from_float_noise_are_ties():
    """Aligned values that are equal in exact arithmetic tie even when floating point disagrees
    (0.1 + 0.2 vs 0.3): both sets below align to (-0.1, 0, 0.1) up to noise."""
    df = sets_frame([(0.3, [0.2, 0.1 + 0.3]), (1.3, [1.2, 1.4])])
    res = aligned_rank_test(df, "y")
    assert res.statistic == 7.0  # ranks 3.5 + 3.5 for the two treated (tied with each other)
