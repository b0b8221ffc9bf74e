"""Analysis room: tests and estimates for binary outcomes in matched sets.

Primary (framing ``"matched"``): the exact conditional test over matched sets, Cochran-Mantel-
Haenszel over matched sets with the Mantel-Haenszel odds ratio, and McNemar when every set is a
1:1 pair. Published-style: McNemar on pseudo-pairs that reuse each treated patient k times.

Code was written, not taken from a library, where the library disagrees with the reference:
statsmodels has no exact conditional test for 1:k matched sets (see ``_exact``), its ``mcnemar``
applies the continuity correction even when b = c (R does not), and its CMH test subtracts the
0.5 correction even when |O - E| < 0.5 (R does not). The CMH statistic and the MH odds ratio with
its Robins-Breslow-Greenland CI come from ``statsmodels.stats.contingency_tables.StratifiedTable``.
A binary value of 1 is the "event" (1 = alive for survival status, 1 = needed IMV).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError
from ._exact import compute_exact_conditional
from ._results import Estimate, TestResult
from ._sets import MatchedData, prepare

__all__ = [
    "compute_mcnemar",
    "set_tables",
    "mcnemar_pseudo_pairs",
    "mcnemar_pairs",
    "exact_conditional",
    "mantel_haenszel",
    "mh_odds_ratio",
]

PSEUDO_PAIR_WARNING = (
    "Published-style analysis: each control is paired with its set's treated patient, so every "
    "treated patient is reused k times. The k pseudo-pairs of a set share one treated outcome and "
    "are not independent; the test counts them as independent pairs, which overstates the "
    "information and makes the p-value too small. Use the matched-set tests for inference."
)
REF_MCNEMAR = (
    "McNemar Q. Note on the sampling error of the difference between correlated proportions or "
    "percentages. Psychometrika 1947;12:153-157. doi:10.1007/BF02295996"
)
REF_MH = (
    "Mantel N, Haenszel W. Statistical aspects of the analysis of data from retrospective studies "
    "of disease. J Natl Cancer Inst 1959;22:719-748. doi:10.1093/jnci/22.4.719"
)
REF_RGB = (
    "Robins J, Breslow N, Greenland S. Estimators of the Mantel-Haenszel variance consistent in "
    "both sparse data and large-strata limiting models. Biometrics 1986;42:311-323. "
    "doi:10.2307/2531052"
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


def mcnemar_pairs(endpoints: pd.DataFrame, column: str) -> TestResult:
    """McNemar test for 1:1 matched pairs (no continuity correction).

    Raises
    ------
    InputError
        When a set (after dropping missing outcomes) has more than one control.

    References
    ----------
    McNemar Q. Psychometrika 1947;12:153-157. doi:10.1007/BF02295996
    """
    md = prepare(endpoints, column)
    sizes = md.frame.groupby("set_id").size()
    if (sizes != 2).any():
        raise InputError(
            "mcnemar_pairs needs 1:1 matched pairs; some sets have more than 1 control"
        )
    both, b, c, neither = _pairs_counts(md.pseudo_pairs())
    stat, p = compute_mcnemar(b, c, correction=False)
    conv = {
        "continuity_correction": "no: (b - c)^2 / (b + c); equals the uncorrected CMH over pairs",
        "exact_version": "exact_conditional is the exact McNemar test for pairs",
        "table": _table(both, b, c, neither),
        **md.conventions(),
    }
    if p is None:
        conv["undefined"] = "no discordant pairs (b + c = 0)"
    return TestResult(
        name="mcnemar",
        method="McNemar chi-squared test on 1:1 matched pairs, no continuity correction",
        statistic=stat, p_value=p, alternative="two-sided", framing="matched", n=md.n_sets,
        conventions=conv, df=1.0, reference=REF_MCNEMAR,
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


def mh_odds_ratio(endpoints: pd.DataFrame, column: str, *, alpha: float = 0.05) -> Estimate:
    """Mantel-Haenszel common odds ratio over matched sets with the Robins-Breslow-Greenland CI.

    The odds ratio compares the odds of y = 1 in treated versus control patients. It is not
    estimable (value None, reason in ``conventions``) when ``sum(a d / n)`` or ``sum(b c / n)``
    is 0, for example when no treated patient has y = 0 (the estimate would be infinite).

    References
    ----------
    Mantel N, Haenszel W. J Natl Cancer Inst 1959;22:719-748. doi:10.1093/jnci/22.4.719
    Robins J, Breslow N, Greenland S. Biometrics 1986;42:311-323. doi:10.2307/2531052
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    md = prepare(endpoints, column)
    tables = set_tables(md).astype(float)
    n = tables.sum(axis=(1, 2))
    num = float((tables[:, 0, 0] * tables[:, 1, 1] / n).sum())
    den = float((tables[:, 0, 1] * tables[:, 1, 0] / n).sum())
    conv = {
        "odds_ratio": "odds of y = 1, treated vs control, pooled over matched sets",
        "ci": "Robins-Breslow-Greenland variance of log OR (as R mantelhaen.test)",
        "sum_ad_over_n": num,
        "sum_bc_over_n": den,
        **md.conventions(),
    }
    value = low = high = None
    if num == 0 or den == 0:
        which = "sum(a*d/n)" if num == 0 else "sum(b*c/n)"
        limit = "0" if num == 0 else "infinite"
        conv["not_estimable"] = (
            f"{which} = 0: no set has a treated patient with y = {1 if num == 0 else 0} together "
            f"with a control with y = {0 if num == 0 else 1}; the MH odds ratio would be {limit}"
        )
    else:
        st = StratifiedTable(tables.transpose(1, 2, 0))
        value = float(st.oddsratio_pooled)
        low, high = (float(x) for x in st.oddsratio_pooled_confint(alpha=alpha))
    return Estimate(
        name="mh_odds_ratio", value=value, ci_low=low, ci_high=high,
        method="Mantel-Haenszel odds ratio over matched sets", ci_level=1 - alpha,
        framing="matched", conventions=conv, reference=REF_MH + "; " + REF_RGB,
    )
