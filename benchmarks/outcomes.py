"""Benchmark: controlarm's outcome derivation against hand-written DuckDB queries, same data, same run.

    .venv/bin/python benchmarks/outcomes.py                       # 10k, 1M, 5M; best of 3 (5M: of 2)
    .venv/bin/python benchmarks/outcomes.py --sizes 10k,1M --repeats 5

Data: ``tests._synth`` hospitalizations (about 30 days of records each: ~26 respiratory records, ~8
D-dimers, adt, ECMO runs, readmissions), written once per size as Parquet under ``--data-dir``
(default /tmp/controlarm-bench, never the repository) and reused.

Each measurement runs in a fresh Python process, so its peak memory (ru_maxrss: Python, DuckDB and
the result frame) is its own. Every process opens the folder with ``controlarm.sources.open_sources``
(timed apart as "open"), exposes ``index.parquet`` as the view ``bench_index`` and then times one
query to a pandas frame ordered by patient:

* ``controlarm``: ``derive_endpoints(sources, "bench_index", study)`` for the study below (it also
  returns the free-days components, 8 more columns);
* ``hand-written bitmask`` / ``hand-written group-by``: ``benchmarks/_handwritten.py``.

The endpoint columns of every variant are checked equal to controlarm's (death time to 1e-12).
The machine is shared (2 cores), so each cell is the best of N interleaved runs, and the query's CPU
time (user + system) is reported beside its wall time: under contention the wall time swings by
50% from run to run, the CPU time by a few percent. DuckDB runs with 2 threads.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000, "5M": 5_000_000}
SEED = 20240501
STUDY = {
    "study": {"name": "benchmark"},
    "data": {"source": "data", "cutoff": "2022-06-01"},
    "index": {"product": "MSC", "pool": {"location": "icu"}},
    "features": {"covariates": [{"name": "age", "kind": "age"}]},
    "matching": {"covariates": ["age"]},
    "outcomes": {"survival_days": [28, 60], "need_imv": True, "free_days": ["imv", "hfno", "oxygen", "icu"],
                 "free_days_horizon": 28, "free_days_death_value": 0, "max_gap_hours": 24,
                 "labs": [{"category": "d_dimer", "day": 7, "window_days": 1}]},
}
ENDPOINTS = ["alive_d28", "alive_d60", "death_time_days", "death_event", "need_imv", "imv_free_days_28",
             "hfno_free_days_28", "oxygen_free_days_28", "icu_free_days_28", "d_dimer_d7"]


def _data(size: str, data_dir: Path) -> Path:
    folder = data_dir / f"synth-{size}-{SEED}"
    done = folder / "DONE"
    if not done.exists():
        sys.path.insert(0, str(ROOT))
        from tests._synth import write_parquet

        t = time.perf_counter()
        counts = write_parquet(folder, SIZES[size], SEED)
        done.write_text(json.dumps(counts))
        print(f"  generated {size} in {time.perf_counter() - t:.0f} s: {counts}", file=sys.stderr)
    return folder


def _worker(variant: str, folder: str, out: str, threads: int, memory_limit: str | None) -> None:
    """One measurement, in its own process; prints a JSON line."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "src"))
    from controlarm.outcomes import derive_endpoints
    from controlarm.sources import open_sources
    from controlarm.spec import study_from_dict

    t0 = time.perf_counter()
    sources = open_sources(folder)
    con = sources.con
    con.execute(f"SET threads = {threads}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"CREATE VIEW bench_index AS SELECT * FROM read_parquet('{Path(folder) / 'index.parquet'}')")
    t_open = time.perf_counter() - t0
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t1 = time.perf_counter()
    if variant == "controlarm":
        frame = derive_endpoints(sources, "bench_index", study_from_dict(STUDY))
    else:
        from benchmarks._handwritten import QUERIES

        frame = con.execute(QUERIES[variant]).df()
    t_query = time.perf_counter() - t1
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    peak = r1.ru_maxrss / 1024**2  # KiB -> GiB
    frame[["patient_id"] + ENDPOINTS].to_parquet(out, index=False)
    print(json.dumps({"open_s": t_open, "query_s": t_query, "cpu_s": cpu, "peak_gb": peak, "rows": len(frame)}))


def _measure(variant: str, folder: Path, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", variant, str(folder), str(out), str(args.threads),
           args.memory_limit or ""]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _same(a: Path, b: Path) -> str:
    import numpy as np
    import pandas as pd

    x, y = pd.read_parquet(a), pd.read_parquet(b)
    if list(x["patient_id"]) != list(y["patient_id"]):
        return "rows differ"
    bad = []
    for col in ENDPOINTS:
        u, v = x[col].to_numpy(float), y[col].to_numpy(float)
        if col == "death_time_days":
            ok = np.isclose(u, v, rtol=1e-12, atol=0) | (np.isnan(u) & np.isnan(v))
        else:
            ok = (u == v) | (np.isnan(u) & np.isnan(v))
        if not ok.all():
            bad.append(f"{col}:{int((~ok).sum())}")
    return "identical" if not bad else "DIFFER " + " ".join(bad)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10k,1M,5M")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--repeats-5m", type=int, default=2)
    p.add_argument("--variants", default="controlarm,hand-written bitmask,hand-written group-by")
    p.add_argument("--variants-5m", default="controlarm,hand-written bitmask",
                   help="variants at 5M (the group-by shape needs far more time and memory there)")
    p.add_argument("--data-dir", default="/tmp/controlarm-bench")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 16GB")
    p.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        variant, folder, out, threads, mem = args.worker
        _worker(variant, folder, out, int(threads), mem or None)
        return 0
    data_dir = Path(args.data_dir)
    if str(data_dir.resolve()).startswith(str(ROOT)):
        p.error("--data-dir must lie outside the repository")
    variants = [v.strip() for v in args.variants.split(",")]
    rows = []
    for size in [s.strip() for s in args.sizes.split(",")]:
        folder = _data(size, data_dir)
        repeats = args.repeats_5m if size == "5M" else args.repeats
        size_variants = [v.strip() for v in args.variants_5m.split(",")] if size == "5M" else variants
        runs: dict[str, list[dict]] = {}
        # interleave the variants so a busy moment on the shared machine does not hit one variant only
        for r in range(repeats):
            for v in size_variants:
                out = data_dir / f"result-{size}-{v.replace(' ', '_')}.parquet"
                m = _measure(v, folder, out, args)
                print(f"  {size} {v} run {r + 1}: query {m['query_s']:.2f} s (CPU {m['cpu_s']:.2f} s), "
                      f"open {m['open_s']:.2f} s, peak {m['peak_gb']:.2f} GB", file=sys.stderr, flush=True)
                runs.setdefault(v, []).append(m)
        best = {v: {"query_s": min(m["query_s"] for m in ms), "cpu_s": min(m["cpu_s"] for m in ms),
                    "open_s": min(m["open_s"] for m in ms), "peak_gb": max(m["peak_gb"] for m in ms)}
                for v, ms in runs.items()}
        ref = data_dir / f"result-{size}-controlarm.parquet"
        for v in size_variants:
            out = data_dir / f"result-{size}-{v.replace(' ', '_')}.parquet"
            check = "—" if v == "controlarm" else _same(ref, out)
            rows.append((size, v, best[v], check))
    hand = {size: min(m["query_s"] for s, v, m, _ in rows if s == size and v.startswith("hand-written"))
            for size, *_ in rows if any(v.startswith("hand-written") for _, v, *_ in rows)}
    hand_cpu = {size: min(m["cpu_s"] for s, v, m, _ in rows if s == size and v.startswith("hand-written"))
                for size in hand}
    print(f"\n| size | variant | best wall (s) | best CPU (s) | open (s) | peak RSS (GB) | wall vs best hand | "
          f"CPU vs best hand | check |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for size, v, m, check in rows:
        ratio = f"{m['query_s'] / hand[size]:.2f}x" if size in hand else "—"
        cratio = f"{m['cpu_s'] / hand_cpu[size]:.2f}x" if size in hand else "—"
        print(f"| {size} | {v} | {m['query_s']:.2f} | {m['cpu_s']:.2f} | {m['open_s']:.2f} | {m['peak_gb']:.2f} | "
              f"{ratio} | {cratio} | {check} |")
    print(f"\nbest of {args.repeats} runs (5M: {args.repeats_5m}), variants interleaved; DuckDB threads = "
          f"{args.threads}; CPU = user + system time of the query; peak RSS = the worst run's maximum resident "
          f"set of its process; data in {data_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
