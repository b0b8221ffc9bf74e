"""Report room: ``rebuild_report``, the engine of ``controlarm report RESULTS_DIR``.

It reads a report folder's saved inputs (``results.json`` and ``analysis/``), renders
``index.html``, ``tables.docx`` and the CSVs again, and refreshes the output hashes in
``manifest.json``. Nothing is recomputed: no source table is opened, no cohort, matching or test is
run. The same controlarm version gives the original renderings byte for byte; a newer version gives
the newer layout of the same numbers.

``log.txt`` belongs to the run (its stages and timings), not to the rendering: a rebuild keeps it
untouched and keeps it listed in the manifest with its hash, and the manifest keeps the run's
provenance and timings. So a rebuild with the same version reproduces every file of the folder,
``manifest.json`` included, byte for byte (docs/results-schema.md, "Rebuilding").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._bundle import load_bundle, read_saved_inputs
from ._results import dumps_json
from ._write import commit_files, manifest_dict, render_outputs

__all__ = ["rebuild_report"]


def _base_manifest(root: Path, results: dict[str, Any]) -> dict[str, Any]:
    """The run's provenance from the old manifest, or from ``results.json`` when it is unreadable."""
    path = root / "manifest.json"
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        old = None
    if isinstance(old, dict):
        old.pop("outputs", None)
        return old
    rep = dict(results.get("reproducibility") or {})
    rep.setdefault("note", "manifest.json was missing or unreadable when the report was rebuilt; timings are lost")
    return rep


def rebuild_report(results_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Rebuild ``index.html``, ``tables.docx`` and the CSVs of a report folder without recomputing.

    Parameters
    ----------
    results_dir : path
        A folder written by :func:`controlarm.report.write_report` (``controlarm run`` or ``demo``).

    Returns
    -------
    dict of str to Path
        File name -> path of every file rewritten (the renderings and ``manifest.json``).

    Raises
    ------
    InputError
        The folder, ``results.json`` or a dataset it lists is missing or unreadable; the message
        names the file and the fix.

    Notes
    -----
    Writing is atomic as in ``write_report``; the saved inputs are read, never written.
    """
    root = Path(results_dir)
    inputs = read_saved_inputs(root)
    bundle = load_bundle(inputs, where=str(root))
    rendered = render_outputs(bundle)
    log = root / "log.txt"  # the run's log is kept as it was, and stays listed in the manifest
    kept = {"log.txt": log.read_bytes()} if log.is_file() else {}
    manifest = manifest_dict(_base_manifest(root, bundle.results), {**inputs, **kept, **rendered})
    return commit_files(root, rendered, dumps_json(manifest).encode("utf-8"), prune=False)
