"""Tests of the report room's figures (``controlarm.report._figures``): valid, deterministic SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd

from controlarm.cohort._flow import Flow, FlowStep
from controlarm.outcomes._endpoints import Endpoint
from controlarm.report._figures import flow_svg, km_svg, love_svg

FLOW = Flow((
    FlowStep("enrolled", "trial", 9, (("no product given", 1),)),
    FlowStep("pool candidates", "pool", 400, (("age outside 18–70 years and a long reason that wraps", 40),)),
))
MATCHED = pd.DataFrame({"set_id": [1, 1, 1, 2, 2, 2], "role": ["treated", "control", "control"] * 2,
                        "patient_id": ["T1", "C1", "C2", "T2", "C1", "C3"]})


def _parse(svg: str) -> ET.Element:
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    return ET.fromstring(svg)


def test_flow_svg_is_valid_and_deterministic():
    svg = flow_svg(FLOW, MATCHED, "1:2")
    root = _parse(svg)
    assert root.tag.endswith("svg")
    assert svg == flow_svg(FLOW, MATCHED, "1:2")
    assert "Date" not in svg and "<metadata" not in svg
    taller = flow_svg(FLOW.then(FlowStep("matching", "pool", 360, (("not selected", 357),))), MATCHED, "1:2")
    assert float(_parse(taller).get("height").rstrip("pt")) > float(root.get("height").rstrip("pt"))


def test_love_svg_handles_missing_smd():
    balance = pd.DataFrame({"covariate": ["age", "crp"], "smd_before": [0.4, float("nan")], "smd_after": [0.05, 0.2]})
    svg = love_svg(balance)
    _parse(svg)
    assert svg == love_svg(balance)


def test_km_svg_with_one_empty_arm():
    ep = Endpoint("ttd", "Time to death", "time_to_event", "t", "days to death", event_column="d")
    frame = pd.DataFrame({"role": ["treated"] * 3 + ["control"] * 3, "t": [60, 60, 12.5, 3, 20, 60],
                          "d": [0, 0, 1, 1, 1, 0]})
    svg = km_svg(frame, ep)
    _parse(svg)
    assert svg == km_svg(frame, ep)
    _parse(km_svg(frame[frame["role"] == "control"], ep))


# --------------------------------------------------------------------------- forest, sets, labs, swimmer
from controlarm.report._figures_effects import forest_svg, sets_svg  # noqa: E402
from controlarm.report._figures_patients import (  # noqa: E402
    lab_summary,
    labs_svg,
    patient_numbers,
    support_level,
    swimmer_events,
    swimmer_svg,
)

PANELS = [
    {"title": "Odds ratio", "log": True, "ref": 1.0, "rows": [
        {"label": "Alive at day 28", "value": None, "low": None, "high": None, "text": "not estimable"},
        {"label": "Needed IMV", "value": 0.67, "low": 0.11, "high": None, "text": "0.667 (0.108 to NA)"}]},
    {"title": "Hodges–Lehmann difference (days)", "log": False, "ref": 0.0, "rows": [
        {"label": "IMV-free days", "value": 1.8, "low": -9.0, "high": 12.7, "text": "1.83 (-9.00 to 12.7)"}]},
]


def test_forest_svg_draws_every_panel_and_is_deterministic():
    svg = forest_svg(PANELS)
    root = _parse(svg)
    assert svg == forest_svg(PANELS)
    taller = forest_svg(PANELS + [dict(PANELS[1], title="More")])
    assert float(_parse(taller).get("height").rstrip("pt")) > float(root.get("height").rstrip("pt"))
    _parse(forest_svg([]))  # nothing to draw is still a picture
    _parse(forest_svg([{"title": "HR", "log": True, "ref": 1.0, "rows": [
        {"label": "Death", "value": None, "low": None, "high": None, "text": "not estimable"}]}]))


def test_sets_svg():
    sets = [{"set_id": 1, "n_controls": 3, "distances": [0.1, 0.2, 0.35]},
            {"set_id": 2, "n_controls": 2, "distances": []}]
    svg = sets_svg(sets, "mahalanobis")
    _parse(svg)
    assert svg == sets_svg(sets, "mahalanobis")
    _parse(sets_svg([]))


ADSL = pd.DataFrame({"USUBJID": ["T2", "C1", "T1", "C2"], "ARM": ["treated", "control", "treated", "control"],
                     "SETID": [2, 2, 1, 1]})
SUPPORT = pd.DataFrame({
    "patient_id": ["T1", "T1", "T1", "T2", "T2", "C1"], "role": ["treated"] * 5 + ["control"],
    "set_id": [1, 1, 1, 2, 2, 2], "kind": ["device", "ecmo", "icu", "device", "device", "device"],
    "category": ["IMV", "VV ECMO", "icu", "High Flow NC", "Other", "Room Air"],
    "start_day": [-2.0, 1.0, -2.0, 0.0, 3.0, 0.0], "end_day": [9.0, 4.0, 9.5, 3.0, 80.0, 5.0]})
EVENTS = pd.DataFrame({
    "patient_id": ["T1", "T1", "T2", "T2", "C1"], "role": ["treated"] * 4 + ["control"], "set_id": [1, 1, 2, 2, 2],
    "kind": ["administration", "adverse_event", "adverse_event", "death", "discharge"],
    "day": [0.0, 2.5, 1.0, 20.0, 5.0], "label": ["MSC", "Rash", "Fever", "death", "Home"]})


def test_swimmer_numbers_patients_by_set_and_adverse_events_in_order():
    assert patient_numbers(ADSL) == {"T1": 1, "T2": 2}
    ev = swimmer_events(ADSL, EVENTS)
    assert ev[["patient", "kind", "number"]].values.tolist() == [
        [1, "administration", 0], [1, "adverse_event", 1], [2, "adverse_event", 2], [2, "death", 0]]
    assert [support_level("device", "Room Air"), support_level("device", "Face Mask"), support_level("device", "CPAP"),
            support_level("device", "IMV"), support_level("ecmo", "VV ECMO"), support_level("device", "Other")] == \
        [0, 1, 3, 4, 5, None]


def test_swimmer_svg_draws_only_trial_patients_and_no_ids():
    svg = swimmer_svg(ADSL, SUPPORT, EVENTS, horizon=60)
    _parse(svg)
    assert svg == swimmer_svg(ADSL, SUPPORT, EVENTS, horizon=60)
    assert "T1" not in svg and "C1" not in svg  # text is drawn as paths; ids never reach the picture
    _parse(swimmer_svg(ADSL, SUPPORT.iloc[0:0], EVENTS.iloc[0:0]))


def test_lab_summary_takes_each_patients_daily_median_first():
    adlb = pd.DataFrame({"USUBJID": ["A", "A", "B", "C", "A"], "ARM": ["treated"] * 3 + ["control", "treated"],
                         "PARAMCD": ["CRP"] * 5, "PARAM": ["CRP (mg/L)"] * 5, "ADY": [0, 0, 0, 0, 1],
                         "AVAL": [10.0, 30.0, 40.0, 5.0, 8.0]})
    s = lab_summary(adlb)
    day0 = s[(s["ARM"] == "treated") & (s["ADY"] == 0)].iloc[0]
    assert (day0["n"], day0["median"], day0["q1"], day0["q3"]) == (2, 30.0, 25.0, 35.0)  # A: median 20, B: 40
    svg = labs_svg(adlb, min_patients=1)
    _parse(svg)
    assert svg == labs_svg(adlb, min_patients=1)
    _parse(labs_svg(adlb.iloc[0:0]))
