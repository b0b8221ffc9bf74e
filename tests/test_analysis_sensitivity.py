"""Reference tests of the sensitivity analyses (controlarm.analysis._rosenbaum, ._mstat, ._evalue,
._sensitivity).

Truth: rbounds 2.2 and sensitivitymv 1.4.3 in R 4.2.2 (tests/reference/expected/
rosenbaum_sensitivity.json), the worked examples of the papers that define the E-value and the
amplification, and brute-force maximisation over the unobserved covariate u in {0, 1}^n.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from controlarm.analysis import (
    SensitivityResult,
    compute_amplification,
    compute_evalue,
    compute_fragility,
    compute_hl_bounds,
    compute_mscores,
    compute_mstat_bound,
    compute_rosenbaum_binary,
    compute_rosenbaum_signed_rank,
    compute_signed_rank,
    critical_gamma,
)
from controlarm.analysis._mstat import M_METHODS
from controlarm.errors import InputError

REF = Path(__file__).parent / "reference"
ROSEN = json.loads((REF / "expected" / "rosenbaum_sensitivity.json").read_text())
SMOKING = ROSEN["smoking_lung_cancer"]


@pytest.fixture(scope="module")
def lead() -> np.ndarray:
    d = pd.read_csv(REF / "data" / "rosenbaum_lead_pairs.csv")
    return (d["exposed"] - d["control"]).to_numpy(dtype=float)


def _pairs(x: int, y: int):
    """x + y discordant pairs as 1:1 sets: m = 1 event in n = 2 patients."""
    return [1] * (x + y), [2] * (x + y)


@pytest.mark.parametrize("row", SMOKING["binary_unrounded"], ids=lambda r: f"Gamma={r['Gamma']}")
def test_binary_pairs_both_conventions_match_rbounds(row):
    """R: rbounds::binarysens(x = 12, y = 110, Gamma = 6, GammaInc = 0.5) reports P(X > D); the
    textbook bound P(X >= D) = pbinom(D - 1, n, p, lower.tail = FALSE), D = 110, n = 122. R's
    1 - pbinom() loses everything below 1e-16, hence the absolute tolerance."""
    b = compute_rosenbaum_binary(*_pairs(12, 110), 110, row["Gamma"])
    assert b["upper_ge"] == pytest.approx(row["textbook_upper_P_ge_D"], rel=1e-9)
    assert b["lower_ge"] == pytest.approx(row["textbook_lower_P_ge_D"], rel=1e-9)
    assert b["upper_gt"] == pytest.approx(row["rbounds_upper_P_gt_D"], rel=1e-9, abs=1e-15)
    assert b["lower_gt"] == pytest.approx(row["rbounds_lower_P_gt_D"], rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("key", ["binarysens", "binarysens_110_12"])
def test_binary_pairs_rounded_table_matches_binarysens(key):
    """R: binarysens(12, 110) and binarysens(110, 12) print the same table (5 decimals): rbounds
    takes D = max(x, y), so the argument order does not matter."""
    for row in SMOKING[key]:
        b = compute_rosenbaum_binary(*_pairs(12, 110), 110, row["Gamma"])
        assert round(b["upper_gt"], 5) == pytest.approx(row["Upper.bound"], abs=1e-12)
        assert round(b["lower_gt"], 5) == pytest.approx(row["Lower.bound"], abs=1e-12)


def test_binary_sets_bound_equals_brute_force_over_u():
    """Brute force: for 1:k sets with binary outcomes, max over u in {0,1}^n of P(T >= t) under
    P(member j treated) ~ Gamma^u_j is attained by the closed form (sharp bound), and the min
    by the lower bound."""
    sets = [np.array([1, 0, 0]), np.array([1, 1, 0, 0]), np.array([0, 1]), np.array([1, 0, 1])]
    t_obs, gamma = 2, 2.5
    best_hi, best_lo = 0.0, 1.0
    for us in itertools.product(*[list(itertools.product([0, 1], repeat=y.size)) for y in sets]):
        probs = [gamma ** np.array(u) / (gamma ** np.array(u)).sum() for u in us]
        dist = np.array([1.0])
        for y, p in zip(sets, probs):
            q = float(p[y == 1].sum())
            dist = np.convolve(dist, [1 - q, q])
        best_hi, best_lo = max(best_hi, dist[t_obs:].sum()), min(best_lo, dist[t_obs:].sum())
    b = compute_rosenbaum_binary([y.sum() for y in sets], [y.size for y in sets], t_obs, gamma)
    assert b["upper_ge"] == pytest.approx(best_hi, rel=1e-12)
    assert b["lower_ge"] == pytest.approx(best_lo, rel=1e-12)


@pytest.mark.parametrize("row", ROSEN["lead_pairs"]["psens_unrounded"], ids=lambda r: f"Gamma={r['Gamma']}")
def test_signed_rank_bounds_match_psens(lead, row):
    """R: rbounds::psens(exposed, control, Gamma = 6, GammaInc = 0.5), recomputed unrounded:
    T = 499, E = p+ sum(r), V = p+(1 - p+) sum(r^2), normal p without continuity correction.
    R's 1 - pnorm() underflows to 0 for the lower bound; hence the absolute tolerance."""
    b = compute_rosenbaum_signed_rank(lead, row["Gamma"])
    assert b["T"] == row["T"]
    assert b["E_upper"] == pytest.approx(row["E_upper"], rel=1e-12)
    assert b["V_upper"] == pytest.approx(row["V"], rel=1e-12)
    assert b["p_upper_normal"] == pytest.approx(row["p_upper"], rel=1e-9)
    assert b["p_lower_normal"] == pytest.approx(row["p_lower"], rel=1e-9, abs=1e-14)


