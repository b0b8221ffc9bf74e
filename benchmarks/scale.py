"""Benchmark: the whole study at warehouse scale, wall time and peak memory per stage.

    .venv/bin/python benchmarks/scale.py                         # 1M and 5M hospitalizations, DuckDB
    .venv/bin/python benchmarks/scale.py --quick                 # 100k only
    .venv/bin/python benchmarks/scale.py --sizes 1M --memory-limit 3GB --threads 2
    .venv/bin/python benchmarks/scale.py --sizes 1M --engine spark   # hook: needs a spark:// source

Data: ``controlarm synth`` (src/controlarm/synth) writes the warehouse once per size into
``--data-dir`` (default /tmp/controlarm-scale/<N>, never the repository), with the study file it
writes beside the tables (the demo study's design: ICU, on HFNO or IMV, dexamethasone within 24 h;
1:3 nearest Mahalanobis). A folder whose ``synth.json`` names the same size, seed and generator
version is reused; generation at 5M takes several minutes and about 3 GB of disk (see ``df -h``).

Each size runs in a fresh Python process (``--worker``), so its peak memory is its own:

* stages are timed from the pipeline's progress callback (``run_study(progress=...)``), plus the
  report writing: read (open the Parquet folder), validate, cohort (index dates and eligibility),
  features (baseline covariates), matching, outcomes, safety, analysis, report;
* a sampler thread reads the process's resident set size every 20 ms and attributes the maximum to
  the stage running at the time (``peak RSS by stage``); the process's ``ru_maxrss`` is the overall
  peak;
* at each stage boundary the DuckDB connection opened by the sources room is asked how much memory
  its buffer manager holds (``duckdb_memory()``), to tell DuckDB's memory from Python's.

DuckDB settings (``--memory-limit``, ``--threads``, ``--temp-dir``) are applied by wrapping
``duckdb.connect`` in the worker process only, as ``CONTROLARM_MEMORY_LIMIT`` and friends would.
The memory limit defaults to 2500MB, the setting under which the 5M run must fit in 4 GB (DuckDB's
own default is 80 % of RAM; ``--memory-limit none`` keeps it).

``--engine spark`` rewrites the study's ``[data] source`` to ``spark://local[2]?path=<folder>``;
this is the hook for the Spark engine (the sources room decides whether it can open it). The
``--spark-master`` option sets what goes after ``spark://``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000, "5M": 5_000_000}
SEED = 20240501
STAGES = ("read", "validate", "cohort", "features", "matching", "outcomes", "safety", "analysis", "report")
#: progress message of the pipeline -> stage column
_STAGE_OF = {
    "reading tables": "read",
    "validating tables": "validate",
    "index dates and eligibility": "cohort",
    "baseline covariates": "features",
    "baseline covariates at each landmark and risk-set matching": "features",
    "matching": "matching",
    "outcomes": "outcomes",
    "safety": "safety",
    "analysis": "analysis",
    "writing the report": "report",
}
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _size(text: str) -> int:
    text = text.strip()
    if text in SIZES:
        return SIZES[text]
    mult = {"k": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def _label(n: int) -> str:
    return next((k for k, v in SIZES.items() if v == n), f"{n:,}")


# --------------------------------------------------------------------------------------- data
def ensure_data(n: int, data_dir: Path, seed: int) -> Path:
    """The synthetic warehouse of ``n`` hospitalizations: reused when complete, else generated."""
    folder = data_dir / str(n)
    manifest = folder / "synth.json"
    if manifest.exists():
        info = json.loads(manifest.read_text())
        if info.get("hospitalizations") == n and info.get("seed") == seed:
            print(f"  {_label(n)}: reusing {folder} (generated in {info.get('seconds', '?')} s)", file=sys.stderr)
            return folder
    print(f"  {_label(n)}: generating into {folder} (several minutes at 5M) ...", file=sys.stderr)
    cmd = [sys.executable, "-m", "controlarm", "synth", "--hospitalizations", str(n), "--out", str(folder),
           "--seed", str(seed), "--quiet"]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return folder


def _disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.parquet")) / 1e6


# ------------------------------------------------------------------------------------- worker
def _descendants_rss(pid: int) -> int:
    """Resident bytes of every descendant process of ``pid`` (Spark's JVM is a child of the Python
    worker, so the engine's memory is counted with the process's own)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    children: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                children += [int(c) for c in fh.read().split()]
        except OSError:
            pass
    for child in children:
        try:
            with open(f"/proc/{child}/statm") as fh:
                total += int(fh.read().split()[1]) * _PAGE
        except OSError:
            continue
        total += _descendants_rss(child)
    return total


