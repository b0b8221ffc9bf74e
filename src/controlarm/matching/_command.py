"""``controlarm match``: match the rows of one data file and write the matched sets.

A thin shell over :func:`controlarm.matching.match` (STYLE: the CLI parses, calls and renders; no
statistics here). ``run_match_command`` does the work and returns a JSON-ready summary;
``match_command`` is the Typer command function (the ``cli`` room registers it).

Output: ``--out`` gets the columns ``set_id,treated_id,control_id,slot,distance`` (one row per
matched control), written atomically. ``--json`` prints the summary, the settings, the balance
table and the unmatched treated patients with their reasons.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import typer

from ..errors import ControlarmError, InputError
from .._json import json_safe as _clean

__all__ = ["run_match_command", "match_command", "DISTANCE_NAMES"]

#: CLI spelling -> API name
DISTANCE_NAMES = {
    "logit-ps": "logit_ps",
    "ps": "ps",
    "mahalanobis": "mahalanobis",
    "robust-mahalanobis": "robust_mahalanobis",
}


def _split(value: str | None) -> list[str]:
    if value is None:
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


def _read(path: Path, id_column: str) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"data file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype={id_column: str})
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"could not read {str(path)!r}: {exc}") from None
    raise InputError(f"data file must be .csv or .parquet; got {str(path)!r}")


def _write_atomic(frame: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_match_command(
    data: Path,
    *,
    id_column: str,
    treatment: str,
    covariates: str,
    out: Path,
    ratio: int = 1,
    method: str = "nearest",
    distance: str = "logit-ps",
    caliper: float | None = None,
    std_caliper: bool | None = None,
    exact: str | None = None,
    replace: bool = False,
    order: str | None = None,
    seed: int = 0,
) -> dict:
    """Read ``data``, match, write ``out`` and return the summary (what ``--json`` prints).

    Parameters mirror the command line: ``covariates`` and ``exact`` are comma-separated column
    names; ``distance`` uses the CLI spelling (``logit-ps``, ``ps``, ``mahalanobis``,
    ``robust-mahalanobis``); ``std_caliper`` True/False/None means ``--std-caliper`` /
    ``--raw-caliper`` / the default (SD units for PS distances).

    Raises
    ------
    InputError
        Unreadable file, unknown option or column, or any error of :func:`match`.
    """
    from ._api import match

    if distance not in DISTANCE_NAMES:
        raise InputError(f"--distance must be one of {', '.join(DISTANCE_NAMES)}; got {distance!r}")
    covs = _split(covariates)
    if not covs:
        raise InputError("--covariates must name at least one column, e.g. --covariates age,sofa")
    frame = _read(Path(data), id_column)
    units = None if std_caliper is None else ("sd" if std_caliper else "raw")
    result = match(
        frame, treatment=treatment, covariates=covs, ratio=ratio, method=method, distance=DISTANCE_NAMES[distance],
        exact=_split(exact), caliper=caliper, caliper_units=units, order=order, replace=replace, seed=seed,
        id_column=id_column,
    )
    sets = result.matched_sets
    _write_atomic(sets, Path(out))
    balance = result.balance(frame)
    s = result.summary()
    summary = {
        "data": str(data),
        "out": str(out),
        "n_treated": result.n_treated,
        "n_candidates": result.n_candidates,
        "n_sets": result.n_sets,
        "n_controls_matched": int(s.loc["Matched", "Control"]),
        "n_pairs": int(len(sets)),
        "total_distance": result.diagnostics.get("total_distance"),
        "unmatched_treated": len(result.unmatched_treated),
        "incomplete_treated": len(result.incomplete_treated),
        "caliper_misses": result.diagnostics.get("caliper_misses", 0),
    }
    settings = {k: v for k, v in result.settings.items() if k not in ("covariance",)}
    unmatched = result.unmatched[["treated_id", "n_in_stratum", "n_eligible", "n_wanted", "n_matched", "status", "reason"]]
    return _clean({
        "summary": summary,
        "settings": settings,
        "balance": {
            "smd_denominator": balance.attrs.get("smd_denominator"),
            "rows": balance.to_dict(orient="records"),
        },
        "unmatched": unmatched.to_dict(orient="records"),
    })


def match_command(
    data: Path = typer.Argument(..., help="The data file (.csv or .parquet), one row per patient.", show_default=False),
    id_column: str = typer.Option(..., "--id", help="The patient id column."),
    treatment: str = typer.Option(..., "--treatment", help="The treatment column (1 treated, 0 candidate control)."),
    covariates: str = typer.Option(..., "--covariates", help="Comma-separated covariate columns, e.g. age,sofa."),
    out: Path = typer.Option(..., "--out", help="Where to write set_id,treated_id,control_id,slot,distance (CSV)."),
    ratio: int = typer.Option(1, "--ratio", min=1, help="Controls per treated patient (k in k:1)."),
    method: str = typer.Option("nearest", "--method", help="nearest (greedy, as MatchIt) or optimal (smallest total distance)."),
    distance: str = typer.Option("logit-ps", "--distance", help="logit-ps, ps, mahalanobis or robust-mahalanobis."),
    caliper: Optional[float] = typer.Option(None, "--caliper", help="Largest allowed pair distance."),
    std_caliper: Optional[bool] = typer.Option(
        None, "--std-caliper/--raw-caliper",
        help="Caliper in SDs of the score (default for PS distances) or in raw distance units."),
    exact: Optional[str] = typer.Option(None, "--exact", help="Comma-separated exact-matching columns."),
    replace: bool = typer.Option(False, "--replace", help="Match with replacement."),
    order: Optional[str] = typer.Option(None, "--order", help="Greedy order: largest, smallest, random or data."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random order."),
    as_json: bool = typer.Option(False, "--json", help="Print the balance table and summary as JSON."),
) -> None:
    """Match treated patients to candidate controls in one data file and write the matched sets."""
    try:
        report = run_match_command(
            data, id_column=id_column, treatment=treatment, covariates=covariates, out=out, ratio=ratio,
            method=method, distance=distance, caliper=caliper, std_caliper=std_caliper, exact=exact,
            replace=replace, order=order, seed=seed,
        )
    except ControlarmError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2, allow_nan=False))
        return
    s = report["summary"]
    typer.echo(f"wrote {s['out']}: {s['n_pairs']} matched controls in {s['n_sets']} sets "
               f"({s['n_treated']} treated, {s['n_candidates']} candidates)")
    if s["unmatched_treated"]:
        typer.echo(f"treated without a control: {s['unmatched_treated']}")
    if s["incomplete_treated"]:
        typer.echo(f"treated with fewer controls than wanted: {s['incomplete_treated']}")