def test_signed_rank_bounds_rounded_table_and_exact(lead):
    """R: psens prints 4 decimals; the exact bound at Gamma = 1 is the exact one-sided signed-rank
    p-value, and exact bounds are below the normal ones here (no continuity correction)."""
    for row in ROSEN["lead_pairs"]["psens"]:
        b = compute_rosenbaum_signed_rank(lead, row["Gamma"])
        assert round(b["p_upper_normal"], 4) == pytest.approx(row["Upper.bound"], abs=1e-12)
        assert round(b["p_lower_normal"], 4) == pytest.approx(row["Lower.bound"], abs=1e-12)
    res, _ = compute_signed_rank(lead)
    b1 = compute_rosenbaum_signed_rank(lead, 1.0)
    assert b1["p_upper"] == pytest.approx(res.p_greater, rel=1e-10) == b1["p_lower"]


def test_signed_rank_exact_bound_equals_enumeration():
    """Exact enumeration: the upper bound is P(sum r_i B_i >= T), B_i ~ Bernoulli(Gamma/(1+Gamma)),
    over all 2^n sign patterns (with ties and a zero)."""
    d = np.array([3.0, -1.0, 2.0, 2.0, 0.0, 5.0, -4.0, 1.5, 6.0])
    gamma = 2.0
    nz = d[d != 0]
    r = stats.rankdata(np.abs(nz))
    t = r[nz > 0].sum()
    p = gamma / (1 + gamma)
    total = 0.0
    for signs in itertools.product([0, 1], repeat=nz.size):
        s = np.array(signs)
        if (r * s).sum() >= t - 1e-9:
            total += np.prod(np.where(s == 1, p, 1 - p))
    assert compute_rosenbaum_signed_rank(d, gamma)["p_upper"] == pytest.approx(total, rel=1e-12)


