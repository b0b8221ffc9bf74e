"""The `cohort` room: eligibility, index dates (time zero) and the flow of exclusions."""

from ._cohort import Cohort, build_cohort
from ._flow import Flow, FlowStep

__all__ = ["Cohort", "Flow", "FlowStep", "build_cohort"]
