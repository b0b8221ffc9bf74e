"""The `cohort` room: eligibility, index dates (time zero) and the flow of exclusions."""

from ._cohort import Cohort, build_cohort
from ._eligibility import Eligibility, derive_eligibility
from ._flow import Flow, FlowStep

__all__ = ["Cohort", "Eligibility", "Flow", "FlowStep", "build_cohort", "derive_eligibility"]
