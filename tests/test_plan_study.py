"""Plan of the confirmatory trial from a finished analysis: aggregate inputs from the endpoint
frame, effect scenarios (observed, nearer CI limit, user value), sizes equal to the plan room's
formulas, results.json schema, ``controlarm plan --results``."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from typer.testing import CliRunner

from controlarm.errors import InputError
from controlarm.plan import PlanSettings, plan_binary, plan_inputs, plan_trial

from .test_audit_study import ALIVE, seed_endpoints


def _outcomes():
    # survival risk difference +0.2083 (CI 0.0459 to 0.3708), as in the demo study
    return {"alive_d28": {"estimates": [{"name": "mh_risk_difference", "value": 5 / 24,
                                         "ci_low": 0.0459, "ci_high": 0.3708}]}}


def test_inputs_are_aggregates_and_sizes_match_the_formula():
    inputs = plan_inputs(seed_endpoints(), [ALIVE], _outcomes())
    m = inputs["mortality"]
    assert m["control"]["matched"] == {"n": 24, "deaths": 5} and m["treated"]["deaths"] == 0
    assert m["effect"]["observed"] == pytest.approx(-5 / 24)
    assert (m["effect"]["ci_low"], m["effect"]["ci_high"]) == (-0.3708, -0.0459)
    plan = plan_trial(inputs, PlanSettings(effects=("observed", "ci_near_null", "user"),
                                           p_treated=0.05, n_sims=500, curves=False))
    obs, near, user = plan["scenarios"]
    assert [x["name"] for x in obs["not_planned"]][0] == "alive_d28"  # p_treated = 0
    assert "outside (0, 1)" in obs["not_planned"][0]["reason"]
    p_c = 5 / 24
    ref = plan_binary(p_c, p_c - 0.0459, n_sims=500)
    got = next(e for e in near["endpoints"] if e["name"] == "alive_d28")
    assert got["n_control"] == ref.n_control and got["simulated_power"] == ref.simulated_power
    got = next(e for e in user["endpoints"] if e["name"] == "alive_d28")
    assert got["n_control"] == plan_binary(p_c, 0.05, n_sims=500).n_control
    assert abs(got["simulated_power"] - 0.8) < 4 * got["mc_se"] + 0.01
    # time to death from the implied hazard ratio, Schoenfeld events
    tte = next(e for e in user["endpoints"] if e["name"] == "time_to_death")
    hr = math.log(1 - 0.05) / math.log(1 - p_c)
    assert tte["effect"]["hazard_ratio"] == pytest.approx(hr)


def test_pool_control_needs_pool_inputs_and_bad_settings():
    inputs = plan_inputs(seed_endpoints(), [ALIVE], _outcomes())
    with pytest.raises(InputError, match="holds no pool control distribution"):
        plan_trial(inputs, PlanSettings(control="pool"))
    with pytest.raises(InputError, match="plan.effects"):
        PlanSettings(effects=("maybe",))
    pool = seed_endpoints()[["alive_d28"]]
    both = plan_inputs(seed_endpoints(), [ALIVE], _outcomes(), pool_endpoints=pool)
    assert both["mortality"]["control"]["pool"] == {"n": 32, "deaths": 5}


def test_an_endpoint_without_a_usable_control_distribution_is_not_planned():
    """Regression (tests/_clif.py tiny study): a lab measured in fewer than two matched controls
    used to drop the "matched" source from its inputs, and plan_trial then refused the whole run
    with "the run holds no matched control distribution". It must only leave that endpoint
    unplanned, with the reason; asking for a source that was never derived still fails."""
    from controlarm.outcomes import Endpoint

    lab = Endpoint(name="d_dimer_d7", label="D-dimer at day 7", kind="continuous",
                   column="d_dimer_d7", definition="D-dimer at day 7", unit="mg/L")
    ep = seed_endpoints()
    ep["d_dimer_d7"] = [2.0 if r == "treated" else math.nan for r in ep["role"]]
    ep.loc[ep.index[1], "d_dimer_d7"] = 3.0  # a single control value
    inputs = plan_inputs(ep, [ALIVE, lab], _outcomes())
    c = inputs["continuous"][0]["control"]["matched"]
    assert c == {"n": 1, "mean_log": None, "sd_log": None}
    plan = plan_trial(inputs, PlanSettings(effects=("observed", "user"), lab_ratio=0.5,
                                           p_treated=0.1, n_sims=200, curves=False))
    for scen in plan["scenarios"]:
        skipped = {x["name"]: x["reason"] for x in scen["not_planned"]}
        assert "fewer than 2 matched controls" in skipped["d_dimer_d7"]
    user = plan["scenarios"][1]
    assert any(e["name"] == "alive_d28" for e in user["endpoints"])  # the rest is planned
    with pytest.raises(InputError, match="holds no pool control distribution"):
        plan_trial(inputs, PlanSettings(control="pool", n_sims=200, curves=False))


def test_plan_in_results_json_is_deterministic_and_replans(tmp_path, monkeypatch):
    from controlarm.cli import app
    from controlarm.report import write_report

    from .test_report import make_run, stub_figures
    from .test_report_schema import SCHEMA, validate

    stub_figures(monkeypatch)
    run = make_run()
    outcomes = run.results.to_dict()["outcomes"]
    inputs = plan_inputs(run.endpoints, run.endpoint_defs, outcomes)
    settings = PlanSettings(effects=("observed", "user"), p_treated=0.2, n_sims=300, seed=3)
    plan = plan_trial(inputs, settings)
    assert plan == plan_trial(inputs, dataclasses.replace(settings, workers=2))
    run = dataclasses.replace(run, plan=plan)
    paths = write_report(run, tmp_path / "r")
    data = json.loads(paths["results.json"].read_text(encoding="utf-8"))
    assert validate(data, SCHEMA) == []
    html = paths["index.html"].read_text(encoding="utf-8")
    assert "Plan of the confirmatory trial" in html
    res = CliRunner().invoke(app, ["plan", "--results", str(paths["results.json"]), "--json",
                                   "--effects", "user", "--p-treated", "0.2", "--n-sims", "300",
                                   "--seed", "3"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.output)["scenarios"][0]["endpoints"]
    first = plan["scenarios"][1]["endpoints"]
    assert [(e["name"], e["n_control"], e["simulated_power"]) for e in again] == \
        [(e["name"], e["n_control"], e["simulated_power"]) for e in first]
    bad = CliRunner().invoke(app, ["plan", "--results", str(tmp_path / "r"), "--control", "pool"])
    assert bad.exit_code == 2 and "--control matched" in bad.output
