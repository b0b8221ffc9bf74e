"""The safety room: exposure, adherence, adverse-event tables, deaths and pool context.

Every expected number is worked out by hand in ``tests/_safety_fixture.py`` (its docstring), from
the rows written there, not from controlarm's output. The demo test checks the designed trial arm
(docs/demo.md): 8 patients x 3 infusions, no deviation, one serious ischaemic stroke judged unrelated.
"""

from __future__ import annotations

import dataclasses
import json
import pickle

import pandas as pd
import pytest

from controlarm.errors import InputError
from controlarm.safety import CONTEXT_CAVEAT, SafetyResults, convert_dose, parse_dose_unit, summarise_safety
from controlarm.sources import open_sources

from . import _safety_fixture as F

N = 5


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    src = open_sources(F.write(tmp_path_factory.mktemp("safety") / "data"))
    yield src
    src.close()


@pytest.fixture(scope="module")
def res(sources) -> SafetyResults:
    return summarise_safety(sources, F.trial_frame(), F.controls_frame(), F.study())


def _row(records, **match):
    hits = [r for r in records if all(r.get(k) == v for k, v in match.items())]
    assert len(hits) == 1, (match, hits)
    return hits[0]


# ------------------------------------------------------------------------------------ exposure
def test_exposure_summary(res):
    e = res.to_dict()["exposure"]
    assert e["n_patients"] == 5 and e["n_patients_exposed"] == 5
    assert e["total_administrations"] == 15
    assert e["administrations_per_patient"] == {"n": 5, "median": 3.0, "min": 2.0, "max": 4.0}
    assert e["patients_by_number_of_administrations"] == {"2": 1, "3": 3, "4": 1}
    assert e["dose_unit"] == "10^6 cells/kg"
    assert e["dose_per_administration"] == {"n": 15, "median": 2.0, "min": 1.5, "max": 3.5}
    assert e["cumulative_dose_per_patient"] == {"n": 5, "median": 6.0, "min": 4.0, "max": 9.5}
    assert e["days_first_to_last_administration"] == {"n": 5, "median": 6.0, "min": 6.0, "max": 7.0}
    # the weight conversion is said, in aggregate
    assert any("3 of 15 administrations" in n and "weight" in n for n in res.notes)


def test_absolute_dose_divided_by_last_weight_before(res):
    """SAFT-03: 140 x 10^6 cells / 70 kg (not 80 earlier, 60 later, nor 90 in another stay)."""
    a = res.administrations
    c = a[a["patient_id"] == "SAFT-03"]
    assert c["weight_kg"].tolist() == [70.0, 70.0, 70.0]
    assert c["dose_target"].tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert set(c["conversion"]) == {"divided by weight"}
    d = a[a["patient_id"] == "SAFT-04"]
    assert d["day"].tolist() == [0.0, 4.5, 6.0, 7.0]
    assert "placebo-flush" not in json.dumps(res.to_dict(listings=True))


def test_dose_units():
    u = parse_dose_unit("2 x 10^8 cells")
    assert (u.scale, u.base, u.per_kg) == (2e8, "cells", False)
    assert parse_dose_unit("10^6 cells/kg") == dataclasses.replace(parse_dose_unit("1e6 cells / kg"),
                                                                   text="10^6 cells/kg")
    assert convert_dose(1.4e8, "cells", "10^6 cells/kg", 70.0) == (pytest.approx(2.0), "divided by weight")
    assert convert_dose(2e6, "cells/kg", "10^6 cells/kg", None) == (pytest.approx(2.0), "scaled")
    value, how = convert_dose(140.0, "10^6 cells", "10^6 cells/kg", None)
    assert how == "no weight" and value != value
    assert convert_dose(5.0, "mg", "10^6 cells/kg", 70.0)[1] == "not convertible"


