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


def plan_command(
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
    alpha: float = typer.Option(0.05, "--alpha"),
    power: float = typer.Option(0.8, "--power"),
    allocation: float = typer.Option(1.0, "--allocation", help="Treated per control (2 for 2:1)."),
    dropout: float = typer.Option(0.0, "--dropout"),
    n_sims: int = typer.Option(2000, "--n-sims", help="Simulated trials per size."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Sample size per arm for each endpoint whose inputs are given."""
    from rich.console import Console

    common = dict(alpha=alpha, power=power, allocation=allocation, dropout=dropout,
                  n_sims=n_sims, seed=seed)
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
