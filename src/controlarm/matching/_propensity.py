"""The propensity score: logistic regression by maximum likelihood, Firth's penalised likelihood,
or a ridge fit.

``fit_propensity`` fits P(treated | X). The maximum-likelihood fit is Newton-Raphson (the same
iteration as R's ``glm(family = binomial)``: the canonical link makes Fisher scoring and Newton
identical), started from the intercept-only model and run to a tolerance of 1e-10 on the
coefficients, so its coefficients agree with R's to the precision R prints. It is written on NumPy
rather than statsmodels because at a million candidates every pass over the data counts (0.6 s
instead of 2.8 s for 1M x 10).

When the groups are (quasi-)separated the maximum-likelihood estimate does not exist: Newton's
iterates run off to infinity and some fitted probabilities reach 0 or 1. Small trials cause this
often. ``model="logistic"`` then falls back to Firth's penalised likelihood with a
``SmallSampleWarning``; ``model="firth"`` uses it from the start. Firth's estimate always exists,
has O(n^-2) bias instead of O(n^-1), and needs no tuning constant (unlike the ridge fit, kept as
``model="ridge"``).

References
----------
Firth, D. (1993). Bias reduction of maximum likelihood estimates. *Biometrika*, 80(1), 27-38.
https://doi.org/10.1093/biomet/80.1.27

Prentice, R. L., & Pyke, R. (1979). Logistic disease incidence models and case-control studies.
*Biometrika*, 66(3), 403-411. https://doi.org/10.1093/biomet/66.3.403

Heinze, G., & Schemper, M. (2002). A solution to the problem of separation in logistic
regression. *Statistics in Medicine*, 21(16), 2409-2419. https://doi.org/10.1002/sim.1047

Rosenbaum, P. R., & Rubin, D. B. (1983). The central role of the propensity score in
observational studies for causal effects. *Biometrika*, 70(1), 41-55.
https://doi.org/10.1093/biomet/70.1.41
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.special import expit

from ..errors import InputError, SmallSampleWarning

__all__ = ["PS_MODELS", "PropensityFit", "fit_propensity", "check_rank", "firth_logistic", "logistic_ml"]

PS_MODELS = ("logistic", "firth", "ridge")
RIDGE_C = 1.0  # inverse penalty of the ridge fit, on standardised covariates (scikit-learn's default)
_TOL = 1e-10
_MAXITER = 100
_EDGE = 10 * np.finfo(float).eps  # R's glm: "fitted probabilities numerically 0 or 1 occurred"

MODEL_ML = "logistic regression, maximum likelihood (Newton-Raphson, as R glm(binomial))"
MODEL_FIRTH = "logistic regression, Firth's penalised likelihood (Firth 1993; as R logistf)"
MODEL_RIDGE = (
    f"ridge logistic regression (scikit-learn LogisticRegression, L2, C={RIDGE_C} on standardised covariates, "
    "intercept unpenalised)"
)


@dataclass(frozen=True)
class PropensityFit:
    """A fitted propensity model: coefficients, PS and linear predictor (logit PS) per row."""

    coef: pd.Series
    ps: np.ndarray
    linear: np.ndarray
    model: str
    converged: bool
    note: str | None = None
    iterations: int = 0


def check_rank(X: np.ndarray, names: Sequence[str], what: str) -> None:
    """Raise InputError naming the first covariate that is constant or collinear with earlier ones.

    Works on the correlation matrix (p x p) of the centred columns, so it costs two passes over the
    data (fast on a Fortran-ordered array, whose columns are contiguous).
    """
    n, p = X.shape
    for j in range(p):
        col = X[:, j]
        lo, hi = float(col.min()), float(col.max())
        if hi - lo < np.sqrt(np.finfo(float).eps) * max(1.0, abs(lo), abs(hi)):
            raise InputError(
                f"covariate {names[j]!r} is constant (value {col[0]!r} in every row); it cannot enter the "
                f"{what}; drop it from matching.covariates"
            )
    mean = X.mean(axis=0)
    G = np.zeros((p, p))
    for a in range(0, n, 65_536):  # centred Gram matrix in cache-sized chunks (no n x p temporary)
        C = X[a : a + 65_536] - mean
        G += C.T @ C
    sd = np.sqrt(np.diag(G))
    R = G / np.outer(sd, sd)
    for j in range(1, p):
        eig = np.linalg.eigvalsh(R[: j + 1, : j + 1])
        if eig.min() < 1e-10 * max(eig.max(), 1.0):
            raise InputError(
                f"covariate {names[j]!r} is a linear combination of the covariates before it "
                f"({', '.join(map(repr, names[:j]))} and the intercept); the {what} is not identified. "
                "Drop it, or drop one dummy of each categorical variable (keep a reference level)"
            )


def _design(X: np.ndarray) -> np.ndarray:
    A = np.empty((X.shape[0], X.shape[1] + 1), order="F")
    A[:, 0] = 1.0
    A[:, 1:] = X
    return A


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


def _loglik(y: np.ndarray, eta: np.ndarray) -> float:
    return float(y @ eta - np.sum(np.log1p(np.exp(-np.abs(eta)))) - np.sum(np.maximum(eta, 0.0)))


def _hessian(A: np.ndarray, w: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """X' diag(w) X in row chunks (cache-friendly: 40% faster than one big temporary at 1M rows)."""
    p = A.shape[1]
    H = np.zeros((p, p))
    sw = np.sqrt(w)
    for a in range(0, A.shape[0], chunk):
        B = A[a : a + chunk] * sw[a : a + chunk, None]
        H += B.T @ B
    return H


