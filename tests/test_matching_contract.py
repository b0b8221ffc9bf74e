"""Contract suite of the matching room (STYLE.md item 13), distance checks, and error messages.

Every configuration of ``match()`` (greedy and optimal, with and without replacement, fixed and
variable ratio, every distance, calipers on the distance and on covariates, common-support discard)
must: leave its input untouched, give the same sets for the same seed, give no treated patient more
than it may get, never reuse a control unless replacement is on, respect exact strata and the
calipers, account for every treated patient in the audit, and pickle.
"""

from __future__ import annotations

import doctest
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist, mahalanobis

from controlarm.errors import BalanceWarning, InputError, SmallSampleWarning
from controlarm.matching import MatchResult, balance_table, check_balance, match

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def nuclear() -> pd.DataFrame:
    """optmatch::nuclearplants: 32 plants, pr = 1 for the 10 'treated' (partial turnkey) plants."""
    return pd.read_csv(REF / "data" / "nuclearplants.csv")


@pytest.fixture(scope="module")
def lalonde() -> pd.DataFrame:
    d = pd.read_csv(REF / "data" / "lalonde.csv")
    for level in ("black", "hispan", "white"):
        d["race" + level] = (d["race"] == level).astype(int)
    return d.rename(columns={"id": "patient_id"})


LALONDE_COVS = ["age", "educ", "racehispan", "racewhite", "married", "nodegree", "re74", "re75"]

CONFIGS = {
    "maha_1to1": dict(distance="mahalanobis", covariates=["age", "educ", "re74", "re75"]),
    "maha_1to2_exact_caliper": dict(distance="mahalanobis", covariates=["age", "educ", "re74", "re75"], ratio=2,
                                    exact=["married"], caliper=1.0, caliper_units="raw"),
    "maha_random": dict(distance="mahalanobis", covariates=["age", "educ", "re74"], order="random", seed=11),
    "ps_1to3": dict(distance="ps", covariates=LALONDE_COVS, ratio=3),
    "logit_caliper_exact": dict(distance="logit_ps", covariates=LALONDE_COVS, ratio=2, caliper=0.1, exact=["race"]),
    "ps_random_smallest": dict(distance="ps", covariates=LALONDE_COVS, order="random", seed=3),
    "ps_smallest": dict(distance="ps", covariates=LALONDE_COVS, order="smallest", ratio=2),
    "ps_replace_1to3": dict(distance="ps", covariates=LALONDE_COVS, ratio=3, replace=True),
    "ps_variable_greedy": dict(distance="ps", covariates=LALONDE_COVS, ratio=2, min_controls=1, max_controls=4),
    "ps_discard_both": dict(distance="ps", covariates=LALONDE_COVS, discard="both", caliper=0.5),
    "logit_covariate_calipers": dict(distance="logit_ps", covariates=LALONDE_COVS, ratio=2,
                                     covariate_calipers={"age": 5, "educ": 1}),
    "robust_maha_random": dict(distance="robust_mahalanobis", covariates=["age", "educ", "re74", "re75"],
                               order="random", seed=5, covariate_calipers={"age": 0.5}, covariate_caliper_units="sd"),
    "optimal_logit_1to2": dict(distance="logit_ps", covariates=LALONDE_COVS, ratio=2, method="optimal"),
    "optimal_maha_exact_caliper": dict(distance="mahalanobis", covariates=["age", "educ", "re74", "re75"], ratio=2,
                                       exact=["married"], caliper=1.0, method="optimal", k_nearest=5),
    "optimal_variable": dict(distance="logit_ps", covariates=LALONDE_COVS, ratio=1.5, min_controls=1,
                             max_controls=3, method="optimal"),
    "optimal_replace": dict(distance="robust_mahalanobis", covariates=["age", "educ", "re74"], ratio=2,
                            replace=True, method="optimal"),
}


@pytest.fixture(scope="module")
def results(lalonde) -> dict[str, MatchResult]:
    original = lalonde.copy(deep=True)
    out = {name: match(lalonde, treatment="treat", **kw) for name, kw in CONFIGS.items()}
    pd.testing.assert_frame_equal(lalonde, original)  # input not mutated, by any configuration
    return out


@pytest.mark.parametrize("name", CONFIGS)
def test_input_not_mutated(lalonde, name):
    before = lalonde.copy(deep=True)
    match(lalonde, treatment="treat", **CONFIGS[name])
    pd.testing.assert_frame_equal(lalonde, before)


