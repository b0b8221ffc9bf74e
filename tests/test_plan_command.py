"""``controlarm plan``: the command function on a small Typer app (the cli room registers it)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from controlarm.plan._command import plan_command


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    a.command("plan")(plan_command)

    @a.command("other")
    def other() -> None:
        pass

    return a


def test_all_endpoints_table(app):
    res = CliRunner().invoke(app, [
        "plan", "--p-control", "0.208", "--p-treated", "0.08", "--hazard-ratio", "0.4",
        "--control-survival", "0.79", "--free-days", "0,0,0,5,10,15,20,22,24,26",
        "--odds-ratio", "2", "--difference", "-1.0", "--sd", "1.2", "--dropout", "0.1",
        "--n-sims", "500"])
    assert res.exit_code == 0, res.output
    for name in ("binary mortality", "time to death", "free days", "day-7 log D-dimer"):
        assert name in res.output
    assert "Sample size of the confirmatory trial" in res.output


def test_json(app):
    res = CliRunner().invoke(app, ["plan", "--p-control", "0.5", "--p-treated", "0.75",
                                   "--power", "0.9", "--n-sims", "200", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["endpoints"][0]["n_control"] == 77


@pytest.mark.parametrize("args, msg", [
    ([], "no endpoint given"),
    (["--p-control", "0.2"], "needs both --p-control and --p-treated"),
    (["--hazard-ratio", "0.5"], "--control-survival"),
    (["--free-days", "0,a"], "--free-days must be"),
])
def test_errors_exit_2(app, args, msg):
    res = CliRunner().invoke(app, ["plan", *args])
    assert res.exit_code == 2
    assert msg in res.output and "Traceback" not in res.output
