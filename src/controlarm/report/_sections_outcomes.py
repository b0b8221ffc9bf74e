"""Report room: the page's outcome sections: outcomes table, both styles of p-value, forest plot,
Kaplan–Meier curves and sensitivity panels.

All numbers come from ``results.json`` (rebuilt into the analysis room's result objects by
:func:`._results.results_from_dict`) and, for the curves, from the ADTTE dataset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import _figures, _figures_effects
from ._format import DASH, fmt_conventions, fmt_num, fmt_p, fmt_value
from ._markup import FigureCounter, cell, esc, figure, table, ul
from ._results import results_from_dict
from ._sections import ratio_text
from ._tables import outcomes_table

if TYPE_CHECKING:
    from ..analysis._results import Results
    from ._bundle import ReportBundle

__all__ = ["both_styles_rows", "forest_panels", "outcome_sections", "sensitivity_section"]

_TITLES = {"matched": "Matched-set analysis (primary)", "published-style": "Published-style analysis",
           "unmatched": "Unmatched analysis"}


def _outcomes_section(b: "ReportBundle", res: "Results") -> str:
    ot = outcomes_table(res)
    framings = ot.attrs["framings"]
    head1 = '<th rowspan="2">Outcome</th><th rowspan="2">Treated</th><th rowspan="2">Control</th>'
    head2 = ""
    has_est = {f: bool((ot[f + "_estimates"] != DASH).any()) or f == "matched" for f in framings}
    for f in framings:
        head1 += f'<th colspan="{2 if has_est[f] else 1}" class="group-{esc(f)}">{esc(_TITLES[f])}</th>'
        head2 += f'<th class="group-{esc(f)}">Test: p-value</th>'
        if has_est[f]:
            head2 += f'<th class="group-{esc(f)}">Estimate (CI)</th>'
    notes: list[str] = []
    body = []
    for i, row in enumerate(ot.to_dict("records")):
        marks: dict[str, str] = {}
        for f, warns in ot.attrs["warnings_by_framing"][i].items():
            for w in warns:
                if w not in notes:
                    notes.append(w)
                k = notes.index(w) + 1
                marks[f] = marks.get(f, "") + f' <sup><a href="#warn-{k}" title="Warning {k}">⚠{k}</a></sup>'
        tds = (f'<td><strong>{esc(row["label"])}</strong><br><span class="kind">{esc(row["kind"].replace("_", " "))}'
               f"</span></td><td>{cell(row['treated'])}</td><td>{cell(row['control'])}</td>")
        for f in framings:
            tds += f'<td class="group-{esc(f)}">{cell(row[f + "_tests"])}{marks.get(f, "")}</td>'
            if has_est[f]:
                tds += f'<td class="group-{esc(f)}">{cell(row[f + "_estimates"])}</td>'
        body.append(f"<tr>{tds}</tr>")
    warn_html = ""
    if notes:
        items = "".join(f'<li id="warn-{i}">{esc(w)}</li>' for i, w in enumerate(notes, 1))
        who = " and ".join(_TITLES[f].split(" analysis")[0].lower() for f in framings if f != "matched")
        warn_html = (f'<div class="warning" role="note"><strong>⚠ {esc(who.capitalize())} results ignore the matched '
                     "structure.</strong> They reproduce what papers commonly report, or ignore the sets altogether, "
                     f"and are shown for comparison only; they are not the primary analysis.<ol>{items}</ol></div>")
    outcome_notes = [f"{o.label}: {n}" for o in res.outcomes for n in o.notes]
    notes_html = f"<h3>Notes</h3>{ul(outcome_notes)}" if outcome_notes else ""
    return (
        '<section id="outcomes"><h2>Outcomes</h2>'
        f'<p class="caption">{esc(res.n_sets)} matched sets ({esc(ratio_text(b))}). Binary: events/n (%); '
        "continuous and counts: median [Q1–Q3]. Tests and estimates are grouped by framing: the matched-set "
        "analysis respects the matched structure and is primary.</p>" + _multiplicity(b)
        + f'<div class="scroll"><table class="outcomes"><thead><tr>{head1}</tr><tr>{head2}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
        + warn_html + notes_html + "</section>"
    )


def _multiplicity(b: "ReportBundle") -> str:
    multiplicity = (b.results.get("analysis") or {}).get("multiplicity")
    if not multiplicity:
        return ""
    text = fmt_conventions(multiplicity) if isinstance(multiplicity, Mapping) else fmt_value(multiplicity)
    return f'<p class="caption">Multiplicity: {cell(text)}</p>'


def both_styles_rows(results: Mapping[str, Any]) -> pd.DataFrame:
    """Per outcome: matched-set p-value(s), published-style p-value(s), and why they differ.

    Uses the analysis room's own pairing (``analysis.style_comparison`` in ``results.json``: the
    primary test beside the published-style one, their ratio and the reason) when it is there;
    otherwise lists every matched-set and published-style test of each outcome with the
    published-style tests' warnings.

    Returns
    -------
    DataFrame
        ``outcome, matched, published, ratio, reason`` (strings; ``ratio`` is the published-style
        p-value divided by the matched-set one, "—" when not given).
    """
    cols = ["outcome", "matched", "published", "ratio", "reason"]
    paired = (results.get("analysis") or {}).get("style_comparison") or []
    if paired:
        rows = [{
            "outcome": str(r.get("label") or r.get("outcome", "")),
            "matched": f"{r.get('primary_test', '')}: {fmt_p(r.get('primary_p'))}",
            "published": f"{r.get('published_test', '')}: {fmt_p(r.get('published_p'))}",
            "ratio": fmt_value(r.get("ratio_published_to_primary")) if r.get("ratio_published_to_primary") is not None
            else DASH,
            "reason": str(r.get("reason") or DASH),
        } for r in paired if isinstance(r, Mapping)]
        return pd.DataFrame(rows, columns=cols)
    rows = []
    for o in results_from_dict(results).outcomes:
        matched = [t for t in o.tests if t.framing == "matched"]
        published = [t for t in o.tests if t.framing == "published-style"]
        reasons = list(dict.fromkeys(t.warning for t in published if t.warning))
        rows.append({
            "outcome": o.label or o.outcome,
            "matched": "\n".join(f"{t.name}: {fmt_p(t.p_value)}" for t in matched) or DASH,
            "published": "\n".join(f"{t.name}: {fmt_p(t.p_value)}" for t in published) or DASH,
            "ratio": DASH,
            "reason": "\n".join(reasons) or (DASH if not published else "No warning recorded."),
        })
    return pd.DataFrame(rows, columns=cols)


def _first_sentence(text: str) -> str:
    head, dot, _ = text.partition(". ")
    return head + "." if dot else text


def short_reasons(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``rows`` with each reason cut to its first sentence plus a note number, and the notes in full."""
    notes: list[str] = []
    short = []
    for text in rows["reason"]:
        parts = []
        for reason in filter(None, str(text).split("\n")):
            if reason == DASH:
                parts.append(DASH)
                continue
            if reason not in notes:
                notes.append(reason)
            parts.append(f"{_first_sentence(reason)} [{notes.index(reason) + 1}]")
        short.append("\n".join(parts) or DASH)
    return rows.assign(reason=short), notes


