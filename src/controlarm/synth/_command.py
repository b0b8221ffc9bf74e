"""``controlarm synth``: write a synthetic CLIF warehouse (the cli room registers ``synth_command``).

A thin shell over :func:`controlarm.synth.generate_warehouse`: parse, call, draw a progress bar
over chunks once generation has taken more than a second, print what was written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from ..errors import ControlarmError
from ._generate import DEFAULT_CHUNK, DEFAULT_SEED, generate_warehouse

__all__ = ["synth_command"]


class _LazyBar:
    """A rich progress bar that appears only when the work has lasted more than ``delay`` seconds."""

    def __init__(self, console, delay: float = 1.0):
        self.console = console
        self.delay = delay
        self.started = time.perf_counter()
        self.bar = None
        self.task = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if time.perf_counter() - self.started < self.delay or done >= total:
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn

            self.bar = Progress(TextColumn("hospitalizations"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("synth", total=total)
        self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def synth_command(
    hospitalizations: int = typer.Option(..., "--hospitalizations", "-n", help="Pool hospitalizations to generate."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (tables as Parquet, study.toml, synth.json)."),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Seed: the same seed and size give the same tables."),
    treated: int = typer.Option(8, "--treated", help="Trial patients (three product administrations each)."),
    chunk_size: int = typer.Option(DEFAULT_CHUNK, "--chunk-size",
                                   help="Hospitalizations held in memory at once (does not change the data)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write a synthetic CLIF warehouse of any size, a trial arm and a study file that runs on it."""
    from rich.console import Console

    out_console = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    bar = None if quiet or as_json else _LazyBar(err)
    try:
        res = generate_warehouse(out, hospitalizations, seed=seed, treated=treated, chunk_size=chunk_size,
                                 progress=bar)
    except ControlarmError as exc:
        err.print("[bold red]error:[/] ", end="", markup=True, highlight=False)
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(code=2)
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        print(json.dumps({"folder": str(res.folder), "study_file": str(res.study_file),
                          "hospitalizations": res.hospitalizations, "treated": res.treated, "seed": res.seed,
                          "row_counts": res.row_counts, "seconds": round(res.seconds, 2)}, indent=2))
        return
    rows = sum(res.row_counts.values())
    out_console.print(f"wrote {res.hospitalizations:,} synthetic hospitalizations and {res.treated} trial patients "
                      f"({rows:,} rows in {len(res.row_counts)} tables) to {res.folder} in {res.seconds:.1f} s",
                      highlight=False)
    out_console.print(f"study file: {res.study_file}   (run it: controlarm run {res.study_file})", highlight=False)
