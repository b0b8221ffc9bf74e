"""Report room: the content of ``results.json`` (schema ``1.0``) and its way back into objects.

``results.json`` is the report's source of truth for every aggregate number: the page, the DOCX
tables and the CSVs are rendered from it (and from the Parquet datasets in ``analysis/``), never
from live objects, so ``controlarm report RESULTS_DIR`` can rebuild them without recomputing. Its
keys are documented in ``docs/results-schema.md`` and checked against ``docs/results.schema.json``.

It holds aggregates only: no patient id and no patient-level date. Free text from upstream rooms
(outcome notes, data-quality warnings) is scrubbed of the run's ids and of ISO dates. JSON text is
canonical (sorted keys, two-space indent, NaN and infinities as ``null``), so a run always gives the
same bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._privacy import id_scrubber
from ._table1 import flow_data, matched_counts, table_one_data
from ._tables import sort_matched

if TYPE_CHECKING:
    from .._run import StudyRun
    from ..analysis._results import Results

__all__ = ["SCHEMA_VERSION", "dumps_json", "jsonable", "package_versions", "report_options", "results_dict",
           "results_from_dict"]

#: Version of the ``results.json`` layout. Bump the minor number when keys are added, the major
#: number when a key changes meaning or disappears (docs/results-schema.md).
SCHEMA_VERSION = "1.1"  # 1.1: top-level "audit" and "plan"

#: Packages whose versions are reported when the run did not record them.
PACKAGES = ("controlarm", "numpy", "scipy", "pandas", "statsmodels", "lifelines", "matplotlib",
            "duckdb", "pyarrow", "pydantic")

_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


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


def _records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    return [] if df is None or df.empty else jsonable(df.to_dict(orient="records"))


# --------------------------------------------------------------------------- pieces
def package_versions(run: "StudyRun") -> dict[str, str]:
    """Package versions recorded in the run's provenance, else those installed now."""
    prov = run.provenance or {}
    for key in ("packages", "package_versions", "versions"):
        if isinstance(prov.get(key), Mapping) and prov[key]:
            return {str(k): str(v) for k, v in sorted(prov[key].items()) if v is not None}
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def report_options(run: "StudyRun") -> dict[str, Any]:
    """``[report]`` settings of the study (defaults where the study object lacks them)."""
    rep = getattr(run.study, "report", None)
    return {
        "listings": bool(getattr(rep, "listings", False)),
        "real_ids": bool(getattr(rep, "real_ids", False)),
        "suppress_small_cells": bool(getattr(rep, "suppress_small_cells", False)),
        "small_cell_threshold": int(getattr(rep, "small_cell_threshold", 5) or 5),
    }


def _spec(run: "StudyRun") -> dict[str, Any] | None:
    """The validated study file as JSON, with any credentials in a connection URL removed."""
    dump = getattr(run.study, "model_dump", None)
    if dump is None:
        return None
    spec = jsonable(dump(mode="json"))
    data = spec.get("data") if isinstance(spec, dict) else None
    if isinstance(data, dict) and isinstance(data.get("source"), str):
        data["source"] = _CREDENTIALS.sub("[credentials]@", data["source"])
    return spec


def _sets(matched: pd.DataFrame) -> list[dict[str, Any]]:
    """Each matched set's size and its controls' distances to the treated patient (no ids)."""
    table = sort_matched(matched)
    out = []
    for set_id, rows in table.groupby("set_id", sort=True):
        controls = rows[rows["role"] == "control"]
        distances = sorted(float(d) for d in pd.to_numeric(controls["distance"], errors="coerce") if math.isfinite(d))
        out.append({"set_id": jsonable(set_id), "n_controls": int(len(controls)), "distances": distances})
    return out


def _outcomes(run: "StudyRun") -> dict[str, Any]:
    """``run.results`` as dicts, with ids and dates scrubbed from the free text."""
    scrub = id_scrubber(run)
    outcomes = jsonable(run.results.to_dict()["outcomes"])
    for o in outcomes.values():
        o["notes"] = [scrub(n) for n in o.get("notes", [])]
        for panel in o.get("sensitivity", None) or []:
            if isinstance(panel, dict) and isinstance(panel.get("summary"), str):
                panel["summary"] = scrub(panel["summary"])
    return outcomes


def _analysis(run: "StudyRun") -> dict[str, Any]:
    """Study-level analysis facts: sets, ratio, outcome order, and whatever else ``Results`` reports
    beside its outcomes (for example ``multiplicity`` and ``style_comparison``)."""
    full = run.results.to_dict()
    out = {k: v for k, v in full.items() if k != "outcomes"}
    out.update(n_sets=run.results.n_sets, ratio=run.results.ratio,
               outcome_order=[o.outcome for o in run.results.outcomes])
    if isinstance(out.get("style_comparison"), list):
        scrub = id_scrubber(run)
        out["style_comparison"] = [
            {k: (scrub(v) if k == "reason" and isinstance(v, str) else v) for k, v in row.items()}
            if isinstance(row, Mapping) else row for row in out["style_comparison"]]
    return jsonable(out)