# ------------------------------------------------------------------------------------ adherence
def test_deviations_missed_late_wrong_dose_extra(res):
    dev = res.deviations
    got = {(r.patient_id, None if pd.isna(r.administration) else int(r.administration), r.kind)
           for r in dev.itertuples()}
    assert got == {("SAFT-02", 2, "missed"), ("SAFT-04", 2, "late"), ("SAFT-04", 3, "wrong dose"),
                   ("SAFT-04", None, "extra")}
    late = dev[dev["kind"] == "late"].iloc[0]
    assert (late["expected_day"], late["actual_day"]) == (3.0, 4.5)
    assert "36.0 h after" in late["detail"]
    assert dev[dev["kind"] == "wrong dose"].iloc[0]["dose"] == 3.5
    assert dev[dev["kind"] == "extra"].iloc[0]["actual_day"] == 7.0
    ad = res.to_dict()["adherence"]
    assert ad["n_patients_with_deviation"] == 2 and ad["n_patients_per_protocol"] == 3
    assert ad["by_kind"]["missed"] == {"n_patients": 1, "n_deviations": 1}
    assert ad["by_kind"]["early"] == {"n_patients": 0, "n_deviations": 0}
    assert {(r["kind"], r["administration"]) for r in ad["by_administration"]} == {
        ("missed", 2), ("late", 2), ("wrong dose", 3), ("extra", None)}
    t = res.tables()["adherence"].set_index("Statistic")["Value"]
    assert t["Patients with at least one deviation"] == "2 (40.0%)"


def test_early_and_missed_by_death():
    """0 h and 20 h: the second is early for slot 2 (expected 72 h); slot 3 missed after death on day 2."""
    from controlarm.safety import derive_deviations, derive_exposure

    t0 = pd.Timestamp("2021-01-01", tz="UTC")
    adm = pd.DataFrame({"patient_id": ["X", "X"], "admin_dttm": [t0, t0 + 20 * F.H], "dose": [2.0, 2.0],
                        "dose_unit": ["10^6 cells/kg"] * 2, "weight_kg": [float("nan")] * 2})
    sched = F.study().safety.schedule
    exp, unit, _ = derive_exposure(adm, pd.Series({"X": t0}), sched)
    dev = derive_deviations(exp, ["X", "Y"], sched, unit, death_day={"X": 2.0})
    assert dev[["patient_id", "administration", "kind"]].values.tolist() == [
        ["X", 2, "early"], ["X", 3, "missed"], ["Y", 1, "missed"], ["Y", 2, "missed"], ["Y", 3, "missed"]]
    assert "died on day 2.0" in dev.iloc[1]["detail"]


def test_no_schedule(sources):
    r = summarise_safety(sources, F.trial_frame(), F.controls_frame(), F.study(schedule=False))
    assert r.to_dict()["adherence"] == {"schedule": None, "message": "no protocol schedule given"}
    assert r.deviations is None
    assert "no protocol schedule given" in r.tables()["adherence"]["Value"].tolist()
    assert "no protocol schedule given" in r.to_html().lower()
    assert r.to_dict()["exposure"]["dose_unit"] == "10^6 cells/kg"  # the most frequent recorded unit


# ------------------------------------------------------------------------------------ adverse events
def test_overview_periods_and_windows(res):
    ov = {r["key"]: (r["n_patients"], r["n_events"]) for r in res.to_dict()["adverse_events"]["overview"]}
    assert ov == {"any_teae": (4, 11), "serious_teae": (1, 1), "grade_3_plus_teae": (2, 2),
                  "related_teae": (2, 3), "grade_5_teae": (1, 1), "infusion_related": (2, 3),
                  "pre_treatment": (1, 1), "after_window": (1, 1)}
    ev = res.adverse_events.set_index("term")
    assert ev.loc["Headache", "period"] == "pre-treatment" and not ev.loc["Headache", "teae"]
    assert ev.loc["Fatigue", "teae"]                            # onset exactly at day 28: included
    assert ev.loc["Infusion related reaction", "teae"]           # onset exactly at the first dose
    assert ev.loc["Pneumonia", "period"] == "after the TEAE window"
    assert ev.loc["Pyrexia", "after_administration"] == 2
    assert ev.loc["Rash maculo-papular", "after_administration"] == 3
    assert ev.loc["Infusion related reaction", "after_administration"] == 1
    assert not ev.loc["Septic shock", "infusion_related"]
    t = res.tables()["ae_overview"].set_index("Category")
    assert t.loc["Any treatment-emergent AE (TEAE)", "Patients, n (%)"] == "4 (80.0%)"