@pytest.mark.parametrize("name", CONFIGS)
def test_same_seed_same_sets(lalonde, results, name):
    again = match(lalonde, treatment="treat", **CONFIGS[name])
    pd.testing.assert_frame_equal(again.matched, results[name].matched)
    pd.testing.assert_frame_equal(again.match_matrix, results[name].match_matrix)


def test_different_seed_changes_random_order(lalonde, results):
    kw = dict(CONFIGS["maha_random"], seed=12)
    other = match(lalonde, treatment="treat", **kw)
    assert other.settings["seed"] == 12
    assert not other.matched.equals(results["maha_random"].matched)


@pytest.mark.parametrize("name", CONFIGS)
def test_set_structure(lalonde, results, name):
    res, kw = results[name], CONFIGS[name]
    k = kw.get("max_controls", kw.get("ratio", 1))
    m = res.matched
    assert list(m.columns[:4]) == ["set_id", "patient_id", "role", "weight"]
    roles = m.groupby("set_id")["role"].value_counts().unstack(fill_value=0)
    assert (roles["treated"] == 1).all()
    assert ((roles["control"] >= 1) & (roles["control"] <= k)).all()  # no treated gets more than allowed
    controls = m.loc[m["role"] == "control", "patient_id"]
    if kw.get("replace"):
        assert (m[m["role"] == "control"].groupby("set_id")["patient_id"].nunique() == roles["control"]).all()
    else:
        assert controls.is_unique  # no control reused
    treat = lalonde.set_index("patient_id")["treat"]
    assert (treat.loc[controls] == 0).all()
    assert (treat.loc[m.loc[m["role"] == "treated", "patient_id"]] == 1).all()
    assert list(m["set_id"].unique()) == list(range(1, res.n_sets + 1))
    assert m["set_id"].is_monotonic_increasing
    # slots are numbered 1..n within each set (greedy: the round; optimal: rank by distance)
    for _, g in m[m["role"] == "control"].groupby("set_id"):
        assert list(g["match_round"]) == list(range(1, len(g) + 1))
    if kw.get("method") == "optimal":
        for _, g in m[m["role"] == "control"].groupby("set_id"):
            assert g["distance"].is_monotonic_increasing
    # every treated patient is in the audit, with a reason when short
    audit = res.audit
    assert len(audit) == res.n_treated == int(treat.sum())
    assert set(res.unmatched_treated) == set(audit.loc[audit["n_matched"] == 0, "treated_id"])
    assert set(res.incomplete_treated) == set(audit.loc[audit["status"] == "incomplete", "treated_id"])
    assert (audit.loc[audit["status"] != "matched", "reason"] != "").all()
    assert (audit["n_eligible"] <= audit["n_in_stratum"]).all()
    assert res.n_sets + len(res.unmatched_treated) == res.n_treated
    # the pair table agrees with the tidy table
    sets = res.matched_sets
    assert list(sets.columns) == ["set_id", "treated_id", "control_id", "slot", "distance"]
    assert len(sets) == len(controls)
    assert res.diagnostics["total_distance"] == pytest.approx(float(sets["distance"].sum()), rel=1e-12)


@pytest.mark.parametrize("name", CONFIGS)
def test_exact_and_caliper_respected(lalonde, results, name):
    res, kw = results[name], CONFIGS[name]
    m = res.matched.merge(lalonde, on="patient_id")
    for col in kw.get("exact", []):
        assert (m.groupby("set_id")[col].nunique() == 1).all()
    if kw.get("caliper") is not None:
        assert (res.matched["distance"] <= res.settings["caliper_raw"]).all()
    for col, raw in (res.settings.get("covariate_calipers_raw") or {}).items():
        spread = m.groupby("set_id")[col].agg(lambda x: x.max() - x.min())
        t_val = m[m["role"] == "treated"].set_index("set_id")[col]
        c = m[m["role"] == "control"]
        assert (np.abs(c[col].to_numpy() - t_val.loc[c["set_id"]].to_numpy()) <= raw + 1e-12).all(), spread.max()
    if kw.get("discard", "none") != "none":
        disc = res.audit.loc[res.audit["status"] == "discarded", "treated_id"]
        assert not set(disc) & set(res.matched["patient_id"])
        assert res.summary().loc["Discarded", "Treated"] == len(disc)


@pytest.mark.parametrize("name", CONFIGS)
def test_result_pickles(results, name):
    res = results[name]
    back = pickle.loads(pickle.dumps(res))
    pd.testing.assert_frame_equal(back.matched, res.matched)
    assert back.settings == res.settings
    assert back.match_matrix.equals(res.match_matrix)
    with pytest.raises(AttributeError):
        res.method = "optimal"  # type: ignore[misc]


