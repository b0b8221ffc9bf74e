"""Property tests (hypothesis): every exact test of the analysis room equals brute-force enumeration
on small random matched designs.

Each brute force enumerates what the exact test claims to compute, the slow obvious way: every
choice of the treated member in every set (prod n_s assignments), every sign pattern (2^n), or
every unobserved covariate u in {0, 1}^n. Examples are derandomised so CI runs are reproducible.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from controlarm.analysis import (
    aligned_rank_test,
    compute_logrank,
    compute_mcnemar_exact,
    compute_rosenbaum_binary,
    compute_rosenbaum_signed_rank,
    compute_signed_rank,
    exact_conditional,
    logrank_permutation_by_set,
    permutation_within_sets,
    van_elteren_test,
)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
TOL = 1e-9


def frame(sets, column="y", extra=None) -> pd.DataFrame:
    """``sets`` = list of member-value lists, treated first."""
    rows = []
    for s, values in enumerate(sets):
        for j, v in enumerate(values):
            row = dict(set_id=s, patient_id=f"p{s}_{j}", role="treated" if j == 0 else "control")
            row.update(v if isinstance(v, dict) else {column: v})
            rows.append(row)
    return pd.DataFrame(rows)


def assignments(sets):
    return itertools.product(*[range(len(s)) for s in sets])


def two_sided_by_deviation(values, observed, expected):
    values = np.asarray(values, float)
    return np.mean(np.abs(values - expected) >= abs(observed - expected) - TOL)


binary_sets = st.lists(st.lists(st.integers(0, 1), min_size=2, max_size=4), min_size=1, max_size=5)
value_sets = st.lists(st.lists(st.integers(-4, 4), min_size=2, max_size=4), min_size=1, max_size=5)


@SETTINGS
@given(binary_sets)
def test_exact_conditional_equals_enumeration(sets):
    """T = treated with y = 1; null: each member equally likely to be the treated one."""
    ts = [sum(s[j] for s, j in zip(sets, combo)) for combo in assignments(sets)]
    values, counts = np.unique(ts, return_counts=True)
    pmf = dict(zip(values.tolist(), counts / counts.sum()))
    t_obs = sum(s[0] for s in sets)
    res = exact_conditional(frame(sets), "y")
    assert res.statistic == t_obs
    p_two = sum(p for p in pmf.values() if p <= pmf[t_obs] * (1 + 1e-7))
    assert res.p_value == pytest.approx(min(1.0, p_two), rel=1e-9)
    assert res.conventions["p_greater"] == pytest.approx(sum(p for t, p in pmf.items() if t >= t_obs), rel=1e-9)
    assert res.conventions["p_less"] == pytest.approx(sum(p for t, p in pmf.items() if t <= t_obs), rel=1e-9)


@SETTINGS
@given(st.lists(st.integers(-6, 6).map(lambda x: x / 2), min_size=1, max_size=11))
def test_signed_rank_equals_enumeration(d):
    """Zeros dropped, average ranks, all 2^n sign patterns equally likely."""
    d = np.asarray(d)
    nz = d[d != 0]
    r = stats.rankdata(np.abs(nz))
    v = r[nz > 0].sum()
    vs = np.array([np.dot(r, s) for s in itertools.product([0, 1], repeat=nz.size)]) if nz.size else np.zeros(1)
    res, _ = compute_signed_rank(d)
    assert res.p_two_sided == pytest.approx(two_sided_by_deviation(vs, v, r.sum() / 2), rel=1e-9)
    assert res.p_greater == pytest.approx(np.mean(vs >= v - TOL), rel=1e-9)


@SETTINGS
@given(value_sets)
def test_permutation_within_sets_equals_enumeration(sets):
    """S = sum of treated - mean(controls) over sets."""
    stat = lambda y, j: y[j] - np.delete(y, j).mean()  # noqa: E731
    arr = [np.asarray(s, float) for s in sets]
    all_s = [sum(stat(y, j) for y, j in zip(arr, combo)) for combo in assignments(sets)]
    s_obs = sum(stat(y, 0) for y in arr)
    res = permutation_within_sets(frame(sets), "y")
    assert res.p_value == pytest.approx(two_sided_by_deviation(all_s, s_obs, np.mean(all_s)), rel=1e-9)


@SETTINGS
@given(value_sets)
def test_aligned_rank_and_van_elteren_equal_enumeration(sets):
    """Aligned ranks (joint ranking of y - set mean) and van Elteren's within-set ranks / (n + 1)."""
    arr = [np.asarray(s, float) for s in sets]
    ranks = stats.rankdata(np.concatenate([y - y.mean() for y in arr]))
    bounds = np.cumsum([0] + [y.size for y in arr])
    for contrib, test in (([ranks[a:b] for a, b in zip(bounds[:-1], bounds[1:])], aligned_rank_test),
                          ([stats.rankdata(y) / (y.size + 1) for y in arr], van_elteren_test)):
        all_s = [sum(c[j] for c, j in zip(contrib, combo)) for combo in assignments(sets)]
        obs = sum(c[0] for c in contrib)
        res = test(frame(sets), "y")
        assert res.statistic == pytest.approx(obs, rel=1e-12)
        assert res.p_value == pytest.approx(two_sided_by_deviation(all_s, obs, np.mean(all_s)), rel=1e-9)


survival_sets = st.lists(
    st.lists(st.tuples(st.integers(1, 5), st.integers(0, 1)), min_size=2, max_size=4), min_size=1, max_size=4)


