"""``controlarm audit``: the command function on a small Typer app (the cli room registers it)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from controlarm.audit._command import audit_command


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    a.command("audit")(audit_command)

    @a.command("other")
    def other() -> None:
        pass

    return a


def test_seed_study_table(app):
    res = CliRunner().invoke(app, ["audit", "--treated", "8", "--ratio", "3", "--treated-events",
                                   "0", "--control-events", "5", "--published-p", "0.0253"])
    assert res.exit_code == 0, res.output
    assert "exact_conditional" in res.output and "0.125" in res.output
    assert "reproduced by: mcnemar_pseudo_pairs, logrank_pseudo_pairs" in res.output


def test_json_and_set_sizes(app):
    res = CliRunner().invoke(app, ["audit", "--set-sizes", "4,4,3,2", "--treated-events", "0",
                                   "--control-events", "3", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["set_sizes"] == [4, 4, 3, 2] and d["enumerated"] is True


@pytest.mark.parametrize("args, msg", [
    (["--treated-events", "0", "--control-events", "3"], "give the design"),
    (["--treated", "8", "--ratio", "3", "--set-sizes", "4,4", "--treated-events", "0",
      "--control-events", "3"], "not both"),
    (["--treated", "8", "--ratio", "3", "--treated-events", "0", "--control-events", "30"],
     "control_events must be"),
])
def test_errors_exit_2(app, args, msg):
    res = CliRunner().invoke(app, ["audit", *args])
    assert res.exit_code == 2
    assert msg in res.output and "Traceback" not in res.output
