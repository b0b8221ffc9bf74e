"""Audit room: the result of an audit of a published matched study (immutable; renders itself)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .._json import json_safe as _clean

__all__ = ["AuditResult"]


@dataclass(frozen=True)
class AuditResult:
    """What the published counts allow: the spread of matched-set p-values over every allocation
    of events to sets, which common test reproduces the published p, and the fragility index.

    ``distribution`` maps each matched-set test to ``min``, ``median``, ``max`` (over the
    allocations that occur), ``share_below_alpha`` (patient-level weighting, the primary one),
    ``share_below_alpha_tables`` (each labelled set-level table counted once) and, when sampled,
    ``mc_se`` of the patient-level share. ``candidates`` lists the common tests with the range of
    p-values they give over the allocations and whether that range reproduces the published p.
    ``allocations`` has one row per distinct allocation (not part of ``to_dict``).
    """

    set_sizes: tuple[int, ...]
    n_treated: int
    n_controls: int
    treated_events: int
    control_events: int
    alpha: float
    weighting: str
    enumerated: bool
    n_distinct: int
    n_distinct_total: int
    n_patient_configurations: int
    n_set_tables: int
    n_samples: int | None
    seed: int
    distribution: dict[str, dict[str, Any]]
    candidates: tuple[dict[str, Any], ...]
    identified: tuple[str, ...]
    published_p: float | None
    published_test: str | None
    published_test_p: tuple[float, float] | None
    fragility: dict[str, Any]
    notes: tuple[str, ...]
    references: tuple[str, ...]
    allocations: pd.DataFrame = field(repr=False, compare=False, default_factory=pd.DataFrame)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``allocations`` left out; use ``allocations.to_dict("records")``)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "allocations"}
        return _clean(out)

    def summary(self) -> pd.DataFrame:
        """One row per matched-set test: min, median, max of the p-value (or Gamma) and the
        share of allocations with p < alpha."""
        rows = [{"test": name, **d} for name, d in self.distribution.items()]
        return pd.DataFrame(rows).set_index("test")

    def candidates_table(self) -> pd.DataFrame:
        """One row per common test: its p-value range and whether it reproduces the published p."""
        return pd.DataFrame(list(self.candidates)).set_index("name")

    def to_text(self) -> str:
        """A plain-text rendering for a terminal or a log."""
        lines = [
            f"Audit of a matched study: {self.n_treated} treated in {len(self.set_sizes)} sets, "
            f"{self.n_controls} controls; events {self.treated_events} vs {self.control_events}.",
            f"Allocations: {self.n_distinct} distinct of {self.n_distinct_total} ("
            + ("all enumerated" if self.enumerated else f"{self.n_samples} uniform draws, seed "
               f"{self.seed}") + f"), {self.n_patient_configurations} patient-level configurations,"
            f" weighted by {self.weighting}.",
            "",
            f"{'matched-set test':<34}{'min':>9}{'median':>9}{'max':>9}  share p<{self.alpha:g}",
        ]
        for name, d in self.distribution.items():
            share = d.get("share_below_alpha")
            share_s = "" if share is None else f"{share:.3f}"
            lines.append(f"{name:<34}{_f(d['min']):>9}{_f(d['median']):>9}{_f(d['max']):>9}"
                         f"  {share_s}")
        lines += ["", f"{'common test':<44}{'p (range)':>20}  reproduces"]
        for c in self.candidates:
            rng = _f(c["p_min"]) if c["p_min"] == c["p_max"] else f"{_f(c['p_min'])}-{_f(c['p_max'])}"
            rep = "" if c["reproduces"] is None else ("yes" if c["reproduces"] else "no")
            lines.append(f"{c['name']:<44}{rng:>20}  {rep}")
        if self.published_p is not None:
            lines.append("")
            lines.append(f"Published p = {self.published_p:g}: reproduced by "
                         + (", ".join(self.identified) if self.identified else "no common test"))
        f = self.fragility
        if f.get("index") is not None:
            lines.append(f"{f['kind'].capitalize()} index (Fisher, arm totals): {f['index']}")
        lines += [""] + [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _f(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}"
