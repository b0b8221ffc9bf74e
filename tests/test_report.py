"""Tests of the report room's front door, ``write_report``, on a small hand-made StudyRun.

The builders here (``make_run``, ``FakeSafety``) are shared by the other ``test_report_*`` modules.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from controlarm._run import StudyRun
from controlarm.analysis._results import (
    ArmSummary,
    Estimate,
    OutcomeResult,
    Results,
    SensitivityResult,
    TestResult,
)
from controlarm.cohort._flow import Flow, FlowStep
from controlarm.outcomes._endpoints import Endpoint
from controlarm.report import OUTPUT_FILES, _write, write_report

TRIAL_IDS = [f"TRIAL-A{i:02d}" for i in range(1, 5)]
POOL_IDS = [f"POOL-X{i:04d}" for i in range(1, 31)]
HOSP_IDS = [f"HOSP-{i:05d}" for i in range(1, 35)]
PSEUDO_WARNING = ("Pseudo-pairs reuse each treated patient 3 times; the pairs are not independent, "
                  "so this p-value is too small.")
SPEC_HASH = hashlib.sha256(b"test spec").hexdigest()
SECTIONS = ("Patient flow", "Baseline characteristics (Table 1)", "Covariate balance and matched sets", "Outcomes",
            "Matched-set and published-style p-values", "Effect estimates (forest plot)", "Kaplan–Meier curves",
            "Lab trajectories", "Swimmer plot of trial patients", "Safety", "Sensitivity analyses",
            "Audit of the binary outcomes", "Plan of the confirmatory trial", "Methods and conventions", "Data quality",
            "Reproducibility manifest")


class FakeSafety:
    """A stand-in for the safety room's result: ``to_html``, ``to_dict`` and ``tables``."""

    def __init__(self, term: str = "Hypokalaemia"):
        self.term = term

    def to_html(self, listings: bool) -> str:
        return (f"<h3>Adverse events by preferred term</h3><table><thead><tr><th>Term</th><th>Patients</th></tr>"
                f"</thead><tbody><tr><td>{html.escape(self.term)}</td><td>1 (25.0%)</td></tr></tbody></table>")

    def to_dict(self, listings: bool) -> dict:
        return {"adverse_events": [{"term": self.term, "n_patients": 1, "pct": 25.0}], "listings": listings}

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"ae_by_soc_pt": pd.DataFrame({"Preferred term": [self.term], "Patients, n (%)": ["1 (25.0%)"],
                                              "Events": [1]})}


def make_study(*, listings: bool = False, name: str = "MSC in severe COVID-19 (test)", suppress: bool = False,
               registration: str = "NCT00000000", real_ids: bool = False) -> SimpleNamespace:
    spec = {
        "study": {"name": name, "registration": registration, "synthetic": True, "seed": 7},
        "data": {"source": "postgresql://analyst:s3cret@db.example/icu"},
        "cohort": {"age_min": 18, "age_max": 70, "calendar_start": "2020-03-01", "calendar_end": "2021-12-31"},
        "index": {"trial": "first_administration", "product": "MSC",
                  "pool": {"location": "icu", "devices": ["High Flow NC", "IMV"], "medication": "dexamethasone",
                           "medication_window_hours": 24}},
        "features": {"default_lookback_hours": 48, "covariates": [
            {"name": "age", "kind": "age"}, {"name": "male", "kind": "sex"},
            {"name": "crp", "kind": "lab", "category": "crp", "unit": "mg/L", "lookback_hours": 48},
            {"name": "imv_at_index", "kind": "device_at_index", "devices": ["IMV"]}]},
        "matching": {"ratio": 3, "method": "nearest", "distance": "mahalanobis", "order": "data"},
        "outcomes": {"survival_days": [28, 60], "free_days_death_value": 0, "max_gap_hours": 24},
        "analysis": {"published_style": True, "alpha": 0.05},
        "report": {"listings": listings, "suppress_small_cells": suppress, "small_cell_threshold": 5,
                   **({"real_ids": True} if real_ids else {})},
    }
    return SimpleNamespace(
        study=SimpleNamespace(name=name, registration=registration,
                              description="A test study.\n\nSecond paragraph.", synthetic=True, seed=7),
        spec_hash=SPEC_HASH,
        report=SimpleNamespace(listings=listings, real_ids=real_ids, suppress_small_cells=suppress,
                               small_cell_threshold=5),
        matching=SimpleNamespace(ratio=3, method="nearest", distance="mahalanobis",
                                 covariates=["age", "male", "crp"], exact=["imv_at_index"], caliper=None,
                                 replace=False),
        outcomes=SimpleNamespace(survival_days=(28, 60), labs=()),
        model_dump=lambda mode="python": spec,
    )


