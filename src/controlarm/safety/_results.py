"""The safety room's result: an immutable object that renders itself (dict, tables, HTML).

Room: ``safety``. Compute and present are separate (STYLE.md 2): ``summarise_safety`` computes,
``SafetyResults`` only formats. By default every output holds aggregates only; patient-level
listings (ids, days, doses) appear only with ``listings=True``. Every string that reaches HTML
goes through :func:`html.escape` (AE terms come from users).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from .._json import json_safe as _json

__all__ = ["SafetyResults", "CONTEXT_CAVEAT"]

CONTEXT_CAVEAT = "ascertained differently (diagnosis codes vs. active AE collection); context only, not a comparison"

_DEVIATION_LABELS = {
    "missed": "Missed administration", "late": "Late administration", "early": "Early administration",
    "wrong dose": "Wrong dose", "dose not assessable": "Dose not assessable", "extra": "Extra administration",
}
_DEVIATION_PLURALS = {
    "missed": "Missed administrations", "late": "Late administrations", "early": "Early administrations",
    "wrong dose": "Wrong doses", "dose not assessable": "Doses not assessable", "extra": "Extra administrations",
}


def _num(x: Any, digits: int = 4) -> str:
    """A number for display: integers plainly, others with ``digits`` significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.{digits}g}"


def _n_pct(n: Any, pct: Any) -> str:
    if isinstance(n, str):
        return n
    if pct is None or (isinstance(pct, float) and math.isnan(pct)):
        return f"{int(n)}"
    return f"{int(n)} ({pct:.1f}%)"


def _n_of(n: Any, N: int, pct: Any) -> str:
    if isinstance(n, str):
        return f"{n}/{N}"
    return f"{int(n)}/{N}" + ("" if pct is None else f" ({pct:.1f}%)")


def _median_range(stat: dict | None, decimals: int | None = None) -> str:
    """``median (min–max)``; ``decimals`` fixed, or None for up to 4 significant digits."""
    if not stat:
        return "—"
    f = _num if decimals is None else (lambda x: f"{x:.{decimals}f}")
    return f"{f(stat['median'])} ({f(stat['min'])}–{f(stat['max'])})"


def _records(df: pd.DataFrame | None, columns: list[str] | None = None) -> list[dict]:
    if df is None:
        return []
    df = df if columns is None else df[columns]
    return [{k: _json(v) for k, v in row.items()} for row in df.to_dict("records")]


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False, name=None))
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _hier_labels(r: dict, with_category: bool) -> list[str]:
    """Label cells of one hierarchy row: [category,] system organ class, preferred term."""
    if r["level"] in ("any", "category"):
        return [r["category"], "", ""] if with_category else [r["category"], ""]
    term = "All terms" if r["level"] == "soc" else r["term"]
    return ([r["category"]] if with_category else []) + [r["soc"], term]


