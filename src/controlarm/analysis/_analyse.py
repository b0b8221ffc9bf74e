"""Analysis room: the front door, ``analyse()``, dispatching each endpoint kind to its methods.

One function per kind, chosen through an explicit registry (house style 5). Matched-set methods
are the primary analysis (DESIGN section 5); published-style methods are added on request, each
labelled and carrying a warning that says why it differs; every outcome gets effect estimates
with confidence intervals and its sensitivity analyses. Nothing is printed and the input frame is
never modified. The multiplicity correction uses statsmodels' ``multipletests``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ._binary import exact_conditional, mantel_haenszel, mcnemar_pairs, mcnemar_pseudo_pairs
from ._clogit import conditional_logit
from ._continuous import (
    hodges_lehmann_set_difference,
    mann_whitney_unpaired,
    permutation_within_sets,
    signed_rank_set_differences,
    wilcoxon_signed_rank_pseudo_pairs,
)
from ._cox import cox_robust_by_set, cox_stratified_by_set
from ._km import km_estimates, rmst_difference
from ._mh import mh_odds_ratio, mh_risk_difference, mh_risk_ratio
from ._ranks import aligned_rank_test, van_elteren_test
from ._results import Estimate, OutcomeResult, Results, SensitivityResult, TestResult
from ._sensitivity import binary_sensitivity, continuous_sensitivity, time_to_event_sensitivity
from ._sets import check_endpoints, ratio_label
from ._summaries import summarise_arms
from ._survival import (
    logrank_permutation_by_set,
    logrank_stratified_by_pseudo_pair,
    logrank_stratified_by_set,
    logrank_unstratified,
)

__all__ = ["analyse", "PRIMARY_TEST", "STYLES", "MULTIPLICITY"]

#: The test each outcome kind reports as primary (the family of the multiplicity correction and
#: the left column of the style comparison).
PRIMARY_TEST = {"binary": "exact_conditional", "time_to_event": "logrank_stratified_by_set",
                "continuous": "signed_rank_set_differences",
                "count": "signed_rank_set_differences"}
#: The published-style test set beside the primary one in the style comparison.
PUBLISHED_TEST = {"binary": "mcnemar_pseudo_pairs",
                  "time_to_event": "logrank_stratified_by_pseudo_pair",
                  "continuous": "wilcoxon_signed_rank_pseudo_pairs",
                  "count": "wilcoxon_signed_rank_pseudo_pairs"}
STYLES = ("all", "pseudo-pair", "unpaired")
MULTIPLICITY = {"holm": "holm", "bh": "fdr_bh"}


@dataclasses.dataclass(frozen=True)
class _Options:
    published: bool
    style: str
    alpha: float
    seed: int
    sensitivity: bool
    rmst_day: float | None


Parts = tuple[list[TestResult], list[Estimate], list[str], list[SensitivityResult]]


def _binary(df: pd.DataFrame, e, o: _Options) -> Parts:
    tests = [exact_conditional(df, e.column), mantel_haenszel(df, e.column),
             mantel_haenszel(df, e.column, correction=True)]
    notes = []
    if ratio_label(df) == "1:1":
        tests += [mcnemar_pairs(df, e.column, method=m)
                  for m in ("asymptotic", "corrected", "exact", "mid-p")]
    else:
        notes.append("McNemar's test for pairs is not reported: the sets are not all 1:1 pairs "
                     "(the exact conditional test is its generalisation to 1:k sets).")
    if o.published and o.style in ("all", "pseudo-pair"):
        tests += [mcnemar_pseudo_pairs(df, e.column),
                  mcnemar_pseudo_pairs(df, e.column, correction=True),
                  mcnemar_pseudo_pairs(df, e.column, exact=True)]
    estimates = [mh_odds_ratio(df, e.column, alpha=o.alpha),
                 mh_risk_ratio(df, e.column, alpha=o.alpha),
                 mh_risk_difference(df, e.column, alpha=o.alpha),
                 conditional_logit(df, e.column, alpha=o.alpha)]
    sens = binary_sensitivity(df, e, estimates, alpha=o.alpha) if o.sensitivity else []
    return tests, estimates, notes, sens


def _time_to_event(df: pd.DataFrame, e, o: _Options) -> Parts:
    cox_test, hr = cox_stratified_by_set(df, e.column, e.event_column, alpha=o.alpha)
    tests = [logrank_stratified_by_set(df, e.column, e.event_column),
             logrank_permutation_by_set(df, e.column, e.event_column, seed=o.seed), cox_test]
    if o.published and o.style in ("all", "unpaired"):
        tests.append(logrank_unstratified(df, e.column, e.event_column))
    if o.published and o.style in ("all", "pseudo-pair"):
        tests.append(logrank_stratified_by_pseudo_pair(df, e.column, e.event_column))
    notes = ["Kaplan-Meier estimates count each patient once per arm; "
             "the curves come from km_curves()."]
    estimates = [hr, cox_robust_by_set(df, e.column, e.event_column, alpha=o.alpha),
                 rmst_difference(df, e, tau=o.rmst_day, alpha=o.alpha),
                 *km_estimates(df, e, alpha=o.alpha)]
    sens = time_to_event_sensitivity(df, e, estimates, alpha=o.alpha) if o.sensitivity else []
    return tests, estimates, notes, sens


def _continuous(df: pd.DataFrame, e, o: _Options) -> Parts:
    tests = [signed_rank_set_differences(df, e.column),
             permutation_within_sets(df, e.column, seed=o.seed),
             aligned_rank_test(df, e.column), van_elteren_test(df, e.column)]
    if o.published and o.style in ("all", "pseudo-pair"):
        tests.append(wilcoxon_signed_rank_pseudo_pairs(df, e.column))
    if o.published and o.style in ("all", "unpaired"):
        tests.append(mann_whitney_unpaired(df, e.column))
    sens = continuous_sensitivity(df, e, alpha=o.alpha) if o.sensitivity else []
    return tests, [hodges_lehmann_set_difference(df, e.column, alpha=o.alpha)], [], sens


_METHODS: dict[str, Callable[..., Parts]] = {
    "binary": _binary,
    "time_to_event": _time_to_event,
    "continuous": _continuous,
    "count": _continuous,
}


def _adjust(outcomes: list[OutcomeResult], method: str | None, alpha: float
            ) -> tuple[list[OutcomeResult], dict[str, Any]]:
    """Holm or Benjamini-Hochberg adjustment of the primary test of each outcome."""
    if method is None:
        return outcomes, {}
    from statsmodels.stats.multitest import multipletests

    family = [(i, j) for i, o in enumerate(outcomes) for j, t in enumerate(o.tests)
              if t.name == PRIMARY_TEST[o.kind] and t.p_value is not None]
    label = {"holm": "Holm (1979) step-down, family-wise error rate",
             "bh": "Benjamini-Hochberg (1995) step-up, false discovery rate"}[method]
    info = {"method": label, "alpha": alpha,
            "family": [f"{outcomes[i].outcome}: {outcomes[i].tests[j].name}" for i, j in family],
            "note": "one primary matched test per outcome; the other tests are not adjusted",
            "reference": ("Holm S. A simple sequentially rejective multiple test procedure. "
                          "Scand J Stat 1979;6:65-70" if method == "holm" else
                          "Benjamini Y, Hochberg Y. Controlling the false discovery rate. J R "
                          "Stat Soc B 1995;57:289-300. doi:10.1111/j.2517-6161.1995.tb02031.x")}
    if not family:
        return outcomes, info
    adjusted = multipletests([outcomes[i].tests[j].p_value for i, j in family],
                             method=MULTIPLICITY[method])[1]
    out = list(outcomes)
    for (i, j), p in zip(family, adjusted):
        t = out[i].tests[j]
        new = dataclasses.replace(t, p_adjusted=float(p), conventions={
            **t.conventions, "multiplicity": f"{label}, over {len(family)} outcomes"})
        tests = list(out[i].tests)
        tests[j] = new
        out[i] = dataclasses.replace(out[i], tests=tuple(tests))
    return out, info


def _comparison(outcomes: list[OutcomeResult]) -> tuple[dict[str, Any], ...]:
    rows = []
    for o in outcomes:
        names = {t.name: t for t in o.tests}
        prim, pub = names.get(PRIMARY_TEST[o.kind]), names.get(PUBLISHED_TEST[o.kind])
        if prim is None or pub is None:
            continue
        ratio = (pub.p_value / prim.p_value if pub.p_value is not None and prim.p_value
                 else None)
        rows.append({"outcome": o.outcome, "label": o.label, "primary_test": prim.method,
                     "primary_p": prim.p_value, "published_test": pub.method,
                     "published_p": pub.p_value, "ratio_published_to_primary": ratio,
                     "reason": pub.warning})
    return tuple(rows)


def analyse(
    endpoints: pd.DataFrame,
    endpoint_defs: Sequence,
    *,
    published_style: bool = True,
    alpha: float = 0.05,
    seed: int = 0,
    style: str | None = None,
    multiplicity: str | None = None,
    sensitivity: bool = True,
    rmst_day: float | None = None,
) -> Results:
    """Analyse every endpoint of a matched study.

    Parameters
    ----------
    endpoints : DataFrame
        One row per matched patient: ``set_id``, ``patient_id``, ``role`` ("treated"/"control")
        and the endpoint columns. Each set has exactly one treated patient and at least one
        control (the number may vary). NaN marks a missing outcome: the patient is dropped for
        that outcome, and a set is dropped from matched-set tests when its treated patient or all
        its controls are missing (counted in ``ArmSummary.n_missing`` and in each test's
        ``conventions``).
    endpoint_defs : sequence of Endpoint
        What each column means (``outcomes.Endpoint``).
    published_style : bool, default True
        Also compute the published-style analyses, labelled and warned, beside the primary ones.
    alpha : float, default 0.05
        1 - confidence level of every interval, and the level of the sensitivity analyses.
    seed : int, default 0
        Seed of the Monte Carlo permutation tests, used only when exact enumeration is too large.
    style : {None, "all", "pseudo-pair", "unpaired"}
        Which published-style re-analysis to run when ``published_style``: every one (None or
        "all"), only the pseudo-pair analyses that reuse each treated patient k times (McNemar,
        signed-rank, log-rank by pseudo-pair), or only the unpaired ones (Mann-Whitney,
        unstratified log-rank).
    multiplicity : {None, "holm", "bh"}
        Adjust the primary test of each outcome (``PRIMARY_TEST``) for multiplicity across
        outcomes: Holm's step-down or Benjamini-Hochberg. The adjusted p-values are in
        ``TestResult.p_adjusted``; the method and family in ``Results.multiplicity``.
    sensitivity : bool, default True
        Attach the sensitivity analyses (Rosenbaum bounds, amplification, E-values, fragility).
    rmst_day : float, optional
        Horizon of the restricted mean survival time; default the shorter of the two arms'
        longest follow-up.

    Returns
    -------
    Results
        One ``OutcomeResult`` per endpoint, in the order given, and the comparison of the
        primary and published-style p-values (``Results.style_comparison()``).

    Raises
    ------
    InputError
        Bad arguments (including a ``style`` with ``published_style=False``, which contradict
        each other) or endpoint definitions.
    DataContractError
        The frame breaks the contract (missing columns, sets without exactly one treated patient).

    Notes
    -----
    Binary: exact conditional test, CMH (with and without continuity correction), McNemar
    (asymptotic, corrected, exact, mid-p) when all sets are pairs; MH odds ratio (RBG CI), risk
    ratio (Greenland-Robins) and risk difference (Sato), conditional logistic regression;
    published-style McNemar on pseudo-pairs. Time to event: log-rank stratified by set
    (chi-squared and exact permutation), Cox stratified by set, Cox with robust variance
    clustered on set, RMST difference, Kaplan-Meier; published-style log-rank by pseudo-pair
    and unstratified. Continuous and count: signed-rank on set contrasts, exact permutation
    within sets, aligned-rank and van Elteren tests, Hodges-Lehmann estimate; published-style
    signed-rank on pseudo-pairs and unpaired Mann-Whitney.

    References
    ----------
    Rosenbaum PR. Observational Studies, 2nd ed. Springer; 2002. doi:10.1007/978-1-4757-3692-2
    Breslow NE, Day NE. Statistical Methods in Cancer Research, Vol. I. IARC; 1980.
    """
    from ..errors import InputError

    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise InputError(f"alpha must be a number strictly between 0 and 1; got {alpha!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer; got {seed!r}")
    if style is not None and style not in STYLES:
        raise InputError(f"style must be one of {STYLES} or None; got {style!r}")
    if style is not None and not published_style:
        raise InputError(f"style={style!r} asks for a published-style re-analysis, but "
                         "published_style=False turns them off; drop one of the two")
    if multiplicity is not None and multiplicity not in MULTIPLICITY:
        raise InputError(f"multiplicity must be 'holm', 'bh' or None; got {multiplicity!r}")
    if rmst_day is not None and not (isinstance(rmst_day, (int, float)) and rmst_day > 0):
        raise InputError(f"rmst_day must be a positive number of days; got {rmst_day!r}")
    opts = _Options(published=bool(published_style), style=style or "all", alpha=float(alpha),
                    seed=seed, sensitivity=bool(sensitivity),
                    rmst_day=None if rmst_day is None else float(rmst_day))
    defs = tuple(endpoint_defs)
    check_endpoints(endpoints, defs)
    outcomes = []
    for e in defs:
        tests, estimates, notes, sens = _METHODS[e.kind](endpoints, e, opts)
        outcomes.append(OutcomeResult(
            outcome=e.name, label=e.label, kind=e.kind, summaries=summarise_arms(endpoints, e),
            tests=tuple(tests), estimates=tuple(estimates), definition=e.definition,
            notes=tuple(notes), sensitivity=tuple(sens),
        ))
    outcomes, mult = _adjust(outcomes, multiplicity, opts.alpha)
    return Results(outcomes=tuple(outcomes), n_sets=int(endpoints["set_id"].nunique()),
                   ratio=ratio_label(endpoints), multiplicity=mult,
                   comparison=_comparison(outcomes) if opts.published else ())
