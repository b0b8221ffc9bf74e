"""Reference tests of the matching room against MatchIt 4.7.1 on the lalonde data.

Truth: tests/reference/expected/matchit_lalonde.json (R 4.2.2, MatchIt 4.7.1; see
tests/reference/README.md): nearest 1:1, 1:3, 1:1 within 0.2 SD of the logit PS, 1:1 with
replacement, 1:2 exact on race. Every spec uses

    matchit(treat ~ age + educ + race + married + nodegree + re74 + re75, data = lalonde,
            method = "nearest", distance = "glm", ...)

with race a factor (black is the reference level), so the propensity model has the dummies
racehispan and racewhite; balance tables split race into raceblack, racehispan and racewhite.

Tolerances: R's glm() stops when the relative change in deviance is below 1e-8, so its
coefficients and fitted propensity scores agree with a fully converged fit to about 1e-8
(relative); we compare at rtol=1e-6. Match matrices, set numbering and weights must be identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from controlarm.errors import InputError
from controlarm.matching import balance_table, match

REF = Path(__file__).parent / "reference"
PS_COVARIATES = ["age", "educ", "racehispan", "racewhite", "married", "nodegree", "re74", "re75"]
BALANCE_COVARIATES = ["age", "educ", "raceblack", "racehispan", "racewhite", "married", "nodegree", "re74", "re75"]


@pytest.fixture(scope="module")
def r_matchit() -> dict:
    return json.loads((REF / "expected" / "matchit_lalonde.json").read_text())["specs"]


@pytest.fixture(scope="module")
def lalonde() -> pd.DataFrame:
    d = pd.read_csv(REF / "data" / "lalonde.csv")
    for level in ("black", "hispan", "white"):
        d["race" + level] = (d["race"] == level).astype(int)
    return d


def _match(lalonde: pd.DataFrame, **kw):
    return match(lalonde, treatment="treat", covariates=PS_COVARIATES, id_column="id", **kw)


@pytest.fixture(scope="module")
def fits(lalonde: pd.DataFrame) -> dict:
    """Our equivalent of each MatchIt spec in the reference file."""
    return {
        # matchit(..., distance = "glm", ratio = 1)
        "nn_1to1": _match(lalonde, distance="ps", order="largest"),
        # matchit(..., distance = "glm", ratio = 3)
        "nn_1to3": _match(lalonde, distance="ps", ratio=3, order="largest"),
        # matchit(..., distance = "glm", link = "linear.logit", caliper = 0.2)
        "nn_1to1_caliper02_logit": _match(lalonde, distance="logit_ps", caliper=0.2, caliper_units="sd"),
        # matchit(..., distance = "glm", ratio = 2, exact = ~race)
        "nn_1to2_exact_race": _match(lalonde, distance="ps", ratio=2, exact=["race"]),
        # matchit(..., distance = "glm", replace = TRUE)
        "nn_1to1_replace": _match(lalonde, distance="ps", replace=True),
    }


SPECS = ["nn_1to1", "nn_1to3", "nn_1to1_caliper02_logit", "nn_1to2_exact_race", "nn_1to1_replace"]
WITH_SUBCLASS = [s for s in SPECS if s != "nn_1to1_replace"]  # MatchIt gives no subclass with replacement


def test_ps_coefficients_match_r_glm(fits, r_matchit):
    """glm(treat ~ age + educ + race + married + nodegree + re74 + re75, family = binomial, data = lalonde)."""
    r_coef = pd.Series(r_matchit["nn_1to1"]["ps_model_coef"])
    ours = fits["nn_1to1"].ps_coef_
    assert list(ours.index) == list(r_coef.index)
    np.testing.assert_allclose(ours.to_numpy(), r_coef.to_numpy(), rtol=1e-6)
    assert "maximum likelihood" in fits["nn_1to1"].settings["ps_model"]


def test_ps_per_patient_matches_matchit_distance(fits, r_matchit):
    """m$distance of matchit(..., distance = "glm"): the fitted PS per unit."""
    r_ps = pd.Series(r_matchit["nn_1to1"]["distance"])
    ours = fits["nn_1to1"].ps_.loc[r_ps.index]
    np.testing.assert_allclose(ours.to_numpy(), r_ps.to_numpy(), rtol=1e-6)


def test_logit_ps_matches_matchit_linear_logit(fits, r_matchit):
    """m$distance of matchit(..., link = "linear.logit"): the logit PS (absolute tolerance: it crosses 0)."""
    r_lin = pd.Series(r_matchit["nn_1to1_caliper02_logit"]["distance"])
    ours = logit(fits["nn_1to1_caliper02_logit"].ps_.loc[r_lin.index].to_numpy())
    np.testing.assert_allclose(ours, r_lin.to_numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("spec", SPECS)
def test_match_matrix_identical_to_matchit(fits, r_matchit, spec):
    """m$match.matrix: treated id -> control id per slot (NA = unfilled), identical including empty slots."""
    r_mm = r_matchit[spec]["match_matrix"]
    ours = fits[spec].match_matrix
    assert list(ours.index) == list(r_mm)
    for tid, controls in r_mm.items():
        expected = controls if isinstance(controls, list) else [controls]
        assert list(ours.loc[tid]) == expected, tid


@pytest.mark.parametrize("spec", WITH_SUBCLASS)
def test_set_numbering_identical_to_matchit(fits, r_matchit, spec):
    """m$subclass: sets numbered by the treated patient's position among the matched treated."""
    tidy = fits[spec].matched.set_index("patient_id")
    r_sub = {k: int(v) for k, v in r_matchit[spec]["subclass"].items() if v is not None}
    assert tidy["set_id"].to_dict() == r_sub


