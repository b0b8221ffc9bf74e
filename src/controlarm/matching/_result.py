"""The result of matching: the tidy matched table, the audit and what produced it. Immutable; never prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ._balance import balance_table

__all__ = ["MatchResult", "MATCHED_COLUMNS", "MATCHED_SETS_COLUMNS", "AUDIT_COLUMNS", "build_matched_table",
           "matchit_weights", "build_audit"]

MATCHED_COLUMNS = ("set_id", "patient_id", "role", "weight", "distance", "match_round")
MATCHED_SETS_COLUMNS = ("set_id", "treated_id", "control_id", "slot", "distance")
AUDIT_COLUMNS = ("treated_id", "set_id", "n_in_stratum", "n_eligible", "n_wanted", "n_matched", "status", "reason")


@dataclass(frozen=True)
class MatchResult:
    """Matched sets, how they were made, and why some treated patients got fewer controls.

    Attributes
    ----------
    matched : DataFrame
        The tidy matched table, one row per patient in a set: ``set_id`` (1..n_sets, numbered by
        the treated patient's position in ``data``), ``patient_id``, ``role`` ("treated" /
        "control"), ``weight`` (MatchIt's matching weight: 1 for treated; for a control 1 / (controls
        in the set), rescaled so control weights sum to the number of distinct matched controls; a
        control reused with replacement has one row per set and its weight is the sum of its rows),
        ``distance`` (the control's distance to its treated patient; 0 for treated), ``ps``
        (propensity score; PS distances only), ``match_round`` (0 for treated; the control's slot:
        the greedy round, or its rank by distance for optimal matching) and, for risk-set matching,
        ``index_time``.
    match_matrix : DataFrame
        MatchIt's ``match.matrix``: one row per treated patient (data order), columns 1..ratio,
        the control id in each slot or None.
    unmatched_treated : tuple
        Ids of treated patients who got no control (discarded ones included).
    incomplete_treated : tuple
        Ids of treated patients who got at least one but fewer than wanted.
    n_treated, n_candidates : int
        Treated patients and candidate controls in the input.
    method, distance : str
        The matching method and distance used.
    settings : dict
        Every setting and convention needed to redo the match: ratio, exact, calipers (given and
        raw), order, seed, tie rule, PS model or covariance.
    audit : DataFrame
        One row per treated patient: ``treated_id, set_id, n_in_stratum`` (candidates in its exact
        stratum), ``n_eligible`` (also within every caliper), ``n_wanted, n_matched, status``
        ("matched", "incomplete", "unmatched", "discarded") and ``reason``.
    diagnostics : dict
        Counts (caliper misses, discarded), total distance, and the method's report (for optimal
        matching: solver, pruning rounds, optimality certificate).
    ps_ : Series or None
        Propensity score per patient id (all patients; PS distances only).
    ps_coef_ : Series or None
        Coefficients of the propensity model (``(Intercept)`` then covariates).
    covariance_ : DataFrame or None
        The covariance matrix of a Mahalanobis distance.
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
    audit: pd.DataFrame | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    design_: pd.DataFrame | None = None

    @property
    def sets(self) -> pd.DataFrame:
        """The tidy matched table (alias of ``matched``)."""
        return self.matched

    @property
    def n_sets(self) -> int:
        return int(self.matched["set_id"].nunique()) if len(self.matched) else 0

    @property
    def matched_sets(self) -> pd.DataFrame:
        """The audit table of pairs: ``set_id, treated_id, control_id, slot, distance`` (one row per control)."""
        m = self.matched
        treated = m.loc[m["role"] == "treated"].set_index("set_id")["patient_id"]
        c = m.loc[m["role"] == "control"]
        out = pd.DataFrame(
            {
                "set_id": c["set_id"].to_numpy(),
                "treated_id": treated.reindex(c["set_id"]).to_numpy(),
                "control_id": c["patient_id"].to_numpy(),
                "slot": c["match_round"].to_numpy(),
                "distance": c["distance"].to_numpy(),
            }
        )
        return out

    @property
    def unmatched(self) -> pd.DataFrame:
        """Treated patients with fewer controls than wanted, each with the reason (rows of ``audit``)."""
        if self.audit is None:
            return pd.DataFrame(columns=AUDIT_COLUMNS)
        return self.audit.loc[self.audit["status"] != "matched"].reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """Sample sizes as MatchIt's ``summary()$nn``: rows All, Matched, Matched (ESS), Unmatched, Discarded.

        Returns
        -------
        DataFrame
            Columns ``Control`` and ``Treated``; ESS = (sum w)^2 / sum w^2 of the matching weights
            (a control's weight summed over its sets).
        """
        m = self.matched
        wt = m.loc[m["role"] == "treated"].groupby("patient_id")["weight"].sum()
        wc = m.loc[m["role"] == "control"].groupby("patient_id")["weight"].sum()

        def ess(w: pd.Series) -> float:
            return float(w.sum() ** 2 / (w**2).sum()) if len(w) else 0.0

        disc_t = int(self.diagnostics.get("discarded_treated", 0))
        disc_c = int(self.diagnostics.get("discarded_controls", 0))
        n_matched_c, n_matched_t = len(wc), len(wt)
        out = pd.DataFrame(
            {
                "Control": [self.n_candidates, n_matched_c, ess(wc), self.n_candidates - n_matched_c - disc_c, disc_c],
                "Treated": [self.n_treated, n_matched_t, ess(wt), self.n_treated - n_matched_t - disc_t, disc_t],
            },
            index=["All", "Matched", "Matched (ESS)", "Unmatched", "Discarded"],
        )
        out.attrs["incomplete_treated"] = len(self.incomplete_treated)
        return out

    def balance(self, data: pd.DataFrame | None = None, *, binary: Sequence[str] = (),
                smd_denominator: str = "treated") -> pd.DataFrame:
        """Balance of the matching covariates before and after matching (see :func:`balance_table`).

        ``data`` is the matching frame. Risk-set results carry their own design (one row per
        treated patient and per candidate at a landmark: covariates as of that time), used when
        ``data`` is None; "before matching" then compares the treated with every candidate in
        their risk sets.
        """
        if data is None:
            if self.design_ is None:
                raise InputError("balance() needs the matching frame: result.balance(data)")
            m = self.matched.assign(patient_id=self.matched["unit_id"])
            return balance_table(self.design_, m, treatment="treated", covariates=self.covariates, binary=binary,
                                 id_column="unit_id", smd_denominator=smd_denominator)
        return balance_table(
            data,
            self.matched,
            treatment=self.treatment,
            covariates=self.covariates,
            binary=binary,
            id_column=self.id_column,
            smd_denominator=smd_denominator,
        )

    def plot(self, data: pd.DataFrame | None = None, *, threshold: float = 0.1, ax: Any = None) -> Any:
        """Love plot of the balance (see :func:`love_plot`); returns the matplotlib Figure."""
        from ._plot import love_plot

        return love_plot(self.balance(data), threshold=threshold, ax=ax)

    def to_text(self) -> str:
        """A short plain-text account of the match (for logs and the CLI; never printed here)."""
        s = self.summary()
        ratio = self.settings.get("ratio")
        lines = [
            f"{self.method} matching, 1:{ratio} on {self.distance}"
            + (" with replacement" if self.settings.get("replace") else "")
            + (f", exact on {', '.join(self.settings['exact'])}" if self.settings.get("exact") else "")
            + (f", caliper {self.settings['caliper']} {self.settings['caliper_units']}"
               f" (= {self.settings['caliper_raw']:.6g} raw)" if self.settings.get("caliper") is not None else ""),
            f"sets: {self.n_sets}; treated matched {int(s.loc['Matched', 'Treated'])} of {self.n_treated}; "
            f"controls used {int(s.loc['Matched', 'Control'])} of {self.n_candidates}",
        ]
        if "total_distance" in self.diagnostics:
            lines.append(f"total distance: {self.diagnostics['total_distance']:.6g}")
        if self.unmatched_treated:
            lines.append(f"treated without a control: {len(self.unmatched_treated)}")
        if self.incomplete_treated:
            lines.append(f"treated with fewer controls than wanted: {len(self.incomplete_treated)}")
        if self.diagnostics.get("caliper_misses"):
            lines.append(f"treated short of controls because of a caliper: {self.diagnostics['caliper_misses']}")
        return "\n".join(lines)

    def to_html(self) -> str:
        """The sample-size summary as an HTML table."""
        return self.summary().to_html(float_format=lambda v: f"{v:.2f}")


