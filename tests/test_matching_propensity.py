"""The propensity model: maximum likelihood as R's glm, Firth's penalised likelihood, separation.

Firth's estimate for a logistic model with one binary covariate is known in closed form: it is the
maximum-likelihood estimate after adding 1/2 to every cell of the 2x2 table (Firth 1993, section 3;
Heinze & Schemper 2002), so the slope is log((a+.5)(d+.5) / ((b+.5)(c+.5))). That holds even
when a cell is empty and the maximum-likelihood estimate does not exist.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from controlarm.errors import SmallSampleWarning
from controlarm.matching import match
from controlarm.matching._propensity import _design, _warm_start, firth_logistic, fit_propensity, logistic_ml


def _table(a: int, b: int, c: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """x = 1 row: a treated, b control; x = 0 row: c treated, d control."""
    x = np.r_[np.ones(a + b), np.zeros(c + d)]
    y = np.r_[np.ones(a), np.zeros(b), np.ones(c), np.zeros(d)]
    return x[:, None], y


@pytest.mark.parametrize("cells", [(5, 0, 2, 8), (7, 3, 2, 9), (1, 4, 0, 6)])
def test_firth_equals_half_added_to_each_cell(cells):
    a, b, c, d = cells
    X, y = _table(a, b, c, d)
    beta, _, ok = firth_logistic(_design(X), y)
    assert ok
    assert beta[1] == pytest.approx(np.log((a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5))), abs=1e-9)
    assert beta[0] == pytest.approx(np.log((c + 0.5) / (d + 0.5)), abs=1e-9)


def test_firth_solves_the_penalised_score_equations():
    """Gradient of l(beta) + 1/2 log det I(beta) is zero at the estimate (finite differences)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 2))
    y = (X[:, 0] + rng.normal(scale=0.3, size=30) > 0.8).astype(float)
    A = _design(X)
    beta, _, ok = firth_logistic(A, y)
    assert ok

    def pen(b):
        eta = A @ b
        mu = expit(eta)
        info = (A * (mu * (1 - mu))[:, None]).T @ A
        return float(y @ eta - np.sum(np.logaddexp(0, eta)) + 0.5 * np.linalg.slogdet(info)[1])

    h = 1e-6
    grad = [(pen(beta + h * e) - pen(beta - h * e)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)


def test_maximum_likelihood_detects_separation():
    X, y = _table(5, 0, 2, 8)
    _, _, reason = logistic_ml(_design(X), y)
    assert reason is not None


def test_separation_falls_back_to_firth_with_warning():
    d = pd.DataFrame({"patient_id": [f"P{i}" for i in range(8)], "t": [1, 1, 0, 0, 0, 0, 0, 0],
                      "age": [50.0, 60, 52, 58, 70, 45, 61, 49], "sofa": [9.0, 10.0, 1, 2, 3, 4, 5, 6]})
    with pytest.warns(SmallSampleWarning, match="separated.*Firth"):
        res = match(d, treatment="t", covariates=["age", "sofa"], distance="ps")
    assert "Firth" in res.settings["ps_model"] and res.settings["ps_fallback_reason"]
    assert res.ps_.between(0, 1, inclusive="neither").all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        firth = match(d, treatment="t", covariates=["age", "sofa"], distance="ps", ps_model="firth")
    pd.testing.assert_series_equal(firth.ps_, res.ps_)
    ridge = match(d, treatment="t", covariates=["age", "sofa"], distance="ps", ps_model="ridge")
    assert "ridge" in ridge.settings["ps_model"]


def test_warm_start_reaches_the_same_estimate():
    """Large fits start from a subsample fit; the maximum-likelihood estimate is the same to 1e-9."""
    rng = np.random.default_rng(11)
    n1, n0 = 300, 210_000
    X = np.vstack([rng.normal(0.4, 1, size=(n1, 3)), rng.normal(0, 1, size=(n0, 3))])
    y = np.r_[np.ones(n1), np.zeros(n0)]
    A = _design(X)
    cold, _, r1 = logistic_ml(A, y)
    start = _warm_start(A, y)
    warm, it, r2 = logistic_ml(A, y, start)
    assert r1 is None and r2 is None and it <= 5
    np.testing.assert_allclose(warm, cold, rtol=1e-9, atol=1e-9)
    fit = fit_propensity(X, y.astype(int), ["a", "b", "c"])
    np.testing.assert_allclose(fit.coef.to_numpy(), cold, rtol=1e-9, atol=1e-9)
