"""The plan room: sample sizes against standard formulas, textbook values, statsmodels' power
functions, and simulation within the Monte Carlo error."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from controlarm.errors import InputError
from controlarm.plan import (
    TrialPlan,
    event_probability,
    plan_binary,
    plan_continuous,
    plan_free_days,
    plan_survival,
    power_binary,
    power_curve,
    schoenfeld_events,
    simulate_power_free_days,
    treated_distribution,
)

Z975, Z80, Z90 = stats.norm.ppf(0.975), stats.norm.ppf(0.8), stats.norm.ppf(0.9)
FREE_DAYS = [0] * 8 + [5, 10, 12, 14, 15, 17, 18, 19, 20, 21, 22, 22, 23, 24, 25, 26]


def test_binary_matches_r_power_prop_test():
    """R: ``power.prop.test(p1 = .50, p2 = .75, power = .90)`` prints ``n = 76.7``."""
    res = plan_binary(0.5, 0.75, power=0.9, n_sims=4000)
    r_n = 76.7
    assert round(res.effect["n_exact"], 1) == r_n
    assert res.n_control == res.n_treated == 77
    # hand computation of Fleiss' formula
    pbar = 0.625
    hand = (Z975 * math.sqrt(2 * pbar * (1 - pbar)) + Z90 * math.sqrt(0.25 + 0.1875)) ** 2 / 0.25**2
    assert res.effect["n_exact"] == pytest.approx(hand, rel=1e-12)
    assert abs(res.simulated_power - res.analytic_power) < 4 * res.mc_se + 0.005


def test_binary_continuity_correction_fleiss_tytun_ury():
    n = plan_binary(0.5, 0.75, power=0.9, n_sims=500).effect["n_exact"]
    res = plan_binary(0.5, 0.75, power=0.9, correction=True, n_sims=4000)
    hand = n / 4 * (1 + math.sqrt(1 + 4 / (n * 0.25))) ** 2
    assert res.effect["n_exact"] == pytest.approx(hand, rel=1e-12)
    assert res.n_control == math.ceil(hand) == 85
    assert abs(res.simulated_power - 0.9) < 4 * res.mc_se + 0.01


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_binary_power_matches_statsmodels(ratio):
    """statsmodels ``power_proportions_2indep`` uses the same pooled-null / unpooled-alternative
    variances (group 1 = control)."""
    from statsmodels.stats.proportion import power_proportions_2indep

    sm = power_proportions_2indep(5 / 24 - 0.08, 0.08, 100, ratio=ratio, alpha=0.05).power
    assert power_binary(100, 5 / 24, 0.08, allocation=ratio) == pytest.approx(sm, abs=1e-4)


def test_binary_seed_study_with_dropout_and_allocation():
    res = plan_binary(5 / 24, 0.08, allocation=2, dropout=0.1, n_sims=4000)
    assert res.n_treated == math.ceil(2 * res.n_control)
    assert res.n_control_enrolled == math.ceil(res.n_control / 0.9)
    assert power_binary(res.n_control - 1, 5 / 24, 0.08, allocation=2) < 0.8 <= res.analytic_power
    assert abs(res.simulated_power - res.analytic_power) < 4 * res.mc_se + 0.01


def test_schoenfeld_events_hand_values():
    """HR 0.5, two-sided 5%, 80%: 4 (1.96 + 0.8416)^2 / log(2)^2 = 65.3 events (Schoenfeld
    1983; Collett 2015, section 10.2)."""
    assert schoenfeld_events(0.5) == pytest.approx(4 * (Z975 + Z80) ** 2 / math.log(2) ** 2)
    assert round(schoenfeld_events(0.5), 1) == 65.3
    assert schoenfeld_events(0.5, allocation=2) / schoenfeld_events(0.5) == pytest.approx(9 / 8)


def test_survival_patients_and_simulation():
    res = plan_survival(0.5, control_survival=0.79, at_day=28, follow_up=60, n_sims=1500)
    lam = -math.log(0.79) / 28
    p_ev = (1 - math.exp(-lam * 60) + 1 - math.exp(-lam * 0.5 * 60)) / 2
    assert res.n_control == math.ceil(schoenfeld_events(0.5) / p_ev / 2)
    assert abs(res.simulated_power - 0.8) < 4 * res.mc_se + 0.02
    # accrual: the closed form against numerical integration over entry times
    a, f = 100.0, 60.0
    grid = np.linspace(0, a, 200_001)
    num = 1 - np.trapezoid(np.exp(-lam * (a + f - grid)), grid) / a
    assert event_probability(lam, f, a) == pytest.approx(num, rel=1e-8)


@pytest.mark.parametrize("ratio", [1.0, 2.0])
def test_continuous_matches_statsmodels_ttest(ratio):
    from statsmodels.stats.power import TTestIndPower

    res = plan_continuous(0.5, 1.0, allocation=ratio, n_sims=4000)
    sm = TTestIndPower().solve_power(0.5, alpha=0.05, power=0.8, ratio=ratio)
    assert res.n_control == math.ceil(sm)
    assert abs(res.simulated_power - res.analytic_power) < 4 * res.mc_se


def test_continuous_textbook_value():
    """Standardised difference 0.5, 80%, 5%: 64 per group (Cohen 1988, table 2.4.1)."""
    assert plan_continuous(0.5, 1.0, n_sims=200).n_control == 64


def test_free_days_simulation_equals_scipy_mann_whitney():
    s = np.unique(FREE_DAYS)
    p0 = np.array([FREE_DAYS.count(v) for v in s]) / len(FREE_DAYS)
    _, p1 = treated_distribution(s, p0, odds_ratio=2.0)
    n, reps, seed = 30, 300, 11
    power, se = simulate_power_free_days(n, p0, p1, n_sims=reps, seed=seed)
    # one chunk (reps < CHUNK): its stream is child 0 of SeedSequence(seed)
    g = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    cc, ct = g.multinomial(n, p0, size=reps), g.multinomial(n, p1, size=reps)
    rej = [stats.mannwhitneyu(np.repeat(s, b), np.repeat(s, a), method="asymptotic",
                              use_continuity=False).pvalue < 0.05 for a, b in zip(cc, ct)]
    assert power == pytest.approx(np.mean(rej))
    assert se == pytest.approx(math.sqrt(power * (1 - power) / reps))


def test_free_days_odds_effect_and_analytic_cross_checks():
    s = np.arange(4.0)
    p0 = np.array([0.4, 0.2, 0.2, 0.2])
    _, p1 = treated_distribution(s, p0, odds_ratio=2.0)
    cdf0, cdf1 = np.cumsum(p0)[:-1], np.cumsum(p1)[:-1]
    np.testing.assert_allclose((cdf0 / (1 - cdf0)) / (cdf1 / (1 - cdf1)), 2.0)
    res = plan_free_days(FREE_DAYS, odds_ratio=2.0, n_sims=4000)
    assert res.n_control == pytest.approx(res.effect["n_control_whitehead"], rel=0.1)
    assert res.n_control == pytest.approx(res.effect["n_control_noether"], rel=0.1)
    assert res.simulated_power >= 0.8
    below, _ = simulate_power_free_days(res.n_control - 1, *_pmfs(2.0), n_sims=4000, seed=0)
    assert below < 0.8


def _pmfs(odds):
    s = np.unique(FREE_DAYS)
    p0 = np.array([FREE_DAYS.count(v) for v in s]) / len(FREE_DAYS)
    return p0, treated_distribution(s, p0, odds_ratio=odds)[1]


def test_power_curve_and_figure(tmp_path):
    curves = power_curve("binary", [40, 80, 120], p_control=5 / 24, p_treated=0.08, n_sims=2000)
    assert (np.abs(curves["power_simulated"] - curves["power_analytic"])
            < 4 * curves["mc_se"] + 0.02).all()
    assert curves["power_analytic"].is_monotonic_increasing
    fd = power_curve("free_days", [20, 60], control_values=FREE_DAYS, shift=3, n_sims=500)
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from controlarm.plan import plot_power_curves

    both = pd.concat([curves, fd.astype({"power_analytic": float})], ignore_index=True)
    fig = plot_power_curves(both)
    fig.savefig(tmp_path / "power.png")
    assert (tmp_path / "power.png").stat().st_size > 0


def test_seeded_and_json_ready():
    a = plan_free_days(FREE_DAYS, shift=4, n_sims=1000, seed=5)
    b = plan_free_days(FREE_DAYS, shift=4, n_sims=1000, seed=5)
    assert a == b
    plan = TrialPlan((a, plan_binary(0.2, 0.1, n_sims=500)))
    json.dumps(plan.to_dict(), allow_nan=False)
    assert list(plan.summary().index) == ["free days", "binary mortality"]


@pytest.mark.parametrize("call, match", [
    (lambda: plan_binary(0.2, 0.2), "must differ"),
    (lambda: plan_binary(1.2, 0.2), "p_control must be a proportion"),
    (lambda: plan_binary(0.2, 0.1, dropout=1.0), "dropout must be in"),
    (lambda: plan_free_days(FREE_DAYS), "exactly one effect"),
    (lambda: schoenfeld_events(1.0), "hazard_ratio"),
    (lambda: plan_continuous(0.5, 0.0), "sd must be"),
])
def test_input_errors(call, match):
    with pytest.raises(InputError, match=match):
        call()


# --------------------------------------------------------------------------- parallel engine
def test_simulation_identical_with_one_and_two_workers():
    """Fixed chunks and SeedSequence.spawn per chunk: the worker count cannot change a bit."""
    from controlarm.plan import simulate_power_binary, simulate_power_survival, simulate_power_ttest

    p0, p1 = _pmfs(2.0)
    cases = [
        lambda w: simulate_power_free_days(40, p0, p1, n_sims=2500, seed=3, workers=w),
        lambda w: simulate_power_binary(60, 0.3, 0.15, n_sims=2500, seed=3, workers=w),
        lambda w: simulate_power_ttest(20, 0.5, 1.0, n_sims=2500, seed=3, workers=w),
        lambda w: simulate_power_survival(40, 0.02, 0.5, follow_up=60, n_sims=2500, seed=3,
                                          workers=w),
    ]
    for case in cases:
        one, two = case(1), case(2)
        assert one == two
        assert 0 < one[0] < 1 and one[1] == pytest.approx(math.sqrt(one[0] * (1 - one[0]) / 2500))
    plan1 = plan_free_days(FREE_DAYS, odds_ratio=2.0, n_sims=2500, seed=1, workers=1)
    plan2 = plan_free_days(FREE_DAYS, odds_ratio=2.0, n_sims=2500, seed=1, workers=2)
    assert plan1.to_dict() == plan2.to_dict()


def test_chunks_are_the_documented_streams():
    """Power over 2 chunks = rejections of chunk 0 (1000 trials) + chunk 1 (500), each from
    its own SeedSequence child, counted by scipy's Mann-Whitney."""
    from controlarm.plan._simulate import CHUNK

    s = np.unique(FREE_DAYS)
    p0, p1 = _pmfs(2.0)
    n = 12
    power, _ = simulate_power_free_days(n, p0, p1, n_sims=CHUNK + 500, seed=4)
    rej = 0
    for child, size in zip(np.random.SeedSequence(4).spawn(2), (CHUNK, 500)):
        g = np.random.default_rng(child)
        cc, ct = g.multinomial(n, p0, size=size), g.multinomial(n, p1, size=size)
        rej += sum(stats.mannwhitneyu(np.repeat(s, b), np.repeat(s, a), method="asymptotic",
                                      use_continuity=False).pvalue < 0.05 for a, b in zip(cc, ct))
    assert power == rej / (CHUNK + 500)


def test_vectorised_logrank_equals_compute_logrank_with_ties():
    from controlarm.analysis import compute_logrank
    from controlarm.plan import logrank_z

    g = np.random.default_rng(3)
    group = np.r_[np.zeros(15), np.ones(12)]
    times = g.exponential(1, (100, group.size)) / np.where(group == 1, 0.5, 1.0)
    fu = np.where(g.random((100, group.size)) < 0.5, 1.0, 2.0)
    t, ev = np.round(np.minimum(times, fu), 1), times <= fu  # rounding makes tied deaths
    p = 2 * stats.norm.sf(np.abs(logrank_z(t, ev, group)))
    ref = np.array([compute_logrank(t[i], ev[i], group).p_value for i in range(100)], float)
    np.testing.assert_allclose(p, ref, rtol=1e-10)
