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


def read_results(path) -> dict:
    """``results.json`` content (a report folder or the file). InputError naming the file and fix."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a readable results.json ({exc}). Fix: give the results.json "
                         "(or the report folder) written by `controlarm run`.") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise InputError(f"{p}: not a controlarm results.json (no schema_version).")
    return data


def _audit_from_results(path, outcome, alpha, max_enumeration, n_samples, seed):
    from ._study import audit_allocation

    data = read_results(path)
    outcomes = (data.get("audit") or {}).get("outcomes") or {}
    usable = {k: v for k, v in outcomes.items() if v.get("allocation")}
    if not usable:
        raise InputError(f"{path}: holds no audit of a binary outcome. Fix: run the study again "
                         "with this controlarm version (the audit is part of every run).")
    names = [outcome] if outcome else list(usable)
    unknown = [n for n in names if n not in usable]
    if unknown:
        raise InputError(f"--outcome {unknown[0]!r} is not an audited binary outcome of {path}; "
                         f"choose from {', '.join(usable)}")
    done = {}
    for n in names:
        o = usable[n]
        pub = (o.get("published_style") or {}).get("p")
        a = alpha if alpha is not None else (data["audit"].get("settings") or {}).get("alpha", 0.05)
        done[n] = {"label": o.get("label"), "event": o.get("event"),
                   **audit_allocation(o["allocation"], published_p=pub, alpha=a,
                                      max_enumeration=max_enumeration, n_samples=n_samples,
                                      seed=seed),
                   "published_style": {"test": (o.get("published_style") or {}).get("test"),
                                       "p": pub}}
    return done


def render_study_audit(name: str, o: dict, console) -> None:
    """Print one outcome's audit with the actual allocation placed in the distribution."""
    from rich.table import Table

    a = o["audit"]
    console.print(f"[bold]{o.get('label') or name}[/] (event: {o.get('event')}): "
                  f"{a['treated_events']}/{a['n_treated']} treated vs "
                  f"{a['control_events']}/{a['n_controls']} controls in {len(a['set_sizes'])} sets")
    t = Table(title=f"Matched-set tests: actual allocation vs {a['n_distinct']} distinct "
              + ("allocations (all)" if a["enumerated"] else f"sampled allocations ({a['n_samples']} draws)"))
    for col in ("test", "actual", "share <= actual", "min", "median", "max",
                f"share p<{a['alpha']:g}"):
        t.add_column(col, justify="left" if col == "test" else "right")
    f = lambda x: "-" if x is None else f"{x:.4g}"  # noqa: E731
    for test, d in a["distribution"].items():
        act = o["actual"].get(test) or {}
        share = act.get("share_at_or_below")
        t.add_row(test, f(act.get("p")), "-" if share is None else f"{share:.3f}", f(d["min"]),
                  f(d["median"]), f(d["max"]),
                  "-" if d["share_below_alpha"] is None else f"{d['share_below_alpha']:.3f}")
    console.print(t)
    pub = o.get("published_style") or {}
    if pub.get("p") is not None:
        console.print(f"Published-style {pub.get('test')} p = {pub['p']:.4g}; from the counts alone "
                      f"it is reproduced by: {', '.join(a['identified']) or 'no common test'}")


def audit_command(
    treated_events: Optional[int] = typer.Option(None, "--treated-events", help="Events in the treated arm."),
    control_events: Optional[int] = typer.Option(None, "--control-events", help="Events in the control arm."),
    results: Optional[str] = typer.Option(None, "--results", help="Audit a finished run: its results.json (or report folder); every binary outcome, with the actual allocation placed in the distribution."),
    outcome: Optional[str] = typer.Option(None, "--outcome", help="With --results: only this binary outcome (e.g. alive_d28)."),
    treated: Optional[int] = typer.Option(None, "--treated", help="Number of treated patients (one per set)."),
    ratio: Optional[int] = typer.Option(None, "--ratio", help="Controls per treated patient (1:k)."),
    set_sizes: Optional[str] = typer.Option(None, "--set-sizes", help="Comma-separated set sizes (treated + controls), instead of --treated/--ratio."),
    published_p: Optional[float] = typer.Option(None, "--published-p", help="The published p-value."),
    published_test: Optional[str] = typer.Option(None, "--published-test", help="The test the paper names (e.g. mcnemar_pseudo_pairs)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Significance level (default 0.05, or the run's with --results)."),
    max_enumeration: int = typer.Option(5_000, "--max-enumeration", help="Enumerate up to this many distinct allocations, else sample."),
    n_samples: int = typer.Option(2_000, "--n-samples", help="Draws when sampling."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Audit a published matched study with a binary outcome from its aggregate counts, or a
    finished run's binary outcomes (--results)."""
    from rich.console import Console

    try:
        if results is not None:
            if any(v is not None for v in (treated_events, control_events, treated, ratio,
                                           set_sizes, published_p, published_test)):
                raise InputError("--results audits a finished run; do not also give counts or a "
                                 "design (--treated-events, --control-events, --treated, --ratio, "
                                 "--set-sizes, --published-p, --published-test)")
            done = _audit_from_results(results, outcome, alpha, max_enumeration, n_samples, seed)
            if as_json:
                typer.echo(json.dumps(done, indent=2, allow_nan=False))
                return
            console = Console(width=120)
            for name, o in done.items():
                render_study_audit(name, o, console)
            return
        if treated_events is None or control_events is None:
            raise InputError("give the counts (--treated-events and --control-events) with the "
                             "design, or audit a finished run with --results results.json")
        if outcome is not None:
            raise InputError("--outcome goes with --results")
        alpha = 0.05 if alpha is None else alpha
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
