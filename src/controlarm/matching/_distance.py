"""Distances for matching: the propensity score or its logit, Mahalanobis, rank-based robust
Mahalanobis, and a distance matrix the user supplies.

A distance is a small frozen object over all rows of the matching frame. A *score* distance
(``ps``, ``logit_ps``) is one number per patient and the distance of a pair is the absolute
difference of their scores. A *metric* distance (``mahalanobis``, ``robust_mahalanobis``) keeps
transformed covariates ``Z`` such that the Euclidean distance between rows of ``Z`` is the distance
between the patients. A *matrix* distance holds the user's treated x control matrix. Matching
methods only call :meth:`Distance.pairs` / :meth:`Distance.between`, so a new distance plugs in
without touching them.

References
----------
Rosenbaum, P. R., & Rubin, D. B. (1985). Constructing a control group using multivariate matched
sampling methods that incorporate the propensity score. *The American Statistician*, 39(1),
33-38. https://doi.org/10.1080/00031305.1985.10479383

Rubin, D. B. (1980). Bias reduction using Mahalanobis-metric matching. *Biometrics*, 36(2),
293-298. https://doi.org/10.2307/2529981

Rosenbaum, P. R. (2010). *Design of Observational Studies*, section 8.3 (a robust Mahalanobis
distance on ranks). Springer. https://doi.org/10.1007/978-1-4419-1213-8

Greifer, N. MatchIt reference, ``mahalanobis_dist()`` and ``robust_mahalanobis_dist()``
(MatchIt 4.7.1, ``R/dist_functions.R``: ``transform_covariates()`` and ``pooled_cov()``).
https://kosukeimai.github.io/MatchIt/reference/mahalanobis_dist.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.stats import rankdata

from ..errors import InputError
from ._validate import ids_preview

__all__ = [
    "Distance",
    "DISTANCES",
    "SCORE_DISTANCES",
    "METRIC_DISTANCES",
    "pooled_within_cov",
    "mahalanobis_distance",
    "robust_mahalanobis_distance",
    "matrix_distance",
]

SCORE_DISTANCES = ("ps", "logit_ps")
METRIC_DISTANCES = ("mahalanobis", "robust_mahalanobis")
DISTANCES = (*METRIC_DISTANCES, *SCORE_DISTANCES, "matrix")


@dataclass(frozen=True)
class Distance:
    """A distance over the rows of the matching frame.

    Attributes
    ----------
    name : str
        ``"ps"``, ``"logit_ps"``, ``"mahalanobis"``, ``"robust_mahalanobis"`` or ``"matrix"``.
    kind : str
        ``"score"`` (pair distance = |score_i - score_j|), ``"metric"`` (Euclidean distance between
        rows of ``Z``) or ``"matrix"`` (looked up in ``D``).
    score : ndarray or None
        One score per row for a score distance.
    Z : ndarray or None
        Transformed covariates for a metric distance.
    D : ndarray or None
        Treated x control matrix for a matrix distance; ``row_pos`` maps a frame row to its row or
        column of ``D`` (treated rows to rows, control rows to columns). ``inf`` forbids a pair.
    """

    name: str
    kind: str
    score: np.ndarray | None = None
    Z: np.ndarray | None = None
    D: np.ndarray | None = None
    row_pos: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def pairs(self, ti: np.ndarray, cj: np.ndarray) -> np.ndarray:
        """Distances of the pairs (ti[m], cj[m]) (frame rows), elementwise."""
        ti = np.asarray(ti, dtype=np.int64)
        cj = np.asarray(cj, dtype=np.int64)
        if self.kind == "score":
            return np.abs(self.score[cj] - self.score[ti])  # type: ignore[index]
        if self.kind == "matrix":
            return self.D[self.row_pos[ti], self.row_pos[cj]]  # type: ignore[index]
        acc = np.zeros(len(ti))
        for k in range(self.Z.shape[1]):  # type: ignore[union-attr]
            diff = self.Z[cj, k] - self.Z[ti, k]  # type: ignore[index]
            acc += diff * diff  # column by column: equal rows give equal distances
        return np.sqrt(acc)

    def between(self, i: int, js: np.ndarray) -> np.ndarray:
        """Distances from row ``i`` to each row in ``js``."""
        js = np.asarray(js, dtype=np.int64)
        return self.pairs(np.full(len(js), i, dtype=np.int64), js)

    def prepare(self, cj: np.ndarray) -> dict[str, Any]:
        """Control-side data reused by every :meth:`block` over the same controls (metric distances)."""
        if self.kind != "metric":
            return {}
        B = np.ascontiguousarray(self.Z[cj])  # type: ignore[index]
        b2 = (B * B).sum(1)
        return {"B": B, "b2": b2, "b2max": float(b2.max()) if len(b2) else 0.0}

    def block(self, ti: np.ndarray, cj: np.ndarray, prep: dict[str, Any] | None = None) -> np.ndarray:
        """Distances of every treated row in ``ti`` to every control row in ``cj`` (len(ti) x len(cj)).

        Metric distances use |a|^2 + |b|^2 - 2 a.b (fast, BLAS); its rounding error is bounded by
        :meth:`block_error`. Use :meth:`pairs` for the exact distance of chosen pairs.
        """
        if self.kind == "score":
            return np.abs(self.score[cj][None, :] - self.score[ti][:, None])  # type: ignore[index]
        if self.kind == "matrix":
            return self.D[np.ix_(self.row_pos[ti], self.row_pos[cj])]  # type: ignore[index]
        prep = prep or self.prepare(cj)
        A = self.Z[ti]  # type: ignore[index]
        d2 = A @ prep["B"].T
        d2 *= -2.0
        d2 += (A * A).sum(1)[:, None]
        d2 += prep["b2"][None, :]
        np.maximum(d2, 0.0, out=d2)
        return np.sqrt(d2, out=d2)

    def block_error(self, ti: np.ndarray, cj: np.ndarray, prep: dict[str, Any] | None = None) -> np.ndarray:
        """Per treated row: a bound on |block() - exact distance| (0 for exact kinds)."""
        if self.kind != "metric":
            return np.zeros(len(ti))
        a2 = (self.Z[ti] ** 2).sum(1)  # type: ignore[index]
        b2 = (prep or self.prepare(cj))["b2max"]
        p = self.Z.shape[1]  # type: ignore[union-attr]
        # error of d^2 <= c * p * eps * (|a|^2 + |b|^2); error of d <= sqrt(error of d^2)
        return np.sqrt(8.0 * (p + 2) * np.finfo(float).eps * (a2 + b2))

    def upper_bound(self, rows: np.ndarray) -> float:
        """An upper bound on the distance of any pair among ``rows`` (for penalty sizes)."""
        if self.kind == "score":
            s = self.score[rows]  # type: ignore[index]
            return float(s.max() - s.min()) if len(s) else 0.0
        if self.kind == "matrix":
            D = self.D[np.isfinite(self.D)]  # type: ignore[index]
            return float(D.max()) if D.size else 0.0
        Z = self.Z[rows]  # type: ignore[index]
        centre = Z.mean(axis=0)
        return float(2.0 * np.sqrt(((Z - centre) ** 2).sum(1).max())) if len(Z) else 0.0

    def sd(self, rows: np.ndarray | None = None) -> float:
        """SD (n-1) of the score over ``rows`` (default all): the unit of a caliper given in SDs."""
        if self.kind != "score":
            raise InputError("a caliper in SD units needs a score distance ('ps' or 'logit_ps')")
        s = self.score if rows is None else self.score[rows]  # type: ignore[index]
        return float(np.std(s, ddof=1))


# --------------------------------------------------------------------------- Mahalanobis
def pooled_within_cov(X: np.ndarray, treat: np.ndarray) -> np.ndarray:
    """Pooled within-group covariance: centre each group on its mean, then divide the SSCP by n - 2.

    This is MatchIt's ``pooled_cov()`` (``cov(X_centred) * (n - 1) / (n - G)``), used by
    ``mahalanobis_dist()`` and ``distance = "mahalanobis"`` when a treatment splits the sample.
    """
    Xc = np.array(X, dtype=float, copy=True)
    groups = np.unique(treat)
    for g in groups:
        m = treat == g
        Xc[m] -= Xc[m].mean(axis=0)
    n = len(Xc)
    return (Xc.T @ Xc) / (n - len(groups))


def _whiten(X: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Z = X L^-T with S = L L' (Cholesky), so that |z_i - z_j| = sqrt((x_i-x_j)' S^-1 (x_i-x_j))."""
    p = S.shape[0]
    L = linalg.cholesky(S, lower=True)
    M = linalg.solve_triangular(L, np.eye(p), lower=True)  # L^-1
    Z = np.zeros_like(X, dtype=float)
    for k in range(p):  # elementwise accumulation: identical rows get identical Z
        for j in range(k + 1):
            Z[:, k] += X[:, j] * M[k, j]
    return Z


