"""The front door of the matching room: ``match()`` checks, builds the problem and dispatches.

Methods live one per module and are found through the explicit registry ``METHODS``
(``name -> function(MatchingProblem) -> Assignment``), as MatchIt dispatches to
``matchit2<method>``. Distances are found through ``_DISTANCE_BUILDERS``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ._distance import DISTANCES, Distance, PropensityFit, fit_propensity, mahalanobis_distance
from ._nearest import match_nearest
from ._problem import Assignment, MatchingProblem
from ._result import MatchResult, build_matched_table
from ._validate import check_choice, check_input

__all__ = ["match", "METHODS", "PLANNED_METHODS"]

#: name -> matching function. Add a method by adding its module's function here.
METHODS: dict[str, Callable[[MatchingProblem], Assignment]] = {
    "nearest": match_nearest,
}
#: methods on the road map: asking for them gives a clear "not available yet".
PLANNED_METHODS = ("optimal", "risk_set")
ORDERS = ("data", "largest", "smallest", "random")
CALIPER_UNITS = ("sd", "raw")
ROUNDS = "in rounds: every treated patient gets its r-th control before any gets its (r+1)-th (MatchIt)"


def match(
    data: pd.DataFrame,
    *,
    treatment: str,
    covariates: Sequence[str],
    ratio: int = 1,
    method: str = "nearest",
    distance: str = "mahalanobis",
    exact: Sequence[str] = (),
    caliper: float | None = None,
    caliper_units: str | None = None,
    order: str | None = None,
    replace: bool = False,
    seed: int = 0,
    id_column: str = "patient_id",
) -> MatchResult:
    """Match each treated patient to up to ``ratio`` candidate controls.

    Parameters
    ----------
    data : DataFrame
        One row per patient: ``id_column``, ``treatment`` (1 treated / 0 candidate control, or
        bool), numeric ``covariates`` and the ``exact`` columns, with no missing values in them
        (exclude incomplete rows beforehand and count them in the flow). Never modified.
    treatment : str
        The treatment column.
    covariates : sequence of str
        Covariates of the distance (the PS model or the Mahalanobis distance). Encode a categorical
        variable as 0/1 dummies without a reference level, as R's model matrix does.
    ratio : int
        Controls wanted per treated patient (k in k:1), an integer >= 1.
    method : {"nearest"}
        Greedy nearest-neighbour matching (MatchIt ``method = "nearest"``). ``"optimal"`` and
        ``"risk_set"`` are not available yet.
    distance : {"mahalanobis", "ps", "logit_ps"}
        Mahalanobis distance on the covariates (pooled within-group covariance, as MatchIt), or the
        absolute difference in the logistic propensity score or in its logit.
    exact : sequence of str
        Exact strata: a control matches only a treated patient with equal values in all of them.
    caliper : float, optional
        Largest allowed distance of a pair. Pairs with distance <= caliper are allowed.
    caliper_units : {"sd", "raw"}, optional
        "sd": ``caliper`` is in SDs (n - 1) of the score over all patients (MatchIt
        ``std.caliper = TRUE``); "raw": in distance units. Default: "sd" for PS distances, "raw"
        for Mahalanobis, which accepts only "raw".
    order : {"data", "largest", "smallest", "random"}, optional
        Order in which treated patients pick their controls in each round: data order, by
        decreasing or increasing score, or at random (``numpy.random.default_rng(seed)``).
        Default as MatchIt: "largest" for PS distances, "data" for Mahalanobis, which accepts only
        "data" and "random".
    replace : bool
        Matching with replacement is not available yet; True raises InputError.
    seed : int
        Seed of the random order (used only with ``order="random"``).
    id_column : str
        The patient id column (unique).

    Returns
    -------
    MatchResult
        ``matched`` is the tidy matched table; see :class:`MatchResult`.

    Raises
    ------
    InputError
        Bad or contradictory arguments, missing values (naming the column, count and ids), a
        constant or collinear covariate (naming it), or ``replace=True``.

    Warns
    -----
    SmallSampleWarning
        When the maximum-likelihood PS model fails because the groups are separated and a ridge fit
        is used instead (recorded in ``settings["ps_model"]``).

    Notes
    -----
    Greedy nearest-neighbour matching without replacement, in rounds (every treated patient gets
    its first control before any gets a second), treated patients taken in ``order``. A treated
    patient with no eligible control left in a round keeps an empty slot (``incomplete_treated``;
    ``unmatched_treated`` if it got none). Tie rules are stated in ``settings["tie_rule"]``. This
    reproduces MatchIt 4.7.1's ``matchit(method = "nearest")`` match matrix on the lalonde data
    (tests/test_matching.py).

    References
    ----------
    Ho, D. E., Imai, K., King, G., & Stuart, E. A. (2011). MatchIt: Nonparametric preprocessing for
    parametric causal inference. *Journal of Statistical Software*, 42(8), 1-28.
    https://doi.org/10.18637/jss.v042.i08

    Austin, P. C. (2011). Optimal caliper widths for propensity-score matching when estimating
    differences in means and differences in proportions in observational studies.
    *Pharmaceutical Statistics*, 10(2), 150-161. https://doi.org/10.1002/pst.433

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"patient_id": ["T1", "T2", "C1", "C2", "C3", "C4"],
    ...                   "treated": [1, 1, 0, 0, 0, 0],
    ...                   "age": [60.0, 70.0, 59.0, 71.0, 40.0, 66.0],
    ...                   "sofa": [5.0, 8.0, 6.0, 8.0, 2.0, 5.0]})
    >>> res = match(d, treatment="treated", covariates=["age", "sofa"])
    >>> res.match_matrix[1].to_dict()  # treated id -> control id (round 1)
    {'T1': 'C4', 'T2': 'C2'}
    >>> res.matched[["set_id", "patient_id", "role", "match_round"]].values.tolist()
    [[1, 'T1', 'treated', 0], [1, 'C4', 'control', 1], [2, 'T2', 'treated', 0], [2, 'C2', 'control', 1]]
    """
    # ---- options first: cheap, and a wrong option should not wait for a model fit
    if method in PLANNED_METHODS:
        raise InputError(
            f"matching.method {method!r} is not available yet; available: {', '.join(map(repr, METHODS))}"
        )
    check_choice("method", method, tuple(METHODS))
    check_choice("distance", distance, DISTANCES)
    if replace is not False:
        if replace is True:
            raise InputError(
                "matching.replace = True (matching with replacement) is not available yet; use replace=False"
            )
        raise InputError(f"matching.replace must be True or False; got {replace!r}")
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Integral) or ratio < 1:
        raise InputError(f"matching.ratio must be an integer >= 1 (controls per treated patient); got {ratio!r}")
    ratio = int(ratio)
    is_score = distance in ("ps", "logit_ps")
    if order is None:
        order = "largest" if is_score else "data"
    check_choice("order", order, ORDERS)
    if not is_score and order in ("largest", "smallest"):
        raise InputError(
            f"matching.order {order!r} sorts treated patients by propensity score, but distance is "
            f"{distance!r}; with the Mahalanobis distance use order 'data' or 'random'"
        )
    if caliper is not None:
        if isinstance(caliper, bool) or not isinstance(caliper, numbers.Real) or not math.isfinite(caliper) or caliper <= 0:
            raise InputError(f"matching.caliper must be a positive number or None; got {caliper!r}")
        caliper = float(caliper)
        if caliper_units is None:
            caliper_units = "sd" if is_score else "raw"
        check_choice("caliper_units", caliper_units, CALIPER_UNITS)
        if not is_score and caliper_units == "sd":
            raise InputError(
                "matching.caliper_units 'sd' needs a score distance ('ps' or 'logit_ps'): the Mahalanobis "
                "distance has no single SD (MatchIt allows no SD caliper on it either); give the caliper in "
                "distance units with caliper_units='raw'"
            )
    elif caliper_units is not None:
        check_choice("caliper_units", caliper_units, CALIPER_UNITS)
        warnings.warn("matching.caliper_units is ignored because no caliper is given", UserWarning, stacklevel=2)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"seed must be a non-negative integer; got {seed!r}")
    exact = [exact] if isinstance(exact, str) else list(exact)
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)

    # ---- data
    checked = check_input(data, treatment=treatment, covariates=covariates, exact=exact, id_column=id_column)
    treat = checked.treat
    treated = np.flatnonzero(treat == 1)
    controls = np.flatnonzero(treat == 0)

    # ---- distance
    fit: PropensityFit | None = None
    if is_score:
        fit = fit_propensity(checked.X, treat, covariates)
        score = fit.ps if distance == "ps" else fit.linear
        dist = Distance(name=distance, kind="score", score=score)
    else:
        dist = mahalanobis_distance(checked.X, treat, covariates)

    caliper_raw = None
    if caliper is not None:
        caliper_raw = caliper * dist.sd() if caliper_units == "sd" else caliper

    # ---- processing order of the treated (stable sorts: data order breaks ties, as R's order())
    if order == "data":
        ord_ = np.arange(len(treated))
    elif order == "random":
        ord_ = np.random.default_rng(seed).permutation(len(treated))
    else:
        s_t = dist.score[treated]  # type: ignore[index]
        ord_ = np.argsort(-s_t if order == "largest" else s_t, kind="stable")

    problem = MatchingProblem(
        treated=treated,
        controls=controls,
        distance=dist,
        strata=checked.strata,
        caliper=caliper_raw,
        ratio=ratio,
        order=ord_,
        replace=False,
    )
    assignment = METHODS[method](problem)

    return _result(
        checked.ids, treated, controls, assignment, fit, dist,
        method=method, distance=distance, ratio=ratio, exact=exact, caliper=caliper,
        caliper_units=caliper_units, caliper_raw=caliper_raw, order=order, seed=seed,
        treatment=treatment, covariates=covariates, id_column=id_column,
    )


def _result(
    ids: np.ndarray,
    treated: np.ndarray,
    controls: np.ndarray,
    assignment: Assignment,
    fit: PropensityFit | None,
    dist: Distance,
    **s,
) -> MatchResult:
    mm = assignment.match_matrix
    ps = fit.ps if fit is not None else None
    matched = build_matched_table(ids, treated, mm, assignment.pair_distance, ps)
    n_got = (mm >= 0).sum(axis=1)
    unmatched = tuple(ids[treated[n_got == 0]].tolist())
    incomplete = tuple(ids[treated[(n_got > 0) & (n_got < s["ratio"])]].tolist())
    mm_ids = pd.DataFrame(
        [[ids[c] if c >= 0 else None for c in row] for row in mm],
        index=pd.Index(ids[treated], name=s["id_column"]),
        columns=range(1, s["ratio"] + 1),
        dtype=object,
    )
    settings = {
        "method": s["method"],
        "distance": s["distance"],
        "ratio": s["ratio"],
        "replace": False,
        "exact": list(s["exact"]),
        "caliper": s["caliper"],
        "caliper_units": s["caliper_units"] if s["caliper"] is not None else None,
        "caliper_raw": s["caliper_raw"],
        "caliper_rule": None if s["caliper"] is None else (
            "pairs with distance <= caliper_raw are allowed; "
            + ("caliper_raw = caliper x SD (n-1) of the score over all patients (MatchIt std.caliper=TRUE)"
               if s["caliper_units"] == "sd" else "caliper given in raw distance units")
        ),
        "order": s["order"],
        "seed": s["seed"] if s["order"] == "random" else None,
        "rounds": ROUNDS,
        "tie_rule": assignment.tie_rule,
        "treatment": s["treatment"],
        "covariates": list(s["covariates"]),
        "id_column": s["id_column"],
    }
    ps_series = coef = cov = None
    if fit is not None:
        settings["ps_model"] = fit.model
        settings["ps_fallback_reason"] = fit.note
        settings["score"] = "propensity score" if s["distance"] == "ps" else "logit of the propensity score"
        ps_series = pd.Series(fit.ps, index=pd.Index(ids, name=s["id_column"]), name="ps")
        coef = fit.coef
    else:
        settings["covariance"] = dist.info.get("covariance")
        cov = dist.info.get("covariance_matrix")
    return MatchResult(
        matched=matched,
        match_matrix=mm_ids,
        unmatched_treated=unmatched,
        incomplete_treated=incomplete,
        n_treated=len(treated),
        n_candidates=len(controls),
        method=s["method"],
        distance=s["distance"],
        treatment=s["treatment"],
        covariates=tuple(s["covariates"]),
        id_column=s["id_column"],
        settings=settings,
        ps_=ps_series,
        ps_coef_=coef,
        covariance_=cov,
    )
