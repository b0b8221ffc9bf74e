"""``controlarm plan``: sample size of the confirmatory trial from numbers on the command line
(the cli room registers ``plan_command``). A thin shell over the plan room's functions: parse,
call, render a rich table; no statistics here.
"""

from __future__ import annotations

import json
from typing import Optional

import typer

from ..errors import ControlarmError, InputError
from ._binary import plan_binary
from ._continuous import plan_continuous
from ._free_days import plan_free_days
from ._result import TrialPlan
from ._survival import plan_survival

__all__ = ["plan_command", "render_plan"]


def render_plan(plan: TrialPlan, console) -> None:
    from rich.table import Table

    t = Table(title="Sample size of the confirmatory trial")
    for col in ("endpoint", "method", "control", "treated", "enrol (dropout)", "events",
                "simulated power ± MC SE"):
        t.add_column(col, justify="left" if col in ("endpoint", "method") else "right")
    for e in plan.endpoints:
        sim = "-" if e.simulated_power is None else f"{e.simulated_power:.3f} ± {e.mc_se:.3f}"
        t.add_row(e.endpoint, e.method, str(e.n_control), str(e.n_treated),
                  f"{e.n_total_enrolled} ({e.dropout:.0%})",
                  "-" if e.events is None else f"{e.events:.1f}", sim)
    console.print(t)
    e0 = plan.endpoints[0]
    console.print(f"alpha {e0.alpha:g} two-sided, power {e0.power:g}, allocation "
                  f"{e0.allocation:g}:1 (treated:control), {e0.n_simulations} simulated trials, "
                  f"seed {e0.seed}.")


def render_study_plan(plan: dict, console) -> None:
    """Print a plan made from a finished run: one table per assumed effect."""
    from rich.table import Table

    s = plan["settings"]
    for scen in plan["scenarios"]:
        t = Table(title=f"Assumed effect: {scen['meaning']}")
        for col in ("endpoint", "method", "control", "treated", "enrol", "events",
                    "simulated power ± MC SE"):
            t.add_column(col, justify="left" if col in ("endpoint", "method") else "right")
        for e in scen["endpoints"]:
            sim = "-" if e.get("simulated_power") is None else \
                f"{e['simulated_power']:.3f} ± {e['mc_se']:.3f}"
            t.add_row(e["endpoint"], e["method"], str(e["n_control"]), str(e["n_treated"]),
                      str(e["n_total_enrolled"]),
                      "-" if e.get("events") is None else f"{e['events']:.1f}", sim)
        console.print(t)
        for x in scen["not_planned"]:
            console.print(f"  not planned: {x['endpoint']}: {x['reason']}")
    console.print(f"alpha {s['alpha']:g} two-sided, power {s['power']:g}, allocation "
                  f"{s['allocation']:g}:1, dropout {s['dropout']:.0%}, controls from the "
                  f"{s['control']} {'controls' if s['control'] == 'matched' else 'pool'}; "
                  f"{s['n_sims']} simulated trials per size, seed {s['seed']}.")


def _plan_from_results(path, *, control, effects, alpha, power, allocation, dropout, n_sims,
                       seed, workers, p_treated, hazard_ratio, free_days_shift, lab_ratio):
    from ..audit._command import read_results
    from ._study import PlanSettings, plan_trial

    data = read_results(path)
    saved = data.get("plan") or {}
    inputs = saved.get("inputs")
    if not inputs:
        raise InputError(f"{path}: holds no plan inputs. Fix: run the study again with this "
                         "controlarm version and [plan] enabled (the default).")
    old = saved.get("settings") or {}
    eff = tuple(e.strip() for e in effects.split(",") if e.strip()) if effects else \
        tuple(old.get("effects") or ("observed", "ci_near_null"))
    user = dict(p_treated=p_treated, hazard_ratio=hazard_ratio, free_days_shift=free_days_shift,
                lab_ratio=lab_ratio)
    if any(v is not None for v in user.values()) and "user" not in eff:
        eff = eff + ("user",)
    settings = PlanSettings(
        control=control or old.get("control", "matched"), effects=eff,
        alpha=alpha if alpha is not None else old.get("alpha", 0.05),
        power=power if power is not None else old.get("power", 0.8),
        allocation=allocation if allocation is not None else old.get("allocation", 1.0),
        dropout=dropout if dropout is not None else old.get("dropout", 0.0),
        n_sims=n_sims if n_sims is not None else old.get("n_sims", 2000),
        seed=seed if seed is not None else old.get("seed", 0), workers=workers,
        curves=False, **user)
    return plan_trial(inputs, settings)


