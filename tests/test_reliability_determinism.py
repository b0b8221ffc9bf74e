"""Determinism (issue 9): two runs of the demo with the same inputs, spec and seed write the same
bytes in every output file: results.json, every CSV, every analysis/ dataset, tables.docx and
index.html. Only manifest.json and log.txt differ, and only in their timings."""

from __future__ import annotations

import json
from pathlib import Path

from controlarm.demo import generate_demo
from controlarm.pipeline import run_study
from controlarm.report import write_report
from controlarm.spec import load_study

TIMED = {"manifest.json", "log.txt"}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_runs_give_the_same_bytes(tmp_path):
    study = load_study(generate_demo(tmp_path / "demo"))
    first, second = tmp_path / "first", tmp_path / "second"
    write_report(run_study(study), first)
    write_report(run_study(study), second)
    a, b = _files(first), _files(second)
    assert set(a) == set(b)
    expected = {"results.json", "matched_sets.csv", "table1.csv", "outcomes.csv", "tables.docx", "index.html",
                "analysis/adsl.parquet", "analysis/adtte.parquet", "analysis/adlb.parquet"}
    assert expected <= set(a)
    differ = sorted(name for name in a if a[name] != b[name] and name not in TIMED)
    assert differ == [], differ
    # the manifests differ only in the timings (and the log's hash, which holds them)
    ma, mb = (json.loads(x["manifest.json"]) for x in (a, b))
    for m in (ma, mb):
        m.pop("timings_s", None)
        m["outputs"].pop("log.txt")
    assert ma == mb
    # the logs differ only in the seconds of each stage
    la, lb = (x["log.txt"].decode().splitlines() for x in (a, b))
    strip = [i for i, ln in enumerate(la) if ln.startswith("stages")]
    assert len(la) == len(lb)
    diff = [(x, y) for x, y in zip(la, lb) if x != y]
    assert all(x.split(":")[0] == y.split(":")[0] for x, y in diff), diff
    assert all(la.index(x) > strip[0] for x, _ in diff)
