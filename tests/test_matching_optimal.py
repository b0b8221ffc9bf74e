"""Optimal matching: totals against exact dense solves and brute force; pruned graph = dense optimum.

The objective (``_optimal.py``) is lexicographic: (1) as many treated patients matched as possible,
(2) then as many controls as possible, (3) then the smallest total distance. The references here
are independent of the package's solver: ``scipy.optimize.linear_sum_assignment`` on the dense
matrix (each treated patient repeated k times, a penalised "empty" column per slot), and plain
enumeration on tiny problems.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from scipy.special import logit

from controlarm.matching import match

REF = Path(__file__).parent / "reference"
PS_COVARIATES = ["age", "educ", "racehispan", "racewhite", "married", "nodegree", "re74", "re75"]


@pytest.fixture(scope="module")
def lalonde() -> pd.DataFrame:
    d = pd.read_csv(REF / "data" / "lalonde.csv")
    for level in ("black", "hispan", "white"):
        d["race" + level] = (d["race"] == level).astype(int)
    return d


def dense_lexicographic(D: np.ndarray, allowed: np.ndarray, k: int) -> tuple[int, int, float]:
    """(treated matched, controls matched, total distance) of the dense lexicographic optimum.

    linear_sum_assignment on rows = k slots per treated patient; columns = controls plus one private
    "empty" column per row. An empty first slot costs more than any change of the later objectives
    can save, an empty later slot likewise; forbidden pairs cost more than leaving the slot empty.
    """
    n_t, n_c = D.shape
    rows = n_t * k
    ub = float(D[allowed].max()) if allowed.any() else 1.0
    step = (ub + 1.0) * (rows + 1)
    C = np.full((rows, n_c + rows), 1e18)
    for t in range(n_t):
        for s in range(k):
            r = t * k + s
            C[r, :n_c] = np.where(allowed[t], D[t], 1e18)
            C[r, n_c + r] = 2 * step if s == 0 else step
    r, c = linear_sum_assignment(C)
    real = c < n_c
    t_of = r[real] // k
    return len(np.unique(t_of)), int(real.sum()), float(D[t_of, c[real]].sum())


def brute_force(D: np.ndarray, allowed: np.ndarray, k: int) -> tuple[int, int, float]:
    """Enumerate every assignment of controls to treated patients (each control to one treated or none)."""
    n_t, n_c = D.shape
    best = (-1, -1, -np.inf)
    for owner in itertools.product(range(-1, n_t), repeat=n_c):
        counts = np.bincount([o for o in owner if o >= 0], minlength=n_t)
        if (counts > k).any():
            continue
        if any(o >= 0 and not allowed[o, j] for j, o in enumerate(owner)):
            continue
        total = sum(D[o, j] for j, o in enumerate(owner) if o >= 0)
        key = (int((counts > 0).sum()), int(counts.sum()), -total)
        if key > best:
            best = key
    return best[0], best[1], -best[2]


def ours(res) -> tuple[int, int, float]:
    m = res.matched
    return res.n_sets, int((m["role"] == "control").sum()), float(m.loc[m["role"] == "control", "distance"].sum())


# --------------------------------------------------------------------------- lalonde
@pytest.mark.parametrize("k", [1, 2])
def test_lalonde_optimal_total_equals_dense_and_beats_greedy(lalonde, k):
    """Optimal 1:k on |logit PS difference|: total <= greedy's, and = a dense exact solve to 1e-9.

    R: MatchIt::matchit(..., method = "optimal", distance = "glm", link = "linear.logit", ratio = k)
    minimises the same total through optmatch; here the truth is the dense assignment itself.
    """
    kw = dict(treatment="treat", covariates=PS_COVARIATES, id_column="id", distance="logit_ps", ratio=k)
    opt = match(lalonde, method="optimal", **kw)
    greedy = match(lalonde, method="nearest", **kw)
    lin = logit(opt.ps_.to_numpy())
    t = lalonde["treat"].to_numpy() == 1
    D = np.abs(lin[t][:, None] - lin[~t][None, :])
    r, c = linear_sum_assignment(np.repeat(D, k, axis=0))
    dense_total = float(np.repeat(D, k, axis=0)[r, c].sum())
    total = opt.diagnostics["total_distance"]
    assert total == pytest.approx(dense_total, abs=1e-9)
    assert total <= greedy.diagnostics["total_distance"] + 1e-12
    # every treated patient gets exactly k distinct controls; the pair distances are the logit differences
    sets = opt.matched_sets
    assert (sets.groupby("treated_id").size() == k).all() and sets["control_id"].is_unique
    ids = lalonde["id"].to_numpy()
    pos = {v: i for i, v in enumerate(ids)}
    d_check = np.abs(lin[[pos[v] for v in sets["treated_id"]]] - lin[[pos[v] for v in sets["control_id"]]])
    np.testing.assert_allclose(sets["distance"], d_check, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k_nearest", [1, 3])
def test_lalonde_pruned_graph_reaches_the_same_optimum(lalonde, k_nearest):
    """Starting from K = 1 or 3 nearest candidates, widening stops only when the optimum is certified.

    A caliper that binds nobody (100 logit units) keeps the line algorithm out, so the widening
    path is the one tested; without it the line algorithm takes over and reaches the same total.
    """
    kw = dict(treatment="treat", covariates=PS_COVARIATES, id_column="id", distance="logit_ps", ratio=2,
              method="optimal")
    dense = match(lalonde, **kw)
    pruned = match(lalonde, k_nearest=k_nearest, caliper=100, caliper_units="raw", **kw)
    assert pruned.diagnostics["total_distance"] == pytest.approx(dense.diagnostics["total_distance"], abs=1e-9)
    rounds = pruned.diagnostics["method"]["rounds"]
    assert len(rounds) > 1 and rounds[-1]["uncertified"] == 0 and rounds[0]["uncertified"] > 0
    assert "LP duality" in pruned.diagnostics["method"]["certificate"]
    line = match(lalonde, k_nearest=k_nearest, **kw)
    assert line.diagnostics["method"]["solver"].startswith("dynamic programming")
    assert line.diagnostics["total_distance"] == pytest.approx(dense.diagnostics["total_distance"], abs=1e-9)


def test_lalonde_optimal_with_caliper_and_exact(lalonde):
    """Caliper 0.2 SD of the logit PS and exact race: as many treated matched as any solution can, then least distance."""
    kw = dict(treatment="treat", covariates=PS_COVARIATES, id_column="id", distance="logit_ps", ratio=2,
              caliper=0.2, exact=["race"])
    opt = match(lalonde, method="optimal", **kw)
    greedy = match(lalonde, method="nearest", **kw)
    lin = logit(opt.ps_.to_numpy())
    t = lalonde["treat"].to_numpy() == 1
    D = np.abs(lin[t][:, None] - lin[~t][None, :])
    race = lalonde["race"].to_numpy()
    allowed = (D <= opt.settings["caliper_raw"]) & (race[t][:, None] == race[~t][None, :])
    expected = dense_lexicographic(D, allowed, 2)
    got = ours(opt)
    assert got[:2] == expected[:2]
    assert got[2] == pytest.approx(expected[2], abs=1e-9)
    assert opt.n_sets >= greedy.n_sets


# --------------------------------------------------------------------------- property tests
def _problem(draw_seed: int, n_t: int, n_c: int, n_strata: int, caliper: float | None, ties: bool):
    rng = np.random.default_rng(draw_seed)
    score = rng.normal(size=n_t + n_c)
    if ties:
        score = np.round(score, 1)
    d = pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(n_t + n_c)],
        "t": np.r_[np.ones(n_t, int), np.zeros(n_c, int)],
        "x": score + rng.normal(scale=0.01, size=n_t + n_c),
        "s": rng.integers(0, n_strata, size=n_t + n_c),
    })
    tt = d["t"].to_numpy() == 1
    D = np.abs(score[tt][:, None] - score[~tt][None, :])
    M = pd.DataFrame(D, index=d["patient_id"][tt], columns=d["patient_id"][~tt])
    s = d["s"].to_numpy()
    allowed = s[tt][:, None] == s[~tt][None, :]
    if caliper is not None:
        allowed &= D <= caliper
    return d, M, D, allowed


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_t=st.integers(1, 8),
    n_c=st.integers(1, 25),
    n_strata=st.integers(1, 3),
    k=st.integers(1, 3),
    caliper=st.one_of(st.none(), st.floats(0.05, 1.5)),
    k_nearest=st.integers(1, 4),
    ties=st.booleans(),
)
def test_pruned_sparse_optimum_equals_dense_optimum(seed, n_t, n_c, n_strata, k, caliper, k_nearest, ties):
    """Random problems with exact strata and calipers: the pruned, widened, certified solve = the dense optimum."""
    d, M, D, allowed = _problem(seed, n_t, n_c, n_strata, caliper, ties)
    kw = dict(treatment="t", covariates=[], exact=["s"], ratio=k, method="optimal", distance_matrix=M)
    if caliper is not None:
        kw.update(caliper=caliper, caliper_units="raw")
    res = match(d, k_nearest=k_nearest, **kw)
    expected = dense_lexicographic(D, allowed, k)
    got = ours(res)
    assert got[:2] == expected[:2]
    assert got[2] == pytest.approx(expected[2], abs=1e-9)
    # restrictions respected
    sets = res.matched_sets
    s = d.set_index("patient_id")["s"]
    assert (s.loc[sets["treated_id"]].to_numpy() == s.loc[sets["control_id"]].to_numpy()).all()
    if caliper is not None:
        assert (sets["distance"] <= caliper).all()
    assert sets["control_id"].is_unique
    assert (sets.groupby("treated_id").size() <= k).all()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), n_t=st.integers(1, 3), n_c=st.integers(1, 5), k=st.integers(1, 2),
       caliper=st.one_of(st.none(), st.floats(0.1, 1.0)))
def test_objective_matches_brute_force_enumeration(seed, n_t, n_c, k, caliper):
    """Tiny problems: the lexicographic optimum found by enumerating every assignment."""
    d, M, D, allowed = _problem(seed, n_t, n_c, 2, caliper, False)
    kw = dict(treatment="t", covariates=[], exact=["s"], ratio=k, method="optimal", distance_matrix=M)
    if caliper is not None:
        kw.update(caliper=caliper, caliper_units="raw")
    got = ours(match(d, **kw))
    expected = brute_force(D, allowed, k)
    assert got[:2] == expected[:2]
    assert got[2] == pytest.approx(expected[2], abs=1e-12)


def test_variable_ratio_optimal_against_brute_force():
    """min 1, max 3, 5 controls in all for 3 treated: the best allocation, found by enumeration."""
    rng = np.random.default_rng(5)
    n_t, n_c = 3, 7
    D = rng.random((n_t, n_c))
    ids_t, ids_c = [f"T{i}" for i in range(n_t)], [f"C{j}" for j in range(n_c)]
    d = pd.DataFrame({"patient_id": ids_t + ids_c, "t": [1] * n_t + [0] * n_c})
    M = pd.DataFrame(D, index=ids_t, columns=ids_c)
    res = match(d, treatment="t", covariates=[], distance_matrix=M, method="optimal", ratio=5 / 3,
                min_controls=1, max_controls=3)
    best = np.inf
    for owner in itertools.product(range(-1, n_t), repeat=n_c):
        counts = np.bincount([o for o in owner if o >= 0], minlength=n_t)
        if counts.sum() != 5 or (counts < 1).any() or (counts > 3).any():
            continue
        best = min(best, sum(D[o, j] for j, o in enumerate(owner) if o >= 0))
    sizes = res.matched_sets.groupby("treated_id").size()
    assert sizes.sum() == 5 and sizes.min() >= 1 and sizes.max() <= 3
    assert res.diagnostics["total_distance"] == pytest.approx(best, abs=1e-12)
    assert res.incomplete_treated == ()  # owed only the minimum


def test_optimal_priority_matches_more_treated_before_distance():
    """T1 can use C1 or C2; T2 only C1. Optimal gives T2 C1 and T1 C2 even though T1-C1 is the cheapest pair."""
    d = pd.DataFrame({"patient_id": ["T1", "T2", "C1", "C2"], "t": [1, 1, 0, 0]})
    M = pd.DataFrame([[0.1, 5.0], [0.2, np.inf]], index=["T1", "T2"], columns=["C1", "C2"])
    res = match(d, treatment="t", covariates=[], distance_matrix=M, method="optimal")
    assert res.match_matrix.loc["T2", 1] == "C1" and res.match_matrix.loc["T1", 1] == "C2"
    greedy = match(d, treatment="t", covariates=[], distance_matrix=M, method="nearest")
    assert greedy.match_matrix.loc["T1", 1] == "C1" and greedy.unmatched_treated == ("T2",)
    assert greedy.audit.set_index("treated_id").loc["T2", "reason"] == "1 of 1 eligible candidate(s) went to other treated patients"


def _match_on_score(d: pd.DataFrame, score: np.ndarray, **kw):
    """Optimal matching on a given score (the PS fit is replaced by one returning it as the logit)."""
    from controlarm.matching import _api
    from controlarm.matching._propensity import PropensityFit

    def given(X, treat, names, model="logistic"):
        coef = pd.Series([0.0] * (len(names) + 1), index=["(Intercept)", *names])
        return PropensityFit(coef=coef, ps=1 / (1 + np.exp(-score)), linear=score.astype(float), model="given",
                             converged=True)

    original = _api.fit_propensity
    _api.fit_propensity = given
    try:
        return match(d, distance="logit_ps", method="optimal", **kw)
    finally:
        _api.fit_propensity = original


@settings(max_examples=50, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), n_t=st.integers(1, 6), extra=st.integers(0, 12), k=st.integers(1, 3),
       n_strata=st.integers(1, 2), k_nearest=st.integers(1, 3), ties=st.booleans(), shift=st.floats(0, 2))
def test_line_algorithm_equals_dense_optimum(seed, n_t, extra, k, n_strata, k_nearest, ties, shift):
    """Score distances, every slot fillable: the line algorithm (used when round 1 cannot be certified)
    and the certified sparse solve both reach the dense optimum."""
    rng = np.random.default_rng(seed)
    strata_t = rng.integers(0, n_strata, size=n_t)
    strata_c = np.concatenate([np.repeat(np.arange(n_strata), [k * int((strata_t == s).sum()) for s in range(n_strata)]),
                               rng.integers(0, n_strata, size=extra)])
    n_c = len(strata_c)
    score = np.r_[rng.normal(shift, 1, size=n_t), rng.normal(size=n_c)]
    if ties:
        score = np.round(score, 1)
    d = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n_t + n_c)], "t": np.r_[np.ones(n_t, int), np.zeros(n_c, int)],
                      "s": np.r_[strata_t, strata_c], "x": score})
    res = _match_on_score(d, score, treatment="t", covariates=["x"], ratio=k, exact=["s"] if n_strata > 1 else [],
                          k_nearest=k_nearest)
    D = np.abs(score[:n_t][:, None] - score[n_t:][None, :])
    allowed = d["s"].to_numpy()[:n_t][:, None] == d["s"].to_numpy()[n_t:][None, :]
    expected = dense_lexicographic(D, allowed, k)
    got = ours(res)
    assert got[:2] == expected[:2] == (n_t, n_t * k)
    assert got[2] == pytest.approx(expected[2], abs=1e-9)


def test_line_algorithm_takes_over_in_a_contested_pool():
    """All treated above all candidates: the first pruned round cannot be certified, the line solves it."""
    rng = np.random.default_rng(2)
    n_t, n_c, k = 40, 150, 3
    score = np.r_[rng.normal(3, 0.3, size=n_t), rng.normal(0, 1, size=n_c)]
    d = pd.DataFrame({"patient_id": range(n_t + n_c), "t": np.r_[np.ones(n_t, int), np.zeros(n_c, int)], "x": score})
    res = _match_on_score(d, score, treatment="t", covariates=["x"], ratio=k, k_nearest=5)
    info = res.diagnostics["method"]
    assert info["solver"].startswith("dynamic programming") and info["rounds"][0]["uncertified"] > 0
    D = np.abs(score[:n_t][:, None] - score[n_t:][None, :])
    r, c = linear_sum_assignment(np.repeat(D, k, axis=0))
    assert res.diagnostics["total_distance"] == pytest.approx(float(np.repeat(D, k, axis=0)[r, c].sum()), abs=1e-9)
