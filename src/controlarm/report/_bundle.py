"""Report room: the saved inputs of a report, and their way back from disk.

A report folder holds two kinds of file. *Saved inputs* are computed once, by a run:
``results.json`` (every aggregate number) and the Parquet datasets in ``analysis/`` (plus, when the
safety room ran, its HTML fragment and tables). *Renderings* (``index.html``, ``tables.docx``, the
CSVs) are made from the saved inputs only. ``write_report`` renders from the saved inputs read
back from their own bytes, and ``controlarm report`` from the same bytes read from disk, so a
rebuild gives the original renderings byte for byte and never recomputes a statistic.

:class:`ReportBundle` is the saved inputs in memory. :func:`saved_inputs` makes their bytes from a
run, :func:`load_bundle` turns bytes back into a bundle, :func:`read_saved_inputs` reads them from a
report folder with messages that name the missing or broken file and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import InputError
from ._adam import DATASET_FILES, analysis_datasets, frame_to_parquet, parquet_to_frame, safety_html, safety_tables
from ._privacy import pseudonymise, pseudonymous_run, pseudonyms
from ._results import SCHEMA_VERSION, dumps_json, report_options, results_dict

if TYPE_CHECKING:
    from .._run import StudyRun

__all__ = ["OWNED_ANALYSIS", "ReportBundle", "SAFETY_HTML", "load_bundle", "read_saved_inputs", "saved_inputs"]

SAFETY_HTML = "analysis/safety.html"
#: Files of ``analysis/`` this room owns (written by a run, read by a rebuild, pruned when stale).
OWNED_ANALYSIS = re.compile(r"^(?:ad[a-z]+|trajectories_[a-z]+|safety_table_\d+)\.parquet$|^safety\.html$")
_UNSAFE = re.compile(
    r"<\s*(?:script|iframe|frame|object|embed|link|meta|base|form|style)\b"  # active or loading elements
    r"|<[^>]*\son[a-z]+\s*="  # event handlers
    r"|<[^>]*\s(?:src|href|action|srcset|formaction|xlink:href|poster|data)\s*=\s*[\"']?\s*"
    r"(?:[a-z][a-z0-9+.\-]*:|//)",  # any URL with a scheme, or protocol-relative
    re.I,
)


@dataclass(frozen=True)
class ReportBundle:
    """A report's saved inputs: ``results.json`` content and the analysis datasets.

    Attributes
    ----------
    results : dict
        The content of ``results.json``.
    datasets : dict of DataFrame
        ``adsl, adtte, adlb, trajectories_support, trajectories_events`` and, with safety data,
        ``adae``.
    safety_html : str or None
        The safety room's HTML fragment (escaped by that room), or None when safety was not computed.
    safety_tables : dict of DataFrame
        Title -> table, in the safety room's order.
    """

    results: dict[str, Any]
    datasets: dict[str, pd.DataFrame] = field(default_factory=dict)
    safety_html: str | None = None
    safety_tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.results.get("report_options") or {})

    def dataset(self, name: str) -> pd.DataFrame:
        """The dataset ``name``, or an empty frame when the run did not write it."""
        return self.datasets.get(name, pd.DataFrame())


def safe_fragment(fragment: str | None) -> str | None:
    """The safety room's fragment if it holds no active content, else the fragment as escaped text.

    The safety room escapes its own text; this is a second line of defence, because the fragment is
    inlined into a page that must run no script and load nothing.
    """
    if fragment is None:
        return None
    if _UNSAFE.search(fragment):
        import html

        return ('<p class="warning" role="note">The safety section contained active content (script, '
                "event handler or external link) and is shown as text.</p><pre>"
                + html.escape(fragment) + "</pre>")
    return fragment


def saved_inputs(run: "StudyRun") -> dict[str, bytes]:
    """The bytes of every saved input of ``run``'s report, by path inside the report folder."""
    options = report_options(run)
    listings = options["listings"]
    datasets = analysis_datasets(run)
    shown = run
    if not options["real_ids"]:  # pseudonymous unless asked: no input id reaches an output file
        mapping = pseudonyms(run.matched)
        datasets = {name: pseudonymise(frame, mapping) for name, frame in datasets.items()}
        shown = pseudonymous_run(run, mapping)  # the safety room's tables, listings and dict
    files: dict[str, bytes] = {DATASET_FILES[name]: frame_to_parquet(frame) for name, frame in datasets.items()}
    listed: dict[str, Any] = {"datasets": {name: DATASET_FILES[name] for name in datasets},
                              "safety_html": None, "safety_tables": []}
    fragment = safety_html(shown, listings, real_ids=options["real_ids"])
    if fragment is not None:
        files[SAFETY_HTML] = fragment.encode("utf-8")
        listed["safety_html"] = SAFETY_HTML
        for i, (title, table) in enumerate(safety_tables(shown, listings).items(), start=1):
            path = f"analysis/safety_table_{i:02d}.parquet"
            files[path] = frame_to_parquet(table)
            listed["safety_tables"].append({"title": title, "file": path})
    files["results.json"] = dumps_json(results_dict(shown, files=listed)).encode("utf-8")
    return files


