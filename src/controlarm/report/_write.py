"""Report room: writing the report folder atomically (HTML, results.json, matched_sets.csv, manifest).

This module owns the files on disk and their bytes. ``write_report`` builds every file in a
temporary directory beside the destination, flushes each to disk, and only then moves them into
place with ``os.replace`` (atomic per file on POSIX and Windows), the manifest last. If anything
fails while building, the temporary directory is removed and the previous report is untouched.
Because the manifest, which records every other file's SHA-256, is replaced last, a reader can
tell a complete report from one interrupted during the final moves.

``results.json``, ``matched_sets.csv`` and ``index.html`` are byte-deterministic for a given run:
sorted keys, fixed indentation, no timestamps; floats are written by Python's shortest round-trip
``repr`` (NaN and infinities become ``null``), CSV floats at 10 significant digits. Timings and
input hashes live only in ``manifest.json``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._html import build_html, package_versions
from ._privacy import id_scrubber
from ._tables import matched_counts, sort_matched

if TYPE_CHECKING:
    from .._run import StudyRun

__all__ = ["write_report", "results_dict", "dumps_json", "matched_sets_csv", "OUTPUT_FILES"]

#: The files this room writes, in the order they are moved into place (manifest last).
OUTPUT_FILES = ("index.html", "results.json", "matched_sets.csv", "manifest.json")


# --------------------------------------------------------------------------- JSON
def jsonable(value: Any) -> Any:
    """A plain JSON-ready copy of ``value``: NaN/inf -> None, numpy -> Python, dates -> ISO text."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value))
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=str)
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, (pd.Timestamp, _dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (bytes, str)):
        value = value.item()  # numpy scalar
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def dumps_json(obj: Any) -> str:
    """Canonical JSON text: sorted keys, two-space indent, UTF-8 kept, trailing newline."""
    return json.dumps(jsonable(obj), sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [] if df is None or df.empty else jsonable(df.to_dict(orient="records"))


def results_dict(run: "StudyRun") -> dict[str, Any]:
    """The content of ``results.json``: aggregates only, no timings, no patient ids."""
    from .. import __version__

    s = run.study.study
    m = run.study.matching
    counts = matched_counts(run.matched)
    endpoint_defs = {
        ep.name: (dataclasses.asdict(ep) if dataclasses.is_dataclass(ep) else dict(vars(ep)))
        for ep in run.endpoint_defs
    }
    return {
        "controlarm_version": __version__,
        "study": {
            "name": s.name,
            "registration": s.registration,
            "spec_hash": run.study.spec_hash,
            "seed": s.seed,
            "synthetic": bool(s.synthetic),
        },
        "flow": run.flow.to_dict(),
        "matching": {
            "n_sets": counts["n_sets"],
            "n_treated": counts["n_treated"],
            "n_controls": counts["n_controls"],
            "n_controls_unique": counts["n_controls_unique"],
            "ratio": getattr(m, "ratio", None),
            "method": getattr(m, "method", None),
            "distance": getattr(m, "distance", None),
            "covariates": list(getattr(m, "covariates", ()) or ()),
            "exact": list(getattr(m, "exact", ()) or ()),
            "caliper": getattr(m, "caliper", None),
            "replace": getattr(m, "replace", None),
            "smd_denominator": run.balance.attrs.get("smd_denominator"),
            "balance": _records(run.balance),
        },
        "outcomes": _scrubbed_outcomes(run),
        "endpoint_definitions": endpoint_defs,
    }


def _scrubbed_outcomes(run: "StudyRun") -> dict[str, Any]:
    """``run.results`` as dicts, with ids and dates scrubbed from the free-text notes."""
    scrub = id_scrubber(run)
    outcomes = run.results.to_dict()["outcomes"]
    for o in outcomes.values():
        o["notes"] = [scrub(n) for n in o.get("notes", [])]
    return outcomes


# --------------------------------------------------------------------------- CSV
def _fmt_float(x: Any) -> str:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(f):
        return ""
    text = format(f, ".10g")
    return "0" if text in ("-0", "0") else text


def matched_sets_csv(matched: pd.DataFrame) -> str:
    """``matched_sets.csv`` text: set_id, role, patient_id, weight, distance; report order.

    Rows are sorted by set, treated first, then patient id; floats carry 10 significant digits so
    the bytes do not depend on the last bits of a computation; missing values are empty fields.
    """
    table = sort_matched(matched)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["set_id", "role", "patient_id", "weight", "distance"])
    for row in table.itertuples(index=False):
        set_id = row.set_id.item() if hasattr(row.set_id, "item") else row.set_id
        writer.writerow([set_id, row.role, row.patient_id, _fmt_float(row.weight), _fmt_float(row.distance)])
    return buf.getvalue()


# --------------------------------------------------------------------------- manifest
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_dict(run: "StudyRun", files: Mapping[str, Path]) -> dict[str, Any]:
    """``run.provenance`` plus each output file's size and SHA-256 (the manifest excluded)."""
    manifest = dict(jsonable(run.provenance or {}))
    manifest.setdefault("spec_hash", run.study.spec_hash)
    manifest.setdefault("seed", run.study.study.seed)
    manifest.setdefault("packages", package_versions(run))
    manifest["outputs"] = {
        name: {"sha256": _sha256(path), "bytes": path.stat().st_size} for name, path in sorted(files.items())
    }
    return manifest


# --------------------------------------------------------------------------- atomic writing
def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 text exactly as given (no newline translation) and flush it to disk."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    """Persist renames in ``path`` (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_report(run: "StudyRun", out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the report folder for ``run``: index.html, results.json, matched_sets.csv, manifest.json.

    Parameters
    ----------
    run : StudyRun
        Everything the pipeline produced.
    out_dir : path
        The report folder; created if missing. Other files in it (from other rooms) are left alone.

    Returns
    -------
    dict of str to Path
        File name -> final path, for the four files above.

    Notes
    -----
    Atomic: every file is built and flushed in a temporary directory beside ``out_dir`` first;
    a failure while building leaves the previous report untouched and removes the temporary
    directory. The files are then moved in with ``os.replace``, ``manifest.json`` last, so each file
    on disk is always either wholly old or wholly new, and the manifest's hashes tell whether the set
    is complete.

    ``index.html`` and ``results.json`` hold aggregates only (``index.html`` adds a listing of
    matched sets when ``study.report.listings`` is on). ``matched_sets.csv`` is an analysis dataset
    and holds the data team's pseudonymous patient ids by design.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        built: dict[str, Path] = {}
        for name, make in (("index.html", build_html),
                           ("results.json", lambda r: dumps_json(results_dict(r))),
                           ("matched_sets.csv", lambda r: matched_sets_csv(r.matched))):
            _write_text(tmp / name, make(run))
            built[name] = tmp / name
        _write_text(tmp / "manifest.json", dumps_json(manifest_dict(run, built)))
        out_dir.mkdir(exist_ok=True)
        for name in OUTPUT_FILES:
            os.replace(tmp / name, out_dir / name)
        _fsync_dir(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {name: out_dir / name for name in OUTPUT_FILES}
