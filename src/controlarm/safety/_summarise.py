"""The safety room's front door: exposure, adherence, adverse events, deaths and pool context.

Room: ``safety`` (DESIGN.md section 2: trial exposure and adverse events -> safety tables). Why
own code: no Python library builds exposure or adverse-event tables; R users have gtsummary's
hierarchical tables and ``tern``. Counting follows ICH E3 section 12 and the CDISC ADaM ADAE /
OCCDS conventions; grades are CTCAE v5.0 (see ``_events``). Warehouse scans run in the engine
(``_queries``); the trial arm's few rows are worked in pandas.

References
----------
ICH E3. Structure and content of clinical study reports. 1995; section 12.
U.S. DHHS, National Cancer Institute. Common Terminology Criteria for Adverse Events (CTCAE) v5.0. 2017.
CDISC. ADaM Data Structure for Adverse Event Analysis (ADAE) v1.0. 2012.
"""

from __future__ import annotations

import pandas as pd

from ..errors import InputError
from ._events import RELATEDNESS_GROUPS, classify_events, count_hierarchy
from ._exposure import DEVIATION_KINDS, derive_deviations, derive_exposure
from ._queries import normalise_code, read_administrations, read_adverse_events, read_context_flags, read_deaths
from ._results import CONTEXT_CAVEAT, SafetyResults

__all__ = ["summarise_safety"]


def _check(frame, columns: tuple[str, ...], name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{name} must be a pandas DataFrame with columns {', '.join(columns)}; "
                         f"got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{name} must have columns {', '.join(columns)}; missing {', '.join(missing)} "
                         f"(got {', '.join(map(str, frame.columns)) or 'no columns'}).")
    out = frame[list(columns)].copy()
    out["patient_id"] = out["patient_id"].astype(str)
    out["hospitalization_id"] = out["hospitalization_id"].astype(object).where(out["hospitalization_id"].notna(), None)
    out["hospitalization_id"] = [None if h is None else str(h) for h in out["hospitalization_id"]]
    clash = out.drop_duplicates(["patient_id", "hospitalization_id"])["patient_id"].duplicated()
    if clash.any():
        raise InputError(f"{name}: a patient appears with two hospitalizations; give one row per patient.")
    return out.drop_duplicates("patient_id").sort_values("patient_id", kind="mergesort").reset_index(drop=True)


def _median_range(values: pd.Series) -> dict | None:
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return None
    def r(x: float) -> float:  # drop float noise (2.1500000000000004) from JSON
        return float(f"{x:.12g}")

    return {"n": int(len(v)), "median": r(v.median()), "min": r(v.min()), "max": r(v.max())}


def _exposure_summary(exposure: pd.DataFrame, patients: list[str], unit: str) -> tuple[dict, pd.DataFrame]:
    g = exposure.groupby("patient_id")
    per = pd.DataFrame({"patient_id": patients})
    per["n_administrations"] = per["patient_id"].map(g.size()).fillna(0).astype(int)
    per["days"] = per["patient_id"].map(g["day"].apply(list)).apply(lambda v: v if isinstance(v, list) else [])
    per["doses"] = per["patient_id"].map(g["dose_target"].apply(list)).apply(lambda v: v if isinstance(v, list) else [])
    per["cumulative_dose"] = [sum(d) if d and all(pd.notna(x) for x in d) else float("nan") for d in per["doses"]]
    per["last_day"] = [max(d) if d else float("nan") for d in per["days"]]
    counts = per["n_administrations"].value_counts().sort_index()
    summary = {
        "n_patients": len(patients),
        "n_patients_exposed": int((per["n_administrations"] > 0).sum()),
        "total_administrations": int(per["n_administrations"].sum()),
        "administrations_per_patient": _median_range(per["n_administrations"]),
        "patients_by_number_of_administrations": {str(int(k)): int(v) for k, v in counts.items()},
        "dose_unit": unit,
        "dose_per_administration": _median_range(exposure["dose_target"]),
        "cumulative_dose_per_patient": _median_range(per["cumulative_dose"]),
        "days_first_to_last_administration": _median_range(per["last_day"]),
    }
    return summary, per


