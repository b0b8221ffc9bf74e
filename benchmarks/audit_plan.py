"""Benchmark of the audit and plan rooms (issue 10), printed as a table.

1. The audit of a 50-set 1:4 design (50 treated, 200 controls; 5 vs 60 deaths): too many
   allocations to enumerate, so ``n_samples`` seeded patient-level draws, each distinct allocation
   tested with the exact conditional test, CMH (with and without correction), the log-rank test
   by set, Rosenbaum's critical Gamma and the pseudo-pair tests. Also timed: the enumeration of a
   50-set 1:4 design with 0 vs 40 deaths (632 distinct allocations, all enumerated).
2. The free-days simulation: 10,000 simulated trials of the Mann-Whitney test at one size, and the
   full ``plan_free_days`` size search (bisection, 10,000 trials per size).

Run:  .venv/bin/python benchmarks/audit_plan.py [--n-samples 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from controlarm.audit import audit_matched_binary  # noqa: E402
from controlarm.plan import plan_free_days, simulate_power_free_days, treated_distribution  # noqa: E402

FREE_DAYS = [0] * 8 + [5, 10, 12, 14, 15, 17, 18, 19, 20, 21, 22, 22, 23, 24, 25, 26]


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-samples", type=int, default=2000)
    args = ap.parse_args()
    rows = []
    t, res = _time(lambda: audit_matched_binary((50, 4), 5, 60, n_samples=args.n_samples, seed=0))
    d = res.distribution["exact_conditional"]
    rows.append(("audit 50 sets 1:4, 5 vs 60 deaths (sampled)", t,
                 f"{res.n_samples} draws, {res.n_distinct} distinct; exact p "
                 f"{d['min']:.2g}-{d['max']:.2g}, share<0.05 {d['share_below_alpha']:.3f}"
                 f" +/- {d['mc_se']:.3f}"))
    t, res = _time(lambda: audit_matched_binary((50, 4), 0, 40, max_enumeration=10**5))
    d = res.distribution["exact_conditional"]
    rows.append(("audit 50 sets 1:4, 0 vs 40 deaths (enumerated)", t,
                 f"{res.n_distinct} distinct allocations; exact p {d['min']:.2g}-{d['max']:.2g}"))
    s = np.unique(FREE_DAYS)
    p0 = np.array([FREE_DAYS.count(v) for v in s]) / len(FREE_DAYS)
    p1 = treated_distribution(s, p0, odds_ratio=2.0)[1]
    t, (pw, se) = _time(lambda: simulate_power_free_days(100, p0, p1, n_sims=10_000, seed=0))
    rows.append(("free days: 10,000 simulated trials, n = 100 per arm", t,
                 f"power {pw:.3f} +/- {se:.3f} (MC SE)"))
    t, ss = _time(lambda: plan_free_days(FREE_DAYS, odds_ratio=2.0, n_sims=10_000, seed=0))
    rows.append(("free days: plan_free_days size search, 10,000 trials/size", t,
                 f"n = {ss.n_control} per arm, power {ss.simulated_power:.3f} +/- {ss.mc_se:.3f}"))
    w = max(len(r[0]) for r in rows)
    print(f"{'task':<{w}}  {'seconds':>8}  result")
    for name, sec, note in rows:
        print(f"{name:<{w}}  {sec:>8.3f}  {note}")


if __name__ == "__main__":
    main()