def test_hodges_lehmann_bounds_lead_pairs(lead):
    """R: rbounds::hlsens(exposed, control, pr = 0.1, Gamma = 3, GammaInc = 0.5). Our bounds solve
    T(theta) = p N exactly; hlsens searches a grid of step 0.1 and reports 15.5 at Gamma = 1 where
    the median of the Walsh averages is 15.0 (test_analysis_continuous.py). Where its grid is
    sound the lower bounds agree exactly (Gamma 1.5, 2.5, 3) and the upper bounds to one grid step;
    everywhere to within 0.5."""
    ref = {r["Gamma"]: r for r in ROSEN["lead_pairs"]["hlsens"]}
    for g, r in ref.items():
        b = compute_hl_bounds(lead, g)
        assert abs(b["low"] - r["Lower.bound"]) <= 0.5 and abs(b["high"] - r["Upper.bound"]) <= 0.5
    for g in (1.5, 2.5, 3.0):
        assert compute_hl_bounds(lead, g)["low"] == ref[g]["Lower.bound"]
        assert compute_hl_bounds(lead, g)["high"] == pytest.approx(ref[g]["Upper.bound"] - 0.1)
    assert compute_hl_bounds(lead, 1.0) == {"low": 15.0, "high": 15.0}


def test_hodges_lehmann_bounds_solve_the_estimating_equation(lead):
    """Brute force: T(theta) = #{Walsh averages > theta} crosses p+ N at the lower bound and p- N at
    the upper bound (Rosenbaum 1993)."""
    i, j = np.triu_indices(lead.size)
    w = (lead[i] + lead[j]) / 2
    big_n = w.size
    for g in (1.5, 2.0, 3.0):
        b = compute_hl_bounds(lead, g)
        for theta, p in ((b["low"], g / (1 + g)), (b["high"], 1 / (1 + g))):
            assert (w > theta - 1e-9).sum() >= p * big_n >= (w > theta + 1e-9).sum()


@pytest.mark.parametrize("method", ["h", "t"])
def test_mstatistic_pairs_match_senmv(lead, method):
    """R: sensitivitymv::senmv(exposed - control, gamma = g, method = "h" | "t"), g = 1..4. p-values
    and deviates agree to 1e-9; senmv's statistic, expectation and variance for a vector of pair
    differences are ours divided by a constant (2 for "h", 2.2 for "t"), which cancels: the ratios
    E/T and V/T^2 agree."""
    inner, trim = M_METHODS[method]
    scores = compute_mscores(np.c_[lead / 2, -lead / 2], inner=inner, trim=trim)
    for row in ROSEN["lead_pairs"][f"senmv_{method}"]:
        b = compute_mstat_bound(scores, row["gamma"])
        assert b["p_upper"] == pytest.approx(row["pval"], rel=1e-9)
        assert b["deviate"] == pytest.approx(row["deviate"], rel=1e-9)
        assert b["expectation"] / b["statistic"] == pytest.approx(row["expectation"] / row["statistic"],
                                                                  rel=1e-9, abs=1e-15)
        assert b["variance"] / b["statistic"] ** 2 == pytest.approx(row["variance"] / row["statistic"] ** 2,
                                                                    rel=1e-9)


def test_mstatistic_sets_bound_equals_brute_force_over_u():
    """Brute force for 1:2 and 1:3 sets (mercury-like): per set, the largest expectation of the
    treated score over all u in {0,1}^n, with P(j treated) ~ Gamma^u_j, and the largest variance
    among the maximisers, equal the separable bound's; Gamma = 1 gives the permutation moments."""
    rng = np.random.default_rng(11)
    sets = [rng.lognormal(size=3) for _ in range(4)] + [rng.lognormal(size=4) for _ in range(3)]
    scores = compute_mscores(sets)
    gamma = 3.0
    e_bf = v_bf = 0.0
    for s in scores:
        best = (-math.inf, -math.inf)
        for u in itertools.product([0, 1], repeat=s.size):
            p = gamma ** np.array(u, float)
            p /= p.sum()
            mu = float(p @ s)
            var = float(p @ s**2 - mu**2)
            if mu > best[0] + 1e-12:
                best = (mu, var)
            elif abs(mu - best[0]) <= 1e-12:
                best = (best[0], max(best[1], var))
        e_bf += best[0]
        v_bf += best[1]
    b = compute_mstat_bound(scores, gamma)
    assert b["expectation"] == pytest.approx(e_bf, rel=1e-12)
    assert b["variance"] == pytest.approx(v_bf, rel=1e-12)
    b1 = compute_mstat_bound(scores, 1.0)
    assert b1["expectation"] == pytest.approx(sum(s.mean() for s in scores), rel=1e-12)
    assert b1["variance"] == pytest.approx(sum(s.var() for s in scores), rel=1e-12)


