"""Plan room: the sample size of one endpoint of the confirmatory trial (immutable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from .._json import json_safe as _clean

__all__ = ["SampleSize", "TrialPlan"]


@dataclass(frozen=True)
class SampleSize:
    """Sample size for one endpoint.

    ``n_control``/``n_treated`` are the evaluable patients the test needs (analytic unless the
    method is simulation only); ``n_*_enrolled`` inflate them for dropout, ``ceil(n / (1 -
    dropout))``. ``simulated_power`` is the power of the trial with the evaluable sizes, over
    ``n_simulations`` seeded simulated trials, with its Monte Carlo standard error ``mc_se``;
    ``n_control_simulated`` (when given) is the smallest size whose simulated power reaches the
    target. ``events`` is the number of events (time to event only).
    """

    endpoint: str
    method: str
    test: str
    n_control: int
    n_treated: int
    n_control_enrolled: int
    n_treated_enrolled: int
    alpha: float
    power: float
    allocation: float
    dropout: float
    effect: dict[str, Any]
    analytic_power: float | None = None
    events: float | None = None
    simulated_power: float | None = None
    mc_se: float | None = None
    n_control_simulated: int | None = None
    n_simulations: int | None = None
    seed: int | None = None
    assumptions: dict[str, Any] = field(default_factory=dict)
    references: tuple[str, ...] = ()

    @property
    def n_total_enrolled(self) -> int:
        return self.n_control_enrolled + self.n_treated_enrolled

    def to_dict(self) -> dict[str, Any]:
        return _clean({**asdict(self), "n_total_enrolled": self.n_total_enrolled})

    def summary(self) -> pd.DataFrame:
        """One row: endpoint, method, sizes, events, simulated power and its Monte Carlo SE."""
        keys = ["endpoint", "method", "n_control", "n_treated", "n_total_enrolled", "events",
                "analytic_power", "simulated_power", "mc_se", "n_control_simulated"]
        d = self.to_dict()
        return pd.DataFrame([{k: d[k] for k in keys}]).set_index("endpoint")

    def to_text(self) -> str:
        ev = "" if self.events is None else f", {self.events:.1f} events"
        sim = "" if self.simulated_power is None else (
            f"; simulated power {self.simulated_power:.3f} (MC SE {self.mc_se:.3f}, "
            f"{self.n_simulations} trials, seed {self.seed})")
        return (f"{self.endpoint}: {self.n_control} control + {self.n_treated} treated evaluable"
                f"{ev} ({self.method}); enrol {self.n_total_enrolled} with {self.dropout:.0%} "
                f"dropout{sim}.")


@dataclass(frozen=True)
class TrialPlan:
    """Sample sizes of every endpoint planned together."""

    endpoints: tuple[SampleSize, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"endpoints": [e.to_dict() for e in self.endpoints]}

    def summary(self) -> pd.DataFrame:
        rows = [e.summary().reset_index().iloc[0].to_dict() for e in self.endpoints]
        return pd.DataFrame(rows).set_index("endpoint") if rows else pd.DataFrame()

    def to_text(self) -> str:
        return "\n".join(e.to_text() for e in self.endpoints)