def test_soc_pt_counts_patients_once_per_term(res):
    rows = res.to_dict()["adverse_events"]["by_soc_pt"]
    assert rows[0] == {"level": "any", "soc": "", "term": "", "n_patients": 4, "pct_patients": 80.0, "n_events": 11}
    # GI first (2 patients), then the 1-patient SOCs alphabetically
    socs = [r["soc"] for r in rows if r["level"] == "soc"]
    assert socs == [F.GI, F.GEN, F.INF, "Injury, poisoning and procedural complications", "Investigations",
                    "Skin and subcutaneous tissue disorders"]
    assert _row(rows, level="soc", soc=F.GI) | {} == {"level": "soc", "soc": F.GI, "term": "", "n_patients": 2,
                                                       "pct_patients": 40.0, "n_events": 5}
    nausea = _row(rows, level="term", term="Nausea")   # "nausea " grouped with "Nausea"
    assert (nausea["n_patients"], nausea["pct_patients"], nausea["n_events"]) == (2, 40.0, 4)
    assert _row(rows, level="term", term="Vomiting")["n_events"] == 1
    assert not [r for r in rows if r["term"] in ("Headache", "Pneumonia")]   # not TEAEs


def test_worst_grade_per_patient(res):
    rows = res.to_dict()["adverse_events"]["by_grade"]
    grades = lambda r: [r[f"grade_{g}"] for g in range(1, 6)]  # noqa: E731
    assert grades(rows[0]) == [1, 1, 1, 0, 1]                    # 01 -> 1, 04 -> 2, 03 -> 3, 05 -> 5
    assert grades(_row(rows, level="term", term="Nausea")) == [1, 0, 1, 0, 0]   # 04 -> 1; 03 -> 3 (once)
    assert grades(_row(rows, level="soc", soc=F.GI)) == [1, 0, 1, 0, 0]
    t = res.tables()["ae_by_grade"]
    row = t[t["Preferred term"] == "Nausea"].iloc[0]
    assert (row["Grade 1"], row["Grade 2"], row["Grade 3"], row["Any grade"]) == (
        "1 (20.0%)", "0 (0.0%)", "1 (20.0%)", "2 (40.0%)")


def test_seriousness_and_relatedness(res):
    d = res.to_dict()["adverse_events"]
    s = d["by_seriousness"]
    assert _row(s, level="category", category="Serious")["n_patients"] == 1
    assert _row(s, level="term", category="Serious", term="Septic shock")["soc"] == F.INF
    non = _row(s, level="category", category="Non-serious")
    assert (non["n_patients"], non["n_events"]) == (4, 10)
    r = d["by_relatedness"]
    rel = _row(r, level="category", category="Related (possible, probable, definite)")
    assert (rel["n_patients"], rel["pct_patients"], rel["n_events"]) == (2, 40.0, 3)
    nrel = _row(r, level="category", category="Not related (not related, unlikely)")
    assert (nrel["n_patients"], nrel["n_events"]) == (4, 8)
    assert _row(r, level="term", term=F.XSS)["category"] == "Not related (not related, unlikely)"   # unlikely
    assert not [x for x in r if x["category"] == "Relatedness missing"]
    assert "possible, probable" in res.conventions["relatedness"]


def test_infusion_related_table(res):
    rows = res.to_dict()["adverse_events"]["infusion_related"]
    assert rows[0]["n_patients"] == 2 and rows[0]["n_events"] == 3
    assert rows[0]["after_administration"] == {"1": 1, "2": 1, "3": 1}
    assert _row(rows, level="term", term="Pyrexia")["after_administration"] == {"2": 1}


