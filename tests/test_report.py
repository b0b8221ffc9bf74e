"""Tests of the report room's front door, ``write_report``, on a small hand-made StudyRun."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from controlarm._run import StudyRun
from controlarm.analysis._results import ArmSummary, Estimate, OutcomeResult, Results, TestResult
from controlarm.cohort._flow import Flow, FlowStep
from controlarm.outcomes._endpoints import Endpoint
from controlarm.report import _write, write_report

TRIAL_IDS = [f"TRIAL-A{i:02d}" for i in range(1, 5)]
POOL_IDS = [f"POOL-X{i:04d}" for i in range(1, 31)]
HOSP_IDS = [f"HOSP-{i:05d}" for i in range(1, 35)]
PSEUDO_WARNING = ("Pseudo-pairs reuse each treated patient 3 times; the pairs are not independent, "
                  "so this p-value is too small.")


def make_study(*, listings: bool = False, name: str = "MSC in severe COVID-19 (test)") -> SimpleNamespace:
    spec = {
        "study": {"name": name, "registration": "NCT00000000", "synthetic": True, "seed": 7},
        "matching": {"ratio": 3, "method": "nearest", "distance": "mahalanobis"},
        "report": {"listings": listings},
    }
    return SimpleNamespace(
        study=SimpleNamespace(name=name, registration="NCT00000000",
                              description="A test study.\n\nSecond paragraph.", synthetic=True, seed=7),
        spec_hash=hashlib.sha256(b"test spec").hexdigest(),
        report=SimpleNamespace(listings=listings),
        matching=SimpleNamespace(ratio=3, method="nearest", distance="mahalanobis",
                                 covariates=["age", "male", "crp"], exact=["imv_at_index"], caliper=None,
                                 replace=False),
        model_dump=lambda mode="python": spec,
    )


def make_results() -> Results:
    alive = OutcomeResult(
        outcome="alive_d28", label="Alive at day 28", kind="binary",
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
        estimates=(Estimate("Risk difference", 0.5, 0.21, 0.79, "Mantel–Haenszel risk difference"),),
        definition="Alive at day 28 after index.",
        notes=("Vital status of POOL-X0003 known only to 2020-05-01; counted as alive.",),
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


def make_run(*, listings: bool = False, name: str = "MSC in severe COVID-19 (test)") -> StudyRun:
    rng = np.random.default_rng(1)
    ids = TRIAL_IDS + POOL_IDS
    groups = ["trial"] * len(TRIAL_IDS) + ["pool"] * len(POOL_IDS)
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
    for s, t in enumerate(TRIAL_IDS, start=1):
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
        Endpoint("alive_d28", "Alive at day 28", "binary", "alive_d28", "Alive at day 28 after index."),
        Endpoint("time_to_death", "Time to death (60 days)", "time_to_event", "time_to_death",
                 "Days from index to death; censored at day 60.", event_column="death", unit="days"),
        Endpoint("d_dimer_d7", "D-dimer at day 7", "continuous", "d_dimer_d7",
                 "Last D-dimer within day 7 ± 1.", unit="µg/L FEU", higher_is_better=False),
    )
    flow = Flow((
        FlowStep("enrolled in the trial", "trial", 5, (("no administration of MSC", 1),)),
        FlowStep("pool candidates", "pool", 120, (("age outside 18–70", 30), ("never met the index rule", 60))),
        FlowStep("matching", "pool", 30, (("not selected as a match", 18),)),
    ))
    return StudyRun(
        study=make_study(listings=listings, name=name),
        flow=flow, cohort=cohort, baseline=baseline,
        covariate_kinds={"age": "continuous", "male": "binary", "crp": "continuous", "imv_at_index": "binary"},
        matched=matched, balance=balance, endpoints=ep, endpoint_defs=endpoint_defs, results=make_results(),
        data_quality={"warnings": ["vitals: 2 duplicate rows for POOL-X0007 at 2020-04-03T12:00:00+00:00",
                                   "labs: 3 CRP values without unit, assumed mg/L"],
                      "tables": {"patient": 34, "vitals": 5120, "labs": 880}},
        provenance={"inputs": {"data/patient.csv": "0" * 64}, "spec_hash": hashlib.sha256(b"test spec").hexdigest(),
                    "seed": 7, "timings": {"match": 0.123}},
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, Path]:
    return write_report(make_run(), tmp_path_factory.mktemp("rep") / "report")


@pytest.fixture(scope="module")
def page(report) -> str:
    return report["index.html"].read_text(encoding="utf-8")


def test_writes_the_four_files(report):
    assert set(report) == {"index.html", "results.json", "matched_sets.csv", "manifest.json"}
    for path in report.values():
        assert path.is_file() and path.stat().st_size > 100
    leftovers = [p for p in report["index.html"].parent.parent.iterdir() if p.name.endswith(".partial")]
    assert leftovers == []


def test_page_has_every_section_and_the_synthetic_banner(page):
    for heading in ("Patient flow", "Baseline characteristics (Table 1)", "Covariate balance (Love plot)",
                    "Outcomes", "Kaplan–Meier curves", "Methods and conventions", "Data quality", "Provenance"):
        assert f">{heading}</h2>" in page, heading
    assert 'class="banner"' in page and "SYNTHETIC DATA" in page
    assert page.startswith("<!DOCTYPE html>")


def test_page_embeds_figures_and_loads_nothing(page):
    assert page.count("<svg ") >= 3  # flow, Love plot, one Kaplan–Meier curve
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


def test_page_hides_patient_ids_and_dates_by_default(page):
    for pid in TRIAL_IDS + POOL_IDS + HOSP_IDS:
        assert pid not in page, pid
    assert not re.search(r"\d{4}-\d{2}-\d{2}", page)  # no dates at all
    assert "[id]" in page and "[date]" in page  # the data-quality warning was scrubbed, not dropped
    assert ">Listing of matched sets</h2>" not in page


def test_listing_appears_only_when_asked(tmp_path):
    paths = write_report(make_run(listings=True), tmp_path / "r")
    page = paths["index.html"].read_text(encoding="utf-8")
    assert ">Listing of matched sets</h2>" in page
    matched_ids = TRIAL_IDS + POOL_IDS[:12]
    for pid in matched_ids:
        assert pid in page
    for pid in POOL_IDS[12:] + HOSP_IDS:  # never matched, or not a patient id: still hidden
        assert pid not in page
    assert not re.search(r"\d{4}-\d{2}-\d{2}", page)


def test_results_json_holds_the_aggregates(report):
    text = report["results.json"].read_text(encoding="utf-8")
    data = json.loads(text)
    assert set(data) == {"controlarm_version", "study", "flow", "matching", "outcomes", "endpoint_definitions"}
    assert data["study"] == {"name": "MSC in severe COVID-19 (test)", "registration": "NCT00000000",
                             "spec_hash": hashlib.sha256(b"test spec").hexdigest(), "seed": 7, "synthetic": True}
    tests = {t["name"]: t for o in data["outcomes"].values() for t in o["tests"]}
    assert tests["Mantel–Haenszel"]["p_value"] == 0.0412
    assert tests["McNemar (pseudo-pairs)"]["p_value"] == 0.0213
    assert tests["McNemar (pseudo-pairs)"]["warning"] == PSEUDO_WARNING
    assert tests["Aligned-rank"]["statistic"] is None
    assert data["outcomes"]["time_to_death"]["estimates"][0]["value"] is None  # NaN -> null
    assert data["matching"]["n_sets"] == 4 and data["matching"]["ratio"] == 3
    assert [r["covariate"] for r in data["matching"]["balance"]] == ["age", "male", "crp", "imv_at_index"]
    assert data["flow"][1]["excluded"] == {"age outside 18–70": 30, "never met the index rule": 60}
    assert data["endpoint_definitions"]["time_to_death"]["event_column"] == "death"
    assert "NaN" not in text and "timings" not in text
    for pid in TRIAL_IDS + POOL_IDS[:12]:
        assert pid not in text


def test_matched_sets_csv_is_sorted_and_rounded(report):
    table = pd.read_csv(report["matched_sets.csv"])
    assert list(table.columns) == ["set_id", "role", "patient_id", "weight", "distance"]
    assert len(table) == 16
    assert list(table["set_id"]) == sorted(table["set_id"])
    assert list(table.groupby("set_id")["role"].first()) == ["treated"] * 4
    first_set = table[table["set_id"] == 1]
    assert list(first_set["patient_id"]) == ["TRIAL-A01", "POOL-X0001", "POOL-X0002", "POOL-X0003"]
    assert table.loc[table["role"] == "treated", "distance"].isna().all()
    lines = report["matched_sets.csv"].read_text().splitlines()
    assert all(len(field.replace(".", "").lstrip("0")) <= 10 for line in lines[1:] for field in [line.split(",")[-1]])


def test_manifest_records_provenance_and_hashes(report):
    manifest = json.loads(report["manifest.json"].read_text())
    assert manifest["timings"] == {"match": 0.123}
    assert manifest["inputs"] == {"data/patient.csv": "0" * 64}
    assert set(manifest["outputs"]) == {"index.html", "results.json", "matched_sets.csv"}
    for name, entry in manifest["outputs"].items():
        assert entry["sha256"] == hashlib.sha256(report[name].read_bytes()).hexdigest()


def test_two_runs_give_identical_bytes(report, tmp_path):
    again = write_report(make_run(), tmp_path / "again")
    for name in ("index.html", "results.json", "matched_sets.csv"):
        assert again[name].read_bytes() == report[name].read_bytes(), name


def test_user_strings_are_escaped(tmp_path):
    run = make_run(name='A & B <script>alert("x")</script>')
    page = write_report(run, tmp_path / "r")["index.html"].read_text(encoding="utf-8")
    assert "<script" not in page
    assert "A &amp; B &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_a_failure_mid_write_leaves_the_old_report(tmp_path, monkeypatch):
    out = tmp_path / "report"
    first = write_report(make_run(), out)
    old = {name: p.read_bytes() for name, p in first.items()}

    def boom(matched):  # index.html and results.json are already built when this runs
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(_write, "matched_sets_csv", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_report(make_run(listings=True, name="A different study"), out)
    assert {name: p.read_bytes() for name, p in first.items()} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # temporary directory removed


def test_other_files_in_the_folder_survive(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "tables.docx").write_bytes(b"docx from another room")
    write_report(make_run(), out)
    assert (out / "tables.docx").read_bytes() == b"docx from another room"


def test_import_controlarm_does_not_import_matplotlib():
    code = ("import sys, controlarm, controlarm.report; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'lifelines')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_global_matplotlib_state_is_untouched(tmp_path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    write_report(make_run(), tmp_path / "r")
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend


CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_page_renders_in_a_headless_browser(report, tmp_path):
    png = tmp_path / "page.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1200,3000",
           report["index.html"].resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file(), done.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


def test_element_ids_are_unique_and_references_resolve(page):
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # several inline SVGs share one page: their ids are namespaced
    refs = set(re.findall(r"url\(#([^)]+)\)", page)) | set(re.findall(r'href="#([^"]+)"', page))
    assert refs <= set(ids)


def test_a_sparse_run_still_reports(tmp_path):
    run = make_run()
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
    manifest = json.loads(paths["manifest.json"].read_text())
    assert manifest["spec_hash"] == run.study.spec_hash and manifest["seed"] == 7 and "numpy" in manifest["packages"]
