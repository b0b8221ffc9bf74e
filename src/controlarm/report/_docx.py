"""Report room: ``tables.docx``, the manuscript tables as a Word document (python-docx).

It holds Table 1, the outcomes table, the matched-set versus published-style p-values, the safety
room's tables (the adverse-event table among them) when safety was computed, and the methods text.
Every cell's text is the same string the HTML page shows (both come from :mod:`._table1`,
:mod:`._tables` and ``results.json``), so the two can never disagree.

The bytes are deterministic: the document's core properties are fixed, and the ZIP container is
rewritten with a fixed timestamp and a fixed member order (python-docx stamps the current time).
python-docx is imported inside the functions.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._csv import fmt_float
from ._format import fmt_value
from ._methods import methods_paragraphs, methods_references
from ._results import results_from_dict
from ._sections_outcomes import both_styles_rows, short_reasons
from ._table1 import table_one_frame
from ._tables import outcomes_table

if TYPE_CHECKING:
    from ._bundle import ReportBundle

__all__ = ["build_docx"]

_FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)
_TITLES = {"matched": "Matched-set analysis (primary)", "published-style": "Published-style analysis",
           "unmatched": "Unmatched analysis"}


def _table(doc: Any, header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> Any:
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    table = doc.add_table(rows=1 + len(rows), cols=len(header))
    table.style = "Table Grid"
    for j, text in enumerate(header):
        cell = table.rows[0].cells[j]
        cell.text = str(text)
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for i, row in enumerate(rows, start=1):
        for j, value in enumerate(row):
            table.rows[i].cells[j].text = "" if value is None else str(value)
    for i, row in enumerate(table.rows):
        for j, cell in enumerate(row.cells):
            for p in cell.paragraphs:
                if j in numeric and i > 0:
                    p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
                for run in p.runs:
                    run.font.size = Pt(8.5)
    return table


def _caption(doc: Any, text: str) -> None:
    from docx.shared import Pt

    p = doc.add_paragraph()
    run = p.add_run(text)
    run.italic = True
    run.font.size = Pt(8.5)


def _table_one(doc: Any, b: "ReportBundle") -> None:
    data = b.results.get("table1") or {"n": {}, "rows": []}
    t1 = table_one_frame(data)
    n = t1.attrs["n"]
    doc.add_heading("Table 1. Baseline characteristics before and after matching", level=2)
    rows = [[f"{r.covariate}, {r.statistic}" + (f" [{r.used_in_matching}]" if r.used_in_matching else ""),
             r.treated, r.pool, r.matched, r.smd_before, r.smd_after] for r in t1.itertuples(index=False)]
    _table(doc, ["Covariate", f"Treated (n = {n.get('treated')})", f"Pool before matching (n = {n.get('pool')})",
                 f"Matched controls (n = {n.get('matched')})", "SMD before", "SMD after"], rows, numeric=(4, 5))
    denom = data.get("smd_denominator") or "not stated"
    note = (f"Binary: n (%); continuous: mean (SD) unless marked median [IQR]. SMD denominator: {denom}.")
    if data.get("suppression"):
        note += f" Pool-derived counts from 1 to {data['suppression'] - 1} are shown as <{data['suppression']}."
    _caption(doc, note)


def _outcomes(doc: Any, b: "ReportBundle") -> None:
    res = results_from_dict(b.results)
    ot = outcomes_table(res)
    framings = ot.attrs["framings"]
    doc.add_heading("Table 2. Outcomes", level=2)
    has_est = {f: bool((ot[f + "_estimates"] != "—").any()) or f == "matched" for f in framings}
    header = ["Outcome", "Treated", "Control"]
    for f in framings:
        header += [f"{_TITLES[f]}: tests"] + ([f"{_TITLES[f]}: estimates (95% CI)"] if has_est[f] else [])
    rows = []
    for r in ot.to_dict("records"):
        row = [r["label"], r["treated"], r["control"]]
        for f in framings:
            row += [r[f"{f}_tests"]] + ([r[f"{f}_estimates"]] if has_est[f] else [])
        rows.append(row)
    _table(doc, header, rows)
    warnings = list(dict.fromkeys(w for r in ot["warnings"] for w in r.split("\n") if w))
    _caption(doc, f"{res.n_sets} matched sets. Binary: events/n (%); continuous and counts: median [Q1–Q3]. "
                  "Published-style results ignore the matched structure and are shown for comparison only."
                  + "".join(f" ({i}) {w}" for i, w in enumerate(warnings, 1)))
    doc.add_heading("Table 3. Matched-set and published-style p-values", level=2)
    bs, reasons = short_reasons(both_styles_rows(b.results))
    _table(doc, ["Outcome", "Matched-set test: p", "Published-style test: p", "Published ÷ matched p",
                 "Why they differ"], bs[["outcome", "matched", "published", "ratio", "reason"]].values.tolist(),
           numeric=(3,))
    if reasons:
        _caption(doc, " ".join(f"[{i}] {r}" for i, r in enumerate(reasons, 1)))


def _safety(doc: Any, b: "ReportBundle") -> None:
    doc.add_heading("Table 4. Safety", level=2)
    if b.safety_html is None:
        doc.add_paragraph("Safety analysis not computed for this report.")
        return
    if not b.safety_tables:
        doc.add_paragraph("The safety room returned no table.")
    for title, frame in b.safety_tables.items():
        doc.add_heading(str(title), level=3)
        numeric = [j for j, c in enumerate(frame.columns) if pd.api.types.is_numeric_dtype(frame[c])]
        rows = [[_fmt(v) for v in row] for row in frame.itertuples(index=False)]
        _table(doc, [str(c) for c in frame.columns], rows, numeric=numeric)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return fmt_float(value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if hasattr(value, "item"):
        value = value.item()
    return fmt_value(value) if not isinstance(value, str) else value


def _deterministic_zip(data: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            dst.writestr(member, src.read(info.filename))
    return out.getvalue()


def build_docx(b: "ReportBundle") -> bytes:
    """The bytes of ``tables.docx`` for a report's saved inputs (deterministic).

    Returns
    -------
    bytes
        A .docx document: title, Table 1, outcomes, both styles of p-value, safety tables and the
        methods text, on A4 landscape pages.
    """
    import datetime as dt

    import docx
    from docx.enum.section import WD_ORIENT
    from docx.shared import Mm, Pt

    doc = docx.Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(297), Mm(210)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Mm(15))
    doc.styles["Normal"].font.size = Pt(10)
    study = b.results.get("study") or {}
    props = doc.core_properties
    props.title = str(study.get("name", ""))
    props.author = "controlarm"
    props.last_modified_by = "controlarm"
    props.comments = f"Generated from results.json (schema {b.results.get('schema_version')})"
    props.created = props.modified = dt.datetime(2000, 1, 1)
    props.revision = 1

    doc.add_heading(str(study.get("name", "")), level=1)
    meta = f"Registration: {study.get('registration') or '—'}. Study specification SHA-256: {study.get('spec_hash')}."
    if study.get("synthetic"):
        meta = "SYNTHETIC DATA: every patient is simulated. " + meta
    doc.add_paragraph(meta)
    _table_one(doc, b)
    _outcomes(doc, b)
    _safety(doc, b)
    doc.add_heading("Methods (generated from the study file)", level=2)
    for p in methods_paragraphs(b.results):
        doc.add_paragraph(p)
    refs = methods_references(b.results)
    if refs:
        doc.add_heading("References", level=3)
        for i, ref in enumerate(refs, 1):
            doc.add_paragraph(f"{i}. {ref}")
    buf = io.BytesIO()
    doc.save(buf)
    return _deterministic_zip(buf.getvalue())