def _check_cov(S: np.ndarray, X: np.ndarray, names: Sequence[str], what: str) -> None:
    p = S.shape[0]
    diag = np.diag(S)
    scale = np.maximum(np.abs(X).max(axis=0), 1.0)
    for j in range(p):
        if diag[j] <= (np.sqrt(np.finfo(float).eps) * scale[j]) ** 2:
            raise InputError(
                f"covariate {names[j]!r} has no variation within the treated and control groups (constant, or "
                f"fully determined by treatment), so the covariance matrix of the {what} is singular; drop it "
                "from matching.covariates or use it as an exact stratum"
            )
    sd = np.sqrt(diag)
    R = S / np.outer(sd, sd)
    for j in range(1, p):
        eig = np.linalg.eigvalsh(R[: j + 1, : j + 1])
        if eig.min() < 1e-10 * eig.max():
            raise InputError(
                f"covariate {names[j]!r} is (nearly) a linear combination of "
                f"{', '.join(map(repr, names[:j]))} within groups, so the covariance matrix of the {what} is "
                "singular; drop it (or one dummy per categorical variable)"
            )


def mahalanobis_distance(X: np.ndarray, treat: np.ndarray, names: Sequence[str]) -> Distance:
    """Mahalanobis distance with MatchIt's pooled within-group covariance over the full sample.

    d(i, j) = sqrt((x_i - x_j)' S^-1 (x_i - x_j)), S = :func:`pooled_within_cov` (all treated and
    all candidate controls).

    Raises
    ------
    InputError
        When S is singular: a covariate with no variation within the groups, or one that is a linear
        combination of others. The message names the covariate. (MatchIt silently drops constant
        columns and uses a generalised inverse.)
    """
    n = X.shape[0]
    if n - 2 < 1:
        raise InputError(f"the Mahalanobis distance needs at least 3 patients; got {n}")
    S = pooled_within_cov(X, treat)
    _check_cov(S, X, names, "Mahalanobis distance")
    return Distance(
        name="mahalanobis",
        kind="metric",
        Z=_whiten(X, S),
        info={
            "covariance": "pooled within-group covariance of the covariates over the full sample "
            "(treated and all candidate controls; group-mean centred SSCP / (n - 2)), as MatchIt "
            "mahalanobis_dist()",
            "covariance_matrix": pd.DataFrame(S, index=list(names), columns=list(names)),
        },
    )