def _adherence(deviations: pd.DataFrame | None, schedule, patients: list[str], unit: str) -> dict:
    if schedule is None:
        return {"schedule": None, "message": "no protocol schedule given"}
    n = len(patients)
    dev_pts = deviations["patient_id"].nunique()
    by_kind = {}
    for kind in DEVIATION_KINDS:
        d = deviations[deviations["kind"] == kind]
        by_kind[kind] = {"n_patients": int(d["patient_id"].nunique()), "n_deviations": int(len(d))}
    by_adm = []
    for (kind, adm), d in deviations.assign(
            administration=deviations["administration"].astype(object)).groupby(["kind", "administration"],
                                                                                 dropna=False, sort=False):
        by_adm.append({"kind": kind, "administration": None if pd.isna(adm) else int(adm),
                       "n_patients": int(d["patient_id"].nunique()), "n_deviations": int(len(d))})
    order = {k: i for i, k in enumerate(DEVIATION_KINDS)}
    by_adm.sort(key=lambda r: (order[r["kind"]], r["administration"] is None, r["administration"] or 0))
    return {
        "schedule": {**schedule.model_dump(mode="json"), "dose_unit": unit or schedule.dose_unit},
        "message": None,
        "n_patients": n,
        "n_patients_per_protocol": n - int(dev_pts),
        "n_patients_with_deviation": int(dev_pts),
        "by_kind": by_kind,
        "by_administration": by_adm,
    }


def _overview(ev: pd.DataFrame, n: int, teae_days: int, window: float) -> pd.DataFrame:
    teae = ev[ev["teae"]]
    rows = [
        ("any_teae", "Any treatment-emergent AE (TEAE)", teae),
        ("serious_teae", "Serious TEAE", teae[teae["serious_group"] == "serious"]),
        ("grade_3_plus_teae", "TEAE of CTCAE grade 3 or higher", teae[teae["grade"].fillna(0) >= 3]),
        ("related_teae", "Related TEAE (possible, probable, definite)", teae[teae["related_group"] == "related"]),
        ("grade_5_teae", "TEAE leading to death (grade 5)", teae[teae["grade"].fillna(0) == 5]),
        ("infusion_related", f"Infusion-related AE (onset within {window:g} h after an administration)",
         ev[ev["infusion_related"]]),
        ("pre_treatment", "Pre-treatment AE (onset before the first administration; not a TEAE)",
         ev[ev["period"] == "pre-treatment"]),
        ("after_window", f"AE with onset after day {teae_days} (not a TEAE)",
         ev[ev["period"] == "after the TEAE window"]),
    ]
    return pd.DataFrame([{"key": k, "label": label, "n_patients": int(s["patient_id"].nunique()),
                          "pct_patients": round(100.0 * s["patient_id"].nunique() / n, 1) if n else None,
                          "n_events": int(len(s))} for k, label, s in rows])


def _deaths(death_day: dict[str, float], ev: pd.DataFrame, n: int, teae_days: int) -> pd.DataFrame:
    days = pd.Series(death_day, dtype=float)
    pct = (lambda k: round(100.0 * k / n, 1) if n else None)
    rows = []
    within = int(((days >= 0) & (days <= teae_days)).sum())
    rows.append({"key": "death_in_window", "label": f"Deaths from the first administration to day {teae_days} "
                 "(patient.death_dttm)", "soc": "", "term": "", "n_patients": within, "pct_patients": pct(within),
                 "n_events": None})
    later = int((days > teae_days).sum())
    rows.append({"key": "death_after_window", "label": f"Deaths after day {teae_days} (recorded up to the data "
                 "cut-off)", "soc": "", "term": "", "n_patients": later, "pct_patients": pct(later), "n_events": None})
    before = int((days < 0).sum())
    if before:
        rows.append({"key": "death_before_first", "label": "Deaths recorded before the first administration "
                     "(check the data)", "soc": "", "term": "", "n_patients": before, "pct_patients": pct(before),
                     "n_events": None})
    g5 = ev[ev["teae"] & (ev["grade"].fillna(0) == 5)]
    rows.append({"key": "grade_5_teae", "label": "Patients with a grade 5 TEAE", "soc": "", "term": "",
                 "n_patients": int(g5["patient_id"].nunique()), "pct_patients": pct(g5["patient_id"].nunique()),
                 "n_events": int(len(g5))})
    groups = sorted(g5.groupby(["soc_label", "term_label"]), key=lambda kv: (-kv[1]["patient_id"].nunique(), kv[0]))
    for (soc, term), s in groups:
        rows.append({"key": "grade_5_term", "label": "Grade 5 TEAE", "soc": soc, "term": term,
                     "n_patients": int(s["patient_id"].nunique()), "pct_patients": pct(s["patient_id"].nunique()),
                     "n_events": int(len(s))})
    return pd.DataFrame(rows, columns=["key", "label", "soc", "term", "n_patients", "pct_patients", "n_events"])


