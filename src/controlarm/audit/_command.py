"""``controlarm audit``: audit a published matched study from its counts (the cli room registers
``audit_command``). A thin shell over :func:`controlarm.audit.audit_matched_binary`: parse, call,
render a rich table; no statistics here.
"""

from __future__ import annotations

import json
from typing import Optional

import typer

from ..errors import ControlarmError, InputError
from ._audit import audit_matched_binary

__all__ = ["audit_command", "render_audit"]


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--set-sizes must be comma-separated integers, e.g. 4,4,3; got {text!r}"
                         ) from None


def render_audit(res, console) -> None:
    """Print an ``AuditResult`` as two rich tables and the conclusion."""
    from rich.table import Table

    t = Table(title=f"Matched-set tests over {res.n_distinct} distinct allocations "
              + ("(all)" if res.enumerated else f"(sampled, {res.n_samples} draws, seed {res.seed})"))
    for col in ("test", "min", "median", "max", f"share p<{res.alpha:g}"):
        t.add_column(col, justify="left" if col == "test" else "right")
    for name, d in res.distribution.items():
        f = lambda x: "-" if x is None else f"{x:.4g}"  # noqa: E731
        share = d["share_below_alpha"]
        t.add_row(name, f(d["min"]), f(d["median"]), f(d["max"]),
                  "-" if share is None else f"{share:.3f}")
    console.print(t)
    c = Table(title="Common tests")
    for col in ("test", "framing", "p (range over allocations)", "reproduces published p"):
        c.add_column(col)
    for row in res.candidates:
        lo, hi = row["p_min"], row["p_max"]
        rng = "-" if lo is None else (f"{lo:.4g}" if lo == hi else f"{lo:.4g} – {hi:.4g}")
        rep = "" if row["reproduces"] is None else ("yes" if row["reproduces"] else "no")
        c.add_row(row["name"], row["framing"], rng, rep)
    console.print(c)
    if res.published_p is not None:
        console.print(f"Published p = {res.published_p:g} is reproduced by: "
                      + (", ".join(res.identified) or "no common test"))
    fr = res.fragility
    if fr.get("index") is not None:
        console.print(f"{fr['kind'].capitalize()} index (Fisher, arm totals): {fr['index']}")


def audit_command(
    treated_events: int = typer.Option(..., "--treated-events", help="Events in the treated arm."),
    control_events: int = typer.Option(..., "--control-events", help="Events in the control arm."),
    treated: Optional[int] = typer.Option(None, "--treated", help="Number of treated patients (one per set)."),
    ratio: Optional[int] = typer.Option(None, "--ratio", help="Controls per treated patient (1:k)."),
    set_sizes: Optional[str] = typer.Option(None, "--set-sizes", help="Comma-separated set sizes (treated + controls), instead of --treated/--ratio."),
    published_p: Optional[float] = typer.Option(None, "--published-p", help="The published p-value."),
    published_test: Optional[str] = typer.Option(None, "--published-test", help="The test the paper names (e.g. mcnemar_pseudo_pairs)."),
    alpha: float = typer.Option(0.05, "--alpha"),
    max_enumeration: int = typer.Option(5_000, "--max-enumeration", help="Enumerate up to this many distinct allocations, else sample."),
    n_samples: int = typer.Option(2_000, "--n-samples", help="Draws when sampling."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Audit a published matched study with a binary outcome from its aggregate counts."""
    from rich.console import Console

    try:
        if set_sizes is not None:
            if treated is not None or ratio is not None:
                raise InputError("give either --set-sizes or --treated with --ratio, not both")
            design = _ints(set_sizes)
        elif treated is not None and ratio is not None:
            design = (treated, ratio)
        else:
            raise InputError("give the design: --treated N --ratio k, or --set-sizes 4,4,3")
        res = audit_matched_binary(design, treated_events, control_events,
                                   published_p=published_p, published_test=published_test,
                                   alpha=alpha, max_enumeration=max_enumeration,
                                   n_samples=n_samples, seed=seed)
    except ControlarmError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(res.to_dict(), indent=2, allow_nan=False))
        return
    render_audit(res, Console(width=110))
