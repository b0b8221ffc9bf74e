"""Who may match whom: exact strata, calipers, covariate calipers, common support; candidate lists.

``eligible_counts`` counts, for every treated patient, the candidates in its exact stratum and the
candidates that also pass every caliper (the audit's "eligible candidates"). ``candidate_lists``
gives each treated patient its K nearest eligible candidates together with a *lower bound* on the
distance of every eligible candidate left off its list; optimal matching uses the bound to prove
that pruning did not change the optimum (see ``_optimal.py``).

Score distances use the sorted scores of each stratum (O(log n) per treated patient plus a window);
metric and matrix distances compute treated x candidate blocks in chunks of about 4 million pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._problem import MatchingProblem

__all__ = ["CandidateGraph", "strata_groups", "eligible_counts", "candidate_lists", "CHUNK_PAIRS"]

CHUNK_PAIRS = 4_000_000


@dataclass(frozen=True)
class CandidateGraph:
    """Eligible (treated, control) pairs kept for matching.

    Attributes
    ----------
    tp : ndarray of int
        Position of the treated patient (into ``MatchingProblem.treated``).
    cr : ndarray of int
        Frame row of the control.
    d : ndarray of float
        Exact distance of the pair.
    lb : ndarray of float, one per treated patient
        A lower bound on the distance of every eligible control *not* in the list (inf when the
        list holds every eligible control).
    """

    tp: np.ndarray
    cr: np.ndarray
    d: np.ndarray
    lb: np.ndarray

    @property
    def complete(self) -> np.ndarray:
        return ~np.isfinite(self.lb)


def strata_groups(problem: MatchingProblem) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per exact stratum: (positions of active treated, control rows in data order)."""
    active = problem.active if problem.active is not None else np.ones(problem.n_treated, dtype=bool)
    tpos = np.flatnonzero(active)
    if problem.strata is None:
        return [(tpos, problem.controls)] if len(tpos) else []
    st = problem.strata[problem.treated[tpos]]
    sc = problem.strata[problem.controls]
    out = []
    c_order = np.argsort(sc, kind="stable")
    c_sorted = sc[c_order]
    for s in np.unique(st):
        lo, hi = np.searchsorted(c_sorted, s, "left"), np.searchsorted(c_sorted, s, "right")
        out.append((tpos[st == s], problem.controls[np.sort(c_order[lo:hi])]))
    return out


