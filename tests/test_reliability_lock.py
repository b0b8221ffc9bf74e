"""The locked plan: `controlarm lock` records the outcome-blind design, `controlarm run` honours it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from controlarm.pipeline import design_study, lock_dict, locked_sets
from controlarm.spec import load_study

from . import _clif


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture()
def cli(capsys):
    """`controlarm ARGS` in-process (the subprocess start-up would dominate these tests)."""
    from controlarm.cli import main

    def call(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        captured = capsys.readouterr()
        return Result(int(code), captured.out, captured.err)

    return call


@pytest.fixture()
def tiny(tmp_path) -> Path:
    return _clif.write(tmp_path)


def test_lock_writes_the_design_with_deterministic_bytes(cli, tiny, tmp_path):
    res = cli("lock", str(tiny), "-q")
    assert res.returncode == 0, res.stderr
    lock = tiny.with_name("study.lock.json")
    first = lock.read_bytes()
    data = json.loads(first)
    study = load_study(tiny)
    assert data["spec_hash"] == study.spec_hash
    assert data["cohort"] == {"trial": 1, "pool": 2}
    assert data["matched_sets"] == [[1, "treated", "T1"], [1, "control", "C2"]]
    assert {"patient", "labs", "hospitalization"} <= set(data["inputs"])
    assert all(len(v["sha256"]) == 64 for v in data["inputs"].values())
    assert [r["covariate"] for r in data["balance"]["rows"]][:1] == ["age"]
    assert any(step["stage"] == "matching" for step in data["flow"])
    other = tmp_path / "elsewhere.json"
    assert cli("lock", str(tiny), "--out", str(other), "-q").returncode == 0
    assert other.read_bytes() == first  # same inputs and spec -> the same bytes


def test_run_honours_the_lock(cli, tiny):
    assert cli("lock", str(tiny), "-q").returncode == 0
    out = tiny.parent / "report"
    res = cli("run", str(tiny), "--out", str(out), "-q")
    assert res.returncode == 0, res.stderr
    lock = json.loads((out / "manifest.json").read_text())["lock"]
    assert lock["status"] == "locked" and lock["matched_sets_equal_locked"] is True
    assert lock["lock_spec_hash"] == lock["spec_hash"] == load_study(tiny).spec_hash


def test_run_refuses_a_changed_spec_unless_unlocked(cli, tiny):
    assert cli("lock", str(tiny), "-q").returncode == 0
    locked_hash = load_study(tiny).spec_hash
    tiny.write_text(tiny.read_text().replace("ratio = 1", "ratio = 2"))
    new_hash = load_study(tiny).spec_hash
    out = tiny.parent / "report"
    res = cli("run", str(tiny), "--out", str(out), "-q")
    assert res.returncode == 2
    assert locked_hash in res.stderr and new_hash in res.stderr
    assert "--unlock" in res.stderr and "Fix" in res.stderr and "Traceback" not in res.stderr
    assert not (out / "manifest.json").exists()
    res = cli("run", str(tiny), "--out", str(out), "-q", "--unlock", "ratio 2 asked by the DSMB")
    assert res.returncode == 0, res.stderr
    lock = json.loads((out / "manifest.json").read_text())["lock"]
    assert lock == {"file": "study.lock.json", "lock_spec_hash": locked_hash, "spec_hash": new_hash,
                    "status": "unlocked", "reason": "ratio 2 asked by the DSMB",
                    "matched_sets_equal_locked": False}  # recorded; not a failure once unlocked


def test_run_without_a_lock_says_so(cli, tiny):
    out = tiny.parent / "report"
    assert cli("run", str(tiny), "--out", str(out), "-q").returncode == 0
    assert json.loads((out / "manifest.json").read_text())["lock"] == {"status": "not locked"}
    res = cli("run", str(tiny), "--out", str(out), "-q", "--lock", str(tiny.parent / "nope.json"))
    assert res.returncode == 2 and "lock file not found" in res.stderr


def test_run_whose_matched_sets_differ_from_the_lock_exits_1(cli, tiny):
    assert cli("lock", str(tiny), "-q").returncode == 0
    lock = tiny.with_name("study.lock.json")
    data = json.loads(lock.read_text())
    data["matched_sets"] = [[1, "treated", "T1"], [1, "control", "C1"]]  # as if the data had changed
    lock.write_text(json.dumps(data))
    out = tiny.parent / "report"
    res = cli("run", str(tiny), "--out", str(out), "-q")
    assert res.returncode == 1
    assert "matched sets of this run differ" in res.stderr and "Traceback" not in res.stderr
    assert json.loads((out / "manifest.json").read_text())["lock"]["matched_sets_equal_locked"] is False


def test_design_stage_reads_no_outcome(tiny, monkeypatch):
    """The design stage never calls the outcome, safety or analysis rooms, and after validation it
    sends no query that touches the adverse-event table."""
    import controlarm.analysis
    import controlarm.outcomes
    import controlarm.safety
    import controlarm.sources
    import controlarm.validate

    def boom(*args, **kwargs):
        raise AssertionError("the design stage read an outcome")

    for mod, names in ((controlarm.outcomes, ("derive_endpoints", "derive_trajectories", "endpoint_definitions")),
                       (controlarm.safety, ("summarise_safety",)), (controlarm.analysis, ("analyse",))):
        for name in names:
            monkeypatch.setattr(mod, name, boom)

    queries: list[str] = []
    validated = {"done": False}

    class Recorder:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args, **kwargs):
            if validated["done"]:
                queries.append(str(sql))
            return self._con.execute(sql, *args, **kwargs)

        def __getattr__(self, name):
            return getattr(self._con, name)

    # the pipeline opens a study's data through open_study_sources (which calls the module-level
    # open_sources of sources._read, not the package attribute): wrap the function it calls
    real_open, real_validate = controlarm.sources.open_study_sources, controlarm.validate.validate_sources

    def open_recorded(*args, **kwargs):
        src = real_open(*args, **kwargs)
        return dataclasses.replace(src, con=Recorder(src.con))

    def validate_then_record(sources):
        report = real_validate(sources)
        validated["done"] = True
        return report

    monkeypatch.setattr(controlarm.sources, "open_study_sources", open_recorded)
    monkeypatch.setattr(controlarm.validate, "validate_sources", validate_then_record)
    design = design_study(load_study(tiny))
    assert locked_sets(design["matched"]) == [[1, "treated", "T1"], [1, "control", "C2"]]
    assert queries, "the recorder saw the design stage's queries"
    assert not [q for q in queries if "adverse_event" in q]


def test_design_is_blind_to_post_index_outcome_data(tiny):
    """Changing what happens after index (labs from day 1 on, adverse events) changes no design output."""
    study = load_study(tiny)
    design = design_study(study)
    before = lock_dict(study, design)
    index = design["cohort"].patients.set_index("hospitalization_id")["index_time"]
    data = tiny.parent / "data"
    labs = pd.read_parquet(data / "labs.parquet")
    later = labs["lab_collect_dttm"] > labs["hospitalization_id"].map(index) + pd.Timedelta(days=1)
    assert later.any()
    labs.loc[later, "lab_value_numeric"] *= 10
    labs.loc[later, "lab_value"] = labs.loc[later, "lab_value_numeric"].astype(str)
    labs.to_parquet(data / "labs.parquet", index=False)
    ae = pd.read_parquet(data / "adverse_event.parquet")
    ae.iloc[0:0].to_parquet(data / "adverse_event.parquet", index=False)
    after = lock_dict(study, design_study(study))
    assert after["inputs"] != before["inputs"]
    assert {k: v for k, v in after.items() if k != "inputs"} == {k: v for k, v in before.items() if k != "inputs"}


def test_lock_and_run_options_have_help(cli):
    res = cli("lock", "--help")
    assert res.returncode == 0 and "outcome-blind" in res.stdout
    res = cli("run", "--help")
    assert res.returncode == 0 and "--unlock" in res.stdout and "--listings" in res.stdout
