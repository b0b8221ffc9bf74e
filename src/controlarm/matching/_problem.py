"""The contract between the front door (:func:`controlarm.matching.match`) and each matching method.

The front door validates the input, computes the distance, the exact strata, the raw caliper and
the processing order, and hands a :class:`MatchingProblem` to the method registered under
``method``. The method returns an :class:`Assignment`. A new method (optimal, with replacement,
variable ratio, risk-set) is one module with one function ``(MatchingProblem) -> Assignment``
added to the registry in ``_api.py``; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._distance import Distance

__all__ = ["MatchingProblem", "Assignment"]


@dataclass(frozen=True)
class MatchingProblem:
    """Everything a matching method needs; row indices refer to rows of the matching frame.

    Attributes
    ----------
    treated : ndarray of int
        Row indices of the treated patients, in data order.
    controls : ndarray of int
        Row indices of the candidate controls, in data order.
    distance : Distance
        The distance over all rows.
    strata : ndarray of int or None
        Exact-stratum code per row; a control may only match a treated with the same code.
    caliper : float or None
        Maximum pair distance, in raw distance units (pairs with distance <= caliper are allowed).
    ratio : int
        Number of controls wanted per treated patient.
    order : ndarray of int
        Processing order of the treated: positions into ``treated``.
    replace : bool
        Whether a control may be used more than once.
    """

    treated: np.ndarray
    controls: np.ndarray
    distance: Distance
    strata: np.ndarray | None
    caliper: float | None
    ratio: int
    order: np.ndarray
    replace: bool = False

    @property
    def n_treated(self) -> int:
        return len(self.treated)

    @property
    def n_rows(self) -> int:
        """Number of rows of the matching frame (treated and candidate controls)."""
        return len(self.treated) + len(self.controls)


@dataclass(frozen=True)
class Assignment:
    """The answer of a matching method.

    Attributes
    ----------
    match_matrix : ndarray of int, shape (n_treated, ratio)
        Row index of the control in each slot (column r = match round r + 1), or -1 when the slot
        stayed empty. Rows follow ``MatchingProblem.treated``.
    pair_distance : ndarray of float, shape (n_treated, ratio)
        Distance of the control in each slot to its treated patient; NaN for empty slots.
    tie_rule : str
        How the method chose among equidistant controls (stated in the result's settings).
    """

    match_matrix: np.ndarray
    pair_distance: np.ndarray
    tie_rule: str
