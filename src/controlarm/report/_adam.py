"""Report room: ADaM-shaped analysis datasets (ADSL, ADTTE, ADLB, ADAE) and their Parquet bytes.

The datasets follow the shape of CDISC ADaM (one row per subject in ADSL; one row per subject and
parameter in the BDS datasets ADTTE and ADLB; one row per event in ADAE) with ADaM variable names
where one fits. They are *ADaM-shaped*, not submission-conformant: covariates keep their study-file
names, and every time is in days from the patient's index (day 0, the index day itself, exists;
SDTM's "no day 0" rule is not applied). No calendar date is exported. Patient ids are built here
from the run; ``saved_inputs`` replaces them by pseudonyms (``T-001``, ``C-001``) unless
``report.real_ids`` is on, as in ``matched_sets.csv``.

Besides the four datasets, the folder keeps the figures' trajectories (``trajectories_support``,
``trajectories_events``), so that ``controlarm report`` can redraw every figure without the source
data. SAS XPORT is not written: no sound XPORT writer is installed (pyreadstat and xport are not
dependencies); Parquet is read by SAS 9.4M7+/Viya, R (arrow) and Python.

Parquet bytes are deterministic for a given environment: rows in a fixed order, no index, no
timestamps (pyarrow writes none).
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

import pandas as pd

from ._tables import sort_matched

if TYPE_CHECKING:
    from .._run import StudyRun

__all__ = ["DATASET_FILES", "LAB_LABELS", "analysis_datasets", "frame_to_parquet", "parquet_to_frame", "paramcd"]

#: Dataset name -> file inside the report folder.
DATASET_FILES = {
    "adsl": "analysis/adsl.parquet",
    "adtte": "analysis/adtte.parquet",
    "adlb": "analysis/adlb.parquet",
    "adae": "analysis/adae.parquet",
    "trajectories_support": "analysis/trajectories_support.parquet",
    "trajectories_events": "analysis/trajectories_events.parquet",
}

LAB_LABELS = {"d_dimer": "D-dimer", "crp": "CRP", "ferritin": "Ferritin", "ldh": "LDH", "fibrinogen": "Fibrinogen",
              "interleukin_06": "Interleukin-6", "lymphocytes_absolute": "Lymphocytes (absolute)",
              "procalcitonin": "Procalcitonin", "troponin_t": "Troponin T", "lactate": "Lactate"}

_ARMCD = {"treated": "TRT", "control": "CTL"}
SUPPORT_COLUMNS = ["patient_id", "role", "set_id", "kind", "category", "start_day", "end_day"]
EVENT_COLUMNS = ["patient_id", "role", "set_id", "kind", "day", "label"]


def paramcd(name: str, taken: set[str] | None = None) -> str:
    """An ADaM-style parameter code: upper-case letters and digits, at most 8, unique in ``taken``.

    >>> paramcd("d_dimer"), paramcd("interleukin_06")
    ('DDIMER', 'INTERLEU')
    """
    base = re.sub(r"[^A-Z0-9]", "", str(name).upper())[:8] or "PARAM"
    code, i = base, 1
    while taken is not None and code in taken:
        suffix = str(i)
        code, i = base[: 8 - len(suffix)] + suffix, i + 1
    if taken is not None:
        taken.add(code)
    return code


def _studyid(run: "StudyRun") -> str:
    s = run.study.study
    return str(s.registration or s.name)


def _subject_frame(run: "StudyRun") -> pd.DataFrame:
    m = sort_matched(run.matched)
    return pd.DataFrame({
        "STUDYID": _studyid(run),
        "USUBJID": m["patient_id"].astype(str).to_numpy(),
        "ARM": m["role"].astype(str).to_numpy(),
        "ARMCD": m["role"].map(_ARMCD).fillna("").to_numpy(),
        "SETID": m["set_id"].to_numpy(),
        "MWEIGHT": pd.to_numeric(m["weight"], errors="coerce").astype(float).to_numpy(),
        "MDIST": pd.to_numeric(m["distance"], errors="coerce").astype(float).to_numpy(),
    })


def _adsl(run: "StudyRun") -> pd.DataFrame:
    adsl = _subject_frame(run)
    covs = [c for c in run.covariate_kinds if c in run.baseline.columns]
    base = run.baseline[["patient_id", *covs]].drop_duplicates("patient_id").copy()
    base["patient_id"] = base["patient_id"].astype(str)
    for c in covs:
        base[c] = pd.to_numeric(base[c], errors="coerce").astype(float)
    out = adsl.merge(base, left_on="USUBJID", right_on="patient_id", how="left").drop(columns="patient_id")
    return out.reset_index(drop=True)


def _keys(run: "StudyRun") -> pd.DataFrame:
    return _subject_frame(run)[["STUDYID", "USUBJID", "ARM", "ARMCD", "SETID"]]


def _adtte(run: "StudyRun") -> pd.DataFrame:
    cols = ["STUDYID", "USUBJID", "ARM", "ARMCD", "SETID", "PARAMCD", "PARAM", "AVAL", "AVALU", "CNSR"]
    keys = _keys(run)
    spec = getattr(run.study, "outcomes", None)
    horizon = max(getattr(spec, "survival_days", ()) or (0,))
    frames, taken = [], set()
    ep_frame = run.endpoints.assign(patient_id=run.endpoints["patient_id"].astype(str))
    for ep in run.endpoint_defs:
        if ep.kind != "time_to_event" or ep.column not in ep_frame or ep.event_column not in ep_frame:
            continue
        code = paramcd(f"DTHD{horizon}" if ep.name == "time_to_death" and horizon else ep.name, taken)
        vals = ep_frame[["set_id", "patient_id", ep.column, ep.event_column]].rename(
            columns={"set_id": "SETID", "patient_id": "USUBJID"})
        df = keys.merge(vals, on=["SETID", "USUBJID"], how="left")
        event = pd.to_numeric(df[ep.event_column], errors="coerce")
        frames.append(pd.DataFrame({
            **{k: df[k] for k in ("STUDYID", "USUBJID", "ARM", "ARMCD", "SETID")},
            "PARAMCD": code, "PARAM": ep.label,
            "AVAL": pd.to_numeric(df[ep.column], errors="coerce").astype(float),
            "AVALU": "DAYS",
            "CNSR": (1 - event).astype("Int64"),
        }))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="Int64" if c == "CNSR" else (float if c == "AVAL" else object))
                             for c in cols})
    return pd.concat(frames, ignore_index=True)[cols]


def _lab_unit(run: "StudyRun", category: str) -> str:
    from ..sources._units import harmonised_unit

    unit = harmonised_unit(category)
    if unit:
        return unit
    spec_outcomes = getattr(getattr(run.study, "outcomes", None), "labs", ()) or ()
    for lab in spec_outcomes:
        if getattr(lab, "category", None) == category and getattr(lab, "unit", ""):
            return str(lab.unit)
    for cov in getattr(getattr(run.study, "features", None), "covariates", ()) or ():
        if getattr(cov, "kind", None) == "lab" and getattr(cov, "category", None) == category and cov.unit:
            return str(cov.unit)
    return ""


def _adlb(run: "StudyRun") -> pd.DataFrame:
    cols = ["STUDYID", "USUBJID", "ARM", "ARMCD", "SETID", "PARAMCD", "PARAM", "PARCAT1", "ADY", "AVAL", "AVALU"]
    labs = (run.trajectories or {}).get("labs")
    if labs is None or labs.empty:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "AVAL" else ("int64" if c == "ADY" else object))
                             for c in cols})
    taken: set[str] = set()
    cats = list(dict.fromkeys(str(c) for c in labs["lab_category"]))
    codes = {c: paramcd(c, taken) for c in cats}
    units = {c: _lab_unit(run, c) for c in cats}
    cat = labs["lab_category"].astype(str)
    param = cat.map(lambda c: LAB_LABELS.get(c, c.replace("_", " ")) + (f" ({units[c]})" if units[c] else ""))
    return pd.DataFrame({
        "STUDYID": _studyid(run),
        "USUBJID": labs["patient_id"].astype(str).to_numpy(),
        "ARM": labs["role"].astype(str).to_numpy(),
        "ARMCD": labs["role"].map(_ARMCD).fillna("").to_numpy(),
        "SETID": labs["set_id"].to_numpy(),
        "PARAMCD": cat.map(codes).to_numpy(),
        "PARAM": param.to_numpy(),
        "PARCAT1": cat.to_numpy(),
        "ADY": pd.to_numeric(labs["day"]).astype("int64").to_numpy(),
        "AVAL": pd.to_numeric(labs["value"], errors="coerce").astype(float).to_numpy(),
        "AVALU": cat.map(units).to_numpy(),
    })[cols]


#: ADAE variable <- column of the safety room's per-event frame (those present are used).
_AE_COLUMNS = (("AETERM", "term"), ("AEDECOD", "term_label"), ("AEBODSYS", "soc_label"), ("AETOXGR", "grade"),
               ("AESER", "serious"), ("AEREL", "relatedness"), ("AEOUT", "outcome"), ("ASTDY", "day"),
               ("TRTEMFL", "teae"), ("APERIOD", "period"), ("INFRELFL", "infusion_related"))


def _yn(values: pd.Series) -> pd.Series:
    return values.map(lambda v: "" if v is None or v is pd.NA or v != v else ("Y" if bool(v) else "N"))


def _adae(run: "StudyRun") -> pd.DataFrame | None:
    """One row per adverse event of a matched patient, in days from index; None without AE data.

    From the safety room's per-event frame when it ran (term, MedDRA SOC, CTCAE grade,
    seriousness, relatedness, outcome, treatment-emergent flag), else from the trajectories'
    adverse-event rows (term and onset day only). Onset dates are not exported.
    """
    keys = _keys(run)
    frame = getattr(run.safety, "adverse_events", None) if run.safety is not None else None
    if isinstance(frame, pd.DataFrame) and "patient_id" in frame.columns:
        ae = frame.assign(patient_id=frame["patient_id"].astype(str))
        out = keys.merge(ae, left_on="USUBJID", right_on="patient_id", how="inner")
        cols = {"STUDYID": out["STUDYID"], "USUBJID": out["USUBJID"], "ARM": out["ARM"], "ARMCD": out["ARMCD"],
                "SETID": out["SETID"]}
        for var, col in _AE_COLUMNS:
            if col not in out.columns:
                continue
            if var in ("AESER", "TRTEMFL", "INFRELFL"):
                cols[var] = _yn(out[col])
            elif var in ("AETOXGR", "ASTDY"):
                cols[var] = pd.to_numeric(out[col], errors="coerce").astype(float)
            else:
                cols[var] = out[col].map(lambda v: "" if v is None or v is pd.NA or v != v else str(v))
        adae = pd.DataFrame(cols).reset_index(drop=True)
    else:
        events = (run.trajectories or {}).get("events")
        ae = events[events["kind"] == "adverse_event"] if events is not None and not events.empty else None
        if run.safety is None and (ae is None or ae.empty):
            return None
        if ae is None or ae.empty:
            return pd.DataFrame({c: pd.Series(dtype=float if c == "ASTDY" else object)
                                 for c in ["STUDYID", "USUBJID", "ARM", "ARMCD", "SETID", "AETERM", "ASTDY"]})
        ae = ae.assign(patient_id=ae["patient_id"].astype(str))
        out = keys.merge(ae[["patient_id", "label", "day"]], left_on="USUBJID", right_on="patient_id", how="inner")
        adae = pd.DataFrame({k: out[k] for k in ("STUDYID", "USUBJID", "ARM", "ARMCD", "SETID")})
        adae["AETERM"] = out["label"].astype(str)
        adae["ASTDY"] = pd.to_numeric(out["day"], errors="coerce").astype(float)
    sort = [c for c in ("SETID", "USUBJID", "ASTDY", "AETERM") if c in adae.columns]
    return adae.sort_values(sort, kind="mergesort").reset_index(drop=True)


def _trajectory(run: "StudyRun", key: str, columns: list[str]) -> pd.DataFrame:
    frame = (run.trajectories or {}).get(key)
    if frame is None or frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=float if c.endswith("day") else object) for c in columns})
    out = frame[columns].copy().reset_index(drop=True)
    out["patient_id"] = out["patient_id"].astype(str)
    return out


def analysis_datasets(run: "StudyRun") -> dict[str, pd.DataFrame]:
    """The datasets written to ``analysis/``: name -> frame (``adae`` only with safety data).

    Returns
    -------
    dict
        ``adsl``, ``adtte``, ``adlb``, ``adae`` (when the trial has adverse-event data or the safety
        room ran), ``trajectories_support`` and ``trajectories_events``; see docs/results-schema.md.
    """
    out = {"adsl": _adsl(run), "adtte": _adtte(run), "adlb": _adlb(run)}
    adae = _adae(run)
    if adae is not None:
        out["adae"] = adae
    out["trajectories_support"] = _trajectory(run, "support", SUPPORT_COLUMNS)
    out["trajectories_events"] = _trajectory(run, "events", EVENT_COLUMNS)
    return out


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """Parquet bytes of ``frame`` (no index; zstd; deterministic for a given environment)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = frame.reset_index(drop=True)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):  # mixed-type text columns: store as text
        frame = frame.copy()
        for col in frame.columns:
            if frame[col].dtype == object:
                frame[col] = frame[col].map(_text_or_none)
        table = pa.Table.from_pandas(frame, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _text_or_none(value: object) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return str(value)


def parquet_to_frame(data: bytes) -> pd.DataFrame:
    """The frame stored in Parquet ``data``."""
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pandas()


_SAFETY_TITLES = {
    "exposure": "Exposure", "adherence": "Schedule adherence", "deviations": "Schedule deviations",
    "ae_overview": "Adverse events: overview",
    "ae_by_soc_pt": "Treatment-emergent adverse events by system organ class and preferred term",
    "ae_by_grade": "Treatment-emergent adverse events by worst CTCAE grade",
    "ae_by_seriousness": "Treatment-emergent adverse events by seriousness",
    "ae_by_relatedness": "Treatment-emergent adverse events by relatedness",
    "infusion_related": "Infusion-related adverse events", "deaths": "Deaths",
    "context": "Context: events among matched controls",
}


def safety_tables(run: "StudyRun", listings: bool = False) -> dict[str, pd.DataFrame]:
    """The safety room's tables (``run.safety.tables(listings)``) by title, or an empty dict."""
    if run.safety is None or not hasattr(run.safety, "tables"):
        return {}
    try:
        tables = run.safety.tables(listings)
    except TypeError:  # a safety object whose tables() takes no argument
        tables = run.safety.tables()
    out = {}
    for key, frame in tables.items():
        if isinstance(frame, pd.DataFrame):
            title = _SAFETY_TITLES.get(str(key), str(key).replace("_", " ").capitalize())
            out[title] = _flat(frame)
    return out


def _flat(frame: pd.DataFrame) -> pd.DataFrame:
    """A plain table: a meaningful index becomes columns, column labels become strings."""
    out = frame.copy()
    if not isinstance(out.index, pd.RangeIndex) or out.index.name is not None:
        out = out.reset_index()
    out.columns = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in out.columns]
    return out.reset_index(drop=True)


#: The safety room's note over its listings, and what it becomes when the ids are real.
_PSEUDONYMOUS_NOTE = "Patient-level listings (listings = true): pseudonymous ids;"
_REAL_NOTE = "Patient-level listings (listings = true) with the real patient ids (report.real_ids = true);"


def safety_html(run: "StudyRun", listings: bool, real_ids: bool = False) -> str | None:
    """The safety room's HTML fragment, or None when safety was not computed.

    ``run.safety`` is already pseudonymised unless ``real_ids`` (``saved_inputs``); with real ids
    the room's note over its listings is reworded to say so.
    """
    if run.safety is None:
        return None
    fragment = str(run.safety.to_html(listings))
    return fragment.replace(_PSEUDONYMOUS_NOTE, _REAL_NOTE) if real_ids else fragment
