"""Tests of the report's exports: tables.docx, the CSVs and the ADaM-shaped datasets in analysis/."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from controlarm.report import write_report
from controlarm.report._csv import neutralise
from controlarm.report._format import fmt_p

from .test_report import POOL_IDS, TRIAL_IDS, FakeSafety, make_run, stub_figures


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("exp")
    with pytest.MonkeyPatch.context() as mp:
        stub_figures(mp)
        run = make_run(safety=FakeSafety(), outcome_label="=HYPERLINK(\"http://x\")",
                       trial_ids=["@T1", "+T2", "-T3", "T4"])
        write_report(run, base / "r")
    return base / "r"


@pytest.fixture(scope="module")
def listed(tmp_path_factory) -> Path:
    """The same run with report.real_ids on: the real (formula-like) ids reach matched_sets.csv."""
    base = tmp_path_factory.mktemp("exp_listed")
    with pytest.MonkeyPatch.context() as mp:
        stub_figures(mp)
        run = make_run(listings=True, real_ids=True, safety=FakeSafety(), trial_ids=["@T1", "+T2", "-T3", "T4"])
        write_report(run, base / "r")
    return base / "r"


@pytest.fixture(scope="module")
def results(out) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def _docx_tables(path: Path) -> list[list[list[str]]]:
    import docx

    doc = docx.Document(str(path))
    return [[[c.text for c in row.cells] for row in t.rows] for t in doc.tables]


def test_docx_holds_the_same_numbers_as_results_json(out, results):
    tables = _docx_tables(out / "tables.docx")
    assert len(tables) == 4  # Table 1, outcomes, both styles, the safety room's AE table
    table1, outcomes, both, ae = tables
    # Table 1: every cell of results.json, in order
    t1 = results["table1"]
    assert table1[0][1] == f"Treated (n = {t1['n']['treated']})" and table1[0][2] == f"Pool before matching (n = {t1['n']['pool']})"
    for row, data in zip(table1[1:], t1["rows"]):
        assert row[0].startswith(f"{data['covariate']}, {data['statistic']}")
        assert row[1:4] == [data["cells"]["treated"], data["cells"]["pool"], data["cells"]["matched"]]
        assert row[4] == (f"{data['smd_before']:.3f}" if data["smd_before"] is not None else "—")
    # outcomes: each test's p-value, as results.json has it
    text = "\n".join(" | ".join(r) for r in outcomes)
    for name in results["analysis"]["outcome_order"]:
        o = results["outcomes"][name]
        assert o["label"] in text
        s = o["summaries"]["treated"]
        if s.get("events") is not None:
            assert f"{s['events']}/{s['n']}" in text
        for t in o["tests"]:
            p = fmt_p(t["p_value"])
            assert (f"{t['name']}: p = {p}" if not p.startswith("<") else f"{t['name']}: p {p}") in text
        for e in o["estimates"]:
            assert e["name"] in text
    assert "Hodges–Lehmann shift: -613 (95% CI -1890 to 120)" in text
    # both styles and the AE table
    assert any("Mantel–Haenszel: 0.041" in c and "McNemar (pseudo-pairs): 0.021" in " ".join(r)
               for r in both for c in r)
    assert ae[0] == ["Preferred term", "Patients, n (%)", "Events"] and ae[1] == ["Hypokalaemia", "1 (25.0%)", "1"]


def test_docx_without_safety_says_so(tmp_path, monkeypatch):
    import docx

    stub_figures(monkeypatch)
    path = write_report(make_run(), tmp_path / "r")["tables.docx"]
    doc = docx.Document(str(path))
    assert len(doc.tables) == 3
    paragraphs = [p.text for p in doc.paragraphs]
    assert "Safety analysis not computed for this report." in paragraphs
    assert any(p.startswith("We compared the 4 treated patients") for p in paragraphs)  # the methods text


def test_csvs_hold_the_numbers_and_are_safe_in_a_spreadsheet(out, listed, results):
    rows = list(csv.DictReader(io.StringIO((out / "outcomes.csv").read_text(encoding="utf-8"))))
    tests = {r["name"]: r for r in rows if r["row_type"] == "test"}
    assert float(tests["Mantel–Haenszel"]["p_value"]) == 0.0412
    assert tests["McNemar (pseudo-pairs)"]["warning"].startswith("Pseudo-pairs reuse")
    est = next(r for r in rows if r["name"] == "Hodges–Lehmann shift")
    assert (float(est["estimate"]), float(est["ci_low"]), float(est["ci_high"])) == (-612.5, -1890.0, 120.0)
    assert est["estimate"] == "-612.5"  # a number keeps its minus sign
    label = next(r["label"] for r in rows if r["outcome"] == "alive_d28")
    assert label == "'=HYPERLINK(\"http://x\")"  # a formula is neutralised
    t1 = list(csv.DictReader(io.StringIO((out / "table1.csv").read_text(encoding="utf-8"))))
    assert len(t1) == 3 * len(results["table1"]["rows"])
    age_pool = next(r for r in t1 if r["covariate"] == "age" and r["column"] == "pool")
    stats = results["table1"]["rows"][0]["stats"]["pool"]
    assert float(age_pool["mean"]) == pytest.approx(stats["mean"], rel=1e-9) and age_pool["display"] == \
        results["table1"]["rows"][0]["cells"]["pool"]
    assert "T1" not in (out / "matched_sets.csv").read_text(encoding="utf-8")  # pseudonyms by default
    matched = (listed / "matched_sets.csv").read_text(encoding="utf-8")  # real ids with real_ids on
    assert "'@T1" in matched and "'+T2" in matched and "'-T3" in matched and ",T4," in matched
    every_field = [f for folder in (out, listed) for name in ("matched_sets.csv", "outcomes.csv", "table1.csv")
                   for line in csv.reader(io.StringIO((folder / name).read_text(encoding="utf-8"))) for f in line]
    number = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
    assert all(not f.startswith(("=", "+", "-", "@", "\t", "\r")) or number.fullmatch(f) for f in every_field)


@pytest.mark.parametrize(("text", "expected"), [
    ("=1+2", "'=1+2"), ("+SUM(A1)", "'+SUM(A1)"), ("-2+3", "'-2+3"), ("@cmd", "'@cmd"), ("\tx", "'\tx"),
    ("-0.25", "-0.25"), ("+3", "+3"), ("1e-5", "1e-5"), ("age", "age"), ("", ""),
])
def test_neutralise(text, expected):
    assert neutralise(text) == expected


def test_adam_datasets(out):
    adsl = pd.read_parquet(out / "analysis" / "adsl.parquet")
    assert list(adsl.columns[:7]) == ["STUDYID", "USUBJID", "ARM", "ARMCD", "SETID", "MWEIGHT", "MDIST"]
    assert {"age", "male", "crp", "imv_at_index"} <= set(adsl.columns)
    assert len(adsl) == 16 and adsl["USUBJID"].is_unique
    assert adsl.groupby("SETID")["ARM"].apply(list).tolist() == [["treated", "control", "control", "control"]] * 4
    # pseudonyms by default: POOL_IDS[:12] become C-001..C-012 in set order
    assert set(adsl.loc[adsl["ARM"] == "control", "USUBJID"]) == {f"C-{i:03d}" for i in range(1, 13)}
    assert not set(POOL_IDS) & set(adsl["USUBJID"])
    assert (adsl["STUDYID"] == "NCT00000000").all()
    adtte = pd.read_parquet(out / "analysis" / "adtte.parquet")
    assert list(adtte["PARAMCD"].unique()) == ["DTHD60"] and len(adtte) == 16
    assert set(adtte["CNSR"].astype(int)) <= {0, 1} and adtte["AVALU"].eq("DAYS").all()
    treated = adtte[adtte["ARM"] == "treated"]
    assert (treated["AVAL"] == 60.0).all() and (treated["CNSR"] == 1).all()
    adlb = pd.read_parquet(out / "analysis" / "adlb.parquet")
    assert set(adlb["PARAMCD"]) == {"CRP", "DDIMER"} and adlb["ADY"].min() == -1
    assert set(adlb["AVALU"]) == {"mg/L", "µg/L FEU"}
    adae = pd.read_parquet(out / "analysis" / "adae.parquet")
    assert adae[["USUBJID", "AETERM", "ASTDY"]].values.tolist() == [["T-001", "Hypokalaemia", 2.3]]
    for name in ("adsl", "adtte", "adlb", "adae", "trajectories_support", "trajectories_events"):
        frame = pd.read_parquet(out / "analysis" / f"{name}.parquet")
        dates = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
        assert dates == [], name  # days from index only, never a calendar date


def test_adae_comes_from_the_safety_room_when_it_has_per_event_rows(tmp_path, monkeypatch):
    stub_figures(monkeypatch)

    class WithEvents(FakeSafety):
        adverse_events = pd.DataFrame({
            "patient_id": [TRIAL_IDS[1], TRIAL_IDS[0]], "onset_dttm": pd.to_datetime(["2020-04-03", "2020-04-04"], utc=True),
            "term": ["Delirium", "Anaemia"], "term_label": ["Delirium", "Anaemia"],
            "soc_label": ["Psychiatric disorders", "Blood and lymphatic system disorders"],
            "grade": pd.array([2.0, None], dtype="Float64"), "serious": [False, True],
            "relatedness": ["not related", "possible"], "outcome": ["recovered/resolved", "recovering"],
            "day": [1.5, 4.0], "teae": [True, True], "period": ["treatment-emergent"] * 2,
            "infusion_related": [True, False]})

    path = write_report(make_run(safety=WithEvents()), tmp_path / "r")["analysis/adae.parquet"]
    adae = pd.read_parquet(path)
    assert adae["USUBJID"].tolist() == ["T-001", "T-002"]  # by set (TRIAL_IDS[0], TRIAL_IDS[1], pseudonymised)
    assert adae["AEBODSYS"].tolist() == ["Blood and lymphatic system disorders", "Psychiatric disorders"]
    assert adae["AESER"].tolist() == ["Y", "N"] and adae["INFRELFL"].tolist() == ["N", "Y"]
    assert adae["AETOXGR"].isna().tolist() == [True, False] and "onset_dttm" not in adae.columns
