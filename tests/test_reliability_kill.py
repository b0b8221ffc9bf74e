"""Kill -9: a run killed at random points never damages the good report already in its folder."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controlarm.demo import generate_demo
from controlarm.pipeline import run_study
from controlarm.report import write_report
from controlarm.spec import load_study

KILLS = 5


def _whole(name: str, data: bytes) -> None:
    """``data`` is a complete file of its kind (not cut off)."""
    if name.endswith(".json"):
        json.loads(data)
    elif name.endswith(".html"):
        assert data.rstrip().endswith(b"</html>"), name
    elif name.endswith(".parquet"):
        assert data[:4] == data[-4:] == b"PAR1", name
    elif name.endswith(".docx"):
        import io
        import zipfile

        assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None, name
    elif name.endswith(".csv"):
        assert data.endswith(b"\n"), name


def _intact(out: Path) -> None:
    """Every file the manifest lists exists, whole, with the manifest's hash and size."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["outputs"]
    for name, meta in manifest["outputs"].items():
        data = (out / name).read_bytes()
        assert len(data) == meta["bytes"], name
        assert hashlib.sha256(data).hexdigest() == meta["sha256"], name


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_kill_9_leaves_the_previous_report_intact(tmp_path):
    study_path = generate_demo(tmp_path)
    out = tmp_path / "report"
    write_report(run_study(load_study(study_path)), out)
    _intact(out)
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # Runs would replace every file with identical bytes, so to see a half-written file or a mixed
    # set, the killed runs write a different report: another seed changes the matched sets.
    other = study_path.with_name("other.toml")
    other.write_text(study_path.read_text(encoding="utf-8").replace("seed = ", "seed = 1", 1), encoding="utf-8")
    rng = random.Random(20260901)
    # how long a whole run takes in a subprocess, to spread the kills across it
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "controlarm", "run", str(other), "--out", str(tmp_path / "probe"), "-q"],
                   check=True, capture_output=True, timeout=300)
    duration = time.perf_counter() - started
    killed_at, outcomes = [], []
    for _ in range(KILLS):
        delay = rng.uniform(0.3, duration * 0.98)
        proc = subprocess.Popen([sys.executable, "-m", "controlarm", "run", str(other), "--out", str(out), "-q"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        killed_at.append((round(delay, 2), finished))
        now = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert set(now) == set(before)  # nothing lost, no stray partial file inside the folder
        changed = sorted(n for n in now if now[n] != before[n])
        outcomes.append(changed)
        for name in changed:  # a replaced file is a whole new file, never a prefix
            _whole(name, now[name])
        if not changed or "manifest.json" in changed:
            _intact(out)  # the manifest and the files it lists agree
        before = now
    assert sum(not f for _, f in killed_at) >= 3, killed_at  # most kills land mid-run
    _intact(out)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    # a SIGKILL cannot clean up: a stray temporary folder may remain beside the report, never inside it
    assert all(name.startswith(".report.") for name in leftovers)