def make_results(*, outcome_label: str = "Alive at day 28", sensitivity: bool = True) -> Results:
    panel = SensitivityResult(
        name="rosenbaum", label="Rosenbaum bounds", method="Rosenbaum bounds for the exact conditional test",
        columns=("Gamma", "p upper bound"), rows=((1.0, 0.0412), (1.5, 0.0891), (2.0, 0.1502)),
        summary="The conclusion holds up to Gamma = 1.2.", conventions={"alternative": "greater"},
        reference="Rosenbaum PR. Observational Studies. 2nd ed. Springer; 2002.")
    alive = OutcomeResult(
        outcome="alive_d28", label=outcome_label, kind="binary",
        summaries=(ArmSummary("treated", n=4, events=4, proportion=1.0),
                   ArmSummary("control", n=12, events=6, proportion=0.5)),
        tests=(
            TestResult("Mantel–Haenszel", "Mantel–Haenszel test over matched sets", 4.2, 0.0412,
                       "two-sided", "matched", 16, {"continuity_correction": False},
                       reference="Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719–748."),
            TestResult("McNemar (pseudo-pairs)", "McNemar test on 12 pseudo-pairs", 5.3, 0.0213,
                       "two-sided", "published-style", 12, {"pairs": "each treated reused 3 times"},
                       warning=PSEUDO_WARNING),
        ),
        estimates=(Estimate("Risk difference", 0.5, 0.21, 0.79, "Mantel–Haenszel risk difference"),
                   Estimate("mh_odds_ratio", 3.5, 0.8, 15.2, "Mantel-Haenszel odds ratio over matched sets")),
        definition="Alive at day 28 after index.",
        notes=("Vital status of POOL-X0003 known only to 2020-05-01; counted as alive.",),
        sensitivity=(panel,) if sensitivity else (),
    )
    death = OutcomeResult(
        outcome="time_to_death", label="Time to death (60 days)", kind="time_to_event",
        summaries=(ArmSummary("treated", n=4, events=0, proportion=0.0),
                   ArmSummary("control", n=12, events=7, proportion=7 / 12)),
        tests=(TestResult("Stratified log-rank", "Log-rank test stratified by matched set", 2.93, 0.0871,
                          "two-sided", "matched", 16, {"ties": "Efron"}, df=1.0),),
        estimates=(Estimate("Hazard ratio", float("nan"), None, None, "Stratified Cox (no events in treated)"),),
    )
    ddimer = OutcomeResult(
        outcome="d_dimer_d7", label="D-dimer at day 7", kind="continuous",
        summaries=(ArmSummary("treated", n=4, median=812.0, q1=640.5, q3=1010.25),
                   ArmSummary("control", n=11, n_missing=1, median=1540.0, q1=990.0, q3=2875.5)),
        tests=(
            TestResult("Aligned-rank", "Aligned-rank test on set-level contrasts (exact)", None, 0.1875,
                       "two-sided", "matched", 15, {"ties": "midranks"}),
            TestResult("Signed-rank (pseudo-pairs)", "Wilcoxon signed-rank on pseudo-pairs", 8.0, 0.0339,
                       "two-sided", "published-style", 11, {}, warning=PSEUDO_WARNING),
        ),
        estimates=(Estimate("Hodges–Lehmann shift", -612.5, -1890.0, 120.0, "Hodges–Lehmann"),),
    )
    return Results(outcomes=(alive, death, ddimer), n_sets=4, ratio="1:3")


