"""Analysis room: conditional logistic regression over matched sets.

The fit is ``statsmodels`` ``ConditionalLogit`` (exact conditional likelihood, R's
``clogit(method = "exact")``), run by Newton-Raphson to a tight tolerance. Two pieces are written
here because statsmodels does not give them: the likelihood-ratio and score tests against
``beta = 0`` (the null log-likelihood and the null information have closed forms: under
``beta = 0`` the cases of a set are a uniformly random subset of it), and a guard for
separation, where the maximum likelihood estimate is infinite and statsmodels would return a
large, meaningless coefficient.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from ._results import Estimate
from ._sets import prepare

__all__ = ["compute_clogit", "conditional_logit"]

REF_CLOGIT = (
    "Breslow NE, Day NE. Statistical Methods in Cancer Research, Vol. I: The Analysis of "
    "Case-Control Studies. IARC Sci Publ 32; 1980. Chapter 7; Gail MH, Lubin JH, Rubinstein LV. "
    "Likelihood calculations for matched case-control studies and survival studies with tied "
    "death times. Biometrika 1981;68:703-707. doi:10.1093/biomet/68.3.703"
)


def _null_parts(y: np.ndarray, x: np.ndarray, groups: np.ndarray) -> tuple[float, np.ndarray,
                                                                          np.ndarray]:
    """Log-likelihood, score and information at ``beta = 0``, summed over groups.

    Under ``beta = 0`` the ``m`` cases of a group of ``n`` are a uniformly random ``m``-subset:
    ``loglik = -log C(n, m)``, ``U = sum_cases x - m xbar`` and ``I = m (n - m) / (n (n - 1)) *
    sum (x - xbar)(x - xbar)'`` (sampling without replacement).
    """
    ll, p = 0.0, x.shape[1]
    u, info = np.zeros(p), np.zeros((p, p))
    order = np.argsort(groups, kind="stable")
    g, yy, xx = groups[order], y[order], x[order]
    bounds = np.flatnonzero(np.r_[True, g[1:] != g[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        n, m = hi - lo, int(yy[lo:hi].sum())
        if m == 0 or m == n:
            continue
        xc = xx[lo:hi] - xx[lo:hi].mean(axis=0)
        ll -= math.log(special.comb(n, m, exact=True))
        u += xc[yy[lo:hi] == 1].sum(axis=0)
        info += m * (n - m) / (n * (n - 1)) * xc.T @ xc
    return ll, u, info


def compute_clogit(y, x, groups, *, names: Sequence[str] | None = None,
                   alpha: float = 0.05) -> dict:
    """Conditional logistic regression of binary ``y`` on ``x`` within ``groups``.

    Parameters
    ----------
    y : array of 0/1
        Outcome (``case`` in a case-control study).
    x : array, shape (n,) or (n, p)
        Covariates; no intercept (it is conditioned away).
    groups : array
        Matched-set identifiers.

    Returns
    -------
    dict
        ``names, coef, se, z, p, or, or_low, or_high, vcov, loglik_null, loglik, lr, wald,
        score, df`` with ``lr, wald, score`` each ``{"statistic", "p"}``; or
        ``{"not_estimable": reason, "score": ..., "loglik_null": ...}`` when the estimate is
        infinite (separation) or the fit fails. The score test needs no fit and is always given.

    Notes
    -----
    Exact conditional likelihood, R's ``clogit(case ~ x + strata(set))`` (its default
    ``method = "exact"``); for one case per set all of R's methods agree. Standard errors come
    from statsmodels' numerical Hessian (relative error about 1e-8 on infert).

    References
    ----------
    Breslow NE, Day NE. Statistical Methods in Cancer Research, Vol. I. IARC; 1980. Chapter 7.
    Gail MH, Lubin JH, Rubinstein LV. Biometrika 1981;68:703-707. doi:10.1093/biomet/68.3.703
    """
    from statsmodels.discrete.conditional_models import ConditionalLogit
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    groups = np.asarray(groups)
    names = list(names) if names is not None else [f"x{i}" for i in range(x.shape[1])]
    ll0, u, info = _null_parts(y, x, groups)
    df = x.shape[1]
    out: dict = {"names": names, "loglik_null": ll0, "df": df}
    try:
        score = float(u @ np.linalg.solve(info, u))
        out["score"] = {"statistic": score, "p": float(stats.chi2.sf(score, df))}
    except np.linalg.LinAlgError:
        out["score"] = {"statistic": None, "p": None}
    reason = _separated(y, x, groups)
    if reason:
        out["not_estimable"] = reason
        return out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = ConditionalLogit(y, x, groups=groups)
            fit = model.fit(method="newton", disp=0, maxiter=200, tol=1e-14)
        except (np.linalg.LinAlgError, ValueError) as exc:
            out["not_estimable"] = f"the conditional logistic fit failed: {exc}"
            return out
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        out["not_estimable"] = "the conditional logistic fit did not converge"
        return out
    coef = np.asarray(fit.params, dtype=float)
    hess = model.hessian(coef)
    vcov = np.linalg.inv(-(hess + hess.T) / 2)
    se = np.sqrt(np.diag(vcov))
    zcrit = float(stats.norm.isf(alpha / 2))
    ll = float(fit.llf)
    lr = 2 * (ll - ll0)
    wald = float(coef @ np.linalg.solve(vcov, coef))
    z = coef / se
    out.update(
        coef=coef.tolist(), se=se.tolist(), z=z.tolist(), p=(2 * stats.norm.sf(np.abs(z))).tolist(),
        **{"or": np.exp(coef).tolist()}, or_low=np.exp(coef - zcrit * se).tolist(),
        or_high=np.exp(coef + zcrit * se).tolist(), vcov=vcov.tolist(), loglik=ll,
        lr={"statistic": lr, "p": float(stats.chi2.sf(lr, df))},
        wald={"statistic": wald, "p": float(stats.chi2.sf(wald, df))},
    )
    return out


def _separated(y: np.ndarray, x: np.ndarray, groups: np.ndarray) -> str | None:
    """A reason when one binary covariate perfectly separates the informative sets, else None.

    Checked for a single covariate only (the matched analysis of a treatment indicator): the
    estimate is finite iff some informative set has a case with a larger ``x`` than a non-case,
    and some the reverse.
    """
    if x.shape[1] != 1:
        return None
    f = pd.DataFrame({"g": groups, "y": y, "x": x[:, 0]})
    up = down = False
    for _, s in f.groupby("g", sort=False):
        cases, non = s.loc[s.y == 1, "x"], s.loc[s.y == 0, "x"]
        if cases.empty or non.empty:
            continue
        up |= bool(cases.max() > non.min())
        down |= bool(cases.min() < non.max())
    if up and down:
        return None
    if not up and not down:
        return "no informative set: the covariate does not vary between cases and non-cases"
    return ("separation: in every informative set the patients with y = 1 have "
            f"{'higher' if up else 'lower'} values than those with y = 0, so the conditional "
            f"maximum likelihood estimate is {'+' if up else '-'}infinity")


def conditional_logit(endpoints: pd.DataFrame, column: str, *, alpha: float = 0.05) -> Estimate:
    """Conditional logistic regression of the outcome on treatment, conditioning on matched set.

    The odds ratio of y = 1 for treated versus control, estimated from the conditional
    likelihood given the number of y = 1 in each set (R ``clogit(y ~ treated + strata(set))``).
    Its score test is the uncorrected CMH test. Value None, with the reason in ``conventions``,
    when the estimate is infinite (for example no treated death).

    Returns
    -------
    Estimate
        ``clogit_odds_ratio`` with the Wald CI; ``conventions`` hold the coefficient, SE, and
        the likelihood-ratio, Wald and score tests.

    References
    ----------
    Breslow NE, Day NE. Statistical Methods in Cancer Research, Vol. I. IARC; 1980. Chapter 7.
    """
    md = prepare(endpoints, column)
    f = md.frame
    res = compute_clogit(f["y"].to_numpy(), f["role"].eq("treated").to_numpy(float),
                         f["set_id"].to_numpy(), names=["treated"], alpha=alpha)
    conv = {"model": "y ~ treated + strata(set), exact conditional likelihood",
            "ci": "Wald, on log OR", "score_test": res["score"], **md.conventions()}
    value = low = high = None
    if "not_estimable" in res:
        conv["not_estimable"] = res["not_estimable"]
    else:
        conv.update(coef=res["coef"][0], se=res["se"][0], lr_test=res["lr"],
                    wald_test=res["wald"], loglik=res["loglik"], loglik_null=res["loglik_null"])
        value, low, high = res["or"][0], res["or_low"][0], res["or_high"][0]
    return Estimate(
        name="clogit_odds_ratio", value=value, ci_low=low, ci_high=high,
        method="Conditional logistic regression over matched sets (statsmodels ConditionalLogit)",
        ci_level=1 - alpha, framing="matched", conventions=conv, reference=REF_CLOGIT,
    )
