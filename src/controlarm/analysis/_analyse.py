"""Analysis room: the front door, ``analyse()``, dispatching each endpoint kind to its methods.

One function per kind, chosen through an explicit registry (house style 5). Matched-set methods
are the primary analysis (DESIGN section 5); published-style methods are added on request, each
labelled and carrying a warning. Nothing is printed and the input frame is never modified.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from ._binary import (
    exact_conditional,
    mantel_haenszel,
    mcnemar_pairs,
    mcnemar_pseudo_pairs,
)
from ._mh import mh_odds_ratio
from ._continuous import (
    hodges_lehmann_set_difference,
    mann_whitney_unpaired,
    permutation_within_sets,
    signed_rank_set_differences,
    wilcoxon_signed_rank_pseudo_pairs,
)
from ._results import Estimate, OutcomeResult, Results, TestResult
from ._sets import check_endpoints, ratio_label
from ._summaries import summarise_arms
from ._cox import cox_stratified_by_set
from ._km import km_estimates
from ._survival import (
    logrank_stratified_by_pseudo_pair,
    logrank_stratified_by_set,
    logrank_unstratified,
)

__all__ = ["analyse"]

Parts = tuple[list[TestResult], list[Estimate], list[str]]


def _binary(df: pd.DataFrame, e, published: bool, alpha: float, seed: int) -> Parts:
    tests = [exact_conditional(df, e.column), mantel_haenszel(df, e.column),
             mantel_haenszel(df, e.column, correction=True)]
    notes = []
    if ratio_label(df) == "1:1":
        tests.append(mcnemar_pairs(df, e.column))
    else:
        notes.append("McNemar's test for pairs is not reported: the sets are not all 1:1 pairs "
                     "(the exact conditional test is its generalisation to 1:k sets).")
    if published:
        tests += [mcnemar_pseudo_pairs(df, e.column),
                  mcnemar_pseudo_pairs(df, e.column, correction=True),
                  mcnemar_pseudo_pairs(df, e.column, exact=True)]
    return tests, [mh_odds_ratio(df, e.column, alpha=alpha)], notes


def _time_to_event(df: pd.DataFrame, e, published: bool, alpha: float, seed: int) -> Parts:
    cox_test, hr = cox_stratified_by_set(df, e.column, e.event_column, alpha=alpha)
    tests = [logrank_stratified_by_set(df, e.column, e.event_column), cox_test,
             logrank_unstratified(df, e.column, e.event_column)]
    if published:
        tests.append(logrank_stratified_by_pseudo_pair(df, e.column, e.event_column))
    notes = ["Kaplan-Meier estimates count each patient once per arm; "
             "the curves come from km_curves()."]
    return tests, [hr, *km_estimates(df, e, alpha=alpha)], notes


def _continuous(df: pd.DataFrame, e, published: bool, alpha: float, seed: int) -> Parts:
    tests = [signed_rank_set_differences(df, e.column),
             permutation_within_sets(df, e.column, seed=seed)]
    if published:
        tests += [wilcoxon_signed_rank_pseudo_pairs(df, e.column),
                  mann_whitney_unpaired(df, e.column)]
    return tests, [hodges_lehmann_set_difference(df, e.column, alpha=alpha)], []


_METHODS: dict[str, Callable[..., Parts]] = {
    "binary": _binary,
    "time_to_event": _time_to_event,
    "continuous": _continuous,
    "count": _continuous,
}


def analyse(
    endpoints: pd.DataFrame,
    endpoint_defs: Sequence,
    *,
    published_style: bool = True,
    alpha: float = 0.05,
    seed: int = 0,
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
        Also compute the published-style analyses (pseudo-pairs, unpaired), labelled and warned.
    alpha : float, default 0.05
        1 - confidence level of every interval.
    seed : int, default 0
        Seed of the Monte Carlo permutation test, used only when exact enumeration is too large.

    Returns
    -------
    Results
        One ``OutcomeResult`` per endpoint, in the order given.

    Raises
    ------
    InputError
        Bad arguments or endpoint definitions.
    DataContractError
        The frame breaks the contract (missing columns, sets without exactly one treated patient).

    Notes
    -----
    Binary: exact conditional test, CMH (with and without continuity correction) and the MH odds
    ratio over matched sets, McNemar when all sets are pairs; published-style McNemar on
    pseudo-pairs. Time to event: log-rank and Cox stratified by set, unstratified log-rank,
    Kaplan-Meier; published-style log-rank stratified by pseudo-pair. Continuous and count:
    signed-rank on set contrasts, exact permutation within sets, Hodges-Lehmann estimate;
    published-style signed-rank on pseudo-pairs and unpaired Mann-Whitney.

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
    defs = tuple(endpoint_defs)
    check_endpoints(endpoints, defs)
    outcomes = []
    for e in defs:
        method = _METHODS[e.kind]
        tests, estimates, notes = method(endpoints, e, bool(published_style), float(alpha), seed)
        outcomes.append(OutcomeResult(
            outcome=e.name, label=e.label, kind=e.kind, summaries=summarise_arms(endpoints, e),
            tests=tuple(tests), estimates=tuple(estimates), definition=e.definition,
            notes=tuple(notes),
        ))
    return Results(outcomes=tuple(outcomes), n_sets=int(endpoints["set_id"].nunique()),
                   ratio=ratio_label(endpoints))
