"""The demo study's report end to end: every section, real figures in real headless Chromium, a rebuild
that gives the same bytes, and the DOCX numbers against results.json.

Chromium (Debian's ``chromium``, installed by ``.ci/run``) is driven without extra Python packages:
one run of the page itself with ``--enable-logging`` (console messages) and ``--log-net-log`` (every
network request), taking a screenshot; one run of a copy with a small probe script and ``--dump-dom``
that measures every figure. The page's own copy is never given a script.
"""

from __future__ import annotations

import html as html_lib
import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pandas as pd
import pytest

from controlarm.report import RENDERED_FILES, rebuild_report, write_report
from controlarm.report._format import fmt_p

from .test_report import SECTIONS
from .test_report_schema import SCHEMA, validate

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's)")
FIGURES = ["flow", "love", "sets", "forest", "km1", "labs", "swimmer", "audit", "power"]
PROBE = """<script>
window.addEventListener('load', function () {
  var figs = [];
  document.querySelectorAll('svg, img').forEach(function (el) {
    var r = el.getBoundingClientRect();
    var fig = el.closest('figure');
    var marks = el.tagName.toLowerCase() === 'svg'
      ? el.querySelectorAll('path, use, rect, line, polyline, polygon, circle, ellipse, text').length
      : (el.complete ? el.naturalWidth : 0);
    figs.push({id: fig ? fig.id : '', tag: el.tagName.toLowerCase(), width: r.width, height: r.height, marks: marks});
  });
  var out = document.createElement('pre');
  out.id = 'probe-result';
  out.textContent = JSON.stringify({figures: figs, scrollWidth: document.documentElement.scrollWidth,
                                    clientWidth: document.documentElement.clientWidth});
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from controlarm.demo import generate_demo
    from controlarm.pipeline import run_study
    from controlarm.spec import load_study

    out = tmp_path_factory.mktemp("demo")
    study = load_study(generate_demo(out))
    write_report(run_study(study), out)
    return out


@pytest.fixture(scope="module")
def results(demo) -> dict:
    return json.loads((demo / "results.json").read_text(encoding="utf-8"))


def test_demo_report_has_every_section(demo, results):
    page = (demo / "index.html").read_text(encoding="utf-8")
    for heading in SECTIONS:
        assert f">{heading}</h2>" in page, heading
    assert re.findall(r'<figure id="fig-([^"]+)"><svg ', page) == FIGURES
    assert results["audit"]["outcomes"] and results["plan"]["scenarios"]  # schema 1.1
    assert "Treatment-emergent" in page  # the safety room's own section
    assert "Patient 8" in page and "Adverse events on the swimmer plot" in page
    assert "first administration of MSC" in page  # methods text from the spec
    ids = pd.read_parquet(demo / "analysis" / "adsl.parquet")["USUBJID"]
    assert not [i for i in ids if re.search(rf"[>\s]{re.escape(i)}[<\s]", page)]
    assert validate(results, SCHEMA) == []


def test_demo_docx_and_csv_hold_the_numbers_of_results_json(demo, results):
    import docx

    text = "\n".join(c.text for t in docx.Document(str(demo / "tables.docx")).tables for r in t.rows for c in r.cells)
    for name in ("alive_d28", "alive_d60", "d_dimer_d7"):
        for t in results["outcomes"][name]["tests"]:
            p = fmt_p(t["p_value"])
            assert (f"{t['name']}: p = {p}" if not p.startswith("<") else f"{t['name']}: p {p}") in text
    assert "mcnemar_pseudo_pairs: p = 0.025" in text  # the published p-value of the seed study
    for row in results["table1"]["rows"]:
        assert row["cells"]["pool"] in text
    assert "Hypokalaemia" in text  # the AE table
    outcomes = pd.read_csv(demo / "outcomes.csv")
    mc = outcomes[(outcomes["outcome"] == "alive_d28") & (outcomes["name"] == "mcnemar_pseudo_pairs")]
    assert float(mc["p_value"].iloc[0]) == pytest.approx(0.025347318677468, rel=1e-9)


def test_demo_rebuild_gives_the_same_bytes(demo, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(demo, copy, ignore=shutil.ignore_patterns("data"))
    for name in RENDERED_FILES:
        (copy / name).unlink()
    rebuild_report(copy)
    for name in [*RENDERED_FILES, "manifest.json", "results.json", "log.txt"]:
        assert (copy / name).read_bytes() == (demo / name).read_bytes(), name


# --------------------------------------------------------------------------- Chromium
def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


class _Server:
    """The page's folder on http://127.0.0.1:<port>, for a chromium that cannot open file:// URLs."""

    def __init__(self, root: Path):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a, **k: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _probe(folder: Path, url: str, tmp: Path) -> dict | None:
    done = _chromium(tmp, "--dump-dom", "--virtual-time-budget=10000", "--window-size=1300,1800", url)
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.S)
    return json.loads(html_lib.unescape(m.group(1))) if m else None


