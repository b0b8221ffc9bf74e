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

Atomic, as a whole folder: the new report is built complete in a sibling folder
``.<name>.new-<pid>-<token>`` (every file of this write, plus hard links to whatever else the old
folder held and this write does not replace: ``data/`` and ``study.toml`` of a demo, a lock file,
another room's files), flushed to disk, and then swapped with the old folder in **one** step. A
reader or a crash therefore sees the old report or the new one entirely, never a mix:

* on Linux the swap is ``renameat2(RENAME_EXCHANGE)``, an atomic exchange of two directory
  entries; the old report, now at the temporary name, is then deleted;
* where that call does not exist (macOS, Windows, old kernels, file systems without it), the old
  folder is renamed to ``.<name>.old-<token>`` and the new one to ``<name>``. A crash between the
  two renames leaves no ``<name>``; the next write (or rebuild) first *recovers*: it renames the
  backup back, so the previous report returns whole.

Why not a symlink (``out -> .out.v2``) swapped with ``os.replace``: it is also atomic, but the
report folder would be a link that ``tar``, ``rsync`` and cloud drives copy as a dangling link, and
a user's existing folder would have to be converted once. A real folder exchanged in place keeps the
path what users expect. Hard links (not copies) carry the old folder's other files, so a large data
folder inside the report folder costs one link per file, not a copy; files are never modified in
place, so sharing an inode is safe. Stale temporary folders of killed runs (their process gone) are
removed by the next write. Files this room wrote in ``analysis/`` for an earlier run and not for this
one are not carried over.

Every file but the manifest is byte-deterministic for a given run and environment: sorted JSON keys,
no timestamps, floats written by Python's shortest round-trip ``repr`` in JSON and at 10
significant digits in CSV, a fixed ZIP timestamp in the DOCX.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import secrets
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import InputError
from ._bundle import OWNED_ANALYSIS, ReportBundle, load_bundle, saved_inputs
from ._csv import matched_sets_csv, outcomes_csv, table1_csv
from ._html import render_html
from ._results import dumps_json, jsonable, package_versions, results_dict

if TYPE_CHECKING:
    from .._run import StudyRun

__all__ = ["OUTPUT_FILES", "RENDERED_FILES", "commit_files", "dumps_json", "log_text", "manifest_dict",
           "matched_sets_csv", "recover", "render_outputs", "results_dict", "write_report"]

#: Files rendered from the saved inputs (rebuilt by ``controlarm report``).
RENDERED_FILES = ("index.html", "tables.docx", "table1.csv", "outcomes.csv", "matched_sets.csv")
#: The top-level files of a report folder (``analysis/`` holds the datasets), the manifest last.
#: ``log.txt`` is written by a run only; a rebuild keeps it byte for byte.
OUTPUT_FILES = ("results.json", *RENDERED_FILES, "log.txt", "manifest.json")


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


# --------------------------------------------------------------------------- log.txt
def _headline(warning: str) -> str:
    """A warning without its examples: the text before the first `` (`` (where rows and ids are
    quoted) and its ``Fix:`` sentence."""
    head = warning.split(" (", 1)[0].rstrip(" .:;")
    fix = warning[warning.find("Fix:"):] if "Fix:" in warning else ""
    return f"{head}. {fix}".strip()


def log_text(run: "StudyRun", files: Mapping[str, bytes]) -> str:
    """``log.txt``: the run's stages, timings, counts and warnings, as aggregates only.

    Warnings keep their headline (what, how many, the fix) and lose their examples, and the result
    is scrubbed of the run's ids and of every ISO date (:func:`._privacy.id_scrubber`): a log is
    read and pasted into tickets, so it must never carry an identifier. Timings differ between
    runs; like ``manifest.json``, the log is not byte-deterministic.
    """
    from ._privacy import id_mode, id_scrubber
    from ._results import report_options

    scrub = id_scrubber(run)
    prov = run.provenance or {}
    options = report_options(run)
    lines = ["controlarm run log (aggregates only: no patient or hospitalization ids, no dates)", "",
             f"study: {run.study.study.name}", f"spec hash: {run.study.spec_hash}", f"seed: {run.study.study.seed}",
             f"controlarm: {(prov.get('packages') or {}).get('controlarm', '?')}",
             f"ids in outputs: {'real patient ids (report.real_ids = true)' if options['real_ids'] else 'pseudonyms'}; "
             f"patient-level listings: {'on' if options['listings'] else 'off'}",
             f"  {id_mode(options)}", "", "stages (seconds):"]
    timings = prov.get("timings_s") or {}
    lines += [f"  {k.removesuffix('_s').replace('_', ' ')}: {float(v):.3f}" for k, v in timings.items()]
    lines += [f"  total: {sum(float(v) for v in timings.values()):.3f}", "", "tables (rows):"]
    tables = (run.data_quality or {}).get("tables") or {}
    lines += [f"  {t}: {n}" for t, n in sorted(tables.items())]
    lines += ["", "flow:"]
    for step in run.flow.steps:
        lines.append(f"  {step.group} {step.stage}: {step.n_in} in, {step.n_out} out")
        lines += [f"    excluded {n}: {reason}" for reason, n in step.excluded]
    matched = run.matched
    if matched is not None and len(matched):
        roles = matched["role"].value_counts()
        lines += ["", f"matched sets: {matched['set_id'].nunique()} ({int(roles.get('treated', 0))} treated, "
                  f"{int(roles.get('control', 0))} controls)"]
    outcomes = getattr(run.results, "outcomes", None)
    if outcomes is not None:
        lines.append(f"outcomes analysed: {len(outcomes)}")
    warnings = list((run.data_quality or {}).get("warnings") or [])
    lines += ["", f"warnings: {len(warnings)}"]
    lines += [f"  - {_headline(w)}" for w in warnings]
    lines += ["", f"files written: {len(files) + 2} (with log.txt and manifest.json)"]
    return scrub("\n".join(lines)) + "\n"


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


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange directories ``a`` and ``b`` (Linux ``renameat2``); False when unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # this kernel or file system cannot exchange: fall back to two renames
    raise OSError(err, os.strerror(err), str(b))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM), or a platform without signals
        return True
    return True


