"""Distances for matching: logistic propensity score, its logit, and the Mahalanobis distance.

A distance is a small frozen object over all rows of the matching frame. A *score* distance
(``ps``, ``logit_ps``) is one number per patient and the distance of a pair is the absolute
difference of their scores. A *metric* distance (``mahalanobis``) keeps transformed covariates
``Z`` such that the Euclidean distance between rows of ``Z`` is the Mahalanobis distance between
the patients. Matching methods only call :meth:`Distance.between`, so a new distance plugs in
without touching them.

References
----------
Rosenbaum, P. R., & Rubin, D. B. (1983). The central role of the propensity score in
observational studies for causal effects. *Biometrika*, 70(1), 41-55.
https://doi.org/10.1093/biomet/70.1.41

Rubin, D. B. (1980). Bias reduction using Mahalanobis-metric matching. *Biometrics*, 36(2),
293-298. https://doi.org/10.2307/2529981

Greifer, N. MatchIt reference, ``mahalanobis_dist()``: "the covariance matrix used is the
'pooled' covariance matrix, which essentially is a weighted average of the covariance matrices
computed separately within each level of the splitting variable".
https://kosukeimai.github.io/MatchIt/reference/mahalanobis_dist.html (MatchIt 4.7.1,
``R/dist_functions.R``: ``transform_covariates()`` and ``pooled_cov()``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg

from ..errors import InputError, SmallSampleWarning

__all__ = [
    "Distance",
    "PropensityFit",
    "fit_propensity",
    "pooled_within_cov",
    "mahalanobis_distance",
    "DISTANCES",
]

DISTANCES = ("mahalanobis", "ps", "logit_ps")
RIDGE_C = 1.0  # inverse penalty of the fallback fit, on standardised covariates (scikit-learn's default)


@dataclass(frozen=True)
class Distance:
    """A distance over the rows of the matching frame.

    Attributes
    ----------
    name : str
        ``"ps"``, ``"logit_ps"`` or ``"mahalanobis"``.
    kind : str
        ``"score"`` (pair distance = |score_i - score_j|) or ``"metric"`` (pair distance =
        Euclidean distance between rows of ``Z``).
    score : ndarray or None
        One score per row for a score distance.
    Z : ndarray or None
        Transformed covariates for a metric distance.
    """

    name: str
    kind: str
    score: np.ndarray | None = None
    Z: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def between(self, i: int, js: np.ndarray) -> np.ndarray:
        """Distances from row ``i`` to each row in ``js``."""
        if self.kind == "score":
            assert self.score is not None
            return np.abs(self.score[js] - self.score[i])
        assert self.Z is not None
        diff = self.Z[js] - self.Z[i]
        acc = np.zeros(len(diff))
        for k in range(diff.shape[1]):  # elementwise, column by column: equal rows give equal distances
            acc += diff[:, k] * diff[:, k]
        return np.sqrt(acc)

    def sd(self) -> float:
        """SD (n-1) of the score over all rows: the unit of a caliper given in SDs."""
        if self.kind != "score":
            raise InputError("a caliper in SD units needs a score distance ('ps' or 'logit_ps')")
        assert self.score is not None
        return float(np.std(self.score, ddof=1))


# --------------------------------------------------------------------------- propensity score
@dataclass(frozen=True)
class PropensityFit:
    """A fitted logistic propensity model: coefficients, PS and linear predictor per row."""

    coef: pd.Series
    ps: np.ndarray
    linear: np.ndarray
    model: str
    converged: bool
    note: str | None = None


def _check_rank(X: np.ndarray, names: Sequence[str], what: str) -> None:
    """Raise InputError naming the first covariate that is constant or collinear with earlier ones."""
    n, p = X.shape
    for j in range(p):
        col = X[:, j]
        if np.ptp(col) < np.sqrt(np.finfo(float).eps) * max(1.0, np.abs(col).max()):
            raise InputError(
                f"covariate {names[j]!r} is constant (value {col[0]!r} in every row); it cannot enter the "
                f"{what}; drop it from matching.covariates"
            )
    Xc = (X - X.mean(axis=0)) / X.std(axis=0)
    A = np.column_stack([np.ones(n), Xc])
    for j in range(1, p + 1):
        if np.linalg.matrix_rank(A[:, : j + 1]) < j + 1:
            raise InputError(
                f"covariate {names[j - 1]!r} is a linear combination of the covariates before it "
                f"({', '.join(map(repr, names[: j - 1])) or 'the intercept'}); the {what} is not identified. "
                "Drop it, or drop one dummy of each categorical variable (keep a reference level)"
            )


def fit_propensity(X: np.ndarray, treat: np.ndarray, names: Sequence[str]) -> PropensityFit:
    """Fit P(treated | X) by unpenalised logistic regression, as R's ``glm(binomial)`` does.

    Uses ``statsmodels.api.Logit`` (Newton-Raphson, tolerance 1e-10). When the data are
    (quasi-)separated, so the maximum-likelihood estimate does not exist, falls back to an
    L2-penalised fit (scikit-learn ``LogisticRegression``, ``C=1.0``, on standardised covariates,
    intercept not penalised) with a ``SmallSampleWarning``; ``model`` says which fit was used.

    Raises
    ------
    InputError
        When a covariate is constant or collinear with others (the message names it).
    """
    import statsmodels.api as sm  # lazy: heavy import
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    _check_rank(X, names, "propensity model")
    exog = np.column_stack([np.ones(len(X)), X])
    reason = None
    res = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = sm.Logit(treat.astype(float), exog).fit(method="newton", maxiter=100, tol=1e-10, disp=0)
        except Exception as exc:  # PerfectSeparationError in older statsmodels, LinAlgError
            reason = f"{type(exc).__name__}: {exc}"
    if res is not None:
        sep = [w for w in caught if issubclass(w.category, (PerfectSeparationWarning, ConvergenceWarning))]
        converged = bool(res.mle_retvals.get("converged", False))
        lin = _linear(X, res.params)
        if sep:
            reason = str(sep[0].message)
        elif not converged:
            reason = "Newton-Raphson did not converge in 100 iterations"
        elif not np.all(np.isfinite(res.params)):
            reason = "non-finite coefficients"
        if reason is None:
            coef = pd.Series(res.params, index=["(Intercept)", *names], name="coef")
            return PropensityFit(coef=coef, ps=_expit(lin), linear=lin,
                                 model="logistic regression, maximum likelihood (statsmodels Logit, Newton)",
                                 converged=True)
    return _ridge_fit(X, treat, names, reason or "unknown")


def _ridge_fit(X: np.ndarray, treat: np.ndarray, names: Sequence[str], reason: str) -> PropensityFit:
    from sklearn.linear_model import LogisticRegression  # lazy

    mean, sd = X.mean(axis=0), X.std(axis=0)
    Xs = (X - mean) / sd
    clf = LogisticRegression(C=RIDGE_C, solver="lbfgs", max_iter=10_000, tol=1e-10)
    clf.fit(Xs, treat)
    beta = clf.coef_[0] / sd
    b0 = float(clf.intercept_[0] - np.sum(clf.coef_[0] * mean / sd))
    lin = _linear(X, np.concatenate([[b0], beta]))
    model = (
        f"ridge logistic regression (scikit-learn LogisticRegression, L2, C={RIDGE_C} on standardised "
        "covariates, intercept unpenalised)"
    )
    warnings.warn(
        f"the maximum-likelihood propensity model failed ({reason}): the treated and control groups are "
        f"(nearly) separated by the covariates. Fell back to {model}; propensity scores are shrunk. "
        "Check overlap and consider fewer covariates.",
        SmallSampleWarning,
        stacklevel=3,
    )
    coef = pd.Series([b0, *beta], index=["(Intercept)", *names], name="coef")
    return PropensityFit(coef=coef, ps=_expit(lin), linear=lin, model=model, converged=True, note=reason)


def _linear(X: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Intercept + X @ beta, accumulated column by column (as reference BLAS dgemv does in R).

    A matrix-vector product through an optimised BLAS may round the same covariate row
    differently depending on where it sits in the matrix; then patients with identical covariates
    get scores that differ in the last bit and ties among them are broken by that noise instead of
    by the documented rule. Elementwise accumulation rounds identical rows identically.
    """
    lin = np.full(X.shape[0], float(params[0]))
    for j in range(X.shape[1]):
        lin += X[:, j] * params[j + 1]
    return lin


