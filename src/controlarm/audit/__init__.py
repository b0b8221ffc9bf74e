"""The audit room: audit a published matched study from its aggregate numbers.

``audit_matched_binary`` enumerates (or samples) every allocation of events to matched sets
consistent with the published counts, runs the analysis room's matched-set tests on each, and
finds which common test reproduces the published p-value.
"""

from ._audit import COMMON_TESTS, MATCHED_TESTS, audit_matched_binary, compute_cmh
from ._result import AuditResult
from ._study import actual_allocation, audit_allocation, audit_study

__all__ = ["audit_study", "audit_allocation", "actual_allocation", "audit_matched_binary", "compute_cmh", "AuditResult", "MATCHED_TESTS", "COMMON_TESTS"]
