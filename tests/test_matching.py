"""Reference tests of the matching room against MatchIt 4.7.1 on the lalonde data.

Truth: tests/reference/expected/matchit_lalonde.json (R 4.2.2, MatchIt 4.7.1; see
tests/reference/README.md). Every spec uses

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
    }


SPECS = ["nn_1to1", "nn_1to3", "nn_1to1_caliper02_logit", "nn_1to2_exact_race"]


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


@pytest.mark.parametrize("spec", SPECS)
def test_set_numbering_and_weights_identical_to_matchit(fits, r_matchit, spec):
    """m$subclass and m$weights (controls of incomplete 1:k sets weigh 1/m, rescaled)."""
    tidy = fits[spec].matched.set_index("patient_id")
    r_sub = {k: int(v) for k, v in r_matchit[spec]["subclass"].items() if v is not None}
    assert tidy["set_id"].to_dict() == r_sub
    r_w = pd.Series(r_matchit[spec]["weights"])
    ours = tidy["weight"].reindex(r_w.index, fill_value=0.0)
    np.testing.assert_allclose(ours.to_numpy(), r_w.to_numpy(), rtol=1e-12, atol=1e-12)


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


@pytest.mark.parametrize("spec", SPECS)
def test_smd_before_and_after_match_matchit(fits, r_matchit, lalonde, spec):
    """summary(m)$sum.all and $sum.matched, column "Std. Mean Diff." (ATT: SD of the treated, full sample)."""
    table = balance_table(
        lalonde, fits[spec].matched, treatment="treat", covariates=BALANCE_COVARIATES, id_column="id"
    ).set_index("covariate")
    r_all = pd.DataFrame(r_matchit[spec]["sum_all"]).T.loc[BALANCE_COVARIATES]
    r_matched = pd.DataFrame(r_matchit[spec]["sum_matched"]).T.loc[BALANCE_COVARIATES]
    np.testing.assert_allclose(table["smd_before"], r_all["Std. Mean Diff."].astype(float), rtol=1e-6)
    np.testing.assert_allclose(table["smd_after"], r_matched["Std. Mean Diff."].astype(float), rtol=1e-6)
    np.testing.assert_allclose(table["mean_treated"], r_all["Means Treated"].astype(float), rtol=1e-6)
    np.testing.assert_allclose(table["mean_pool"], r_all["Means Control"].astype(float), rtol=1e-6)
    np.testing.assert_allclose(table["mean_treated_matched"], r_matched["Means Treated"].astype(float), rtol=1e-6)
    np.testing.assert_allclose(table["mean_matched"], r_matched["Means Control"].astype(float), rtol=1e-6)
    vr = r_matched["Var. Ratio"].astype(float)
    np.testing.assert_allclose(table["var_ratio_after"], vr, rtol=1e-6)  # NaN for binary in both
    np.testing.assert_allclose(table["var_ratio_before"], r_all["Var. Ratio"].astype(float), rtol=1e-6)
    assert table.loc["married", "kind"] == "binary" and table.loc["age", "kind"] == "continuous"
    assert table.attrs["smd_denominator"].startswith("SD of the treated group before matching")


def test_result_balance_method_uses_matching_covariates(fits, lalonde, r_matchit):
    table = fits["nn_1to1"].balance(lalonde)
    assert list(table["covariate"]) == PS_COVARIATES
    r = pd.DataFrame(r_matchit["nn_1to1"]["sum_matched"]).T.loc[PS_COVARIATES, "Std. Mean Diff."]
    np.testing.assert_allclose(table["smd_after"], r.astype(float), rtol=1e-6)


def test_replace_not_available_yet(lalonde):
    """nn_1to1_replace (replace = TRUE) is a later issue: asking for it is a clear error."""
    with pytest.raises(InputError, match="with replacement.*not available yet"):
        _match(lalonde, distance="ps", replace=True)


def test_default_order_for_ps_is_largest_as_matchit(fits, lalonde, r_matchit):
    res = _match(lalonde, distance="ps")
    assert res.settings["order"] == "largest"
    pd.testing.assert_frame_equal(res.match_matrix, fits["nn_1to1"].match_matrix)
