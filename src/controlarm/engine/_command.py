"""Engine room: ``controlarm load``, copy a folder of tables into a PostgreSQL schema.

For a team trying controlarm on its own PostgreSQL with known data (the demo, a synthetic
warehouse, an OMOP export) before pointing it at the real warehouse.
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["load_command"]


def load_command(
    folder: Path = typer.Argument(..., help="Folder of <table>.parquet / <table>.csv files (CLIF, OMOP or trial tables)."),
    to: str = typer.Option(..., "--to", help="postgresql://user@host/database?schema=name (schema default public)."),
    replace: bool = typer.Option(False, "--replace", help="Drop the schema's tables of these names first."),
) -> None:
    """Copy every table file of FOLDER into a PostgreSQL schema (binary COPY through ADBC)."""
    from rich.console import Console

    from ..errors import ControlarmError
    from ._connection import redact
    from ._load import copy_folder_to_postgres

    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    bar = _TableProgress(err)
    try:
        counts = copy_folder_to_postgres(folder, to, replace=replace, progress=bar)
    except ControlarmError as exc:
        bar.close()
        err.print("[bold red]error:[/] ", end="", markup=True, highlight=False)
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(code=2)
    bar.close()
    for table, n in counts.items():
        out.print(f"{table}: {n} rows", highlight=False)
    out.print(f"loaded {len(counts)} tables into {redact(to)}", highlight=False)


class _TableProgress:
    """Rows copied per table: a rich progress bar on a terminal, nothing elsewhere (the summary
    lines name every table and its rows when the copy ends)."""

    def __init__(self, console) -> None:
        self.live = None
        self.tasks: dict[str, int] = {}
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.live = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console)
            self.live.start()

    def __call__(self, table: str, done: int, total: int) -> None:
        if self.live is None:
            return
        if table not in self.tasks:
            self.tasks[table] = self.live.add_task(table, total=total)
        self.live.update(self.tasks[table], completed=done)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