class _Sampler(threading.Thread):
    """Peak resident set size per stage of the process and its descendants (Spark's JVM), sampled
    every ``interval`` s from /proc/<pid>/statm."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval = interval
        self.stage = "start"
        self.peaks: dict[str, int] = {}
        self._halt = threading.Event()
        self._fd = os.open("/proc/self/statm", os.O_RDONLY)

    def rss(self) -> int:
        # pread: no shared file offset, so the sampler thread and a stage switch may read at once
        own = int(os.pread(self._fd, 256, 0).split()[1]) * _PAGE
        return own + _descendants_rss(os.getpid())

    def run(self) -> None:
        while not self._halt.is_set():
            r = self.rss()
            if r > self.peaks.get(self.stage, 0):
                self.peaks[self.stage] = r
            time.sleep(self.interval)

    def switch(self, stage: str) -> None:
        r = self.rss()
        self.peaks[self.stage] = max(self.peaks.get(self.stage, 0), r)
        self.stage = stage

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _patch_duckdb(settings: dict, connections: list) -> None:
    import duckdb

    original = duckdb.connect

    def connect(database=":memory:", *args, **kwargs):
        config = dict(kwargs.pop("config", None) or {})
        config.update(settings)
        con = original(database, *args, config=config, **kwargs)
        connections.append(con)
        return con

    duckdb.connect = connect


def _duckdb_mb(connections: list) -> float | None:
    for con in reversed(connections):
        try:
            row = con.execute("SELECT sum(memory_usage_bytes), sum(temporary_storage_bytes) FROM duckdb_memory()").fetchall()[0]
            return round((row[0] or 0) / 1e6, 1)
        except Exception:  # closed connection, or another engine
            continue
    return None


def worker(folder: str, engine: str, settings: dict, spark_master: str, out_dir: str) -> None:
    """One run of the study on ``folder``, in this process; prints one JSON line."""
    sys.path.insert(0, str(ROOT / "src"))
    connections: list = []
    if engine == "duckdb" and settings:
        _patch_duckdb(settings, connections)
    elif engine == "duckdb":
        _patch_duckdb({}, connections)
    from controlarm.pipeline import run_study
    from controlarm.report import write_report
    from controlarm.spec import load_study

    sampler = _Sampler()
    sampler.start()
    times: dict[str, float] = {}
    duck: dict[str, float | None] = {}
    state = {"stage": None, "t": time.perf_counter()}

    def progress(message: str) -> None:
        now = time.perf_counter()
        if state["stage"] is not None:
            times[state["stage"]] = times.get(state["stage"], 0.0) + now - state["t"]
            duck[state["stage"]] = _duckdb_mb(connections)
        stage = _STAGE_OF.get(message, message)
        state["stage"], state["t"] = stage, now
        sampler.switch(stage)

    result: dict = {"folder": folder, "engine": engine, "settings": settings}
    try:
        study = load_study(Path(folder) / "study.toml")
        if engine == "spark":  # the hook: the sources room opens spark:// URLs when the Spark engine is there
            url = f"spark://{spark_master}?path={Path(folder).resolve()}"
            study = study.model_copy(update={"data": study.data.model_copy(update={"source": url})})
        t0 = time.perf_counter()
        run = run_study(study, progress=progress)
        progress("writing the report")
        write_report(run, Path(out_dir))
        progress("done")
        result.update(ok=True, total_s=time.perf_counter() - t0,
                      pool=int(run.cohort["group"].eq("pool").sum()), matched=int(len(run.matched)))
    except Exception as exc:  # reported in the table, the benchmark goes on
        import traceback

        traceback.print_exc()
        progress("failed")
        result.update(ok=False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
    sampler.stop()
    result["stage_s"] = {k: round(v, 2) for k, v in times.items()}
    result["stage_peak_rss_mb"] = {k: round(v / 1e6, 1) for k, v in sampler.peaks.items()}
    result["duckdb_mb_after"] = duck
    result["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6, 1)
    print("RESULT " + json.dumps(result), flush=True)


def run_worker(folder: Path, engine: str, settings: dict, spark_master: str, out_dir: Path) -> dict:
    """Run one size in a child process; its peak RSS also from ``wait4`` (survives an OOM kill)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(folder), "--engine", engine,
           "--settings", json.dumps(settings), "--spark-master", spark_master, "--out-dir", str(out_dir)]
    t0 = time.perf_counter()
    err_path = out_dir.parent / f"worker-{folder.name}.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
        stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    line = next((ln for ln in stdout.splitlines() if ln.startswith("RESULT ")), None)
    tail = " | ".join(err_path.read_text().strip().splitlines()[-2:])
    res = json.loads(line[7:]) if line else {"ok": False, "engine": engine, "error": f"worker exited with "
                                             f"{proc.returncode} (signal -9: killed, out of memory?): {tail}"}
    res["child_maxrss_mb"] = round(usage.ru_maxrss * 1024 / 1e6, 1)  # MB (10^6 bytes), as the stage peaks
    res["process_wall_s"] = round(wall, 1)
    return res


