"""``controlarm export-omop`` and ``controlarm omop-to-clif``: the OMOP adapter from the shell.

A thin shell over :func:`export_omop` and :func:`register_omop` / :func:`write_clif` (the ``cli``
room mounts both). A user's mistake becomes one message on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ...errors import ControlarmError

__all__ = ["export_omop_command", "omop_to_clif_command"]


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def export_omop_command(
    data: Path = typer.Argument(..., help="Folder of CLIF tables (<table>.parquet or .csv)."),
    out: Path = typer.Argument(..., help="Folder to write the OMOP CDM v5.4 tables (Parquet) and the trial tables."),
    max_gap_hours: float = typer.Option(24, "--max-gap-hours",
                                        help="The study's outcomes.max_gap_hours (how long a device record holds)."),
    concepts: Optional[Path] = typer.Option(None, "--concepts", help="Extra concept-map rows (CSV)."),
) -> None:
    """Write CLIF tables as OMOP CDM v5.4 Parquet tables (person, visit_occurrence, measurement, ...)."""
    from . import export_omop, load_concept_map

    try:
        if not Path(data).is_dir():
            raise ControlarmError(f"{data}: not a folder. Fix: give the folder holding patient.parquet, ...")
        res = export_omop(data, out, max_gap_hours=max_gap_hours, concept_map=load_concept_map(concepts))
    except ControlarmError as exc:
        _fail(exc)
    typer.echo(f"OMOP tables written to {out}: " + ", ".join(f"{t} {n}" for t, n in res.row_counts.items()))
    for table, field, value, n in res.unmapped:
        typer.echo(f"warning: {n} {table} rows with {field} = {value!r} have no concept (written with concept_id 0)",
                   err=True)


def omop_to_clif_command(
    omop: Path = typer.Argument(..., help="Folder of OMOP CDM v5.4 tables (person.parquet, ...) and trial tables."),
    out: Path = typer.Argument(..., help="Folder to write the CLIF tables (Parquet)."),
    max_gap_hours: float = typer.Option(24, "--max-gap-hours",
                                        help="The study's outcomes.max_gap_hours (intervals become CLIF records)."),
    concepts: Optional[Path] = typer.Option(None, "--concepts", help="Extra concept-map rows (CSV)."),
) -> None:
    """Map OMOP CDM v5.4 tables to CLIF tables (the adapter's SQL, run on DuckDB) and write them."""
    import duckdb

    from . import load_concept_map, register_omop, write_clif

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        mapping = register_omop(con, omop, load_concept_map(concepts), max_gap_hours=max_gap_hours)
        written = write_clif(con, out, mapping)
    except ControlarmError as exc:
        _fail(exc)
    finally:
        con.close()
    typer.echo(f"CLIF tables written to {out}: {', '.join(sorted(written))}")
    for line in mapping.messages():
        typer.echo(f"warning: {line}", err=True)