@pytest.mark.parametrize("spec", SPECS)
def test_weights_identical_to_matchit(fits, r_matchit, spec):
    """m$weights: controls of incomplete 1:k sets weigh 1/m, rescaled; with replacement a control's
    weight is the sum over the sets it serves (the tidy table has one row per set)."""
    m = fits[spec].matched
    ours_w = m.groupby("patient_id")["weight"].sum()
    r_w = pd.Series(r_matchit[spec]["weights"])
    r_w = r_w[r_w > 0]
    assert set(ours_w.index) == set(r_w.index)
    np.testing.assert_allclose(ours_w.reindex(r_w.index).to_numpy(), r_w.to_numpy(), rtol=1e-12, atol=1e-12)


def test_replacement_reuses_controls_as_matchit(fits, r_matchit):
    """replace = TRUE: 185 treated matched to 82 distinct controls; one row per (set, control)."""
    res = fits["nn_1to1_replace"]
    spec = r_matchit["nn_1to1_replace"]
    controls = res.matched.loc[res.matched["role"] == "control", "patient_id"]
    assert controls.nunique() == spec["n_controls_used_distinct"] == 82
    assert len(controls) == 185 and not controls.is_unique
    assert res.settings["replace"] is True
    assert res.diagnostics["total_distance"] == pytest.approx(spec["sum_abs_distance_matched"], rel=1e-6)


def test_caliper_in_sd_of_logit_ps(fits, r_matchit):
    """caliper = 0.2 with std.caliper = TRUE: 0.2 * sd(logit PS over all 614 units)."""
    spec = r_matchit["nn_1to1_caliper02_logit"]
    res = fits["nn_1to1_caliper02_logit"]
    np.testing.assert_allclose(res.settings["caliper_raw"], spec["caliper_raw"], rtol=1e-6)
    assert len(res.unmatched_treated) == spec["nn"]["Unmatched"]["Treated"] == 68
    assert (res.matched["distance"] <= res.settings["caliper_raw"]).all()


@pytest.mark.parametrize("spec", SPECS)
def test_sample_sizes_match_matchit(fits, r_matchit, spec):
    """summary(m)$nn: All, Matched, Matched (ESS), Unmatched."""
    ours = fits[spec].summary()
    for row in ("All", "Matched", "Matched (ESS)", "Unmatched"):
        for col in ("Control", "Treated"):
            np.testing.assert_allclose(ours.loc[row, col], r_matchit[spec]["nn"][row][col], rtol=1e-12)


BALANCE_COLUMNS = {  # MatchIt column -> ours (after matching; "before" columns checked against sum.all)
    "Means Treated": ("mean_treated", "mean_treated_matched"),
    "Means Control": ("mean_pool", "mean_matched"),
    "Std. Mean Diff.": ("smd_before", "smd_after"),
    "Var. Ratio": ("var_ratio_before", "var_ratio_after"),
    "eCDF Mean": ("ecdf_mean_before", "ecdf_mean_after"),
    "eCDF Max": ("ecdf_max_before", "ecdf_max_after"),
    "Std. Pair Dist.": (None, "std_pair_dist"),
}


@pytest.mark.parametrize("spec", SPECS)
def test_balance_table_equals_matchit(fits, r_matchit, lalonde, spec):
    """summary(m)$sum.all and $sum.matched, every column, every row (the distance row included), to 1e-6.

    ATT convention: SMD over the SD of the treated in the full sample; binary p(1-p); eCDF statistics
    over the distinct values of every unit; Std. Pair Dist. over the matched pairs. Numbers near zero
    (a mean difference of 1e-17) are compared with an absolute tolerance of 1e-9.
    """
    res = fits[spec]
    score = res.ps_.to_numpy()
    if res.distance == "logit_ps":
        score = logit(score)
    data = lalonde.assign(distance=score)
    covs = ["distance", *BALANCE_COVARIATES]
    table = balance_table(data, res.matched, treatment="treat", covariates=covs, id_column="id").set_index("covariate")
    r_all = pd.DataFrame(r_matchit[spec]["sum_all"]).T.loc[covs].astype(float)
    r_matched = pd.DataFrame(r_matchit[spec]["sum_matched"]).T.loc[covs].astype(float)
    for r_col, (before, after) in BALANCE_COLUMNS.items():
        if before is not None:
            np.testing.assert_allclose(table[before], r_all[r_col], rtol=1e-6, atol=1e-9, err_msg=f"before {r_col}")
        np.testing.assert_allclose(table[after], r_matched[r_col], rtol=1e-6, atol=1e-9, err_msg=f"after {r_col}")
    assert table.loc["married", "kind"] == "binary" and table.loc["age", "kind"] == "continuous"
    assert table.attrs["smd_denominator"].startswith("SD of the treated group before matching")


def test_result_balance_method_uses_matching_covariates(fits, lalonde, r_matchit):
    table = fits["nn_1to1"].balance(lalonde)
    assert list(table["covariate"]) == PS_COVARIATES
    r = pd.DataFrame(r_matchit["nn_1to1"]["sum_matched"]).T.loc[PS_COVARIATES, "Std. Mean Diff."]
    np.testing.assert_allclose(table["smd_after"], r.astype(float), rtol=1e-6)


def test_default_order_for_ps_is_largest_as_matchit(fits, lalonde, r_matchit):
    res = _match(lalonde, distance="ps")
    assert res.settings["order"] == "largest"
    pd.testing.assert_frame_equal(res.match_matrix, fits["nn_1to1"].match_matrix)
