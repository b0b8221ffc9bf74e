"""Plan room: the Monte Carlo engine shared by every simulated power: seeded, vectorised, and
parallel across processes, with results that do not depend on the number of workers.

The ``n_sims`` simulated trials are cut into fixed chunks of :data:`CHUNK` trials (the last one
shorter). Chunk ``i`` draws from its own generator, seeded by child ``i`` of
``numpy.random.SeedSequence(seed).spawn(n_chunks)``; each chunk returns an integer count of
rejections, and the counts are summed in chunk order. The chunking and the streams depend only on
``(n_sims, seed)``, so 1 worker and 8 workers give the same bits. Within a chunk the trials are
vectorised (one array operation over all of them).

Own code because no installed library offers this reproducible split; it follows NumPy's
documented recipe for parallel streams (``SeedSequence.spawn``) and runs the chunks through
:class:`concurrent.futures.ProcessPoolExecutor`.

References
----------
O'Neill ME. PCG: a family of simple fast space-efficient statistically good algorithms for random
number generation. Harvey Mudd College HMC-CS-2014-0905; 2014 (NumPy's ``SeedSequence`` and
``PCG64``).
Morris TP, White IR, Crowther MJ. Using simulation studies to evaluate statistical methods. Stat
Med 2019;38:2074-2102. doi:10.1002/sim.8086 (Monte Carlo standard error of a proportion).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["CHUNK", "simulate_rejections", "executor", "resolve_workers", "Kernel"]

#: Simulated trials per chunk. Fixed: changing it changes the random streams (and the results).
CHUNK = 1000

#: A kernel draws ``size`` trials from ``rng`` and returns how many rejected the null.
Kernel = Callable[..., int]


def resolve_workers(workers: int | None) -> int:
    """``None`` or ``0``: every core (``os.cpu_count()``); otherwise the integer given (>= 1)."""
    if workers is None or workers == 0:
        return max(1, os.cpu_count() or 1)
    if not isinstance(workers, (int, np.integer)) or workers < 0:
        raise InputError(f"workers must be a whole number >= 0 (0 = every core); got {workers!r}")
    return int(workers)


@contextmanager
def executor(workers: int | None) -> Iterator[Executor | None]:
    """A process pool for ``workers > 1`` (closed on exit), else ``None`` (run in this process).

    Open one around a search that simulates many sizes, so that the pool starts once.
    """
    n = resolve_workers(workers)
    if n <= 1:
        yield None
        return
    import multiprocessing

    # forkserver: a clean server process (no inherited threads or locks from DuckDB or BLAS)
    if os.name == "posix":
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["controlarm.plan"])  # workers fork with numpy/scipy loaded
    else:  # pragma: no cover
        ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        yield pool


def _chunk(task: tuple[Kernel, tuple[Any, ...], int, np.random.SeedSequence]) -> int:
    kernel, args, size, seq = task
    return int(kernel(np.random.default_rng(seq), size, *args))


def simulate_rejections(kernel: Kernel, args: tuple[Any, ...], n_sims: int, seed: int, *,
                        workers: int | None = 1, pool: Executor | None = None
                        ) -> tuple[float, float]:
    """Simulated power ``rejections / n_sims`` and its Monte Carlo standard error.

    Parameters
    ----------
    kernel : callable
        A module-level function ``kernel(rng, size, *args) -> int`` (picklable).
    args : tuple
        Its further arguments (arrays and numbers).
    n_sims, seed : int
        Simulated trials and the root seed.
    workers : int or None
        Processes when no ``pool`` is given (1: this process; 0 or None: every core).
    pool : Executor, optional
        An open pool from :func:`executor` (reused across calls).

    Returns
    -------
    (float, float)
        Power and ``sqrt(p (1 - p) / n_sims)``; identical for any number of workers.
    """
    if not isinstance(n_sims, (int, np.integer)) or n_sims < 1:
        raise InputError(f"n_sims must be a whole number >= 1; got {n_sims!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a whole number >= 0; got {seed!r}")
    n_chunks = -(-int(n_sims) // CHUNK)
    sizes = [CHUNK] * (n_chunks - 1) + [int(n_sims) - CHUNK * (n_chunks - 1)]
    seqs = np.random.SeedSequence(int(seed)).spawn(n_chunks)
    tasks = [(kernel, args, s, q) for s, q in zip(sizes, seqs)]
    if pool is None and n_chunks > 1 and resolve_workers(workers) > 1:
        with executor(min(resolve_workers(workers), n_chunks)) as own:
            counts = list(own.map(_chunk, tasks))
    elif pool is not None and n_chunks > 1:
        counts = list(pool.map(_chunk, tasks))
    else:
        counts = [_chunk(t) for t in tasks]
    p = sum(counts) / int(n_sims)
    return p, float(math.sqrt(max(p * (1 - p), 0.0) / int(n_sims)))
