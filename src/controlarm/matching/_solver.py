"""Exact minimum-cost assignment of control units to treated slots (scipy's sparse LAPJV).

Each treated patient t owns ``hi[t]`` slot rows; a control unit is a column and serves at most one
slot. Every row may also take a private *dummy* column ("slot left empty") at a penalty, so a
full matching always exists, and the penalties order the objectives lexicographically:

1. (variable ratio only) use every *skip* column, i.e. fill no more than ``total`` slots in all;
2. fill as many mandatory slots as possible (the first ``lo[t]`` slots of each treated patient:
   the first control, or ``min_controls``), so as many treated patients as possible are matched;
3. then fill as many further slots as possible;
4. then minimise the total distance.

Each penalty exceeds the largest change the next objective can make along one alternating path
(rows x the largest distance), which is what the exchange argument needs: the symmetric difference
of two assignments splits into alternating paths, each of which moves at most one row in or out of
a dummy column.

The solver is ``scipy.sparse.csgraph.min_weight_full_bipartite_matching`` (LAPJVsp): exact on
floating-point costs, so no rounding of distances to integers is needed. benchmarks/matching.py
compares it with OR-Tools' integer min-cost flow.

References
----------
Jonker, R., & Volgenant, A. (1987). A shortest augmenting path algorithm for dense and sparse
linear assignment problems. *Computing*, 38(4), 325-340. https://doi.org/10.1007/BF02278710

Ming, K., & Rosenbaum, P. R. (2001). A note on optimal matching with variable controls using the
assignment algorithm. *Journal of Computational and Graphical Statistics*, 10(3), 455-463.
https://doi.org/10.1198/106186001317114938
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from ..errors import InputError

__all__ = ["SlotSolution", "solve_slots", "SKIP_BLOCK_LIMIT"]

SKIP_BLOCK_LIMIT = 30_000_000  # optional rows x skip columns (variable ratio); a dense block
_TINY = 1e-300  # LAPJVsp drops explicit zeros; a shift this small changes no cost that matters


@dataclass(frozen=True)
class SlotSolution:
    """Chosen (treated position, unit, distance) triples and the objective counts."""

    tp: np.ndarray
    unit: np.ndarray
    d: np.ndarray
    used_units: np.ndarray  # bool per unit

    @property
    def total(self) -> float:
        return float(self.d.sum())


def solve_slots(
    tp: np.ndarray,
    unit: np.ndarray,
    d: np.ndarray,
    *,
    n_treated: int,
    n_units: int,
    hi: np.ndarray,
    lo: np.ndarray,
    total: int | None = None,
    bound: float | None = None,
) -> SlotSolution:
    """Assign units to slots optimally (see the module docstring for the objective).

    Parameters
    ----------
    tp, unit, d : ndarray
        Allowed edges: treated position, unit index (0..n_units-1), distance (finite, >= 0).
    n_treated, n_units : int
    hi, lo : ndarray of int (one per treated position)
        Most and mandatory slots per treated patient (lo <= hi).
    total : int, optional
        Variable ratio: fill at most this many slots in all.
    bound : float, optional
        An upper bound on any distance that could ever be allowed (penalties are sized from it, so
        the objective means the same on a pruned and on the full candidate graph).
    """
    hi = np.asarray(hi, dtype=np.int64)
    lo = np.minimum(np.asarray(lo, dtype=np.int64), hi)
    n_rows = int(hi.sum())
    if n_rows == 0:
        e = np.zeros(0, dtype=np.int64)
        return SlotSolution(tp=e, unit=e, d=np.zeros(0), used_units=np.zeros(n_units, dtype=bool))
    ub = float(bound if bound is not None else (d.max() if len(d) else 0.0))
    ub = max(ub, 1.0 if ub == 0 else ub)
    step = ub * (n_rows + 1) + 1.0
    p_opt = step  # empty optional slot
    p_mand = 2.0 * step  # empty mandatory slot (p_mand - p_opt > rows x ub)
    n_opt_total = int((hi - lo).sum())
    n_skip = 0
    if total is not None:
        n_skip = max(0, n_rows - int(total))
        n_skip = min(n_skip, n_opt_total)
    shift = 3.0 * step if n_skip else _TINY  # a used skip column saves 'shift': objective 1

    first_row = np.concatenate([[0], np.cumsum(hi)[:-1]])
    # edges: each edge of treated t is repeated on every slot row of t
    reps = hi[tp]
    e_rows = np.repeat(first_row[tp], reps) + _ramp(reps)
    e_cols = np.repeat(unit, reps)
    e_w = np.repeat(d, reps) + shift
    rows_all = np.arange(n_rows)
    owner = np.repeat(np.arange(n_treated), hi)
    slot_no = rows_all - first_row[owner]
    mandatory = slot_no < lo[owner]
    dummy_w = np.where(mandatory, p_mand, p_opt) + shift
    r_parts = [e_rows, rows_all]
    c_parts = [e_cols, n_units + rows_all]
    w_parts = [e_w, dummy_w]
    if n_skip:
        opt_rows = rows_all[~mandatory]
        if len(opt_rows) * n_skip > SKIP_BLOCK_LIMIT:
            raise InputError(
                f"variable-ratio optimal matching would need a {len(opt_rows)} x {n_skip} block of skip edges "
                f"(more than {SKIP_BLOCK_LIMIT:,}); use a fixed ratio, fewer treated patients per exact stratum, "
                "or max_controls closer to the ratio"
            )
        r_parts.append(np.repeat(opt_rows, n_skip))
        c_parts.append(np.tile(n_units + n_rows + np.arange(n_skip), len(opt_rows)))
        w_parts.append(np.full(len(opt_rows) * n_skip, _TINY))
    n_cols = n_units + n_rows + n_skip
    M = sparse.csr_matrix(
        (np.concatenate(w_parts), (np.concatenate(r_parts), np.concatenate(c_parts))), shape=(n_rows, n_cols)
    )
    r, c = min_weight_full_bipartite_matching(M)
    real = c < n_units
    r, c = r[real], c[real].astype(np.int64)
    t_of = owner[r]
    # recover each chosen edge's distance from the edge list (not from the shifted weights)
    key = t_of * n_units + c
    ekey = tp.astype(np.int64) * n_units + unit
    order = np.argsort(ekey, kind="stable")
    pos = order[np.searchsorted(ekey[order], key)]
    used = np.zeros(n_units, dtype=bool)
    used[c] = True
    return SlotSolution(tp=t_of, unit=c, d=d[pos], used_units=used)


def _ramp(reps: np.ndarray) -> np.ndarray:
    """0..reps[i]-1 for each i, concatenated."""
    total = int(reps.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(reps) - reps, reps)
    return np.arange(total) - starts