def _expit(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


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


def mahalanobis_distance(X: np.ndarray, treat: np.ndarray, names: Sequence[str]) -> Distance:
    """Mahalanobis distance with MatchIt's pooled within-group covariance over the full sample.

    d(i, j) = sqrt((x_i - x_j)' S^-1 (x_i - x_j)), S = :func:`pooled_within_cov` (all treated and
    all candidate controls). Stored as ``Z = X L^-T`` with S = L L' (Cholesky), so that Euclidean
    distance on ``Z`` equals d.

    Raises
    ------
    InputError
        When S is singular: a covariate with no variation within the groups (constant, or fully
        determined by treatment), or one that is a linear combination of others. The message names
        the covariate. (MatchIt silently drops constant columns and uses a generalised inverse.)
    """
    n, p = X.shape
    if n - 2 < 1:
        raise InputError(f"the Mahalanobis distance needs at least 3 patients; got {n}")
    S = pooled_within_cov(X, treat)
    diag = np.diag(S)
    scale = np.maximum(np.abs(X).max(axis=0), 1.0)
    for j in range(p):
        if diag[j] <= (np.sqrt(np.finfo(float).eps) * scale[j]) ** 2:
            raise InputError(
                f"covariate {names[j]!r} has no variation within the treated and control groups (constant, or "
                "fully determined by treatment), so the pooled covariance matrix of the Mahalanobis distance is "
                "singular; drop it from matching.covariates or use it as an exact stratum"
            )
    sd = np.sqrt(diag)
    R = S / np.outer(sd, sd)
    for j in range(1, p):
        eig = np.linalg.eigvalsh(R[: j + 1, : j + 1])
        if eig.min() < 1e-10 * eig.max():
            raise InputError(
                f"covariate {names[j]!r} is (nearly) a linear combination of "
                f"{', '.join(map(repr, names[:j]))} within groups, so the pooled covariance matrix of the "
                "Mahalanobis distance is singular; drop it (or one dummy per categorical variable)"
            )
    L = linalg.cholesky(S, lower=True)
    M = linalg.solve_triangular(L, np.eye(p), lower=True)  # L^-1, so Z = X L^-T
    Z = np.zeros_like(X)
    for k in range(p):  # elementwise accumulation: identical rows get identical Z (see _linear)
        for j in range(k + 1):
            Z[:, k] += X[:, j] * M[k, j]
    cov = pd.DataFrame(S, index=list(names), columns=list(names))
    return Distance(
        name="mahalanobis",
        kind="metric",
        Z=Z,
        info={
            "covariance": "pooled within-group covariance of the covariates over the full sample "
            "(treated and all candidate controls; group-mean centred SSCP / (n - 2)), as MatchIt "
            "mahalanobis_dist()",
            "covariance_matrix": cov,
        },
    )
