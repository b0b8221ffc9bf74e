"""Distances (robust Mahalanobis, user matrix), covariate calipers in SD units, balance options, Love plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from controlarm.errors import InputError
from controlarm.matching import balance_table, love_plot, match

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def lalonde() -> pd.DataFrame:
    d = pd.read_csv(REF / "data" / "lalonde.csv")
    for level in ("black", "hispan", "white"):
        d["race" + level] = (d["race"] == level).astype(int)
    return d


def smahal(z: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Rosenbaum's smahal() from *Design of Observational Studies* (2010), section 8.3, in NumPy.

    Ranks per column, covariance of the ranks, rescaled so each variance equals var(1:n), generalised
    inverse; R's mahalanobis() returns the squared distance, so its square root is compared.
    """
    n, k = X.shape
    R = np.column_stack([rankdata(X[:, j]) for j in range(k)])
    cv = np.cov(R, rowvar=False)
    rat = np.sqrt(np.var(np.arange(1, n + 1), ddof=1) / np.diag(cv))
    cv = np.diag(rat) @ cv @ np.diag(rat)
    icov = np.linalg.pinv(cv)
    Rt, Rc = R[z == 1], R[z == 0]
    out = np.empty((len(Rt), len(Rc)))
    for i in range(len(Rt)):
        diff = Rc - Rt[i]
        out[i] = np.einsum("ij,jk,ik->i", diff, icov, diff)
    return np.sqrt(out)


def test_robust_mahalanobis_equals_rosenbaum_smahal(lalonde):
    covs = ["age", "educ", "re74", "re75", "married"]  # re74/re75: many ties at 0; married: binary
    res = match(lalonde, treatment="treat", covariates=covs, id_column="id", distance="robust_mahalanobis", ratio=2)
    X = lalonde[covs].to_numpy(float)
    z = lalonde["treat"].to_numpy()
    D = smahal(z, X)
    ids = lalonde["id"].to_numpy()
    t_pos = {v: i for i, v in enumerate(ids[z == 1])}
    c_pos = {v: i for i, v in enumerate(ids[z == 0])}
    sets = res.matched_sets
    expected = D[[t_pos[t] for t in sets["treated_id"]], [c_pos[c] for c in sets["control_id"]]]
    np.testing.assert_allclose(sets["distance"], expected, rtol=1e-9)
    # greedy (data order): each treated patient's first control is its nearest among those left
    assert "rank" in res.settings["covariance"]
    first = sets[sets["slot"] == 1].iloc[0]
    assert first["distance"] == pytest.approx(D[0].min(), rel=1e-9)


def test_user_distance_matrix_is_used_as_given(lalonde):
    t_ids = lalonde.loc[lalonde["treat"] == 1, "id"]
    c_ids = lalonde.loc[lalonde["treat"] == 0, "id"]
    rng = np.random.default_rng(0)
    M = pd.DataFrame(rng.random((len(t_ids), len(c_ids))), index=t_ids, columns=c_ids)
    M.iloc[0, :] = np.inf
    M.iloc[0, 5] = 0.25  # NSW1 may only match the 6th candidate
    res = match(lalonde, treatment="treat", covariates=[], id_column="id", distance_matrix=M.iloc[::-1, ::-1])
    assert res.settings["distance"] == "matrix"
    assert res.match_matrix.loc[t_ids.iloc[0], 1] == c_ids.iloc[5]
    sets = res.matched_sets
    np.testing.assert_array_equal(sets["distance"], M.to_numpy()[
        [list(t_ids).index(t) for t in sets["treated_id"]], [list(c_ids).index(c) for c in sets["control_id"]]])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda M: M.drop(index=M.index[0]), r"index \(treated ids\) lacks 1 id"),
        (lambda M: M.drop(columns=M.columns[:2]), r"columns \(candidate ids\) lacks 2 id"),
        (lambda M: M.where(M > 0.01), "NaN"),
        (lambda M: M - 1, ">= 0"),
        (lambda M: M.to_numpy(), "must be a pandas DataFrame"),
    ],
)
def test_bad_distance_matrix(lalonde, mutate, message):
    t_ids = lalonde.loc[lalonde["treat"] == 1, "id"]
    c_ids = lalonde.loc[lalonde["treat"] == 0, "id"]
    M = pd.DataFrame(np.random.default_rng(1).random((len(t_ids), len(c_ids))), index=t_ids, columns=c_ids)
    with pytest.raises(InputError, match=message):
        match(lalonde, treatment="treat", covariates=[], id_column="id", distance="matrix", distance_matrix=mutate(M))


