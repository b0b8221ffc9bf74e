"""Report room: writing the report folder atomically, and rendering it from its saved inputs.

This module owns the files on disk and their bytes. A report folder holds:

* saved inputs, computed by a run (:mod:`._bundle`): ``results.json`` and ``analysis/`` (ADaM-shaped
  Parquet datasets, trajectories, and the safety room's fragment and tables when it ran);
* renderings of the saved inputs (:func:`render_outputs`): ``index.html``, ``tables.docx``,
  ``table1.csv``, ``outcomes.csv`` and ``matched_sets.csv``;
* ``manifest.json``: the run's provenance (input hashes, seed, package versions, timings) and the
  SHA-256 and size of every other file.

``write_report`` renders from the saved inputs *read back from their own bytes*, exactly as
``rebuild_report`` does from disk, so a rebuild reproduces every rendering byte for byte.

Atomic: every file is built and flushed in a temporary directory beside the destination, and only
then moved into place with ``os.replace`` (atomic per file on POSIX and Windows), the manifest
last. If anything fails while building, the temporary directory is removed and the previous report
is untouched. Files this room wrote in ``analysis/`` for an earlier run and not for this one are
removed before the manifest is moved in.

Every file but the manifest is byte-deterministic for a given run and environment: sorted JSON keys,
no timestamps, floats written by Python's shortest round-trip ``repr`` in JSON and at 10
significant digits in CSV, a fixed ZIP timestamp in the DOCX.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._bundle import OWNED_ANALYSIS, ReportBundle, load_bundle, saved_inputs
from ._csv import matched_sets_csv, outcomes_csv, table1_csv
from ._html import render_html
from ._results import dumps_json, jsonable, package_versions, results_dict

if TYPE_CHECKING:
    from .._run import StudyRun

__all__ = ["OUTPUT_FILES", "RENDERED_FILES", "commit_files", "dumps_json", "manifest_dict", "matched_sets_csv",
           "render_outputs", "results_dict", "write_report"]

#: Files rendered from the saved inputs (rebuilt by ``controlarm report``).
RENDERED_FILES = ("index.html", "tables.docx", "table1.csv", "outcomes.csv", "matched_sets.csv")
#: The top-level files of a report folder (``analysis/`` holds the datasets), the manifest last.
OUTPUT_FILES = ("results.json", *RENDERED_FILES, "manifest.json")


def _matched_frame(bundle: ReportBundle) -> pd.DataFrame:
    adsl = bundle.dataset("adsl")
    if adsl.empty:
        return pd.DataFrame(columns=["set_id", "role", "patient_id", "weight", "distance"])
    return pd.DataFrame({"set_id": adsl["SETID"], "role": adsl["ARM"], "patient_id": adsl["USUBJID"],
                         "weight": adsl["MWEIGHT"], "distance": adsl["MDIST"]})


def render_outputs(bundle: ReportBundle) -> dict[str, bytes]:
    """Every rendering of a report's saved inputs: file name -> bytes (see :data:`RENDERED_FILES`)."""
    from ._docx import build_docx

    return {
        "index.html": render_html(bundle).encode("utf-8"),
        "tables.docx": build_docx(bundle),
        "table1.csv": table1_csv(bundle.results.get("table1") or {}).encode("utf-8"),
        "outcomes.csv": outcomes_csv(bundle.results).encode("utf-8"),
        "matched_sets.csv": matched_sets_csv(_matched_frame(bundle)).encode("utf-8"),
    }


# --------------------------------------------------------------------------- manifest
def manifest_dict(base: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, Any]:
    """``base`` (the run's provenance) plus each file's size and SHA-256."""
    manifest = dict(jsonable(base))
    manifest["outputs"] = {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
                           for name, data in sorted(files.items())}
    return manifest


def _provenance(run: "StudyRun") -> dict[str, Any]:
    manifest = dict(jsonable(run.provenance or {}))
    manifest.setdefault("spec_hash", run.study.spec_hash)
    manifest.setdefault("seed", run.study.study.seed)
    manifest.setdefault("packages", package_versions(run))
    return manifest


# --------------------------------------------------------------------------- atomic writing
def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` exactly and flush it to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(data)
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


def commit_files(out_dir: Path, files: Mapping[str, bytes], manifest: bytes, *, prune: bool = True) -> dict[str, Path]:
    """Write ``files`` (relative path -> bytes) and ``manifest.json`` into ``out_dir`` atomically.

    Everything is written to a temporary sibling directory first; then each file is moved in with
    ``os.replace``, the manifest last. With ``prune``, files this room owns in ``analysis/`` that are
    not in ``files`` are removed before the manifest moves in.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        for name, data in files.items():
            _write_bytes(tmp / name, data)
        _write_bytes(tmp / "manifest.json", manifest)
        out_dir.mkdir(exist_ok=True)
        for name in sorted(files, key=lambda n: (n in RENDERED_FILES, n)):  # saved inputs before renderings
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / name, out_dir / name)
        analysis = out_dir / "analysis"
        if prune and analysis.is_dir():
            for old in analysis.iterdir():
                if old.is_file() and OWNED_ANALYSIS.match(old.name) and f"analysis/{old.name}" not in files:
                    old.unlink()
            _fsync_dir(analysis)
        os.replace(tmp / "manifest.json", out_dir / "manifest.json")
        _fsync_dir(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {name: out_dir / name for name in [*files, "manifest.json"]}


def write_report(run: "StudyRun", out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the report folder for ``run``.

    Parameters
    ----------
    run : StudyRun
        Everything the pipeline produced.
    out_dir : path
        The report folder; created if missing. Other files in it (from other rooms) are left alone.

    Returns
    -------
    dict of str to Path
        Relative file name (``"index.html"``, ``"analysis/adsl.parquet"``, ...) -> final path, for
        every file written, ``manifest.json`` included.

    Notes
    -----
    Atomic: every file is built and flushed in a temporary directory beside ``out_dir`` first; a
    failure while building leaves the previous report untouched and removes the temporary
    directory. The files are then moved in with ``os.replace``, ``manifest.json`` last, so each file
    on disk is always either wholly old or wholly new, and the manifest's hashes tell whether the set
    is complete.

    ``index.html``, ``results.json``, ``tables.docx`` and the Table 1 and outcome CSVs hold
    aggregates (the page adds the trial patients' courses as "Patient 1..n" in days from index,
    and a listing of matched sets when ``study.report.listings`` is on). ``matched_sets.csv`` and
    ``analysis/`` are analysis datasets; their patient ids are replaced by stable pseudonyms
    (``T-001``, ``C-001``; see :func:`._privacy.pseudonyms`) unless ``study.report.listings`` is on.
    """
    inputs = saved_inputs(run)
    bundle = load_bundle(inputs)  # render from the bytes a rebuild would read
    files = {**inputs, **render_outputs(bundle)}
    manifest = dumps_json(manifest_dict(_provenance(run), files)).encode("utf-8")
    return commit_files(Path(out_dir), files, manifest)