def _safety(run: "StudyRun", listings: bool) -> Any:
    if run.safety is None:
        return None
    return jsonable(run.safety.to_dict(listings))


def _aggregate(value: Any, scrub) -> Any:
    """The audit or plan record (aggregates by construction), with free text scrubbed of ids."""
    if value is None:
        return None

    def walk(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return scrub(v) if isinstance(v, str) else v

    return walk(jsonable(value))


def _reproducibility(run: "StudyRun") -> dict[str, Any]:
    prov = {k: v for k, v in (run.provenance or {}).items() if "timing" not in str(k).lower()}
    out = jsonable(prov)
    out.setdefault("spec_hash", run.study.spec_hash)
    out.setdefault("seed", run.study.study.seed)
    out["packages"] = package_versions(run)
    return out


# --------------------------------------------------------------------------- results.json
def results_dict(run: "StudyRun", files: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The content of ``results.json`` (schema :data:`SCHEMA_VERSION`): aggregates only.

    Parameters
    ----------
    run : StudyRun
    files : mapping, optional
        The ``files`` entry (which analysis datasets were written); the report writer fills it.

    Returns
    -------
    dict
        JSON-ready; see docs/results-schema.md for every key.
    """
    from .. import __version__

    s = run.study.study
    m = run.study.matching
    opts = report_options(run)
    small = opts["small_cell_threshold"] if opts["suppress_small_cells"] else None
    counts = matched_counts(run.matched)
    scrub = id_scrubber(run)
    dq = run.data_quality or {}
    endpoint_defs = {
        ep.name: (dataclasses.asdict(ep) if dataclasses.is_dataclass(ep) else dict(vars(ep)))
        for ep in run.endpoint_defs
    }
    table1 = table_one_data(
        run.baseline, run.matched, run.covariate_kinds, run.balance,
        nonnormal=getattr(getattr(run.study, "report", None), "nonnormal", ()) or (),
        matching_covariates=list(getattr(m, "covariates", ()) or ()),
        exact=list(getattr(m, "exact", ()) or ()),
        small_cells=small,
    )
    return jsonable({
        "schema_version": SCHEMA_VERSION,
        "controlarm_version": __version__,
        "study": {
            "name": s.name,
            "registration": s.registration,
            "description": str(getattr(s, "description", "") or ""),
            "spec_hash": run.study.spec_hash,
            "seed": s.seed,
            "synthetic": bool(getattr(s, "synthetic", False)),
        },
        "report_options": opts,
        "spec": _spec(run),
        "flow": flow_data(run.flow, small),
        "table1": table1,
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
            "sets": _sets(run.matched),
        },
        "analysis": _analysis(run),
        "outcomes": _outcomes(run),
        "endpoint_definitions": endpoint_defs,
        "safety": _safety(run, opts["listings"]),
        "audit": _aggregate(getattr(run, "audit", None), scrub),
        "plan": _aggregate(getattr(run, "plan", None), scrub),
        "data_quality": {
            "warnings": [scrub(w) for w in dq.get("warnings", [])],
            "tables": {str(k): v for k, v in sorted((dq.get("tables") or {}).items())},
        },
        "reproducibility": _reproducibility(run),
        "files": dict(files or {}),
    })


def _make(cls: type, data: Mapping[str, Any], **override: Any) -> Any:
    names = {f.name for f in dataclasses.fields(cls)} - {"sensitivity"}  # panels stay dicts (rendered generically)
    kwargs = {k: v for k, v in data.items() if k in names}
    kwargs.update(override)
    return cls(**kwargs)


def results_from_dict(results: Mapping[str, Any]) -> "Results":
    """Rebuild the analysis ``Results`` from ``results.json`` content (unknown keys are ignored).

    NaN became ``null`` on the way out and comes back as None; every formatter treats both alike.
    """
    from ..analysis._results import ArmSummary, Estimate, OutcomeResult, Results, TestResult

    analysis = results.get("analysis") or {}
    outcomes = results.get("outcomes") or {}
    order = list(analysis.get("outcome_order") or []) or list(outcomes)
    order += [name for name in outcomes if name not in order]
    built = []
    for name in order:
        o = outcomes[name]
        summaries = o.get("summaries") or {}
        arms = [a for a in ("treated", "control") if a in summaries] + [a for a in summaries if a not in ("treated", "control")]
        built.append(_make(
            OutcomeResult, o,
            summaries=tuple(_make(ArmSummary, summaries[a]) for a in arms),
            tests=tuple(_make(TestResult, t, conventions=dict(t.get("conventions") or {})) for t in o.get("tests", [])),
            estimates=tuple(_make(Estimate, e, conventions=dict(e.get("conventions") or {}))
                            for e in o.get("estimates", [])),
            notes=tuple(o.get("notes", [])),
        ))
    return Results(outcomes=tuple(built), n_sets=analysis.get("n_sets", 0), ratio=str(analysis.get("ratio", "")))
