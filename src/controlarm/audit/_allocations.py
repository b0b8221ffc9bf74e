"""Audit room: every allocation of events to matched sets that is consistent with published counts.

Own code because no library enumerates the ways ``T`` treated and ``C`` control events can fall
across matched sets of given sizes, with the multiplicities needed to weight them.

An allocation is described at set level by ``(k_s, t_s, c_s)`` per set: ``k_s`` controls, whether
the treated patient had the event (``t_s``) and how many controls did (``c_s``). The matched-set
tests depend only on the multiset of these triples (sets of equal size are exchangeable), so each
*distinct* configuration is tested once and carries two weights:

* ``w_patient``: the number of patient-level configurations (which patients had the event) that
  give it, ``prod_groups [g! / prod_types n_type!] * prod_sets C(k_s, c_s)``;
* ``w_table``: the number of labelled set-level tables (which set has which ``(t_s, c_s)``),
  ``prod_groups g! / prod_types n_type!``.

The patient-level weights sum to ``C(n_sets, T) * C(n_controls, C)``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache

import numpy as np

__all__ = ["Design", "enumerate_allocations", "sample_allocations", "count_allocations"]


class Design:
    """Matched sets sorted by size: ``k`` (controls per set), groups ``(k, g)``."""

    def __init__(self, n_controls_per_set: np.ndarray):
        self.k = np.sort(np.asarray(n_controls_per_set, dtype=np.int64))
        ks, gs = np.unique(self.k, return_counts=True)
        self.groups = [(int(k), int(g)) for k, g in zip(ks, gs)]
        self.n_sets = int(self.k.size)
        self.n_controls = int(self.k.sum())
        self.kmax = int(self.k.max())


def _partitions(c: int, m: int, k: int):
    """Partitions of ``c`` into at most ``m`` parts, each at most ``k`` (non-increasing tuples).
    Every branch leads to a partition (the largest part is at least ``ceil(c / m)``)."""
    if c == 0:
        yield ()
        return
    if m == 0 or c > m * k:
        return
    for p in range(min(k, c), -(-c // m) - 1, -1):
        for rest in _partitions(c - p, m - 1, p):
            yield (p,) + rest


@lru_cache(maxsize=None)
def _n_partitions(c: int, m: int, k: int) -> int:
    """Number of partitions of ``c`` into at most ``m`` parts of at most ``k`` (Gaussian
    binomial recursion)."""
    if c == 0:
        return 1
    if m == 0 or k == 0 or c > m * k:
        return 0
    return _n_partitions(c, m, k - 1) + _n_partitions(c - k, m - 1, k)


def _group_counts(k: int, g: int) -> dict[tuple[int, int], int]:
    """Distinct configurations of one group of ``g`` sets with ``k`` controls, by (T_g, C_g)."""
    out: dict[tuple[int, int], int] = {}
    for tg in range(g + 1):
        for c0 in range((g - tg) * k + 1):
            n0 = _n_partitions(c0, g - tg, k)
            for c1 in range(tg * k + 1):
                out[(tg, c0 + c1)] = out.get((tg, c0 + c1), 0) + n0 * _n_partitions(c1, tg, k)
    return out


def count_allocations(design: Design, t_events: int, c_events: int, limit: int | None = None
                      ) -> int:
    """The number of distinct configurations (exact; ``limit`` is ignored, kept for callers)."""
    total: dict[tuple[int, int], int] = {(0, 0): 1}
    for k, g in design.groups:
        gc = _group_counts(k, g)
        new: dict[tuple[int, int], int] = {}
        for (a, b), n in total.items():
            for (tg, cg), m in gc.items():
                if a + tg <= t_events and b + cg <= c_events:
                    new[(a + tg, b + cg)] = new.get((a + tg, b + cg), 0) + n * m
        total = new
    return total.get((t_events, c_events), 0)


def _weights(k: int, g: int, cs0: tuple[int, ...], cs1: tuple[int, ...]) -> tuple[int, int]:
    table = math.factorial(g)
    extra = 1
    for t, cs in ((0, cs0), (1, cs1)):
        for c, n in Counter(cs).items():
            table //= math.factorial(n)
            extra *= math.comb(k, c) ** n
    return table * extra, table


def enumerate_allocations(design: Design, t_events: int, c_events: int
                          ) -> Iterator[tuple[np.ndarray, int, int]]:
    """Yield ``(config, w_patient, w_table)``; ``config`` is an ``(n_sets, 3)`` int array of
    ``(k, t, c)`` rows in canonical order (by k, then t, then c). No branch is a dead end: each
    group splits its sets into those with a treated event and those without, and each part's
    control events are an integer partition (at most that many parts, each at most ``k``)."""
    groups = design.groups
    cap_c = [sum(k * g for k, g in groups[i:]) for i in range(len(groups) + 1)]
    cap_t = [sum(g for _, g in groups[i:]) for i in range(len(groups) + 1)]

    def rec(gi: int, t_left: int, c_left: int, rows: list, wp: int, wt: int):
        if gi == len(groups):
            yield np.array(rows, dtype=np.int64), wp, wt
            return
        k, g = groups[gi]
        for tg in range(max(0, t_left - cap_t[gi + 1]), min(g, t_left) + 1):
            for cg in range(max(0, c_left - cap_c[gi + 1]), min(g * k, c_left) + 1):
                for c0 in range(max(0, cg - tg * k), min((g - tg) * k, cg) + 1):
                    for p0 in _partitions(c0, g - tg, k):
                        cs0 = tuple(sorted(p0 + (0,) * (g - tg - len(p0))))
                        for p1 in _partitions(cg - c0, tg, k):
                            cs1 = tuple(sorted(p1 + (0,) * (tg - len(p1))))
                            p, t = _weights(k, g, cs0, cs1)
                            new = [(k, 0, c) for c in cs0] + [(k, 1, c) for c in cs1]
                            yield from rec(gi + 1, t_left - tg, c_left - cg, rows + new,
                                           wp * p, wt * t)

    yield from rec(0, t_events, c_events, [], 1, 1)


def sample_allocations(design: Design, t_events: int, c_events: int, n_samples: int,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample patient-level allocations uniformly (seeded, vectorised).

    Returns the distinct configurations, shape ``(n_distinct, n_sets, 3)``, and how many of the
    ``n_samples`` draws gave each.
    """
    rng = np.random.default_rng(seed)
    n_sets, n_c = design.n_sets, design.n_controls
    t = np.zeros((n_samples, n_sets), dtype=np.int64)
    if t_events:
        idx = np.argpartition(rng.random((n_samples, n_sets)), t_events - 1, axis=1)[:, :t_events]
        np.put_along_axis(t, idx, 1, axis=1)
    ev = np.zeros((n_samples, n_c), dtype=np.int64)
    if c_events:
        idx = np.argpartition(rng.random((n_samples, n_c)), c_events - 1, axis=1)[:, :c_events]
        np.put_along_axis(ev, idx, 1, axis=1)
    starts = np.r_[0, np.cumsum(design.k)[:-1]]
    c = np.add.reduceat(ev, starts, axis=1)
    base = design.kmax + 1
    code = design.k[None, :] * (2 * base) + t * base + c
    code = np.sort(code, axis=1)
    uniq, counts = np.unique(code, axis=0, return_counts=True)
    k = uniq // (2 * base)
    rest = uniq % (2 * base)
    configs = np.stack([k, rest // base, rest % base], axis=2)
    return configs, counts
