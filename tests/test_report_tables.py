"""Tests of the report room's tables and number formatting (``controlarm.report._tables``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from controlarm.analysis._results import ArmSummary, Estimate, OutcomeResult, Results, TestResult
from controlarm.cohort._flow import Flow, FlowStep
from controlarm.report._tables import (
    fmt_estimate,
    fmt_num,
    fmt_p,
    fmt_summary,
    flow_table,
    matched_counts,
    methods_table,
    outcomes_table,
    sort_matched,
    table_one,
)


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [(62.44, None, "62.4"), (3.5, None, "3.50"), (1523.7, None, "1524"), (0.1234, None, "0.123"),
     (2.675, None, "2.68"), (-0.0004, 3, "0.000"), (float("nan"), None, "NA"), (None, None, "NA"),
     (np.float64(0.25), 1, "0.3"), (-612.5, None, "-613")],
)
def test_fmt_num(value, decimals, expected):
    assert fmt_num(value, decimals) == expected


@pytest.mark.parametrize(("p", "expected"), [(0.0625, "0.063"), (0.0412, "0.041"), (0.0009, "<0.001"),
                                             (1.0, "1.000"), (None, "NA"), (float("nan"), "NA")])
def test_fmt_p(p, expected):
    assert fmt_p(p) == expected


def test_fmt_estimate_and_summary():
    assert fmt_estimate(Estimate("OR", 0.25, 0.05, 1.2, "exact", ci_level=0.9)) == "OR: 0.250 (90% CI 0.050 to 1.20)"
    assert fmt_summary(ArmSummary("treated", n=8, events=6, proportion=0.75)) == "6/8 (75.0%)"
    assert fmt_summary(ArmSummary("treated", n=8, events=3)) == "3/8 (37.5%)"  # proportion derived
    assert fmt_summary(ArmSummary("control", n=20, n_missing=4, median=1.2, q1=0.8, q3=2.5)) == (
        "1.20 [0.800–2.50]; n = 20; missing 4")
    assert fmt_summary(None) == "—"


@pytest.fixture()
def frames():
    baseline = pd.DataFrame({
        "patient_id": ["T1", "T2", "C1", "C2", "C3", "C4"],
        "group": ["trial", "trial", "pool", "pool", "pool", "pool"],
        "age": [60.0, 70.0, 50.0, 55.0, np.nan, 80.0],
        "male": [1, 0, 1, 1, 0, 0],
    })
    matched = pd.DataFrame({  # 1:2 with replacement: C1 serves both sets
        "set_id": [2, 1, 1, 2, 1, 2],
        "patient_id": ["C1", "C1", "T1", "T2", "C2", "C4"],
        "role": ["control", "control", "treated", "treated", "control", "control"],
        "weight": [1.0] * 6,
        "distance": [0.3, 0.1, np.nan, np.nan, 0.123456789012345, 0.2],
    })
    balance = pd.DataFrame({"covariate": ["age", "male"], "smd_before": [0.5, -0.25], "smd_after": [0.1234, 0.0]})
    balance.attrs["smd_denominator"] = "pooled"
    return baseline, matched, balance


def test_table_one(frames):
    baseline, matched, balance = frames
    t1 = table_one(baseline, matched, {"age": "continuous", "male": "binary"}, balance,
                   matching_covariates=["age"], exact=["male"])
    assert t1.attrs["n"] == {"treated": 2, "pool": 4, "matched": 4, "matched_unique": 3}
    assert t1.attrs["smd_denominator"] == "pooled"
    age = t1.set_index("covariate").loc["age"]
    assert age["treated"] == "65.0 (7.1)"  # mean 65, SD sqrt(50)
    assert age["pool"] == "61.7 (16.1); missing 1"
    assert age["matched"] == "58.8 (14.4)"  # C1 counted twice: 50, 50, 55, 80
    assert (age["smd_before"], age["smd_after"], age["used_in_matching"]) == ("0.500", "0.123", "distance")
    male = t1.set_index("covariate").loc["male"]
    assert (male["treated"], male["pool"], male["matched"]) == ("1 (50.0%)", "2 (50.0%)", "3 (75.0%)")
    assert male["used_in_matching"] == "exact" and male["smd_before"] == "-0.250"


def test_table_one_median_iqr(frames):
    baseline, matched, balance = frames
    t1 = table_one(baseline, matched, {"age": "continuous"}, balance, nonnormal=["age"])
    assert t1.loc[0, "statistic"] == "median [IQR]"
    assert t1.loc[0, "treated"] == "65.0 [62.5–67.5]"  # type 7 quartiles of 60, 70


def test_matched_counts_and_sort(frames):
    _, matched, _ = frames
    assert matched_counts(matched) == {"n_sets": 2, "n_treated": 2, "n_controls": 4, "n_controls_unique": 3}
    ordered = sort_matched(matched)
    assert list(ordered["patient_id"]) == ["T1", "C1", "C2", "T2", "C1", "C4"]
    assert list(ordered.columns) == ["set_id", "role", "patient_id", "weight", "distance"]


def test_flow_table():
    flow = Flow((FlowStep("pool candidates", "pool", 100, (("too old", 10), ("no ICU", 5))),))
    ft = flow_table(flow)
    assert ft.to_dict("records") == [{"group": "pool", "stage": "pool candidates", "n_in": "100",
                                      "excluded": "too old: 10\nno ICU: 5", "n_excluded": "15", "n_out": "85"}]


def _results() -> Results:
    o = OutcomeResult(
        "alive_d28", "Alive at day 28", "binary",
        (ArmSummary("treated", 4, events=4, proportion=1.0), ArmSummary("control", 12, events=6, proportion=0.5)),
        (TestResult("MH", "Mantel–Haenszel", 4.0, 0.04, "two-sided", "matched", 16, {"cc": False}),
         TestResult("McNemar", "McNemar pseudo-pairs", 5.0, 0.0005, "two-sided", "published-style", 12,
                    warning="biased"),
         TestResult("Fisher", "Fisher exact, unmatched", None, 0.2, "two-sided", "unmatched", 16)),
        (Estimate("RD", 0.5, 0.2, 0.8, "MH risk difference"),),
    )
    return Results((o,), n_sets=4, ratio="1:3")


def test_outcomes_table_groups_by_framing():
    ot = outcomes_table(_results())
    assert ot.attrs["framings"] == ["matched", "published-style", "unmatched"]
    row = ot.iloc[0]
    assert row["matched_tests"] == "MH: p = 0.040"
    assert row["published-style_tests"] == "McNemar: p <0.001"
    assert row["unmatched_tests"] == "Fisher: p = 0.200"
    assert row["matched_estimates"] == "RD: 0.500 (95% CI 0.200 to 0.800)"
    assert row["published-style_estimates"] == "—"
    assert row["warnings"] == "biased"
    assert (row["treated"], row["control"]) == ("4/4 (100.0%)", "6/12 (50.0%)")


def test_outcomes_table_always_has_matched_columns():
    o = OutcomeResult("x", "X", "count", (ArmSummary("treated", 2, median=3.0, q1=2.0, q3=4.0),), ())
    ot = outcomes_table(Results((o,), n_sets=2, ratio="1:1"))
    assert ot.attrs["framings"] == ["matched"]
    assert ot.loc[0, "control"] == "—" and ot.loc[0, "matched_tests"] == "—"


def test_methods_table_lists_every_test_and_estimate():
    mt = methods_table(_results())
    assert list(mt["name"]) == ["MH", "McNemar", "Fisher", "RD"]
    assert "cc: no" in mt.loc[0, "conventions"] and "statistic: 4.00" in mt.loc[0, "conventions"]
    assert mt.loc[3, "type"] == "estimate" and mt.loc[3, "conventions"] == "CI level: 0.95"


def test_table_one_suppresses_small_pool_counts():
    from controlarm.report._table1 import table_one_data

    n = 12
    baseline = pd.DataFrame({
        "patient_id": [f"T{i}" for i in range(3)] + [f"C{i}" for i in range(n)],
        "group": ["trial"] * 3 + ["pool"] * n,
        "rare": [1, 0, 0] + [1, 1] + [0] * (n - 2),          # pool: 2 of 12 -> "<5"
        "common": [1, 1, 0] + [1] * (n - 3) + [0] * 3,       # pool: 9 of 12, complement 3 -> ">7"
        "lab": [1.0, 2.0, np.nan] + [np.nan] * 2 + list(np.arange(n - 2, dtype=float)),  # pool: missing 2
    })
    matched = pd.DataFrame({"set_id": [1, 1, 1], "patient_id": ["T0", "C2", "C3"],
                            "role": ["treated", "control", "control"]})
    kinds = {"rare": "binary", "common": "binary", "lab": "continuous"}
    data = table_one_data(baseline, matched, kinds, small_cells=5)
    rows = {r["covariate"]: r for r in data["rows"]}
    assert rows["rare"]["cells"]["pool"] == "<5" and rows["rare"]["stats"]["pool"]["count"] is None
    assert rows["common"]["cells"]["pool"] == ">7" and rows["common"]["stats"]["pool"]["suppressed"]
    assert rows["lab"]["cells"]["pool"].endswith("; missing <5") and rows["lab"]["stats"]["pool"]["n_missing"] is None
    assert rows["lab"]["cells"]["matched"] == "fewer than 5 observed"  # 2 matched controls
    assert rows["rare"]["cells"]["matched"] == "fewer than 5 observed"
    assert data["n"] == {"treated": 1, "pool": 12, "matched": "<5", "matched_unique": "<5"}
    assert rows["rare"]["cells"]["treated"] == "1 (100.0%)"  # trial counts are never suppressed
    off = table_one_data(baseline, matched, kinds)
    assert {r["covariate"]: r["cells"]["pool"] for r in off["rows"]}["rare"] == "2 (16.7%)"
