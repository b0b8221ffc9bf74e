"""Report room: assembly of the single self-contained ``index.html`` page.

This module owns the page: its sections, their order, the inline CSS, escaping and the privacy
rule. The page loads nothing from anywhere (no network, no JavaScript, no external fonts); figures
are inline SVG from :mod:`._figures`, tables come from :mod:`._tables`. Every string that did not
originate in this module goes through :func:`html.escape`.

Privacy: by default the page holds aggregates only. No patient or hospitalization id and no
patient-level date is written; free text from upstream rooms that may quote rows (data-quality
warnings, outcome notes) is scrubbed of known ids and of ISO dates. Only when
``study.report.listings`` is true does the page add a listing of matched sets with patient ids.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import _figures, _tables
from ._privacy import id_scrubber, scrub_dates

if TYPE_CHECKING:
    from .._run import StudyRun

__all__ = ["build_html", "package_versions"]

#: Packages whose versions the provenance footer reports when the run did not record them.
PACKAGES = ("controlarm", "numpy", "scipy", "pandas", "statsmodels", "lifelines", "matplotlib",
            "duckdb", "pyarrow", "pydantic")

_CSS = """
:root { --ink:#1d1d1f; --muted:#5f6368; --rule:#d9d9d9; --warn:#8a4b00; --warnbg:#fff4e0;
        --treated:#0072B2; --control:#D55E00; }
* { box-sizing: border-box; }
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
.meta { color: var(--muted); margin: 4px 0; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
              word-break: break-all; }
nav { margin-top: 10px; color: var(--muted); }
nav a { color: inherit; margin-right: 12px; }
table { border-collapse: collapse; margin: 8px 0 4px; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid var(--rule); padding: 5px 8px; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); background: #fafafa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fcfcfc; }
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
.tag { display: inline-block; font-size: 11px; padding: 0 5px; border-radius: 3px; background: #eef2f7;
       color: #34495e; margin-left: 4px; }
.kind { color: var(--muted); font-size: 12px; }
.note { color: var(--muted); }
footer { margin-top: 40px; padding-top: 12px; padding-bottom: 40px; border-top: 2px solid var(--ink);
         color: var(--muted); font-size: 12.5px; }
footer h2 { border: 0; color: var(--ink); }
@media print { .banner { position: static; } nav { display: none; } section { break-inside: auto; }
               figure, table { break-inside: avoid; } }
"""


# --------------------------------------------------------------------------- small helpers
def _e(value: Any) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def _cell(value: Any) -> str:
    """Escape, keeping line breaks of multi-entry cells."""
    return _e(value).replace("\n", "<br>")


def _table(df: pd.DataFrame, columns: Sequence[tuple[str, str]], *, numeric: Iterable[str] = (),
           cls: str = "") -> str:
    """A table of ``df``: ``columns`` is (key, header text) pairs; every cell escaped."""
    numeric = set(numeric)
    num = ' class="num"'
    head = "".join(f"<th{num if k in numeric else ''}>{_e(h)}</th>" for k, h in columns)
    body = []
    for row in df.to_dict("records"):
        tds = "".join(f"<td{num if k in numeric else ''}>{_cell(row.get(k, ''))}</td>" for k, _ in columns)
        body.append(f"<tr>{tds}</tr>")
    cls_attr = f' class="{_e(cls)}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _inline_svg(svg: str, prefix: str, label: str) -> str:
    """An SVG ready to inline: ids namespaced by ``prefix`` (several SVGs share one page), labelled."""
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    svg = re.sub(r'((?:xlink:)?href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{prefix}-{m.group(2)}"', svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_e(label)}" ', 1)


def _figure(svg: str, prefix: str, label: str, caption: str) -> str:
    return (f'<figure id="fig-{_e(prefix)}">{_inline_svg(svg, prefix, label)}'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _ul(items: Iterable[str]) -> str:
    lis = "".join(f"<li>{_e(i)}</li>" for i in items)
    return f"<ul>{lis}</ul>" if lis else "<p class=\"note\">None.</p>"


def package_versions(run: "StudyRun") -> dict[str, str]:
    """Package versions recorded in the run's provenance, else those installed now."""
    prov = run.provenance or {}
    for key in ("packages", "package_versions", "versions"):
        if isinstance(prov.get(key), Mapping) and prov[key]:
            return {str(k): str(v) for k, v in sorted(prov[key].items())}
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _ratio_text(run: "StudyRun") -> str:
    ratio = getattr(run.results, "ratio", None) or getattr(run.study.matching, "ratio", "")
    text = str(ratio)
    return text if ":" in text else f"1:{text}"


# --------------------------------------------------------------------------- sections
def _header(run: "StudyRun") -> str:
    s = run.study.study
    banner = ""
    if getattr(s, "synthetic", False):
        banner = ('<div class="banner" role="note">SYNTHETIC DATA'
                  "<small>Every patient in this report is simulated. No result here describes real "
                  "patients or supports any clinical conclusion.</small></div>")
    desc = "".join(f"<p>{_e(p.strip())}</p>" for p in str(getattr(s, "description", "") or "").split("\n\n")
                   if p.strip())
    return (
        f"{banner}<header><h1>{_e(s.name)}</h1>"
        f'<p class="meta">Registration: <strong>{_e(s.registration or "—")}</strong> · '
        f"Seed: <span class=\"mono\">{_e(s.seed)}</span></p>"
        f'<p class="meta">Study specification SHA-256: <code>{_e(run.study.spec_hash)}</code></p>'
        f"{desc}</header>"
    )


def _nav(listings: bool) -> str:
    links = [("flow", "Patient flow"), ("table1", "Table 1"), ("balance", "Balance"),
             ("outcomes", "Outcomes"), ("survival", "Kaplan–Meier"), ("methods", "Methods"),
             ("data-quality", "Data quality")]
    if listings:
        links.append(("listing", "Listing"))
    links.append(("provenance", "Provenance"))
    return "<nav>" + "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in links) + "</nav>"


def _flow_section(run: "StudyRun") -> str:
    svg = _figures.flow_svg(run.flow, run.matched, _ratio_text(run))
    table = _table(
        _tables.flow_table(run.flow),
        [("group", "Group"), ("stage", "Stage"), ("n_in", "n in"), ("excluded", "Excluded (reason: n)"),
         ("n_excluded", "n excluded"), ("n_out", "n out")],
        numeric=("n_in", "n_excluded", "n_out"),
    )
    counts = _tables.matched_counts(run.matched)
    return (
        '<section id="flow"><h2>Patient flow</h2>'
        + _figure(svg, "flow", "Patient flow diagram",
                  "Figure 1. Flow of trial patients and candidate controls through eligibility, index "
                  "and matching. A patient is counted under its first failing criterion only.")
        + table
        + f'<p class="caption">Matched: {counts["n_sets"]} sets, {counts["n_treated"]} treated and '
        f'{counts["n_controls"]} controls ({counts["n_controls_unique"]} distinct).</p></section>'
    )


def _table1_section(run: "StudyRun") -> str:
    m = run.study.matching
    t1 = _tables.table_one(
        run.baseline, run.matched, run.covariate_kinds, run.balance,
        nonnormal=getattr(run.study.report, "nonnormal", ()) or (),
        matching_covariates=list(getattr(m, "covariates", ()) or ()),
        exact=list(getattr(m, "exact", ()) or ()),
    )
    n = t1.attrs["n"]
    t1 = t1.assign(label=[
        f"{c}, {s}" + (f" [{u}]" if u else "") for c, s, u in zip(t1["covariate"], t1["statistic"], t1["used_in_matching"])
    ])
    matched_head = f"Matched controls (n = {n['matched']})"
    if n["matched_unique"] != n["matched"]:
        matched_head = f"Matched controls (n = {n['matched']}; {n['matched_unique']} distinct)"
    table = _table(
        t1,
        [("label", "Covariate"), ("treated", f"Treated (n = {n['treated']})"),
         ("pool", f"Pool before matching (n = {n['pool']})"), ("matched", matched_head),
         ("smd_before", "SMD before"), ("smd_after", "SMD after")],
        numeric=("smd_before", "smd_after"),
    )
    denom = t1.attrs.get("smd_denominator") or "not stated by the matching room"
    return (
        '<section id="table1"><h2>Baseline characteristics (Table 1)</h2>' + table
        + '<p class="caption">Covariates as of each patient\'s index. Binary: n (%) of those observed; '
        "continuous: mean (SD) unless marked median [IQR]; missing values are counted per cell. "
        "[distance] = used in the matching distance; [exact] = matched exactly. Matched controls are "
        "counted once per set they belong to, unweighted. SMD = standardised mean difference, treated "
        f"minus comparison group; denominator: {_e(denom)}. SMD before compares treated with the "
        "pool; SMD after compares treated with matched controls.</p></section>"
    )


def _balance_section(run: "StudyRun") -> str:
    svg = _figures.love_svg(run.balance)
    return (
        '<section id="balance"><h2>Covariate balance (Love plot)</h2>'
        + _figure(svg, "love", "Love plot of absolute standardised mean differences",
                  "Figure 2. Absolute standardised mean difference per covariate before matching "
                  "(treated vs pool, open circles) and after (treated vs matched controls, filled). "
                  "Dashed line: 0.1.")
        + "</section>"
    )


def _outcomes_section(run: "StudyRun", scrub: Callable[[str], str]) -> str:
    ot = _tables.outcomes_table(run.results)
    framings = ot.attrs["framings"]
    titles = {"matched": "Matched-set analysis (primary)", "published-style": "Published-style analysis",
              "unmatched": "Unmatched analysis"}
    head1 = '<th rowspan="2">Outcome</th><th rowspan="2">Treated</th><th rowspan="2">Control</th>'
    head2 = ""
    for f in framings:
        head1 += f'<th colspan="2" class="group-{_e(f)}">{_e(titles[f])}</th>'
        head2 += f'<th class="group-{_e(f)}">Test: p-value</th><th class="group-{_e(f)}">Estimate (CI)</th>'
    notes: list[str] = []
    body = []
    for row in ot.to_dict("records"):
        marks = ""
        for w in filter(None, row["warnings"].split("\n")):
            if w not in notes:
                notes.append(w)
            k = notes.index(w) + 1
            marks += f' <sup><a href="#warn-{k}" title="Published-style warning {k}">⚠{k}</a></sup>'
        tds = (f'<td><strong>{_e(row["label"])}</strong><br><span class="kind">{_e(row["kind"].replace("_", " "))}'
               f"</span></td><td>{_cell(row['treated'])}</td><td>{_cell(row['control'])}</td>")
        for f in framings:
            extra = marks if f == "published-style" else ""
            tds += (f'<td class="group-{_e(f)}">{_cell(row[f + "_tests"])}{extra}</td>'
                    f'<td class="group-{_e(f)}">{_cell(row[f + "_estimates"])}</td>')
        body.append(f"<tr>{tds}</tr>")
    warn_html = ""
    if notes:
        items = "".join(f'<li id="warn-{i}">{_e(w)}</li>' for i, w in enumerate(notes, 1))
        warn_html = ('<div class="warning" role="note"><strong>⚠ Published-style results ignore the matched '
                     "structure.</strong> They reproduce what papers commonly report and are shown for "
                     f"comparison only; they are not the primary analysis.<ol>{items}</ol></div>")
    outcome_notes = [f"{o.label}: {scrub(n)}" for o in run.results.outcomes for n in o.notes]
    notes_html = f"<h3>Notes</h3>{_ul(outcome_notes)}" if outcome_notes else ""
    return (
        '<section id="outcomes"><h2>Outcomes</h2>'
        f'<p class="caption">{run.results.n_sets} matched sets ({_e(_ratio_text(run))}). Binary: events/n (%); '
        "continuous and counts: median [Q1–Q3]. Tests and estimates are grouped by framing: the matched-set "
        "analysis respects the matched structure and is primary.</p>"
        f"<table><thead><tr>{head1}</tr><tr>{head2}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        + warn_html + notes_html + "</section>"
    )


def _survival_section(run: "StudyRun") -> str:
    tte = [ep for ep in run.endpoint_defs if ep.kind == "time_to_event"]
    figs = []
    for i, ep in enumerate(tte, start=1):
        if ep.column not in run.endpoints.columns or ep.event_column not in run.endpoints.columns:
            figs.append(f'<p class="note">{_e(ep.label)}: columns missing from the endpoint frame.</p>')
            continue
        svg = _figures.km_svg(run.endpoints, ep)
        figs.append(_figure(svg, f"km{i}", f"Kaplan–Meier curves: {ep.label}",
                            f"Figure {2 + i}. {ep.label}: Kaplan–Meier estimate by arm with 95% pointwise "
                            "confidence bands (exponential Greenwood); + marks censoring; numbers at risk "
                            f"below the axis. {ep.definition}"))
    if not figs:
        figs.append('<p class="note">No time-to-event endpoint in this study.</p>')
    return '<section id="survival"><h2>Kaplan–Meier curves</h2>' + "".join(figs) + "</section>"


def _settings_rows(run: "StudyRun") -> list[tuple[str, str]]:
    m = run.study.matching

    def show(v: Any) -> str:
        if v is None:
            return "none"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, (list, tuple)):
            return ", ".join(map(str, v)) or "none"
        return str(v)

    rows = [("Matching method", show(getattr(m, "method", None))),
            ("Distance", show(getattr(m, "distance", None))),
            ("Ratio (treated:controls)", _ratio_text(run)),
            ("Distance covariates", show(getattr(m, "covariates", None))),
            ("Exact matching on", show(getattr(m, "exact", None))),
            ("Caliper", show(getattr(m, "caliper", None))),
            ("Controls reused (replacement)", show(getattr(m, "replace", None))),
            ("SMD denominator", str(run.balance.attrs.get("smd_denominator") or "not stated")),
            ("Table 1 quantiles", "linear interpolation (Hyndman & Fan type 7)"),
            ("Table 1 SD", "sample SD (n − 1 denominator)")]
    return rows


def _methods_section(run: "StudyRun") -> str:
    settings = pd.DataFrame(_settings_rows(run), columns=["setting", "value"])
    defs = pd.DataFrame(
        [{"name": ep.name, "label": ep.label, "kind": ep.kind.replace("_", " "), "definition": ep.definition,
          "unit": ep.unit or "—"} for ep in run.endpoint_defs],
        columns=["name", "label", "kind", "definition", "unit"],
    )
    mt = _tables.methods_table(run.results)
    return (
        '<section id="methods"><h2>Methods and conventions</h2>'
        "<h3>Matching and balance</h3>" + _table(settings, [("setting", "Setting"), ("value", "Value")])
        + "<h3>Endpoint definitions</h3>"
        + _table(defs, [("name", "Name"), ("label", "Label"), ("kind", "Kind"), ("definition", "Definition"),
                        ("unit", "Unit")])
        + "<h3>Tests and estimates</h3>"
        + _table(mt, [("outcome", "Outcome"), ("name", "Name"), ("type", "Type"), ("framing", "Framing"),
                      ("method", "Method"), ("conventions", "Conventions"), ("reference", "Reference")])
        + '<p class="caption">Kaplan–Meier curves: lifelines KaplanMeierFitter per arm, unweighted; numbers at '
        "risk are those still under observation at each tick (KMunicate; Morris et al., BMJ Open "
        "2019;9:e030215, doi:10.1136/bmjopen-2019-030215). Balance threshold |SMD| &lt; 0.1 (Austin, Stat Med "
        "2009;28:3083–3107, doi:10.1002/sim.3697).</p></section>"
    )


def _data_quality_section(run: "StudyRun", scrub: Callable[[str], str]) -> str:
    dq = run.data_quality or {}
    warnings = [scrub(w) for w in dq.get("warnings", [])]
    tables = dq.get("tables", {}) or {}
    tdf = pd.DataFrame([{"table": str(k), "rows": str(v)} for k, v in sorted(tables.items())],
                       columns=["table", "rows"])
    table_html = (_table(tdf, [("table", "Table"), ("rows", "Rows")], numeric=("rows",)) if len(tdf)
                  else '<p class="note">No table counts recorded.</p>')
    return (
        '<section id="data-quality"><h2>Data quality</h2>'
        f"<h3>Warnings ({len(warnings)})</h3>{_ul(warnings)}"
        f"<h3>Rows read per table</h3>{table_html}</section>"
    )


def _listing_section(run: "StudyRun") -> str:
    listing = _tables.sort_matched(run.matched)
    listing = listing.assign(
        weight=[_tables.fmt_num(v, 3) for v in listing["weight"]],
        distance=[_tables.fmt_num(v) if pd.notna(v) else "—" for v in listing["distance"]],
    )
    return (
        '<section id="listing"><h2>Listing of matched sets</h2>'
        '<p class="warning" role="note"><strong>Patient-level listing</strong> (report.listings = true). '
        "Pseudonymous ids; handle this page as patient-level data.</p>"
        + _table(listing, [("set_id", "Set"), ("role", "Role"), ("patient_id", "Patient id"),
                           ("weight", "Weight"), ("distance", "Distance")], numeric=("weight", "distance"))
        + "</section>"
    )


def _footer(run: "StudyRun", listings: bool) -> str:
    from .. import __version__

    versions = package_versions(run)
    pk = ", ".join(f"{_e(k)} {_e(v)}" for k, v in versions.items())
    privacy = ("This page includes a patient-level listing of matched sets." if listings else
               "This page shows aggregates only: no patient ids and no patient-level dates.")
    return (
        '<footer id="provenance"><h2>Provenance</h2>'
        f"<p>Generated by controlarm {_e(__version__)}. Study specification SHA-256 "
        f"<code>{_e(run.study.spec_hash)}</code>; seed <span class=\"mono\">{_e(run.study.study.seed)}</span>.</p>"
        f"<p>Packages: {pk}.</p>"
        "<p>Input file hashes and timings are in <code>manifest.json</code>; all numbers shown here are in "
        f"<code>results.json</code>. {_e(privacy)}</p></footer>"
    )


def build_html(run: "StudyRun") -> str:
    """The full report page for ``run``, as one self-contained HTML string.

    Parameters
    ----------
    run : StudyRun
        Everything the pipeline produced.

    Returns
    -------
    str
        A complete HTML5 document. Deterministic: the same run gives the same bytes (no
        timestamps; figures are rendered with pinned styles and a fixed SVG hash salt).
    """
    listings = bool(getattr(run.study.report, "listings", False))
    scrub = id_scrubber(run) if not listings else scrub_dates
    title = f"{run.study.study.name} — controlarm report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="controlarm">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        _header(run),
        _nav(listings),
        "<main>",
        _flow_section(run),
        _table1_section(run),
        _balance_section(run),
        _outcomes_section(run, scrub),
        _survival_section(run),
        _methods_section(run),
        _data_quality_section(run, scrub),
        _listing_section(run) if listings else "",
        "</main>",
        _footer(run, listings),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"