def test_covariate_caliper_in_sd_units(lalonde):
    res = match(lalonde, treatment="treat", covariates=["age", "educ"], id_column="id",
                covariate_calipers={"re74": 0.1}, covariate_caliper_units="sd")
    raw = res.settings["covariate_calipers_raw"]["re74"]
    assert raw == pytest.approx(0.1 * lalonde["re74"].std(ddof=1))
    m = res.matched_sets
    re74 = lalonde.set_index("id")["re74"]
    assert (np.abs(re74.loc[m["treated_id"]].to_numpy() - re74.loc[m["control_id"]].to_numpy()) <= raw).all()


def test_pooled_smd_denominator_is_stated_and_computed(lalonde):
    res = match(lalonde, treatment="treat", covariates=["age", "married"], id_column="id", distance="ps")
    pooled = res.balance(lalonde, smd_denominator="pooled").set_index("covariate")
    t = lalonde["treat"] == 1
    s_age = np.sqrt((lalonde.loc[t, "age"].var() + lalonde.loc[~t, "age"].var()) / 2)
    assert pooled.loc["age", "sd_denominator"] == pytest.approx(s_age)
    p1, p0 = lalonde.loc[t, "married"].mean(), lalonde.loc[~t, "married"].mean()
    assert pooled.loc["married", "sd_denominator"] == pytest.approx(np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2))
    assert pooled.attrs["smd_denominator"].startswith("pooled SD before matching")
    with pytest.raises(InputError, match="smd_denominator must be one of"):
        res.balance(lalonde, smd_denominator="control")


def test_ecdf_statistics_by_hand():
    """Treated x = (1, 3), pool x = (2, 9): eCDFs on the grid 1, 2, 3, 9 differ by .5, 0, .5, 0."""
    d = pd.DataFrame({"patient_id": [1, 2, 3, 4], "t": [1, 1, 0, 0], "x": [1.0, 3.0, 2.0, 9.0]})
    m = pd.DataFrame({"set_id": [1, 1, 2, 2], "patient_id": [1, 3, 2, 4],
                      "role": ["treated", "control", "treated", "control"], "weight": 1.0})
    row = balance_table(d, m, treatment="t", covariates=["x"]).iloc[0]
    assert row["ecdf_mean_before"] == pytest.approx(0.25) and row["ecdf_max_before"] == pytest.approx(0.5)
    # pairs (x 1 with 2) and (x 3 with 9): mean |difference| 3.5, over the treated SD sqrt(2)
    assert row["std_pair_dist"] == pytest.approx(3.5 / np.sqrt(2))


def test_love_plot_draws_both_markers(lalonde):
    res = match(lalonde, treatment="treat", covariates=["age", "educ", "married"], id_column="id", distance="ps")
    fig = res.plot(lalonde)
    ax = fig.axes[0]
    assert {t.get_text() for t in ax.get_yticklabels()} == {"age", "educ", "married"}
    assert len(ax.collections) == 2  # before and after
    assert "SMD denominator" in ax.get_title()
    with pytest.raises(InputError, match="balance_table"):
        love_plot(pd.DataFrame({"x": [1]}))
    import matplotlib.pyplot as plt

    plt.close(fig)