def load_bundle(files: Mapping[str, bytes], where: str = "") -> ReportBundle:
    """A bundle from saved-input bytes (as :func:`saved_inputs` makes or :func:`read_saved_inputs` reads).

    Raises
    ------
    InputError
        ``results.json`` is missing, not JSON, of an unknown schema version, or lists a file that is
        missing or unreadable.
    """
    where = where or "the report folder"
    if "results.json" not in files:
        raise InputError(f"{where}: results.json not found. Fix: point at a folder written by `controlarm run` "
                         "or `controlarm demo` (it holds results.json and analysis/).")
    try:
        results = json.loads(files["results.json"].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{where}/results.json is not valid JSON ({exc}). Fix: rerun `controlarm run` to "
                         "write it again.") from None
    if not isinstance(results, dict) or "schema_version" not in results:
        raise InputError(f"{where}/results.json has no schema_version: it was written by an older controlarm. "
                         "Fix: rerun `controlarm run` with this version to write it again.")
    major = str(results["schema_version"]).split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise InputError(f"{where}/results.json has schema_version {results['schema_version']!r}; this controlarm "
                         f"reads {SCHEMA_VERSION.split('.')[0]}.x. Fix: use the controlarm version that wrote it, "
                         "or rerun `controlarm run`.")
    listed = results.get("files") or {}

    def need(path: str) -> bytes:
        if path not in files:
            raise InputError(f"{where}/{path} not found (results.json lists it). Fix: restore the whole report "
                             "folder, or rerun `controlarm run`.")
        return files[path]

    def frame(path: str) -> pd.DataFrame:
        try:
            return parquet_to_frame(need(path))
        except InputError:
            raise
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise InputError(f"{where}/{path} is not a readable Parquet file ({type(exc).__name__}: {exc}). "
                             "Fix: restore it, or rerun `controlarm run`.") from None

    datasets = {name: frame(path) for name, path in (listed.get("datasets") or {}).items()}
    fragment = None
    if listed.get("safety_html"):
        try:
            fragment = need(listed["safety_html"]).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{where}/{listed['safety_html']} is not UTF-8 text. Fix: rerun `controlarm run`.") from None
    tables = {str(t["title"]): frame(t["file"]) for t in listed.get("safety_tables") or []}
    return ReportBundle(results=results, datasets=datasets, safety_html=safe_fragment(fragment), safety_tables=tables)


def read_saved_inputs(results_dir: str | Path) -> dict[str, bytes]:
    """The saved inputs of the report in ``results_dir``, as bytes by relative path.

    Raises
    ------
    InputError
        The folder or its ``results.json`` is missing.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder. Fix: give the folder a `controlarm run` wrote (it holds "
                         "results.json and analysis/).")
    files: dict[str, bytes] = {}
    if (root / "results.json").is_file():
        files["results.json"] = (root / "results.json").read_bytes()
    analysis = root / "analysis"
    if analysis.is_dir():
        for path in sorted(analysis.iterdir()):
            if path.is_file() and OWNED_ANALYSIS.match(path.name):
                files[f"analysis/{path.name}"] = path.read_bytes()
    return files
