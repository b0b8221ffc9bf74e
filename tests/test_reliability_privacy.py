"""Identifier scan: a default demo run writes no input patient id, hospitalization id or birth date."""

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


def test_listings_keep_the_real_ids(demo, tmp_path):
    data, _ = demo
    study = load_study(data.parent / "study.toml")
    study = study.model_copy(update={"report": study.report.model_copy(update={"listings": True})})
    run = run_study(study)
    write_report(run, tmp_path / "listed")
    table = pd.read_csv(tmp_path / "listed" / "matched_sets.csv")
    assert set(table["patient_id"].astype(str)) == set(run.matched["patient_id"].astype(str))
    # the scan is a real detector: it finds the ids a listing run writes
    leaks = _leaks(_texts(tmp_path / "listed"), _identifiers(data))
    assert "matched_sets.csv" in leaks and "analysis/adsl.parquet" in leaks


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
