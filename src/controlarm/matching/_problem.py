"""The contract between the front door (:func:`controlarm.matching.match`) and each matching method.

The front door validates the input, computes the distance, the exact strata, the calipers, the
common-support discard, the number of controls wanted per treated patient and the processing order,
and hands a :class:`MatchingProblem` to the method registered under ``method``. The method returns
an :class:`Assignment`. A new method is one module with one function
``(MatchingProblem) -> Assignment`` added to the registry in ``_api.py``; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._distance import Distance

__all__ = ["MatchingProblem", "Assignment", "CovariateCaliper"]


@dataclass(frozen=True)
class CovariateCaliper:
    """|x_treated - x_control| <= width on one covariate (raw units), values over all frame rows."""

    name: str
    values: np.ndarray
    width: float


@dataclass(frozen=True)
class MatchingProblem:
    """Everything a matching method needs; row indices refer to rows of the matching frame.

    Attributes
    ----------
    treated : ndarray of int
        Row indices of the treated patients, in data order (all of them, discarded ones included).
    controls : ndarray of int
        Row indices of the candidate controls that may be matched (discarded ones removed), in data
        order.
    distance : Distance
        The distance over all rows.
    strata : ndarray of int or None
        Exact-stratum code per row; a control may only match a treated with the same code.
    caliper : float or None
        Maximum pair distance, in raw distance units (pairs with distance <= caliper are allowed).
    covariate_calipers : tuple of CovariateCaliper
        Calipers on named covariates; a pair must satisfy all of them.
    ratio : int
        Columns of the match matrix: the most controls any treated patient may get.
    n_wanted : ndarray of int
        Controls wanted per treated patient (rows follow ``treated``); 0 for discarded treated.
        Greedy matching fills exactly these; optimal matching uses them as the maximum.
    min_controls : ndarray of int or None
        Variable ratio (optimal): the minimum per treated patient; ``total`` the number of controls
        to match in all. None for fixed ratio.
    total : int or None
        Variable ratio (optimal): controls to match in all.
    order : ndarray of int
        Processing order of the treated (greedy): positions into ``treated``.
    replace : bool
        Whether a control may be used more than once.
    active : ndarray of bool
        Treated patients that take part (False: discarded for common support).
    options : dict
        Method-specific options (``k_nearest`` for optimal matching).
    """

    treated: np.ndarray
    controls: np.ndarray
    distance: Distance
    strata: np.ndarray | None
    caliper: float | None
    ratio: int
    order: np.ndarray
    replace: bool = False
    covariate_calipers: tuple[CovariateCaliper, ...] = ()
    n_wanted: np.ndarray | None = None
    min_controls: np.ndarray | None = None
    total: int | None = None
    active: np.ndarray | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def n_treated(self) -> int:
        return len(self.treated)

    @property
    def n_rows(self) -> int:
        """Number of rows of the matching frame (treated and all candidate controls)."""
        rows = np.concatenate([self.treated, self.controls])
        return int(rows.max()) + 1 if len(rows) else 0

    def wanted(self) -> np.ndarray:
        """Controls wanted per treated patient (0 for inactive ones)."""
        if self.n_wanted is not None:
            return self.n_wanted
        w = np.full(self.n_treated, self.ratio, dtype=np.int64)
        if self.active is not None:
            w[~self.active] = 0
        return w

    def stratum_of(self, rows: np.ndarray) -> np.ndarray:
        if self.strata is None:
            return np.zeros(len(rows), dtype=np.int64)
        return self.strata[rows]

    def cov_ok(self, ti: np.ndarray, cj: np.ndarray) -> np.ndarray:
        """Elementwise: does pair (ti[m], cj[m]) satisfy every covariate caliper?"""
        ok = np.ones(len(ti), dtype=bool)
        for cc in self.covariate_calipers:
            ok &= np.abs(cc.values[cj] - cc.values[ti]) <= cc.width
        return ok

    def cov_ok_block(self, ti: np.ndarray, cj: np.ndarray) -> np.ndarray | None:
        """Blockwise (len(ti) x len(cj)) covariate-caliper mask, or None without covariate calipers."""
        if not self.covariate_calipers:
            return None
        ok = np.ones((len(ti), len(cj)), dtype=bool)
        for cc in self.covariate_calipers:
            ok &= np.abs(cc.values[cj][None, :] - cc.values[ti][:, None]) <= cc.width
        return ok


@dataclass(frozen=True)
class Assignment:
    """The answer of a matching method.

    Attributes
    ----------
    match_matrix : ndarray of int, shape (n_treated, ratio)
        Row index of the control in each slot, or -1 when the slot stayed empty. Rows follow
        ``MatchingProblem.treated``. Greedy: column r = match round r + 1. Optimal: slots sorted by
        distance.
    pair_distance : ndarray of float, shape (n_treated, ratio)
        Distance of the control in each slot to its treated patient; NaN for empty slots.
    tie_rule : str
        How the method chose among equidistant controls (stated in the result's settings).
    info : dict
        Method diagnostics (for optimal matching: the solver, the pruning, the optimality check).
    """

    match_matrix: np.ndarray
    pair_distance: np.ndarray
    tie_rule: str
    info: dict[str, Any] = field(default_factory=dict)