def test_deaths(res):
    rows = res.to_dict()["deaths"]
    assert _row(rows, key="death_in_window")["n_patients"] == 1
    assert _row(rows, key="death_in_window")["pct_patients"] == 20.0
    assert _row(rows, key="death_after_window")["n_patients"] == 0
    assert (_row(rows, key="grade_5_teae")["n_patients"], _row(rows, key="grade_5_teae")["n_events"]) == (1, 1)
    g5 = _row(rows, key="grade_5_term")
    assert (g5["soc"], g5["term"]) == (F.INF, "Septic shock")
    assert res.death_listing.values.tolist() == [["SAFT-05", 9.0]]


# ------------------------------------------------------------------------------------ context
def test_context_counts(res):
    ctx = res.to_dict()["context"]
    assert ctx["caveat"] == CONTEXT_CAVEAT
    assert CONTEXT_CAVEAT == ("ascertained differently (diagnosis codes vs. active AE collection); "
                              "context only, not a comparison")
    e = ctx["events"][0]
    assert e["controls"] == {"n": 3, "N": 7, "pct": 42.9}
    assert e["controls_not_present_on_admission"] == {"n": 2, "N": 7, "pct": 28.6}
    assert e["trial"] == {"n": 1, "N": 5, "pct": 20.0}
    t = res.tables()["context"].iloc[0]
    assert t["Matched controls, n/N (%)"] == "3/7 (42.9%)"
    assert t["Note"] == CONTEXT_CAVEAT


@pytest.mark.parametrize("threshold,shown,shown_new", [(5, "<5", "<5"), (3, 3, "<3")])
def test_small_cells_suppressed_in_dict_tables_html(sources, threshold, shown, shown_new):
    r = summarise_safety(sources, F.trial_frame(), F.controls_frame(), F.study(suppress=True, threshold=threshold))
    e = r.to_dict()["context"]["events"][0]
    assert e["controls"]["n"] == shown and e["controls_not_present_on_admission"]["n"] == shown_new
    assert e["trial"]["n"] == 1                     # the trial's own patients are not suppressed
    if isinstance(shown, str):
        assert e["controls"]["pct"] is None and "42.9" not in json.dumps(r.to_dict())
        assert r.tables()["context"].iloc[0]["Matched controls, n/N (%)"] == f"{shown}/7"
        assert f"&lt;{threshold}/7" in r.to_html()
    assert "28.6" not in json.dumps(r.to_dict()) and "28.6" not in r.to_html()


# ------------------------------------------------------------------------------------ outputs
def test_html_escapes_user_text(res):
    page = res.to_html()
    assert "<script>" not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count('<table class="data">') == 11
    assert "<h3>Adverse events: overview</h3>" in page


def test_listings_off_by_default(res):
    ids = list(F.T0) + F.CONTROLS + [F.hosp(p) for p in F.T0]
    text = json.dumps(res.to_dict()) + res.to_html() + "".join(df.to_csv() for df in res.tables().values())
    assert not [i for i in ids if i in text]
    assert "listings" not in res.to_dict()
    full = json.dumps(res.to_dict(listings=True))
    assert all(p in full for p in F.T0)
    assert "SAFT-04" in res.to_html(listings=True)
    listing = res.tables(listings=True)
    assert {"listing_exposure", "listing_deviations", "listing_adverse_events", "listing_deaths"} <= set(listing)
    per = listing["listing_exposure"].set_index("patient_id")
    assert per.loc["SAFT-04", "days"] == "0.0, 4.5, 6.0, 7.0"
    assert per.loc["SAFT-04", "doses"] == "2, 2, 3.5, 2"


def test_result_is_frozen_json_ready_and_pickles(res):
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.n_treated = 3
    json.dumps(res.to_dict(listings=True), allow_nan=False)
    t = res.tables()
    t["exposure"].iloc[0, 1] = "changed"
    assert res.tables()["exposure"].iloc[0, 1] == "5"
    assert pickle.loads(pickle.dumps(res)).to_dict() == res.to_dict()
    assert set(t) == {"exposure", "adherence", "deviations", "ae_overview", "ae_by_soc_pt", "ae_by_grade",
                      "ae_by_seriousness", "ae_by_relatedness", "infusion_related", "deaths", "context"}


