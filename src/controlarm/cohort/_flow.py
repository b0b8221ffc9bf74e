"""The flow of patients through eligibility and matching, with every exclusion counted by reason.

Feeds the flow diagram (CONSORT-like) in the report. Nothing is dropped without a step here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FlowStep", "Flow"]


@dataclass(frozen=True)
class FlowStep:
    """One step of the flow.

    ``n_in`` patients entered the step for ``group`` ("trial" or "pool"); ``excluded`` maps each
    reason to the number of patients it removed (a patient is counted under its first failing
    reason only); ``n_out = n_in - sum(excluded.values())``.
    """

    stage: str
    group: str
    n_in: int
    excluded: tuple[tuple[str, int], ...] = ()

    @property
    def n_excluded(self) -> int:
        return sum(n for _, n in self.excluded)

    @property
    def n_out(self) -> int:
        return self.n_in - self.n_excluded

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "group": self.group,
            "n_in": self.n_in,
            "excluded": {reason: n for reason, n in self.excluded},
            "n_out": self.n_out,
        }


@dataclass(frozen=True)
class Flow:
    """Ordered flow steps for both groups."""

    steps: tuple[FlowStep, ...] = field(default_factory=tuple)

    def then(self, step: FlowStep) -> "Flow":
        """A new Flow with ``step`` appended (flows are immutable)."""
        return Flow(self.steps + (step,))

    def for_group(self, group: str) -> tuple[FlowStep, ...]:
        return tuple(s for s in self.steps if s.group == group)

    def to_dict(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.steps]
