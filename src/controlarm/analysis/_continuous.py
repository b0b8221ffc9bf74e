"""Analysis room: continuous and count outcomes in matched sets.

Primary (framing ``"matched"``): the signed-rank test on set-level contrasts
``d_s = treated - mean(controls)``, the exact permutation test within sets, and the
Hodges-Lehmann estimate of the set-level difference. Published-style: the signed-rank test on
pseudo-pairs and the unpaired Mann-Whitney test.

The published-style tests call scipy. The matched ones are written here (see ``_exact``): scipy's
exact signed-rank distribution refuses ties and zeros, which set contrasts of counts always have,
and no library enumerates within-set permutations for 1:k sets of varying size.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ApproximationWarning
from ._exact import compute_hodges_lehmann, compute_permutation, compute_signed_rank
from ._results import Estimate, TestResult
from ._sets import arms, prepare

__all__ = [
    "set_differences",
    "wilcoxon_signed_rank_pseudo_pairs",
    "mann_whitney_unpaired",
    "signed_rank_set_differences",
    "permutation_within_sets",
    "hodges_lehmann_set_difference",
]

REF_HWC = "Hollander M, Wolfe DA, Chicken E. Nonparametric Statistical Methods, 3rd ed. Wiley; 2014"
REF_WILCOXON = (
    "Wilcoxon F. Individual comparisons by ranking methods. Biometrics Bull 1945;1:80-83. "
    "doi:10.2307/3001968"
)
REF_MW = (
    "Mann HB, Whitney DR. On a test of whether one of two random variables is stochastically "
    "larger than the other. Ann Math Stat 1947;18:50-60. doi:10.1214/aoms/1177730491"
)
REF_ROSENBAUM = (
    "Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. doi:10.1007/978-1-4757-3692-2"
)
REF_HL = (
    "Hodges JL, Lehmann EL. Estimates of location based on rank tests. Ann Math Stat "
    "1963;34:598-611. doi:10.1214/aoms/1177704172"
)
PSEUDO_PAIR_WARNING = (
    "Published-style analysis: each control is paired with its set's treated patient, so every "
    "treated value is reused k times. The k differences of a set share one treated value and are "
    "not independent; the test treats them as k*n independent pairs, which understates the "
    "variance of the statistic and makes the p-value too small. The matched-set tests use one "
    "contrast per set; use them for inference."
)
UNPAIRED_WARNING = (
    "Unmatched analysis: the matched sets are ignored, so the comparison does not use the "
    "matching that made the arms comparable."
)
#: R's wilcox.test uses the exact distribution below this many observations (and no ties).
R_EXACT_LIMIT = 50


def set_differences(endpoints: pd.DataFrame, column: str) -> pd.Series:
    """Set-level contrasts ``d_s = y_treated - mean(y_controls)``, indexed by ``set_id``."""
    md = prepare(endpoints, column)
    ids = sorted(md.frame["set_id"].unique())
    return pd.Series([t - c.mean() for t, c in md.sets()], index=ids, name="d", dtype=float)


def wilcoxon_signed_rank_pseudo_pairs(endpoints: pd.DataFrame, column: str) -> TestResult:
    """Published-style Wilcoxon signed-rank test on the k*n pseudo-pair differences.

    Follows R's ``wilcox.test(paired = TRUE)`` defaults: zero differences dropped (Wilcoxon's
    rule); exact distribution when fewer than 50 non-zero differences and no ties, otherwise the
    normal approximation with tie-corrected variance and continuity correction. Computed by
    ``scipy.stats.wilcoxon``. ``statistic`` is R's ``V`` (sum of ranks of positive differences).

    References
    ----------
    Wilcoxon F. Biometrics Bull 1945;1:80-83. doi:10.2307/3001968
    """
    md = prepare(endpoints, column)
    p = md.pseudo_pairs()
    d = (p["y_treated"] - p["y_control"]).to_numpy()
    nz = d[d != 0]
    ties = np.unique(np.abs(nz)).size < nz.size
    exact = nz.size < R_EXACT_LIMIT and not ties and nz.size == d.size
    conv = {
        "pairs": "each control paired with the treated patient of its set (treated reused k times)",
        "difference": "treated - control",
        "zeros": f"dropped (Wilcoxon's rule, as R); {d.size - nz.size} zero differences",
        "ties": "average ranks; tie-corrected variance",
        "distribution": "exact" if exact else "normal approximation with continuity correction "
        "(R wilcox.test default when n >= 50, ties or zeros)",
        **md.conventions(),
    }
    if nz.size == 0:
        stat = pval = None
        conv["undefined"] = "every pseudo-pair difference is zero"
    else:
        r = stats.rankdata(np.abs(nz))
        stat = float(r[nz > 0].sum())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            res = stats.wilcoxon(d, zero_method="wilcox", correction=not exact,
                                 method="exact" if exact else "approx")
        pval = float(res.pvalue)
    return TestResult(
        name="wilcoxon_signed_rank_pseudo_pairs",
        method="Wilcoxon signed-rank test on pseudo-pairs",
        statistic=stat, p_value=pval, alternative="two-sided", framing="published-style",
        n=int(d.size), conventions=conv, warning=PSEUDO_PAIR_WARNING, reference=REF_WILCOXON,
    )


def mann_whitney_unpaired(endpoints: pd.DataFrame, column: str) -> TestResult:
    """Mann-Whitney (Wilcoxon rank-sum) test of treated versus controls, sets ignored.

    Follows R's ``wilcox.test`` defaults: exact when both arms have fewer than 50 patients and
    there are no ties, otherwise normal approximation with tie correction and continuity
    correction (``scipy.stats.mannwhitneyu``). ``statistic`` is U of the treated arm (R's ``W``).

    References
    ----------
    Mann HB, Whitney DR. Ann Math Stat 1947;18:50-60. doi:10.1214/aoms/1177730491
    """
    a = arms(endpoints, column)
    x, y = a["treated"]["y"].to_numpy(), a["control"]["y"].to_numpy()
    both = np.r_[x, y]
    ties = np.unique(both).size < both.size
    exact = x.size < R_EXACT_LIMIT and y.size < R_EXACT_LIMIT and not ties
    conv = {
        "patients": "each patient once per arm",
        "distribution": "exact" if exact else "normal approximation, tie-corrected, with "
        "continuity correction (R wilcox.test default with ties or n >= 50)",
        "n_treated": int(x.size), "n_control": int(y.size),
        "n_missing_treated": a["n_missing"]["treated"],
        "n_missing_control": a["n_missing"]["control"],
    }
    if x.size == 0 or y.size == 0:
        stat = pval = None
        conv["undefined"] = "an arm has no observed outcome"
    else:
        res = stats.mannwhitneyu(x, y, alternative="two-sided", use_continuity=not exact,
                                 method="exact" if exact else "asymptotic")
        stat, pval = float(res.statistic), float(res.pvalue)
    return TestResult(
        name="mann_whitney_unpaired", method="Mann-Whitney U test, unpaired", statistic=stat,
        p_value=pval, alternative="two-sided", framing="unmatched", n=int(x.size + y.size),
        conventions=conv, warning=UNPAIRED_WARNING, reference=REF_MW,
    )


def signed_rank_set_differences(endpoints: pd.DataFrame, column: str) -> TestResult:
    """Wilcoxon signed-rank test on set contrasts ``d_s = treated - mean(controls)``, exact.

    Zero contrasts are dropped, ties get average ranks, and the p-value comes from the exact
    conditional distribution over the 2^n sign assignments (enumerated by dynamic programming,
    so ties and zeros need no normal approximation; above 1000 sets the normal approximation is
    used). Two-sided p = ``P(|V - E V| >= |v - E V|)``. ``statistic`` is ``V``.

    References
    ----------
    Wilcoxon F. Biometrics Bull 1945;1:80-83. doi:10.2307/3001968
    Hollander M, Wolfe DA, Chicken E. Nonparametric Statistical Methods, 3rd ed. 2014, ch. 3.
    """
    md = prepare(endpoints, column)
    d = np.array([t - c.mean() for t, c in md.sets()])
    res, mom = compute_signed_rank(d)
    conv = {
        "contrast": "d_s = treated - mean(controls of the set)",
        "zeros": f"dropped (Wilcoxon's rule); {mom['n_zero']} zero contrasts",
        "ties": "average ranks",
        "distribution": "exact: all 2^n sign assignments (dynamic programming)" if res.exact
        else "normal approximation (more than 1000 sets)",
        "two_sided": "P(|V - E V| >= |v - E V|)",
        "p_greater": res.p_greater, "p_less": res.p_less,
        "expected_V": res.expected, "variance_V": mom["variance"],
        "p_normal_approximation": mom["p_normal"],
        **md.conventions(),
    }
    if not res.exact:
        warnings.warn("signed_rank_set_differences: more than 1000 sets; normal approximation used",
                      ApproximationWarning, stacklevel=2)
    return TestResult(
        name="signed_rank_set_differences",
        method="Wilcoxon signed-rank test on set-level contrasts"
        + (", exact" if res.exact else ", normal approximation"),
        statistic=res.statistic, p_value=res.p_two_sided, alternative="two-sided",
        framing="matched", n=md.n_sets, conventions=conv, reference=REF_WILCOXON + "; " + REF_HWC,
    )


def permutation_within_sets(
    endpoints: pd.DataFrame,
    column: str,
    *,
    seed: int = 0,
    max_enumeration: int = 2_000_000,
    n_resamples: int = 100_000,
) -> TestResult:
    """Permutation test in which any member of a set may have been the treated one.

    The statistic is ``S = sum_s (y_treated - mean(y_controls))``. Under no treatment effect each
    of the ``n_s`` members of set ``s`` is equally likely to be the treated one, independently
    across sets. All ``prod(n_s)`` assignments are enumerated when at most ``max_enumeration``
    (an 8-set 1:3 design has 4^8 = 65536); otherwise ``n_resamples`` random assignments are drawn
    with ``seed`` and an ``ApproximationWarning`` is issued. Two-sided p =
    ``P(|S - E S| >= |s - E S|)``.

    References
    ----------
    Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. Chapter 2.
    doi:10.1007/978-1-4757-3692-2
    """
    md = prepare(endpoints, column)
    contributions = []
    for t, c in md.sets():
        y = np.r_[t, c]
        k = y.size - 1
        contributions.append(y - (y.sum() - y) / k)  # member j treated: y_j - mean(others)
    res = compute_permutation(contributions, max_enumeration=max_enumeration,
                              n_resamples=n_resamples, seed=seed)
    n_assign = float(np.prod([c.size for c in contributions], dtype=float))
    conv = {
        "statistic": "sum over sets of treated - mean(controls)",
        "null": "within each set any member equally likely to be the treated one",
        "n_assignments": n_assign,
        "distribution": "exact enumeration of all assignments" if res.exact else
        f"Monte Carlo, {n_resamples} random assignments, seed {seed}, p = (1 + count) / (1 + B)",
        "two_sided": "P(|S - E S| >= |s - E S|), relative tolerance 1e-9",
        "p_greater": res.p_greater, "p_less": res.p_less,
        **md.conventions(),
    }
    if not res.exact:
        conv["monte_carlo_standard_error"] = res.mc_standard_error
        conv["monte_carlo_error"] = ("sqrt(p (1 - p) / B): the p-value is within about "
                                     f"{2.58 * res.mc_standard_error:.2g} of the exact one with "
                                     "99% probability")
        warnings.warn(f"permutation_within_sets: {n_assign:.3g} assignments exceed "
                      f"{max_enumeration}; Monte Carlo p-value from {n_resamples} draws",
                      ApproximationWarning, stacklevel=2)
    return TestResult(
        name="permutation_within_sets",
        method="Permutation test within matched sets, " + ("exact" if res.exact else "Monte Carlo"),
        statistic=res.statistic, p_value=res.p_two_sided, alternative="two-sided",
        framing="matched", n=md.n_sets, conventions=conv, reference=REF_ROSENBAUM,
    )


def hodges_lehmann_set_difference(
    endpoints: pd.DataFrame, column: str, *, alpha: float = 0.05
) -> Estimate:
    """Hodges-Lehmann estimate of the set-level difference with its exact CI.

    The median of the Walsh averages of ``d_s = treated - mean(controls)``; the CI inverts the
    exact signed-rank test (Hollander, Wolfe & Chicken 2014, sections 3.2-3.3), and the achieved
    confidence level is in ``conventions``.

    References
    ----------
    Hodges JL, Lehmann EL. Ann Math Stat 1963;34:598-611. doi:10.1214/aoms/1177704172
    Hollander M, Wolfe DA, Chicken E. Nonparametric Statistical Methods, 3rd ed. Wiley; 2014.
    """
    md = prepare(endpoints, column)
    d = np.array([t - c.mean() for t, c in md.sets()])
    hl = compute_hodges_lehmann(d, alpha=alpha)
    conv = {
        "contrast": "d_s = treated - mean(controls of the set)",
        "estimate": "median of the n(n+1)/2 Walsh averages (zeros kept)",
        "ci": "exact: order statistics of the Walsh averages, untied signed-rank distribution",
        "achieved_level": hl["achieved_level"],
        **md.conventions(),
    }
    return Estimate(
        name="hodges_lehmann_set_difference", value=hl["estimate"], ci_low=hl["ci_low"],
        ci_high=hl["ci_high"], method="Hodges-Lehmann estimate of the set-level difference",
        ci_level=1 - alpha, framing="matched", conventions=conv, reference=REF_HL + "; " + REF_HWC,
    )
