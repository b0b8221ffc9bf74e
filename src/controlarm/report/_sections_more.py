"""Report room: the page's later sections: lab trajectories, swimmer plot, safety, methods and the
reproducibility manifest.

Patient-level pictures (the swimmer plot and its adverse-event key) name trial patients
"Patient 1" to "Patient n" and give days from index only; no id and no date reaches the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import _figures_patients
from ._format import fmt_num
from ._markup import FigureCounter, cell, esc, figure, table
from ._methods import methods_paragraphs, methods_references
from ._privacy import id_mode
from ._results import results_from_dict
from ._sections import ratio_text
from ._tables import methods_table

if TYPE_CHECKING:
    from ._bundle import ReportBundle

__all__ = ["footer", "labs_section", "manifest_section", "methods_section", "safety_section", "swimmer_section"]


def _horizon(b: "ReportBundle") -> float:
    spec_out = (b.results.get("spec") or {}).get("outcomes") or {}
    return float(max(spec_out.get("survival_days") or [60]))


def labs_section(b: "ReportBundle", fig: FigureCounter) -> str:
    adlb = b.dataset("adlb")
    if adlb.empty:
        body = '<p class="note">No lab values were recorded for the matched patients.</p>'
    else:
        svg = _figures_patients.labs_svg(adlb)
        body = figure(svg, "labs", "Lab trajectories by arm",
                      "Lab values by day from index: median (line) and interquartile range (band) across patients "
                      "of each arm; each patient contributes the median of that day's values. The axis stops at "
                      "the last day with at least three patients measured in either arm. Values in harmonised "
                      "units; all measurements are in analysis/adlb.parquet.", fig())
    return '<section id="labs"><h2>Lab trajectories</h2>' + body + "</section>"


def swimmer_section(b: "ReportBundle", fig: FigureCounter) -> str:
    adsl = b.dataset("adsl")
    support = b.dataset("trajectories_support")
    events = b.dataset("trajectories_events")
    if adsl.empty or not (adsl["ARM"] == "treated").any():
        return ('<section id="swimmer"><h2>Swimmer plot of trial patients</h2>'
                '<p class="note">No trial patient was matched.</p></section>')
    svg = _figures_patients.swimmer_svg(adsl, support, events, horizon=_horizon(b))
    parts = ['<section id="swimmer"><h2>Swimmer plot of trial patients</h2>',
             figure(svg, "swimmer", "Swimmer plot of each trial patient's respiratory support and events",
                    "Each trial patient's course by day from index (day 0, the first administration): bars show "
                    "respiratory support coloured by level (room air < nasal cannula or face mask < high-flow "
                    "nasal cannula < NIPPV or CPAP < IMV < ECMO), the black line below a bar the ICU stay, and "
                    "markers the administrations, adverse events (numbered, see the key), discharge and death. "
                    "Patients are numbered in the order of their matched sets.", fig())]
    ev = _figures_patients.swimmer_events(adsl, events)
    ae = ev[ev["kind"] == "adverse_event"]
    if not ae.empty:
        key = pd.DataFrame({"number": ae["number"].astype(str), "patient": [f"Patient {p}" for p in ae["patient"]],
                            "day": [fmt_num(d, 1) for d in ae["day"]], "term": ae["label"].astype(str)})
        parts.append("<h3>Adverse events on the swimmer plot</h3>"
                     + table(key, [("number", "No."), ("patient", "Patient"), ("day", "Day from index"),
                                   ("term", "Term")], numeric=("number", "day"), cls="compact"))
    parts.append("</section>")
    return "".join(parts)


def safety_section(b: "ReportBundle") -> str:
    if b.safety_html is None:
        body = ('<p class="note">Safety analysis not computed: the safety room did not run for this report, so '
                "exposure and adverse-event tables are not shown.</p>")
    else:
        body = f'<div class="safety">{b.safety_html}</div>'
    return '<section id="safety"><h2>Safety</h2>' + body + "</section>"


def _settings(b: "ReportBundle") -> pd.DataFrame:
    m = b.results.get("matching") or {}

    def show(v: Any) -> str:
        if v is None:
            return "none"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, (list, tuple)):
            return ", ".join(map(str, v)) or "none"
        return str(v)

    rows = [("Matching method", show(m.get("method"))),
            ("Distance", show(m.get("distance"))),
            ("Ratio (treated:controls)", ratio_text(b)),
            ("Distance covariates", show(m.get("covariates"))),
            ("Exact matching on", show(m.get("exact"))),
            ("Caliper", show(m.get("caliper"))),
            ("Controls reused (replacement)", show(m.get("replace"))),
            ("SMD denominator", str(m.get("smd_denominator") or "not stated")),
            ("Table 1 quantiles", "linear interpolation (Hyndman & Fan type 7)"),
            ("Table 1 SD", "sample SD (n − 1 denominator)")]
    return pd.DataFrame(rows, columns=["setting", "value"])


def methods_section(b: "ReportBundle") -> str:
    defs = b.results.get("endpoint_definitions") or {}
    dtab = pd.DataFrame(
        [{"name": n, "label": d.get("label", ""), "kind": str(d.get("kind", "")).replace("_", " "),
          "definition": d.get("definition", ""), "unit": d.get("unit") or "—"} for n, d in defs.items()],
        columns=["name", "label", "kind", "definition", "unit"],
    )
    order = (b.results.get("analysis") or {}).get("outcome_order") or []
    if order:
        dtab = dtab.assign(_o=dtab["name"].map({n: i for i, n in enumerate(order)}).fillna(len(order)))
        dtab = dtab.sort_values("_o", kind="mergesort").drop(columns="_o")
    text = "".join(f"<p>{esc(p)}</p>" for p in methods_paragraphs(b.results))
    refs = methods_references(b.results)
    refs_html = ("<h4>References</h4><ol>" + "".join(f"<li>{esc(r)}</li>" for r in refs) + "</ol>") if refs else ""
    mt = methods_table(results_from_dict(b.results))
    return (
        '<section id="methods"><h2>Methods and conventions</h2>'
        '<h3>Methods text</h3><p class="caption">Generated from the study file and the results; ready to paste '
        "into a protocol or manuscript.</p>"
        f'<div class="methods-text">{text}{refs_html}</div>'
        "<h3>Matching and balance</h3>" + table(_settings(b), [("setting", "Setting"), ("value", "Value")])
        + "<h3>Endpoint definitions</h3>"
        + table(dtab, [("name", "Name"), ("label", "Label"), ("kind", "Kind"), ("definition", "Definition"),
                       ("unit", "Unit")])
        + "<h3>Tests and estimates</h3>"
        + '<p class="caption">Every test and estimate with its method; open "conventions" for every choice needed '
        "to redo the number, and its reference (on screen; the same text is in results.json).</p>"
        + _methods_table(mt)
        + '<p class="caption">Kaplan–Meier curves: lifelines KaplanMeierFitter per arm, unweighted; numbers at '
        "risk are those still under observation at each tick (KMunicate; Morris et al., BMJ Open "
        "2019;9:e030215, doi:10.1136/bmjopen-2019-030215). Balance threshold |SMD| &lt; 0.1 (Austin, Stat Med "
        "2009;28:3083–3107, doi:10.1002/sim.3697).</p></section>"
    )


def _methods_table(mt: pd.DataFrame) -> str:
    """The tests-and-estimates table; conventions and reference folded into a ``<details>`` per row."""
    head = "".join(f"<th>{esc(h)}</th>" for h in ("Outcome", "Name", "Type", "Framing", "Method", "Conventions"))
    body = []
    for r in mt.to_dict("records"):
        detail = cell(r["conventions"]) + (f'<br><span class="kind">Reference: {esc(r["reference"])}</span>'
                                           if r["reference"] and r["reference"] != "—" else "")
        body.append("<tr>" + "".join(f"<td>{cell(r[k])}</td>" for k in ("outcome", "name", "type", "framing", "method"))
                    + f"<td><details><summary>conventions</summary>{detail}</details></td></tr>")
    return (f'<div class="scroll"><table class="methods"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _input_rows(inputs: Any) -> pd.DataFrame:
    rows = []
    if isinstance(inputs, Mapping):
        for name, entry in sorted(inputs.items()):
            if isinstance(entry, Mapping):
                rows.append({"input": str(name), "file": str(entry.get("path", "")), "sha256": str(entry.get("sha256", ""))})
            else:
                rows.append({"input": str(name), "file": "", "sha256": str(entry)})
    return pd.DataFrame(rows, columns=["input", "file", "sha256"])


def manifest_section(b: "ReportBundle") -> str:
    r = b.results
    rep = r.get("reproducibility") or {}
    study = r.get("study") or {}
    facts = [("controlarm", r.get("controlarm_version")), ("results.json schema", r.get("schema_version")),
             ("Study specification SHA-256", study.get("spec_hash") or rep.get("spec_hash")),
             ("Seed", study.get("seed", rep.get("seed"))), ("Python", rep.get("python")),
             ("Platform", rep.get("platform"))]
    ftab = pd.DataFrame([{"item": k, "value": "" if v is None else str(v)} for k, v in facts if v is not None],
                        columns=["item", "value"])
    pk = pd.DataFrame([{"package": str(k), "version": str(v)} for k, v in sorted((rep.get("packages") or {}).items())],
                      columns=["package", "version"])
    inputs = _input_rows(rep.get("inputs"))
    files = (r.get("files") or {}).get("datasets") or {}
    ds = pd.DataFrame([{"dataset": k.upper() if k.startswith("ad") else k, "file": v} for k, v in files.items()],
                      columns=["dataset", "file"])
    parts = ['<section id="manifest"><h2>Reproducibility manifest</h2>',
             table(ftab, [("item", "Item"), ("value", "Value")], cls="mono-values"),
             "<h3>Software</h3>",
             table(pk, [("package", "Package"), ("version", "Version")], cls="compact") if len(pk)
             else '<p class="note">No package versions recorded.</p>',
             "<h3>Input files</h3>",
             table(inputs, [("input", "Table"), ("file", "File"), ("sha256", "SHA-256")], cls="mono-values")
             if len(inputs) else '<p class="note">No input file hashes recorded.</p>']
    if len(ds):
        parts += ["<h3>Analysis datasets</h3>", table(ds, [("dataset", "Dataset"), ("file", "File")], cls="compact")]
    parts.append('<p class="caption"><code>manifest.json</code>, beside this page, adds the SHA-256 of every '
                 "output file and the run's timings. <code>controlarm report</code> rebuilds this page, "
                 "<code>tables.docx</code> and the CSVs from <code>results.json</code> and <code>analysis/</code> "
                 "without recomputing.</p></section>")
    return "".join(parts)


def footer(b: "ReportBundle", listings: bool) -> str:
    """The page's last line: where its numbers come from, and which ids the report carries."""
    page = ("This page includes patient-level listings (matched sets, and the safety listings when the safety "
            "room ran)." if listings else
            "This page shows aggregates, and trial patients numbered 1 to n with days from index only: no "
            "patient id and no patient-level date.")
    privacy = f"{page} {id_mode({**b.options, 'listings': listings})}"
    return (
        "<footer><p>Generated by controlarm "
        f"{esc(b.results.get('controlarm_version'))} from results.json (schema {esc(b.results.get('schema_version'))}). "
        f"All numbers shown here are in <code>results.json</code>. {esc(privacy)}</p></footer>"
    )
