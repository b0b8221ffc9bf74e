"""The audit room: seed-study audit checked against an independent patient-level brute force.

The brute force enumerates, with ``itertools.combinations``, every choice of which control (and
treated) patients had the event, and computes the exact conditional and CMH p-values with its own
short formulas; the audit's enumeration, weights and tests must agree with it.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from controlarm.audit import COMMON_TESTS, audit_matched_binary
from controlarm.errors import InputError


def _exact_two_sided(sizes, t, c):
    """Exact conditional two-sided p by enumerating treated-event vectors (own formula)."""
    m = [ti + ci for ti, ci in zip(t, c)]
    inf = [i for i in range(len(sizes)) if 0 < m[i] < sizes[i]]
    probs = Counter()
    for bits in itertools.product((0, 1), repeat=len(inf)):
        pr = 1.0
        for i, b in zip(inf, bits):
            q = m[i] / sizes[i]
            pr *= q if b else 1 - q
        probs[sum(bits)] += pr
    s_obs = sum(t[i] for i in inf)
    p_obs = probs[s_obs]
    return min(1.0, sum(p for p in probs.values() if p <= p_obs * (1 + 1e-7)))


def _cmh(sizes, t, c):
    o_e = v = 0.0
    for n, ti, ci in zip(sizes, t, c):
        m = ti + ci
        o_e += ti - m / n
        v += m * (n - m) * 1 * (n - 1) / (n**2 * (n - 1)) if n > 1 else 0.0
    return stats.chi2.sf(o_e**2 / v, 1) if v > 0 else None


def _brute(sizes, te, ce):
    """Patient-level enumeration: {(t tuple, c tuple): number of patient configurations}."""
    ctrl_set = [s for s, n in enumerate(sizes) for _ in range(n - 1)]
    out = Counter()
    for tr in itertools.combinations(range(len(sizes)), te):
        t = tuple(int(i in tr) for i in range(len(sizes)))
        for dead in itertools.combinations(range(len(ctrl_set)), ce):
            c = [0] * len(sizes)
            for j in dead:
                c[ctrl_set[j]] += 1
            out[(t, tuple(c))] += 1
    return out


def _brute_summary(sizes, te, ce, fn):
    configs = _brute(sizes, te, ce)
    cache, vals, weights = {}, [], []
    for (t, c), w in configs.items():
        if (t, c) not in cache:
            cache[(t, c)] = fn(sizes, t, c)
        vals.append(cache[(t, c)])
        weights.append(w)
    vals, weights = np.array(vals, float), np.array(weights, float)
    o = np.argsort(vals, kind="stable")
    cw = np.cumsum(weights[o])
    median = vals[o][np.searchsorted(cw, 0.5 * cw[-1])]
    return {"min": vals.min(), "median": median, "max": vals.max(),
            "share": weights[vals < 0.05].sum() / weights.sum(), "n": weights.sum(),
            "n_tables": len(configs)}


@pytest.mark.parametrize("deaths, paper_pvalue", [(5, 0.0253), (7, 0.0082)])
def test_seed_study_identifies_uncorrected_mcnemar(deaths, paper_pvalue):
    """Seed study (8 treated, 1:3, 0 vs 5 and 0 vs 7 deaths): only McNemar without correction
    on pseudo-pairs (and its algebraic twin, log-rank by pseudo-pair) gives the paper's p.
    R: ``mcnemar.test(matrix(c(0, 5, 0, 19), 2), correct = FALSE)$p.value`` = 0.02534732."""
    res = audit_matched_binary((8, 3), 0, deaths, published_p=paper_pvalue)
    assert res.identified == ("mcnemar_pseudo_pairs", "logrank_pseudo_pairs")
    cand = {c["name"]: c for c in res.candidates}
    p = cand["mcnemar_pseudo_pairs"]["p_min"]
    assert p == cand["mcnemar_pseudo_pairs"]["p_max"]
    assert round(p, 4) == paper_pvalue
    assert p == pytest.approx(stats.chi2.sf(deaths, 1), rel=1e-12)
    # the other common tests do not reproduce it (seed_study.md)
    assert cand["mcnemar_pseudo_pairs_cc"]["p_min"] == pytest.approx(
        {5: 0.0736, 7: 0.0233}[deaths], abs=5e-5)
    assert cand["mcnemar_pseudo_pairs_exact"]["p_min"] == pytest.approx(0.5 ** (deaths - 1))
    assert cand["fisher_arms"]["p_min"] == pytest.approx({5: 0.296, 7: 0.150}[deaths], abs=5e-4)


@pytest.mark.parametrize("deaths", [5, 7])
def test_seed_study_range_and_share_match_brute_force(deaths):
    sizes = [4] * 8
    res = audit_matched_binary((8, 3), 0, deaths)
    assert res.enumerated
    for name, fn in (("exact_conditional", _exact_two_sided), ("mantel_haenszel", _cmh)):
        b = _brute_summary(sizes, 0, deaths, fn)
        d = res.distribution[name]
        assert d["min"] == pytest.approx(b["min"], rel=1e-9)
        assert d["median"] == pytest.approx(b["median"], rel=1e-9)
        assert d["max"] == pytest.approx(b["max"], rel=1e-9)
        assert d["share_below_alpha"] == pytest.approx(b["share"], rel=1e-9)
    assert res.n_patient_configurations == b["n"] == math.comb(24, deaths)
    assert res.n_set_tables == b["n_tables"]
    w = res.allocations
    assert w["w_patient"].sum() == pytest.approx(1.0) and w["w_table"].sum() == pytest.approx(1.0)


def test_seed_study_day28_numbers():
    """The numbers the report quotes (regression snapshot, brute-force checked above)."""
    d = audit_matched_binary((8, 3), 0, 5).distribution
    assert d["exact_conditional"]["min"] == pytest.approx(0.125)  # 3 + 2 deaths: 1/4 * 2/4
    assert d["exact_conditional"]["max"] == pytest.approx(0.3408203125)
    assert d["mantel_haenszel"]["min"] == pytest.approx(0.05878, abs=5e-6)
    assert d["mantel_haenszel_cc"]["max"] == pytest.approx(0.4386, abs=5e-5)
    assert all(v["share_below_alpha"] == 0 for v in d.values())


def test_unequal_sets_with_treated_events_match_brute_force():
    sizes = [2, 3, 3, 4, 4]
    res = audit_matched_binary(sizes, 1, 4)
    for name, fn in (("exact_conditional", _exact_two_sided), ("mantel_haenszel", _cmh)):
        b = _brute_summary(sizes, 1, 4, fn)
        d = res.distribution[name]
        assert (d["min"], d["median"], d["max"]) == pytest.approx((b["min"], b["median"], b["max"]))
        assert d["share_below_alpha"] == pytest.approx(b["share"])
    assert res.n_set_tables == b["n_tables"]
    assert res.n_patient_configurations == b["n"]


def test_logrank_by_set_equals_cmh_without_censoring():
    a = audit_matched_binary([3, 4, 4, 5, 4], 1, 6).allocations
    np.testing.assert_allclose(a["logrank_by_set"], a["mantel_haenszel"], rtol=1e-10)


def test_sampling_agrees_with_enumeration_within_mc_error():
    full = audit_matched_binary((12, 3), 1, 14)
    samp = audit_matched_binary((12, 3), 1, 14, max_enumeration=5, n_samples=4000, seed=3)
    assert full.enumerated and not samp.enumerated
    for name in ("exact_conditional", "mantel_haenszel"):
        f, s = full.distribution[name], samp.distribution[name]
        assert abs(f["share_below_alpha"] - s["share_below_alpha"]) <= 4 * s["mc_se"] + 1e-12
        assert s["share_below_alpha_tables"] is None  # not estimated from patient-level draws
    again = audit_matched_binary((12, 3), 1, 14, max_enumeration=5, n_samples=4000, seed=3)
    assert again.to_dict() == samp.to_dict()


def test_rosenbaum_gamma_and_fragility():
    res = audit_matched_binary((8, 3), 0, 7)
    g = res.allocations["rosenbaum_gamma"]
    assert (g >= 1).all() and g.max() > 1  # only the most clumped allocations are significant
    assert res.fragility["kind"] == "reverse fragility" and res.fragility["index"] == 3


def test_result_renders_and_is_json_ready():
    import json

    res = audit_matched_binary((8, 3), 0, 5, published_p=0.025,
                               published_test="mcnemar_pseudo_pairs")
    json.dumps(res.to_dict(), allow_nan=False)
    assert res.published_test_p == pytest.approx((0.0253473, 0.0253473), rel=1e-5)
    assert list(res.summary().columns[:3]) == ["min", "median", "max"]
    assert "mcnemar_pseudo_pairs" in res.to_text()
    assert set(res.candidates_table().index) == set(COMMON_TESTS)


@pytest.mark.parametrize("args, kw, match", [
    (((8, 3), 0, 25), {}, "control_events must be an integer from 0 to 24"),
    (((8, 3), 9, 0), {}, "treated_events"),
    (([4, 1], 0, 1), {}, "set_sizes"),
    (((8, 3), 0, 5), {"published_test": "t-test"}, "published_test must be one of"),
])
def test_input_errors(args, kw, match):
    with pytest.raises(InputError, match=match):
        audit_matched_binary(*args, **kw)


def test_compute_cmh_equals_statsmodels():
    """R: mantelhaen.test(array(...), correct = FALSE / TRUE) == statsmodels test_null_odds."""
    from statsmodels.stats.contingency_tables import StratifiedTable

    from controlarm.audit import compute_cmh

    rng = np.random.default_rng(7)
    for _ in range(30):
        k = rng.integers(1, 5, 8)
        t = rng.integers(0, 2, 8)
        c = rng.integers(0, k + 1)
        tab = np.stack([np.stack([t, 1 - t], 1), np.stack([c, k - c], 1)], 1)
        st = StratifiedTable(tab.transpose(1, 2, 0).astype(float))
        for corr in (False, True):
            ours = compute_cmh(tab, correction=corr)
            if ours is None:
                continue
            delta = abs((tab[:, 0, 0] - tab[:, 0].sum(1) * tab[:, :, 0].sum(1) / tab.sum((1, 2))).sum())
            ref = st.test_null_odds(correction=corr and delta >= 0.5).pvalue
            assert ours == pytest.approx(ref, rel=1e-10)
    assert compute_cmh(np.array([[[1, 0], [2, 0]]])) is None  # no informative table


@pytest.mark.parametrize("design, te, ce", [
    ((8, 3), 0, 5), ((8, 3), 0, 7), ([2, 3, 3, 4, 4], 1, 4), ([3, 4, 4, 5, 4], 1, 6),
    ((12, 3), 1, 14), ((12, 3), 6, 2), ((5, 1), 2, 4), ((20, 2), 3, 30), ((10, 4), 0, 0),
    ((6, 3), 6, 18),
])
def test_vectorised_tests_equal_the_reference_path(design, te, ce):
    """``_batch.batch_tests`` (all allocations at once, what the audit uses) against
    ``_audit._config_tests`` (the analysis room's one-table functions, one allocation at a time)
    on every enumerated allocation: CMH and the pseudo-pair tests bit for bit, the exact
    conditional and log-rank p-values to summation order (rtol 1e-12), Rosenbaum's Gamma to the
    reference's Brent tolerance (xtol 1e-7 on log Gamma)."""
    from controlarm.audit._allocations import Design, enumerate_allocations
    from controlarm.audit._audit import _config_tests, _set_sizes
    from controlarm.audit._batch import TEST_COLUMNS, batch_tests, config_tests

    cfgs = [c for c, _, _ in enumerate_allocations(Design(_set_sizes(design) - 1), te, ce)]
    new = batch_tests(np.stack(cfgs), 0.05)
    exact_bits = {"mantel_haenszel", "mantel_haenszel_cc", "mcnemar_pseudo_pairs",
                  "mcnemar_pseudo_pairs_cc", "mcnemar_pseudo_pairs_exact",
                  "mcnemar_pseudo_pairs_midp", "logrank_pseudo_pairs", "b_pseudo_pairs",
                  "c_pseudo_pairs"}
    for i, cfg in enumerate(cfgs):
        old = _config_tests(cfg, 0.05)
        one = config_tests(cfg, 0.05)
        for name in TEST_COLUMNS:
            o, v = old[name], new[name][i]
            assert one[name] == (None if np.isnan(v) else v)
            if o is None:
                assert np.isnan(v), (name, cfg.tolist())
            elif name in exact_bits:
                assert v == o, (name, cfg.tolist())
            elif name == "rosenbaum_gamma":
                assert v == pytest.approx(o, rel=1e-6), cfg.tolist()
            else:
                assert v == pytest.approx(o, rel=1e-12, abs=1e-300), (name, cfg.tolist())


def test_vectorised_tests_on_a_sampled_large_design():
    """The benchmark's 50-set 1:4 design (5 vs 60 deaths), 200 sampled allocations."""
    from controlarm.audit._allocations import Design, sample_allocations
    from controlarm.audit._audit import _config_tests
    from controlarm.audit._batch import TEST_COLUMNS, batch_tests

    arr, _ = sample_allocations(Design(np.full(50, 4)), 5, 60, 200, 0)
    new = batch_tests(arr, 0.05)
    assert (new["rosenbaum_gamma"] > 1).any()
    for i in range(len(arr)):
        old = _config_tests(arr[i], 0.05)
        for name in TEST_COLUMNS:
            tol = 1e-6 if name == "rosenbaum_gamma" else 1e-12
            assert new[name][i] == pytest.approx(old[name], rel=tol), name