def _infusion(ev: pd.DataFrame, n: int) -> pd.DataFrame:
    inf = ev[ev["infusion_related"]]
    table = count_hierarchy(inf, n, total_label="Any infusion-related AE")
    after = []
    for _, r in table.iterrows():
        s = inf
        if r["level"] in ("soc", "term"):
            s = s[s["soc_label"] == r["soc"]]
        if r["level"] == "term":
            s = s[s["term_label"] == r["term"]]
        counts = s["after_administration"].astype(int).value_counts().sort_index()
        after.append({str(int(k)): int(v) for k, v in counts.items()})
    table["after_administration"] = after
    return table


def _context(sources, trial: pd.DataFrame, controls: pd.DataFrame, study) -> tuple[pd.DataFrame, list[str]]:
    events = study.safety.context_events
    cols = ["name", "codes", "n_controls", "N_controls", "pct_controls", "n_controls_not_poa", "pct_controls_not_poa",
            "n_trial", "N_trial", "pct_trial", "suppressed"]
    notes: list[str] = []
    if not events:
        return pd.DataFrame(columns=cols), notes
    if "hospital_diagnosis" in getattr(sources, "absent", ()):
        notes.append("hospital_diagnosis is absent: every context count is 0.")
    ctl = read_context_flags(sources, controls, events) if len(controls) else None
    trl = read_context_flags(sources, trial, events)
    report = study.report
    threshold = report.small_cell_threshold if report.suppress_small_cells else None
    rows = []
    N_c, N_t = len(controls), len(trial)

    def pool_count(k: int) -> tuple[int | str, float | None, bool]:
        # Suppress pool counts from 1 to threshold - 1; a zero is shown (it points at no one).
        if threshold is not None and 0 < k < threshold:
            return f"<{threshold}", None, True
        return k, (round(100.0 * k / N_c, 1) if N_c else None), False

    for i, ev in enumerate(events):
        k_any = int(ctl[f"any_{i}"].sum()) if ctl is not None else 0
        k_new = int(ctl[f"new_{i}"].sum()) if ctl is not None else 0
        n_any, p_any, s_any = pool_count(k_any)
        n_new, p_new, s_new = pool_count(k_new)
        k_t = int(trl[f"any_{i}"].sum())
        rows.append({"name": ev.name, "codes": tuple(ev.codes), "n_controls": n_any, "N_controls": N_c,
                     "pct_controls": p_any, "n_controls_not_poa": n_new, "pct_controls_not_poa": p_new,
                     "n_trial": k_t, "N_trial": N_t, "pct_trial": round(100.0 * k_t / N_t, 1) if N_t else None,
                     "suppressed": bool(s_any or s_new)})
    return pd.DataFrame(rows, columns=cols), notes