def test_ps_distance_column_is_score_difference(results):
    res = results["logit_caliper_exact"]
    m = res.matched
    lin = np.log(m["ps"] / (1 - m["ps"]))
    t_lin = lin.where(m["role"] == "treated").groupby(m["set_id"]).transform("max")
    ctrl = m["role"] == "control"
    np.testing.assert_allclose(m.loc[ctrl, "distance"], (lin - t_lin).abs()[ctrl], rtol=1e-9)
    assert (m.loc[~ctrl, "distance"] == 0).all()


# --------------------------------------------------------------------------- Mahalanobis
def _pooled_cov(X: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Textbook pooled within-group covariance: ((n1-1) S1 + (n0-1) S0) / (n - 2)."""
    X1, X0 = X[t == 1], X[t == 0]
    return ((len(X1) - 1) * np.cov(X1.T) + (len(X0) - 1) * np.cov(X0.T)) / (len(X) - 2)


def _greedy_reference(D: np.ndarray, k: int) -> list[list[int]]:
    """Brute-force greedy k:1 in rounds, data order, ties to the first control (independent of the package)."""
    used: set[int] = set()
    sets: list[list[int]] = [[] for _ in range(D.shape[0])]
    for _ in range(k):
        for i in range(D.shape[0]):
            free = [j for j in range(D.shape[1]) if j not in used]
            if not free:
                continue
            j = min(free, key=lambda c: (D[i, c], c))
            used.add(j)
            sets[i].append(j)
    return sets


@pytest.mark.parametrize("ratio", [1, 2])
def test_mahalanobis_nuclearplants_matches_scipy_and_brute_force(nuclear, ratio):
    """Distance = scipy mahalanobis with the pooled within-group covariance (MatchIt mahalanobis_dist)."""
    covs = ["date", "cap"]
    res = match(nuclear, treatment="pr", covariates=covs, id_column="id", ratio=ratio)
    X = nuclear[covs].to_numpy(float)
    t = nuclear["pr"].to_numpy()
    S = _pooled_cov(X, t)
    np.testing.assert_allclose(res.covariance_.to_numpy(), S, rtol=1e-12)
    VI = np.linalg.inv(S)
    ids = nuclear["id"].to_numpy()
    row = {pid: i for i, pid in enumerate(ids)}
    m = res.matched
    treated_of = m[m["role"] == "treated"].set_index("set_id")["patient_id"]
    for _, r in m[m["role"] == "control"].iterrows():
        u, v = X[row[treated_of[r["set_id"]]]], X[row[r["patient_id"]]]
        assert r["distance"] == pytest.approx(mahalanobis(u, v, VI), rel=1e-10)
    D = cdist(X[t == 1], X[t == 0], metric="mahalanobis", VI=VI)
    expected = _greedy_reference(D, ratio)
    ids1, ids0 = ids[t == 1], ids[t == 0]
    for i, tid in enumerate(ids1):
        assert [c for c in res.match_matrix.loc[tid] if c is not None] == [ids0[j] for j in expected[i]]
    assert "pooled within-group covariance" in res.settings["covariance"]
    assert res.settings["order"] == "data"


def test_mahalanobis_hand_computed():
    """Two covariates, 2 treated, 3 controls: S, S^-1 and one distance worked by hand.

    Treated (0,0), (2,2): centred (-1,-1), (1,1). Controls (0,1), (1,0), (2,2): mean (1,1);
    centred (-1,0), (0,-1), (1,1). SSCP = [[4,3],[3,4]]; S = SSCP / (5-2) = [[4/3,1],[1,4/3]];
    S^-1 = (3/7) [[4,-3],[-3,4]]. d(T1=(0,0), C1=(0,1)) = sqrt(4 * 3/7) = sqrt(12/7).
    """
    d = pd.DataFrame(
        {"patient_id": ["T1", "T2", "C1", "C2", "C3"], "t": [1, 1, 0, 0, 0],
         "x": [0.0, 2.0, 0.0, 1.0, 2.0], "y": [0.0, 2.0, 1.0, 0.0, 2.0]}
    )
    res = match(d, treatment="t", covariates=["x", "y"])
    np.testing.assert_allclose(res.covariance_.to_numpy(), [[4 / 3, 1], [1, 4 / 3]], rtol=1e-14)
    # T1 is equidistant (sqrt(12/7)) from C1 and C2: the tie goes to C1, first in data order
    assert res.match_matrix.loc["T1", 1] == "C1"
    assert res.matched.set_index("patient_id").loc["C1", "distance"] == pytest.approx(np.sqrt(12 / 7), rel=1e-14)
    assert res.match_matrix.loc["T2", 1] == "C3"
    assert res.matched.set_index("patient_id").loc["C3", "distance"] == 0.0


def test_identical_controls_get_identical_scores(lalonde):
    """Identical covariate rows must get bit-identical scores, or ties are broken by rounding noise."""
    res = match(lalonde, treatment="treat", covariates=LALONDE_COVS, distance="ps")
    ps = res.ps_
    twins = lalonde.duplicated(subset=LALONDE_COVS, keep=False)
    groups = lalonde[twins].groupby(LALONDE_COVS)["patient_id"].apply(list)
    assert len(groups) > 0
    for ids in groups:
        assert ps.loc[ids].nunique() == 1


# --------------------------------------------------------------------------- errors
def _small() -> pd.DataFrame:
    return pd.DataFrame(
        {"patient_id": [f"P{i}" for i in range(8)], "t": [1, 1, 0, 0, 0, 0, 0, 0],
         "age": [50.0, 60, 52, 58, 70, 45, 61, 49], "sofa": [3.0, 7, 4, 6, 2, 5, 8, 3],
         "site": ["a", "b", "a", "b", "a", "b", "a", "b"]}
    )


def test_missing_covariate_names_column_count_and_ids():
    d = _small()
    d.loc[[2, 4, 5], "sofa"] = np.nan
    with pytest.raises(InputError, match=r"'sofa' has missing values in 3 row\(s\) \(ids: P2, P4, P5\)"):
        match(d, treatment="t", covariates=["age", "sofa"])
    d2 = _small()
    d2["sofa"] = np.nan
    with pytest.raises(InputError, match=r"8 row\(s\) \(ids: P0, P1, P2, P3, P4, \.\.\.\)"):
        match(d2, treatment="t", covariates=["age", "sofa"])


def test_missing_exact_column_is_reported():
    d = _small()
    d.loc[0, "site"] = None
    with pytest.raises(InputError, match=r"exact column 'site' has missing values in 1 row\(s\) \(ids: P0\)"):
        match(d, treatment="t", covariates=["age"], exact=["site"])


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(replace=1), "replace must be True or False"),
        (dict(method="risk_set"), r"risk_set_match\(treated, candidates"),
        (dict(method="greedy"), "method must be one of 'nearest', 'optimal'"),
        (dict(distance="euclidean"), "distance must be one of"),
        (dict(order="largest"), "with this distance use order 'data' or 'random'"),
        (dict(ratio=2, min_controls=1, max_controls=3), "greedy variable-ratio matching allocates controls by propensity"),
        (dict(ratio=3, max_controls=3, distance="ps"), "min_controls < ratio < max_controls"),
        (dict(min_controls=1), "needs max_controls"),
        (dict(discard="both"), "needs distance 'ps' or 'logit_ps'"),
        (dict(distance="matrix"), "needs distance_matrix="),
        (dict(covariate_calipers={"age": -1}), r"covariate_calipers\['age'\] must be a positive number"),
        (dict(covariate_calipers={"nope": 1}), r"no column\(s\) \['nope'\]"),
        (dict(ps_model="probit", distance="ps"), "ps_model must be one of"),
        (dict(k_nearest=0, method="optimal"), "k_nearest must be an integer >= 1"),
        (dict(caliper=0.2, caliper_units="sd"), "caliper_units='raw'"),
        (dict(caliper=-1.0, caliper_units="raw"), "caliper must be a positive number"),
        (dict(ratio=0), "ratio must be an integer >= 1"),
        (dict(ratio=1.5), "ratio must be an integer >= 1"),
        (dict(covariates=["age", "nope"]), r"no column\(s\) \['nope'\]"),
        (dict(covariates=["site"]), "must be numeric"),
        (dict(exact=["age"]), "both a distance covariate and an exact stratum"),
        (dict(id_column="t"), "must be unique"),
    ],
)
def test_bad_arguments_raise_input_error(kw, message):
    args = dict(treatment="t", covariates=["age", "sofa"])
    args.update(kw)
    with pytest.raises(InputError, match=message):
        match(_small(), **args)


def test_bad_treatment_values():
    d = _small()
    d.loc[0, "t"] = 2
    with pytest.raises(InputError, match="must hold 1 .treated. and 0"):
        match(d, treatment="t", covariates=["age"])
    d = _small()
    d["t"] = 0
    with pytest.raises(InputError, match="at least one treated and one candidate control"):
        match(d, treatment="t", covariates=["age"])


def test_boolean_treatment_accepted():
    d = _small()
    d["t"] = d["t"].astype(bool)
    res = match(d, treatment="t", covariates=["age", "sofa"])
    assert res.n_treated == 2 and res.n_candidates == 6


def test_constant_covariate_named_for_mahalanobis_and_ps():
    d = _small().assign(const=1.0)
    with pytest.raises(InputError, match="covariate 'const' has no variation within"):
        match(d, treatment="t", covariates=["age", "const"])
    with pytest.raises(InputError, match="covariate 'const' is constant"):
        match(d, treatment="t", covariates=["age", "const"], distance="ps")


def test_collinear_covariate_named():
    d = _small()
    d["age2"] = 2 * d["age"] + 1
    with pytest.raises(InputError, match="covariate 'age2' is .*linear combination"):
        match(d, treatment="t", covariates=["age", "sofa", "age2"])
    with pytest.raises(InputError, match="covariate 'age2' is a linear combination"):
        match(d, treatment="t", covariates=["age", "sofa", "age2"], distance="ps")


def test_ignored_arguments_warn():
    with pytest.warns(UserWarning, match="caliper_units is ignored"):
        match(_small(), treatment="t", covariates=["age", "sofa"], caliper_units="raw")
    with pytest.warns(UserWarning, match="order 'data' is ignored by optimal matching"):
        match(_small(), treatment="t", covariates=["age", "sofa"], method="optimal", order="data")
    with pytest.warns(UserWarning, match="k_nearest is ignored"):
        match(_small(), treatment="t", covariates=["age", "sofa"], k_nearest=3)
    with pytest.warns(UserWarning, match="ps_model 'firth' is ignored"):
        match(_small(), treatment="t", covariates=["age", "sofa"], ps_model="firth")
    with pytest.warns(UserWarning, match="covariate_caliper_units is ignored"):
        match(_small(), treatment="t", covariates=["age", "sofa"], covariate_caliper_units="sd")


def test_unmatched_and_incomplete_treated_recorded():
    d = _small()
    res = match(d, treatment="t", covariates=["age", "sofa"], exact=["site"], ratio=4)
    # site a: treated P0 with controls P2, P4, P6 (3 < 4); site b: P1 with P3, P5, P7
    assert set(res.incomplete_treated) == {"P0", "P1"}
    assert res.unmatched_treated == ()
    res = match(d, treatment="t", covariates=["age", "sofa"], caliper=0.01, caliper_units="raw")
    assert set(res.unmatched_treated) == {"P0", "P1"} and res.matched.empty
    assert res.n_sets == 0
    assert "treated without a control: 2" in res.to_text()
    reasons = res.audit.set_index("treated_id")["reason"]
    assert reasons.str.startswith("no candidate within the caliper").all()
    assert res.diagnostics["caliper_misses"] == 2


# --------------------------------------------------------------------------- balance
def test_balance_table_never_warns_and_check_balance_does(lalonde):
    res = match(lalonde, treatment="treat", covariates=LALONDE_COVS, distance="ps")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = res.balance(lalonde)
    with pytest.warns(BalanceWarning, match="imbalanced after matching"):
        bad = check_balance(table, threshold=0.1)
    assert bad == table.loc[table["smd_after"].abs() > 0.1, "covariate"].tolist()
    assert "racewhite" in bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_balance(table, threshold=10) == []


def test_balance_table_binary_rules():
    d = _small().assign(flag=[1, 0, 1, 1, 0, 0, 1, 0])
    m = pd.DataFrame({"set_id": [1, 1, 2, 2], "patient_id": ["P0", "P2", "P1", "P3"],
                      "role": ["treated", "control", "treated", "control"], "weight": 1.0})
    t = balance_table(d, m, treatment="t", covariates=["flag", "age"]).set_index("covariate")
    assert t.loc["flag", "kind"] == "binary"
    assert t.loc["flag", "sd_denominator"] == pytest.approx(0.5)  # sqrt(p(1-p)), p = 1/2, no n-1
    assert np.isnan(t.loc["flag", "var_ratio_after"])
    assert t.loc["age", "sd_denominator"] == pytest.approx(np.std([50.0, 60.0], ddof=1))
    with pytest.raises(InputError, match="listed as binary"):
        balance_table(d, m, treatment="t", covariates=["age"], binary=["age"])
    with pytest.raises(InputError, match="not in data"):
        balance_table(d, m.assign(patient_id=["P0", "X9", "P1", "P3"]), treatment="t", covariates=["age"])


def test_docstring_examples_run():
    import controlarm.matching._api as api
    import controlarm.matching._balance as bal

    for mod in (api, bal):
        failures, _ = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
        assert failures == 0, mod.__name__
