"""Analysis room: tests and estimates for binary outcomes in matched sets.

Primary (framing ``"matched"``): the exact conditional test over matched sets, Cochran-Mantel-
Haenszel over matched sets, and McNemar (asymptotic, corrected, exact, mid-p) when every set is a
1:1 pair. Published-style: McNemar on pseudo-pairs that reuse each treated patient k times. The
Mantel-Haenszel estimates live in ``_mh``, conditional logistic regression in ``_clogit``.

Code was written, not taken from a library, where the library disagrees with the reference:
statsmodels has no exact conditional test for 1:k matched sets (see ``_exact``), its ``mcnemar``
applies the continuity correction even when b = c (R does not), and its CMH test subtracts the
0.5 correction even when |O - E| < 0.5 (R does not). The CMH statistic comes from
``statsmodels.stats.contingency_tables.StratifiedTable``.
A binary value of 1 is the "event" (1 = alive for survival status, 1 = needed IMV).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError
from ._exact import compute_exact_conditional
from ._results import TestResult
from ._sets import MatchedData, prepare

__all__ = [
    "compute_mcnemar",
    "compute_mcnemar_exact",
    "set_tables",
    "mcnemar_pseudo_pairs",
    "mcnemar_pairs",
    "exact_conditional",
    "mantel_haenszel",
]

PSEUDO_PAIR_WARNING = (
    "Published-style analysis: each control is paired with its set's treated patient, so every "
    "treated patient is reused k times. The k pseudo-pairs of a set share one treated outcome and "
    "are not independent; the test counts them as independent pairs, which overstates the "
    "information (the variance of the statistic is understated) and makes the p-value too small. "
    "The matched-set tests treat each set as one unit; use them for inference."
)
REF_MCNEMAR = (
    "McNemar Q. Note on the sampling error of the difference between correlated proportions or "
    "percentages. Psychometrika 1947;12:153-157. doi:10.1007/BF02295996"
)
REF_MH = (
    "Mantel N, Haenszel W. Statistical aspects of the analysis of data from retrospective studies "
    "of disease. J Natl Cancer Inst 1959;22:719-748. doi:10.1093/jnci/22.4.719"
)
REF_BD = (
    "Breslow NE, Day NE. Statistical Methods in Cancer Research, Vol. I: The Analysis of "
    "Case-Control Studies. IARC Sci Publ 32; 1980. Chapter 7"
)


def compute_mcnemar(
    b: int, c: int, *, correction: bool = False
) -> tuple[float | None, float | None]:
    """McNemar's chi-squared statistic and p-value from the discordant counts ``b`` and ``c``.

    ``X2 = (|b - c| - cc)^2 / (b + c)`` on 1 df, with ``cc = 1`` when ``correction`` and
    ``|b - c| >= 1`` (so ``b = c`` gives 0, as R's ``mcnemar.test``). Returns ``(None, None)``
    when there are no discordant pairs (the test is undefined).

    References
    ----------
    McNemar Q. Psychometrika 1947;12:153-157. doi:10.1007/BF02295996

    Examples
    --------
    The seed study at day 28: 5 pseudo-pairs with only the control dead, none the other way.

    >>> stat, p = compute_mcnemar(5, 0)
    >>> stat, round(p, 7)
    (5.0, 0.0253473)
    """
    if b + c == 0:
        return None, None
    diff = abs(b - c)
    if correction:
        diff = max(diff - 1, 0)
    stat = diff**2 / (b + c)
    return float(stat), float(stats.chi2.sf(stat, 1))


def compute_mcnemar_exact(b: int, c: int) -> tuple[float, float]:
    """Exact and mid-p two-sided McNemar p-values from the discordant counts ``b`` and ``c``.

    Under no effect ``b ~ Binomial(b + c, 1/2)``. The exact p is R's ``binom.test(b, b + c)``;
    the mid-p is twice the smaller one-sided mid-p, ``P(X > b) + P(X = b) / 2``, capped at 1
    (Lancaster 1961; Fagerland, Lydersen & Laake 2013). Both are 1 when ``b + c = 0``.

    References
    ----------
    Lancaster HO. Significance tests in discrete distributions. J Am Stat Assoc 1961;56:223-234.
    doi:10.1080/01621459.1961.10482105
    Fagerland MW, Lydersen S, Laake P. The McNemar test for binary matched-pairs data: mid-p and
    asymptotic are better than exact conditional. BMC Med Res Methodol 2013;13:91.
    doi:10.1186/1471-2288-13-91

    Examples
    --------
    >>> [round(p, 10) for p in compute_mcnemar_exact(5, 1)]
    [0.21875, 0.125]
    """
    n = b + c
    if n == 0:
        return 1.0, 1.0
    exact = float(stats.binomtest(b, n, 0.5).pvalue)
    k = min(b, c)
    lower = stats.binom.cdf(k - 1, n, 0.5) + stats.binom.pmf(k, n, 0.5) / 2
    return exact, float(min(1.0, 2 * lower))


def set_tables(md: MatchedData) -> np.ndarray:
    """One 2x2 table per matched set, ``[[a, b], [c, d]]``.

    Rows are treated/control, columns y = 1 / y = 0; sets in ``set_id`` order.
    """
    f = md.frame
    treated = f["role"].eq("treated")
    y1 = f["y"].eq(1)
    g = f["set_id"]
    parts = [(treated & y1), (treated & ~y1), (~treated & y1), (~treated & ~y1)]
    counts = np.column_stack([p.groupby(g, sort=True).sum().to_numpy() for p in parts])
    return counts.reshape(-1, 2, 2).astype(np.int64)


def _table(both: int, b: int, c: int, neither: int) -> dict[str, int]:
    return {"both_1": both, "b_treated1_control0": b, "c_treated0_control1": c, "both_0": neither}


def _pairs_counts(pairs: pd.DataFrame) -> tuple[int, int, int, int]:
    t, c = pairs["y_treated"].to_numpy(), pairs["y_control"].to_numpy()
    both = int(((t == 1) & (c == 1)).sum())
    b = int(((t == 1) & (c == 0)).sum())
    cc = int(((t == 0) & (c == 1)).sum())
    neither = int(((t == 0) & (c == 0)).sum())
    return both, b, cc, neither


def mcnemar_pseudo_pairs(
    endpoints: pd.DataFrame, column: str, *, correction: bool = False, exact: bool = False
) -> TestResult:
    """Published-style McNemar test on pseudo-pairs (each control with its set's treated).

    Parameters
    ----------
    endpoints : DataFrame
        The endpoint frame (``set_id, patient_id, role`` and ``column``).
    column : str
        Binary outcome column (1/0).
    correction : bool
        Continuity correction of 1 on ``|b - c|``. Ignored when ``exact``.
    exact : bool
        Exact binomial test of ``b`` out of ``b + c`` (``scipy.stats.binomtest``, two-sided by
        summing outcomes not more likely than the observed, as R's ``binom.test``).

    Returns
    -------
    TestResult
        Named ``mcnemar_pseudo_pairs``, ``..._cc`` or ``..._exact``; ``n`` is the number of
        pseudo-pairs. ``b`` counts pairs with treated 1 and control 0, ``c`` the reverse.

    Notes
    -----
    This reproduces what papers often report (the seed study: 24 pseudo-pairs, b = 5, c = 0,
    X2 = 5, p = 0.0253). The pairs are not independent, so the p-value is too small.

    References
    ----------
    McNemar Q. Psychometrika 1947;12:153-157. doi:10.1007/BF02295996
    """
    md = prepare(endpoints, column)
    both, b, c, neither = _pairs_counts(md.pseudo_pairs())
    conv = {
        "pairs": "each control paired with the treated patient of its set (treated reused k times)",
        "table": _table(both, b, c, neither),
        **md.conventions(),
    }
    if exact:
        name, method = "mcnemar_pseudo_pairs_exact", "McNemar exact (binomial) test on pseudo-pairs"
        stat, p = float(b), (stats.binomtest(b, b + c, 0.5).pvalue if b + c else 1.0)
        conv["continuity_correction"] = "not applicable (exact binomial test of b out of b + c)"
        conv["two_sided"] = "sum of binomial probabilities not above that of b (R binom.test)"
    else:
        name = "mcnemar_pseudo_pairs_cc" if correction else "mcnemar_pseudo_pairs"
        method = ("McNemar chi-squared test on pseudo-pairs, "
                  f"{'with' if correction else 'without'} continuity correction")
        stat, p = compute_mcnemar(b, c, correction=correction)
        conv["continuity_correction"] = (
            "yes: (|b - c| - 1)^2 / (b + c), none when |b - c| < 1" if correction
            else "no: (b - c)^2 / (b + c)"
        )
        if p is None:
            conv["undefined"] = "no discordant pseudo-pairs (b + c = 0)"
    return TestResult(
        name=name, method=method, statistic=stat, p_value=None if p is None else float(p),
        alternative="two-sided", framing="published-style", n=both + b + c + neither,
        conventions=conv, df=None if exact else 1.0, warning=PSEUDO_PAIR_WARNING,
        reference=REF_MCNEMAR,
    )


_PAIR_METHODS = {
    "asymptotic": ("mcnemar", "McNemar chi-squared test on 1:1 matched pairs, no continuity "
                   "correction", "no: (b - c)^2 / (b + c); equals the uncorrected CMH over pairs"),
    "corrected": ("mcnemar_cc", "McNemar chi-squared test on 1:1 matched pairs, with continuity "
                  "correction", "yes: (|b - c| - 1)^2 / (b + c), none when |b - c| < 1 (R)"),
    "exact": ("mcnemar_exact", "McNemar exact (binomial) test on 1:1 matched pairs",
              "not applicable (exact binomial test of b out of b + c, R binom.test)"),
    "mid-p": ("mcnemar_midp", "McNemar mid-p test on 1:1 matched pairs",
              "not applicable (mid-p: twice the smaller of P(X > b) + P(X = b)/2, "
              "P(X < b) + P(X = b)/2)"),
}


def mcnemar_pairs(endpoints: pd.DataFrame, column: str, *,
                  method: str = "asymptotic") -> TestResult:
    """McNemar test for 1:1 matched pairs.

    Parameters
    ----------
    endpoints : DataFrame
        The endpoint frame; every set must be a 1:1 pair once missing outcomes are dropped.
    column : str
        Binary outcome column (1/0).
    method : {"asymptotic", "corrected", "exact", "mid-p"}
        Chi-squared without (named ``mcnemar``) or with (``mcnemar_cc``) continuity correction,
        the exact binomial test (``mcnemar_exact``), or the mid-p test (``mcnemar_midp``).

    Raises
    ------
    InputError
        When a set (after dropping missing outcomes) has more than one control, or ``method`` is
        unknown.

    References
    ----------
    McNemar Q. Psychometrika 1947;12:153-157. doi:10.1007/BF02295996
    Fagerland MW, Lydersen S, Laake P. BMC Med Res Methodol 2013;13:91.
    doi:10.1186/1471-2288-13-91
    """
    if method not in _PAIR_METHODS:
        raise InputError(f"mcnemar_pairs: method must be one of {sorted(_PAIR_METHODS)}; "
                         f"got {method!r}")
    md = prepare(endpoints, column)
    sizes = md.frame.groupby("set_id").size()
    if (sizes != 2).any():
        raise InputError(
            "mcnemar_pairs needs 1:1 matched pairs; some sets have more than 1 control"
        )
    both, b, c, neither = _pairs_counts(md.pseudo_pairs())
    name, label, cc = _PAIR_METHODS[method]
    df: float | None = 1.0
    if method in ("asymptotic", "corrected"):
        stat, p = compute_mcnemar(b, c, correction=method == "corrected")
    else:
        exact, mid = compute_mcnemar_exact(b, c)
        stat, p, df = float(b), exact if method == "exact" else mid, None
    conv = {
        "continuity_correction": cc,
        "exact_version": "exact_conditional is the exact McNemar test for pairs",
        "table": _table(both, b, c, neither),
        **md.conventions(),
    }
    if p is None:
        conv["undefined"] = "no discordant pairs (b + c = 0)"
    return TestResult(
        name=name, method=label, statistic=stat, p_value=p, alternative="two-sided",
        framing="matched", n=md.n_sets, conventions=conv, df=df, reference=REF_MCNEMAR,
    )


def exact_conditional(endpoints: pd.DataFrame, column: str) -> TestResult:
    """Exact conditional test over 1:k matched sets (variable k allowed).

    Given the number of events ``m_s`` in set ``s`` of size ``n_s``, under no treatment effect the
    treated patient's outcome is Bernoulli(m_s / n_s). The statistic ``T`` (events among treated
    patients) has the exact distribution of the convolution of these Bernoullis. This is the exact
    test of conditional logistic regression with a binary exposure, and the exact version of the
    Mantel-Haenszel test for matched sets; for 1:1 pairs it is the exact McNemar test.
    Concordant sets contribute nothing.

    Returns
    -------
    TestResult
        ``statistic = T``; ``p_value`` two-sided (sum of the probabilities not above that of the
        observed ``T``, relative tolerance 1e-7); one-sided p-values in ``conventions``.

    References
    ----------
    Breslow NE, Day NE. Statistical Methods in Cancer Research, Vol. I. IARC; 1980. Chapter 7.
    Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719-748. doi:10.1093/jnci/22.4.719
    """
    md = prepare(endpoints, column)
    tables = set_tables(md)
    res = compute_exact_conditional(tables)
    conv = {
        "conditioning": "number of y = 1 in each set; treated outcome ~ Bernoulli(m_s / n_s)",
        "two_sided": "sum of null probabilities <= P(observed T) * (1 + 1e-7) "
        "(relative tolerance, as R mantelhaen.test(exact = TRUE))",
        "p_greater": res.p_greater,
        "p_less": res.p_less,
        "p_mid": res.p_mid,
        "mid_p": "twice the smaller one-sided mid-p, P(T > t) + P(T = t)/2, capped at 1",
        "one_sided_meaning": "greater: treated patients have more y = 1 than expected; less: fewer",
        "expected_T": res.expected,
        "n_informative_sets": res.n_informative,
        "concordant_sets": "contribute nothing (degenerate conditional distribution)",
        **md.conventions(),
    }
    return TestResult(
        name="exact_conditional", method="Exact conditional test over matched sets",
        statistic=res.statistic, p_value=res.p_two_sided, alternative="two-sided",
        framing="matched", n=md.n_sets, conventions=conv, reference=REF_BD + "; " + REF_MH,
    )


def _cmh_parts(tables: np.ndarray) -> tuple[float, float]:
    """``sum(a - E a)`` and ``sum(Var a)`` (hypergeometric) over the tables."""
    a, b, c, d = (tables[:, i, j].astype(float) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    n = a + b + c + d
    r1, r2, c1, c2 = a + b, c + d, a + c, b + d
    var = np.where(n > 1, r1 * r2 * c1 * c2 / (n**2 * np.maximum(n - 1, 1)), 0.0)
    return float((a - r1 * c1 / n).sum()), float(var.sum())


def mantel_haenszel(
    endpoints: pd.DataFrame, column: str, *, correction: bool = False
) -> TestResult:
    """Cochran-Mantel-Haenszel test over matched sets, one 2x2 table per set.

    Without correction it equals the score test of conditional logistic regression for 1:k sets.
    With correction, 0.5 is subtracted from ``|O - E|`` only when ``|O - E| >= 0.5`` (as R's
    ``mantelhaen.test``). Statistic from ``statsmodels`` ``StratifiedTable.test_null_odds``.

    References
    ----------
    Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719-748. doi:10.1093/jnci/22.4.719
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    md = prepare(endpoints, column)
    tables = set_tables(md)
    delta, var = _cmh_parts(tables)
    conv = {
        "continuity_correction": (
            "yes: 0.5 subtracted from |O - E| when |O - E| >= 0.5 (R mantelhaen.test)" if correction
            else "no (equals the conditional logistic regression score test for 1:k sets)"
        ),
        "observed_minus_expected": delta,
        "variance": var,
        "strata": "matched sets (one 2x2 table each: treated/control x y=1/y=0)",
        **md.conventions(),
    }
    if var <= 0:
        stat = p = None
        conv["undefined"] = "no informative set (every set concordant): the variance is 0"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = StratifiedTable(tables.transpose(1, 2, 0)).test_null_odds(
                correction=correction and abs(delta) >= 0.5
            )
        stat, p = float(r.statistic), float(r.pvalue)
    return TestResult(
        name="mantel_haenszel_cc" if correction else "mantel_haenszel",
        method="Cochran-Mantel-Haenszel test over matched sets, "
        + ("with" if correction else "without") + " continuity correction",
        statistic=stat, p_value=p, alternative="two-sided", framing="matched", n=md.n_sets,
        conventions=conv, df=1.0, reference=REF_MH,
    )