def _page_requests(net_log: Path, origin: str) -> list[str]:
    """URLs the page (not the browser's own services) asked the network for."""
    raw = net_log.read_text(encoding="utf-8", errors="replace").rstrip()
    try:
        log = json.loads(raw)
    except json.JSONDecodeError:  # a log cut short at exit ends inside the events list
        log = json.loads(raw.rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == start and origin in str(params.get("network_isolation_key", "")):
            urls.append(params["url"])
    return urls


def _render(page: Path, tmp: Path, png: Path) -> tuple[str, list[str], dict | None]:
    """Open ``page``: (chromium's stderr, the page's network requests, the probe's measurements)."""
    probe_page = page.with_name("probe.html")
    text = page.read_text(encoding="utf-8")
    probe_page.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    server = None
    url, probe_url, origin = page.resolve().as_uri(), probe_page.resolve().as_uri(), "file://"
    measured = _probe(page.parent, probe_url, tmp)
    if measured is None:  # this chromium cannot read file:// here: serve the folder on localhost instead
        server = _Server(page.parent)
        url, probe_url = server.url(page.name), server.url(probe_page.name)
        origin = url.rsplit("/", 1)[0]
        measured = _probe(page.parent, probe_url, tmp)
    try:
        net = tmp / "net.json"
        done = _chromium(tmp, "--enable-logging=stderr", "--v=0", f"--log-net-log={net}", f"--screenshot={png}",
                         "--window-size=1300,1800", url)
        requests = [u for u in _page_requests(net, origin) if u != url]
    finally:
        if server is not None:
            server.close()
    return done.stderr, requests, measured


@needs_chromium
def test_the_network_check_catches_a_request(tmp_path):
    page = tmp_path / "site" / "index.html"
    page.parent.mkdir()
    page.write_text('<!DOCTYPE html><html><body><p>x</p><img src="http://127.0.0.1:9/tracker.png">'
                    '<svg width="10" height="10"><rect width="10" height="10"/></svg></body></html>')
    stderr, requests, _ = _render(page, tmp_path, tmp_path / "x.png")
    assert "http://127.0.0.1:9/tracker.png" in requests


@needs_chromium
def test_the_page_renders_in_headless_chromium(demo, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    page = site / "index.html"
    shutil.copy(demo / "index.html", page)
    png = tmp_path / "report.png"
    stderr, requests, measured = _render(page, tmp_path, png)
    console = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    assert requests == [], requests
    assert measured is not None, "the probe did not run"
    figures = [f for f in measured["figures"] if f["id"].startswith("fig-")]
    assert [f["id"] for f in figures] == [f"fig-{name}" for name in FIGURES]
    for f in figures:
        assert f["width"] > 200 and f["height"] > 100 and f["marks"] > 20, f  # rendered, not empty
    assert measured["scrollWidth"] <= measured["clientWidth"] + 1  # nothing wider than the window
    from PIL import Image

    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        assert im.size == (1300, 1800)
        grey = im.convert("L")
        dark = sum(grey.histogram()[:200])
        assert dark > 0.02 * 1300 * 1800  # a page with text and pictures, not a blank screen
