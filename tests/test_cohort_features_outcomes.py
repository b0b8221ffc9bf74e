"""Tests of the cohort, features and outcomes rooms on the hand-built timelines of tests/_clif.py.

Every expected value is worked out by hand from those timelines; the working is in each docstring.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from controlarm.cohort import build_cohort
from controlarm.features import derive_baseline
from controlarm.outcomes import derive_endpoints, endpoint_definitions
from controlarm.sources import open_sources
from controlarm.spec import load_study

from . import _clif
from ._clif import ts


@pytest.fixture(scope="module", params=["parquet", "csv"])
def tiny(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"tiny_{request.param}")
    study = load_study(_clif.write(folder, request.param))
    sources = open_sources(study.data.source, base_dir=study.base_dir)
    return study, sources


def test_index_dates(tiny):
    """T1: first MSC at 2020-06-02 00:00. C1: ICU + HFNC from 07-01 06:00, dexamethasone at 00:00
    (window 24 h) -> 07-01 06:00. C2: ICU + HFNC from 08-01, dexamethasone first at 08-03 12:00 -> 08-03 12:00."""
    study, sources = tiny
    cohort = build_cohort(sources, study)
    idx = cohort.patients.set_index("patient_id")["index_time"]
    assert list(cohort.patients["patient_id"]) == ["T1", "C1", "C2"]
    assert idx["T1"] == ts("2020-06-02 00:00")
    assert idx["C1"] == ts("2020-07-01 06:00")
    assert idx["C2"] == ts("2020-08-03 12:00")
    assert list(cohort.patients["group"]) == ["trial", "pool", "pool"]


def test_flow_counts_every_exclusion_with_its_first_reason(tiny):
    """C3 never gets dexamethasone; C5 is only on a nasal cannula; C4 is 80 at index."""
    study, sources = tiny
    flow = build_cohort(sources, study).flow
    pool = flow.for_group("pool")[0]
    assert pool.n_in == 5 and pool.n_out == 2
    assert dict(pool.excluded) == {
        "no index: never on High Flow NC/IMV in icu": 1,
        "no index: never on dexamethasone while on High Flow NC/IMV in icu": 1,
        "age above 70": 1,
    }
    trial = flow.for_group("trial")[0]
    assert trial.n_in == 1 and trial.n_out == 1 and trial.excluded == ()


def test_baseline_covariates_as_of_index(tiny):
    """T1: CRP 8 mg/dL at 06-01 20:00 is the last in the 48 h look-back -> 80 mg/L (the 50 mg/L at
    05-31 12:00 is older); BMI 90/1.8^2; RR 28; admitted 1 day before index; on HFNC at index; E11.9.
    C2: CRP 90 (the 10 mg/L of 07-30 lies outside the look-back); admitted 2.5 days before index."""
    study, sources = tiny
    base = derive_baseline(sources, build_cohort(sources, study), study).set_index("patient_id")
    t1, c1, c2 = base.loc["T1"], base.loc["C1"], base.loc["C2"]
    assert t1["crp"] == 80.0 and c1["crp"] == 120.0 and c2["crp"] == 90.0
    assert t1["bmi"] == pytest.approx(90 / 1.8**2, rel=1e-12)
    assert c2["bmi"] == pytest.approx(70 / 1.6**2, rel=1e-12)
    assert (t1["respiratory_rate"], c1["respiratory_rate"], c2["respiratory_rate"]) == (28.0, 30.0, 24.0)
    assert t1["days_since_admission"] == 1.0 and c1["days_since_admission"] == 0.25 and c2["days_since_admission"] == 2.5
    assert (t1["imv_at_index"], c1["imv_at_index"]) == (0.0, 0.0)
    assert (t1["diabetes"], c1["diabetes"], c2["diabetes"]) == (1.0, 0.0, 0.0)
    assert (t1["male"], c2["male"]) == (1.0, 0.0)
    days = (pd.Timestamp("2020-06-02") - pd.Timestamp("1970-01-01")).days
    assert t1["age"] == pytest.approx(days / 365.25, rel=1e-12)
    assert base.attrs["kinds"]["diabetes"] == "binary" and base.attrs["kinds"]["crp"] == "continuous"


def _endpoints(tiny, ids):
    study, sources = tiny
    cohort = build_cohort(sources, study).patients
    index = cohort[cohort["patient_id"].isin(ids)]
    return derive_endpoints(sources, index, study).set_index("patient_id")


def test_free_days_and_need_for_imv_for_a_survivor(tiny):
    """T1, index 06-02 00:00. IMV [06-03 12:00, 06-05 06:00) touches days 2-4 -> 25 IMV-free days.
    HFNC [06-01, 06-03 12:00) touches days 1-2 -> 26. Oxygen until 06-09 00:00 -> days 1-7 -> 21.
    ICU until 06-10 00:00 -> days 1-8 -> 20. Intubated after index -> need_imv = 1."""
    e = _endpoints(tiny, ["T1"]).loc["T1"]
    assert (e["imv_free_days_28"], e["hfno_free_days_28"], e["oxygen_free_days_28"], e["icu_free_days_28"]) == (25, 26, 21, 20)
    assert e["need_imv"] == 1
    assert (e["alive_d28"], e["alive_d60"], e["death_event"], e["death_time_days"]) == (1, 1, 0, 60.0)


def test_death_sets_free_days_to_zero_and_is_timed(tiny):
    """C1 dies 07-11 00:00, 9 days 18 h after index 07-01 06:00."""
    e = _endpoints(tiny, ["C1"]).loc["C1"]
    assert (e["alive_d28"], e["alive_d60"], e["death_event"]) == (0, 0, 1)
    assert e["death_time_days"] == pytest.approx(9.75, abs=1e-9)
    assert (e["imv_free_days_28"], e["hfno_free_days_28"], e["oxygen_free_days_28"], e["icu_free_days_28"]) == (0, 0, 0, 0)
    assert e["need_imv"] == 0


def test_lab_nearest_day_7_with_units_and_ties(tiny):
    """T1 target 06-09 00:00: 900 ng/mL at -4 h vs 1.5 mg/L FEU at +3 h -> 1500 ug/L.
    C1 target 07-08 06:00: 2000 at -5 h and 3000 at +5 h tie -> the earlier (2000).
    C2 target 08-10 12:00: nothing within +-1 day -> missing."""
    e = _endpoints(tiny, ["T1", "C1", "C2"])
    assert e.loc["T1", "d_dimer_d7"] == pytest.approx(1500.0, rel=1e-12)
    assert e.loc["C1", "d_dimer_d7"] == 2000.0
    assert math.isnan(e.loc["C2", "d_dimer_d7"])
    c2 = e.loc["C2"]
    assert (c2["imv_free_days_28"], c2["hfno_free_days_28"], c2["oxygen_free_days_28"], c2["icu_free_days_28"]) == (28, 21, 21, 16)


def test_endpoint_definitions_follow_the_spec(tiny):
    study, _ = tiny
    names = [d.name for d in endpoint_definitions(study)]
    assert names == ["alive_d28", "alive_d60", "time_to_death", "need_imv", "imv_free_days_28",
                     "hfno_free_days_28", "oxygen_free_days_28", "icu_free_days_28", "d_dimer_d7"]


def test_trajectories_merge_records_into_episodes_in_days_from_index(tiny):
    """T1 (index 06-02 00:00): HFNC 06-01 -> 06-03 12:00 is days -1..1.5; IMV to 06-05 06:00 (3.25);
    NC to 06-09 (7); Room Air to discharge 06-12 (10). ICU 06-01 -> 06-10 is -1..8. MSC on days 0, 3, 6;
    the stroke on day 4; discharged home on day 10."""
    from controlarm.outcomes import derive_trajectories

    study, sources = tiny
    cohort = build_cohort(sources, study).patients
    matched = cohort[cohort["patient_id"] == "T1"].assign(set_id=1, role="treated")
    traj = derive_trajectories(sources, matched, study)
    sup = traj["support"]
    dev = sup[sup["kind"] == "device"][["category", "start_day", "end_day"]].values.tolist()
    assert dev == [["High Flow NC", -1.0, 1.5], ["IMV", 1.5, 3.25], ["Nasal Cannula", 3.25, 7.0], ["Room Air", 7.0, 10.0]]
    assert sup[sup["kind"] == "icu"][["start_day", "end_day"]].values.tolist() == [[-1.0, 8.0]]
    ev = traj["events"]
    assert ev[ev["kind"] == "administration"]["day"].tolist() == [0.0, 3.0, 6.0]
    assert ev[ev["kind"] == "adverse_event"][["day", "label"]].values.tolist() == [[4.0, "Ischaemic stroke"]]
    assert ev[ev["kind"] == "discharge"][["day", "label"]].values.tolist() == [[10.0, "Home"]]
    labs = traj["labs"]
    dd = labs[labs["lab_category"] == "d_dimer"][["day", "value"]].values.tolist()
    assert dd == [[6.0, 900.0], [7.0, 1500.0], [8.0, 400.0]]
    assert labs[labs["lab_category"] == "crp"][["day", "value"]].values.tolist() == [[-1.0, 80.0]]
