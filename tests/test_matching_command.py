"""``controlarm match``: the command function on a small Typer app (the cli room registers it).

Checks the output columns, ``--json``, the caliper switches, and that a user's mistake is one clear
message with exit code 2 and no traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from controlarm.errors import InputError
from controlarm.matching import match
from controlarm.matching._command import match_command, run_match_command

REF = Path(__file__).parent / "reference"
COVS = "age,educ,racehispan,racewhite,married,nodegree,re74,re75"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    a.command("match")(match_command)

    @a.command("other")
    def other() -> None:  # a second command, so "match" is a subcommand as in controlarm
        pass

    return a


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory) -> Path:
    d = pd.read_csv(REF / "data" / "lalonde.csv")
    for level in ("black", "hispan", "white"):
        d["race" + level] = (d["race"] == level).astype(int)
    path = tmp_path_factory.mktemp("match") / "lalonde.csv"
    d.to_csv(path, index=False)
    return path


def test_writes_the_sets_file(app, data_csv, tmp_path):
    out = tmp_path / "sets.csv"
    res = CliRunner().invoke(app, ["match", str(data_csv), "--id", "id", "--treatment", "treat", "--covariates", COVS,
                                   "--ratio", "2", "--distance", "ps", "--out", str(out)])
    assert res.exit_code == 0, res.output
    sets = pd.read_csv(out)
    assert list(sets.columns) == ["set_id", "treated_id", "control_id", "slot", "distance"]
    # the same sets as the Python API (MatchIt nearest 1:2 on the PS)
    d = pd.read_csv(data_csv)
    api = match(d, treatment="treat", covariates=COVS.split(","), ratio=2, distance="ps", id_column="id")
    pd.testing.assert_frame_equal(sets, api.matched_sets.astype({"treated_id": object}), check_dtype=False)
    assert "wrote" in res.output and "370 matched controls in 185 sets" in res.output


def test_json_prints_balance_and_summary(app, data_csv, tmp_path):
    out = tmp_path / "sets.csv"
    res = CliRunner().invoke(app, ["match", str(data_csv), "--id", "id", "--treatment", "treat", "--covariates", COVS,
                                   "--method", "optimal", "--caliper", "0.2", "--exact", "race", "--out", str(out),
                                   "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert set(report) == {"summary", "settings", "balance", "unmatched"}
    assert report["settings"]["caliper_units"] == "sd" and report["settings"]["method"] == "optimal"
    assert report["balance"]["smd_denominator"].startswith("SD of the treated group")
    assert {r["covariate"] for r in report["balance"]["rows"]} == set(COVS.split(","))
    assert report["summary"]["n_sets"] + report["summary"]["unmatched_treated"] == 185
    assert all(u["reason"] for u in report["unmatched"])
    assert len(pd.read_csv(out)) == report["summary"]["n_pairs"]


def test_raw_caliper_switch(data_csv, tmp_path):
    sd = run_match_command(data_csv, id_column="id", treatment="treat", covariates=COVS, out=tmp_path / "a.csv",
                           caliper=0.05, std_caliper=True)
    raw = run_match_command(data_csv, id_column="id", treatment="treat", covariates=COVS, out=tmp_path / "b.csv",
                            caliper=0.05, std_caliper=False)
    assert sd["settings"]["caliper_units"] == "sd" and raw["settings"]["caliper_units"] == "raw"
    assert raw["settings"]["caliper_raw"] == 0.05 and sd["settings"]["caliper_raw"] != 0.05


@pytest.mark.parametrize(
    "args, message",
    [
        (["--distance", "euclid"], "--distance must be one of logit-ps, ps, mahalanobis, robust-mahalanobis"),
        (["--covariates", "age,nope"], r"no column\(s\) \['nope'\]"),
        (["--method", "best"], "method must be one of 'nearest', 'optimal'"),
        (["--order", "largest", "--distance", "mahalanobis"], "use order 'data' or 'random'"),
    ],
)
def test_user_mistakes_exit_2_with_a_message(app, data_csv, tmp_path, args, message):
    base = ["match", str(data_csv), "--id", "id", "--treatment", "treat", "--covariates", COVS, "--out",
            str(tmp_path / "x.csv")]
    res = CliRunner().invoke(app, base + args)
    assert res.exit_code == 2
    assert "error:" in res.stderr and pd.Series([res.stderr]).str.contains(message).item()
    assert "Traceback" not in res.output + res.stderr
    assert not (tmp_path / "x.csv").exists()


def test_missing_file_and_bad_suffix(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        run_match_command(tmp_path / "none.csv", id_column="id", treatment="t", covariates="a", out=tmp_path / "o.csv")
    bad = tmp_path / "data.xlsx"
    bad.write_text("x")
    with pytest.raises(InputError, match=r"must be \.csv or \.parquet"):
        run_match_command(bad, id_column="id", treatment="t", covariates="a", out=tmp_path / "o.csv")


def test_parquet_input_and_help(app, data_csv, tmp_path):
    pq = tmp_path / "d.parquet"
    pd.read_csv(data_csv).to_parquet(pq)
    report = run_match_command(pq, id_column="id", treatment="treat", covariates=COVS, out=tmp_path / "o.csv",
                               method="optimal", ratio=1)
    assert report["summary"]["n_sets"] == 185
    helptext = CliRunner().invoke(app, ["match", "--help"])
    assert helptext.exit_code == 0
    for flag in ("--id", "--treatment", "--covariates", "--ratio", "--method", "--distance", "--caliper",
                 "--std-caliper", "--raw-caliper", "--exact", "--replace", "--order", "--seed", "--out", "--json"):
        assert flag in helptext.output
