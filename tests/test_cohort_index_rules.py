"""Index-date rules of the study file, on the hand-built timelines of tests/_clif.py.

Timelines (see tests/_clif.py): T1 (trial) ICU 06-01 00:00-06-10, HFNC 06-01 00:00-06-03 12:00, IMV
to 06-05 06:00, then NC; dexamethasone daily from 06-01 00:00 (10 doses); first MSC 06-02 00:00.
C1 ICU from 07-01 06:00, HFNC from 06:00 until death 07-11 00:00, dexamethasone daily from 07-01
00:00. C2 ICU 08-01-08-15, HFNC 08-01-08-10, dexamethasone daily from 08-03 12:00. C3 on IMV in
ICU, never dexamethasone. C4 80 years old. C5 only on a nasal cannula in ICU, dexamethasone from
11-01 00:00. A 24-hour window after a dose counts as "on" dexamethasone, so ten daily doses cover
[first dose, first dose + 10 days).
"""

from __future__ import annotations

import pandas as pd
import pytest

from controlarm.cohort import build_cohort, derive_eligibility
from controlarm.errors import InputError
from controlarm.features import derive_baseline
from controlarm.sources import open_sources
from controlarm.spec import load_study, study_from_dict

from . import _clif
from ._clif import ts


def _sources_with(tmp_path, replace: dict[str, str]):
    path = _clif.write(tmp_path)
    text = path.read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    study = load_study(path)
    return study, open_sources(study.data.source, base_dir=study.base_dir)


@pytest.fixture(scope="module")
def risk_set(tmp_path_factory):
    return _sources_with(tmp_path_factory.mktemp("riskset"), {'product = "MSC"': 'product = "MSC"\npool_method = "risk_set"'})


def test_lists_of_locations_devices_and_medications(tmp_path):
    """With ICU or stepdown, any of HFNC/IMV/NC, and tocilizumab or dexamethasone, C5 (NC in ICU,
    dexamethasone from 11-01 00:00, ICU and NC from 11-01 00:00) now has an index at 11-01 00:00;
    C1 and C2 keep theirs; C3 (no drug) and C4 (age) still fall out."""
    study, sources = _sources_with(tmp_path, {
        'location = "icu"': 'location = ["icu", "stepdown"]',
        'devices = ["High Flow NC", "IMV"]': 'devices = ["High Flow NC", "IMV", "Nasal Cannula"]',
        'medication = "dexamethasone"': 'medication = ["tocilizumab", "dexamethasone"]',
    })
    cohort = build_cohort(sources, study)
    idx = cohort.patients.set_index("patient_id")["index_time"]
    assert list(cohort.patients["patient_id"]) == ["T1", "C1", "C2", "C5"]
    assert idx["C5"] == ts("2020-11-01 00:00") and idx["C1"] == ts("2020-07-01 06:00") and idx["C2"] == ts("2020-08-03 12:00")
    pool = cohort.flow.for_group("pool")[0]
    assert dict(pool.excluded) == {
        "no index: never on tocilizumab/dexamethasone while on High Flow NC/IMV/Nasal Cannula in icu/stepdown": 1,
        "age above 70": 1,
    }


def test_trial_first_condition_uses_the_pool_rule(tmp_path):
    """trial = "first_condition": T1 is first in ICU on HFNC within 24 h of dexamethasone at 06-01 00:00,
    a day before the first MSC."""
    study, sources = _sources_with(tmp_path, {'product = "MSC"': 'trial = "first_condition"\nproduct = "MSC"'})
    cohort = build_cohort(sources, study)
    idx = cohort.patients.set_index("patient_id")["index_time"]
    assert idx["T1"] == ts("2020-06-01 00:00")
    assert idx["C1"] == ts("2020-07-01 06:00")


