"""Injection corpus (issue 9): script and attribute payloads in every free-text field that can reach
the report, and spreadsheet-formula payloads in every CSV export.

One run of the tiny study of ``tests/_clif.py`` with listings and real ids on (so patient ids reach the
page and ``matched_sets.csv``), every free-text input carrying a payload: study name, registration and
description; product, dose unit, route and lot; adverse-event term, system organ class and outcome;
location, lab and medication names; patient and hospitalization ids. (Category columns take only
their permitted values, so a payload there stops at validation.) Then:

* ``index.html`` holds no element or attribute a payload could have created (no ``<script>``,
  ``<iframe>``, ``<img>``, ``<object>``, no ``on*=`` handler, no ``javascript:`` URL), and the
  payloads that reach it appear as escaped text;
* every cell of every CSV export that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return is a plain number; every other such cell is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from controlarm.pipeline import run_study
from controlarm.report import write_report
from controlarm.report._csv import neutralise
from controlarm.spec import load_study

from . import _clif

HTML_PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "' onmouseover='alert(3)' x='",
    "</style><script>alert(4)</script>",
    "<svg onload=alert(5)>",
    "<iframe src=javascript:alert(6)>",
    "<a href=\"javascript:alert(7)\">x</a>",
    "</textarea></title><object data=x>",
]
FORMULA_IDS = {"T1": '=HYPERLINK("http://x","T1")', "C1": "@SUM(C1)", "C2": "+C2+1", "C3": "-C3-1",
               "C4": "\t=C4", "C5": "\r=C5"}
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _payload(i: int) -> str:
    return HTML_PAYLOADS[i % len(HTML_PAYLOADS)]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("injection")
    frames = _clif.tables()
    k = iter(range(100))
    for table, cols in {"administration": ["dose_unit", "route", "lot"],
                        "adverse_event": ["term", "soc", "outcome"], "adt": ["location_name"],
                        "labs": ["lab_name"], "medication_admin_intermittent": ["med_name"]}.items():
        for col in cols:
            frames[table][col] = _payload(next(k))
    product = HTML_PAYLOADS[0] + " MSC"
    frames["administration"]["product"] = product
    for name, frame in frames.items():  # ids that look like formulas (patient and hospitalization)
        for col in ("patient_id", "hospitalization_id"):
            if col in frame:
                frame[col] = frame[col].map(lambda v: next((v.replace(o, n, 1) for o, n in FORMULA_IDS.items()
                                                            if v in (o, "H" + o)), v))
    data = folder / "data"
    data.mkdir()
    for name, frame in frames.items():
        frame.to_parquet(data / f"{name}.parquet", index=False)
    study = _clif.STUDY.replace('name = "tiny"', f'name = {_toml(HTML_PAYLOADS[1])}\n'
                                f'registration = {_toml(HTML_PAYLOADS[2])}\ndescription = {_toml(HTML_PAYLOADS[3])}')
    study = study.replace('product = "MSC"', f"product = {_toml(product)}") + "\n[plan]\nenabled = false\n"
    (folder / "study.toml").write_text(study, encoding="utf-8")
    spec = load_study(folder / "study.toml")
    spec = spec.model_copy(update={"report": spec.report.model_copy(update={"listings": True, "real_ids": True})})
    out = folder / "report"
    write_report(run_study(spec), out)
    return out


def _toml(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(k, v or "") for k, v in attrs]


def test_html_escapes_every_payload(report):
    html = (report / "index.html").read_text(encoding="utf-8")
    parsed = _Elements()
    parsed.feed(html)
    bad_tags = {"script", "iframe", "img", "object", "embed", "textarea"} & set(parsed.tags)
    assert not bad_tags, bad_tags
    handlers = [(k, v) for k, v in parsed.attrs if k.lower().startswith("on")]
    assert not handlers, handlers[:5]
    assert not [v for _, v in parsed.attrs if "javascript:" in v.lower()]
    # the payloads did reach the page, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # product and a free-text field
    assert "onerror=alert(2)" in html  # study name, escaped: it sits in text, not in a tag
    reached = [p for p in HTML_PAYLOADS if p.replace("<", "&lt;").replace(">", "&gt;") in html.replace("&#x27;", "'")
               .replace("&#39;", "'").replace("&quot;", '"')]
    assert len(reached) >= 4, reached


def test_every_csv_cell_is_inert_in_a_spreadsheet(report):
    csvs = sorted(report.glob("*.csv"))
    assert {p.name for p in csvs} >= {"matched_sets.csv", "table1.csv", "outcomes.csv"}
    risky = 0
    for path in csvs:
        for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")):
            for cell in row:
                if cell.startswith(("=", "+", "-", "@", "\t", "\r")):
                    assert _NUMBER.fullmatch(cell), f"{path.name}: {cell!r} could run as a formula"
                if cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@", "\t", "\r"):
                    risky += 1
    matched = pd.read_csv(report / "matched_sets.csv", dtype=str, keep_default_na=False)
    assert set(matched["patient_id"]) == {"'" + FORMULA_IDS["T1"], "'" + FORMULA_IDS["C2"]}
    assert risky >= 2


@pytest.mark.parametrize("text", ["=1+1", "+A1", "-A1", "@SUM(A1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0"])
def test_neutralise_formula_prefixes(text):
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("text", ["-0.25", "+3", "1e-5", "age", "", "a=b"])
def test_neutralise_leaves_numbers_and_plain_text(text):
    assert neutralise(text) == text
