"""Result types of the analysis room: one type per kind of answer.

Every test returns a ``TestResult`` and every estimate an ``Estimate``; an outcome gathers its arm
summaries, estimates and tests in an ``OutcomeResult``; a study's analysis is a ``Results``. All are
frozen and turn into plain JSON-ready dicts with ``to_dict()``; the report room renders them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["TestResult", "Estimate", "ArmSummary", "OutcomeResult", "Results"]


def _clean(value: Any) -> Any:
    """Make a value JSON-safe: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class TestResult:
    """One hypothesis test.

    ``framing`` is ``"matched"`` for a test that respects the matched sets (the primary analysis)
    or ``"published-style"`` for the analysis papers commonly report (for example McNemar on
    pseudo-pairs that reuse each treated patient k times); the latter carries a ``warning``.
    ``conventions`` states every choice a reader needs to redo the number (continuity correction,
    tie rule, sidedness, how pseudo-pairs were formed, ...).
    """

    __test__ = False  # not a pytest test class

    name: str
    method: str
    statistic: float | None
    p_value: float | None
    alternative: Literal["two-sided", "less", "greater"]
    framing: Literal["matched", "published-style", "unmatched"]
    n: int
    conventions: dict[str, Any] = field(default_factory=dict)
    df: float | None = None
    warning: str | None = None
    reference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval."""

    name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    method: str
    ci_level: float = 0.95
    framing: Literal["matched", "published-style", "unmatched"] = "matched"
    conventions: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass(frozen=True)
class ArmSummary:
    """Descriptive statistics of one outcome in one arm.

    Binary outcomes fill ``events`` and ``proportion``; continuous and count outcomes fill
    ``median``, ``q1``, ``q3``, ``mean``, ``sd``, ``min`` and ``max``. ``n`` counts patients with
    the outcome observed, ``n_missing`` those without. Quartiles use linear interpolation
    (Hyndman & Fan type 7, R's default and numpy's ``percentile`` default).
    """

    arm: Literal["treated", "control"]
    n: int
    n_missing: int = 0
    events: int | None = None
    proportion: float | None = None
    median: float | None = None
    q1: float | None = None
    q3: float | None = None
    mean: float | None = None
    sd: float | None = None
    min: float | None = None
    max: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


@dataclass(frozen=True)
class OutcomeResult:
    """Everything computed for one outcome."""

    outcome: str
    label: str
    kind: Literal["binary", "time_to_event", "continuous", "count"]
    summaries: tuple[ArmSummary, ...]
    tests: tuple[TestResult, ...]
    estimates: tuple[Estimate, ...] = ()
    definition: str = ""
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "label": self.label,
            "kind": self.kind,
            "definition": self.definition,
            "summaries": {s.arm: s.to_dict() for s in self.summaries},
            "tests": [t.to_dict() for t in self.tests],
            "estimates": [e.to_dict() for e in self.estimates],
            "notes": list(self.notes),
        }

    def test(self, name: str) -> TestResult:
        """The test called ``name``; raises KeyError when absent."""
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(f"{self.outcome}: no test named {name!r}; have {[t.name for t in self.tests]}")


@dataclass(frozen=True)
class Results:
    """The analysis of one study: one ``OutcomeResult`` per outcome, in spec order."""

    outcomes: tuple[OutcomeResult, ...]
    n_sets: int
    ratio: str

    def __getitem__(self, outcome: str) -> OutcomeResult:
        for o in self.outcomes:
            if o.outcome == outcome:
                return o
        raise KeyError(outcome)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_sets": self.n_sets,
            "ratio": self.ratio,
            "outcomes": {o.outcome: o.to_dict() for o in self.outcomes},
        }
