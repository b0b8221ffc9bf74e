"""Tests of the `controlarm` command: exit codes, messages, and never a traceback for a user's mistake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from . import _clif


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "controlarm", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


@pytest.fixture()
def tiny(tmp_path) -> Path:
    return _clif.write(tmp_path)


@pytest.mark.parametrize("command", ["init", "validate", "run", "demo"])
def test_every_command_has_help(command):
    res = cli(command, "--help")
    assert res.returncode == 0, res.stderr
    assert "Usage" in res.stdout


def test_init_writes_a_template_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "study.toml"
    assert cli("init", str(target)).returncode == 0
    assert "[matching]" in target.read_text()
    again = cli("init", str(target))
    assert again.returncode == 2
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.stderr


def test_validate_reports_eligibility_counts(tiny):
    res = cli("validate", str(tiny))
    assert res.returncode == 0, res.stderr
    assert "eligible: 1 trial patients, 2 pool candidates" in res.stdout
    assert "excluded 1 (age above 70)" in res.stdout
    # progress goes to stderr, one line per stage off a terminal; --quiet silences it
    assert [line.split(None, 1)[1] for line in res.stderr.splitlines()] == [
        "reading tables…", "validating tables…", "index dates and eligibility…"]
    assert cli("validate", str(tiny), "-q").stderr == ""
    js = json.loads(cli("validate", str(tiny), "--json").stdout)
    assert js["eligible"] == {"trial": 1, "pool": 2}


def test_run_writes_the_report_folder(tiny, tmp_path):
    out = tmp_path / "report"
    res = cli("run", str(tiny), "--out", str(out), "-q")
    assert res.returncode == 0, res.stderr
    for name in ("index.html", "results.json", "matched_sets.csv", "manifest.json"):
        assert (out / name).is_file()
    results = json.loads((out / "results.json").read_text())
    assert results["matching"]["n_sets"] == 1
    # T1 (CRP 80) is matched to C2 (CRP 90), the nearer of the two eligible candidates. Mahalanobis
    # with MatchIt's pooled within-group variance: the pool (120, 90) has SS 450, the single treated
    # patient 0, over n - 2 = 1 -> variance 450; distance = 10 / sqrt(450) = 0.4714045208.
    # Ids are pseudonymous by default (T1 -> T-001, C2 -> C-001).
    assert (out / "matched_sets.csv").read_text().splitlines()[1:] == ["1,treated,T-001,1,0",
                                                                       "1,control,C-001,1,0.4714045208"]


def test_listings_keep_pseudonyms_and_real_ids_is_its_own_flag(tiny, tmp_path):
    listed = cli("run", str(tiny), "--out", str(tmp_path / "listed"), "-q", "--listings")
    assert listed.returncode == 0, listed.stderr
    assert "real patient ids" not in listed.stdout
    page = (tmp_path / "listed" / "index.html").read_text(encoding="utf-8")
    assert ">Listing of matched sets</h2>" in page and "<td>T-001</td>" in page and "<td>C-001</td>" in page
    assert (tmp_path / "listed" / "matched_sets.csv").read_text().splitlines()[1:] == [
        "1,treated,T-001,1,0", "1,control,C-001,1,0.4714045208"]
    real = cli("run", str(tiny), "--out", str(tmp_path / "real"), "-q", "--listings", "--real-ids")
    assert real.returncode == 0, real.stderr
    assert "real patient ids written (--real-ids)" in real.stdout
    assert (tmp_path / "real" / "matched_sets.csv").read_text().splitlines()[1:] == [
        "1,treated,T1,1,0", "1,control,C2,1,0.4714045208"]
    page = (tmp_path / "real" / "index.html").read_text(encoding="utf-8")
    assert "<td>T1</td>" in page and "Real patient ids (report.real_ids = true)" in page
    options = json.loads((tmp_path / "real" / "results.json").read_text())["report_options"]
    assert options["real_ids"] is True and options["listings"] is True
    assert "--real-ids" in cli("run", "--help").stdout


def test_bad_study_file_is_one_message_and_exit_2(tiny):
    text = tiny.read_text().replace("ratio = 1", "ratio = 0\nbogus = 1")
    tiny.write_text(text)
    res = cli("validate", str(tiny))
    assert res.returncode == 2
    assert "`matching.ratio`" in res.stderr and "unknown key `matching.bogus`" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout


def test_broken_data_names_table_column_and_fix(tiny):
    labs = tiny.parent / "data" / "labs.parquet"
    import pandas as pd

    df = pd.read_parquet(labs).drop(columns=["reference_unit"])
    df.to_parquet(labs, index=False)
    res = cli("run", str(tiny), "--out", str(tiny.parent / "out"))
    assert res.returncode == 2
    assert "labs" in res.stderr and "reference_unit" in res.stderr and "Fix" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert not (tiny.parent / "out" / "index.html").exists()


def test_missing_study_file(tmp_path):
    res = cli("run", str(tmp_path / "nope.toml"))
    assert res.returncode == 2
    assert "study file not found" in res.stderr and "controlarm init" in res.stderr


def test_match_command_is_mounted(tmp_path):
    """`controlarm match` runs the matching room's command on a plain table (lalonde, MatchIt's data)."""
    import pandas as pd

    data = pd.read_csv(Path(__file__).parent / "reference" / "data" / "lalonde.csv")
    data["black"] = (data["race"] == "black").astype(int)
    data.to_csv(tmp_path / "lalonde.csv", index=False)
    out = tmp_path / "sets.csv"
    res = cli("match", str(tmp_path / "lalonde.csv"), "--id", "id", "--treatment", "treat",
              "--covariates", "age,educ,black,married,nodegree,re74,re75", "--ratio", "1", "--out", str(out))
    assert res.returncode == 0, res.stderr
    sets = pd.read_csv(out)
    assert list(sets.columns) == ["set_id", "treated_id", "control_id", "slot", "distance"]
    assert len(sets) == 185 and sets["control_id"].is_unique
    bad = cli("match", str(tmp_path / "lalonde.csv"), "--id", "id", "--treatment", "treat",
              "--covariates", "nope", "--out", str(out))
    assert bad.returncode == 2 and "nope" in bad.stderr and "Traceback" not in bad.stderr


def test_audit_and_plan_commands_are_mounted():
    """The seed study's day-28 counts (8 treated, 1:3, 0 vs 5 deaths): the published p = 0.025 is
    McNemar without continuity correction on pseudo-pairs (chi2 = 5, p = 0.02535)."""
    res = cli("audit", "--treated", "8", "--ratio", "3", "--treated-events", "0", "--control-events", "5",
              "--published-p", "0.025", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert "mcnemar_pseudo_pairs" in json.dumps(out)
    plan = cli("plan", "--help")
    assert plan.returncode == 0 and "--p-control" in plan.stdout
    bad = cli("audit", "--treated", "8", "--ratio", "3", "--treated-events", "0", "--control-events", "99")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_error_text_keeps_square_brackets(tiny):
    """Messages name study-file sections like [index]; rich markup must not swallow them."""
    tiny.write_text(tiny.read_text().replace('product = "MSC"', 'product = "XYZ"'))
    res = cli("run", str(tiny), "--out", str(tiny.parent / "out"))
    assert res.returncode == 2
    assert "no trial patient received product 'XYZ'" in res.stderr and "[index]" in res.stderr
