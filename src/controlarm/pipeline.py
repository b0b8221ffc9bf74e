"""The pipeline: one study file through every room, in order, passing only plain objects.

spec -> sources -> validate -> cohort -> features -> matching -> outcomes -> analysis -> report.

The design stage (cohort, features, matching, balance) finishes before any outcome is read, as
guidance on externally controlled trials asks; outcomes are derived only for matched patients.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from ._run import StudyRun
from .cohort import FlowStep
from .errors import InputError

__all__ = ["run_study", "design_study", "lock_dict", "lock_path", "read_lock", "check_lock", "locked_sets"]

_PACKAGES = ("controlarm", "numpy", "scipy", "pandas", "statsmodels", "lifelines", "scikit-learn",
             "duckdb", "pyarrow", "pydantic", "matplotlib", "pint")


def _noop(stage: str) -> None:
    return None


def design_study(study, *, progress: Callable[[str], None] = _noop):
    """Run the outcome-blind design stage: sources, validation, cohort, baseline, matching, balance.

    Returns
    -------
    dict
        ``sources, quality, cohort, baseline, flow, match, matched, balance, timings``.
    """
    from .cohort import build_cohort
    from .features import derive_baseline
    from .matching import balance_table, match
    from .sources import open_study_sources
    from .validate import validate_sources

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    progress("reading tables")
    sources = open_study_sources(study)
    progress("validating tables")
    quality = validate_sources(sources)
    quality.raise_if_errors()
    timings["read_validate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress("index dates and eligibility")
    cohort = build_cohort(sources, study)
    if study.index.pool_method == "risk_set":
        # time-aligned design: covariates at each landmark, then risk-set matching
        from ._risk_set_design import design_risk_set

        progress("baseline covariates at each landmark and risk-set matching")
        design = design_risk_set(study, sources, cohort)
        timings["cohort_features_matching_s"] = time.perf_counter() - t0
        return {"sources": sources, "quality": quality, "cohort": cohort, "timings": timings, **design}
    progress("baseline covariates")
    baseline = derive_baseline(sources, cohort, study)
    timings["cohort_features_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress("matching")
    m = study.matching
    needed = list(m.covariates) + list(m.exact)
    flow = cohort.flow
    first_missing = _first_missing(baseline, needed)
    for group in ("trial", "pool"):
        in_group = baseline["group"] == group
        counts = first_missing[in_group].value_counts()
        flow = flow.then(FlowStep(
            stage="baseline covariates for matching",
            group=group,
            n_in=int(in_group.sum()),
            excluded=tuple((f"missing {cov}", int(counts[cov])) for cov in needed if cov in counts.index),
        ))
    design = baseline[first_missing.isna()].copy()
    design["treated"] = (design["group"] == "trial").astype(int)
    if design["treated"].sum() == 0:
        raise InputError("No trial patient has every matching covariate. Fix: check [matching] covariates and the data.")
    _check_ratio(m, int(design["treated"].sum()), int((design["treated"] == 0).sum()))
    result = match(
        design, treatment="treated", covariates=m.covariates, ratio=m.ratio, method=m.method,
        distance=m.distance, exact=m.exact, caliper=m.caliper, caliper_units=m.caliper_units,
        order=m.order, replace=m.replace, seed=study.study.seed, id_column="patient_id",
        min_controls=m.min_controls, max_controls=m.max_controls,
        covariate_calipers=m.covariate_calipers or None, covariate_caliper_units=m.covariate_caliper_units,
        discard=m.discard, ps_model=m.ps_model,
    )
    matched = result.matched.copy()
    idx = cohort.patients.set_index("patient_id")
    matched["hospitalization_id"] = matched["patient_id"].map(idx["hospitalization_id"])
    matched["index_time"] = matched["patient_id"].map(idx["index_time"])
    n_t = int(design["treated"].sum())
    n_c = int(len(design) - n_t)
    n_sets = int(matched.loc[matched["role"] == "treated", "set_id"].nunique())
    n_ctrl = int((matched["role"] == "control").sum())
    if n_sets == 0:
        restrictions = ", ".join(f"matching.{k} = {getattr(m, k)!r}" for k in ("caliper", "exact", "covariate_calipers")
                                 if getattr(m, k)) or "the matching restrictions"
        raise InputError(
            f"No trial patient has a control within {restrictions}: 0 of {n_t} trial patients matched from "
            f"{n_c} pool candidates. Fix: widen matching.caliper (or drop it), relax matching.exact and "
            f"matching.covariate_calipers, or check the pool's covariates.")
    flow = flow.then(FlowStep(stage="matching", group="trial", n_in=n_t,
                              excluded=_nonzero(("no control within the restrictions", n_t - n_sets))))
    flow = flow.then(FlowStep(stage="matching", group="pool", n_in=n_c,
                              excluded=_nonzero(("eligible but not selected", n_c - n_ctrl))))
    kinds = baseline.attrs.get("kinds", {})
    binary = [c for c, k in kinds.items() if k == "binary"]
    balance = balance_table(design, matched, treatment="treated",
                            covariates=[c.name for c in study.features.covariates], binary=binary)
    timings["matching_s"] = time.perf_counter() - t0
    return {
        "sources": sources, "quality": quality, "cohort": cohort, "baseline": baseline, "flow": flow,
        "match": result, "matched": matched, "balance": balance, "kinds": kinds, "timings": timings,
    }


# --------------------------------------------------------------------------- locked plan
LOCK_VERSION = 1


def lock_path(study_file: str | Path) -> Path:
    """The default lock file of a study file: ``STUDY.lock.json`` beside ``STUDY.toml``."""
    p = Path(study_file)
    return p.with_name(f"{p.stem}.lock.json")


def locked_sets(matched: pd.DataFrame) -> list[list]:
    """The matched sets as sorted ``[set_id, role, patient_id]`` rows (what a lock records and compares)."""
    rows = {(int(s), str(r), str(p)) for s, r, p in zip(matched["set_id"], matched["role"], matched["patient_id"])}
    return [list(r) for r in sorted(rows, key=lambda r: (r[0], r[1] != "treated", r[2]))]


def lock_dict(study, design: dict) -> dict:
    """The content of a lock file: the spec hash, the input hashes and the design-stage outputs.

    Everything here comes from :func:`design_study`, which reads no outcome. The lock holds the
    real patient ids of the matched sets (it is a design record for the data team, kept beside the
    study file, not a report output).
    """
    from .report._results import jsonable

    files = {table: {"path": Path(p).name, "sha256": _sha256(Path(p))}
             for table, p in sorted(design["sources"].files.items()) if p is not None and Path(p).is_file()}
    cohort = design["cohort"]
    balance = design["balance"].reset_index(drop=True)
    return jsonable({
        "controlarm_lock": LOCK_VERSION,
        "study": study.study.name,
        "spec_hash": study.spec_hash,
        "seed": study.study.seed,
        "inputs": files,
        "cohort": {"trial": int(cohort.n_trial), "pool": int(cohort.n_pool)},
        "flow": design["flow"].to_dict(),
        "matched_sets": locked_sets(design["matched"]),
        "balance": {"smd_denominator": balance.attrs.get("smd_denominator"),
                    "rows": balance.to_dict(orient="records")},
    })


def read_lock(path: str | Path) -> dict:
    """A lock file's content. Raises :class:`InputError` naming the file and the fix when unreadable."""
    import json

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable lock file ({exc}). Fix: write it again with "
                         f"`controlarm lock`, or remove it to run unlocked.") from None
    if not isinstance(data, dict) or "spec_hash" not in data or "matched_sets" not in data:
        raise InputError(f"{path}: not a controlarm lock file (no spec_hash or matched_sets). Fix: write it again "
                         "with `controlarm lock`, or remove it.")
    return data


