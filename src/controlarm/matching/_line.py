"""Optimal k:1 matching on a line: dynamic programming over sorted scores.

For a score distance |s_t - s_c| the cost matrix is Monge: for s_t1 <= s_t2 and s_c1 <= s_c2,
|s_t1 - s_c1| + |s_t2 - s_c2| <= |s_t1 - s_c2| + |s_t2 - s_c1|. Uncrossing two pairs therefore
never costs more, so some optimal matching pairs the treated slots (each treated patient repeated k
times, sorted by score) with the controls it uses *in sorted order*. What is left is to choose
which controls to use, a dynamic program over (controls seen, slots filled):

    f_i[j] = min(f_{i-1}[j], f_{i-1}[j-1] + |c_i - t_j|)

O(N x M) time, vectorised over the M slots, with one bit per cell kept for the backtrack. It is
exact for the full stratum (no pruning), and used when every slot can be filled (no caliper, no
covariate caliper, at least k x n controls in each stratum) and the pruned graph could not be
certified in its first round: contested pools where the optimum moves controls a long way
along the score (1,000 treated x 10,000 candidates: 0.3 s instead of tens of seconds).

References
----------
Aggarwal, A., Bar-Noy, A., Khuller, S., Kravets, D., & Schieber, B. (1995). Efficient minimum
cost matching and transportation using the quadrangle inequality. *Journal of Algorithms*,
19(1), 116-143.

Rosenbaum, P. R. (1989). Optimal matching for observational studies. *JASA*, 84(408),
1024-1032. https://doi.org/10.1080/01621459.1989.10478868
"""

from __future__ import annotations

import numpy as np

__all__ = ["line_optimal", "LINE_MAX_CELLS"]

LINE_MAX_CELLS = 120_000_000  # controls x slots per stratum (one byte per cell for the backtrack)


def line_optimal(t_score: np.ndarray, k: int, c_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum total |score difference| with every treated patient getting k distinct controls.

    Parameters
    ----------
    t_score : ndarray (n,)
        Treated scores (any order).
    k : int
        Controls per treated patient.
    c_score : ndarray (N,), N >= k n
        Candidate scores (any order).

    Returns
    -------
    (t_index, c_index) : ndarray, ndarray
        Positions into ``t_score`` and ``c_score`` of the n k chosen pairs.
    """
    n, N = len(t_score), len(c_score)
    M = n * k
    if M > N:
        raise ValueError("line_optimal needs at least k controls per treated patient")
    t_ord = np.argsort(t_score, kind="stable")
    c_ord = np.argsort(c_score, kind="stable")
    slots = np.repeat(t_score[t_ord], k)
    cs = c_score[c_ord]
    f = np.full(M + 1, np.inf)
    f[0] = 0.0
    took = np.zeros((N, M), dtype=bool)
    for i in range(N):
        # slot j can be filled by control i only if j <= i and the remaining controls can fill the rest
        lo = max(0, M - (N - i))
        hi = min(i, M - 1)
        if lo > hi:
            continue
        cand = f[lo : hi + 1] + np.abs(cs[i] - slots[lo : hi + 1])
        better = cand < f[lo + 1 : hi + 2]
        took[i, lo : hi + 1] = better
        f[lo + 1 : hi + 2] = np.where(better, cand, f[lo + 1 : hi + 2])
    # backtrack
    t_idx = np.empty(M, dtype=np.int64)
    c_idx = np.empty(M, dtype=np.int64)
    j = M
    for i in range(N - 1, -1, -1):
        if j == 0:
            break
        if took[i, j - 1]:
            t_idx[j - 1] = t_ord[(j - 1) // k]
            c_idx[j - 1] = c_ord[i]
            j -= 1
    if j != 0:  # pragma: no cover - M <= N guarantees a full path
        raise RuntimeError("line_optimal: no full assignment found")
    return t_idx, c_idx