def _sorted_scores(problem: MatchingProblem, crow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = problem.distance.score[crow]  # type: ignore[index]
    o = np.argsort(s)
    return s[o], crow[o]


def _range_count(vals: np.ndarray, x: np.ndarray, cal: float) -> np.ndarray:
    """How many of the sorted ``vals`` satisfy |v - x| <= cal, exactly as the elementwise test decides."""
    n = len(vals)
    lo = np.searchsorted(vals, x - cal, "left")
    hi = np.searchsorted(vals, x + cal, "right")
    for _ in range(4):  # rounding of x +- cal may misplace the edges by an element or two
        grow_lo = (lo > 0) & (np.abs(vals[np.maximum(lo - 1, 0)] - x) <= cal)
        shrink_lo = (lo < hi) & (np.abs(vals[np.minimum(lo, n - 1)] - x) > cal)
        grow_hi = (hi < n) & (np.abs(vals[np.minimum(hi, n - 1)] - x) <= cal)
        shrink_hi = (hi > lo) & (np.abs(vals[np.maximum(hi - 1, 0)] - x) > cal)
        if not (grow_lo.any() or shrink_lo.any() or grow_hi.any() or shrink_hi.any()):
            break
        lo = lo - grow_lo + shrink_lo
        hi = hi + grow_hi - shrink_hi
    return np.maximum(hi - lo, 0)


def _block_mask(problem: MatchingProblem, rows_t: np.ndarray, crow: np.ndarray, D: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Eligibility of a block: finite, within the caliper (exact near the edge), covariate calipers."""
    ok = np.isfinite(D)
    cal = problem.caliper
    if cal is not None:
        ok &= D <= cal + err[:, None]
        near = ok & (D > cal - err[:, None])
        if near.any():
            i, j = np.nonzero(near)
            exact = problem.distance.pairs(rows_t[i], crow[j])
            ok[i[exact > cal], j[exact > cal]] = False
    cov = problem.cov_ok_block(rows_t, crow)
    if cov is not None:
        ok &= cov
    return ok


def _chunks(n_rows: int, width: int) -> range:
    step = max(1, CHUNK_PAIRS // max(width, 1))
    return range(0, n_rows, step)


def eligible_counts(problem: MatchingProblem) -> tuple[np.ndarray, np.ndarray]:
    """Per treated patient: (candidates in its exact stratum, candidates passing every restriction).

    Inactive (discarded) treated patients get 0 and 0.
    """
    n_in = np.zeros(problem.n_treated, dtype=np.int64)
    n_ok = np.zeros(problem.n_treated, dtype=np.int64)
    dist = problem.distance
    plain = problem.caliper is None and not problem.covariate_calipers and dist.kind != "matrix"
    for tpos, crow in strata_groups(problem):
        n_in[tpos] = len(crow)
        if plain or len(crow) == 0:
            n_ok[tpos] = len(crow)
            continue
        rows_t = problem.treated[tpos]
        if dist.kind == "score" and not problem.covariate_calipers:
            vals, _ = _sorted_scores(problem, crow)
            n_ok[tpos] = _range_count(vals, dist.score[rows_t], problem.caliper)  # type: ignore[index,arg-type]
            continue
        prep = dist.prepare(crow)
        for a in _chunks(len(tpos), len(crow)):
            rt = rows_t[a : a + max(1, CHUNK_PAIRS // len(crow))]
            D = dist.block(rt, crow, prep)
            ok = _block_mask(problem, rt, crow, D, dist.block_error(rt, crow, prep))
            n_ok[tpos[a : a + len(rt)]] = ok.sum(axis=1)
    return n_in, n_ok


# --------------------------------------------------------------------------- candidate lists
def candidate_lists(problem: MatchingProblem, k: np.ndarray | None) -> CandidateGraph:
    """The ``k[t]`` nearest eligible controls of each active treated patient, with lower bounds.

    Parameters
    ----------
    problem : MatchingProblem
    k : ndarray of int (one per treated patient) or None
        List length per treated patient; None keeps every eligible control (complete lists).

    Returns
    -------
    CandidateGraph
        Lists may be shorter than ``k`` when fewer controls are eligible. ``lb[t]`` bounds from below
        the distance of every eligible control not listed for t (inf: the list is complete).
    """
    tps, crs, ds = [], [], []
    lb = np.full(problem.n_treated, np.inf)
    for tpos, crow in strata_groups(problem):
        if len(crow) == 0 or len(tpos) == 0:
            continue
        kk = np.full(len(tpos), len(crow), dtype=np.int64) if k is None else np.minimum(k[tpos], len(crow))
        if problem.distance.kind == "score":
            parts = _score_lists(problem, tpos, crow, kk)
        else:
            parts = _block_lists(problem, tpos, crow, kk)
        for tp_, cr_, d_, lbt in parts:
            tps.append(tp_)
            crs.append(cr_)
            ds.append(d_)
            lb[lbt[0]] = lbt[1]
    if not tps:
        e = np.zeros(0, dtype=np.int64)
        return CandidateGraph(tp=e, cr=e, d=np.zeros(0), lb=lb)
    return CandidateGraph(tp=np.concatenate(tps), cr=np.concatenate(crs), d=np.concatenate(ds), lb=lb)


def _take_k(D: np.ndarray, ok: np.ndarray, kk: np.ndarray, err: np.ndarray | None = None):
    """Per row of D: the kk smallest eligible entries (columns, distances) and the next one (lower bound)."""
    Dm = np.where(ok, D, np.inf)
    kmax = int(kk.max())
    width = Dm.shape[1]
    if kmax + 1 < width:
        part = np.argpartition(Dm, kmax, axis=1)[:, : kmax + 1]
    else:
        part = np.broadcast_to(np.arange(width), (Dm.shape[0], width))
    pd_ = np.take_along_axis(Dm, part, axis=1)
    o = np.argsort(pd_, axis=1, kind="stable")
    part = np.take_along_axis(part, o, axis=1)
    pd_ = np.take_along_axis(pd_, o, axis=1)
    n_ok = ok.sum(axis=1)
    rows, cols, nxt = [], [], np.full(D.shape[0], np.inf)
    for i in range(D.shape[0]):
        m = int(min(kk[i], n_ok[i]))
        rows.append(np.full(m, i, dtype=np.int64))
        cols.append(part[i, :m])
        if n_ok[i] > m:
            nxt[i] = pd_[i, m] - (err[i] if err is not None else 0.0)
    return np.concatenate(rows), np.concatenate(cols), nxt


def _knn_lists(problem: MatchingProblem, tpos: np.ndarray, crow: np.ndarray, kk: np.ndarray):
    """Large metric strata without covariate calipers: scikit-learn's brute-force k-NN (tiled, parallel).

    The K+1 nearest of each treated patient among all controls; a distance caliper only drops
    entries, because the nearest eligible controls are the nearest ones within the caliper.
    """
    from sklearn.neighbors import NearestNeighbors  # lazy

    dist = problem.distance
    rows_t = problem.treated[tpos]
    prep = dist.prepare(crow)
    kmax = int(min(kk.max() + 1, len(crow)))
    nn = NearestNeighbors(n_neighbors=kmax, algorithm="brute").fit(prep["B"])
    approx, idx = nn.kneighbors(dist.Z[rows_t])  # type: ignore[index]
    err = dist.block_error(rows_t, crow, prep)
    cal = problem.caliper
    for i in range(len(tpos)):
        k_i = int(kk[i])
        cols = idx[i, :k_i]
        d = dist.pairs(np.full(len(cols), rows_t[i]), crow[cols])
        keep = np.ones(len(cols), dtype=bool) if cal is None else d <= cal
        nxt = approx[i, k_i] - err[i] if k_i < kmax else np.inf
        if cal is not None and nxt > cal + err[i]:
            nxt = np.inf
        if k_i >= len(crow):
            nxt = np.inf
        yield np.full(int(keep.sum()), tpos[i]), crow[cols[keep]], d[keep], (tpos[i : i + 1], np.array([max(nxt, 0.0)]))


def _block_lists(problem: MatchingProblem, tpos: np.ndarray, crow: np.ndarray, kk: np.ndarray):
    dist = problem.distance
    if (dist.kind == "metric" and not problem.covariate_calipers and len(tpos) * len(crow) > 4 * CHUNK_PAIRS
            and kk.max() < len(crow)):
        yield from _knn_lists(problem, tpos, crow, kk)
        return
    rows_t = problem.treated[tpos]
    step = max(1, CHUNK_PAIRS // len(crow))
    prep = dist.prepare(crow)
    for a in range(0, len(tpos), step):
        rt, kb = rows_t[a : a + step], kk[a : a + step]
        D = dist.block(rt, crow, prep)
        err = dist.block_error(rt, crow, prep)
        ok = _block_mask(problem, rt, crow, D, err)
        i, j, nxt = _take_k(D, ok, kb, err if dist.kind == "metric" else None)
        d = dist.pairs(rt[i], crow[j]) if dist.kind == "metric" else D[i, j]
        yield tpos[a : a + step][i], crow[j], d, (tpos[a : a + step], np.maximum(nxt, 0.0))


def _score_lists(problem: MatchingProblem, tpos: np.ndarray, crow: np.ndarray, kk: np.ndarray):
    """K nearest eligible by score, from a window of the sorted scores around each treated score.

    Outside a window [a, b) every control is at least as far as the first one outside it (the
    scores are sorted), so min(next eligible inside, nearest outside) is a valid lower bound even
    when covariate calipers thin the window out.
    """
    dist = problem.distance
    vals, rows_sorted = _sorted_scores(problem, crow)
    m = len(vals)
    cal = problem.caliper
    for kval in np.unique(kk):
        sel = np.flatnonzero(kk == kval)
        tp = tpos[sel]
        rt = problem.treated[tp]
        x = dist.score[rt]  # type: ignore[index]
        half = int(kval) + 1
        if 2 * half >= m:
            a = np.zeros(len(tp), dtype=np.int64)
            width = m
        else:
            p = np.searchsorted(vals, x)
            a = np.clip(p - half, 0, m - 2 * half)
            width = 2 * half
        idx = a[:, None] + np.arange(width)[None, :]
        D = np.abs(vals[idx] - x[:, None])
        ok = np.ones_like(D, dtype=bool) if cal is None else D <= cal
        if problem.covariate_calipers:
            cj = rows_sorted[idx]
            for cc in problem.covariate_calipers:
                ok &= np.abs(cc.values[cj] - cc.values[rt][:, None]) <= cc.width
        i, j, nxt = _take_k(D, ok, np.full(len(tp), kval))
        # the nearest control outside the window bounds everything beyond it
        left = np.where(a > 0, np.abs(vals[np.maximum(a - 1, 0)] - x), np.inf)
        right = np.where(a + width < m, np.abs(vals[np.minimum(a + width, m - 1)] - x), np.inf)
        outside = np.minimum(left, right)
        if cal is not None:
            outside = np.where(outside <= cal, outside, np.inf)
        bound = np.minimum(nxt, outside)
        cols = idx[i, j]
        yield tp[i], rows_sorted[cols], D[i, j], (tp, bound)
