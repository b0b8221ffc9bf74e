"""Room ``safety``: the trial arm's exposure, schedule adherence, adverse events and deaths, with
comparable events among matched controls shown as context only.

Own code: no Python library builds exposure or adverse-event tables (R has gtsummary and tern).
Counting follows ICH E3 section 12 and the CDISC ADaM ADAE / OCCDS conventions; grades are CTCAE
v5.0.
"""

from ._events import NOT_RELATED, RELATED, RELATEDNESS_GROUPS, classify_events, count_hierarchy
from ._exposure import DEVIATION_KINDS, convert_dose, derive_deviations, derive_exposure, parse_dose_unit
from ._results import CONTEXT_CAVEAT, SafetyResults
from ._summarise import summarise_safety

__all__ = [
    "summarise_safety",
    "SafetyResults",
    "CONTEXT_CAVEAT",
    "RELATED",
    "NOT_RELATED",
    "RELATEDNESS_GROUPS",
    "DEVIATION_KINDS",
    "classify_events",
    "count_hierarchy",
    "derive_exposure",
    "derive_deviations",
    "parse_dose_unit",
    "convert_dose",
]