def robust_mahalanobis_distance(X: np.ndarray, treat: np.ndarray, names: Sequence[str]) -> Distance:
    """Rank-based robust Mahalanobis distance (Rosenbaum 2010, section 8.3; MatchIt's ``robust_mahalanobis``).

    Each covariate is replaced by its ranks over all patients (ties get the average rank); S is the
    covariance (n - 1) of the ranks, rescaled so every diagonal entry equals the variance of the
    untied ranks 1..n: S* = diag(r) S diag(r), r_j = sd(1..n) / sd(ranks_j). So outliers cannot
    dominate, and a heavily tied covariate (a rare binary) does not get extra weight.
    d(i, j) = sqrt((q_i - q_j)' S*^-1 (q_i - q_j)) on the rank vectors q.

    Raises
    ------
    InputError
        When a covariate is constant, or the ranks are collinear (naming the covariate).
    """
    n, p = X.shape
    if n < 3:
        raise InputError(f"the robust Mahalanobis distance needs at least 3 patients; got {n}")
    for j in range(p):
        if np.ptp(X[:, j]) == 0:
            raise InputError(
                f"covariate {names[j]!r} is constant, so it has no ranks to compare; drop it from matching.covariates"
            )
    Q = np.column_stack([rankdata(X[:, j], method="average") for j in range(p)])
    S = np.cov(Q, rowvar=False, ddof=1).reshape(p, p)
    v_untied = float(np.var(np.arange(1, n + 1), ddof=1))
    r = np.sqrt(v_untied / np.diag(S))
    S = S * np.outer(r, r)
    _check_cov(S, Q, names, "robust Mahalanobis distance")
    return Distance(
        name="robust_mahalanobis",
        kind="metric",
        Z=_whiten(Q, S),
        info={
            "covariance": "covariance (n - 1) of the covariate ranks over all patients (average ranks for ties), "
            "rescaled so each rank variance equals that of untied ranks 1..n (Rosenbaum 2010, section 8.3; "
            "MatchIt robust_mahalanobis_dist())",
            "covariance_matrix": pd.DataFrame(S, index=list(names), columns=list(names)),
        },
    )