def make_trajectories(trial_ids: list[str], ae_term: str) -> dict[str, pd.DataFrame]:
    """Support episodes, daily labs and events of the matched patients, in days from index."""
    support, labs, events = [], [], []
    for s, t in enumerate(trial_ids, start=1):
        members = [(t, "treated")] + [(POOL_IDS[3 * (s - 1) + j], "control") for j in range(3)]
        for k, (pid, role) in enumerate(members):
            imv = 4.0 if (s + k) % 3 == 0 else 0.0
            support += [
                {"patient_id": pid, "role": role, "set_id": s, "kind": "device", "category": "High Flow NC",
                 "start_day": -0.8, "end_day": 2.0},
                {"patient_id": pid, "role": role, "set_id": s, "kind": "device", "category": "IMV" if imv else "NIPPV",
                 "start_day": 2.0, "end_day": 3.0 + imv},
                {"patient_id": pid, "role": role, "set_id": s, "kind": "device", "category": "Nasal Cannula",
                 "start_day": 3.0 + imv, "end_day": 8.0 + imv},
                {"patient_id": pid, "role": role, "set_id": s, "kind": "device", "category": "Room Air",
                 "start_day": 8.0 + imv, "end_day": 11.0 + imv},
                {"patient_id": pid, "role": role, "set_id": s, "kind": "icu", "category": "icu",
                 "start_day": -0.8, "end_day": 5.0 + imv},
            ]
            if s == 2 and role == "treated":
                support.append({"patient_id": pid, "role": role, "set_id": s, "kind": "ecmo", "category": "VV ECMO",
                                "start_day": 2.5, "end_day": 4.0})
            for day in range(-1, 12):
                labs.append({"patient_id": pid, "role": role, "set_id": s, "lab_category": "crp", "day": day,
                             "value": round(150 * 0.8 ** (day + 1) * (1.2 if role == "control" else 1) + k, 1)})
                labs.append({"patient_id": pid, "role": role, "set_id": s, "lab_category": "d_dimer", "day": day,
                             "value": float(800 + 60 * day * (3 if role == "control" else 1) + 10 * k)})
            if role == "treated":
                events += [{"patient_id": pid, "role": role, "set_id": s, "kind": "administration", "day": d,
                            "label": "MSC"} for d in (0.0, 3.0, 6.0)]
            events.append({"patient_id": pid, "role": role, "set_id": s, "kind": "discharge", "day": 11.0 + imv,
                           "label": "Home"})
    events.insert(1, {"patient_id": trial_ids[0], "role": "treated", "set_id": 1, "kind": "adverse_event",
                      "day": 2.3, "label": ae_term})
    events.append({"patient_id": POOL_IDS[1], "role": "control", "set_id": 1, "kind": "death", "day": 19.5,
                   "label": "death"})
    labs_df = pd.DataFrame(labs)
    labs_df["day"] = labs_df["day"].astype("int32")
    return {"support": pd.DataFrame(support), "labs": labs_df, "events": pd.DataFrame(events)}


