"""The result of matching: the tidy matched table and what produced it. Immutable; never prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._balance import balance_table

__all__ = ["MatchResult", "MATCHED_COLUMNS", "build_matched_table", "matchit_weights"]

MATCHED_COLUMNS = ("set_id", "patient_id", "role", "weight", "distance", "match_round")


@dataclass(frozen=True)
class MatchResult:
    """Matched sets and how they were made.

    Attributes
    ----------
    matched : DataFrame
        The tidy matched table, one row per patient in a set: ``set_id`` (1..n_sets, numbered by
        the treated patient's position in ``data``), ``patient_id``, ``role`` ("treated" /
        "control"), ``weight`` (MatchIt's matching weight: 1 for treated; for controls
        1 / (controls in the set), rescaled so control weights sum to the number of matched
        controls; all 1 when every set is full k:1), ``distance`` (the control's distance to its
        treated patient; 0 for treated), ``ps`` (propensity score; PS distances only) and
        ``match_round`` (0 for treated; r for the control found in round r).
    match_matrix : DataFrame
        MatchIt's ``match.matrix``: one row per treated patient (data order), columns 1..ratio,
        the control id in each slot or None.
    unmatched_treated : tuple
        Ids of treated patients who got no control.
    incomplete_treated : tuple
        Ids of treated patients who got at least one but fewer than ``ratio`` controls.
    n_treated, n_candidates : int
        Treated patients and candidate controls in the input.
    method, distance : str
        The matching method and distance used.
    settings : dict
        Every setting and convention needed to redo the match: ratio, exact, caliper (given and raw),
        order, tie rule, PS model or Mahalanobis covariance, seed.
    ps_ : Series or None
        Propensity score per patient id (all patients; PS distances only).
    ps_coef_ : Series or None
        Coefficients of the propensity model (``(Intercept)`` then covariates).
    covariance_ : DataFrame or None
        The covariance matrix of the Mahalanobis distance.
    """

    matched: pd.DataFrame
    match_matrix: pd.DataFrame
    unmatched_treated: tuple
    incomplete_treated: tuple
    n_treated: int
    n_candidates: int
    method: str
    distance: str
    treatment: str
    covariates: tuple[str, ...]
    id_column: str
    settings: dict[str, Any] = field(default_factory=dict)
    ps_: pd.Series | None = None
    ps_coef_: pd.Series | None = None
    covariance_: pd.DataFrame | None = None

    @property
    def sets(self) -> pd.DataFrame:
        """The tidy matched table (alias of ``matched``)."""
        return self.matched

    @property
    def n_sets(self) -> int:
        return int(self.matched["set_id"].nunique()) if len(self.matched) else 0

    def summary(self) -> pd.DataFrame:
        """Sample sizes as MatchIt's ``summary()$nn``: rows All, Matched, Matched (ESS), Unmatched.

        Returns
        -------
        DataFrame
            Columns ``Control`` and ``Treated``; ESS = (sum w)^2 / sum w^2 of the matching weights.
        """
        m = self.matched
        wt = m.loc[m["role"] == "treated"].groupby("patient_id")["weight"].sum()
        wc = m.loc[m["role"] == "control"].groupby("patient_id")["weight"].sum()

        def ess(w: pd.Series) -> float:
            return float(w.sum() ** 2 / (w**2).sum()) if len(w) else 0.0

        n_matched_c, n_matched_t = len(wc), len(wt)
        out = pd.DataFrame(
            {
                "Control": [self.n_candidates, n_matched_c, ess(wc), self.n_candidates - n_matched_c],
                "Treated": [self.n_treated, n_matched_t, ess(wt), self.n_treated - n_matched_t],
            },
            index=["All", "Matched", "Matched (ESS)", "Unmatched"],
        )
        out.attrs["incomplete_treated"] = len(self.incomplete_treated)
        return out

    def balance(self, data: pd.DataFrame, *, binary: Sequence[str] = ()) -> pd.DataFrame:
        """Balance of the matching covariates before and after matching (see :func:`balance_table`)."""
        return balance_table(
            data,
            self.matched,
            treatment=self.treatment,
            covariates=self.covariates,
            binary=binary,
            id_column=self.id_column,
        )

    def to_text(self) -> str:
        """A short plain-text account of the match (for logs and the CLI; never printed here)."""
        s = self.summary()
        lines = [
            f"{self.method} matching, 1:{self.settings.get('ratio')} on {self.distance}"
            + (f", exact on {', '.join(self.settings['exact'])}" if self.settings.get("exact") else "")
            + (f", caliper {self.settings['caliper']} {self.settings['caliper_units']}"
               f" (= {self.settings['caliper_raw']:.6g} raw)" if self.settings.get("caliper") is not None else ""),
            f"sets: {self.n_sets}; treated matched {int(s.loc['Matched', 'Treated'])} of {self.n_treated}; "
            f"controls used {int(s.loc['Matched', 'Control'])} of {self.n_candidates}",
        ]
        if self.unmatched_treated:
            lines.append(f"treated without a control: {len(self.unmatched_treated)}")
        if self.incomplete_treated:
            lines.append(f"treated with fewer than {self.settings.get('ratio')} controls: {len(self.incomplete_treated)}")
        return "\n".join(lines)

    def to_html(self) -> str:
        """The sample-size summary as an HTML table."""
        return self.summary().to_html(float_format=lambda v: f"{v:.2f}")


def matchit_weights(mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MatchIt's matching weights from a match matrix without replacement.

    Returns (treated_weight per row of ``mm``, control_weight per slot of ``mm``): a treated patient
    with at least one control weighs 1; a control weighs 1 / (controls in its set), then all control
    weights are multiplied by (number of matched controls) / (sum of control weights), as
    ``weights_matrixC()`` and ``matchit()`` do.
    """
    filled = mm >= 0
    n_per = filled.sum(axis=1)
    w_t = (n_per > 0).astype(float)
    w_c = np.where(filled, 1.0 / np.maximum(n_per, 1)[:, None], 0.0)
    total = w_c.sum()
    if total > 0:
        w_c = w_c * filled.sum() / total
    return w_t, w_c


def build_matched_table(
    ids: np.ndarray,
    treated: np.ndarray,
    mm: np.ndarray,
    pair_distance: np.ndarray,
    ps: np.ndarray | None,
) -> pd.DataFrame:
    """The tidy matched table from a match matrix (rows of ``mm`` follow ``treated``, data order)."""
    w_t, w_c = matchit_weights(mm)
    rows: list[tuple] = []
    set_id = 0
    for k, t in enumerate(treated):
        slots = np.flatnonzero(mm[k] >= 0)
        if slots.size == 0:
            continue
        set_id += 1
        rows.append((set_id, ids[t], "treated", w_t[k], 0.0, 0, t))
        for r in slots:
            c = mm[k, r]
            rows.append((set_id, ids[c], "control", w_c[k, r], float(pair_distance[k, r]), int(r) + 1, c))
    table = pd.DataFrame(rows, columns=[*MATCHED_COLUMNS, "_row"])
    table = table.astype({"set_id": "int64", "weight": "float64", "distance": "float64", "match_round": "int64"})
    if ps is not None:
        table.insert(5, "ps", ps[table["_row"].to_numpy(dtype=np.int64)] if len(table) else np.array([], dtype=float))
    return table.drop(columns="_row")
