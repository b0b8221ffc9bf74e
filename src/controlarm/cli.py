"""The `cli` room: the `controlarm` command. A thin shell: parse, build the plan, call, render.

No statistics live here. A user's mistake (``ControlarmError``) becomes one clear message on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import ControlarmError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="controlarm: build a matched external control arm for a small single-arm trial, and analyse it.",
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(exc: ControlarmError) -> None:
    err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _load(path: Path):
    from .spec import load_study

    return load_study(path)


def _progress(quiet: bool):
    started = time.perf_counter()

    def report(stage: str) -> None:
        if not quiet:
            err.print(f"[dim]{time.perf_counter() - started:6.2f}s[/] {stage}…", highlight=False)

    return report


@app.command()
def init(
    path: Path = typer.Argument(Path("study.toml"), help="Where to write the commented study-file template."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a commented study-file template."""
    from .spec import template_text

    if path.exists() and not force:
        _fail(ControlarmError(f"{path} already exists. Fix: choose another path, or pass --force to overwrite it."))
    path.write_text(template_text(), encoding="utf-8")
    out.print(f"wrote {path}")


@app.command()
def validate(
    study_file: Path = typer.Argument(..., help="The study file (TOML)."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable summary."),
) -> None:
    """Check the study file and the data (no outcome is read)."""
    from .cohort import build_cohort
    from .sources import open_sources
    from .validate import validate_sources

    try:
        study = _load(study_file)
        sources = open_sources(study.data.source, base_dir=study.base_dir)
        quality = validate_sources(sources)
        quality.raise_if_errors()
        cohort = build_cohort(sources, study)
    except ControlarmError as exc:
        _fail(exc)
    summary = {
        "study": study.study.name,
        "spec_hash": study.spec_hash,
        "tables": dict(sources.row_counts),
        "warnings": list(quality.warnings),
        "eligible": {"trial": cohort.n_trial, "pool": cohort.n_pool},
        "flow": cohort.flow.to_dict(),
    }
    if as_json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return
    out.print(f"[green]ok[/] {study_file}: spec and data pass every check (spec hash {study.spec_hash[:12]})")
    for w in quality.warnings:
        out.print(f"[yellow]warning:[/] {w}", highlight=False)
    out.print(f"eligible: {cohort.n_trial} trial patients, {cohort.n_pool} pool candidates")
    for step in cohort.flow.steps:
        for reason, n in step.excluded:
            out.print(f"  {step.group}: excluded {n} ({reason})", highlight=False)


def _run_and_report(study, out_dir: Path, quiet: bool) -> dict:
    from .pipeline import run_study
    from .report import write_report

    progress = _progress(quiet)
    run = run_study(study, progress=progress)
    progress("writing the report")
    return write_report(run, out_dir)


@app.command()
def run(
    study_file: Path = typer.Argument(..., help="The study file (TOML)."),
    out_dir: Path = typer.Option(Path("controlarm-report"), "--out", "-o", help="Output folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
) -> None:
    """Run the whole chain on a study and write the report folder."""
    try:
        study = _load(study_file)
        paths = _run_and_report(study, out_dir, quiet)
    except ControlarmError as exc:
        _fail(exc)
    out.print(f"report: {paths['index.html']}")
    out.print(f"results: {paths['results.json']}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("controlarm-demo"), "--out", "-o", help="Output folder (data, study file and report)."),
    seed: int = typer.Option(20200601, "--seed", help="Seed of the synthetic data generator."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
) -> None:
    """Generate the synthetic seed-study reconstruction, then analyse it end to end."""
    from .demo import generate_demo

    try:
        started = time.perf_counter()
        study_path = generate_demo(out_dir, seed=seed)
        study = _load(study_path)
        paths = _run_and_report(study, out_dir, quiet)
    except ControlarmError as exc:
        _fail(exc)
    out.print(f"synthetic demo data and study file: {study_path}")
    out.print(f"report: {paths['index.html']}")
    out.print(f"results: {paths['results.json']}")
    out.print(f"done in {time.perf_counter() - started:.1f} s")


@app.command()
def report(
    results_dir: Path = typer.Argument(..., help="A report folder written by `controlarm run` or `controlarm demo`."),
    as_json: bool = typer.Option(False, "--json", help="Print the rewritten files as JSON."),
) -> None:
    """Rebuild index.html, tables.docx and the CSVs from a run's saved results, without recomputing."""
    from .report import rebuild_report

    try:
        paths = rebuild_report(results_dir)
    except ControlarmError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps({name: str(path) for name, path in paths.items()}, indent=2, sort_keys=True))
        return
    out.print(f"report: {paths['index.html']}")
    out.print(f"rebuilt from results.json and analysis/ (nothing recomputed): {', '.join(sorted(paths))}",
              highlight=False)


def _register_match() -> None:
    # The matching room owns its command (options, CSV/JSON output); the CLI only mounts it.
    from .matching._command import match_command

    app.command("match", help="Match a plain table (CSV/Parquet): one row per patient, a treatment column.")(match_command)


_register_match()


def main(argv: Optional[list[str]] = None) -> None:
    """Console entry point."""
    try:
        app(args=argv, prog_name="controlarm", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