def _both_styles_section(b: "ReportBundle") -> str:
    rows, notes = short_reasons(both_styles_rows(b.results))
    any_published = bool((rows["published"] != DASH).any()) if len(rows) else False
    columns = [("outcome", "Outcome"), ("matched", "Matched-set test: p"), ("published", "Published-style test: p")]
    if (rows["ratio"] != DASH).any():
        columns.append(("ratio", "Published ÷ matched p"))
    body = table(rows, columns + [("reason", "Why they differ")], numeric=("ratio",), cls="both-styles")
    note = ("" if any_published else
            '<p class="note">No published-style analysis was run ([analysis] published_style = false).</p>')
    listed = ("<ol class=\"reasons\">" + "".join(f'<li id="reason-{i}">{esc(n)}</li>' for i, n in enumerate(notes, 1))
              + "</ol>") if notes else ""
    return (
        '<section id="both-styles"><h2>Matched-set and published-style p-values</h2>'
        '<p class="caption">The same outcomes tested two ways: respecting the matched sets (primary), and as '
        "papers commonly do, ignoring them. The last column is the published-style result's own warning, the "
        "reason the two disagree, given in full below the table.</p>" + note + body + listed + "</section>"
    )


def _scale(name: str, method: str, unit: str) -> tuple[str, bool, float, int]:
    """(panel title, log axis, null value, sort order) of an estimate, from its name and method."""
    text = f"{name} {method}".lower().replace("-", "_").replace(" ", "_")
    if "odds" in text:
        return "Odds ratio (treated vs control)", True, 1.0, 0
    if "risk_difference" in text:
        return "Risk difference (treated minus control)", False, 0.0, 1
    if "risk_ratio" in text or "relative_risk" in text:
        return "Risk ratio (treated vs control)", True, 1.0, 2
    if "hazard" in text or text.startswith("hr_"):
        return "Hazard ratio (treated vs control)", True, 1.0, 2
    if "hodges" in text:
        return f"Hodges–Lehmann difference (treated minus control{', ' + unit if unit else ''})", False, 0.0, 3
    if "ratio" in text:
        return f"{name} (ratio)", True, 1.0, 4
    return f"{name}" + (f" ({unit})" if unit else ""), False, 0.0, 5


