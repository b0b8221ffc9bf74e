"""``controlarm report RESULTS_DIR`` / ``rebuild_report``: the same bytes again, from saved results only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controlarm.cli import app
from controlarm.report import RENDERED_FILES, write_report

from .test_report import STUB_SVG, FakeSafety, make_run, stub_figures


# Figures are stubbed here to keep the suite fast; test_report_demo rebuilds a page with real figures.
_STUB = (
    "from controlarm.report import _figures, _figures_effects, _figures_patients\n"
    f"svg = {STUB_SVG!r}\n"
    "for m, names in ((_figures, ('flow_svg', 'love_svg', 'km_svg')), (_figures_effects, ('forest_svg', 'sets_svg')),\n"
    "                 (_figures_patients, ('labs_svg', 'swimmer_svg'))):\n"
    "    for n in names:\n"
    "        setattr(m, n, lambda *a, **k: svg)\n"
)


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("orig") / "report"
    with pytest.MonkeyPatch.context() as mp:
        stub_figures(mp)
        write_report(make_run(safety=FakeSafety()), out)
    return out


def _copy(original: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(original, target)
    return target


def test_rebuild_gives_the_original_bytes_and_recomputes_nothing(original, tmp_path):
    copy = _copy(original, tmp_path)
    for name in RENDERED_FILES:
        (copy / name).unlink()
    code = (
        "import sys, json\n" + _STUB +
        "from controlarm.report import rebuild_report\n"
        f"paths = rebuild_report({str(copy)!r})\n"
        "print(json.dumps({'files': sorted(paths), 'modules': sorted(sys.modules)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["files"] == sorted([*RENDERED_FILES, "manifest.json"])
    # every file comes back byte for byte: the renderings, the manifest (which lists log.txt),
    # and the files a rebuild only reads (results.json) or keeps (log.txt, the run's timings)
    for name in [*RENDERED_FILES, "manifest.json", "results.json", "log.txt"]:
        assert (copy / name).read_bytes() == (original / name).read_bytes(), name
    assert "log.txt" in json.loads((copy / "manifest.json").read_text(encoding="utf-8"))["outputs"]
    for name in ("controlarm.pipeline", "controlarm.sources", "controlarm.cohort", "controlarm.matching",
                 "controlarm.outcomes", "controlarm.safety", "duckdb"):
        assert name not in report["modules"], f"rebuilding imported {name}: it must not recompute"


def test_report_command(original, tmp_path, monkeypatch):
    stub_figures(monkeypatch)
    copy = _copy(original, tmp_path)
    res = CliRunner().invoke(app, ["report", str(copy)])
    assert res.exit_code == 0, res.output
    assert f"report: {copy / 'index.html'}" in res.output and "nothing recomputed" in res.output
    res = CliRunner().invoke(app, ["report", str(copy), "--json"])
    assert json.loads(res.output)["tables.docx"] == str(copy / "tables.docx")
    help_text = CliRunner().invoke(app, ["report", "--help"]).output
    assert "without recomputing" in help_text


def _break(kind: str, folder: Path) -> str:
    """Damage ``folder`` one way; return a text the error message must contain."""
    if kind == "no folder":
        shutil.rmtree(folder)
        return "no such folder"
    if kind == "no results.json":
        (folder / "results.json").unlink()
        return "results.json not found"
    if kind == "corrupt results.json":
        (folder / "results.json").write_text('{"schema_version": "1.0", ')
        return "results.json is not valid JSON"
    if kind == "old results.json":
        data = json.loads((folder / "results.json").read_text())
        del data["schema_version"]
        (folder / "results.json").write_text(json.dumps(data))
        return "has no schema_version"
    if kind == "future results.json":
        data = json.loads((folder / "results.json").read_text())
        data["schema_version"] = "2.0"
        (folder / "results.json").write_text(json.dumps(data))
        return "schema_version '2.0'"
    if kind == "missing dataset":
        (folder / "analysis" / "adtte.parquet").unlink()
        return "analysis/adtte.parquet not found"
    if kind == "damaged dataset":
        (folder / "analysis" / "adlb.parquet").write_bytes(b"PAR1 not really")
        return "analysis/adlb.parquet is not a readable Parquet file"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["no folder", "no results.json", "corrupt results.json", "old results.json",
                                  "future results.json", "missing dataset", "damaged dataset"])
def test_a_broken_results_folder_is_one_message_and_exit_2(kind, original, tmp_path):
    copy = _copy(original, tmp_path)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    expected = _break(kind, copy)
    res = CliRunner().invoke(app, ["report", str(copy)])
    assert res.exit_code == 2, res.output
    assert expected in res.output and "Fix:" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)  # no traceback
    if copy.exists():
        for name in ("index.html", "tables.docx", "manifest.json"):
            assert (copy / name).read_bytes() == before[name]  # nothing was half-rewritten