def test_eligibility_intervals_and_landmarks(risk_set):
    """C1: ICU ∩ HFNC ∩ dexamethasone from 07-01 06:00 until death 07-11 00:00; clock = ICU admission
    07-01 06:00, so days 0 to 9.75. C2: from dexamethasone 08-03 12:00 until HFNC stops 08-10 00:00;
    ICU admission 08-01 00:00, so days 2.5 to 9. C3 never on the drug, C4 past age 70 at every moment,
    C5 never on HFNC/IMV: no interval. T1: 06-01 00:00 to 06-05 06:00 (IMV ends), landmark = first
    MSC 06-02 00:00 = day 1 of its ICU clock, eligible then."""
    study, sources = risk_set
    el = derive_eligibility(sources, study)
    iv = el.intervals.set_index("patient_id")
    assert set(iv.index) == {"T1", "C1", "C2"}
    assert (iv.loc["C1", "start_time"], iv.loc["C1", "end_time"]) == (ts("2020-07-01 06:00"), ts("2020-07-11 00:00"))
    assert (iv.loc["C1", "start_day"], iv.loc["C1", "end_day"]) == (0.0, 9.75)
    assert (iv.loc["C2", "start_day"], iv.loc["C2", "end_day"]) == (2.5, 9.0)
    assert (iv.loc["T1", "start_time"], iv.loc["T1", "end_time"]) == (ts("2020-06-01 00:00"), ts("2020-06-05 06:00"))
    lm = el.landmarks.set_index("patient_id")
    assert lm.loc["T1", "landmark_day"] == 1.0 and bool(lm.loc["T1", "eligible_at_landmark"])
    assert el.origin == "icu_admission"


@pytest.mark.parametrize("day,expected", [
    (1.0, {"C1": "2020-07-02 06:00"}),
    (3.0, {"C1": "2020-07-04 06:00", "C2": "2020-08-04 00:00"}),
    (9.5, {"C1": "2020-07-10 18:00"}),
    (9.75, {}),   # C1's interval ends at day 9.75 (death): half-open
    (2.5, {"C1": "2020-07-03 18:00", "C2": "2020-08-03 12:00"}),
])
def test_at_risk_sets_the_index_to_the_landmark(risk_set, day, expected):
    study, sources = risk_set
    at = derive_eligibility(sources, study).at_risk(day)
    assert dict(zip(at["patient_id"], at["index_time"])) == {k: ts(v) for k, v in expected.items()}
    assert derive_eligibility(sources, study).at_risk(pd.Timedelta(days=day)).equals(at)


def test_at_risk_rejects_a_bad_landmark(risk_set):
    study, sources = risk_set
    with pytest.raises(InputError, match="landmark"):
        derive_eligibility(sources, study).at_risk(float("nan"))


def test_risk_set_cohort_leaves_the_pool_index_to_matching(risk_set):
    """Pool candidates who are ever eligible stay, without an index; the flow names why the others left."""
    study, sources = risk_set
    cohort = build_cohort(sources, study)
    pool = cohort.patients[cohort.patients["group"] == "pool"]
    assert list(pool["patient_id"]) == ["C1", "C2"] and pool["index_time"].isna().all()
    assert cohort.patients.loc[cohort.patients["group"] == "trial", "index_time"].tolist() == [ts("2020-06-02 00:00")]
    assert dict(cohort.flow.for_group("pool")[0].excluded) == {
        "no index: never on High Flow NC/IMV in icu": 1,
        "no index: never on dexamethasone while on High Flow NC/IMV in icu": 1,
        "no eligible time within the calendar window, age limits and before death": 1,
    }
    assert cohort.eligibility is not None


def test_hospital_admission_clock(tmp_path):
    """risk_set_origin = "hospital_admission": C2 was admitted 08-01 00:00, so its interval is days 2.5-9;
    C1 admitted 07-01 00:00: days 0.25-10."""
    study, sources = _sources_with(tmp_path, {'product = "MSC"': 'product = "MSC"\npool_method = "risk_set"\n'
                                                                 'risk_set_origin = "hospital_admission"'})
    iv = derive_eligibility(sources, study).intervals.set_index("patient_id")
    assert (iv.loc["C1", "start_day"], iv.loc["C1", "end_day"]) == (0.25, 10.0)
    assert (iv.loc["C2", "start_day"], iv.loc["C2", "end_day"]) == (2.5, 9.0)


