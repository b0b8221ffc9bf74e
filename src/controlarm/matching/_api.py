"""The front door of the matching room: ``match()`` checks, builds the problem and dispatches.

Methods live one per module and are found through the explicit registry ``METHODS``
(``name -> function(MatchingProblem) -> Assignment``), as MatchIt dispatches to
``matchit2<method>``. Risk-set matching needs eligibility intervals rather than one row per
patient, so it has its own function, :func:`controlarm.matching.risk_set_match`.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ._distance import (DISTANCES, SCORE_DISTANCES, Distance, mahalanobis_distance,
                        matrix_distance, robust_mahalanobis_distance)
from ._eligibility import eligible_counts
from ._nearest import match_nearest, ming_rosenbaum_allocation
from ._optimal import match_optimal
from ._problem import Assignment, CovariateCaliper, MatchingProblem
from ._propensity import PS_MODELS, PropensityFit, fit_propensity
from ._result import MatchResult, build_audit, build_matched_table
from ._validate import check_choice, check_input

__all__ = ["match", "METHODS", "PLANNED_METHODS", "ORDERS", "DISCARD"]

#: name -> matching function. Add a method by adding its module's function here.
METHODS: dict[str, Callable[[MatchingProblem], Assignment]] = {
    "nearest": match_nearest,
    "optimal": match_optimal,
}
#: names that exist but are not a ``match()`` method (the message says where to go instead).
PLANNED_METHODS: tuple[str, ...] = ("risk_set",)
ORDERS = ("data", "largest", "smallest", "random")
CALIPER_UNITS = ("sd", "raw")
DISCARD = ("none", "both", "treated", "control")
ROUNDS = "in rounds: every treated patient gets its r-th control before any gets its (r+1)-th (MatchIt)"


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise InputError(f"matching.{name} must be a positive number; got {value!r}")
    return float(value)


def _int_at_least(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"matching.{name} must be an integer >= {low}; got {value!r}")
    return int(value)


def match(
    data: pd.DataFrame,
    *,
    treatment: str,
    covariates: Sequence[str],
    ratio: float = 1,
    method: str = "nearest",
    distance: str | None = None,
    exact: Sequence[str] = (),
    caliper: float | None = None,
    caliper_units: str | None = None,
    order: str | None = None,
    replace: bool = False,
    seed: int = 0,
    id_column: str = "patient_id",
    min_controls: int | None = None,
    max_controls: int | None = None,
    covariate_calipers: Mapping[str, float] | None = None,
    covariate_caliper_units: str = "raw",
    discard: str = "none",
    ps_model: str = "logistic",
    distance_matrix: pd.DataFrame | None = None,
    k_nearest: int | None = None,
) -> MatchResult:
    """Match each treated patient to candidate controls.

    Parameters
    ----------
    data : DataFrame
        One row per patient: ``id_column``, ``treatment`` (1 treated / 0 candidate control, or
        bool), numeric ``covariates`` and the ``exact`` columns, with no missing values in them
        (exclude incomplete rows beforehand and count them in the flow). Never modified.
    treatment : str
        The treatment column.
    covariates : sequence of str
        Covariates of the distance (the PS model or the Mahalanobis distance) and of ``balance()``.
        Encode a categorical variable as 0/1 dummies without a reference level, as R's model matrix
        does. May be empty with ``distance_matrix``.
    ratio : int or float
        Controls wanted per treated patient (k in k:1), an integer >= 1. With ``max_controls`` it is
        the average: round(ratio x n_treated) controls are matched in all.
    method : {"nearest", "optimal"}
        "nearest": greedy, in rounds, as MatchIt ``method = "nearest"``. "optimal": the smallest
        total distance (min-cost flow; see ``_optimal.py``): first as many treated patients matched
        as possible, then as many controls, then the smallest total distance.
    distance : {"mahalanobis", "robust_mahalanobis", "ps", "logit_ps", "matrix"}, optional
        Mahalanobis distance (pooled within-group covariance, as MatchIt), its rank-based robust
        version (Rosenbaum 2010), the absolute difference in the propensity score or in its logit,
        or the user's ``distance_matrix``. Default "mahalanobis" ("matrix" when a matrix is given).
    exact : sequence of str
        Exact strata: a control matches only a treated patient with equal values in all of them.
    caliper : float, optional
        Largest allowed distance of a pair. Pairs with distance <= caliper are allowed.
    caliper_units : {"sd", "raw"}, optional
        "sd": ``caliper`` is in SDs (n - 1) of the score over all patients not discarded (MatchIt
        ``std.caliper = TRUE``); "raw": in distance units. Default: "sd" for PS distances, "raw"
        otherwise (which accept only "raw").
    order : {"data", "largest", "smallest", "random"}, optional
        Greedy matching: the order in which treated patients pick their controls in each round: data
        order, by decreasing or increasing score, or at random (``numpy.random.default_rng(seed)``).
        Default as MatchIt: "largest" for PS distances, "data" otherwise (which accept only "data"
        and "random"). Optimal matching has no order (a given order is ignored with a warning).
    replace : bool
        Whether a control may serve several treated patients (MatchIt ``replace = TRUE``).
    seed : int
        Seed of the random order.
    id_column : str
        The patient id column (unique).
    min_controls, max_controls : int, optional
        Variable ratio: each treated patient gets between ``min_controls`` (default 1) and
        ``max_controls``, with min < ratio < max. Greedy: the numbers are fixed in advance from the
        score as MatchIt does (Ming & Rosenbaum 2000; PS distances only). Optimal: the numbers are
        chosen by the optimisation (Ming & Rosenbaum 2001).
    covariate_calipers : mapping of str to float, optional
        Calipers on named numeric columns: a pair is allowed only if |x_t - x_c| <= width for each.
    covariate_caliper_units : {"raw", "sd"}
        Units of ``covariate_calipers``: raw, or SDs (n - 1) of the column over all patients not
        discarded (MatchIt ``std.caliper``).
    discard : {"none", "both", "treated", "control"}
        Common-support discard on the score (PS distances only), as MatchIt: drop treated patients
        whose score lies outside the range of the candidates' ("treated"), candidates outside the
        range of the treated ("control"), or both.
    ps_model : {"logistic", "firth", "ridge"}
        Propensity model: maximum likelihood (falls back to Firth's penalised likelihood, with a
        SmallSampleWarning, when the groups are separated), Firth's penalised likelihood, or ridge.
    distance_matrix : DataFrame, optional
        Treated ids x candidate ids; ``inf`` forbids a pair.
    k_nearest : int, optional
        Optimal matching: the first list length of the pruned candidate graph (default automatic);
        it is widened until optimality is certified, so it changes speed, never the total.

    Returns
    -------
    MatchResult
        ``matched`` is the tidy matched table; ``matched_sets`` the pair table; ``audit`` the
        eligible candidates and the reason per treated patient. See :class:`MatchResult`.

    Raises
    ------
    InputError
        Bad or contradictory arguments, missing values (naming the column, count and ids), a
        constant or collinear covariate (naming it).

    Warns
    -----
    SmallSampleWarning
        When the maximum-likelihood PS model fails because the groups are separated and Firth's
        penalised likelihood is used instead (recorded in ``settings["ps_model"]``).

    Notes
    -----
    Greedy matching reproduces MatchIt 4.7.1's ``matchit(method = "nearest")`` match matrix on the
    lalonde data, with and without replacement, calipers and exact strata
    (tests/test_matching.py). Optimal matching is certified optimal for the full (unpruned)
    problem and equals a dense ``linear_sum_assignment`` solve (tests/test_matching_optimal.py).

    References
    ----------
    Ho, D. E., Imai, K., King, G., & Stuart, E. A. (2011). MatchIt: Nonparametric preprocessing for
    parametric causal inference. *Journal of Statistical Software*, 42(8), 1-28.
    https://doi.org/10.18637/jss.v042.i08

    Rosenbaum, P. R. (1989). Optimal matching for observational studies. *JASA*, 84(408),
    1024-1032. https://doi.org/10.1080/01621459.1989.10478868

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

    Greedy matching can lose what optimal matching keeps (T1 takes C1, which T2 needed more):

    >>> e = pd.DataFrame({"patient_id": ["T1", "T2", "C1", "C2", "C3"], "treated": [1, 1, 0, 0, 0],
    ...                   "age": [60.0, 61.0, 61.0, 50.0, 40.0]})
    >>> for method in ("nearest", "optimal"):
    ...     r = match(e, treatment="treated", covariates=["age"], method=method)
    ...     print(method, r.match_matrix[1].to_dict(), round(r.diagnostics["total_distance"], 4))
    nearest {'T1': 'C1', 'T2': 'C2'} 1.3976
    optimal {'T1': 'C2', 'T2': 'C1'} 1.1647
    """
    # ---- options first: cheap, and a wrong option should not wait for a model fit
    if method in PLANNED_METHODS:
        raise InputError(
            "risk-set matching takes per-candidate eligibility intervals, not one row per patient; call "
            "controlarm.matching.risk_set_match(treated, candidates, ...) instead of match(method='risk_set')"
        )
    check_choice("method", method, tuple(METHODS))
    if distance is None:
        distance = "matrix" if distance_matrix is not None else "mahalanobis"
    check_choice("distance", distance, DISTANCES)
    if distance == "matrix" and distance_matrix is None:
        raise InputError("distance 'matrix' needs distance_matrix= (treated ids x candidate ids)")
    if distance != "matrix" and distance_matrix is not None:
        raise InputError(f"distance_matrix is given but distance is {distance!r}; use distance='matrix' or drop the matrix")
    if replace not in (True, False) or not isinstance(replace, (bool, np.bool_)):
        raise InputError(f"matching.replace must be True or False; got {replace!r}")
    replace = bool(replace)
    check_choice("ps_model", ps_model, PS_MODELS)
    check_choice("discard", discard, DISCARD)
    is_score = distance in SCORE_DISTANCES
    variable = min_controls is not None or max_controls is not None
    if variable:
        if max_controls is None:
            raise InputError("variable-ratio matching needs max_controls (min_controls defaults to 1)")
        min_c = _int_at_least("min_controls", 1 if min_controls is None else min_controls, 1)
        max_c = _int_at_least("max_controls", max_controls, 2)
        ratio = _positive("ratio", ratio)
        if not min_c < ratio < max_c:
            raise InputError(
                f"variable ratio needs min_controls < ratio < max_controls (ratio is the average); got "
                f"{min_c} < {ratio:g} < {max_c}"
            )
        if method == "nearest" and not is_score:
            raise InputError(
                "greedy variable-ratio matching allocates controls by propensity score (Ming & Rosenbaum 2000, "
                f"as MatchIt); use distance 'ps' or 'logit_ps', or method='optimal' with {distance!r}"
            )
        width = max_c
    else:
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Integral) or ratio < 1:
            raise InputError(f"matching.ratio must be an integer >= 1 (controls per treated patient); got {ratio!r}")
        ratio = int(ratio)
        min_c = max_c = None
        width = ratio
    if method == "optimal" and order is not None:
        warnings.warn(f"matching.order {order!r} is ignored by optimal matching, which has no processing order",
                      UserWarning, stacklevel=2)
        order = None
    if method == "nearest":
        if order is None:
            order = "largest" if is_score else "data"
        check_choice("order", order, ORDERS)
        if not is_score and order in ("largest", "smallest"):
            raise InputError(
                f"matching.order {order!r} sorts treated patients by propensity score, but distance is "
                f"{distance!r}; with this distance use order 'data' or 'random'"
            )
    if caliper is not None:
        caliper = _positive("caliper", caliper)
        if caliper_units is None:
            caliper_units = "sd" if is_score else "raw"
        check_choice("caliper_units", caliper_units, CALIPER_UNITS)
        if not is_score and caliper_units == "sd":
            raise InputError(
                f"matching.caliper_units 'sd' needs a score distance ('ps' or 'logit_ps'): the {distance!r} distance "
                "has no single SD (MatchIt allows no SD caliper on it either); give the caliper in distance units "
                "with caliper_units='raw'"
            )
    elif caliper_units is not None:
        check_choice("caliper_units", caliper_units, CALIPER_UNITS)
        warnings.warn("matching.caliper_units is ignored because no caliper is given", UserWarning, stacklevel=2)
    cov_cal = dict(covariate_calipers or {})
    if not isinstance(covariate_calipers, (Mapping, type(None))):
        raise InputError(f"covariate_calipers must map column names to widths, e.g. {{'age': 5}}; got {covariate_calipers!r}")
    for name, w in cov_cal.items():
        if not isinstance(name, str):
            raise InputError(f"covariate_calipers keys must be column names; got {name!r}")
        cov_cal[name] = _positive(f"covariate_calipers[{name!r}]", w)
    check_choice("covariate_caliper_units", covariate_caliper_units, CALIPER_UNITS)
    if covariate_caliper_units != "raw" and not cov_cal:
        warnings.warn("covariate_caliper_units is ignored because no covariate_calipers are given", UserWarning,
                      stacklevel=2)
    if ps_model != "logistic" and not is_score:
        warnings.warn(f"ps_model {ps_model!r} is ignored: distance {distance!r} fits no propensity model", UserWarning,
                      stacklevel=2)
    if discard != "none" and not is_score:
        raise InputError(f"matching.discard {discard!r} trims on the propensity score; it needs distance 'ps' or 'logit_ps'")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"seed must be a non-negative integer; got {seed!r}")
    if k_nearest is not None:
        k_nearest = _int_at_least("k_nearest", k_nearest, 1)
        if method != "optimal":
            warnings.warn("k_nearest is ignored: only optimal matching prunes a candidate graph", UserWarning, stacklevel=2)
    exact = [exact] if isinstance(exact, str) else list(exact)
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)

    # ---- data
    checked = check_input(data, treatment=treatment, covariates=covariates, exact=exact, id_column=id_column,
                          caliper_columns=list(cov_cal), allow_no_covariates=distance == "matrix")
    treat = checked.treat
    treated = np.flatnonzero(treat == 1)
    controls = np.flatnonzero(treat == 0)

    # ---- distance
    fit: PropensityFit | None = None
    if is_score:
        fit = fit_propensity(checked.X, treat, covariates, model=ps_model)
        dist = Distance(name=distance, kind="score", score=fit.ps if distance == "ps" else fit.linear)
    elif distance == "mahalanobis":
        dist = mahalanobis_distance(checked.X, treat, covariates)
    elif distance == "robust_mahalanobis":
        dist = robust_mahalanobis_distance(checked.X, treat, covariates)
    else:
        dist = matrix_distance(distance_matrix, checked.ids, treat)

    # ---- common support (MatchIt discard): on the score, before calipers
    keep = np.ones(len(treat), dtype=bool)
    if discard != "none":
        s = dist.score
        s_t, s_c = s[treated], s[controls]  # type: ignore[index]
        if discard in ("both", "treated"):
            keep[treated] = (s_t >= s_c.min()) & (s_t <= s_c.max())
        if discard in ("both", "control"):
            keep[controls] = (s_c >= s_t.min()) & (s_c <= s_t.max())
    active = keep[treated]
    ok_controls = controls[keep[controls]]

    caliper_raw = None
    if caliper is not None:
        caliper_raw = caliper * dist.sd(np.flatnonzero(keep)) if caliper_units == "sd" else caliper
    cov_objs = []
    cov_raw = {}
    for name, w in cov_cal.items():
        values = data[name].to_numpy(dtype=float)
        raw = w * float(np.std(values[keep], ddof=1)) if covariate_caliper_units == "sd" else w
        cov_raw[name] = raw
        cov_objs.append(CovariateCaliper(name=name, values=values, width=raw))

    # ---- controls wanted per treated patient
    n1 = len(treated)
    min_arr = total = None
    if not variable:
        wanted = np.full(n1, ratio, dtype=np.int64)
    elif method == "nearest":
        s_t = dist.score[treated]  # type: ignore[index]
        higher = bool(s_t.mean() > dist.score[controls].mean())  # type: ignore[index]
        wanted = ming_rosenbaum_allocation(n1, ratio, min_c, max_c, s_t, higher)  # type: ignore[arg-type]
    else:
        wanted = np.full(n1, max_c, dtype=np.int64)
        min_arr = np.where(active, min_c, 0)
        total = int(np.floor(ratio * int(active.sum()) + 0.5))
    wanted = np.where(active, wanted, 0)

    # ---- processing order of the treated (stable sorts: data order breaks ties, as R's order())
    if order in (None, "data"):
        ord_ = np.arange(n1)
    elif order == "random":
        ord_ = np.random.default_rng(seed).permutation(n1)
    else:
        s_t = dist.score[treated]  # type: ignore[index]
        ord_ = np.argsort(-s_t if order == "largest" else s_t, kind="stable")

    problem = MatchingProblem(
        treated=treated, controls=ok_controls, distance=dist, strata=checked.strata, caliper=caliper_raw,
        ratio=width, order=ord_, replace=replace, covariate_calipers=tuple(cov_objs), n_wanted=wanted,
        min_controls=min_arr, total=total, active=active, options={"k_nearest": k_nearest},
    )
    assignment = METHODS[method](problem)
    n_in, n_ok = eligible_counts(problem)

    settings = {
        "method": method,
        "distance": distance,
        "ratio": ratio,
        "min_controls": min_c,
        "max_controls": max_c,
        "replace": replace,
        "exact": list(exact),
        "caliper": caliper,
        "caliper_units": caliper_units if caliper is not None else None,
        "caliper_raw": caliper_raw,
        "caliper_rule": None if caliper is None else (
            "pairs with distance <= caliper_raw are allowed; "
            + ("caliper_raw = caliper x SD (n-1) of the score over all patients not discarded (MatchIt std.caliper=TRUE)"
               if caliper_units == "sd" else "caliper given in raw distance units")
        ),
        "covariate_calipers": dict(cov_cal) or None,
        "covariate_caliper_units": covariate_caliper_units if cov_cal else None,
        "covariate_calipers_raw": cov_raw or None,
        "discard": discard,
        "order": order,
        "seed": seed if order == "random" else None,
        "rounds": ROUNDS if method == "nearest" else None,
        "tie_rule": assignment.tie_rule,
        "treatment": treatment,
        "covariates": list(covariates),
        "id_column": id_column,
        "k_nearest": k_nearest if method == "optimal" else None,
    }
    # what a treated patient is owed: its ratio, or for optimal variable ratio its minimum
    owed = np.where(active, min_c, 0) if (variable and method == "optimal") else wanted
    return _result(checked.ids, treated, controls, assignment, fit, dist, settings, owed, n_in, n_ok,
                   discarded=~active, discarded_controls=int((~keep[controls]).sum()))


def _result(ids, treated, controls, assignment: Assignment, fit, dist, settings, wanted, n_in, n_ok, *,
            discarded, discarded_controls) -> MatchResult:
    mm = assignment.match_matrix
    ps = fit.ps if fit is not None else None
    matched = build_matched_table(ids, treated, mm, assignment.pair_distance, ps)
    n_got = (mm >= 0).sum(axis=1)
    unmatched = tuple(ids[treated[n_got == 0]].tolist())
    incomplete = tuple(ids[treated[(n_got > 0) & (n_got < wanted)]].tolist())
    mm_ids = pd.DataFrame(
        [[ids[c] if c >= 0 else None for c in row] for row in mm],
        index=pd.Index(ids[treated], name=settings["id_column"]),
        columns=range(1, mm.shape[1] + 1),
        dtype=object,
    )
    has_cal = settings["caliper"] is not None or bool(settings["covariate_calipers"]) or settings["distance"] == "matrix"
    audit, misses = build_audit(ids[treated], mm, wanted, n_in, n_ok, discarded,
                                discard_rule=f"discard={settings['discard']!r}", has_caliper=has_cal,
                                stratum_words="its exact stratum" if settings["exact"] else "the candidate pool")
    ps_series = coef = cov = None
    if fit is not None:
        settings["ps_model"] = fit.model
        settings["ps_fallback_reason"] = fit.note
        settings["score"] = "propensity score" if settings["distance"] == "ps" else "logit of the propensity score"
        ps_series = pd.Series(fit.ps, index=pd.Index(ids, name=settings["id_column"]), name="ps")
        coef = fit.coef
    else:
        settings["covariance"] = dist.info.get("covariance")
        cov = dist.info.get("covariance_matrix")
    filled = mm >= 0
    diagnostics = {
        "total_distance": float(np.nansum(assignment.pair_distance[filled])),
        "n_pairs": int(filled.sum()),
        "caliper_misses": misses,
        "discarded_treated": int(discarded.sum()),
        "discarded_controls": discarded_controls,
        "n_eligible_min": int(n_ok[~discarded].min()) if (~discarded).any() else 0,
        "n_eligible_median": float(np.median(n_ok[~discarded])) if (~discarded).any() else 0.0,
        "method": dict(assignment.info),
    }
    return MatchResult(
        matched=matched,
        match_matrix=mm_ids,
        unmatched_treated=unmatched,
        incomplete_treated=incomplete,
        n_treated=len(treated),
        n_candidates=len(controls),
        method=settings["method"],
        distance=settings["distance"],
        treatment=settings["treatment"],
        covariates=tuple(settings["covariates"]),
        id_column=settings["id_column"],
        settings=settings,
        ps_=ps_series,
        ps_coef_=coef,
        covariance_=cov,
        audit=audit,
        diagnostics=diagnostics,
    )
