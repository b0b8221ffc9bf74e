"""Adverse events of the trial arm: treatment-emergence, infusion windows and the count tables.

Room: ``safety``. Why own code: no Python library builds adverse-event tables (R has gtsummary's
hierarchical tables and ``tern``); the counting rules here follow ICH E3 section 12.2 and the CDISC
ADaM ADAE / OCCDS conventions, grades are CTCAE v5.0.

Conventions:

* Period of an AE, from its onset and the patient's first administration ``t0``:
  *pre-treatment* when onset < t0 (not treatment-emergent); *treatment-emergent* (TEAE, ADAE
  ``TRTEMFL = "Y"``) when t0 <= onset <= t0 + teae_days x 24 h (both edges included); *after the
  TEAE window* when later. An AE without onset time is counted as treatment-emergent (the
  conservative choice) and said so in a note.
* Infusion-related: onset from 0 to ``infusion_window_hours`` h after any administration (both
  edges included), attributed to the latest administration at or before the onset; independent of
  the TEAE window.
* Counting: a patient counts once per row (category, system organ class or preferred term), at
  their worst CTCAE grade among the AEs of that row (the ADAE first-occurrence / worst-grade flags);
  events count every AE record. Percentages use the number of treated patients. Terms and SOCs are
  grouped ignoring case and surrounding spaces. Rows are ordered by the number of patients, then
  alphabetically.
* Relatedness: related = possible, probable, definite; not related = not related, unlikely; a
  missing or unrecognised value is its own row ("relatedness missing"), never folded into either.

References
----------
U.S. Department of Health and Human Services, National Cancer Institute. Common Terminology
Criteria for Adverse Events (CTCAE) version 5.0. 27 November 2017.
ICH E3. Structure and content of clinical study reports. 1995; section 12 (safety evaluation).
CDISC Analysis Data Model Team. ADaM Data Structure for Adverse Event Analysis (ADAE), version 1.0.
2012; and ADaM Structure for Occurrence Data (OCCDS), version 1.0. 2016.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "RELATED",
    "NOT_RELATED",
    "RELATEDNESS_GROUPS",
    "classify_events",
    "count_hierarchy",
]

RELATED = ("possible", "probable", "definite")
NOT_RELATED = ("not related", "unlikely")
#: Display labels of the relatedness groups.
RELATEDNESS_GROUPS = {
    "related": "Related (possible, probable, definite)",
    "not related": "Not related (not related, unlikely)",
    "missing": "Relatedness missing",
}
PERIODS = ("pre-treatment", "treatment-emergent", "after the TEAE window")
GRADES = (1, 2, 3, 4, 5)


def _label(values: pd.Series, missing: str) -> pd.Series:
    """Group text ignoring case and surrounding spaces; the label is the smallest spelling."""
    text = values.astype("string").str.strip()
    text = text.where(text.notna() & (text != ""), missing)
    key = text.str.casefold()
    first = text.groupby(key).transform("min")
    return first.astype(object)


def classify_events(ae: pd.DataFrame, first: pd.Series, administrations: pd.DataFrame,
                    teae_days: float, window_hours: float) -> pd.DataFrame:
    """Add period, day, infusion-related flag and relatedness group to each AE.

    Parameters
    ----------
    ae : DataFrame
        ``patient_id, onset_dttm, term, soc, grade, serious, relatedness, outcome``.
    first : Series
        patient_id -> first administration time.
    administrations : DataFrame
        ``patient_id, admin_dttm, number``.
    teae_days, window_hours : float

    Returns
    -------
    DataFrame
        ``ae`` plus ``day, period, teae, infusion_related, after_administration, related_group,
        serious_group, term_label, soc_label``.
    """
    out = ae.copy().reset_index(drop=True)
    t0 = out["patient_id"].map(first)
    onset = out["onset_dttm"]
    out["day"] = ((onset - t0).dt.total_seconds() / 86400.0).round(1)
    end = t0 + pd.Timedelta(days=teae_days)
    period = np.where(onset.isna(), "treatment-emergent",
                      np.where(onset < t0, "pre-treatment",
                               np.where(onset <= end, "treatment-emergent", "after the TEAE window")))
    out["period"] = period
    out["teae"] = out["period"] == "treatment-emergent"
    out["onset_missing"] = onset.isna()
    after = [None] * len(out)
    if len(out) and len(administrations):
        win = pd.Timedelta(hours=window_hours)
        adm = administrations[["patient_id", "admin_dttm", "number"]]
        for i, (pid, t) in enumerate(zip(out["patient_id"], onset)):
            if pd.isna(t):
                continue
            a = adm[(adm["patient_id"] == pid) & (adm["admin_dttm"] <= t) & (t - adm["admin_dttm"] <= win)]
            if len(a):
                after[i] = int(a.sort_values("admin_dttm")["number"].iloc[-1])
    out["after_administration"] = pd.array(after, dtype="Int64")
    out["infusion_related"] = out["after_administration"].notna().to_numpy(dtype=bool)
    rel = out["relatedness"].astype("string").str.strip().str.lower()
    out["related_group"] = np.select([rel.isin(RELATED).fillna(False).to_numpy(dtype=bool),
                                      rel.isin(NOT_RELATED).fillna(False).to_numpy(dtype=bool)],
                                     ["related", "not related"], "missing")
    ser = out["serious"]
    out["serious_group"] = np.where(ser.isna(), "missing",
                                    np.where(ser.fillna(False).astype(bool), "serious", "non-serious"))
    out["term_label"] = _label(out["term"], "(term missing)") if len(out) else pd.Series(dtype=object)
    out["soc_label"] = _label(out["soc"], "(SOC missing)") if len(out) else pd.Series(dtype=object)
    out["grade"] = pd.to_numeric(out["grade"], errors="coerce").astype("Float64")
    return out


def _row(level: str, category: str, soc: str, term: str, sub: pd.DataFrame, n_total: int) -> dict:
    pts = sub["patient_id"].nunique()
    worst = sub.groupby("patient_id")["grade"].max()
    row = {
        "level": level, "category": category, "soc": soc, "term": term,
        "n_patients": int(pts),
        "pct_patients": round(100.0 * pts / n_total, 1) if n_total else None,
        "n_events": int(len(sub)),
    }
    for g in GRADES:
        row[f"grade_{g}"] = int((worst == g).sum())
    row["grade_missing"] = int(worst.isna().sum())
    return row


def _ordered(sub: pd.DataFrame, col: str) -> list[str]:
    counts = sub.groupby(col)["patient_id"].nunique()
    return sorted(counts.index, key=lambda k: (-counts[k], str(k).casefold(), str(k)))


def count_hierarchy(events: pd.DataFrame, n_total: int, *, total_label: str = "Any TEAE",
                    category_col: str | None = None, categories: dict[str, str] | None = None) -> pd.DataFrame:
    """Patients and events per category, system organ class and preferred term.

    Parameters
    ----------
    events : DataFrame
        Classified AEs (see :func:`classify_events`), already filtered to the ones counted.
    n_total : int
        Denominator of the percentages (treated patients).
    total_label : str
        Label of the first row, counting every event (without categories).
    category_col, categories : optional
        Split first by ``category_col``; ``categories`` maps its values to labels, in display
        order (a category with no events still gets its row).

    Returns
    -------
    DataFrame
        ``level ("any"/"category"/"soc"/"term"), category, soc, term, n_patients, pct_patients,
        n_events, grade_1 .. grade_5, grade_missing`` (patients by worst grade within the row).
    """
    rows = []
    blocks = [(None, total_label, events)] if category_col is None else [
        (value, label, events[events[category_col] == value]) for value, label in categories.items()]
    for value, label, sub in blocks:
        rows.append(_row("any" if value is None else "category", label, "", "", sub, n_total))
        for soc in _ordered(sub, "soc_label"):
            s = sub[sub["soc_label"] == soc]
            rows.append(_row("soc", label, soc, "", s, n_total))
            for term in _ordered(s, "term_label"):
                rows.append(_row("term", label, soc, term, s[s["term_label"] == term], n_total))
    return pd.DataFrame(rows, columns=["level", "category", "soc", "term", "n_patients", "pct_patients",
                                       "n_events", *[f"grade_{g}" for g in GRADES], "grade_missing"])