def test_baseline_as_of_several_landmarks_of_one_candidate(risk_set):
    """C1 evaluated at two landmarks: at 07-01 06:00 its CRP of 07-01 05:00 (120) is in the 48 h look-back
    and it was admitted 0.25 days before; at 07-05 06:00 that CRP is 97 h old (missing) and admission
    was 4.25 days before. Rows are kept per landmark, not per patient."""
    study, sources = risk_set
    cohort = build_cohort(sources, study)
    rows = pd.DataFrame({"patient_id": ["C1", "C1"], "hospitalization_id": ["HC1", "HC1"], "group": ["pool", "pool"],
                         "index_time": [ts("2020-07-01 06:00"), ts("2020-07-05 06:00")], "age": [52.0, 52.0]})
    base = derive_baseline(sources, type(cohort)(patients=rows, flow=cohort.flow), study)
    assert base["crp"].tolist()[0] == 120.0 and pd.isna(base["crp"].tolist()[1])
    assert base["days_since_admission"].tolist() == [0.25, 4.25]


def _raw(pool: dict, **index) -> dict:
    return {"study": {"name": "x"}, "data": {"source": "d"}, "index": {"product": "MSC", "pool": pool, **index},
            "features": {"covariates": [{"name": "age", "kind": "age"}]}, "matching": {"covariates": ["age"]}}


def test_spec_index_rules_are_checked_and_backward_compatible():
    s = study_from_dict(_raw({"location": "icu", "devices": ["IMV"]}))
    assert s.index.pool.locations == ("icu",) and s.index.pool.medications == ()
    assert s.index.trial == "first_administration" and s.index.pool_method == "first_condition"
    s = study_from_dict(_raw({"location": ["icu", "ward"], "medication": ["a", "b"]}, pool_method="risk_set"))
    assert s.index.pool.locations == ("icu", "ward") and s.index.pool.medications == ("a", "b")
    for bad in ({"location": None}, {"location": []}, {"location": "spaceship"}, {"location": None, "medication": [" "]}):
        with pytest.raises(InputError):
            study_from_dict(_raw(bad))
    with pytest.raises(InputError, match="pool_method"):
        study_from_dict(_raw({"location": "icu"}, pool_method="nearest"))
    with pytest.raises(InputError, match="who_scale_days"):
        study_from_dict({**_raw({"location": "icu"}), "outcomes": {"who_scale_days": [0]}})
    with pytest.raises(InputError, match="free_days"):
        study_from_dict({**_raw({"location": "icu"}), "outcomes": {"free_days": ["imv", "imv"]}})


def test_risk_set_rows_cut_eligibility_at_the_landmarks(risk_set):
    """T1's landmark is day 1: only C1 (days 0-9.75) is at risk then -> one row [1, 9.75), index
    07-02 06:00. With landmarks 1, 3 and 9.5: C1 -> [1, 3), [3, 9.5), [9.5, 9.75); C2 (days 2.5-9)
    -> [3, 9) (day 9.5 is past its end)."""
    study, sources = risk_set
    el = derive_eligibility(sources, study)
    rows = el.risk_set_rows()
    assert rows[["patient_id", "start", "stop"]].values.tolist() == [["C1", 1.0, 9.75]]
    assert rows["index_time"].tolist() == [ts("2020-07-02 06:00")]
    rows = el.risk_set_rows(pd.Series([3.0, 1.0, 9.5, 3.0]))
    assert rows[["patient_id", "start", "stop"]].values.tolist() == [
        ["C1", 1.0, 3.0], ["C1", 3.0, 9.5], ["C1", 9.5, 9.75], ["C2", 3.0, 9.0]]
    assert rows["index_time"].tolist() == [ts("2020-07-02 06:00"), ts("2020-07-04 06:00"), ts("2020-07-10 18:00"),
                                           ts("2020-08-04 00:00")]
    assert el.risk_set_rows(pd.Series([], dtype=float)).empty