def make_run(*, listings: bool = False, real_ids: bool = False, name: str = "MSC in severe COVID-19 (test)",
             safety: object = None,
             suppress: bool = False, trial_ids: list[str] | None = None, ae_term: str = "Hypokalaemia",
             outcome_label: str = "Alive at day 28", trajectories: bool = True, sensitivity: bool = True) -> StudyRun:
    trial_ids = list(trial_ids or TRIAL_IDS)
    rng = np.random.default_rng(1)
    ids = trial_ids + POOL_IDS
    groups = ["trial"] * len(trial_ids) + ["pool"] * len(POOL_IDS)
    cohort = pd.DataFrame({
        "patient_id": ids, "hospitalization_id": HOSP_IDS, "group": groups,
        "index_time": pd.date_range("2020-04-01", periods=len(ids), freq="D", tz="UTC"),
    })
    baseline = pd.DataFrame({
        "patient_id": ids, "group": groups,
        "age": np.round(rng.normal(58, 9, len(ids)), 1),
        "male": rng.integers(0, 2, len(ids)),
        "crp": np.round(rng.lognormal(4.8, 0.5, len(ids)), 1),
        "imv_at_index": rng.integers(0, 2, len(ids)).astype(float),
    })
    baseline.loc[7, "crp"] = np.nan
    rows = []
    for s, t in enumerate(trial_ids, start=1):
        rows.append({"set_id": s, "patient_id": t, "role": "treated", "weight": 1.0, "distance": np.nan})
        for j in range(3):
            rows.append({"set_id": s, "patient_id": POOL_IDS[3 * (s - 1) + j], "role": "control",
                         "weight": 1.0, "distance": float(rng.uniform(0, 2)) / 3})
    matched = pd.DataFrame(rows).sample(frac=1, random_state=3).reset_index(drop=True)  # unsorted on purpose
    matched["index_time"] = pd.Timestamp("2020-04-02", tz="UTC")
    balance = pd.DataFrame({
        "covariate": ["age", "male", "crp", "imv_at_index"],
        "kind": ["continuous", "binary", "continuous", "binary"],
        "mean_treated": [60.1, 0.5, 130.0, 0.5], "mean_pool": [57.0, 0.6, 120.0, 0.4],
        "mean_matched": [59.8, 0.5, 128.0, 0.5],
        "smd_before": [0.35, -0.2, 0.18, 0.21], "smd_after": [0.03, 0.0, -0.06, 0.0],
    })
    balance.attrs["smd_denominator"] = "pooled SD of treated and pool before matching"
    ep = matched[["set_id", "patient_id", "role"]].copy()
    treated = ep["role"] == "treated"
    ep["alive_d28"] = np.where(treated, 1, rng.integers(0, 2, len(ep)))
    ep["time_to_death"] = np.where(treated, 60.0, rng.uniform(3, 60, len(ep)).round(1))
    ep["death"] = np.where(treated, 0, (ep["time_to_death"] < 50).astype(int))
    ep["d_dimer_d7"] = rng.lognormal(7, 0.5, len(ep)).round(0)
    ep.loc[ep.index[~treated][0], "d_dimer_d7"] = np.nan
    endpoint_defs = (
        Endpoint("alive_d28", outcome_label, "binary", "alive_d28", "Alive at day 28 after index."),
        Endpoint("time_to_death", "Time to death (60 days)", "time_to_event", "time_to_death",
                 "Days from index to death; censored at day 60.", event_column="death", unit="days"),
        Endpoint("d_dimer_d7", "D-dimer at day 7", "continuous", "d_dimer_d7",
                 "Last D-dimer within day 7 ± 1.", unit="µg/L FEU", higher_is_better=False),
    )
    flow = Flow((
        FlowStep("enrolled in the trial", "trial", 5, (("no administration of MSC", 1),)),
        FlowStep("pool candidates", "pool", 120, (("age outside 18–70", 30), ("never met the index rule", 60),
                                                  ("no CRP at index", 3))),
        FlowStep("matching", "pool", 27, (("not selected as a match", 15),)),
    ))
    return StudyRun(
        study=make_study(listings=listings, real_ids=real_ids, name=name, suppress=suppress),
        flow=flow, cohort=cohort, baseline=baseline,
        covariate_kinds={"age": "continuous", "male": "binary", "crp": "continuous", "imv_at_index": "binary"},
        matched=matched, balance=balance, endpoints=ep, endpoint_defs=endpoint_defs,
        results=make_results(outcome_label=outcome_label, sensitivity=sensitivity),
        data_quality={"warnings": ["vitals: 2 duplicate rows for POOL-X0007 at 2020-04-03T12:00:00+00:00",
                                   "labs: 3 CRP values without unit, assumed mg/L"],
                      "tables": {"patient": 34, "vitals": 5120, "labs": 880}},
        provenance={"inputs": {"data/patient.csv": "0" * 64}, "spec_hash": SPEC_HASH,
                    "seed": 7, "timings": {"match": 0.123}},
        trajectories=make_trajectories(trial_ids, ae_term) if trajectories else {},
        safety=safety,
    )


STUB_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10pt" height="10pt" viewBox="0 0 10 10"></svg>'