@SETTINGS
@given(survival_sets)
def test_logrank_permutation_equals_enumeration(sets):
    """U = stratified log-rank O - E of the treated patients, recomputed with compute_logrank for
    every relabelling of the treated member (ties in time on purpose)."""
    df = frame([[{"time": float(t), "event": e} for t, e in s] for s in sets])
    time, event = df["time"].to_numpy(), df["event"].to_numpy()
    set_id = df["set_id"].to_numpy()
    starts = np.r_[0, np.cumsum([len(s) for s in sets])[:-1]]
    us = []
    for combo in assignments(sets):
        grp = np.zeros(len(df), bool)
        grp[starts + np.array(combo)] = True
        r = compute_logrank(time, event, grp, set_id)
        us.append(r.observed - r.expected)
    res = logrank_permutation_by_set(df, "time", "event")
    assert res.statistic == pytest.approx(us[0], abs=1e-12)
    assert res.p_value == pytest.approx(two_sided_by_deviation(us, us[0], 0.0), rel=1e-9)


@SETTINGS
@given(st.integers(0, 18), st.integers(0, 18))
def test_mcnemar_exact_and_mid_p_equal_binomial_enumeration(b, c):
    """b ~ Binomial(b + c, 1/2): exact two-sided p sums outcomes not more likely than b (R
    binom.test), mid-p doubles the smaller one-sided mid-p."""
    n = b + c
    pmf = np.array([stats.binom.pmf(k, n, 0.5) for k in range(n + 1)]) if n else np.ones(1)
    exact, mid = compute_mcnemar_exact(b, c)
    assert exact == pytest.approx(min(1.0, pmf[pmf <= pmf[b] * (1 + 1e-7)].sum()), rel=1e-9)
    lo, hi = pmf[:b].sum() + pmf[b] / 2, pmf[b + 1:].sum() + pmf[b] / 2
    assert mid == pytest.approx(min(1.0, 2 * min(lo, hi)) if n else 1.0, rel=1e-9)


@SETTINGS
@given(st.lists(st.lists(st.integers(0, 1), min_size=2, max_size=3), min_size=1, max_size=3),
       st.sampled_from([1.0, 1.5, 2.0, 4.0]))
def test_rosenbaum_binary_bound_equals_maximum_over_u(sets, gamma):
    """Upper and lower bounds on P(T >= t) equal the maximum and minimum over every unobserved
    covariate u in {0, 1}^n with P(member j treated) proportional to Gamma^u_j."""
    t_obs = sum(s[0] for s in sets)
    hi, lo = 0.0, 1.0
    for us in itertools.product(*[list(itertools.product([0, 1], repeat=len(s))) for s in sets]):
        dist = np.array([1.0])
        for s, u in zip(sets, us):
            w = gamma ** np.array(u, float)
            q = float(w[np.array(s) == 1].sum() / w.sum())
            dist = np.convolve(dist, [1 - q, q])
        p = dist[t_obs:].sum()
        hi, lo = max(hi, p), min(lo, p)
    inf = [(sum(s), len(s)) for s in sets]
    t_inf = sum(s[0] for s in sets if 0 < sum(s) < len(s))
    b = compute_rosenbaum_binary([m for m, _ in inf], [n for _, n in inf], t_inf, gamma)
    assert b["upper_ge"] == pytest.approx(hi, rel=1e-9, abs=1e-15)
    assert b["lower_ge"] == pytest.approx(lo, rel=1e-9, abs=1e-15)


@SETTINGS
@given(st.lists(st.integers(-5, 5), min_size=1, max_size=10), st.sampled_from([1.0, 2.0, 3.5]))
def test_signed_rank_sensitivity_bound_equals_enumeration(d, gamma):
    """Exact upper bound: P(sum r_i B_i >= T) over all 2^n sign patterns, B_i ~ Bernoulli(Gamma /
    (1 + Gamma))."""
    d = np.asarray(d, float)
    nz = d[d != 0]
    r = stats.rankdata(np.abs(nz))
    t = r[nz > 0].sum()
    p = gamma / (1 + gamma)
    total = sum(np.prod(np.where(np.array(s) == 1, p, 1 - p))
                for s in itertools.product([0, 1], repeat=nz.size) if np.dot(r, s) >= t - TOL)
    assert compute_rosenbaum_signed_rank(d, gamma)["p_upper"] == pytest.approx(total, rel=1e-9)


def naive_logrank(time, event, group, strata):
    """The textbook loop: one stratum and one event time at a time."""
    obs = exp = var = 0.0
    for s in np.unique(strata):
        m = strata == s
        t, e, g = time[m], event[m], group[m]
        for u in np.unique(t[e == 1]):
            at = t >= u
            n, n1 = at.sum(), (at & g).sum()
            d = ((t == u) & (e == 1)).sum()
            obs += ((t == u) & (e == 1) & g).sum()
            exp += d * n1 / n
            var += d * (n1 / n) * (1 - n1 / n) * (n - d) / max(n - 1, 1)
    return obs, exp, var


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 1), st.booleans(), st.integers(0, 3)),
                min_size=2, max_size=30))
def test_vectorised_logrank_equals_naive_loop(rows):
    """compute_logrank (one sort, cumulative sums) equals the per-stratum, per-time loop."""
    time, event, group, strata = (np.array(x) for x in zip(*rows))
    time = time.astype(float)
    obs, exp, var = naive_logrank(time, event, group, strata)
    res = compute_logrank(time, event, group, strata)
    assert res.observed == obs
    assert res.expected == pytest.approx(exp, rel=1e-12, abs=1e-12)
    assert res.variance == pytest.approx(var, rel=1e-12, abs=1e-12)
