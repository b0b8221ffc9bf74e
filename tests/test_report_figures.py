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
