"""Risk-set (time-aligned) matching on hand-made eligibility intervals (ICU days since admission).

Treated: T1 infused on ICU day 2, T2 and T3 on day 5. Candidates, one row per interval in which
they are alive, in ICU and eligible (covariates as of that interval):

    C1  [0, 3) age 61 sofa 4;  [3, 9) age 61 sofa 6   (SOFA worsened on day 3)
    C2  [0, 10) age 69 sofa 8
    C3  [4, 6) age 66 sofa 3                          (eligible from day 4, discharged day 6)
    C4  [6, 12) age 64 sofa 2                         (eligible only after every landmark)
    C5  [0, 2) age 69 sofa 8                          (died on day 2)
    T3  [0, 5) age 65 sofa 3                          (the later-treated T3, at risk before its infusion)

Risk sets ([start, stop) rule): day 2 = {C1 (first row), C2, T3}; day 5 = {C1 (second row), C2, C3}.
C5 is out at day 2 (its interval ends there) and C4 is never at risk: matching it would credit
the control arm with ICU days it had to survive before becoming eligible (immortal time).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from controlarm.errors import InputError
from controlarm.matching import risk_set_match


@pytest.fixture()
def treated() -> pd.DataFrame:
    return pd.DataFrame({"patient_id": ["T1", "T2", "T3"], "landmark": [2.0, 5.0, 5.0],
                         "age": [69.0, 70.0, 65.0], "sofa": [8.0, 8.0, 3.0], "site": ["a", "a", "a"]})


@pytest.fixture()
def candidates() -> pd.DataFrame:
    return pd.DataFrame({
        "patient_id": ["C1", "C1", "C2", "C3", "C4", "C5", "T3"],
        "start": [0.0, 3, 0, 4, 6, 0, 0],
        "stop": [3.0, 9, 10, 6, 12, 2, 5],
        "age": [61.0, 61, 69, 66, 64, 69, 65],
        "sofa": [4.0, 6, 8, 3, 2, 8, 3],
        "site": ["a", "a", "a", "a", "a", "a", "a"],
    })


def _pairs(res) -> dict[str, list[str]]:
    s = res.matched_sets
    return {t: list(g["control_id"]) for t, g in s.groupby("treated_id")}


def test_risk_sets_and_index_alignment(treated, candidates):
    res = risk_set_match(treated, candidates, covariates=["age", "sofa"], reuse=True)
    audit = res.audit.set_index("treated_id")
    assert audit.loc["T1", "n_in_stratum"] == 3  # C1, C2, T3 at day 2
    assert audit.loc["T2", "n_in_stratum"] == 3  # C1, C2, C3 at day 5
    assert audit.loc["T3", "n_in_stratum"] == 3  # C1, C2, C3; never itself
    assert _pairs(res) == {"T1": ["C2"], "T2": ["C2"], "T3": ["C3"]}
    m = res.matched
    # every member of a set starts the clock at the treated patient's landmark
    lm = treated.set_index("patient_id")["landmark"]
    for _, g in m.groupby("set_id"):
        t_id = g.loc[g["role"] == "treated", "patient_id"].item()
        assert (g["index_time"] == lm[t_id]).all()
    used = set(m.loc[m["role"] == "control", "patient_id"])
    assert not used & {"C4", "C5"}  # never at risk at a landmark
    # the covariates of C1 at day 5 come from its second interval
    design = res.design_.set_index("unit_id")
    assert design.loc["C1@5", "sofa"] == 6.0 and design.loc["C1@2", "sofa"] == 4.0
    assert "C4@5" not in design.index


def test_reuse_only_across_different_landmarks(treated, candidates):
    """With reuse C2 serves T1 (day 2) and T2 (day 5); without reuse it serves one of them."""
    reused = risk_set_match(treated, candidates, covariates=["age", "sofa"], reuse=True)
    assert reused.matched_sets["control_id"].tolist().count("C2") == 2
    assert reused.settings["reuse"].startswith("a candidate may serve several")
    for method in ("optimal", "nearest"):
        once = risk_set_match(treated, candidates, covariates=["age", "sofa"], reuse=False, method=method)
        controls = once.matched_sets["control_id"]
        assert controls.is_unique and once.n_sets == 3
    # two treated at the same landmark never share a candidate, even with reuse
    same_day = treated.assign(landmark=5.0, age=[70.0, 70.0, 65.0], sofa=[8.0, 8.0, 3.0])
    res = risk_set_match(same_day, candidates, covariates=["age", "sofa"], reuse=True)
    assert res.matched_sets["control_id"].is_unique


def test_greedy_takes_landmarks_in_time_order(treated, candidates):
    """Greedy without reuse: T1 (day 2) picks first and takes C2; T2 (day 5, before T3 in data order)
    then takes C3, which leaves T3 with C1. Optimal matching sees further: T1 takes the not-yet-treated
    T3 (at risk on day 2, Li, Propert & Rosenbaum 2001), T2 takes C2 and T3 takes C3."""
    res = risk_set_match(treated, candidates, covariates=["age", "sofa"], method="nearest")
    assert _pairs(res) == {"T1": ["C2"], "T2": ["C3"], "T3": ["C1"]}
    assert res.settings["order"] == "landmark"
    opt = risk_set_match(treated, candidates, covariates=["age", "sofa"], method="optimal")
    assert _pairs(opt) == {"T1": ["T3"], "T2": ["C2"], "T3": ["C3"]}
    assert opt.diagnostics["total_distance"] < res.diagnostics["total_distance"] - 1.0
    m = opt.matched
    assert m.loc[(m["patient_id"] == "T3") & (m["role"] == "control"), "index_time"].item() == 2.0
    assert m.loc[(m["patient_id"] == "T3") & (m["role"] == "treated"), "index_time"].item() == 5.0


def test_closed_interval_rule_and_caliper(treated, candidates):
    both = risk_set_match(treated, candidates, covariates=["age", "sofa"], closed="both", reuse=True)
    assert both.audit.set_index("treated_id").loc["T1", "n_in_stratum"] == 4  # C5 still in ICU on day 2
    assert both.settings["at_risk_rule"] == "start <= landmark <= stop"
    tight = risk_set_match(treated, candidates, covariates=["age", "sofa"], caliper=0.05, reuse=True)
    audit = tight.audit.set_index("treated_id")
    assert (tight.matched_sets["distance"] <= 0.05).all()
    assert "T2" in tight.unmatched_treated
    assert audit.loc["T2", "reason"].startswith("no candidate within the caliper (3 in the risk set at its landmark")


def test_exact_strata_and_ratio(treated, candidates):
    c = candidates.assign(site=["a", "b", "a", "b", "a", "a", "a"])
    res = risk_set_match(treated, c, covariates=["age", "sofa"], exact=["site"], ratio=2, reuse=True)
    design = res.design_.set_index("unit_id")
    # C1's second interval is at site b: not in the day-5 risk sets of site-a treated patients
    assert "C1@5" not in design.index
    assert (res.matched_sets.groupby("treated_id").size() <= 2).all()
    assert res.audit.set_index("treated_id").loc["T2", "n_in_stratum"] == 1  # only C2 (C3 is site b)


def test_balance_uses_covariates_at_the_landmark(treated, candidates):
    res = risk_set_match(treated, candidates, covariates=["age", "sofa"], reuse=True)
    table = res.balance().set_index("covariate")
    # after matching: treated sofa (8, 8, 3) vs controls C2@2 (8), C2@5 (8), C3@5 (3)
    assert table.loc["sofa", "mean_treated_matched"] == pytest.approx(19 / 3)
    assert table.loc["sofa", "mean_matched"] == pytest.approx(19 / 3)
    assert table.loc["sofa", "smd_after"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t, c: (t, c.assign(stop=[3.0, 9, 10, 6, 12, 2, 5]).assign(start=[0.0, 2, 0, 4, 6, 0, 0])), "must not overlap"),
        (lambda t, c: (t, c.assign(stop=[-1.0, 9, 10, 6, 12, 2, 5])), "stop >= start"),
        (lambda t, c: (t.assign(patient_id=["T1", "T1", "T3"]), c), "treated ids must be unique"),
        (lambda t, c: (t.assign(landmark=[np.nan, 5, 5]), c), "missing value"),
        (lambda t, c: (t, c.drop(columns="stop")), r"no column\(s\) \['stop'\]"),
    ],
)
def test_bad_input_is_an_input_error(treated, candidates, change, message):
    t, c = change(treated, candidates)
    with pytest.raises(InputError, match=message):
        risk_set_match(t, c, covariates=["age", "sofa"])
