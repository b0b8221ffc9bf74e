"""Kill -9: a run killed at random points never damages the good report already in its folder, and
no reader ever sees a mix of old and new files (the folder is swapped whole)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from controlarm.demo import generate_demo
from controlarm.pipeline import run_study
from controlarm.report import write_report
from controlarm.report import _write
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


def _snapshot(out: Path) -> bool:
    """Read the report folder as one reader would, through a handle on the folder itself: the
    manifest and every file it lists must agree (a mix of old and new files fails). False when the
    folder vanished under the reader (an old report being deleted after the swap)."""
    try:
        fd = os.open(out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        return False

    def read(rel: str) -> bytes:
        with os.fdopen(os.open(rel, os.O_RDONLY, dir_fd=fd), "rb") as fh:
            return fh.read()

    try:
        manifest = json.loads(read("manifest.json"))
        for name, meta in manifest["outputs"].items():
            data = read(name)
            assert hashlib.sha256(data).hexdigest() == meta["sha256"], f"{name}: a mix of old and new files"
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)
    return True


class _Watcher(threading.Thread):
    """Takes snapshots of the folder while a run writes into it."""

    def __init__(self, out: Path):
        super().__init__(daemon=True)
        self.out, self.stop, self.seen, self.error = out, threading.Event(), 0, None

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.seen += _snapshot(self.out)
            except AssertionError as exc:
                self.error = exc
                return
            time.sleep(0.005)


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
    killed_at, outcomes, snapshots = [], [], []
    for _ in range(KILLS):
        delay = rng.uniform(0.3, duration * 0.98)
        proc = subprocess.Popen([sys.executable, "-m", "controlarm", "run", str(other), "--out", str(out), "-q"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        watcher = _Watcher(out)
        watcher.start()
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        watcher.stop.set()
        watcher.join(timeout=60)
        assert watcher.error is None, watcher.error
        snapshots.append(watcher.seen)
        killed_at.append((round(delay, 2), finished))
        now = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert set(now) == set(before)  # nothing lost, no stray partial file inside the folder
        changed = sorted(n for n in now if now[n] != before[n])
        outcomes.append(changed)
        for name in changed:  # a replaced file is a whole new file, never a prefix
            _whole(name, now[name])
        _intact(out)  # always: the manifest and the files it lists agree (old or new, never a mix)
        assert not changed or "manifest.json" in changed, changed
        before = now
    assert sum(not f for _, f in killed_at) >= 3, killed_at  # most kills land mid-run
    assert sum(snapshots) >= KILLS, snapshots  # the watcher read the folder whole many times
    _intact(out)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    # a SIGKILL cannot clean up: a stray temporary folder may remain beside the report, never inside it
    assert all(name.startswith(".report.") for name in leftovers)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _commit(out: Path, tag: str) -> None:
    files = {"results.json": f'{{"run": "{tag}"}}'.encode(), f"analysis/ad{tag}.parquet": tag.encode()}
    _write.commit_files(out, files, _write.dumps_json(_write.manifest_dict({}, files)).encode())


def test_swap_carries_other_files_and_prunes_stale_datasets(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "data").mkdir()
    (out / "data" / "patient.csv").write_text("patient_id\nP1\n")
    (out / "study.toml").write_text("[study]\n")
    _commit(out, "one")
    _commit(out, "two")
    assert sorted(_files(out)) == ["analysis/adtwo.parquet", "data/patient.csv", "manifest.json", "results.json",
                                   "study.toml"]
    assert (out / "data" / "patient.csv").read_text() == "patient_id\nP1\n"
    _intact(out)
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary folder left


def test_two_rename_fallback_recovers_after_a_crash_between_the_renames(tmp_path, monkeypatch):
    """Where directories cannot be exchanged atomically: old -> backup, new -> out; a crash between
    the two renames leaves no folder, and the next write puts the previous report back first."""
    out = tmp_path / "report"
    _commit(out, "one")
    old = _files(out)
    monkeypatch.setattr(_write, "_exchange", lambda a, b: False)
    real_rename = os.rename

    def crash_on_second(src, dst):
        if Path(dst) == out:
            raise KeyboardInterrupt("killed between the renames")
        real_rename(src, dst)

    monkeypatch.setattr(_write.os, "rename", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        _commit(out, "two")
    assert not out.exists()  # the crash window: the previous report is in the backup
    monkeypatch.setattr(_write.os, "rename", real_rename)
    _write.recover(out)
    assert _files(out) == old
    _commit(out, "three")  # the fallback path completes normally
    assert json.loads((out / "results.json").read_text()) == {"run": "three"}
    _intact(out)
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
