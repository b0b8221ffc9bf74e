"""Audit room: the per-allocation tests of ``_audit`` computed for many allocations at once.

An audit tests hundreds to thousands of distinct allocations; calling the analysis room's
one-table functions for each (``_audit._config_tests``, kept as the reference path) spends most
of its time in per-call overhead: freezing a scipy distribution per margin, a Python loop of
``np.convolve`` per set for every Poisson-binomial, a Brent search per allocation for
Rosenbaum's Gamma. Here every allocation is a row of an ``(A, S)`` array and each test is a few
array operations over all rows:

* **exact conditional test**: with one treated patient per set, each informative set
  (``0 < m < n`` events) contributes a Bernoulli(``m / n``) to ``S = sum(t)``; the null
  distribution is built by one dynamic programme over sets for all rows (a Poisson-binomial),
  and the two-sided p sums the probabilities not above the observed one times ``1 + 1e-7``,
  as ``analysis.compute_exact_conditional``;
* **Cochran-Mantel-Haenszel** (with and without correction) and the **log-rank test by set**
  without censoring: closed-form sums over sets, exactly the formulas of ``compute_cmh`` and
  ``analysis.compute_logrank`` (one event time per set);
* **Rosenbaum's critical Gamma**: the upper bound ``P(T >= t)`` of the binary statistic at a
  Gamma per row, by the same dynamic programme, and a bisection on ``log Gamma`` run for all
  rows together (45 halvings of ``[0, log 1000]``: the result is the largest Gamma with
  ``p <= alpha`` to a relative 2e-13, tighter than the Brent search of
  ``analysis.critical_gamma``, ``xtol = 1e-7`` on ``log Gamma``);
* **pseudo-pair tests** (McNemar in its four forms and the log-rank test by pseudo-pair) depend
  only on the discordant counts ``(b, c)`` and the pairs where both had the event; they are
  computed by the analysis room once per distinct key, so they are bit-identical to the
  reference path.

Agreement with the reference path (``tests/test_audit.py``): bit-identical for the pseudo-pair
tests; p-values to a relative 1e-12 (summation order differs); Gamma to the reference's own
tolerance. Rows are processed in chunks so that memory stays bounded for large designs.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..analysis import compute_logrank, compute_mcnemar, compute_mcnemar_exact

__all__ = ["batch_tests", "config_tests", "TEST_COLUMNS"]

#: Columns of ``batch_tests`` in the order of the reference path's dict.
TEST_COLUMNS = ("exact_conditional", "mantel_haenszel", "mantel_haenszel_cc", "logrank_by_set",
                "rosenbaum_gamma", "mcnemar_pseudo_pairs", "mcnemar_pseudo_pairs_cc",
                "mcnemar_pseudo_pairs_exact", "mcnemar_pseudo_pairs_midp", "logrank_pseudo_pairs",
                "b_pseudo_pairs", "c_pseudo_pairs")

#: Relative tolerance of "probability <= observed" in the two-sided exact p (as the analysis room).
REL_TOL = 1e-7
GAMMA_MAX = 1000.0
_BISECTIONS = 45
#: Cells (rows x sets) per chunk of the dynamic programmes.
_CHUNK_CELLS = 1 << 21


def _poisson_binomial(q: np.ndarray) -> np.ndarray:
    """Row-wise ``P(sum_s B_s = j)`` for independent ``B_s ~ Bernoulli(q[:, s])``; shape (A, I + 1).

    Columns with ``q = 0`` in every row are dropped first; a zero inside a row leaves that row
    unchanged (``x (1 - 0) + y 0``), so rows of different informative counts share one pass.
    """
    q = q[:, (q > 0).any(axis=0)]
    a, i = q.shape
    dist = np.zeros((a, i + 1))
    dist[:, 0] = 1.0
    for s in range(i):
        qs = q[:, s:s + 1]
        head = dist[:, : s + 2]
        new = head * (1.0 - qs)
        new[:, 1:] += head[:, :-1] * qs
        dist[:, : s + 2] = new
    return dist


def _compact(q: np.ndarray) -> np.ndarray:
    """The non-zero entries of each row moved to its front (order kept): narrower programmes."""
    order = np.argsort(q <= 0, axis=1, kind="stable")
    out = np.take_along_axis(q, order, axis=1)
    width = int((q > 0).sum(axis=1).max()) if q.size else 0
    return out[:, :width]


def _exact_conditional(n: np.ndarray, m: np.ndarray, t: np.ndarray) -> np.ndarray:
    inf = (m > 0) & (m < n)
    q = _compact(np.where(inf, m / n, 0.0))
    dist = _poisson_binomial(q)
    dist = dist / dist.sum(axis=1, keepdims=True)
    idx = (t.sum(axis=1) - (m == n).sum(axis=1)).astype(np.int64)
    p_obs = np.take_along_axis(dist, idx[:, None], axis=1)
    p = np.where(dist <= p_obs * (1 + REL_TOL), dist, 0.0).sum(axis=1)
    return np.clip(p, 0.0, 1.0)


def _cmh(k: np.ndarray, t: np.ndarray, c: np.ndarray, correction: bool) -> np.ndarray:
    """``_audit.compute_cmh`` on the tables ``[[t, 1 - t], [c, k - c]]`` of every row."""
    a, b, cc, d = t.astype(float), (1 - t).astype(float), c.astype(float), (k - c).astype(float)
    n = a + b + cc + d
    r1, r2, c1, c2 = a + b, cc + d, a + cc, b + d
    var = np.where(n > 1, r1 * r2 * c1 * c2 / (n**2 * np.maximum(n - 1, 1)), 0.0).sum(axis=1)
    delta = np.abs((a - r1 * c1 / np.where(n > 0, n, 1)).sum(axis=1))
    if correction:
        delta = np.where(delta >= 0.5, delta - 0.5, delta)
    ok = var > 0
    p = np.full(var.shape, np.nan)
    p[ok] = stats.chi2.sf(delta[ok] ** 2 / var[ok], 1)
    return p


def _logrank_by_set(n: np.ndarray, m: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``analysis.compute_logrank`` stratified by set, every event at one time, no censoring:
    per set ``d = m`` events among ``n`` at risk, one of them treated."""
    nn, d = n.astype(float), m.astype(float)
    frac = 1.0 / nn
    has = m > 0
    obs = t.sum(axis=1).astype(float)
    exp = np.where(has, d * frac, 0.0).sum(axis=1)
    var = np.where(has, d * frac * (1 - frac) * (nn - d) / np.maximum(nn - 1, 1), 0.0).sum(axis=1)
    ok = var > 0
    p = np.full(var.shape, np.nan)
    p[ok] = stats.chi2.sf((obs[ok] - exp[ok]) ** 2 / var[ok], 1)
    return p


