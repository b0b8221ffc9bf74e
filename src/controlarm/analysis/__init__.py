"""The analysis room: matched-set statistics, effect estimates, sensitivity analyses and
published-style comparisons.

``analyse(endpoints, endpoint_defs)`` is the front door; the per-method functions below work on
the same endpoint frame, and the ``compute_*`` functions on plain arrays.
"""

from ._analyse import MULTIPLICITY, PRIMARY_TEST, STYLES, analyse
from ._binary import (
    compute_mcnemar,
    compute_mcnemar_exact,
    exact_conditional,
    mantel_haenszel,
    mcnemar_pairs,
    mcnemar_pseudo_pairs,
)
from ._clogit import compute_clogit, conditional_logit
from ._continuous import (
    hodges_lehmann_set_difference,
    mann_whitney_unpaired,
    permutation_within_sets,
    set_differences,
    signed_rank_set_differences,
    wilcoxon_signed_rank_pseudo_pairs,
)
from ._cox import compute_cox, compute_cox_robust, cox_robust_by_set, cox_stratified_by_set
from ._evalue import compute_evalue, compute_fragility
from ._exact import (
    ExactResult,
    compute_exact_conditional,
    compute_hodges_lehmann,
    compute_permutation,
    compute_signed_rank,
)
from ._km import compute_km, compute_rmst, km_curves, km_estimates, km_median, rmst_difference
from ._mh import (
    compute_mh_risk_difference,
    compute_mh_risk_ratio,
    mh_odds_ratio,
    mh_risk_difference,
    mh_risk_ratio,
)
from ._mstat import compute_mscores, compute_mstat_bound
from ._ranks import aligned_rank_test, compute_within_set_normal, van_elteren_test
from ._results import (
    ArmSummary,
    Estimate,
    OutcomeResult,
    Results,
    SensitivityResult,
    TestResult,
)
from ._rosenbaum import (
    compute_amplification,
    compute_hl_bounds,
    compute_rosenbaum_binary,
    compute_rosenbaum_signed_rank,
    critical_gamma,
)
from ._sensitivity import binary_sensitivity, continuous_sensitivity, time_to_event_sensitivity
from ._survival import (
    LogrankResult,
    compute_logrank,
    compute_logrank_scores,
    logrank_permutation_by_set,
    logrank_stratified_by_pseudo_pair,
    logrank_stratified_by_set,
    logrank_unstratified,
)

__all__ = [
    "analyse",
    "PRIMARY_TEST",
    "STYLES",
    "MULTIPLICITY",
    # result types
    "ArmSummary",
    "Estimate",
    "OutcomeResult",
    "Results",
    "SensitivityResult",
    "TestResult",
    "ExactResult",
    "LogrankResult",
    # binary
    "exact_conditional",
    "mantel_haenszel",
    "mh_odds_ratio",
    "mh_risk_ratio",
    "mh_risk_difference",
    "conditional_logit",
    "mcnemar_pairs",
    "mcnemar_pseudo_pairs",
    # time to event
    "km_curves",
    "km_estimates",
    "rmst_difference",
    "logrank_stratified_by_set",
    "logrank_permutation_by_set",
    "logrank_unstratified",
    "logrank_stratified_by_pseudo_pair",
    "cox_stratified_by_set",
    "cox_robust_by_set",
    # continuous and count
    "set_differences",
    "signed_rank_set_differences",
    "permutation_within_sets",
    "aligned_rank_test",
    "van_elteren_test",
    "hodges_lehmann_set_difference",
    "wilcoxon_signed_rank_pseudo_pairs",
    "mann_whitney_unpaired",
    # sensitivity
    "binary_sensitivity",
    "continuous_sensitivity",
    "time_to_event_sensitivity",
    # array-level
    "compute_mcnemar",
    "compute_mcnemar_exact",
    "compute_exact_conditional",
    "compute_mh_risk_ratio",
    "compute_mh_risk_difference",
    "compute_clogit",
    "compute_signed_rank",
    "compute_hodges_lehmann",
    "compute_permutation",
    "compute_within_set_normal",
    "compute_logrank",
    "compute_logrank_scores",
    "compute_km",
    "km_median",
    "compute_rmst",
    "compute_cox",
    "compute_cox_robust",
    "compute_rosenbaum_binary",
    "compute_rosenbaum_signed_rank",
    "compute_hl_bounds",
    "compute_amplification",
    "critical_gamma",
    "compute_mscores",
    "compute_mstat_bound",
    "compute_evalue",
    "compute_fragility",
]