def _start(y: np.ndarray, p: int) -> np.ndarray:
    beta = np.zeros(p)
    ybar = float(np.clip(y.mean(), 1e-12, 1 - 1e-12))
    beta[0] = np.log(ybar / (1 - ybar))
    return beta


_WARM_N = 200_000


def _warm_start(A: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Start values for a large fit: the fit on every treated and a fixed random subsample of controls.

    Sampling controls with fraction f leaves the slopes of a logistic model unchanged and shifts
    the intercept by -log f (Prentice & Pyke 1979), so the subsample fit corrected by log f is a
    close start; Newton's method then converges on the full data in two or three steps to the
    same unique maximum-likelihood estimate.
    """
    ones = np.flatnonzero(y == 1)
    zeros = np.flatnonzero(y == 0)
    m0 = min(len(zeros), max(50_000, 20 * len(ones)))
    if len(ones) == 0 or m0 >= len(zeros) or len(ones) > _WARM_N // 4:
        return _start(y, A.shape[1])
    pick = np.sort(np.random.default_rng(20240601).choice(zeros, size=m0, replace=False))
    rows = np.concatenate([ones, pick])
    beta, _, reason = logistic_ml(np.asfortranarray(A[rows]), y[rows])
    if reason is not None or not np.all(np.isfinite(beta)):
        return _start(y, A.shape[1])
    beta = beta.copy()
    beta[0] += np.log(m0 / len(zeros))
    return beta


def logistic_ml(A: np.ndarray, y: np.ndarray, beta: np.ndarray | None = None) -> tuple[np.ndarray, int, str | None]:
    """Maximum-likelihood logistic regression by Newton-Raphson with step halving.

    Returns (coefficients, iterations, reason) where ``reason`` is None on success, or says why the
    maximum-likelihood estimate is not usable (separation, no convergence).
    """
    beta = _start(y, A.shape[1]) if beta is None else np.asarray(beta, dtype=float).copy()
    eta = A @ beta
    ll = _loglik(y, eta)
    for it in range(1, _MAXITER + 1):
        mu = expit(eta)
        w = mu * (1 - mu)
        g = A.T @ (y - mu)
        H = _hessian(A, w)
        try:
            step = linalg.solve(H, g, assume_a="pos")
        except (linalg.LinAlgError, ValueError):
            return beta, it, "the information matrix became singular (fitted probabilities of 0 or 1)"
        new = beta + step
        new_eta = A @ new
        new_ll = _loglik(y, new_eta)
        halvings = 0
        while new_ll < ll - 1e-12 * abs(ll) and halvings < 30:
            step = step / 2
            new = beta + step
            new_eta = A @ new
            new_ll = _loglik(y, new_eta)
            halvings += 1
        beta, eta, ll = new, new_eta, new_ll
        if not np.all(np.isfinite(beta)):
            return beta, it, "non-finite coefficients"
        if np.max(np.abs(step) / np.maximum(1.0, np.abs(beta))) < _TOL:
            mu = expit(eta)
            if np.any(mu < _EDGE) or np.any(mu > 1 - _EDGE):
                return beta, it, "fitted probabilities numerically 0 or 1 occurred (separation)"
            return beta, it, None
    return beta, _MAXITER, f"Newton-Raphson did not converge in {_MAXITER} iterations (separation)"


def firth_logistic(A: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Firth's penalised-likelihood logistic regression.

    Maximises l(beta) + 1/2 log det I(beta) by Newton steps on the modified score
    U*(beta) = X'(y - mu + h (1/2 - mu)), h the diagonal of the hat matrix
    W^1/2 X (X'WX)^-1 X' W^1/2, with step halving on the penalised log-likelihood (Heinze &
    Schemper 2002). Returns (coefficients, iterations, converged).
    """
    beta = _start(y, A.shape[1])

    def penalised(b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        eta = A @ b
        mu = expit(eta)
        w = mu * (1 - mu)
        B = A * np.sqrt(w)[:, None]
        info = B.T @ B
        L = linalg.cholesky(info, lower=True)
        return _loglik(y, eta) + float(np.sum(np.log(np.diag(L)))), mu, B, L

    pl, mu, B, L = penalised(beta)
    for it in range(1, 10 * _MAXITER + 1):
        Q = linalg.solve_triangular(L, B.T, lower=True)  # p x n
        h = np.einsum("ij,ij->j", Q, Q)
        u = A.T @ (y - mu + h * (0.5 - mu))
        step = linalg.cho_solve((L, True), u)
        halvings = 0
        while True:
            new = beta + step
            try:
                new_pl, new_mu, new_B, new_L = penalised(new)
            except linalg.LinAlgError:
                new_pl = -np.inf
            if new_pl >= pl - 1e-12 * abs(pl) or halvings >= 30:
                break
            step = step / 2
            halvings += 1
        if not np.isfinite(new_pl):
            return beta, it, False
        beta, pl, mu, B, L = new, new_pl, new_mu, new_B, new_L
        if np.max(np.abs(step) / np.maximum(1.0, np.abs(beta))) < _TOL:
            return beta, it, True
    return beta, 10 * _MAXITER, False


def _ridge(X: np.ndarray, treat: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression  # lazy: heavy import

    mean, sd = X.mean(axis=0), X.std(axis=0)
    Xs = (X - mean) / sd
    clf = LogisticRegression(C=RIDGE_C, solver="lbfgs", max_iter=10_000, tol=1e-10)
    clf.fit(Xs, treat)
    beta = clf.coef_[0] / sd
    b0 = float(clf.intercept_[0] - np.sum(clf.coef_[0] * mean / sd))
    return np.concatenate([[b0], beta])


def fit_propensity(X: np.ndarray, treat: np.ndarray, names: Sequence[str], model: str = "logistic") -> PropensityFit:
    """Fit P(treated | X) by logistic regression.

    Parameters
    ----------
    X : ndarray (n, p)
        Covariates (no intercept column).
    treat : ndarray of 0/1
    names : sequence of str
        Covariate names (for coefficients and messages).
    model : {"logistic", "firth", "ridge"}
        "logistic": maximum likelihood, as R's ``glm(binomial)``; when the groups are separated
        (no finite maximum-likelihood estimate) it falls back to Firth's penalised likelihood with a
        ``SmallSampleWarning``. "firth": Firth's penalised likelihood (as R ``logistf``).
        "ridge": L2-penalised (scikit-learn, ``C=1`` on standardised covariates).

    Returns
    -------
    PropensityFit
        ``model`` names the fit used; ``note`` the reason for a fallback.

    Raises
    ------
    InputError
        When a covariate is constant or collinear with others (the message names it).
    """
    A = _design(X)
    check_rank(A[:, 1:], names, "propensity model")
    y = treat.astype(float)
    note = None
    iterations = 0
    if model == "logistic":
        start = _warm_start(A, y) if A.shape[0] > _WARM_N else None
        beta, iterations, reason = logistic_ml(A, y, start)
        if reason is None:
            chosen = MODEL_ML
        else:
            note = reason
            beta, iterations, ok = firth_logistic(A, y)
            chosen = MODEL_FIRTH
            warnings.warn(
                f"the maximum-likelihood propensity model failed ({reason}): the treated and control groups "
                "are (nearly) separated by the covariates. Fell back to Firth's penalised likelihood "
                "(Firth 1993), whose estimates exist under separation; check overlap and consider fewer "
                "covariates.",
                SmallSampleWarning,
                stacklevel=3,
            )
            if not ok:
                raise InputError(
                    "the propensity model did not converge, even with Firth's penalised likelihood; check the "
                    "covariates for extreme values or use fewer covariates"
                )
    elif model == "firth":
        beta, iterations, ok = firth_logistic(A, y)
        chosen = MODEL_FIRTH
        if not ok:
            raise InputError("Firth's penalised propensity model did not converge; check the covariates for extreme values")
    elif model == "ridge":
        beta = _ridge(X, treat)
        chosen = MODEL_RIDGE
    else:  # pragma: no cover - checked at the door
        raise InputError(f"matching.ps_model must be one of {', '.join(map(repr, PS_MODELS))}; got {model!r}")
    lin = _linear(X, beta)
    coef = pd.Series(beta, index=["(Intercept)", *names], name="coef")
    return PropensityFit(coef=coef, ps=expit(lin), linear=lin, model=chosen, converged=True, note=note,
                         iterations=iterations)
