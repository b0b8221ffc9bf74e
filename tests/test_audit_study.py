"""Audit of a study's own binary outcomes: the actual allocation placed in the distribution over
every allocation consistent with the arm counts (seed study design: 8 sets of 1:3, 0 vs 5 deaths
at day 28 in five different sets), checked against the analysis room and a brute-force
enumeration of all C(24, 5) control-death configurations."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from controlarm.analysis import exact_conditional, mantel_haenszel, mcnemar_pseudo_pairs
from controlarm.audit import actual_allocation, audit_study
from controlarm.outcomes._endpoints import Endpoint

ALIVE = Endpoint(name="alive_d28", label="Alive at day 28", kind="binary", column="alive_d28",
                 definition="alive at day 28", higher_is_better=True)


def seed_endpoints(dead_sets=(1, 2, 3, 4, 5)) -> pd.DataFrame:
    rows = []
    for s in range(1, 9):
        rows.append({"set_id": s, "patient_id": f"T{s}", "role": "treated", "alive_d28": 1.0})
        for j in range(3):
            dead = s in dead_sets and j == 0
            rows.append({"set_id": s, "patient_id": f"C{s}{j}", "role": "control",
                         "alive_d28": 0.0 if dead else 1.0})
    return pd.DataFrame(rows)


def outcomes_of(ep: pd.DataFrame) -> dict:
    tests = [t.to_dict() for t in (exact_conditional(ep, "alive_d28"),
                                   mantel_haenszel(ep, "alive_d28"),
                                   mcnemar_pseudo_pairs(ep, "alive_d28"))]
    return {"alive_d28": {"tests": tests}}


def test_actual_allocation_is_canonical_and_anonymous():
    cfg, dropped = actual_allocation(seed_endpoints(), "alive_d28", event_value=0)
    assert cfg.tolist() == [[3, 0, 0]] * 3 + [[3, 0, 1]] * 5
    assert dropped == {"sets_without_outcome": 0, "controls_without_outcome": 0}
    ep = seed_endpoints()
    ep.loc[0, "alive_d28"] = np.nan  # set 1's treated outcome unknown: set left out
    ep.loc[5, "alive_d28"] = np.nan  # one control of set 2 unknown
    cfg, dropped = actual_allocation(ep, "alive_d28", event_value=0)
    assert len(cfg) == 7 and sorted(cfg[:, 0].tolist())[0] == 2
    assert dropped == {"sets_without_outcome": 1, "controls_without_outcome": 1}


@pytest.mark.parametrize("dead_sets", [(1, 2, 3, 4, 5), (1, 1, 2)])
def test_actual_allocation_agrees_with_analysis_and_brute_force(dead_sets):
    ep = seed_endpoints()
    if dead_sets == (1, 1, 2):  # clumped: 2 deaths in set 1, 1 in set 2
        ep.loc[(ep["set_id"] == 1) & (ep["role"] == "control"), "alive_d28"] = [0.0, 0.0, 1.0]
        ep.loc[(ep["set_id"] == 2) & (ep["role"] == "control"), "alive_d28"] = [0.0, 1.0, 1.0]
        ep.loc[ep["set_id"] > 2, "alive_d28"] = 1.0
    out = audit_study(ep, [ALIVE], outcomes_of(ep), alpha=0.05, seed=0)["outcomes"]["alive_d28"]
    checks = out["crosscheck_with_analysis"]
    assert checks and all(c["agree"] for c in checks.values())
    # brute force: every choice of which controls died, each equally likely
    n_dead = int((ep.loc[ep["role"] == "control", "alive_d28"] == 0).sum())
    frame = out["audit"]
    p_of = {}
    from controlarm.audit._audit import _config_tests

    below = total = 0
    actual = out["actual"]["exact_conditional"]["p"]
    for combo in itertools.combinations(range(24), n_dead):
        c = Counter(i // 3 for i in combo)
        key = tuple(sorted(c.get(s, 0) for s in range(8)))
        if key not in p_of:
            cfg = np.array([[3, 0, x] for x in key])
            p_of[key] = _config_tests(cfg, 0.05)["exact_conditional"]
        total += 1
        below += p_of[key] <= actual + 1e-12
    assert out["actual"]["exact_conditional"]["share_at_or_below"] == pytest.approx(below / total,
                                                                                    rel=1e-12)
    assert frame["treated_events"] == 0 and frame["control_events"] == n_dead
    if dead_sets == (1, 2, 3, 4, 5):  # the published test of the seed study is identified
        assert out["published_style"]["identified"][0] == "mcnemar_pseudo_pairs"
        assert out["actual"]["mcnemar_pseudo_pairs"]["p"] == pytest.approx(0.0253, abs=5e-5)


def test_audit_in_results_json_and_cli(tmp_path, monkeypatch):
    from controlarm.cli import app
    from controlarm.report import write_report

    from .test_report import make_run, stub_figures
    from .test_report_schema import SCHEMA, validate

    stub_figures(monkeypatch)
    run = make_run()
    audit = audit_study(run.endpoints, run.endpoint_defs, run.results.to_dict()["outcomes"])
    run = dataclasses.replace(run, audit=audit)
    paths = write_report(run, tmp_path / "r")
    text = paths["results.json"].read_text(encoding="utf-8")
    data = json.loads(text)
    assert validate(data, SCHEMA) == [] and data["audit"]["outcomes"]
    for pid in run.matched["patient_id"]:
        assert str(pid) not in text
    html = paths["index.html"].read_text(encoding="utf-8")
    assert "Audit of the binary outcomes" in html and 'id="fig-audit"' in html
    res = CliRunner().invoke(app, ["audit", "--results", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 0, res.output
    name = next(iter(data["audit"]["outcomes"]))
    again = json.loads(res.output)[name]
    assert again["actual"] == data["audit"]["outcomes"][name]["actual"]
    bad = CliRunner().invoke(app, ["audit", "--results", str(tmp_path / "nothing.json")])
    assert bad.exit_code == 2 and "not a readable results.json" in bad.output
    assert "Traceback" not in bad.output
    mixed = CliRunner().invoke(app, ["audit", "--results", str(tmp_path / "r"), "--treated", "8"])
    assert mixed.exit_code == 2 and "do not also give counts" in mixed.output
