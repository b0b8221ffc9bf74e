"""Analysis room: log-rank tests for matched sets.

The unstratified log-rank test comes from lifelines. The log-rank test stratified by matched set
is written here because lifelines has none (R's ``survdiff(... + strata())``) and statsmodels'
``survdiff`` loops over strata in Python (far too slow for 250,000 sets; see
``benchmarks/statistics.py``): ``compute_logrank`` sorts once and sums observed minus expected
events and hypergeometric variances over all strata with vectorised numpy. The exact permutation
version for small designs (any member of a set equally likely to be the treated one) exists in
no Python library. Kaplan-Meier lives in ``_km``, Cox models in ``_cox``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ApproximationWarning
from ._exact import compute_permutation
from ._results import TestResult
from ._sets import arms, prepare

__all__ = [
    "LogrankResult",
    "compute_logrank",
    "compute_logrank_scores",
    "logrank_stratified_by_set",
    "logrank_unstratified",
    "logrank_stratified_by_pseudo_pair",
    "logrank_permutation_by_set",
]

REF_LOGRANK = (
    "Mantel N. Evaluation of survival data and two new rank order statistics arising in its "
    "consideration. Cancer Chemother Rep 1966;50:163-170; Peto R, Peto J. Asymptotically efficient "
    "rank invariant test procedures. J R Stat Soc A 1972;135:185-207. doi:10.2307/2344317"
)
REF_PERM = (
    "Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. Chapter 2. "
    "doi:10.1007/978-1-4757-3692-2; Heimann G, Neuhaus G. Permutational distribution of the "
    "log-rank statistic under random censorship with applications to carcinogenicity assays. "
    "Biometrics 1998;54:168-184. doi:10.2307/2534005"
)
UNMATCHED_WARNING = (
    "Unmatched analysis: the matched sets are ignored, so the comparison does not use the "
    "matching that made the arms comparable."
)
PSEUDO_PAIR_WARNING = (
    "Published-style analysis: each control forms a stratum with its set's treated patient, so "
    "every treated patient is counted k times. The k strata of a set share one treated patient "
    "and are not independent; the test adds their variances as if they were, which understates "
    "the variance of O - E and makes the p-value too small. With no treated events it equals "
    "McNemar's uncorrected test on the pseudo-pairs (when the treated patient is followed up past "
    "the control's death). The log-rank test stratified by matched set treats each set as one "
    "stratum; use it for inference."
)


@dataclass(frozen=True)
class LogrankResult:
    """Log-rank test of group 1 versus group 0: observed and expected events in group 1."""

    observed: float
    expected: float
    variance: float
    chisq: float | None
    p_value: float | None


def _sorted_strata(time, strata):
    """Row order by (stratum, time); stratum starts, each row's stratum end, (stratum, time)
    group starts, all in sorted order."""
    time = np.asarray(time, dtype=float)
    if strata is None:
        codes = np.zeros(time.size, dtype=np.int64)
    else:
        codes = pd.factorize(np.asarray(strata), use_na_sentinel=False)[0].astype(np.int64)
    _, trank = np.unique(time, return_inverse=True)
    order = np.argsort(codes * (int(trank.max(initial=0)) + 1) + trank, kind="stable")
    c, t = codes[order], time[order]
    new_stratum = np.r_[True, c[1:] != c[:-1]] if c.size else np.zeros(0, bool)
    ends = np.r_[np.flatnonzero(new_stratum)[1:], c.size]
    end_row = ends[np.cumsum(new_stratum) - 1]
    new_group = new_stratum | np.r_[True, t[1:] != t[:-1]] if c.size else new_stratum
    return order, new_stratum, end_row, new_group


def compute_logrank(time, event, group, strata=None) -> LogrankResult:
    """(Stratified) log-rank test; R's ``survdiff(Surv(time, event) ~ group + strata(strata))``.

    At each distinct event time within a stratum, with ``n`` at risk (``n1`` in group 1) and ``d``
    events, ``E1 += d n1 / n`` and ``V += d (n1/n)(1 - n1/n)(n - d)/(n - 1)``. The statistic is
    ``(O1 - E1)^2 / V`` summed over strata, chi-squared on 1 df. Returns ``chisq = None`` when
    ``V = 0`` (no informative event).

    Notes
    -----
    One sort by (stratum, time), then every sum is a vectorised cumulative sum: 250,000 matched
    sets (1M rows) take a fraction of a second (``benchmarks/statistics.py``).

    References
    ----------
    Mantel N. Cancer Chemother Rep 1966;50:163-170.
    Peto R, Peto J. J R Stat Soc A 1972;135:185-207. doi:10.2307/2344317
    """
    event = np.asarray(event, dtype=float) > 0
    group = np.asarray(group, dtype=float) > 0
    order, _, end_row, new_group = _sorted_strata(time, strata)
    e, g = event[order], group[order]
    starts = np.flatnonzero(new_group)
    if starts.size == 0:
        return LogrankResult(0.0, 0.0, 0.0, None, None)
    d = np.add.reduceat(e.astype(float), starts)
    starts, d = starts[d > 0], d[d > 0]
    n = (end_row[starts] - starts).astype(float)
    cg = np.r_[0, np.cumsum(g)]
    frac = (cg[end_row[starts]] - cg[starts]) / n
    obs = float((e & g).sum())
    exp = float((d * frac).sum())
    var = float((d * frac * (1 - frac) * (n - d) / np.maximum(n - 1, 1)).sum())
    if var <= 0:
        return LogrankResult(obs, exp, var, None, None)
    chisq = (obs - exp) ** 2 / var
    return LogrankResult(obs, exp, var, float(chisq), float(stats.chi2.sf(chisq, 1)))


def compute_logrank_scores(time, event, strata=None) -> np.ndarray:
    """Log-rank scores within strata: ``delta_i - sum_{event times t <= t_i} d(t) / n(t)``.

    A patient's score is ``O - E`` of the log-rank test in which that patient alone forms group
    1; so with one treated patient per set, the stratified ``O1 - E1`` is the sum of the treated
    patients' scores. Scores sum to 0 within each stratum.

    References
    ----------
    Peto R, Peto J. J R Stat Soc A 1972;135:185-207. doi:10.2307/2344317
    """
    event = np.asarray(event, dtype=float) > 0
    order, new_stratum, end_row, new_group = _sorted_strata(time, strata)
    e = event[order]
    if e.size == 0:
        return np.zeros(0)
    gid = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    h = np.add.reduceat(e.astype(float), starts) / (end_row[starts] - starts)
    cum = np.cumsum(h)
    stratum_first_group = gid[np.flatnonzero(new_stratum)]
    before = np.r_[0.0, cum][stratum_first_group][np.cumsum(new_stratum) - 1]
    scores = np.empty(e.size)
    scores[order] = e - (cum[gid] - before)
    return scores


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _logrank_result(name, method, res: LogrankResult, framing, n, conv, warning=None) -> TestResult:
    conv = {"observed_treated": res.observed, "expected_treated": res.expected,
            "variance": res.variance, **conv}
    if res.chisq is None:
        conv["undefined"] = "no informative event (variance 0)"
    return TestResult(
        name=name, method=method, statistic=res.chisq, p_value=res.p_value,
        alternative="two-sided", framing=framing, n=n, conventions=conv, df=1.0,
        warning=warning, reference=REF_LOGRANK,
    )


def logrank_stratified_by_set(
    endpoints: pd.DataFrame, time_column: str, event_column: str
) -> TestResult:
    """Log-rank test stratified by matched set (each set its own baseline hazard).

    References
    ----------
    Mantel N. Cancer Chemother Rep 1966;50:163-170.
    """
    md = prepare(endpoints, time_column, event_column)
    f = md.frame
    res = compute_logrank(f["y"], f["event"], f["role"].eq("treated"), f["set_id"])
    conv = {"strata": "matched sets", "ties": "hypergeometric variance (R survdiff)",
            **md.conventions()}
    return _logrank_result("logrank_stratified_by_set", "Log-rank test stratified by matched set",
                           res, "matched", md.n_sets, conv)


def logrank_unstratified(
    endpoints: pd.DataFrame, time_column: str, event_column: str
) -> TestResult:
    """Log-rank test of treated versus controls ignoring the sets (lifelines ``logrank_test``).

    Each patient counts once per arm. R: ``survdiff(Surv(time, event) ~ arm)``.

    References
    ----------
    Mantel N. Cancer Chemother Rep 1966;50:163-170.
    """
    from lifelines.statistics import logrank_test

    a = arms(endpoints, time_column, event_column)
    t, c = a["treated"], a["control"]
    res = compute_logrank(np.r_[t["y"], c["y"]], np.r_[t["event"], c["event"]],
                          np.r_[np.ones(len(t)), np.zeros(len(c))])
    conv = {"strata": "none (matched structure ignored)", "patients": "each patient once per arm",
            "n_missing_treated": a["n_missing"]["treated"],
            "n_missing_control": a["n_missing"]["control"]}
    if len(t) and len(c) and res.chisq is not None:
        lr = logrank_test(t["y"], c["y"], t["event"], c["event"])
        res = LogrankResult(res.observed, res.expected, res.variance,
                            _finite(lr.test_statistic), _finite(lr.p_value))
    return _logrank_result("logrank_unstratified", "Log-rank test, unstratified (lifelines)", res,
                           "unmatched", len(t) + len(c), conv, UNMATCHED_WARNING)


def logrank_stratified_by_pseudo_pair(
    endpoints: pd.DataFrame, time_column: str, event_column: str
) -> TestResult:
    """Published-style log-rank test with one stratum per pseudo-pair (treated reused k times).

    With no treated event, and each treated patient followed past its controls' deaths, the
    statistic equals McNemar's uncorrected chi-squared on the pseudo-pairs (seed_study.md).

    References
    ----------
    Mantel N. Cancer Chemother Rep 1966;50:163-170.
    """
    md = prepare(endpoints, time_column, event_column)
    p = md.pseudo_pairs()
    k = np.arange(len(p))
    res = compute_logrank(np.r_[p["y_treated"], p["y_control"]],
                          np.r_[p["event_treated"], p["event_control"]],
                          np.r_[np.ones(len(p)), np.zeros(len(p))], np.r_[k, k])
    conv = {"strata": "pseudo-pairs: each control with its set's treated patient",
            **md.conventions()}
    return _logrank_result("logrank_stratified_by_pseudo_pair",
                           "Log-rank test stratified by pseudo-pair", res, "published-style",
                           len(p), conv, PSEUDO_PAIR_WARNING)


def logrank_permutation_by_set(
    endpoints: pd.DataFrame,
    time_column: str,
    event_column: str,
    *,
    seed: int = 0,
    max_enumeration: int = 2_000_000,
    n_resamples: int = 100_000,
) -> TestResult:
    """Exact permutation version of the log-rank test stratified by matched set.

    Under no treatment effect each member of a set is equally likely to be the treated one,
    independently across sets. The statistic is ``U = O1 - E1`` of the stratified log-rank test,
    the sum over sets of the treated patient's log-rank score (``compute_logrank_scores``). All
    ``prod(n_s)`` assignments are enumerated when at most ``max_enumeration`` (4^8 = 65,536 for
    eight 1:3 sets); otherwise ``n_resamples`` seeded draws, with an ``ApproximationWarning``
    and the Monte Carlo standard error in ``conventions``. Two-sided p = ``P(|U| >= |u|)``
    (``E U = 0``). Unlike the chi-squared approximation it is valid for any number of sets.

    References
    ----------
    Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. Chapter 2.
    doi:10.1007/978-1-4757-3692-2
    Heimann G, Neuhaus G. Biometrics 1998;54:168-184. doi:10.2307/2534005
    """
    md = prepare(endpoints, time_column, event_column)
    f = md.frame
    scores = compute_logrank_scores(f["y"], f["event"], f["set_id"])
    contributions = [scores[idx] for idx in f.groupby("set_id", sort=True).indices.values()]
    if not contributions:
        return TestResult(
            name="logrank_permutation_by_set", method="Log-rank permutation test within matched "
            "sets", statistic=None, p_value=None, alternative="two-sided", framing="matched", n=0,
            conventions={"undefined": "no complete matched set", **md.conventions()},
            reference=REF_LOGRANK + "; " + REF_PERM)
    res = compute_permutation(contributions, max_enumeration=max_enumeration,
                              n_resamples=n_resamples, seed=seed)
    n_assign = float(np.prod([c.size for c in contributions], dtype=float))
    conv = {
        "statistic": "U = O - E of treated patients, log-rank scores within matched sets",
        "null": "within each set any member equally likely to be the treated one",
        "n_assignments": n_assign,
        "distribution": "exact enumeration of all assignments" if res.exact else
        f"Monte Carlo, {n_resamples} random assignments, seed {seed}, p = (1 + count) / (1 + B)",
        "two_sided": "P(|U| >= |u|), relative tolerance 1e-9",
        "p_greater": res.p_greater, "p_less": res.p_less,
        "one_sided_meaning": "greater: more treated events than expected; less: fewer",
        **md.conventions(),
    }
    if not res.exact:
        conv["monte_carlo_standard_error"] = res.mc_standard_error
        warnings.warn(f"logrank_permutation_by_set: {n_assign:.3g} assignments exceed "
                      f"{max_enumeration}; Monte Carlo p-value from {n_resamples} draws",
                      ApproximationWarning, stacklevel=2)
    return TestResult(
        name="logrank_permutation_by_set",
        method="Log-rank permutation test within matched sets, "
        + ("exact" if res.exact else "Monte Carlo"),
        statistic=res.statistic, p_value=res.p_two_sided, alternative="two-sided",
        framing="matched", n=md.n_sets, conventions=conv, reference=REF_LOGRANK + "; " + REF_PERM,
    )
