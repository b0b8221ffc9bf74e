"""Result types of the analysis room: one type per kind of answer.

Every test returns a ``TestResult`` and every estimate an ``Estimate``; an outcome gathers its arm
summaries, estimates and tests in an ``OutcomeResult``; a study's analysis is a ``Results``. All are
frozen and turn into plain JSON-ready dicts with ``to_dict()``; the report room renders them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .._json import json_safe as _clean

__all__ = ["TestResult", "Estimate", "ArmSummary", "SensitivityResult", "OutcomeResult", "Results"]


@dataclass(frozen=True)
class TestResult:
    """One hypothesis test.

    ``framing`` is ``"matched"`` for a test that respects the matched sets (the primary analysis)
    or ``"published-style"`` for the analysis papers commonly report (for example McNemar on
    pseudo-pairs that reuse each treated patient k times); the latter carries a ``warning``.
    ``conventions`` states every choice a reader needs to redo the number (continuity correction,
    tie rule, sidedness, how pseudo-pairs were formed, ...). ``p_adjusted`` is filled only for
    the primary test of each outcome when ``analyse(..., multiplicity=...)`` asks for it; the
    method and the family are in ``conventions["multiplicity"]``.
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
    p_adjusted: float | None = None

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
class SensitivityResult:
    """One sensitivity analysis, as a titled table with a one-sentence summary.

    The report renders every sensitivity analysis the same way: ``label`` as the title, a table of
    ``columns`` and ``rows`` (plain numbers and strings), and ``summary`` below it. ``method`` says
    what was computed, ``conventions`` every choice needed to redo it (tail, tie rule, which
    bound), and ``reference`` the citation.
    """

    name: str
    label: str
    method: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    summary: str
    conventions: dict[str, Any] = field(default_factory=dict)
    reference: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "name": self.name, "label": self.label, "method": self.method,
            "columns": list(self.columns), "rows": [list(r) for r in self.rows],
            "summary": self.summary, "conventions": self.conventions, "reference": self.reference,
        })

    def table(self):
        """The rows as a DataFrame with ``columns`` as its header."""
        import pandas as pd

        return pd.DataFrame([list(r) for r in self.rows], columns=list(self.columns))


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
    sensitivity: tuple[SensitivityResult, ...] = ()

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
            "sensitivity": [r.to_dict() for r in self.sensitivity],
        }

    def test(self, name: str) -> TestResult:
        """The test called ``name``; raises KeyError when absent."""
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(f"{self.outcome}: no test named {name!r}; "
                       f"have {[t.name for t in self.tests]}")

    def estimate(self, name: str) -> Estimate:
        """The estimate called ``name``; raises KeyError when absent."""
        for e in self.estimates:
            if e.name == name:
                return e
        raise KeyError(f"{self.outcome}: no estimate named {name!r}; "
                       f"have {[e.name for e in self.estimates]}")

    def sensitivity_analysis(self, name: str) -> SensitivityResult:
        """The sensitivity analysis called ``name``; raises KeyError when absent."""
        for r in self.sensitivity:
            if r.name == name:
                return r
        raise KeyError(f"{self.outcome}: no sensitivity analysis named {name!r}; "
                       f"have {[r.name for r in self.sensitivity]}")


@dataclass(frozen=True)
class Results:
    """The analysis of one study: one ``OutcomeResult`` per outcome, in spec order.

    ``multiplicity`` states the correction applied to the primary tests (empty when none), and
    ``comparison`` holds one row per outcome that sets the primary matched-set p-value beside the
    published-style one, with the reason they differ (empty when published-style analyses were
    not requested); ``style_comparison()`` returns it as a DataFrame.
    """

    outcomes: tuple[OutcomeResult, ...]
    n_sets: int
    ratio: str
    multiplicity: dict[str, Any] = field(default_factory=dict)
    comparison: tuple[dict[str, Any], ...] = ()

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
            "multiplicity": _clean(self.multiplicity),
            "style_comparison": _clean(list(self.comparison)),
        }

    def style_comparison(self):
        """Primary (matched-set) and published-style p-values side by side, with the reason.

        Returns
        -------
        DataFrame
            One row per outcome with a published-style analysis: ``outcome, label,
            primary_test, primary_p, published_test, published_p, ratio_published_to_primary,
            reason``.
        """
        import pandas as pd

        cols = ["outcome", "label", "primary_test", "primary_p", "published_test", "published_p",
                "ratio_published_to_primary", "reason"]
        return pd.DataFrame(list(self.comparison), columns=cols)