def _upper_tail(m: np.ndarray, n: np.ndarray, inf: np.ndarray, tt: np.ndarray,
                gamma: np.ndarray) -> np.ndarray:
    """Rosenbaum's upper bound ``P(T >= tt)`` per row at ``gamma`` per row."""
    g = gamma[:, None]
    q = _compact(np.where(inf, g * m / (g * m + n - m), 0.0))
    dist = _poisson_binomial(q)
    tail = np.cumsum(dist[:, ::-1], axis=1)[:, ::-1]  # tail[:, j] = P(T >= j)
    tail = np.c_[tail, np.zeros(len(tail))]
    return np.minimum(1.0, np.take_along_axis(tail, np.minimum(tt, tail.shape[1] - 1)[:, None],
                                              axis=1)[:, 0])


def _gamma(n: np.ndarray, m: np.ndarray, t: np.ndarray, alpha: float) -> np.ndarray:
    """``_audit._gamma`` for every row: 1 when not significant at Gamma = 1 (or no informative
    set), 1000 when still significant there, else the largest Gamma with ``p <= alpha``."""
    inf = (m > 0) & (m < n)
    out = np.ones(len(n))
    rows = np.flatnonzero(inf.any(axis=1))
    if rows.size == 0:
        return out
    n, m, t, inf = n[rows], m[rows], t[rows], inf[rows]
    nf, mf = n.astype(float), m.astype(float)
    flip = np.where(inf, t, 0).sum(axis=1) < np.where(inf, mf / nf, 0.0).sum(axis=1)
    mf = np.where(flip[:, None], nf - mf, mf)
    a = np.where(flip[:, None], 1 - t, t)
    tt = np.where(inf, a, 0).sum(axis=1).astype(np.int64)
    p1 = _upper_tail(mf, nf, inf, tt, np.ones(len(rows)))
    sig = p1 <= alpha
    if not sig.any():
        return out
    r = np.flatnonzero(sig)
    mf, nf, inf, tt = mf[r], nf[r], inf[r], tt[r]
    top = _upper_tail(mf, nf, inf, tt, np.full(r.size, GAMMA_MAX)) <= alpha
    res = np.full(r.size, GAMMA_MAX)
    live = np.flatnonzero(~top)
    lo, hi = np.zeros(live.size), np.full(live.size, math.log(GAMMA_MAX))
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        ok = _upper_tail(mf[live], nf[live], inf[live], tt[live], np.exp(mid)) <= alpha
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    res[live] = np.exp(lo)
    out[rows[r]] = res
    return out