def test_mstatistic_mercury_runs_and_is_monotone():
    """sensitivitymv's mercury data (397 sets, 1:2): the M-statistic bound rises with Gamma and the
    scale-0 case raises InputError. (The shared reference holds no senmv output for it.)"""
    m = pd.read_csv(REF / "data" / "sensitivitymv_mercury.csv").to_numpy()
    scores = compute_mscores(m)
    ps = [compute_mstat_bound(scores, g)["p_upper"] for g in (1, 2, 5, 10, 20)]
    assert ps == sorted(ps) and ps[0] < 1e-50
    with pytest.raises(InputError, match="scale"):
        compute_mscores(np.zeros((5, 3)))


def test_amplification_formula_and_round_trip():
    """Rosenbaum & Silber (2009): Gamma = 1.25 is (Lambda, Delta) = (2, 2); every pair satisfies
    Gamma = (Lambda Delta + 1) / (Lambda + Delta); Lambda <= Gamma has no Delta."""
    assert compute_amplification(1.25, [2.0]) == [(2.0, 2.0)]
    for lam, delta in compute_amplification(3.0, [1.0, 3.0, 4.0, 6.0, 10.0]):
        assert (lam * delta + 1) / (lam + delta) == pytest.approx(3.0, rel=1e-12)
    assert [lam for lam, _ in compute_amplification(3.0, [1.0, 3.0, 4.0])] == [4.0]


def test_critical_gamma(lead):
    """The sensitivity value solves p_upper(Gamma) = alpha; None when not significant at 1."""
    f = lambda g: compute_rosenbaum_signed_rank(lead, g)["p_upper_normal"]  # noqa: E731
    g = critical_gamma(f, 0.05)
    assert 4.0 < g < 4.5 and f(g) == pytest.approx(0.05, rel=1e-5)
    assert critical_gamma(lambda g: 0.3, 0.05) is None


def test_evalue_paper_example_and_conversions():
    """VanderWeele & Ding (2017), Ann Intern Med 167:268: RR 3.9 (1.8 to 8.7) gives E-values 7.26
    and 3.0; protective RR uses 1/RR; a CI containing 1 gives 1. Common-outcome conversions:
    OR -> sqrt(OR), HR -> (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))."""
    e = compute_evalue(3.9, 1.8, 8.7)
    assert e["evalue"] == pytest.approx(3.9 + math.sqrt(3.9 * 2.9), rel=1e-12)
    assert round(e["evalue"], 2) == 7.26 and round(e["evalue_ci"], 2) == 3.0
    p = compute_evalue(1 / 3.9, 1 / 8.7, 1 / 1.8)
    assert p["evalue"] == pytest.approx(e["evalue"]) and p["evalue_ci"] == pytest.approx(e["evalue_ci"])
    assert compute_evalue(1.3, 0.9, 1.8)["evalue_ci"] == 1.0
    o = compute_evalue(4.0, 2.0, 9.0, measure="OR", rare=False)
    assert o["rr"] == 2.0 and o["rr_low"] == pytest.approx(math.sqrt(2))
    assert compute_evalue(4.0, measure="OR", rare=True)["rr"] == 4.0
    h = compute_evalue(2.0, measure="HR", rare=False)
    assert h["rr"] == pytest.approx((1 - 0.5 ** math.sqrt(2)) / (1 - 0.5 ** math.sqrt(0.5)), rel=1e-12)
    with pytest.raises(InputError, match="measure"):
        compute_evalue(2.0, measure="RD")