# ---------------------------------------------------------------------------------------- table
def _grid(head: list[str], body: list[list[str]], left: int = 2) -> str:
    lines = [head] + body
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) if i < left else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in lines)


def _stages(rows: list[tuple[str, dict]]) -> list[str]:
    """The known stages, then any other progress step the pipeline reported (in the order seen)."""
    seen = [s for _, r in rows for s in r.get("stage_s", {}) if s not in STAGES and s not in ("start", "failed")]
    return list(STAGES) + list(dict.fromkeys(seen))


def _tables(rows: list[tuple[str, dict]]) -> str:
    STAGES = _stages(rows)  # noqa: N806 - shadows the module constant on purpose
    head = ["size", "engine"] + list(STAGES) + ["total s", "peak RSS MB", "pool eligible", "status"]
    body = []
    for label, r in rows:
        st = r.get("stage_s", {})
        status = "ok" if r.get("ok") else r.get("error", "failed")[:100]
        pool = r.get("pool")
        body.append([label, r.get("engine", "?")] + [f"{st[s]:.1f}" if s in st else "-" for s in STAGES]
                    + [f"{r['total_s']:.1f}" if "total_s" in r else "-", f"{r.get('child_maxrss_mb', 0):,.0f}",
                       f"{pool:,}" if isinstance(pool, int) else "-", status])
    out = ["Wall time (s) per stage; peak memory of the process", _grid(head, body), ""]
    head = ["size", "engine"] + list(STAGES)
    body = [[label, r.get("engine", "?")] + [f"{r.get('stage_peak_rss_mb', {})[s]:,.0f}"
                                             if s in r.get("stage_peak_rss_mb", {}) else "-" for s in STAGES]
            for label, r in rows]
    out += ["Peak resident memory (MB) during each stage", _grid(head, body), ""]
    body = [[label, r.get("engine", "?")] + [f"{r['duckdb_mb_after'][s]:,.0f}" if r.get("duckdb_mb_after", {}).get(s)
                                             is not None else "-" for s in STAGES] for label, r in rows]
    out += ["Memory held by DuckDB's buffer manager at the end of each stage (MB)", _grid(head, body)]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1M,5M", help="comma-separated: 100k, 1M, 5M or a number (default 1M,5M)")
    ap.add_argument("--quick", action="store_true", help="100k hospitalizations only")
    ap.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    ap.add_argument("--spark-master", default="local[2]", help="with --engine spark: what follows spark://")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/controlarm-scale"))
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--memory-limit", default="2500MB",
                    help="DuckDB memory_limit (default 2500MB: with Python's own memory, the run stays within "
                         "the 4 GB that issue 8 sets; 'none' leaves DuckDB's default of 80%% of RAM)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: DuckDB's, all cores)")
    ap.add_argument("--temp-dir", default=None, help="DuckDB temp_directory for spilling")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw results to this JSON file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.engine, json.loads(a.settings), a.spark_master, a.out_dir)
        return

    sizes = [100_000] if a.quick else [_size(s) for s in a.sizes.split(",") if s.strip()]
    settings: dict = {}
    if a.memory_limit and a.memory_limit.lower() != "none" and a.engine == "duckdb":
        settings["memory_limit"] = a.memory_limit
    if a.threads:
        settings["threads"] = a.threads
    if a.temp_dir:
        settings["temp_directory"] = a.temp_dir
    rows: list[tuple[str, dict]] = []
    for n in sizes:
        folder = ensure_data(n, a.data_dir, a.seed)
        print(f"  {_label(n)}: {_disk_mb(folder):,.0f} MB of Parquet; running the study on {a.engine} ...",
              file=sys.stderr)
        res = run_worker(folder, a.engine, settings, a.spark_master, a.data_dir / f"report-{n}")
        res["size"] = n
        res["parquet_mb"] = round(_disk_mb(folder), 1)
        rows.append((_label(n), res))
        print(f"  {_label(n)}: {'ok' if res.get('ok') else res.get('error')} in {res['process_wall_s']} s, "
              f"peak {res['child_maxrss_mb']:,.0f} MB", file=sys.stderr)
    print()
    shown = (", ".join(f"{k}={v}" for k, v in settings.items()) or "DuckDB defaults") if a.engine == "duckdb" \
        else f"Spark {a.spark_master} (driver memory 3g)"
    print(f"controlarm run on a synthetic warehouse (controlarm synth, seed {a.seed}); {shown}; "
          f"{os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * _PAGE / 2**30:.0f} GiB RAM")
    print(_tables(rows))
    if a.json:
        a.json.write_text(json.dumps([r for _, r in rows], indent=2))


if __name__ == "__main__":
    main()
