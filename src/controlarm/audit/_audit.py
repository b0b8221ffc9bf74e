"""Audit room: would a published matched study survive tests that respect its matched sets?

Reviewers often have only the design (``n`` treated, ratio ``1:k``) and the per-arm event counts.
The matched-set tests need to know how the events fall across the sets, which the paper does not
say; this module computes them for every allocation consistent with the counts (or a seeded
uniform sample of them), and finds which common test reproduces the published p-value.

Own code only for the enumeration (``_allocations``), the bookkeeping and the CMH p-value from
an array of tables (``compute_cmh``, a public pure function, checked against statsmodels; the
analysis room's ``mantel_haenszel`` works on an endpoint frame). Every other test is the analysis
room's: ``compute_exact_conditional``, ``compute_logrank``, ``compute_mcnemar`` /
``compute_mcnemar_exact``, ``compute_rosenbaum_binary`` with ``critical_gamma``, and
``compute_fragility``. ``_config_tests`` applies them to one allocation (the reference path);
the audit itself uses ``_batch.batch_tests``, the same tests over all allocations at once
(vectorised, about 15x faster; equal to the reference in ``tests/test_audit.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..analysis import (
    compute_exact_conditional,
    compute_fragility,
    compute_logrank,
    compute_mcnemar,
    compute_mcnemar_exact,
    compute_rosenbaum_binary,
    critical_gamma,
)
from ..errors import InputError
from ._allocations import Design, count_allocations, enumerate_allocations, sample_allocations
from ._batch import TEST_COLUMNS, batch_tests
from ._result import AuditResult

__all__ = ["audit_matched_binary", "compute_cmh", "MATCHED_TESTS", "COMMON_TESTS"]

#: Matched-set tests computed for every allocation (name -> description).
MATCHED_TESTS = {
    "exact_conditional": "exact conditional test over matched sets, two-sided",
    "mantel_haenszel": "Cochran-Mantel-Haenszel over matched sets, no continuity correction",
    "mantel_haenszel_cc": "Cochran-Mantel-Haenszel over matched sets, continuity correction",
    "logrank_by_set": "log-rank stratified by matched set, no censoring before follow-up end",
    "rosenbaum_gamma": "Rosenbaum Gamma at which one-sided significance is lost (1 = never had it)",
}
#: Common (published-style and unmatched) tests tried against the published p-value.
COMMON_TESTS = {
    "mcnemar_pseudo_pairs": "McNemar on pseudo-pairs, no continuity correction",
    "mcnemar_pseudo_pairs_cc": "McNemar on pseudo-pairs, continuity correction",
    "mcnemar_pseudo_pairs_exact": "exact (binomial) McNemar on pseudo-pairs",
    "mcnemar_pseudo_pairs_midp": "mid-p McNemar on pseudo-pairs",
    "logrank_pseudo_pairs": "log-rank stratified by pseudo-pair",
    "fisher_arms": "Fisher exact on arm totals (unmatched)",
    "chisq_arms": "Pearson chi-squared on arm totals, no correction (unmatched)",
    "chisq_arms_yates": "Pearson chi-squared on arm totals, Yates correction (unmatched)",
    "logrank_unmatched": "unstratified log-rank, no censoring before follow-up end (unmatched)",
    "exact_conditional": MATCHED_TESTS["exact_conditional"],
    "mantel_haenszel": MATCHED_TESTS["mantel_haenszel"],
    "mantel_haenszel_cc": MATCHED_TESTS["mantel_haenszel_cc"],
    "logrank_by_set": MATCHED_TESTS["logrank_by_set"],
}
REFERENCES = (
    "Breslow NE, Day NE. Statistical Methods in Cancer Research, Vol. I. IARC Sci Publ 32; 1980. "
    "Chapter 7",
    "Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719-748. doi:10.1093/jnci/22.4.719",
    "McNemar Q. Psychometrika 1947;12:153-157. doi:10.1007/BF02295996",
    "Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. Chapter 4. "
    "doi:10.1007/978-1-4757-3692-2",
    "Walsh M, et al. J Clin Epidemiol 2014;67:622-628. doi:10.1016/j.jclinepi.2013.10.019",
)


def _set_sizes(design) -> np.ndarray:
    if isinstance(design, tuple) and len(design) == 2:
        n_treated, ratio = design
        if not (isinstance(n_treated, (int, np.integer)) and n_treated >= 1):
            raise InputError(f"n_treated must be an integer >= 1; got {n_treated!r}")
        if not (isinstance(ratio, (int, np.integer)) and 1 <= ratio <= 50):
            raise InputError(f"ratio must be an integer from 1 to 50; got {ratio!r}")
        return np.full(int(n_treated), int(ratio) + 1, dtype=np.int64)
    sizes = np.asarray(list(design))
    if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) \
            or (sizes < 2).any():
        raise InputError("set_sizes must be a non-empty list of integers >= 2 (one treated plus "
                         f"at least one control per set); got {list(design)!r}")
    return sizes.astype(np.int64)


def _tables(cfg: np.ndarray) -> np.ndarray:
    """``[[t, 1 - t], [c, k - c]]`` per set: rows treated/control, columns event/no event."""
    k, t, c = cfg[:, 0], cfg[:, 1], cfg[:, 2]
    return np.stack([np.stack([t, 1 - t], 1), np.stack([c, k - c], 1)], 1)


def _rows(cfg: np.ndarray):
    """Patient rows: time (1 = event at the common time, 2 = alive at follow-up end), event,
    group (1 treated), set id, pseudo-pair id (-1 for treated; treated rows are duplicated)."""
    k, t, c = cfg[:, 0], cfg[:, 1], cfg[:, 2]
    n = k + 1
    set_id = np.repeat(np.arange(k.size), n)
    pos = np.arange(n.sum()) - np.repeat(np.r_[0, np.cumsum(n)[:-1]], n)
    group = (pos == 0).astype(int)
    event = np.where(group == 1, t[set_id], (pos - 1 < c[set_id]).astype(int))
    return event, group, set_id


def compute_cmh(tables: np.ndarray, *, correction: bool = False) -> float | None:
    """Two-sided Cochran-Mantel-Haenszel p-value over 2x2 tables (shape ``(n_sets, 2, 2)``).

    ``X2 = (|sum(a - E a)| - c)^2 / sum(Var a)`` with hypergeometric ``E a = r1 c1 / n`` and
    ``Var a = r1 r2 c1 c2 / (n^2 (n - 1))``; ``c = 0.5`` with ``correction`` when
    ``|sum(a - E a)| >= 0.5`` (R ``mantelhaen.test``), else 0. ``None`` when every table is
    uninformative (variance 0). Equals statsmodels' ``StratifiedTable.test_null_odds`` (tests).

    References
    ----------
    Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719-748. doi:10.1093/jnci/22.4.719
    """
    t = np.asarray(tables, dtype=float)
    a, b, c, d = t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1]
    n = a + b + c + d
    r1, r2, c1, c2 = a + b, c + d, a + c, b + d
    var = float(np.where(n > 1, r1 * r2 * c1 * c2 / (n**2 * np.maximum(n - 1, 1)), 0.0).sum())
    if var <= 0:
        return None
    delta = abs(float((a - r1 * c1 / np.where(n > 0, n, 1)).sum()))
    if correction and delta >= 0.5:
        delta -= 0.5
    return float(stats.chi2.sf(delta * delta / var, 1))


def _gamma(cfg: np.ndarray, alpha: float) -> float:
    k, t, c = cfg[:, 0], cfg[:, 1], cfg[:, 2]
    n, m, a = k + 1, t + c, t.copy()
    inf = (m > 0) & (m < n)
    if not inf.any():
        return 1.0
    if a[inf].sum() < (m[inf] / n[inf]).sum():  # effect direction: fewer events in treated
        m, a = n - m, 1 - a
    tt = int(a[inf].sum())
    g = critical_gamma(lambda x: compute_rosenbaum_binary(m[inf], n[inf], tt, x)["upper_ge"],
                       alpha)
    return 1.0 if g is None else g


def _config_tests(cfg: np.ndarray, alpha: float) -> dict[str, float | None]:
    """Every per-allocation test of one allocation, by the analysis room's functions.

    The reference path: :func:`._batch.batch_tests` computes the same for all allocations at
    once (what ``audit_matched_binary`` uses), and ``tests/test_audit.py`` checks them equal.
    """
    tab = _tables(cfg)
    event, group, set_id = _rows(cfg)
    time = np.where(event == 1, 1.0, 2.0)
    k, t, c = cfg[:, 0], cfg[:, 1], cfg[:, 2]
    b_pp = int(((1 - t) * c).sum())  # control event, treated none
    c_pp = int((t * (k - c)).sum())  # treated event, control none
    # pseudo-pairs: each control with its set's treated patient (treated rows repeated k times)
    ctrl = group == 0
    pp_id = np.arange(ctrl.sum())
    tr_rows = np.flatnonzero(group == 1)[set_id[ctrl]]
    pp_time = np.r_[time[ctrl], time[tr_rows]]
    pp_event = np.r_[event[ctrl], event[tr_rows]]
    pp_group = np.r_[np.zeros(pp_id.size), np.ones(pp_id.size)]
    pp_strata = np.r_[pp_id, pp_id]
    exact_mc, mid_mc = compute_mcnemar_exact(b_pp, c_pp)
    return {
        "exact_conditional": compute_exact_conditional(tab).p_two_sided,
        "mantel_haenszel": compute_cmh(tab),
        "mantel_haenszel_cc": compute_cmh(tab, correction=True),
        "logrank_by_set": compute_logrank(time, event, group, set_id).p_value,
        "rosenbaum_gamma": _gamma(cfg, alpha),
        "mcnemar_pseudo_pairs": compute_mcnemar(b_pp, c_pp)[1],
        "mcnemar_pseudo_pairs_cc": compute_mcnemar(b_pp, c_pp, correction=True)[1],
        "mcnemar_pseudo_pairs_exact": exact_mc,
        "mcnemar_pseudo_pairs_midp": mid_mc,
        "logrank_pseudo_pairs": compute_logrank(pp_time, pp_event, pp_group, pp_strata).p_value,
        "b_pseudo_pairs": b_pp,
        "c_pseudo_pairs": c_pp,
    }


def _unmatched(sizes: np.ndarray, te: int, ce: int) -> dict[str, float | None]:
    nt, nc = sizes.size, int((sizes - 1).sum())
    table = np.array([[te, nt - te], [ce, nc - ce]])
    out: dict[str, float | None] = {"fisher_arms": float(stats.fisher_exact(table).pvalue)}
    if (table.sum(0) > 0).all():
        out["chisq_arms"] = float(stats.chi2_contingency(table, correction=False)[1])
        out["chisq_arms_yates"] = float(stats.chi2_contingency(table, correction=True)[1])
    else:
        out["chisq_arms"] = out["chisq_arms_yates"] = None
    event = np.r_[np.arange(nt) < te, np.arange(nc) < ce].astype(int)
    group = np.r_[np.ones(nt), np.zeros(nc)]
    out["logrank_unmatched"] = compute_logrank(np.where(event == 1, 1.0, 2.0), event,
                                               group).p_value
    return out


def _wmedian(x: np.ndarray, w: np.ndarray) -> float:
    o = np.argsort(x, kind="stable")
    cw = np.cumsum(w[o])
    return float(x[o][np.searchsorted(cw, 0.5 * cw[-1])])


def _decimals(p: float) -> int:
    s = f"{p:.12g}"
    if "e" in s:
        mant, exp = s.split("e")
        return max(0, len(mant.split(".")[1]) if "." in mant else 0) - int(exp)
    return len(s.split(".")[1]) if "." in s else 0


def audit_matched_binary(
    design: Sequence[int] | tuple[int, int],
    treated_events: int,
    control_events: int,
    *,
    published_p: float | None = None,
    published_test: str | None = None,
    alpha: float = 0.05,
    max_enumeration: int = 5_000,
    n_samples: int = 2_000,
    seed: int = 0,
) -> AuditResult:
    """Audit a published matched study with a binary outcome from its aggregate counts.

    Parameters
    ----------
    design : list of int, or tuple (n_treated, ratio)
        The matched sets: a list of set sizes (one treated patient plus its controls, so a 1:3
        set has size 4), or a *tuple* ``(n_treated, ratio)`` for ``n_treated`` sets of
        ``1 + ratio``. A tuple of two integers is always read as ``(n_treated, ratio)``; pass set
        sizes as a list.
    treated_events, control_events : int
        Published number of patients with the event (e.g. deaths) in each arm.
    published_p : float, optional
        The published p-value; candidates that reproduce it at its printed precision (half a
        unit of its last printed decimal) are listed in ``identified``.
    published_test : str, optional
        A name from ``COMMON_TESTS`` (what the paper says it used); its p-value range is
        reported in ``published_test_p``.
    alpha : float
        Significance level for the shares and for Rosenbaum's Gamma (one-sided upper bound).
    max_enumeration : int
        Enumerate all distinct allocations when there are at most this many; otherwise draw
        ``n_samples`` patient-level allocations uniformly at random (seeded).
    n_samples, seed : int
        Size and seed of the sample when enumeration is too large.

    Returns
    -------
    AuditResult

    Raises
    ------
    InputError
        For a design or counts that cannot be (more events than patients, bad sizes, unknown
        test name).

    Notes
    -----
    *Weighting.* Allocations are weighted as distinct **patient-level** configurations (which
    of the patients had the event): a set-level table ``(t_s, c_s)`` arises in
    ``prod C(k_s, c_s)`` ways. This is the distribution the allocation would have if, given the
    arm totals, every patient of an arm were equally likely to be one with the event (no
    knowledge of where the events fell); counting each set-level table once instead would make
    a clumped table such as "3 deaths in one set, 2 in another" as likely as "5 deaths in 5
    sets", although it arises from 3 times fewer patient configurations for 1:3 sets. The
    share under set-level weighting is reported too (``share_below_alpha_tables``). Sampling
    draws the patients uniformly, so it estimates the patient-level share directly (Monte
    Carlo SE reported); the set-level share is then not estimated (``None``): importance
    weights ``1 / prod C(k_s, c_s)`` have too large a variance, because set-level weighting
    favours the clumped tables that patient-level draws rarely produce.

    *Tests.* With every event at one common time and no censoring before the end of follow-up,
    the log-rank test stratified by set equals the CMH test without correction, and the
    log-rank test stratified by pseudo-pair equals McNemar's uncorrected test on pseudo-pairs
    when no treated patient has the event. The median is the lower weighted median.
    Rosenbaum's Gamma is set to 1 for an allocation that is not significant at Gamma = 1. The
    fragility index is Walsh's, from Fisher's test on the arm totals (the index of a matched
    test would depend on the unknown allocation).

    References
    ----------
    Breslow NE, Day NE. Statistical Methods in Cancer Research, Vol. I. IARC Sci Publ 32; 1980.
    Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719-748. doi:10.1093/jnci/22.4.719
    McNemar Q. Psychometrika 1947;12:153-157. doi:10.1007/BF02295996
    Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. doi:10.1007/978-1-4757-3692-2
    Walsh M, et al. J Clin Epidemiol 2014;67:622-628. doi:10.1016/j.jclinepi.2013.10.019

    Examples
    --------
    The seed study at day 28: 8 treated, 1:3, 0 vs 5 deaths, published p = 0.025.

    >>> res = audit_matched_binary((8, 3), 0, 5, published_p=0.025)
    >>> res.identified[0]
    'mcnemar_pseudo_pairs'
    """
    sizes = _set_sizes(design)
    n_t, n_c = int(sizes.size), int((sizes - 1).sum())
    for name, v, cap in (("treated_events", treated_events, n_t),
                         ("control_events", control_events, n_c)):
        if not isinstance(v, (int, np.integer)) or not 0 <= v <= cap:
            raise InputError(f"{name} must be an integer from 0 to {cap} (the arm size); got {v!r}")
    if published_test is not None and published_test not in COMMON_TESTS:
        raise InputError(f"published_test must be one of {sorted(COMMON_TESTS)}; got "
                         f"{published_test!r}")
    if published_p is not None and not 0 < published_p <= 1:
        raise InputError(f"published_p must be in (0, 1]; got {published_p!r}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1); got {alpha!r}")
    des = Design(sizes - 1)
    te, ce = int(treated_events), int(control_events)
    n_patient = math.comb(n_t, te) * math.comb(n_c, ce)
    n_enum = count_allocations(des, te, ce)
    enumerated = n_enum <= max_enumeration
    if enumerated:
        cfgs, wp, wt = [], [], []
        for cfg, p, t in enumerate_allocations(des, te, ce):
            cfgs.append(cfg)
            wp.append(p)
            wt.append(t)
        n_tables = int(sum(wt))
        w_patient = np.array([p / n_patient for p in wp])
        w_table = np.array([t / n_tables for t in wt])
    else:
        arr, counts = sample_allocations(des, te, ce, n_samples, seed)
        cfgs = list(arr)
        w_patient = counts / counts.sum()
        w_table = np.full(len(cfgs), np.nan)  # not estimated: see Notes
        n_tables = _count_tables(des, te, ce)
    frame = pd.DataFrame(batch_tests(np.stack(cfgs), alpha), columns=list(TEST_COLUMNS))
    frame.insert(0, "control_events_by_set", [",".join(map(str, cfg[:, 2][::-1])) for cfg in cfgs])
    frame.insert(1, "treated_events_by_set", [",".join(map(str, cfg[:, 1][::-1])) for cfg in cfgs])
    frame.insert(2, "set_controls", [",".join(map(str, cfg[:, 0][::-1])) for cfg in cfgs])
    frame["w_patient"], frame["w_table"] = w_patient, w_table

    distribution = {}
    for name in MATCHED_TESTS:
        x = frame[name].astype(float).to_numpy()
        ok = ~np.isnan(x)
        if not ok.any():
            distribution[name] = {"min": None, "median": None, "max": None,
                                  "share_below_alpha": None, "share_below_alpha_tables": None}
            continue
        if name == "rosenbaum_gamma":  # "share" = significant at Gamma = 1
            below = x > 1.0
        else:
            below = np.where(ok, x, 1.0) < alpha
        share = min(1.0, max(0.0, float((w_patient * below).sum())))
        d = {"min": float(x[ok].min()), "median": _wmedian(x[ok], w_patient[ok]),
             "max": float(x[ok].max()), "share_below_alpha": share,
             "share_below_alpha_tables": float((w_table * below).sum()) if enumerated else None}
        if not enumerated:
            d["mc_se"] = math.sqrt(share * (1 - share) / n_samples)
        distribution[name] = d

    unmatched = _unmatched(sizes, te, ce)
    tol = None if published_p is None else 0.5 * 10.0 ** (-_decimals(published_p)) * (1 + 1e-9)
    candidates, identified = [], []
    for name, method in COMMON_TESTS.items():
        if name in unmatched:
            vals = np.array([np.nan if unmatched[name] is None else unmatched[name]])
            framing = "unmatched"
        else:
            vals = frame[name].astype(float).to_numpy()
            framing = "matched" if name in MATCHED_TESTS else "published-style"
        vals = vals[~np.isnan(vals)]
        lo = float(vals.min()) if vals.size else None
        hi = float(vals.max()) if vals.size else None
        rep = None
        if tol is not None:
            rep = bool(vals.size and (np.abs(vals - published_p) <= tol).any())
            if rep:
                identified.append(name)
        candidates.append({"name": name, "method": method, "framing": framing, "p_min": lo,
                           "p_max": hi, "reproduces": rep})
    pub_range = None
    if published_test is not None:
        c = next(c for c in candidates if c["name"] == published_test)
        pub_range = (c["p_min"], c["p_max"])
    notes = [
        "Each allocation is weighted by the number of patient-level configurations giving it "
        "(every patient of an arm equally likely to be one with the event).",
        "Pseudo-pair tests reuse each treated patient k times and count the k pseudo-pairs of a "
        "set as independent; their p-values are too small. Use the matched-set tests.",
    ]
    if "mcnemar_pseudo_pairs" in identified and "logrank_pseudo_pairs" in identified:
        notes.append("McNemar without correction on pseudo-pairs and the log-rank test "
                     "stratified by pseudo-pair are algebraically identical here.")
    frag = compute_fragility(te, n_t, ce, n_c, alpha=alpha)
    return AuditResult(
        set_sizes=tuple(int(s) for s in sizes), n_treated=n_t, n_controls=n_c,
        treated_events=te, control_events=ce, alpha=alpha, weighting="patient-level "
        "configurations", enumerated=enumerated, n_distinct=len(cfgs), n_distinct_total=n_enum,
        n_patient_configurations=n_patient, n_set_tables=n_tables,
        n_samples=None if enumerated else n_samples, seed=seed, distribution=distribution,
        candidates=tuple(candidates), identified=tuple(identified), published_p=published_p,
        published_test=published_test, published_test_p=pub_range, fragility=frag,
        notes=tuple(notes), references=REFERENCES, allocations=frame,
    )


def _count_tables(des: Design, te: int, ce: int) -> int:
    """Number of labelled set-level tables, by dynamic programming over sets."""
    # state: (treated events used, control events used) -> count
    dist = {(0, 0): 1}
    for k in des.k.tolist():
        new: dict[tuple[int, int], int] = {}
        for (a, b), n in dist.items():
            for t in (0, 1):
                for c in range(k + 1):
                    if a + t <= te and b + c <= ce:
                        new[(a + t, b + c)] = new.get((a + t, b + c), 0) + n
        dist = new
    return dist.get((te, ce), 0)