def _unit(defn: Mapping[str, Any], name: str) -> str:
    unit = str(defn.get("unit") or "")
    if unit:
        return unit
    return "days" if "days" in f"{name} {defn.get('label', '')}".lower() else ""


def forest_panels(res: "Results", defs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The forest plot's panels: matched-set estimates grouped by effect scale (and unit)."""
    panels: dict[str, dict[str, Any]] = {}
    for o in res.outcomes:
        ests = [e for e in o.estimates if e.framing == "matched"]
        unit = _unit(defs.get(o.outcome, {}), o.outcome)
        titles = [_scale(e.name, e.method, unit)[0] for e in ests]
        for e in ests:
            title, log, ref, order = _scale(e.name, e.method, unit)
            panel = panels.setdefault(title, {"title": title, "log": log, "ref": ref, "order": order, "rows": []})
            label = o.label if titles.count(title) == 1 else f"{o.label} ({e.name})"
            if e.value is None or not math.isfinite(float(e.value)):
                text = "not estimable"
            else:
                text = f"{fmt_num(e.value)} ({fmt_num(e.ci_low)} to {fmt_num(e.ci_high)})"
            panel["rows"].append({"label": label, "value": e.value, "low": e.ci_low, "high": e.ci_high, "text": text})
    return sorted(panels.values(), key=lambda p: (p["order"], p["title"]))


def _forest_section(b: "ReportBundle", res: "Results", fig: FigureCounter) -> str:
    panels = forest_panels(res, b.results.get("endpoint_definitions") or {})
    if not panels:
        return ('<section id="forest"><h2>Effect estimates (forest plot)</h2>'
                '<p class="note">No matched-set effect estimate.</p></section>')
    svg = _figures_effects.forest_svg(panels)
    return (
        '<section id="forest"><h2>Effect estimates (forest plot)</h2>'
        + figure(svg, "forest", "Forest plot of matched-set effect estimates",
                 "Matched-set effect estimates with 95% confidence intervals, one panel per scale: ratios on a "
                 "log axis (null value 1), differences on a linear axis (null value 0). An arrow marks an "
                 "interval that is unbounded or beyond the axis; 'not estimable' means the data cannot "
                 "identify the estimate (for example no event in one arm).", fig())
        + "</section>"
    )


def _survival_section(b: "ReportBundle", fig: FigureCounter) -> str:
    adtte = b.dataset("adtte")
    defs = b.results.get("endpoint_definitions") or {}
    spec_out = (b.results.get("spec") or {}).get("outcomes") or {}
    figs = []
    for i, code in enumerate(dict.fromkeys(adtte["PARAMCD"]) if not adtte.empty else [], start=1):
        rows = adtte[adtte["PARAMCD"] == code]
        label = str(rows["PARAM"].iloc[0])
        definition = next((str(d.get("definition", "")) for d in defs.values() if d.get("label") == label), "")
        frame = pd.DataFrame({"role": rows["ARM"].astype(str), "t": pd.to_numeric(rows["AVAL"], errors="coerce"),
                              "d": 1 - pd.to_numeric(rows["CNSR"], errors="coerce")})
        horizon = max(spec_out.get("survival_days") or [0]) or math.ceil(float(frame["t"].max() or 1))
        step = 7.0 if horizon <= 35 else 10.0
        svg = _figures.km_svg(frame, SimpleNamespace(column="t", event_column="d", label=label),
                              horizon=float(horizon), tick_step=step)
        figs.append(figure(svg, f"km{i}", f"Kaplan–Meier curves: {label}",
                           f"{label}: Kaplan–Meier estimate by arm with 95% pointwise confidence bands "
                           "(exponential Greenwood); + marks censoring; numbers at risk below the axis. "
                           f"{definition}", fig()))
    if not figs:
        figs.append('<p class="note">No time-to-event endpoint in this study.</p>')
    return '<section id="survival"><h2>Kaplan–Meier curves</h2>' + "".join(figs) + "</section>"


def _panel_html(o: Mapping[str, Any], panel: Any) -> str:
    if not isinstance(panel, Mapping):
        return f'<p class="note">{esc(o.get("label"))}: {esc(panel)}</p>'
    title = f"{o.get('label') or o.get('outcome')}: {panel.get('label') or panel.get('name') or 'sensitivity analysis'}"
    columns = [str(c) for c in panel.get("columns") or []]
    rows = [list(r) if isinstance(r, (list, tuple)) else [r] for r in panel.get("rows") or []]
    width = max([len(columns)] + [len(r) for r in rows]) if (columns or rows) else 0
    columns += [""] * (width - len(columns))
    frame = pd.DataFrame([{f"c{j}": fmt_value(r[j]) if j < len(r) else "" for j in range(width)} for r in rows],
                         columns=[f"c{j}" for j in range(width)])
    numeric = [f"c{j}" for j in range(width)
               if rows and all(j < len(r) and (r[j] is None or (isinstance(r[j], (int, float)) and not isinstance(r[j], bool)))
                               for r in rows)]
    body = table(frame, [(f"c{j}", columns[j]) for j in range(width)], numeric=numeric) if width else ""
    conventions = panel.get("conventions")
    conv = fmt_conventions(conventions) if isinstance(conventions, Mapping) else fmt_value(conventions) if conventions else ""
    parts = [f'<div class="panel"><h3>{esc(title)}</h3>']
    if panel.get("method"):
        parts.append(f'<p class="kind">{esc(panel["method"])}</p>')
    parts.append(body)
    if panel.get("summary"):
        parts.append(f"<p>{cell(panel['summary'])}</p>")
    if panel.get("reference"):
        parts.append(f'<p class="caption">Reference: {esc(panel["reference"])}</p>')
    if conv:
        parts.append(f'<details class="caption"><summary>Conventions</summary>{cell(conv)}</details>')
    parts.append("</div>")
    return "".join(parts)


def sensitivity_section(b: "ReportBundle") -> str:
    """Every outcome's ``sensitivity`` panels, rendered generically; a note when there are none."""
    outcomes = b.results.get("outcomes") or {}
    order = (b.results.get("analysis") or {}).get("outcome_order") or list(outcomes)
    panels = [_panel_html(outcomes[n], p) for n in order if n in outcomes
              for p in (outcomes[n].get("sensitivity") or [])]
    body = "".join(panels) or ('<p class="note">No sensitivity analysis in the results (the analysis room adds '
                               "them, for example Rosenbaum bounds and E-values).</p>")
    return '<section id="sensitivity"><h2>Sensitivity analyses</h2>' + body + "</section>"


def outcome_sections(b: "ReportBundle", fig: FigureCounter) -> list[str]:
    """Outcomes table, both styles of p-value, forest plot and Kaplan–Meier curves."""
    res = results_from_dict(b.results)
    return [_outcomes_section(b, res), _both_styles_section(b), _forest_section(b, res, fig),
            _survival_section(b, fig)]
