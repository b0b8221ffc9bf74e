"""The analysis room: matched-set statistics, effect estimates and published-style comparisons.

``analyse(endpoints, endpoint_defs)`` is the front door; the per-method functions below work on
the same endpoint frame, and the ``compute_*`` functions on plain arrays.
"""

from ._analyse import analyse
from ._binary import (
    compute_mcnemar,
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
    set_differences,
    signed_rank_set_differences,
    wilcoxon_signed_rank_pseudo_pairs,
)
from ._exact import (
    ExactResult,
    compute_exact_conditional,
    compute_hodges_lehmann,
    compute_permutation,
    compute_signed_rank,
)
from ._results import ArmSummary, Estimate, OutcomeResult, Results, TestResult
from ._cox import compute_cox, cox_stratified_by_set
from ._km import km_curves, km_estimates
from ._survival import (
    LogrankResult,
    compute_logrank,
    logrank_stratified_by_pseudo_pair,
    logrank_stratified_by_set,
    logrank_unstratified,
)

__all__ = [
    "analyse",
    "km_curves",
    "km_estimates",
    # result types
    "ArmSummary",
    "Estimate",
    "OutcomeResult",
    "Results",
    "TestResult",
    "ExactResult",
    "LogrankResult",
    # binary
    "exact_conditional",
    "mantel_haenszel",
    "mh_odds_ratio",
    "mcnemar_pairs",
    "mcnemar_pseudo_pairs",
    # time to event
    "logrank_stratified_by_set",
    "logrank_unstratified",
    "logrank_stratified_by_pseudo_pair",
    "cox_stratified_by_set",
    # continuous and count
    "set_differences",
    "signed_rank_set_differences",
    "permutation_within_sets",
    "hodges_lehmann_set_difference",
    "wilcoxon_signed_rank_pseudo_pairs",
    "mann_whitney_unpaired",
    # array-level
    "compute_mcnemar",
    "compute_exact_conditional",
    "compute_signed_rank",
    "compute_hodges_lehmann",
    "compute_permutation",
    "compute_logrank",
    "compute_cox",
]