# --------------------------------------------------------------------------- user matrix
def matrix_distance(matrix: object, ids: np.ndarray, treat: np.ndarray) -> Distance:
    """A treated x control distance matrix supplied by the user.

    Parameters
    ----------
    matrix : DataFrame
        Index = treated ids, columns = candidate-control ids (every treated and every candidate of
        the matching frame must appear; order does not matter). Entries are non-negative numbers;
        ``inf`` forbids a pair. NaN is an error.
    ids, treat : ndarray
        Patient ids and the 0/1 treatment of the matching frame.

    Raises
    ------
    InputError
        When the matrix is not a DataFrame, ids are missing or unknown, or entries are NaN, negative
        or not numeric.
    """
    if not isinstance(matrix, pd.DataFrame):
        raise InputError(
            "distance_matrix must be a pandas DataFrame with treated ids as the index and candidate-control ids "
            f"as the columns; got {type(matrix).__name__}"
        )
    t_ids, c_ids = ids[treat == 1], ids[treat == 0]
    for what, have, need in (("index (treated ids)", matrix.index, t_ids), ("columns (candidate ids)", matrix.columns, c_ids)):
        if have.has_duplicates:
            raise InputError(f"distance_matrix {what} must be unique; repeated: {ids_preview(have[have.duplicated()].unique())}")
        missing = pd.Index(need).difference(have)
        if len(missing):
            raise InputError(
                f"distance_matrix {what} lacks {len(missing)} id(s) of the matching frame: {ids_preview(missing)}"
            )
    try:
        D = matrix.loc[list(t_ids), list(c_ids)].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise InputError("distance_matrix must hold numbers") from None
    if np.isnan(D).any():
        raise InputError("distance_matrix has missing (NaN) entries; use inf to forbid a pair")
    if (D < 0).any():
        raise InputError("distance_matrix entries must be >= 0 (inf forbids a pair)")
    pos = np.full(len(ids), -1, dtype=np.int64)
    pos[treat == 1] = np.arange(len(t_ids))
    pos[treat == 0] = np.arange(len(c_ids))
    return Distance(name="matrix", kind="matrix", D=D, row_pos=pos,
                    info={"covariance": None, "matrix": "distance matrix supplied by the user (inf = forbidden pair)"})