def _conventions(study, n: int, unit: str) -> dict[str, str]:
    s = study.safety
    sched = s.schedule
    out = {
        "denominator": f"Percentages of treated patients use the number of treated patients (N = {n}) as "
                       "denominator.",
        "treatment_emergent": f"Treatment-emergent AE (TEAE): onset at or after the first administration of "
                              f"{study.index.product} and at most {s.teae_days} days (x 24 h) after it, both edges "
                              "included. AEs with onset before the first administration are pre-treatment and not "
                              "TEAEs; AEs without an onset time count as TEAEs.",
        "infusion_related": f"Infusion-related AE: onset from 0 to {s.infusion_window_hours:g} h after any "
                            "administration (both edges included), attributed to the latest such administration; "
                            "counted whether or not the AE is treatment-emergent.",
        "counting": "A patient counts once per row (category, system organ class or preferred term) at their "
                    "worst CTCAE grade within that row; events count every AE record. Rows are ordered by number "
                    "of patients, then alphabetically. Terms are grouped ignoring case.",
        "grading": "Severity grades follow CTCAE v5.0 (1 mild, 2 moderate, 3 severe, 4 life-threatening, "
                   "5 death related to the AE).",
        "relatedness": "Related = possible, probable or definite; not related = not related or unlikely; a "
                       "missing relatedness is shown as its own row.",
        "deaths": f"Deaths: patient.death_dttm after the first administration, within day {s.teae_days} and later "
                  "(up to the data cut-off); plus grade 5 TEAEs.",
        "dose": f"Doses are in {unit or 'the unit recorded'}; an absolute amount is divided by the last weight "
                "(vitals weight_kg) recorded at or before the administration.",
        "day": "Days are counted from the first administration (day 0.0), in units of 24 h, one decimal.",
    }
    if sched is None:
        out["adherence"] = "no protocol schedule given"
    else:
        out["adherence"] = (
            f"Schedule: {sched.n_administrations} administration(s), administration k expected "
            f"(k - 1) x {sched.interval_hours:g} h after the first, on time within ± {sched.tolerance_hours:g} h "
            "(edges on time). Administrations are aligned to the schedule in time order with the fewest "
            "deviations: an expected administration without one is missed, one without a slot is extra. Doses "
            "of aligned administrations outside the protocol range (inclusive) are wrong doses.")
    if study.report.suppress_small_cells:
        t = study.report.small_cell_threshold
        out["small_cells"] = (f"Counts from the matched pool from 1 to {t - 1} are shown as \"<{t}\" (zero is shown); "
                              "counts of the trial's own patients are not suppressed.")
    return out


