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
from rich.markup import escape

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
    # The message is printed as plain text: rich markup would swallow "[index]" or "[matching]".
    err.print("[bold red]error:[/] ", end="", markup=True, highlight=False)
    err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _load(path: Path):
    from .spec import load_study

    return load_study(path)


class _Progress:
    """Stage progress on stderr: on a terminal, a live rich progress display (a spinner and the
    elapsed time of the running stage; finished stages stay listed with their time); elsewhere
    (logs, CI, pipes), one plain line per stage with the time since the start.

    Called with a stage's name when the stage starts; :meth:`close` ends the last stage.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.started = time.perf_counter()
        self.live = None
        self.task = None
        if not quiet and err.is_terminal:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.live = Progress(SpinnerColumn(finished_text="[green]✓[/]"), TextColumn("{task.description}"),
                                 TimeElapsedColumn(), console=err)
            self.live.start()

    def __call__(self, stage: str) -> None:
        if self.quiet:
            return
        if self.live is None:
            err.print(f"[dim]{time.perf_counter() - self.started:6.2f}s[/] {stage}…", highlight=False)
            return
        self._finish_task()
        self.task = self.live.add_task(escape(stage), total=1)

    def _finish_task(self) -> None:
        if self.live is not None and self.task is not None:
            self.live.update(self.task, completed=1)

    def close(self) -> None:
        if self.live is not None:
            self._finish_task()
            self.live.stop()
            self.live = None


def _progress(quiet: bool) -> _Progress:
    return _Progress(quiet)


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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
) -> None:
    """Check the study file and the data (no outcome is read)."""
    from .cohort import build_cohort
    from .sources import open_study_sources
    from .validate import validate_sources

    progress = _progress(quiet)
    try:
        study = _load(study_file)
        progress("reading tables")
        sources = open_study_sources(study)
        progress("validating tables")
        quality = validate_sources(sources)
        quality.raise_if_errors()
        progress("index dates and eligibility")
        cohort = build_cohort(sources, study)
    except ControlarmError as exc:
        progress.close()
        _fail(exc)
    progress.close()
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
    out.print(f"[green]ok[/] {escape(str(study_file))}: spec and data pass every check (spec hash {study.spec_hash[:12]})")
    for w in quality.warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    out.print(f"eligible: {cohort.n_trial} trial patients, {cohort.n_pool} pool candidates")
    for step in cohort.flow.steps:
        for reason, n in step.excluded:
            out.print(f"  {step.group}: excluded {n} ({escape(reason)})", highlight=False)


def _run_and_report(study, out_dir: Path, quiet: bool, lock: Optional[dict] = None) -> dict:
    """Run and write the report. With ``lock`` (the manifest's lock record plus the lock file's
    content under ``"_lock"``), the record goes into manifest.json and the run's matched sets are
    compared with the locked ones; ``"_matches"`` in the returned dict tells the outcome.
    """
    progress = _progress(quiet)
    try:
        return _run_with(study, out_dir, lock, progress)
    finally:
        progress.close()


def _run_with(study, out_dir: Path, lock: Optional[dict], progress) -> dict:
    import dataclasses

    from .pipeline import locked_sets, run_study
    from .report import write_report

    run = run_study(study, progress=progress)
    matches = None
    if lock is not None:
        record = {k: v for k, v in lock.items() if k != "_lock"}
        if "_lock" in lock:
            matches = locked_sets(run.matched) == lock["_lock"]["matched_sets"]
            record["matched_sets_equal_locked"] = matches
        run = dataclasses.replace(run, provenance={**run.provenance, "lock": record})
    progress("writing the report")
    paths = write_report(run, out_dir)
    return {**paths, "_matches": matches}


@app.command()
def lock(
    study_file: Path = typer.Argument(..., help="The study file (TOML)."),
    lock_file: Optional[Path] = typer.Option(None, "--out", "-o",
                                             help="Lock file to write (default: STUDY.lock.json beside the study)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
) -> None:
    """Run the outcome-blind design stage and lock the plan: spec hash, input hashes, cohort, matched sets, balance."""
    from .pipeline import design_study, lock_dict, lock_path
    from .report import dumps_json

    try:
        study = _load(study_file)
        progress = _progress(quiet)
        try:
            design = design_study(study, progress=progress)
        finally:
            progress.close()
    except ControlarmError as exc:
        _fail(exc)
    target = lock_file or lock_path(study_file)
    data = dumps_json(lock_dict(study, design)).encode("utf-8")
    from .report._write import _write_bytes

    tmp = target.with_name(f".{target.name}.partial")
    _write_bytes(tmp, data)
    tmp.replace(target)  # atomic: an old lock is never half-overwritten
    n_sets = len({r[0] for r in json.loads(data)["matched_sets"]})
    out.print(f"locked {study_file} (spec hash {study.spec_hash[:12]}, {n_sets} matched sets) in {target}",
              highlight=False)


@app.command()
def run(
    study_file: Path = typer.Argument(..., help="The study file (TOML)."),
    out_dir: Path = typer.Option(Path("controlarm-report"), "--out", "-o", help="Output folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress messages."),
    lock_file: Optional[Path] = typer.Option(None, "--lock",
                                             help="Lock file to check (default: STUDY.lock.json beside the study)."),
    unlock: Optional[str] = typer.Option(None, "--unlock", help="Run a spec that no longer matches its lock; "
                                         "the reason is recorded in manifest.json."),
    listings: bool = typer.Option(False, "--listings", help="Add the patient-level listings (matched sets in the "
                                  "page, safety listings), with pseudonymous ids T-001, C-001 and days only."),
    real_ids: bool = typer.Option(False, "--real-ids", help="Write the data's real patient ids instead of the "
                                  "pseudonyms in every output (matched_sets.csv, analysis/, listings); the folder "
                                  "is then patient-level data."),
) -> None:
    """Run the whole chain on a study and write the report folder."""
    from .pipeline import check_lock, lock_path, read_lock

    try:
        study = _load(study_file)
        target = lock_file or lock_path(study_file)
        if lock_file is not None and not target.is_file():
            raise ControlarmError(f"{target}: lock file not found. Fix: write it with `controlarm lock {study_file}`, "
                                  "or leave out --lock.")
        locked = read_lock(target) if target.is_file() else None
        record = check_lock(study, locked, target, unlock)
        if locked is not None:
            record["_lock"] = locked
        flags = {k: True for k, on in (("listings", listings), ("real_ids", real_ids)) if on}
        if flags:
            study = study.model_copy(update={"report": study.report.model_copy(update=flags)})
        paths = _run_and_report(study, out_dir, quiet, lock=record)
    except ControlarmError as exc:
        _fail(exc)
    out.print(f"report: {paths['index.html']}")
    out.print(f"results: {paths['results.json']}")
    if study.report.real_ids:
        out.print(f"real patient ids written (--real-ids): handle {out_dir} as patient-level data", highlight=False)
    if paths["_matches"] is False and record["status"] == "locked":  # an unlocked plan may match otherwise
        err.print(f"[bold red]check failed:[/] the matched sets of this run differ from those locked in {target} "
                  "(the data changed since the plan was locked). The analysis ran and the report records "
                  "matched_sets_equal_locked = false in manifest.json. Fix: find what changed in the data, "
                  "or lock again before any outcome is read.", highlight=False)
        raise typer.Exit(code=1)


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
    from .audit._command import audit_command
    from .plan._command import plan_command

    app.command("audit", help="Audit a published matched study from its counts: matched-set p-values over every allocation.")(audit_command)
    app.command("plan", help="Sample size for the confirmatory randomised trial, by endpoint.")(plan_command)
    from .sources.omop._command import export_omop_command, omop_to_clif_command

    app.command("export-omop", help="Write CLIF tables as OMOP CDM v5.4 tables (Parquet).")(export_omop_command)
    app.command("omop-to-clif", help="Map OMOP CDM v5.4 tables to CLIF tables (Parquet).")(omop_to_clif_command)
    from .synth._command import synth_command

    app.command("synth", help="Write a synthetic CLIF warehouse of any size, a trial arm and a study file.")(synth_command)
    from .engine._command import load_command

    app.command("load", help="Copy a folder of tables (Parquet/CSV) into a PostgreSQL schema.")(load_command)


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