def check_lock(study, lock: dict | None, lock_file: str | Path | None, unlock: str | None) -> dict:
    """Compare ``study`` with its lock; the manifest's ``lock`` record.

    Raises
    ------
    InputError
        The spec hash differs from the lock's and no ``unlock`` reason was given.
    """
    if lock is None:
        return {"status": "not locked"}
    record = {"file": Path(lock_file).name if lock_file else None, "lock_spec_hash": lock["spec_hash"],
              "spec_hash": study.spec_hash}
    if lock["spec_hash"] == study.spec_hash:
        return {**record, "status": "locked"}
    if not unlock or not unlock.strip():
        raise InputError(
            f"{lock_file}: the study file no longer matches its locked plan: spec hash {study.spec_hash} now, "
            f"{lock['spec_hash']} when locked. Fix: restore the locked study file, or give the reason for the "
            f"change with --unlock \"reason\" (it is recorded in manifest.json), or lock the new plan with "
            f"`controlarm lock` before any outcome is read.")
    return {**record, "status": "unlocked", "reason": unlock.strip()}


def run_study(study, *, progress: Callable[[str], None] = _noop) -> StudyRun:
    """Run the whole chain and return a :class:`StudyRun` for the report room."""
    from .analysis import analyse
    from .outcomes import derive_endpoints, derive_trajectories, endpoint_definitions

    d = design_study(study, progress=progress)
    timings = dict(d["timings"])
    t0 = time.perf_counter()
    progress("outcomes")
    matched = d["matched"]
    defs = endpoint_definitions(study)
    endpoints = derive_endpoints(d["sources"], matched[["patient_id", "hospitalization_id", "index_time"]], study)
    endpoints = matched[["set_id", "patient_id", "role"]].merge(endpoints, on="patient_id", how="left")
    trajectories = derive_trajectories(d["sources"], matched, study)
    timings["outcomes_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress("safety")
    from .safety import summarise_safety

    cols = ["patient_id", "hospitalization_id", "index_time"]
    safety = summarise_safety(d["sources"], matched.loc[matched["role"] == "treated", cols],
                              matched.loc[matched["role"] == "control", cols + ["set_id"]], study)
    timings["safety_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress("analysis")
    results = analyse(endpoints, defs, published_style=study.analysis.published_style,
                      alpha=study.analysis.alpha, seed=study.study.seed)
    timings["analysis_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress("audit of binary outcomes")
    from .audit import audit_study

    outcome_dicts = results.to_dict()["outcomes"]
    audit = audit_study(endpoints, defs, outcome_dicts, alpha=study.analysis.alpha, seed=study.study.seed)
    timings["audit_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    plan = None
    plan_spec = _plan_spec(study)
    if plan_spec.enabled:
        progress("plan of the confirmatory trial")
        from .plan import plan_inputs, plan_trial

        pool_endpoints = None
        if plan_spec.control == "pool":
            pool = d["cohort"].patients
            pool = pool.loc[pool["group"] == "pool", ["patient_id", "hospitalization_id", "index_time"]]
            pool_endpoints = derive_endpoints(d["sources"], pool.reset_index(drop=True), study)
        inputs = plan_inputs(endpoints, defs, outcome_dicts, pool_endpoints=pool_endpoints)
        plan = plan_trial(inputs, _plan_settings(study, plan_spec))
    timings["plan_s"] = time.perf_counter() - t0

    sources = d["sources"]
    quality = d["quality"]
    return StudyRun(
        study=study,
        flow=d["flow"],
        cohort=d["cohort"].patients,
        baseline=d["baseline"],
        covariate_kinds=d["kinds"],
        matched=matched,
        balance=d["balance"],
        endpoints=endpoints,
        endpoint_defs=defs,
        results=results,
        data_quality={"warnings": list(quality.warnings), "tables": dict(sources.row_counts)},
        provenance=_provenance(study, sources, timings),
        trajectories=trajectories,
        safety=safety,
        audit=audit,
        plan=plan,
    )


def _plan_spec(study):
    """``[plan]`` of the study file, or its defaults when the section is absent (the plan is on by
    default: it costs well under a second and answers the question every pilot ends with)."""
    from .spec._models import PlanSection

    spec = getattr(study, "plan", None)
    return spec if spec is not None else PlanSection()


def _plan_settings(study, spec):
    """The plan room's settings from ``[plan]``; alpha defaults to ``[analysis] alpha``."""
    from .plan import PlanSettings

    return PlanSettings.from_spec(spec, alpha=study.analysis.alpha, seed=study.study.seed)


def _check_ratio(m, n_treated: int, n_pool: int) -> None:
    """A fixed k:1 design without replacement needs k controls per treated patient in the pool."""
    if m.replace or m.max_controls is not None or m.ratio * n_treated <= n_pool:
        return
    raise InputError(
        f"matching.ratio = {m.ratio} asks for {m.ratio * n_treated} distinct controls ({n_treated} trial patients "
        f"x {m.ratio}), but only {n_pool} pool candidates have every matching covariate. Fix: lower "
        f"matching.ratio to at most {max(n_pool // max(n_treated, 1), 1)}, set matching.replace = true, or use a "
        "variable ratio (matching.min_controls / max_controls).")


def _nonzero(*pairs: tuple[str, int]) -> tuple[tuple[str, int], ...]:
    """Only the exclusion reasons that removed somebody (a zero would draw an empty box)."""
    return tuple((reason, n) for reason, n in pairs if n > 0)


def _first_missing(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Name of the first missing covariate of each row (NaN when none is missing)."""
    out = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    for col in reversed(columns):  # reversed so the first listed covariate wins
        out = out.where(frame[col].notna(), col)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _provenance(study, sources, timings: dict[str, float]) -> dict:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    files = {table: {"path": Path(p).name, "sha256": _sha256(Path(p))}
             for table, p in sorted(sources.files.items()) if p is not None and Path(p).is_file()}
    return {
        "spec_hash": study.spec_hash,
        "seed": study.study.seed,
        "inputs": files,
        "packages": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
    }