def plan_command(
    results: Optional[str] = typer.Option(None, "--results", help="Plan from a finished run: its results.json (or report folder)."),
    control: Optional[str] = typer.Option(None, "--control", help="With --results: control-arm outcomes from the 'matched' controls or the whole eligible 'pool'."),
    effects: Optional[str] = typer.Option(None, "--effects", help="With --results: comma-separated scenarios: observed, ci_near_null, ci_far, user."),
    lab_ratio: Optional[float] = typer.Option(None, "--lab-ratio", help="With --results: user ratio of geometric means of the lab (treated / control)."),
    free_days_shift: Optional[float] = typer.Option(None, "--free-days-shift", help="With --results: user shift of free days (days)."),
    workers: int = typer.Option(1, "--workers", help="Processes for the simulations (0 = every core); results are identical for any number."),
    p_control: Optional[float] = typer.Option(None, "--p-control", help="Control-arm mortality (binary endpoint)."),
    p_treated: Optional[float] = typer.Option(None, "--p-treated", help="Assumed treated mortality."),
    correction: bool = typer.Option(False, "--correction", help="Fleiss-Tytun-Ury continuity correction."),
    hazard_ratio: Optional[float] = typer.Option(None, "--hazard-ratio", help="Assumed hazard ratio (time to death)."),
    control_survival: Optional[float] = typer.Option(None, "--control-survival", help="Control survival at --at-day."),
    at_day: float = typer.Option(28.0, "--at-day"),
    follow_up: float = typer.Option(60.0, "--follow-up", help="Days of follow-up (after the last enrolment when --accrual > 0)."),
    accrual: float = typer.Option(0.0, "--accrual", help="Days of uniform accrual (0: fixed follow-up per patient)."),
    free_days: Optional[str] = typer.Option(None, "--free-days", help="Comma-separated control free days (empirical distribution)."),
    odds_ratio: Optional[float] = typer.Option(None, "--odds-ratio", help="Proportional-odds effect on free days (> 1 favours treatment)."),
    shift: Optional[float] = typer.Option(None, "--shift", help="Additive shift of free days, instead of --odds-ratio."),
    difference: Optional[float] = typer.Option(None, "--difference", help="Mean difference of the continuous endpoint (e.g. log D-dimer)."),
    sd: Optional[float] = typer.Option(None, "--sd", help="Standard deviation of the continuous endpoint."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Two-sided alpha (default 0.05, or the run's with --results)."),
    power: Optional[float] = typer.Option(None, "--power", help="Target power (default 0.8)."),
    allocation: Optional[float] = typer.Option(None, "--allocation", help="Treated per control (2 for 2:1; default 1)."),
    dropout: Optional[float] = typer.Option(None, "--dropout", help="Fraction lost to follow-up (default 0)."),
    n_sims: Optional[int] = typer.Option(None, "--n-sims", help="Simulated trials per size (default 2000)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed (default 0, or the run's with --results)."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Sample size per arm for each endpoint whose inputs are given, or planned from a finished
    run (--results)."""
    from rich.console import Console

    try:
        if results is not None:
            if any(v is not None for v in (p_control, free_days, difference, sd, odds_ratio, shift,
                                           control_survival)):
                raise InputError("--results plans from a finished run; give effects with --effects, "
                                 "--p-treated, --hazard-ratio, --free-days-shift or --lab-ratio, not "
                                 "control-arm numbers")
            plan = _plan_from_results(
                results, control=control, effects=effects, alpha=alpha, power=power,
                allocation=allocation, dropout=dropout, n_sims=n_sims, seed=seed, workers=workers,
                p_treated=p_treated, hazard_ratio=hazard_ratio, free_days_shift=free_days_shift,
                lab_ratio=lab_ratio)
            if as_json:
                typer.echo(json.dumps(plan, indent=2, allow_nan=False))
            else:
                render_study_plan(plan, Console(width=130))
            return
        if control is not None or effects is not None or lab_ratio is not None \
                or free_days_shift is not None:
            raise InputError("--control, --effects, --lab-ratio and --free-days-shift go with "
                             "--results")
    except ControlarmError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    common = dict(alpha=0.05 if alpha is None else alpha, power=0.8 if power is None else power,
                  allocation=1.0 if allocation is None else allocation,
                  dropout=0.0 if dropout is None else dropout,
                  n_sims=2000 if n_sims is None else n_sims, seed=0 if seed is None else seed,
                  workers=workers)
    try:
        out = []
        if p_control is not None or p_treated is not None:
            if p_control is None or p_treated is None:
                raise InputError("the binary endpoint needs both --p-control and --p-treated")
            out.append(plan_binary(p_control, p_treated, correction=correction, **common))
        if hazard_ratio is not None:
            if control_survival is None:
                raise InputError("time to death needs --control-survival (at --at-day)")
            out.append(plan_survival(hazard_ratio, control_survival=control_survival,
                                     at_day=at_day, follow_up=follow_up, accrual=accrual,
                                     **common))
        if free_days is not None:
            try:
                values = [float(v) for v in free_days.split(",") if v.strip()]
            except ValueError:
                raise InputError("--free-days must be comma-separated numbers; got "
                                 f"{free_days!r}") from None
            out.append(plan_free_days(values, odds_ratio=odds_ratio, shift=shift, **common))
        if difference is not None or sd is not None:
            if difference is None or sd is None:
                raise InputError("the continuous endpoint needs both --difference and --sd")
            out.append(plan_continuous(difference, sd, **common))
        if not out:
            raise InputError("no endpoint given: use --p-control/--p-treated, --hazard-ratio, "
                             "--free-days or --difference/--sd")
    except ControlarmError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    plan = TrialPlan(tuple(out))
    if as_json:
        typer.echo(json.dumps(plan.to_dict(), indent=2, allow_nan=False))
        return
    render_plan(plan, Console(width=130))