@dataclass(frozen=True, eq=False)
class SafetyResults:
    """Safety of the trial arm: exposure, adherence, adverse events, deaths, and pool context.

    Built by :func:`controlarm.safety.summarise_safety`; never mutated. The frames it holds are
    copied on the way out.

    Attributes
    ----------
    n_treated, n_controls : int
    product : str
    settings : dict
        The settings used (TEAE window, infusion window, schedule, dose unit, context events,
        small cells).
    conventions : dict
        Counting rules in words (denominator, TEAE edges, infusion window, worst grade,
        relatedness grouping, dose conversion, adherence, small cells).
    notes : tuple of str
        Data notes, aggregate (no ids).
    exposure_summary, adherence : dict
    ae_overview, ae_soc_pt, ae_seriousness, ae_relatedness, infusion_related, deaths, context : DataFrame
        Aggregate tables (numbers; context counts already suppressed when asked).
    context_caveat : str
    administrations, per_patient_exposure, deviations, adverse_events, death_listing : DataFrame
        Patient-level rows, shown only with ``listings=True`` (``deviations`` is None without a
        protocol schedule).
    """

    n_treated: int
    n_controls: int
    product: str
    settings: dict
    conventions: dict
    notes: tuple[str, ...]
    exposure_summary: dict
    adherence: dict
    ae_overview: pd.DataFrame
    ae_soc_pt: pd.DataFrame
    ae_seriousness: pd.DataFrame
    ae_relatedness: pd.DataFrame
    infusion_related: pd.DataFrame
    deaths: pd.DataFrame
    context: pd.DataFrame
    context_caveat: str
    administrations: pd.DataFrame
    per_patient_exposure: pd.DataFrame
    deviations: pd.DataFrame | None
    adverse_events: pd.DataFrame
    death_listing: pd.DataFrame

    # ----------------------------------------------------------------------------- dict
    def to_dict(self, listings: bool = False) -> dict:
        """JSON-ready dict: aggregates only, plus ``"listings"`` (patient ids, days) when asked."""
        hier = ["level", "soc", "term", "n_patients", "pct_patients", "n_events"]
        grades = ["level", "soc", "term", "n_patients", "grade_1", "grade_2", "grade_3", "grade_4", "grade_5",
                  "grade_missing"]
        cat = ["level", "category", "soc", "term", "n_patients", "pct_patients", "n_events"]
        ctx = []
        for r in self.context.to_dict("records"):
            ctx.append({
                "name": r["name"], "codes": list(r["codes"]),
                "controls": {"n": _json(r["n_controls"]), "N": int(r["N_controls"]), "pct": _json(r["pct_controls"])},
                "controls_not_present_on_admission": {"n": _json(r["n_controls_not_poa"]), "N": int(r["N_controls"]),
                                                      "pct": _json(r["pct_controls_not_poa"])},
                "trial": {"n": int(r["n_trial"]), "N": int(r["N_trial"]), "pct": _json(r["pct_trial"])},
                "suppressed": bool(r["suppressed"]),
            })
        out = {
            "n_treated": self.n_treated,
            "n_controls": self.n_controls,
            "product": self.product,
            "settings": _json(self.settings),
            "conventions": dict(self.conventions),
            "notes": list(self.notes),
            "exposure": _json(self.exposure_summary),
            "adherence": _json(self.adherence),
            "adverse_events": {
                "overview": _records(self.ae_overview),
                "by_soc_pt": _records(self.ae_soc_pt, hier),
                "by_grade": _records(self.ae_soc_pt, grades),
                "by_seriousness": _records(self.ae_seriousness, cat),
                "by_relatedness": _records(self.ae_relatedness, cat),
                "infusion_related": _records(self.infusion_related, hier + ["after_administration"]),
            },
            "deaths": _records(self.deaths),
            "context": {
                "caveat": self.context_caveat,
                "suppressed_below": self.settings["small_cell_threshold"] if self.settings["suppress_small_cells"]
                else None,
                "events": ctx,
            },
        }
        if listings:
            out["listings"] = {name: _records(df) for name, df in self._listing_frames().items()}
        return out

    # ----------------------------------------------------------------------------- tables
    def _listing_frames(self) -> dict[str, pd.DataFrame]:
        per = self.per_patient_exposure.copy()
        per["days"] = [", ".join(f"{d:.1f}" for d in v) for v in per["days"]]
        per["doses"] = [", ".join(_num(x) for x in v) for v in per["doses"]]
        per["cumulative_dose"] = [_num(x) for x in per["cumulative_dose"]]
        per = per.drop(columns=["last_day"])
        adm = self.administrations[["patient_id", "number", "day", "dose", "dose_unit", "weight_kg", "dose_target",
                                    "conversion", "route", "lot"]].copy()
        ae = self.adverse_events[["patient_id", "day", "term", "soc", "grade", "serious", "relatedness",
                                  "related_group", "period", "infusion_related", "after_administration",
                                  "outcome"]].copy()
        frames = {"exposure": per, "administrations": adm, "adverse_events": ae, "deaths": self.death_listing.copy()}
        if self.deviations is not None:
            frames["deviations"] = self.deviations.copy()
        return frames

    def tables(self, listings: bool = False) -> dict[str, pd.DataFrame]:
        """Display-ready tables (text cells), for HTML and DOCX.

        Keys: ``exposure, adherence, deviations, ae_overview, ae_by_soc_pt, ae_by_grade,
        ae_by_seriousness, ae_by_relatedness, infusion_related, deaths, context``; with
        ``listings=True`` also ``listing_exposure, listing_administrations, listing_deviations,
        listing_adverse_events, listing_deaths`` (patient ids).
        """
        n = self.n_treated
        out: dict[str, pd.DataFrame] = {}
        es = self.exposure_summary
        unit = es["dose_unit"] or "unit as recorded"
        rows = [("Treated patients", str(es["n_patients"])),
                ("Patients with at least one administration", _n_pct(es["n_patients_exposed"],
                                                                    100.0 * es["n_patients_exposed"] / n)),
                ("Administrations, total", str(es["total_administrations"])),
                ("Administrations per patient, median (range)", _median_range(es["administrations_per_patient"]))]
        for k, v in es["patients_by_number_of_administrations"].items():
            rows.append((f"Patients with {k} administration{'s' if k != '1' else ''}", _n_pct(v, 100.0 * v / n)))
        rows += [(f"Dose per administration ({unit}), median (range)", _median_range(es["dose_per_administration"])),
                 (f"Cumulative dose per patient ({unit}), median (range)",
                  _median_range(es["cumulative_dose_per_patient"])),
                 ("Days from first to last administration, median (range)",
                  _median_range(es["days_first_to_last_administration"], 1))]
        out["exposure"] = pd.DataFrame(rows, columns=["Statistic", "Value"])

        ad = self.adherence
        if ad["schedule"] is None:
            out["adherence"] = pd.DataFrame([("Protocol schedule", ad["message"])], columns=["Statistic", "Value"])
            out["deviations"] = pd.DataFrame([("no protocol schedule given", "", "", "")],
                                             columns=["Deviation", "Administration", "Patients, n (%)", "Deviations"])
        else:
            sc = ad["schedule"]
            dose = ""
            if sc.get("dose_min") is not None or sc.get("dose_max") is not None:
                dose = (f"; dose {_num(sc.get('dose_min'))}–{_num(sc.get('dose_max'))} {sc.get('dose_unit') or ''}"
                        ).rstrip()
            text = (f"{sc['n_administrations']} administration(s), {_num(sc['interval_hours'])} h apart "
                    f"(± {_num(sc['tolerance_hours'])} h){dose}")
            rows = [("Protocol schedule", text),
                    ("Patients with every administration per protocol",
                     _n_pct(ad["n_patients_per_protocol"], 100.0 * ad["n_patients_per_protocol"] / n)),
                    ("Patients with at least one deviation",
                     _n_pct(ad["n_patients_with_deviation"], 100.0 * ad["n_patients_with_deviation"] / n))]
            for kind, v in ad["by_kind"].items():
                rows.append((f"{_DEVIATION_PLURALS[kind]}: deviations (patients)",
                             f"{v['n_deviations']} ({v['n_patients']})"))
            out["adherence"] = pd.DataFrame(rows, columns=["Statistic", "Value"])
            dev = [(_DEVIATION_LABELS[r["kind"]], "—" if r["administration"] is None else str(r["administration"]),
                    _n_pct(r["n_patients"], 100.0 * r["n_patients"] / n), str(r["n_deviations"]))
                   for r in ad["by_administration"]]
            if not dev:
                dev = [("None", "", _n_pct(0, 0.0), "0")]
            out["deviations"] = pd.DataFrame(dev, columns=["Deviation", "Administration", "Patients, n (%)",
                                                           "Deviations"])

        out["ae_overview"] = pd.DataFrame(
            [(r["label"], _n_pct(r["n_patients"], r["pct_patients"]), str(r["n_events"]))
             for r in self.ae_overview.to_dict("records")], columns=["Category", "Patients, n (%)", "Events"])
        out["ae_by_soc_pt"] = pd.DataFrame(
            [_hier_labels(r, False) + [_n_pct(r["n_patients"], r["pct_patients"]), str(r["n_events"])]
             for r in self.ae_soc_pt.to_dict("records")],
            columns=["System organ class", "Preferred term", "Patients, n (%)", "Events"])
        grade_cols = [f"grade_{g}" for g in range(1, 6)]
        show_missing = bool((self.ae_soc_pt["grade_missing"] > 0).any()) if len(self.ae_soc_pt) else False
        rows = []
        for r in self.ae_soc_pt.to_dict("records"):
            cells = [_n_pct(r[c], round(100.0 * r[c] / n, 1)) for c in grade_cols]
            if show_missing:
                cells.append(_n_pct(r["grade_missing"], round(100.0 * r["grade_missing"] / n, 1)))
            rows.append(_hier_labels(r, False) + cells + [_n_pct(r["n_patients"], r["pct_patients"])])
        out["ae_by_grade"] = pd.DataFrame(
            rows, columns=["System organ class", "Preferred term", *[f"Grade {g}" for g in range(1, 6)],
                           *(["Grade missing"] if show_missing else []), "Any grade"])
        for key, frame, head in (("ae_by_seriousness", self.ae_seriousness, "Seriousness"),
                                 ("ae_by_relatedness", self.ae_relatedness, "Relatedness")):
            out[key] = pd.DataFrame(
                [_hier_labels(r, True) + [_n_pct(r["n_patients"], r["pct_patients"]), str(r["n_events"])]
                 for r in frame.to_dict("records")],
                columns=[head, "System organ class", "Preferred term", "Patients, n (%)", "Events"])
        out["infusion_related"] = pd.DataFrame(
            [_hier_labels(r, False) + [_n_pct(r["n_patients"], r["pct_patients"]), str(r["n_events"]),
                                      "; ".join(f"#{k}: {v}" for k, v in r["after_administration"].items())]
             for r in self.infusion_related.to_dict("records")],
            columns=["System organ class", "Preferred term", "Patients, n (%)", "Events",
                     "After administration (events)"])
        out["deaths"] = pd.DataFrame(
            [(r["label"], r["soc"], r["term"], _n_pct(r["n_patients"], r["pct_patients"]),
              "" if r["n_events"] is None or pd.isna(r["n_events"]) else str(int(r["n_events"])))
             for r in self.deaths.to_dict("records")],
            columns=["Category", "System organ class", "Preferred term", "Patients, n (%)", "Events"])
        out["context"] = pd.DataFrame(
            [(r["name"], ", ".join(r["codes"]), _n_of(r["n_controls"], r["N_controls"], r["pct_controls"]),
              _n_of(r["n_controls_not_poa"], r["N_controls"], r["pct_controls_not_poa"]),
              _n_of(r["n_trial"], r["N_trial"], r["pct_trial"]), self.context_caveat)
             for r in self.context.to_dict("records")],
            columns=["Event", "ICD-10 codes", "Matched controls, n/N (%)",
                     "Matched controls, not present on admission, n/N (%)",
                     "Treated patients (own diagnosis codes), n/N (%)", "Note"])
        if listings:
            for name, df in self._listing_frames().items():
                out[f"listing_{name}"] = df
        return out

    # ----------------------------------------------------------------------------- html
    def to_html(self, listings: bool = False) -> str:
        """An HTML fragment: ``<h3>`` sub-headings and ``<table class="data">`` tables, all text escaped."""
        t = self.tables(listings=listings)
        parts = ['<div class="safety">',
                 f"<p>Trial arm: {_e(self.n_treated)} treated patient(s), product {_e(self.product)}; "
                 f"{_e(self.n_controls)} matched control(s) for context.</p>"]

        def section(title: str, key: str, note: str | None = None) -> None:
            parts.append(f"<h3>{_e(title)}</h3>")
            if note:
                parts.append(f'<p class="note">{_e(note)}</p>')
            parts.append(_html_table(t[key]))

        teae = self.settings["teae_days"]
        section("Exposure", "exposure")
        section("Adherence to the protocol schedule", "adherence",
                None if self.adherence["schedule"] is not None else "No protocol schedule given.")
        section("Protocol deviations", "deviations")
        section("Adverse events: overview", "ae_overview", self.conventions["treatment_emergent"])
        section("Treatment-emergent adverse events by system organ class and preferred term", "ae_by_soc_pt",
                self.conventions["counting"])
        section("Treatment-emergent adverse events by worst CTCAE grade", "ae_by_grade",
                "Patients by their worst CTCAE v5.0 grade within each row.")
        section("Treatment-emergent adverse events by seriousness", "ae_by_seriousness")
        section("Treatment-emergent adverse events by relatedness", "ae_by_relatedness",
                self.conventions["relatedness"])
        section("Infusion-related adverse events", "infusion_related", self.conventions["infusion_related"])
        section(f"Deaths (follow-up to day {teae} and beyond)", "deaths", self.conventions["deaths"])
        parts.append("<h3>Context from the matched pool</h3>")
        if len(self.context):
            parts.append(f'<p class="warning">Context only: {_e(self.context_caveat)}.</p>')
            parts.append(_html_table(t["context"]))
        else:
            parts.append('<p class="note">No context events given (safety.context_events).</p>')
        if self.notes:
            parts.append("<h3>Data notes</h3><ul>" + "".join(f"<li>{_e(x)}</li>" for x in self.notes) + "</ul>")
        parts.append("<h3>Conventions</h3><ul>" + "".join(f"<li>{_e(v)}</li>" for v in self.conventions.values())
                     + "</ul>")
        if listings:
            parts.append('<p class="warning">Patient-level listings (listings = true): pseudonymous ids; handle '
                         "as patient-level data.</p>")
            titles = {"listing_exposure": "Listing: exposure per patient",
                      "listing_administrations": "Listing: administrations",
                      "listing_deviations": "Listing: protocol deviations",
                      "listing_adverse_events": "Listing: adverse events",
                      "listing_deaths": "Listing: deaths"}
            for key, title in titles.items():
                if key in t:
                    section(title, key)
        parts.append("</div>")
        return "".join(parts)