def stub_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stub the drawing functions where a test checks text, not pictures (keeps the suite fast)."""
    from controlarm.report import _figures, _figures_effects, _figures_patients

    for module, names in ((_figures, ("flow_svg", "love_svg", "km_svg")), (_figures_effects, ("forest_svg", "sets_svg")),
                          (_figures_patients, ("labs_svg", "swimmer_svg"))):
        for name in names:
            monkeypatch.setattr(module, name, lambda *args, **kwargs: STUB_SVG)


@pytest.fixture()
def fast_figures(monkeypatch):
    stub_figures(monkeypatch)


MPL_STATE: dict[str, object] = {}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, Path]:
    import matplotlib

    MPL_STATE["before"] = (dict(matplotlib.rcParams), matplotlib.get_backend())
    paths = write_report(make_run(safety=FakeSafety()), tmp_path_factory.mktemp("rep") / "report")
    MPL_STATE["after"] = (dict(matplotlib.rcParams), matplotlib.get_backend())
    return paths


@pytest.fixture(scope="module")
def page(report) -> str:
    return report["index.html"].read_text(encoding="utf-8")


ANALYSIS_FILES = {"analysis/adsl.parquet", "analysis/adtte.parquet", "analysis/adlb.parquet", "analysis/adae.parquet",
                  "analysis/trajectories_support.parquet", "analysis/trajectories_events.parquet",
                  "analysis/safety.html", "analysis/safety_table_01.parquet"}


def test_writes_every_file(report):
    assert set(report) == set(OUTPUT_FILES) | ANALYSIS_FILES
    for path in report.values():
        assert path.is_file() and path.stat().st_size > 100
    leftovers = [p for p in report["index.html"].parent.parent.iterdir() if p.name.endswith(".partial")]
    assert leftovers == []


def test_page_has_every_section_and_the_synthetic_banner(page):
    for heading in SECTIONS:
        assert f">{heading}</h2>" in page, heading
    assert 'class="banner"' in page and "SYNTHETIC DATA" in page
    assert page.startswith("<!DOCTYPE html>")
    assert "@media print" in page


def test_page_embeds_figures_and_loads_nothing(page):
    figures = re.findall(r'<figure id="fig-([^"]+)"><svg ', page)
    assert figures == ["flow", "love", "sets", "forest", "km1", "labs", "swimmer"]
    assert not re.search(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", page, re.I)
    assert "<script" not in page.lower() and "@import" not in page and "<link" not in page.lower()


def test_page_shows_the_numbers(page):
    assert "Pool before matching (n = 30)" in page and "Treated (n = 4)" in page
    assert "p = 0.041" in page and "p = 0.021" in page and "p = 0.087" in page
    assert "Published-style analysis" in page and "Matched-set analysis (primary)" in page
    assert "too small" in page  # the published-style warning text is visible
    assert "pooled SD of treated and pool before matching" in page
    assert "Hodges–Lehmann shift: -613 (95% CI -1890 to 120)" in page
    assert "Rows read per table" in page and "5120" in page
    assert "Excluded (reason: n)" in page and "never met the index rule: 60" in page


def test_both_styles_table_sets_p_values_side_by_side_with_the_reason(page):
    section = page[page.index('<section id="both-styles">'):]
    section = section[:section.index("</section>")]
    row = section[section.index("<td>Alive at day 28</td>"):]
    row = row[:row.index("</tr>")]
    assert "Mantel–Haenszel: 0.041" in row and "McNemar (pseudo-pairs): 0.021" in row
    assert "too small" in row


def test_swimmer_and_safety_sections(page):
    swimmer = page[page.index('<section id="swimmer">'):]
    swimmer = swimmer[:swimmer.index("</section>")]
    assert "Patient 1" in swimmer and "Hypokalaemia" in swimmer and ">2.3<" in swimmer
    safety = page[page.index('<section id="safety">'):]
    assert "Adverse events by preferred term" in safety[:safety.index("</section>")]


def test_sensitivity_panels_are_rendered_generically(page, tmp_path, fast_figures):
    section = page[page.index('<section id="sensitivity">'):]
    section = section[:section.index("</section>")]
    assert "Alive at day 28: Rosenbaum bounds" in section
    assert ">Gamma</th>" in section and "0.0891" in section and "Gamma = 1.2" in section
    assert "alternative: greater" in section and "Rosenbaum PR" in section
    bare = write_report(make_run(sensitivity=False), tmp_path / "r")["index.html"].read_text(encoding="utf-8")
    assert "No sensitivity analysis in the results" in bare


def test_methods_text_is_generated_from_the_spec(page):
    text = page[page.index('<div class="methods-text">'):]
    text = html.unescape(re.sub(r"<[^>]+>", "", text[:text.index("</div>")]))
    for phrase in ("first administration of MSC", "aged 18 to 70 years", "from 1 March 2020 to 31 December 2021",
                   "in the ICU, on High Flow NC or IMV and treated with dexamethasone",
                   "matched to 3 controls by greedy nearest-neighbour matching", "Mahalanobis distance",
                   "exactly on imv_at_index", "Mantel–Haenszel test over matched sets", "published-style",
                   "Free days count death as 0", "Analyses used controlarm", SPEC_HASH, "Rosenbaum bounds"):
        assert phrase in text, phrase


def test_page_hides_patient_ids_and_dates_by_default(page):
    for pid in TRIAL_IDS + POOL_IDS + HOSP_IDS:
        assert pid not in page, pid
    assert not re.search(r"\d{4}-\d{2}-\d{2}", page)  # no dates at all
    assert "[id]" in page and "[date]" in page  # the data-quality warning was scrubbed, not dropped
    assert ">Listing of matched sets</h2>" not in page
    assert "s3cret" not in page


def test_listing_appears_only_when_asked_with_pseudonyms(tmp_path, fast_figures):
    paths = write_report(make_run(listings=True), tmp_path / "r")
    page = paths["index.html"].read_text(encoding="utf-8")
    assert ">Listing of matched sets</h2>" in page and 'href="#listing"' in page
    listing = page[page.index('<section id="listing">'):]
    listing = listing[:listing.index("</section>")]
    for pseudonym in [f"T-{i:03d}" for i in range(1, 5)] + [f"C-{i:03d}" for i in range(1, 13)]:
        assert f"<td>{pseudonym}</td>" in listing, pseudonym
    assert "Pseudonymous ids (T-nnn for treated patients" in listing
    for pid in TRIAL_IDS + POOL_IDS + HOSP_IDS:  # listings do not bring the real ids back
        assert pid not in page, pid
    for name in ("matched_sets.csv", "results.json", "log.txt"):
        text = paths[name].read_text(encoding="utf-8")
        assert not any(pid in text for pid in TRIAL_IDS + POOL_IDS + HOSP_IDS), name
    assert not re.search(r"\d{4}-\d{2}-\d{2}", page)
    footer = page[page.index("<footer>"):]
    assert "Patient-level listings on (report.listings = true), with pseudonymous ids only" in footer
    assert "ids in outputs: pseudonyms; patient-level listings: on" in paths["log.txt"].read_text(encoding="utf-8")


def test_real_ids_put_the_data_ids_in_every_output(tmp_path, fast_figures):
    paths = write_report(make_run(listings=True, real_ids=True), tmp_path / "r")
    page = paths["index.html"].read_text(encoding="utf-8")
    listing = page[page.index('<section id="listing">'):]
    listing = listing[:listing.index("</section>")]
    for pid in TRIAL_IDS + POOL_IDS[:12]:
        assert f"<td>{pid}</td>" in listing, pid
    assert "The data&#x27;s real patient ids (report.real_ids = true)" in listing
    for pid in POOL_IDS[12:] + HOSP_IDS:  # never matched, or not a patient id: still hidden
        assert pid not in page
    assert not re.search(r"\d{4}-\d{2}-\d{2}", page)
    assert "Real patient ids (report.real_ids = true)" in page[page.index("<footer>"):]
    csv_text = paths["matched_sets.csv"].read_text(encoding="utf-8")
    assert all(pid in csv_text for pid in TRIAL_IDS + POOL_IDS[:12]) and "T-001" not in csv_text
    log = paths["log.txt"].read_text(encoding="utf-8")
    assert "ids in outputs: real patient ids (report.real_ids = true); patient-level listings: on" in log
    assert not any(pid in log for pid in TRIAL_IDS + POOL_IDS)  # the log never carries an id
    data = json.loads(paths["results.json"].read_text(encoding="utf-8"))
    assert data["report_options"]["real_ids"] is True and data["report_options"]["listings"] is True


def test_the_footer_and_log_name_the_default_mode(report):
    page = report["index.html"].read_text(encoding="utf-8")
    assert "Pseudonymous ids: matched_sets.csv and analysis/ number patients T-nnn" in page[page.index("<footer>"):]
    assert "ids in outputs: pseudonyms; patient-level listings: off" in report["log.txt"].read_text(encoding="utf-8")
    assert json.loads(report["results.json"].read_text(encoding="utf-8"))["report_options"]["real_ids"] is False


def test_results_json_holds_the_aggregates(report):
    text = report["results.json"].read_text(encoding="utf-8")
    data = json.loads(text)
    assert set(data) == {"schema_version", "controlarm_version", "study", "report_options", "spec", "flow", "table1",
                         "matching", "analysis", "outcomes", "endpoint_definitions", "safety", "audit", "plan",
                         "data_quality", "reproducibility", "files"}
    assert data["schema_version"] == "1.1"
    assert data["study"] == {"name": "MSC in severe COVID-19 (test)", "registration": "NCT00000000",
                             "description": "A test study.\n\nSecond paragraph.",
                             "spec_hash": SPEC_HASH, "seed": 7, "synthetic": True}
    tests = {t["name"]: t for o in data["outcomes"].values() for t in o["tests"]}
    assert tests["Mantel–Haenszel"]["p_value"] == 0.0412
    assert tests["McNemar (pseudo-pairs)"]["p_value"] == 0.0213
    assert tests["McNemar (pseudo-pairs)"]["warning"] == PSEUDO_WARNING
    assert tests["Aligned-rank"]["statistic"] is None
    assert data["outcomes"]["time_to_death"]["estimates"][0]["value"] is None  # NaN -> null
    assert data["outcomes"]["alive_d28"]["sensitivity"][0]["rows"][1] == [1.5, 0.0891]
    assert data["analysis"]["outcome_order"] == ["alive_d28", "time_to_death", "d_dimer_d7"]
    assert data["matching"]["n_sets"] == 4 and data["matching"]["ratio"] == 3
    assert [s["n_controls"] for s in data["matching"]["sets"]] == [3, 3, 3, 3]
    assert [r["covariate"] for r in data["matching"]["balance"]] == ["age", "male", "crp", "imv_at_index"]
    assert [r["covariate"] for r in data["table1"]["rows"]] == ["age", "male", "crp", "imv_at_index"]
    assert data["flow"][1]["excluded"] == {"age outside 18–70": 30, "never met the index rule": 60,
                                           "no CRP at index": 3}
    assert data["endpoint_definitions"]["time_to_death"]["event_column"] == "death"
    assert data["spec"]["data"]["source"] == "postgresql://[credentials]@db.example/icu"
    assert data["safety"]["adverse_events"][0]["term"] == "Hypokalaemia"
    assert data["files"]["datasets"]["adsl"] == "analysis/adsl.parquet"
    assert data["reproducibility"]["inputs"] == {"data/patient.csv": "0" * 64}
    assert "NaN" not in text and "timings" not in text and "s3cret" not in text
    for pid in TRIAL_IDS + POOL_IDS[:12]:
        assert pid not in text


def test_matched_sets_csv_is_sorted_and_rounded(report):
    table = pd.read_csv(report["matched_sets.csv"])
    assert list(table.columns) == ["set_id", "role", "patient_id", "weight", "distance"]
    assert len(table) == 16
    assert list(table["set_id"]) == sorted(table["set_id"])
    assert list(table.groupby("set_id")["role"].first()) == ["treated"] * 4
    first_set = table[table["set_id"] == 1]
    # pseudonymous by default (report.listings off): TRIAL-A01, POOL-X0001..3 in set order
    assert list(first_set["patient_id"]) == ["T-001", "C-001", "C-002", "C-003"]
    assert table.loc[table["role"] == "treated", "distance"].isna().all()
    lines = report["matched_sets.csv"].read_text().splitlines()
    assert all(len(field.replace(".", "").lstrip("0")) <= 10 for line in lines[1:] for field in [line.split(",")[-1]])


def test_manifest_records_provenance_and_hashes(report):
    manifest = json.loads(report["manifest.json"].read_text())
    assert manifest["timings"] == {"match": 0.123}
    assert manifest["inputs"] == {"data/patient.csv": "0" * 64}
    assert set(manifest["outputs"]) == set(report) - {"manifest.json"}
    for name, entry in manifest["outputs"].items():
        assert entry["sha256"] == hashlib.sha256(report[name].read_bytes()).hexdigest()


def test_two_runs_give_identical_bytes(report, tmp_path):
    again = write_report(make_run(safety=FakeSafety()), tmp_path / "again")
    assert set(again) == set(report)
    for name in set(report) - {"manifest.json"}:
        assert again[name].read_bytes() == report[name].read_bytes(), name


def test_user_strings_are_escaped(tmp_path, fast_figures):
    evil = '<script>alert("x")</script>'
    run = make_run(name=f"A & B {evil}", listings=True, real_ids=True, trial_ids=[f"{evil}{i}" for i in range(1, 5)],
                   ae_term=f"Rash {evil}", safety=FakeSafety(f"Rash {evil}"), outcome_label=f"Alive {evil}")
    page = write_report(run, tmp_path / "r")["index.html"].read_text(encoding="utf-8")
    assert "<script" not in page
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    assert f"A &amp; B {escaped}" in page  # study name
    assert f"<td>{escaped}1</td>" in page  # patient id, in the listing
    swimmer = page[page.index('<section id="swimmer">'):]
    assert f"<td>Rash {escaped}</td>" in swimmer[:swimmer.index("</section>")]  # AE term, in the swimmer key
    safety = page[page.index('<section id="safety">'):]
    assert "Rash &lt;script&gt;" in safety[:safety.index("</section>")]  # AE term, in the safety room's fragment
    assert f"Alive {escaped}" in page  # outcome label


def test_an_unsafe_safety_fragment_is_shown_as_text(tmp_path, fast_figures):
    class Unsafe(FakeSafety):
        def to_html(self, listings):
            return '<p onclick="x()">AE</p><img src="https://example.org/x.png">'

    page = write_report(make_run(safety=Unsafe()), tmp_path / "r")["index.html"].read_text(encoding="utf-8")
    assert 'onclick="' not in page and "<img" not in page
    assert "shown as text" in page and "&lt;p onclick=" in page


def test_a_failure_mid_write_leaves_the_old_report(tmp_path, monkeypatch, fast_figures):
    out = tmp_path / "report"
    first = write_report(make_run(), out)
    old = {name: p.read_bytes() for name, p in first.items()}

    def boom(matched):  # index.html, tables.docx and results.json are already built when this runs
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_write, "matched_sets_csv", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_report(make_run(listings=True, name="A different study"), out)
    assert {name: p.read_bytes() for name, p in first.items()} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # temporary directory removed


def test_other_files_in_the_folder_survive_and_stale_datasets_go(tmp_path, fast_figures):
    out = tmp_path / "report"
    first = write_report(make_run(safety=FakeSafety()), out)
    assert first["analysis/adae.parquet"].is_file() and first["analysis/safety.html"].is_file()
    (out / "notes.txt").write_text("the lead's notes")
    (out / "analysis" / "my_extra.parquet").write_bytes(b"someone else's")
    second = write_report(make_run(trajectories=False), out)
    assert "analysis/adae.parquet" not in second
    assert not (out / "analysis" / "adae.parquet").exists() and not (out / "analysis" / "safety.html").exists()
    assert (out / "notes.txt").read_text() == "the lead's notes"
    assert (out / "analysis" / "my_extra.parquet").read_bytes() == b"someone else's"


def test_import_controlarm_does_not_import_matplotlib():
    code = ("import sys, controlarm, controlarm.report; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'lifelines', 'docx')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_global_matplotlib_state_is_untouched(report):
    assert MPL_STATE["after"] == MPL_STATE["before"]  # rcParams and backend, around the module's real write


def test_element_ids_are_unique_and_references_resolve(page):
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # several inline SVGs share one page: their ids are namespaced
    refs = set(re.findall(r"url\(#([^)]+)\)", page)) | set(re.findall(r'href="#([^"]+)"', page))
    assert refs <= set(ids)


def test_small_cells_from_the_pool_are_suppressed(tmp_path, fast_figures):
    paths = write_report(make_run(suppress=True), tmp_path / "r")
    page = paths["index.html"].read_text(encoding="utf-8")
    data = json.loads(paths["results.json"].read_text())
    assert data["flow"][1]["excluded"]["no CRP at index"] == "<5"
    assert data["flow"][1]["excluded"]["age outside 18–70"] == 30
    assert data["flow"][0]["excluded"]["no administration of MSC"] == 1  # trial counts are never suppressed
    assert "no CRP at index: &lt;5" in page
    crp = next(r for r in data["table1"]["rows"] if r["covariate"] == "crp")
    assert crp["cells"]["pool"].endswith("; missing <5") and crp["stats"]["pool"]["n_missing"] is None
    assert "Small-cell suppression is on" in page
    assert "Treated (n = 4)" in page  # trial column untouched


def test_a_sparse_run_still_reports(tmp_path, fast_figures):
    run = make_run(trajectories=False)
    balance = run.balance.copy()
    balance.attrs = {}
    run = dataclasses.replace(
        run, endpoint_defs=run.endpoint_defs[:1], balance=balance, data_quality={}, provenance={},
        flow=Flow((FlowStep("enrolled", "trial", 4),)),
    )
    paths = write_report(run, tmp_path / "r")
    page = paths["index.html"].read_text(encoding="utf-8")
    assert "No time-to-event endpoint in this study." in page
    assert "not stated by the matching room" in page
    assert "Safety analysis not computed" in page
    assert "No lab values were recorded" in page
    assert "analysis/adae.parquet" not in paths
    manifest = json.loads(paths["manifest.json"].read_text())
    assert manifest["spec_hash"] == run.study.spec_hash and manifest["seed"] == 7 and "numpy" in manifest["packages"]


def test_pages_from_other_analysis_versions_render(fast_figures):
    """Sensitivity panels may be absent; a style comparison and multiplicity may be present."""
    from controlarm.report import load_bundle, render_html, saved_inputs

    bundle = load_bundle(saved_inputs(make_run()))
    for o in bundle.results["outcomes"].values():
        o.pop("sensitivity", None)
    bundle.results["analysis"]["multiplicity"] = {"method": "Holm", "family": "primary tests"}
    bundle.results["analysis"]["style_comparison"] = [{
        "outcome": "alive_d28", "label": "Alive at day 28", "primary_test": "Mantel–Haenszel", "primary_p": 0.0412,
        "published_test": "McNemar (pseudo-pairs)", "published_p": 0.0213, "ratio_published_to_primary": 0.517,
        "reason": PSEUDO_WARNING}]
    page = render_html(bundle)
    assert "No sensitivity analysis in the results" in page
    assert "Multiplicity: method: Holm" in page
    both = page[page.index('<section id="both-styles">'):]
    both = both[:both.index("</section>")]
    assert "Mantel–Haenszel: 0.041" in both and ">0.517<" in both and "Published ÷ matched p" in both
    assert both.count("<tr>") == 2  # the header and the one paired outcome