def test_bad_input(sources):
    with pytest.raises(InputError, match="missing set_id"):
        summarise_safety(sources, F.trial_frame(), F.controls_frame().drop(columns="set_id"), F.study())
    with pytest.raises(InputError, match="no patients"):
        summarise_safety(sources, F.trial_frame().iloc[:0], F.controls_frame(), F.study())


def test_inputs_not_mutated(sources):
    trial, ctl = F.trial_frame(), F.controls_frame()
    before = (trial.copy(), ctl.copy())
    summarise_safety(sources, trial, ctl, F.study())
    pd.testing.assert_frame_equal(trial, before[0])
    pd.testing.assert_frame_equal(ctl, before[1])


# ------------------------------------------------------------------------------------ demo
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from controlarm.demo import generate_demo
    from controlarm.pipeline import design_study
    from controlarm.spec import load_study

    study = load_study(generate_demo(tmp_path_factory.mktemp("demo")))
    d = design_study(study)
    m = d["matched"]
    trial = m[m["role"] == "treated"][["patient_id", "hospitalization_id", "index_time"]]
    controls = m[m["role"] == "control"][["patient_id", "hospitalization_id", "index_time", "set_id"]]
    yield summarise_safety(d["sources"], trial, controls, study)
    d["sources"].close()


def test_demo_eight_patients_three_infusions_no_deviation(demo):
    d = demo.to_dict()
    assert d["n_treated"] == 8 and d["n_controls"] == 24
    assert d["exposure"]["total_administrations"] == 24
    assert d["exposure"]["patients_by_number_of_administrations"] == {"3": 8}
    assert d["exposure"]["days_first_to_last_administration"] == {"n": 8, "median": 6.0, "min": 6.0, "max": 6.0}
    dose = d["exposure"]["dose_per_administration"]
    assert (dose["n"], dose["min"], dose["max"]) == (24, 1.5, 3.0)
    assert d["adherence"]["n_patients_with_deviation"] == 0 and d["adherence"]["n_patients_per_protocol"] == 8
    assert demo.deviations.empty


def test_demo_ischaemic_stroke_in_the_right_rows(demo):
    """T02: ischaemic stroke, Nervous system disorders, grade 3, serious, not related, day 9 (TEAE)."""
    ae = demo.to_dict()["adverse_events"]
    stroke = _row(ae["by_soc_pt"], level="term", term="Ischaemic stroke")
    assert (stroke["soc"], stroke["n_patients"], stroke["n_events"]) == ("Nervous system disorders", 1, 1)
    g = _row(ae["by_grade"], level="term", term="Ischaemic stroke")
    assert [g[f"grade_{k}"] for k in range(1, 6)] == [0, 0, 1, 0, 0]
    ser = _row(ae["by_seriousness"], level="term", term="Ischaemic stroke")
    assert ser["category"] == "Serious" and ser["soc"] == "Nervous system disorders"
    assert _row(ae["by_seriousness"], level="category", category="Serious")["n_patients"] == 1
    rel = _row(ae["by_relatedness"], level="term", term="Ischaemic stroke")
    assert rel["category"] == "Not related (not related, unlikely)"
    assert _row(ae["by_relatedness"], level="category", category="Related (possible, probable, definite)")[
        "n_patients"] == 0
    ov = {r["key"]: (r["n_patients"], r["n_events"]) for r in ae["overview"]}
    assert ov["any_teae"] == (8, 8) and ov["serious_teae"] == (1, 1) and ov["pre_treatment"] == (0, 0)
    assert not [r for r in ae["infusion_related"] if r["term"] == "Ischaemic stroke"]
    row = demo.adverse_events.set_index("term").loc["Ischaemic stroke"]
    assert row["teae"] and row["day"] == 9.2
    assert _row(demo.to_dict()["deaths"], key="death_in_window")["n_patients"] == 0


def test_demo_context_is_not_empty(demo):
    e = demo.to_dict()["context"]["events"][0]
    assert e["name"] == "Thrombo-embolic events"
    assert e["controls"]["n"] == 3 and e["controls"]["N"] == 24            # three designed twins
    assert e["controls_not_present_on_admission"]["n"] == 2
    assert e["trial"]["n"] == 1                                           # T02's I63.9
