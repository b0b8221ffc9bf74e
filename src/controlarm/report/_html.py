"""Report room: assembly of the single self-contained ``index.html`` page.

This module owns the page: its sections and their order, and the inline CSS (screen and print).
The page loads nothing from anywhere (no network, no JavaScript, no external fonts); figures are
inline SVG, and every string that did not originate in the report room is escaped
(:mod:`._markup`).

The page is rendered from the report's saved inputs (``results.json`` and ``analysis/``, see
:mod:`._bundle`), never from live objects, so ``controlarm report`` rebuilds it byte for byte.

Privacy: by default the page holds aggregates, plus the trial patients' courses in the swimmer
plot under the labels "Patient 1..n" with days from index. No patient or hospitalization id and no
patient-level date is written; free text from upstream rooms that may quote rows (data-quality
warnings, outcome notes) is scrubbed of known ids and ISO dates before it is saved. Only when
``study.report.listings`` is true does the page add a listing of matched sets (and the safety
room its listings), with pseudonymous ids (``T-001``, ``C-001``) unless ``study.report.real_ids``
is also true. The footer says which mode the report is in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._markup import FigureCounter, esc
from ._sections import data_quality_section, design_sections, header, listing_section, nav
from ._sections_more import footer, labs_section, manifest_section, methods_section, safety_section, swimmer_section
from ._sections_audit_plan import audit_section, plan_section
from ._sections_outcomes import outcome_sections, sensitivity_section

if TYPE_CHECKING:
    from .._run import StudyRun
    from ._bundle import ReportBundle

__all__ = ["build_html", "render_html"]

_CSS = """
:root { --ink:#1d1d1f; --muted:#5f6368; --rule:#d9d9d9; --warn:#8a4b00; --warnbg:#fff4e0;
        --treated:#0072B2; --control:#D55E00; }
* { box-sizing: border-box; }
html, body { overflow-x: hidden; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main, header, footer, nav { max-width: 1100px; margin: 0 auto; padding: 0 24px; }
.banner { position: sticky; top: 0; z-index: 10; background: #b00020; color: #fff; text-align: center;
          font-weight: 700; letter-spacing: .08em; padding: 10px 16px; font-size: 18px; }
.banner small { display: block; font-weight: 400; letter-spacing: 0; font-size: 13px; }
header { padding-top: 20px; border-bottom: 2px solid var(--ink); padding-bottom: 12px; }
h1 { font-size: 24px; margin: 8px 0; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--rule); }
h3 { font-size: 15px; margin: 20px 0 8px; }
h4 { font-size: 13.5px; margin: 14px 0 6px; }
.meta { color: var(--muted); margin: 4px 0; }
code, .mono, .mono-values td:last-child { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
              font-size: 12.5px; word-break: break-all; }
nav { margin-top: 10px; color: var(--muted); line-height: 1.9; }
nav a { color: inherit; margin-right: 12px; white-space: nowrap; }
table { border-collapse: collapse; margin: 8px 0 4px; width: 100%; font-size: 13px; }
table.compact { width: auto; min-width: 40%; }
th, td { border-bottom: 1px solid var(--rule); padding: 5px 8px; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); background: #fafafa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fcfcfc; }
.scroll { overflow-x: auto; }
table.both-styles td:last-child, table.methods td { font-size: 12px; }
table.outcomes td, table.outcomes th, table.both-styles td, table.methods td { overflow-wrap: break-word; }
ol.reasons { font-size: 12.5px; color: var(--muted); }
table.outcomes td { font-size: 12px; }
.caption { color: var(--muted); font-size: 12.5px; margin: 4px 0 14px; }
figure { margin: 10px 0 18px; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
.group-matched { border-left: 3px solid var(--treated); }
.group-published-style { border-left: 3px solid var(--warn); background: var(--warnbg); }
th.group-published-style { color: var(--warn); }
.group-unmatched { border-left: 3px solid var(--muted); }
.warning { border: 1px solid #e0b060; background: var(--warnbg); color: #4a3000; padding: 8px 12px;
           margin: 10px 0; border-radius: 4px; }
.warning strong { color: var(--warn); }
.methods-text { border-left: 3px solid var(--rule); padding: 2px 14px; background: #fafafa; }
.methods-text p { margin: 8px 0; }
.methods-text ol { font-size: 12.5px; color: var(--muted); }
.panel { border: 1px solid var(--rule); border-radius: 4px; padding: 2px 12px 6px; margin: 12px 0; }
.kind { color: var(--muted); font-size: 12px; }
details > summary { cursor: pointer; color: var(--muted); font-size: 12px; }
details[open] > summary { margin-bottom: 4px; }
.note { color: var(--muted); }
footer { margin-top: 40px; padding-top: 12px; padding-bottom: 40px; border-top: 2px solid var(--ink);
         color: var(--muted); font-size: 12.5px; }
@page { size: A4; margin: 12mm 12mm; }
@page wide { size: A4 landscape; margin: 12mm 12mm; }
@media print {
  body { font-size: 10.5pt; }
  main, header, footer { max-width: none; padding: 0; }
  .banner { position: static; padding: 4px; font-size: 12pt; }
  nav { display: none; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  h3, h4 { break-after: avoid; page-break-after: avoid; }
  figure, tr, .panel, .warning { break-inside: avoid; page-break-inside: avoid; }
  .scroll { overflow: visible; }
  #outcomes { page: wide; }
  figure svg { max-height: 250mm; width: auto; }
  table { font-size: 8.5pt; }
  th, td { padding: 2px 5px; }
  .panel { padding: 0 8px 2px; margin: 6px 0; }
  h3 { margin: 12px 0 4px; }
  thead { display: table-header-group; }
  details > summary { list-style: none; }
  details > summary::after { content: " (in results.json)"; }
  tbody tr:nth-child(even), thead th { background: none; }
  .group-published-style { background: none; }
}
"""


def render_html(bundle: "ReportBundle") -> str:
    """The full report page from a report's saved inputs, as one self-contained HTML string.

    Parameters
    ----------
    bundle : ReportBundle
        ``results.json`` content and the analysis datasets.

    Returns
    -------
    str
        A complete HTML5 document. Deterministic: the same saved inputs give the same bytes (no
        timestamps; figures are rendered with pinned styles and a fixed SVG hash salt).
    """
    listings = bool(bundle.options.get("listings", False))
    fig = FigureCounter()
    title = f"{(bundle.results.get('study') or {}).get('name', '')} — controlarm report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="controlarm">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        header(bundle),
        nav(listings),
        "<main>",
        *design_sections(bundle, fig),
        *outcome_sections(bundle, fig),
        labs_section(bundle, fig),
        swimmer_section(bundle, fig),
        safety_section(bundle),
        sensitivity_section(bundle),
        audit_section(bundle, fig),
        plan_section(bundle, fig),
        methods_section(bundle),
        data_quality_section(bundle),
        listing_section(bundle) if listings else "",
        manifest_section(bundle),
        "</main>",
        footer(bundle, listings),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def build_html(run: "StudyRun") -> str:
    """The report page for ``run`` (rendered from its saved inputs, exactly as the report writer does)."""
    from ._bundle import load_bundle, saved_inputs

    return render_html(load_bundle(saved_inputs(run)))