def summarise_safety(sources, trial: pd.DataFrame, controls: pd.DataFrame, study) -> "SafetyResults":
    """Exposure, schedule adherence, adverse events, deaths and pool context of the trial arm.

    Parameters
    ----------
    sources : Sources
        The study's tables (``controlarm.sources.open_sources``); read with SQL in the engine.
    trial : DataFrame
        ``patient_id, hospitalization_id, index_time`` of the treated patients (index = first
        administration of ``study.index.product``).
    controls : DataFrame
        ``patient_id, hospitalization_id, index_time, set_id`` of the matched controls.
    study : Study
        Uses ``index.product``, ``safety`` (schedule, teae_days, infusion_window_hours,
        context_events) and ``report`` (small-cell suppression).

    Returns
    -------
    SafetyResults
        Aggregates by default (``to_dict()``, ``tables()``, ``to_html()``); patient-level listings
        only when asked for with ``listings=True``.

    Raises
    ------
    InputError
        ``trial`` or ``controls`` is not a DataFrame with the required columns, a patient appears
        with two hospitalizations, or ``trial`` is empty.

    Notes
    -----
    The conventions (TEAE window edges, infusion window, counting at worst grade, relatedness
    grouping, dose conversion, adherence rule, small cells) are stated in
    ``SafetyResults.conventions``; see also ``_events`` and ``_exposure``.

    References
    ----------
    ICH E3 (1995) section 12; CTCAE v5.0 (2017); CDISC ADaM ADAE v1.0 (2012).
    """
    trial = _check(trial, ("patient_id", "hospitalization_id", "index_time"), "trial")
    controls = _check(controls, ("patient_id", "hospitalization_id", "index_time", "set_id"), "controls")
    if trial.empty:
        raise InputError("trial has no patients: the safety tables need at least one treated patient.")
    s = study.safety
    product = study.index.product
    patients = list(trial["patient_id"])
    n = len(patients)
    notes: list[str] = []

    adm = read_administrations(sources, trial, product)
    first = adm.groupby("patient_id")["admin_dttm"].min()
    index = trial.set_index("patient_id")["index_time"]
    index = pd.to_datetime(index, utc=True)
    none = [p for p in patients if p not in first.index]
    if none:
        notes.append(f"{len(none)} of {n} treated patients have no administration of {product} recorded; their "
                     "index time is taken as their first administration.")
    differ = sum(1 for p in patients if p in first.index and pd.notna(index.get(p)) and index[p] != first[p])
    if differ:
        notes.append(f"{differ} of {n} treated patients have an index time other than their first administration "
                     f"of {product}; the first administration is used.")
    if none:
        first = pd.Series(pd.to_datetime([first[p] if p in first.index else index[p] for p in patients], utc=True),
                          index=pd.Index(patients, name="patient_id"))

    exposure, unit, exp_notes = derive_exposure(adm, first, s.schedule)
    notes += exp_notes
    exposure_summary, per_patient = _exposure_summary(exposure, patients, unit)

    deaths = read_deaths(sources, patients)
    death_day = {p: (t - first[p]).total_seconds() / 86400.0
                 for p, t in zip(deaths["patient_id"], deaths["death_dttm"]) if p in first.index}
    deviations = None
    if s.schedule is not None:
        deviations = derive_deviations(exposure, patients, s.schedule, unit, death_day)
    adherence = _adherence(deviations, s.schedule, patients, unit)

    ae = read_adverse_events(sources, patients)
    ev = classify_events(ae, first, exposure, s.teae_days, s.infusion_window_hours)
    k = int(ev["onset_missing"].sum())
    if k:
        notes.append(f"{k} AE record(s) have no onset time and are counted as treatment-emergent.")
    k = int((ev["teae"] & ev["grade"].isna()).sum())
    if k:
        notes.append(f"{k} TEAE record(s) have no CTCAE grade (column 'Grade missing').")
    teae = ev[ev["teae"]]
    soc_pt = count_hierarchy(teae, n)
    seriousness = count_hierarchy(teae, n, category_col="serious_group", categories={
        "serious": "Serious", "non-serious": "Non-serious",
        **({"missing": "Seriousness missing"} if (teae["serious_group"] == "missing").any() else {})})
    rel_groups = dict(RELATEDNESS_GROUPS)
    if not (teae["related_group"] == "missing").any():
        rel_groups.pop("missing")
    relatedness = count_hierarchy(teae, n, category_col="related_group", categories=rel_groups)
    context, ctx_notes = _context(sources, trial, controls, study)
    notes += ctx_notes

    death_listing = pd.DataFrame({"patient_id": list(death_day), "day": [round(d, 1) for d in death_day.values()]},
                                 columns=["patient_id", "day"])
    return SafetyResults(
        n_treated=n,
        n_controls=len(controls),
        product=product,
        settings={
            "teae_days": s.teae_days,
            "infusion_window_hours": s.infusion_window_hours,
            "schedule": None if s.schedule is None else s.schedule.model_dump(mode="json"),
            "dose_unit": unit,
            "context_events": [{"name": e.name, "codes": [normalise_code(c) for c in e.codes]}
                               for e in s.context_events],
            "suppress_small_cells": study.report.suppress_small_cells,
            "small_cell_threshold": study.report.small_cell_threshold,
        },
        conventions=_conventions(study, n, unit),
        notes=tuple(notes),
        exposure_summary=exposure_summary,
        adherence=adherence,
        ae_overview=_overview(ev, n, s.teae_days, s.infusion_window_hours),
        ae_soc_pt=soc_pt,
        ae_seriousness=seriousness,
        ae_relatedness=relatedness,
        infusion_related=_infusion(ev, n),
        deaths=_deaths(death_day, ev, n, s.teae_days),
        context=context,
        context_caveat=CONTEXT_CAVEAT,
        administrations=exposure.drop(columns=["hospitalization_id"], errors="ignore"),
        per_patient_exposure=per_patient,
        deviations=deviations,
        adverse_events=ev,
        death_listing=death_listing,
    )