def _fisher(a, n1, c, n0):
    return stats.fisher_exact([[a, n1 - a], [c, n0 - c]]).pvalue


@pytest.mark.parametrize("table", [(1, 50, 10, 50), (2, 30, 12, 31), (0, 8, 5, 24), (3, 20, 4, 20)])
def test_fragility_matches_brute_force(table):
    """Walsh et al. (2014): the fewest non-events turned into events in the group with fewer events
    that make Fisher's p >= 0.05; Khan et al. (2020) for non-significant results: the fewest
    changes in either direction that make it < 0.05. Checked by exhaustive search."""
    a, n1, c, n0 = table
    f = compute_fragility(a, n1, c, n0)
    assert f["p_value"] == pytest.approx(_fisher(a, n1, c, n0), rel=1e-12)
    if f["significant"]:
        grp = 1 if a <= c else 0
        k = next(k for k in range(1, 100) if _fisher(a + k * (grp == 1), n1, c + k * (grp == 0), n0) >= 0.05)
        assert f["kind"] == "fragility" and f["index"] == k
    else:
        cands = [k for k in range(1, 60) for (da, dc) in ((k, 0), (-k, 0), (0, k), (0, -k))
                 if 0 <= a + da <= n1 and 0 <= c + dc <= n0
                 and (a + da) / n1 - (c + dc) / n0 != 0
                 and abs((a + da) / n1 - (c + dc) / n0) > abs(a / n1 - c / n0)
                 and _fisher(a + da, n1, c + dc, n0) < 0.05]
        assert f["kind"] == "reverse fragility" and f["index"] == min(cands)


def test_sensitivity_result_shape():
    """The report renders every sensitivity analysis from exactly these keys."""
    r = SensitivityResult(name="x", label="X", method="m", columns=("Gamma", "p"),
                          rows=((1.0, float("nan")),), summary="s.", conventions={"a": 1}, reference="ref")
    d = r.to_dict()
    assert list(d) == ["name", "label", "method", "columns", "rows", "summary", "conventions", "reference"]
    assert d["rows"] == [[1.0, None]] and d["columns"] == ["Gamma", "p"]
    assert list(r.table().columns) == ["Gamma", "p"]


def test_erpcp_pairs_frame_level_sensitivity():
    """sensitivitymv's erpcp (39 welder-control pairs) through the frame-level assembly: the
    M-statistic of the pairs as 1:1 sets equals senmv's vector form (d/2, -d/2); the signed-rank
    exact bound at Gamma = 1 is the exact one-sided signed-rank p; the HL range widens with Gamma."""
    from controlarm.analysis import continuous_sensitivity
    from controlarm.outcomes._endpoints import Endpoint

    e = pd.read_csv(REF / "data" / "sensitivitymv_erpcp.csv")
    rows = []
    for i, r in e.iterrows():
        rows += [dict(set_id=i, patient_id=f"w{i}", role="treated", y=r.welder),
                 dict(set_id=i, patient_id=f"c{i}", role="control", y=r.control)]
    ep = Endpoint("erpcp", "Erythrocyte protoporphyrin", "continuous", "y", "erpcp")
    res = {s.name: s for s in continuous_sensitivity(pd.DataFrame(rows), ep)}
    d = (e.welder - e.control).to_numpy()
    vector = compute_mstat_bound(compute_mscores(np.c_[d / 2, -d / 2]), 2.0)
    frame_row = next(r for r in res["rosenbaum_mstatistic"].rows if r[0] == 2.0)
    assert frame_row[5] == pytest.approx(vector["p_upper"], rel=1e-12)
    exact, _ = compute_signed_rank(d)
    assert res["rosenbaum_signed_rank"].rows[0][2] == pytest.approx(exact.p_greater, rel=1e-10)
    widths = [hi - lo for _, lo, hi in res["hodges_lehmann_bounds"].rows]
    assert widths == sorted(widths) and widths[0] == 0
    assert res["rosenbaum_signed_rank"].conventions["sensitivity_value"] > 1
