"""Identifier scan: a default or a listings demo run writes no input patient id, hospitalization id or birth
date; only ``[report] real_ids = true`` writes the real ids."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from controlarm.demo import generate_demo
from controlarm.pipeline import run_study
from controlarm.report import write_report
from controlarm.spec import load_study


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("privacy")
    study = load_study(generate_demo(base))
    out = base / "report"
    write_report(run_study(study), out)
    return base / "data", out


def _identifiers(data: Path) -> set[str]:
    patient = pd.read_parquet(data / "patient.parquet")
    hosp = pd.read_parquet(data / "hospitalization.parquet")
    births = pd.to_datetime(patient["birth_date"]).dt.strftime("%Y-%m-%d")
    ids = set(patient["patient_id"].astype(str)) | set(hosp["hospitalization_id"].astype(str)) | set(births)
    return {i for i in ids if i and i != "NaT"}


def _texts(out: Path) -> dict[str, str]:
    """Every output file as text: parquet cells and column names, DOCX XML, the rest as UTF-8."""
    texts = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = path.relative_to(out).as_posix()
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            texts[name] = "\n".join([",".join(map(str, frame.columns))]
                                    + [",".join(map(str, row)) for row in frame.itertuples(index=False)])
        elif path.suffix == ".docx":
            with zipfile.ZipFile(path) as z:
                texts[name] = "\n".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))
        else:
            text = path.read_text(encoding="utf-8")
            texts[name] = re.sub(r"data:[a-z/+]+;base64,[A-Za-z0-9+/=]+", "", text)  # embedded images
    return texts


def _leaks(texts: dict[str, str], ids: set[str]) -> dict[str, list[str]]:
    """File -> the input identifiers found in it, as whole tokens (a few per file)."""
    found = {}
    for name, text in texts.items():
        tokens = set(re.findall(r"[A-Za-z0-9_]+", text)) | set(re.findall(r"\d{4}-\d{2}-\d{2}", text))
        if tokens & ids:
            found[name] = sorted(tokens & ids)[:5]
    return found


def test_no_input_identifier_reaches_any_output(demo):
    data, out = demo
    ids = _identifiers(data)
    assert len(ids) > 500  # every patient and hospitalization of trial and pool, and their birth dates
    texts = _texts(out)
    expected = {"index.html", "results.json", "manifest.json", "log.txt", "matched_sets.csv", "table1.csv", "outcomes.csv",
                "tables.docx", "analysis/adsl.parquet", "analysis/adtte.parquet", "analysis/adlb.parquet"}
    assert expected <= set(texts)
    assert _leaks(texts, ids) == {}
    # the pseudonyms are there instead
    adsl = pd.read_parquet(out / "analysis" / "adsl.parquet")
    assert adsl.loc[adsl["ARM"] == "treated", "USUBJID"].str.fullmatch(r"T-\d{3}").all()
    assert adsl.loc[adsl["ARM"] == "control", "USUBJID"].str.fullmatch(r"C-\d{3}").all()


def test_pseudonyms_are_stable_across_runs(demo, tmp_path):
    data, out = demo
    study = load_study(data.parent / "study.toml")
    write_report(run_study(study), tmp_path / "again")
    for name in ("matched_sets.csv", "analysis/adsl.parquet", "analysis/adtte.parquet"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name


def _run_with(data: Path, out: Path, **report):
    study = load_study(data.parent / "study.toml")
    study = study.model_copy(update={"report": study.report.model_copy(update=report)})
    run = run_study(study)
    write_report(run, out)
    return run


@pytest.fixture(scope="module")
def listed(demo, tmp_path_factory) -> Path:
    """The demo with ``[report] listings = true``: listings on, ids still pseudonymous."""
    out = tmp_path_factory.mktemp("privacy_listed") / "report"
    _run_with(demo[0], out, listings=True)
    return out


def test_listings_are_pseudonymous(demo, listed):
    data, _ = demo
    texts = _texts(listed)
    assert {"analysis/safety.html", "analysis/adae.parquet"} <= set(texts)
    assert _leaks(texts, _identifiers(data)) == {}  # no input id or birth date in any output file
    # the listings are there, with the pseudonyms of matched_sets.csv
    page = texts["index.html"]
    listing = page[page.index('<section id="listing">'):]
    listing = listing[:listing.index("</section>")]
    table = pd.read_csv(listed / "matched_sets.csv")
    assert table["patient_id"].str.fullmatch(r"[TC]-\d{3}").all()
    for pid in table["patient_id"]:
        assert f"<td>{pid}</td>" in listing, pid
    safety = texts["analysis/safety.html"]
    assert "Listing: administrations" in safety and "Listing: adverse events" in safety
    assert "Listing: administrations" in page
    treated = set(table.loc[table["role"] == "treated", "patient_id"])
    assert treated and all(f"<td>{pid}</td>" in safety for pid in treated)
    results = json.loads(texts["results.json"])
    listed_ids = {r["patient_id"] for rows in results["safety"]["listings"].values() for r in rows}
    assert listed_ids and all(re.fullmatch(r"[TCX]-\d{3}", i) for i in listed_ids)
    # days from index or first administration only, never a calendar date or time (the study's own
    # calendar window, in the methods and the spec, is not a patient's date)
    section = page[page.index('<section id="safety">'):]
    patient_level = {"page listing": listing, "page safety section": section[:section.index("</section>")],
                     "results.json safety": json.dumps(results["safety"]), "matched_sets.csv": texts["matched_sets.csv"],
                     **{name: text for name, text in texts.items() if name.startswith("analysis/safety")}}
    for name, text in patient_level.items():
        assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}", text), name
    assert "Patient-level listings on (report.listings = true), with pseudonymous ids only" in page
    assert "ids in outputs: pseudonyms; patient-level listings: on" in texts["log.txt"]


def test_listings_use_the_same_pseudonyms_as_a_default_run(demo, listed):
    _, out = demo
    for name in ("matched_sets.csv", "analysis/adsl.parquet", "analysis/adtte.parquet"):
        assert (listed / name).read_bytes() == (out / name).read_bytes(), name


def test_real_ids_put_the_input_ids_back(demo, tmp_path):
    data, _ = demo
    run = _run_with(data, tmp_path / "real", listings=True, real_ids=True)
    table = pd.read_csv(tmp_path / "real" / "matched_sets.csv")
    assert set(table["patient_id"].astype(str)) == set(run.matched["patient_id"].astype(str))
    # the scan is a real detector: it finds the ids a real-ids run writes
    leaks = _leaks(_texts(tmp_path / "real"), _identifiers(data))
    for name in ("matched_sets.csv", "analysis/adsl.parquet", "index.html", "analysis/safety.html", "results.json"):
        assert name in leaks, name
    assert "log.txt" not in leaks  # the log never carries an id
    page = (tmp_path / "real" / "index.html").read_text(encoding="utf-8")
    assert "Real patient ids (report.real_ids = true)" in page
    assert "with the real patient ids (report.real_ids = true)" in page  # the safety listings' note
    log = (tmp_path / "real" / "log.txt").read_text(encoding="utf-8")
    assert "ids in outputs: real patient ids (report.real_ids = true); patient-level listings: on" in log


def test_log_txt_has_stages_counts_and_warnings_without_ids(demo):
    data, out = demo
    log = (out / "log.txt").read_text(encoding="utf-8")
    for part in ("stages (seconds):", "  read validate: ", "  matching: ", "tables (rows):", "  patient: 462",
                 "flow:", "matched sets: 8 (8 treated, 24 controls)", "warnings: "):
        assert part in log, part
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "log.txt" in manifest["outputs"]


def test_log_txt_keeps_a_warning_headline_and_drops_its_examples():
    """A data-quality warning quotes rows (ids, times): the log keeps what, how many and the fix."""
    from types import SimpleNamespace

    from controlarm.cohort._flow import Flow, FlowStep
    from controlarm.report._write import log_text

    ids = pd.DataFrame({"patient_id": ["P-0042"], "hospitalization_id": ["H-0042"]})
    run = SimpleNamespace(
        study=SimpleNamespace(spec_hash="abc", study=SimpleNamespace(name="s", seed=1)),
        provenance={"timings_s": {"read_validate_s": 0.5}, "packages": {"controlarm": "0"}},
        data_quality={"tables": {"labs": 10}, "warnings": [
            "labs.csv: 1 row lies more than 24 h outside its hospitalization (row 5: H-0042 lab_collect_dttm "
            "2020-07-30 06:00 UTC, stay 2020-08-01 00:00 UTC to 2020-08-20 00:00 UTC). Fix: check the "
            "hospitalization_id and the time zone of these rows; they are kept.",
            "administration.csv: 1 pool patient has administration rows (P-0099 (first row 3)). Fix: check the arm.",
        ]},
        flow=Flow((FlowStep("enrolled", "trial", 1),)), matched=pd.DataFrame(columns=["set_id", "role", "patient_id"]),
        results=SimpleNamespace(outcomes=()), cohort=ids, baseline=ids[["patient_id"]], endpoints=None)
    log = log_text(run, {})
    assert "  - labs.csv: 1 row lies more than 24 h outside its hospitalization. Fix: check the" in log
    assert "  - administration.csv: 1 pool patient has administration rows. Fix: check the arm." in log
    assert "warnings: 2" in log
    for leak in ("H-0042", "P-0099", "2020-"):
        assert leak not in log