def _pseudo_pairs(k: np.ndarray, t: np.ndarray, c: np.ndarray) -> dict[str, np.ndarray]:
    """Pseudo-pair tests, computed by the analysis room once per distinct (b, c, both)."""
    b_pp = ((1 - t) * c).sum(axis=1)
    c_pp = (t * (k - c)).sum(axis=1)
    both = (t * c).sum(axis=1)
    keys = np.stack([b_pp, c_pp, both], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    vals = np.full((len(uniq), 5), np.nan)
    for j, (b, cc, d) in enumerate(uniq.tolist()):
        exact, mid = compute_mcnemar_exact(b, cc)
        # one representative arrangement: b pairs (0, 1), cc pairs (1, 0), d pairs (1, 1); the
        # log-rank sums are of 0.5, 1 and 0.25 only, so every arrangement gives these bits
        tr = np.r_[np.zeros(b), np.ones(cc + d)]
        ct = np.r_[np.ones(b), np.zeros(cc), np.ones(d)]
        pid = np.arange(tr.size)
        ev = np.r_[ct, tr]
        lr = compute_logrank(np.where(ev == 1, 1.0, 2.0), ev, np.r_[np.zeros(pid.size),
                                                                  np.ones(pid.size)],
                             np.r_[pid, pid]).p_value
        row = (compute_mcnemar(b, cc)[1], compute_mcnemar(b, cc, correction=True)[1], exact, mid, lr)
        vals[j] = [np.nan if v is None else v for v in row]
    inv = inv.reshape(-1)
    names = ("mcnemar_pseudo_pairs", "mcnemar_pseudo_pairs_cc", "mcnemar_pseudo_pairs_exact",
             "mcnemar_pseudo_pairs_midp", "logrank_pseudo_pairs")
    out = {name: vals[inv, i] for i, name in enumerate(names)}
    out["b_pseudo_pairs"], out["c_pseudo_pairs"] = b_pp, c_pp
    return out


def batch_tests(cfgs: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    """Every per-allocation test of the audit for a stack of allocations.

    Parameters
    ----------
    cfgs : int array of shape (A, S, 3)
        ``(k, t, c)`` per set (controls, treated event, control events) of each allocation; all
        allocations of one audit have the same sets.
    alpha : float
        Level of Rosenbaum's Gamma (one-sided upper bound).

    Returns
    -------
    dict of str to array
        :data:`TEST_COLUMNS` -> array of length ``A``; a test that is undefined for an
        allocation (variance 0) is NaN. ``b_pseudo_pairs``/``c_pseudo_pairs`` are integers.
    """
    cfgs = np.asarray(cfgs, dtype=np.int64)
    if cfgs.ndim != 3 or cfgs.shape[2] != 3:
        raise ValueError(f"cfgs must have shape (A, S, 3); got {cfgs.shape}")
    a_all, s = cfgs.shape[:2]
    step = max(1, _CHUNK_CELLS // max(s + 1, 1))
    parts = []
    for lo in range(0, a_all, step):
        cfg = cfgs[lo:lo + step]
        k, t, c = cfg[:, :, 0], cfg[:, :, 1], cfg[:, :, 2]
        n, m = k + 1, t + c
        part = {
            "exact_conditional": _exact_conditional(n, m, t),
            "mantel_haenszel": _cmh(k, t, c, False),
            "mantel_haenszel_cc": _cmh(k, t, c, True),
            "logrank_by_set": _logrank_by_set(n, m, t),
            "rosenbaum_gamma": _gamma(n, m, t, alpha),
        }
        part.update(_pseudo_pairs(k, t, c))
        parts.append(part)
    if not parts:
        return {name: np.zeros(0) for name in TEST_COLUMNS}
    return {name: np.concatenate([p[name] for p in parts]) for name in TEST_COLUMNS}


def config_tests(cfg: np.ndarray, alpha: float) -> dict[str, float | int | None]:
    """:func:`batch_tests` of one allocation ``(S, 3)``, as Python numbers (None when undefined)."""
    res = batch_tests(np.asarray(cfg, dtype=np.int64)[None], alpha)
    out: dict[str, float | int | None] = {}
    for name in TEST_COLUMNS:
        v = res[name][0]
        if name in ("b_pseudo_pairs", "c_pseudo_pairs"):
            out[name] = int(v)
        else:
            out[name] = None if np.isnan(v) else float(v)
    return out