def matchit_weights(mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MatchIt's matching weights from a match matrix (with or without replacement).

    Returns (treated_weight per row of ``mm``, control_weight per slot of ``mm``): a treated patient
    with at least one control weighs 1; a control slot weighs 1 / (controls in its set); then all
    control slots are multiplied by (number of distinct matched controls) / (sum of slot weights),
    as ``weights_matrixC()`` and ``matchit()`` do. A control's weight is the sum over its slots.
    """
    filled = mm >= 0
    n_per = filled.sum(axis=1)
    w_t = (n_per > 0).astype(float)
    w_c = np.where(filled, 1.0 / np.maximum(n_per, 1)[:, None], 0.0)
    total = w_c.sum()
    if total > 0:
        w_c = w_c * len(np.unique(mm[filled])) / total
    return w_t, w_c


def build_matched_table(
    ids: np.ndarray,
    treated: np.ndarray,
    mm: np.ndarray,
    pair_distance: np.ndarray,
    ps: np.ndarray | None,
    index_time: np.ndarray | None = None,
    unit_ids: np.ndarray | None = None,
) -> pd.DataFrame:
    """The tidy matched table from a match matrix (rows of ``mm`` follow ``treated``, data order)."""
    w_t, w_c = matchit_weights(mm)
    filled = mm >= 0
    has = filled.any(axis=1)
    k_idx = np.flatnonzero(has)
    set_of = np.zeros(len(treated), dtype=np.int64)
    set_of[k_idx] = np.arange(1, len(k_idx) + 1)
    kk, rr = np.nonzero(filled)  # row-major: by treated, then slot
    n_c = len(kk)
    # interleave: each set's treated row, then its controls
    t_rows = pd.DataFrame({
        "set_id": set_of[k_idx], "patient_id": ids[treated[k_idx]], "role": "treated", "weight": w_t[k_idx],
        "distance": 0.0, "match_round": 0, "_row": treated[k_idx], "_k": k_idx, "_o": 0,
    })
    c_rows = pd.DataFrame({
        "set_id": set_of[kk], "patient_id": ids[mm[kk, rr]] if n_c else np.array([], dtype=object),
        "role": "control", "weight": w_c[kk, rr], "distance": pair_distance[kk, rr].astype(float),
        "match_round": rr + 1, "_row": mm[kk, rr], "_k": kk, "_o": rr + 1,
    })
    table = pd.concat([t_rows, c_rows], ignore_index=True).sort_values(["set_id", "_o"], kind="stable")
    table = table.reset_index(drop=True)
    table = table.astype({"set_id": "int64", "weight": "float64", "distance": "float64", "match_round": "int64"})
    table["patient_id"] = table["patient_id"].astype(object)
    table["role"] = table["role"].astype(object)
    if ps is not None:
        table.insert(5, "ps", ps[table["_row"].to_numpy(dtype=np.int64)] if len(table) else np.array([], dtype=float))
    if index_time is not None:
        table["index_time"] = index_time[table["_k"].to_numpy(dtype=np.int64)] if len(table) else index_time[:0]
    if unit_ids is not None:  # risk-set: the design row of each patient in each set
        uid = np.empty(len(table), dtype=object)
        if len(table):
            kk_ = table["_k"].to_numpy(dtype=np.int64)
            rows_ = table["_row"].to_numpy(dtype=np.int64)
            is_c = (table["role"] == "control").to_numpy()
            slot = table["match_round"].to_numpy(dtype=np.int64) - 1
            uid[is_c] = unit_ids[kk_[is_c], slot[is_c]]
            uid[~is_c] = ids[rows_[~is_c]]
        table["unit_id"] = uid
    return table.drop(columns=["_row", "_k", "_o"])


def build_audit(
    treated_ids: np.ndarray,
    mm: np.ndarray,
    wanted: np.ndarray,
    n_in: np.ndarray,
    n_ok: np.ndarray,
    discarded: np.ndarray,
    *,
    discard_rule: str | None,
    has_caliper: bool,
    stratum_words: str = "its exact stratum",
) -> tuple[pd.DataFrame, int]:
    """Per treated patient: eligible candidates, controls got, status and reason; and the caliper misses.

    A caliper miss is a treated patient who got fewer controls than wanted while the calipers left
    it fewer eligible candidates than its exact stratum held.
    """
    n_got = (mm >= 0).sum(axis=1)
    has = n_got > 0
    set_id = np.zeros(len(mm), dtype=np.int64)
    set_id[has] = np.arange(1, int(has.sum()) + 1)
    status, reason = [], []
    misses = 0
    for i in range(len(mm)):
        w, got = int(wanted[i]), int(n_got[i])
        if discarded[i]:
            status.append("discarded")
            reason.append(f"outside common support ({discard_rule})")
            continue
        short = got < w
        caliper_cut = has_caliper and n_ok[i] < min(w, n_in[i]) if w else False
        if short and caliper_cut:
            misses += 1
        if not short:
            status.append("matched")
            reason.append("")
        elif n_in[i] == 0:
            status.append("unmatched")
            reason.append(f"no candidate in {stratum_words}")
        elif n_ok[i] == 0:
            status.append("unmatched")
            reason.append(f"no candidate within the caliper ({n_in[i]} in {stratum_words})")
        else:
            status.append("unmatched" if got == 0 else "incomplete")
            if n_ok[i] < w and got == n_ok[i]:
                reason.append(f"only {n_ok[i]} eligible candidate(s) for {w} wanted"
                              + (" (caliper)" if caliper_cut else ""))
            else:
                reason.append(f"{n_ok[i] - got} of {n_ok[i]} eligible candidate(s) went to other treated patients")
    audit = pd.DataFrame({
        "treated_id": treated_ids,
        "set_id": pd.array(np.where(has, set_id, 0), dtype="Int64").astype("Int64"),
        "n_in_stratum": n_in.astype(np.int64),
        "n_eligible": n_ok.astype(np.int64),
        "n_wanted": wanted.astype(np.int64),
        "n_matched": n_got.astype(np.int64),
        "status": status,
        "reason": reason,
    })
    audit.loc[~has, "set_id"] = pd.NA
    return audit, misses