def recover(out_dir: Path) -> None:
    """Undo an interrupted swap and remove stale temporary folders beside ``out_dir``.

    A missing ``out_dir`` with a ``.<name>.old-*`` backup beside it means a write died between its
    two renames: the backup (the previous report, whole) is renamed back. Temporary ``.new-<pid>-*``
    folders whose process is gone are deleted.
    """
    parent, name = out_dir.parent, out_dir.name
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{glob.escape(name)}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and not out_dir.exists():
        os.rename(olds.pop(), out_dir)
        _fsync_dir(parent)
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)
    for new in parent.glob(f".{glob.escape(name)}.new-*"):
        pid = new.name[len(name) + 6:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(new, ignore_errors=True)


def _carry(old: Path, new: Path, skip) -> None:
    """Hard-link (or copy) every entry of ``old`` into ``new`` except the relative paths ``skip`` rejects."""
    for root, dirs, names in os.walk(old):
        rel_root = Path(root).relative_to(old)
        (new / rel_root).mkdir(exist_ok=True)
        shutil.copymode(root, new / rel_root)
        for name in list(dirs):
            if (Path(root) / name).is_symlink():  # a linked folder stays a link (not walked)
                dirs.remove(name)
                os.symlink(os.readlink(Path(root) / name), new / rel_root / name)
        for name in names:
            rel = (rel_root / name).as_posix()
            if skip(rel):
                continue
            src, dst = Path(root) / name, new / rel_root / name
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
                continue
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)


def commit_files(out_dir: Path, files: Mapping[str, bytes], manifest: bytes, *, prune: bool = True) -> dict[str, Path]:
    """Write ``files`` (relative path -> bytes) and ``manifest.json`` into ``out_dir`` atomically.

    The new folder is built complete beside ``out_dir`` (the files, the manifest, and hard links to
    every other entry of the old folder), then swapped with the old folder in one step (see the
    module docstring). With ``prune``, files this room owns in ``analysis/`` that are not in
    ``files`` are left behind with the old folder.
    """
    out_dir = Path(out_dir).absolute()
    if out_dir.is_symlink():
        out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    recover(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a folder. Fix: choose another --out folder.")
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    new = out_dir.parent / f".{out_dir.name}.new-{token}"
    replaced = set(files) | {"manifest.json"}

    def skip(rel: str) -> bool:
        if rel in replaced:
            return True
        return prune and rel.startswith("analysis/") and rel.count("/") == 1 and bool(OWNED_ANALYSIS.match(rel[9:]))

    os.mkdir(new)
    try:
        if out_dir.is_dir():
            _carry(out_dir, new, skip)
        for name, data in files.items():
            _write_bytes(new / name, data)
        _write_bytes(new / "manifest.json", manifest)
        for folder in {(new / name).parent for name in files}:
            _fsync_dir(folder)
        _fsync_dir(new)
        if not out_dir.exists():
            os.rename(new, out_dir)
        elif _exchange(new, out_dir):
            shutil.rmtree(new, ignore_errors=True)  # the old report, now at the temporary name
        else:
            backup = out_dir.parent / f".{out_dir.name}.old-{token}"
            os.rename(out_dir, backup)
            os.rename(new, out_dir)  # a crash before this line: recover() renames the backup back
            _fsync_dir(out_dir.parent)
            shutil.rmtree(backup, ignore_errors=True)
        _fsync_dir(out_dir.parent)
    finally:
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)
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
    Atomic as a whole folder: the new report (with the old folder's other files hard-linked in) is
    built beside ``out_dir`` and swapped with it in one step (module docstring), so ``out_dir`` is
    always the old report or the new one entirely; a failure while building leaves the old one
    untouched.

    ``log.txt`` records the run's stages with their timings, the row counts, the flow's counts, the
    matched sets and the data-quality warnings (their headline only, scrubbed of ids and dates): no
    patient or hospitalization id, no date (see :func:`log_text`).

    ``index.html``, ``results.json``, ``tables.docx`` and the Table 1 and outcome CSVs hold
    aggregates (the page adds the trial patients' courses as "Patient 1..n" in days from index,
    and, when ``study.report.listings`` is on, a listing of matched sets and the safety listings).
    ``matched_sets.csv`` and ``analysis/`` are analysis datasets. Every patient id in every output
    (datasets, listings, the safety tables, ``results.json``) is a stable pseudonym (``T-001``,
    ``C-001``; see :func:`._privacy.pseudonyms`) unless ``study.report.real_ids`` is on; listings
    show days, never calendar dates. The page footer and ``log.txt`` say which mode the report is in.
    """
    inputs = saved_inputs(run)
    bundle = load_bundle(inputs)  # render from the bytes a rebuild would read
    files = {**inputs, **render_outputs(bundle)}
    files["log.txt"] = log_text(run, files).encode("utf-8")
    manifest = dumps_json(manifest_dict(_provenance(run), files)).encode("utf-8")
    return commit_files(Path(out_dir), files, manifest)
