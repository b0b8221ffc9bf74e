"""Report room: the page's design sections: title, flow, Table 1, balance and matched sets, listing.

Each function takes the report's saved inputs (:class:`._bundle.ReportBundle`) and returns an
HTML fragment; every outside string is escaped through :mod:`._markup`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from . import _figures, _figures_effects
from ._format import fmt_num
from ._markup import FigureCounter, esc, figure, table, ul
from ._privacy import real_ids
from ._table1 import flow_table, table_one_frame

if TYPE_CHECKING:
    from ._bundle import ReportBundle

__all__ = ["data_quality_section", "design_sections", "header", "listing_section", "nav", "ratio_text"]


def ratio_text(b: "ReportBundle") -> str:
    ratio = (b.results.get("analysis") or {}).get("ratio") or (b.results.get("matching") or {}).get("ratio", "")
    text = str(ratio)
    return text if ":" in text else f"1:{text}"


def header(b: "ReportBundle") -> str:
    s = b.results.get("study") or {}
    banner = ""
    if s.get("synthetic"):
        banner = ('<div class="banner" role="note">SYNTHETIC DATA'
                  "<small>Every patient in this report is simulated. No result here describes real "
                  "patients or supports any clinical conclusion.</small></div>")
    desc = "".join(f"<p>{esc(p.strip())}</p>" for p in str(s.get("description") or "").split("\n\n") if p.strip())
    return (
        f"{banner}<header><h1>{esc(s.get('name'))}</h1>"
        f'<p class="meta">Registration: <strong>{esc(s.get("registration") or "—")}</strong> · '
        f"Seed: <span class=\"mono\">{esc(s.get('seed'))}</span></p>"
        f'<p class="meta">Study specification SHA-256: <code>{esc(s.get("spec_hash"))}</code></p>'
        f"{desc}</header>"
    )


NAV = (("flow", "Flow"), ("table1", "Table 1"), ("balance", "Balance"), ("outcomes", "Outcomes"),
       ("both-styles", "p-values"), ("forest", "Forest plot"), ("survival", "Kaplan–Meier"),
       ("labs", "Labs"), ("swimmer", "Swimmer"), ("safety", "Safety"), ("sensitivity", "Sensitivity"),
       ("audit", "Audit"), ("plan", "Trial plan"), ("methods", "Methods"), ("data-quality", "Data quality"))


def nav(listings: bool) -> str:
    links = list(NAV) + ([("listing", "Listing")] if listings else []) + [("manifest", "Manifest")]
    return "<nav>" + "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in links) + "</nav>"


def _suppression_note(b: "ReportBundle") -> str:
    k = (b.results.get("table1") or {}).get("suppression")
    if not k:
        return ""
    return (f'<p class="caption">Small-cell suppression is on: counts from the candidate pool between 1 and {k - 1} '
            f'are shown as "&lt;{k}" (and counts within {k - 1} of their total as "&gt;n"). Trial counts and the '
            "number of matched controls are shown in full. A suppressed count may still be derivable from "
            "shown totals.</p>")


def _flow_section(b: "ReportBundle", fig: FigureCounter) -> str:
    r = b.results
    m = r.get("matching") or {}
    counts = {k: m.get(k, 0) for k in ("n_sets", "n_treated", "n_controls", "n_controls_unique")}
    flow = r.get("flow") or []
    svg = _figures.flow_svg(flow, counts, ratio_text(b))
    ft = table(
        flow_table(flow),
        [("group", "Group"), ("stage", "Stage"), ("n_in", "n in"), ("excluded", "Excluded (reason: n)"),
         ("n_excluded", "n excluded"), ("n_out", "n out")],
        numeric=("n_in", "n_excluded", "n_out"),
    )
    return (
        '<section id="flow"><h2>Patient flow</h2>'
        + figure(svg, "flow", "Patient flow diagram",
                 "Flow of trial patients and candidate controls through eligibility, index and matching. A "
                 "patient is counted under its first failing criterion only; reasons that excluded nobody "
                 "are listed in the table only.", fig())
        + ft
        + f'<p class="caption">Matched: {esc(counts["n_sets"])} sets, {esc(counts["n_treated"])} treated and '
        f'{esc(counts["n_controls"])} controls ({esc(counts["n_controls_unique"])} distinct).</p>'
        + _suppression_note(b) + "</section>"
    )


def _table1_section(b: "ReportBundle") -> str:
    data = b.results.get("table1") or {"n": {}, "rows": []}
    t1 = table_one_frame(data)
    n = t1.attrs["n"]
    t1 = t1.assign(label=[
        f"{c}, {s}" + (f" [{u}]" if u else "")
        for c, s, u in zip(t1["covariate"], t1["statistic"], t1["used_in_matching"])
    ])
    matched_head = f"Matched controls (n = {n.get('matched')})"
    if n.get("matched_unique") != n.get("matched"):
        matched_head = f"Matched controls (n = {n.get('matched')}; {n.get('matched_unique')} distinct)"
    tab = table(
        t1,
        [("label", "Covariate"), ("treated", f"Treated (n = {n.get('treated')})"),
         ("pool", f"Pool before matching (n = {n.get('pool')})"), ("matched", matched_head),
         ("smd_before", "SMD before"), ("smd_after", "SMD after")],
        numeric=("smd_before", "smd_after"),
    )
    denom = data.get("smd_denominator") or "not stated by the matching room"
    return (
        '<section id="table1"><h2>Baseline characteristics (Table 1)</h2>' + tab
        + '<p class="caption">Covariates as of each patient\'s index. Binary: n (%) of those observed; '
        "continuous: mean (SD) unless marked median [IQR]; missing values are counted per cell. "
        "[distance] = used in the matching distance; [exact] = matched exactly. Matched controls are "
        "counted once per set they belong to, unweighted. SMD = standardised mean difference, treated "
        f"minus comparison group; denominator: {esc(denom)}. SMD before compares treated with the "
        "pool; SMD after compares treated with matched controls.</p>" + _suppression_note(b) + "</section>"
    )


def _balance_section(b: "ReportBundle", fig: FigureCounter) -> str:
    m = b.results.get("matching") or {}
    balance = pd.DataFrame(m.get("balance") or [], columns=None)
    if balance.empty:
        balance = pd.DataFrame(columns=["covariate", "smd_before", "smd_after"])
    love = _figures.love_svg(balance)
    sets = list(m.get("sets") or [])
    distance = str(m.get("distance") or "")
    parts = [
        '<section id="balance"><h2>Covariate balance and matched sets</h2>',
        figure(love, "love", "Love plot of absolute standardised mean differences",
               "Love plot: absolute standardised mean difference per covariate before matching (treated vs "
               "pool, open circles) and after (treated vs matched controls, filled). Dashed line: 0.1.", fig()),
    ]
    if sets:
        svg = _figures_effects.sets_svg(sets, distance)
        parts.append(figure(svg, "sets", "Matched-set structure",
                            "Matched-set structure: each row is one matched set; the square is its treated "
                            "patient, each dot a control placed at its matching distance to that patient.", fig()))
        rows = pd.DataFrame([{
            "set": f"Set {s['set_id']}", "controls": str(s.get("n_controls", 0)),
            "distances": ", ".join(fmt_num(d) for d in s.get("distances", [])) or "—",
            "max": fmt_num(max(s["distances"])) if s.get("distances") else "—",
        } for s in sets])
        parts.append(table(rows, [("set", "Set"), ("controls", "Controls"),
                                  ("distances", f"Distances to the treated patient ({distance or 'matching distance'})"),
                                  ("max", "Largest")], numeric=("controls", "max"), cls="compact"))
    else:
        parts.append('<p class="note">No matched set.</p>')
    parts.append("</section>")
    return "".join(parts)


def design_sections(b: "ReportBundle", fig: FigureCounter) -> list[str]:
    """Flow, Table 1, and balance with the matched-set structure."""
    return [_flow_section(b, fig), _table1_section(b), _balance_section(b, fig)]


def data_quality_section(b: "ReportBundle") -> str:
    dq = b.results.get("data_quality") or {}
    warnings = list(dq.get("warnings") or [])
    tables = dq.get("tables") or {}
    tdf = pd.DataFrame([{"table": str(k), "rows": str(v)} for k, v in sorted(tables.items())],
                       columns=["table", "rows"])
    table_html = (table(tdf, [("table", "Table"), ("rows", "Rows")], numeric=("rows",)) if len(tdf)
                  else '<p class="note">No table counts recorded.</p>')
    return (
        '<section id="data-quality"><h2>Data quality</h2>'
        f"<h3>Warnings ({len(warnings)})</h3>{ul(warnings)}"
        f"<h3>Rows read per table</h3>{table_html}</section>"
    )


def listing_section(b: "ReportBundle") -> str:
    adsl = b.dataset("adsl")
    rows: list[dict[str, Any]] = []
    for r in adsl.to_dict("records"):
        rows.append({"set_id": r.get("SETID"), "role": r.get("ARM"), "patient_id": r.get("USUBJID"),
                     "weight": fmt_num(r.get("MWEIGHT"), 3),
                     "distance": fmt_num(r.get("MDIST")) if pd.notna(r.get("MDIST")) else "—"})
    listing = pd.DataFrame(rows, columns=["set_id", "role", "patient_id", "weight", "distance"])
    ids = ("The data's real patient ids (report.real_ids = true)" if real_ids(b.options) else
           "Pseudonymous ids (T-nnn for treated patients, C-nnn for controls, as in matched_sets.csv)")
    return (
        '<section id="listing"><h2>Listing of matched sets</h2>'
        '<p class="warning" role="note"><strong>Patient-level listing</strong> (report.listings = true). '
        f"{esc(ids)}; handle this page as patient-level data.</p>"
        + table(listing, [("set_id", "Set"), ("role", "Role"), ("patient_id", "Patient id"),
                          ("weight", "Weight"), ("distance", "Distance")], numeric=("weight", "distance"))
        + "</section>"
    )
