"""Covariate balance before and after matching, with MatchIt's conventions (ATT).

The standardised mean difference (SMD) divides the difference in means by the SD of the
**treated group in the full (unmatched) sample**, the same denominator before and after matching,
so a change in SMD is a change in the mean difference alone. Binary covariates use
sqrt(p(1 - p)) with no n - 1. After matching, control means and variances use the matching
weights. This is ``summary.matchit()`` with ``estimand = "ATT"``; tableone, for comparison, uses
the pooled SD.

References
----------
Austin, P. C. (2009). Balance diagnostics for comparing the distribution of baseline covariates
between treatment groups in propensity-score matched samples. *Statistics in Medicine*, 28(25),
3083-3107. https://doi.org/10.1002/sim.3697

Stuart, E. A. (2010). Matching methods for causal inference: A review and a look forward.
*Statistical Science*, 25(1), 1-21. https://doi.org/10.1214/09-STS313

Ho, D. E., Imai, K., King, G., & Stuart, E. A. (2011). MatchIt. *Journal of Statistical
Software*, 42(8). https://doi.org/10.18637/jss.v042.i08 (MatchIt 4.7.1 ``R/summary.matchit.R``,
``bal1var()``, ``R/aux_functions.R``, ``pooled_sd()``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import BalanceWarning, InputError
from ._validate import ids_preview

__all__ = ["balance_table", "check_balance", "SMD_DENOMINATOR", "SMD_DENOMINATORS", "ecdf_stats"]

SMD_DENOMINATOR = "SD of the treated group before matching (MatchIt ATT convention; binary: sqrt(p(1-p)))"
SMD_DENOMINATORS = {
    "treated": SMD_DENOMINATOR,
    "pooled": (
        "pooled SD before matching, sqrt((s_treated^2 + s_pool^2) / 2) over all treated and all candidate "
        "controls (binary: p(1-p) per group; MatchIt s.d.denom = 'pooled'; Austin 2009)"
    ),
}
_EPS = float(np.sqrt(np.finfo(float).eps))
COLUMNS = [
    "covariate",
    "kind",
    "mean_treated",
    "mean_pool",
    "mean_treated_matched",
    "mean_matched",
    "sd_denominator",
    "smd_before",
    "smd_after",
    "var_ratio_before",
    "var_ratio_after",
    "ecdf_mean_before",
    "ecdf_max_before",
    "ecdf_mean_after",
    "ecdf_max_after",
    "std_pair_dist",
]


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    sw = w.sum()
    return float(np.sum(w * x) / sw) if sw > 0 else float("nan")


def _wvar(x: np.ndarray, w: np.ndarray) -> float:
    """Weighted variance as R's cov.wt / MatchIt's wvar(): sum w (x - m)^2 / (1 - sum w^2), w summing to 1."""
    keep = w > 0
    if keep.sum() < 2:
        return float("nan")
    x, w = x[keep], w[keep] / w[keep].sum()
    m = np.sum(w * x)
    return float(np.sum(w * (x - m) ** 2) / (1.0 - np.sum(w**2)))


def _pooled_sd(x: np.ndarray, t: np.ndarray, binary: bool) -> float:
    """MatchIt's pooled_sd(contribution = "proportional"), the fallback when the treated SD is ~0."""
    n = len(x)
    if binary:
        v = 0.0
        for g in (0, 1):
            xi = x[t == g]
            s = xi.sum()
            v += s * (1 - s / len(xi)) / n
        return float(np.sqrt(v))
    xc = x.astype(float).copy()
    for g in (0, 1):
        xc[t == g] -= xc[t == g].mean()
    return float(np.sqrt(np.sum(xc**2) / (n - 2))) if n > 2 else float("nan")


def _ratio(a: float, b: float) -> float:
    """a / b, NaN when b is zero or either is undefined (a variance ratio needs spread in both)."""
    return float(a) / float(b) if np.isfinite(a) and np.isfinite(b) and b > 0 else float("nan")


def _group_cdf(xg: np.ndarray, wg: np.ndarray | None, u: np.ndarray) -> np.ndarray:
    """Weighted eCDF of one group evaluated at the sorted values ``u`` (weights None: all equal)."""
    if wg is None:
        return np.searchsorted(np.sort(xg), u, "right") / len(xg)
    keep = wg > 0
    xg, wg = xg[keep], wg[keep]
    if len(xg) == 0:
        return np.full(len(u), np.nan)
    o = np.argsort(xg, kind="stable")
    cw = np.cumsum(wg[o]) / wg.sum()
    idx = np.searchsorted(xg[o], u, "right")
    return np.where(idx > 0, cw[np.maximum(idx - 1, 0)], 0.0)


def ecdf_stats(x: np.ndarray, t: np.ndarray, w: np.ndarray | None = None, u: np.ndarray | None = None) -> tuple[float, float]:
    """Mean and maximum of |F_treated(v) - F_control(v)| over the distinct values v of ``x``.

    Weighted eCDFs with the matching weights (None: unweighted). As MatchIt's ``qqsum(standardize =
    TRUE)``, the distinct values are those of every unit passed, zero-weight units included, so
    the eCDF mean after matching is averaged over the same grid as before.
    """
    if u is None:
        s = np.sort(x)
        u = s[np.r_[s[1:] != s[:-1], True]]
    t1 = t == 1
    f1 = _group_cdf(x[t1], None if w is None else w[t1], u)
    f0 = _group_cdf(x[~t1], None if w is None else w[~t1], u)
    e = np.abs(f1 - f0)
    if not np.isfinite(e).all():
        return float("nan"), float("nan")
    return float(e.mean()), float(e.max())


def _ecdf_before_after(x, x1, xm1, wm1, xm0, wm0) -> tuple[tuple[float, float], tuple[float, float]]:
    """eCDF mean/max before (all treated vs all candidates) and after (weighted matched) on one grid.

    The grid is every distinct value of ``x`` over all patients (MatchIt keeps zero-weight units in
    it). The pool's eCDF comes from the positions in the sorted full sample, so only the treated
    and the matched (small groups) need a search: O(n log n) for one sort of x.
    """
    s = np.sort(x)
    last = np.r_[s[1:] != s[:-1], True]
    u = s[last]
    n_le_all = np.flatnonzero(last) + 1  # patients with x <= u
    n1, n0 = len(x1), len(x) - len(x1)
    c1 = np.searchsorted(np.sort(x1), u, "right")
    e = np.abs(c1 / n1 - (n_le_all - c1) / n0) if n1 and n0 else np.array([np.nan])
    before = (float(e.mean()), float(e.max()))
    if wm1.sum() > 0 and wm0.sum() > 0:
        # the weighted eCDFs change only at matched values: evaluate there and count grid points per step
        v = np.unique(np.concatenate([xm1, xm0]))
        g = np.abs(_group_cdf(xm1, wm1, v) - _group_cdf(xm0, wm0, v))
        start = np.searchsorted(u, v, "left")
        count = np.diff(np.r_[start, len(u)])
        # grid points below the smallest matched value add |0 - 0| = 0 to the sum and nothing to the max
        after = (float(np.sum(count * g) / len(u)), float(g.max()))
    else:
        after = (float("nan"), float("nan"))
    return before, after


def balance_table(
    data: pd.DataFrame,
    matched: pd.DataFrame,
    *,
    treatment: str,
    covariates: Sequence[str],
    binary: Sequence[str] = (),
    id_column: str = "patient_id",
    smd_denominator: str = "treated",
) -> pd.DataFrame:
    """Balance of each covariate before and after matching.

    Parameters
    ----------
    data : DataFrame
        The matching frame: one row per patient with ``id_column``, ``treatment`` (1/0) and the
        covariates. "Before matching" compares all treated with all candidate controls (the pool).
    matched : DataFrame
        The tidy matched table (``patient_id``, ``role``, and ``weight``; without ``weight`` every
        row counts 1). A patient's weight is the sum of its rows' weights. With ``set_id`` the
        standardised pair distance is computed too.
    treatment, covariates, id_column : str, sequence of str, str
        Column names in ``data``.
    binary : sequence of str
        Covariates to treat as binary (they must hold only 0/1). Covariates whose values are all
        0 or 1 are binary anyway, as in MatchIt.
    smd_denominator : {"treated", "pooled"}
        "treated" (default, MatchIt's ATT convention): the SD of the treated group before matching.
        "pooled": sqrt((s_treated^2 + s_pool^2) / 2) before matching (MatchIt ``s.d.denom =
        "pooled"``). Either way the same denominator serves before and after matching, so a change
        in SMD is a change in the mean difference alone.

    Returns
    -------
    DataFrame
        One row per covariate: ``covariate, kind, mean_treated, mean_pool, mean_treated_matched,
        mean_matched, sd_denominator, smd_before, smd_after, var_ratio_before, var_ratio_after,
        ecdf_mean_before, ecdf_max_before, ecdf_mean_after, ecdf_max_after, std_pair_dist``.
        ``attrs["smd_denominator"]`` states the SMD convention. Variance ratios (treated / control)
        are NaN for binary covariates; their eCDF statistics are |difference in proportions|.
        ``std_pair_dist`` is the mean |x_treated - x_control| over the pairs of the matched sets,
        divided by the SMD denominator (MatchIt's "Std. Pair Dist.").

    Raises
    ------
    InputError
        When a column is missing, a covariate has missing values or is not numeric, a covariate
        listed in ``binary`` is not 0/1, or ``matched`` names ids that are not in ``data``.

    Notes
    -----
    SMD = (mean_t - mean_c) / s. After matching the treated mean is over the matched treated and
    the control mean is weighted. When s < sqrt(machine eps) (the covariate is constant among the
    treated) s falls back to MatchIt's pooled within-group SD; when the mean difference itself is
    below sqrt(eps) the SMD is the raw difference (MatchIt). The eCDF statistics follow MatchIt's
    ``qqsum(standardize = TRUE)``. This function never warns; see :func:`check_balance`.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"patient_id": [1, 2, 3, 4], "t": [1, 1, 0, 0], "x": [1.0, 3.0, 2.0, 9.0]})
    >>> m = pd.DataFrame({"set_id": [1, 1, 2, 2], "patient_id": [1, 3, 2, 4],
    ...                   "role": ["treated", "control", "treated", "control"], "weight": 1.0})
    >>> round(float(balance_table(d, m, treatment="t", covariates=["x"]).loc[0, "smd_before"]), 4)
    -2.4749
    """
    if not isinstance(data, pd.DataFrame) or not isinstance(matched, pd.DataFrame):
        raise InputError("balance_table needs two DataFrames: the matching frame and the tidy matched table")
    if smd_denominator not in SMD_DENOMINATORS:
        raise InputError(
            f"smd_denominator must be one of {', '.join(map(repr, SMD_DENOMINATORS))}; got {smd_denominator!r}"
        )
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    binary = [binary] if isinstance(binary, str) else list(binary)
    absent = [c for c in [id_column, treatment, *covariates] if c not in data.columns]
    if absent:
        raise InputError(f"data has no column(s) {absent}; columns present: {list(data.columns)}")
    unknown_bin = [c for c in binary if c not in covariates]
    if unknown_bin:
        raise InputError(f"binary names {unknown_bin}, which are not among the covariates {covariates}")
    for c in ("patient_id", "role"):
        if c not in matched.columns:
            raise InputError(f"the matched table has no column {c!r}; columns present: {list(matched.columns)}")

    ids = data[id_column]
    t = data[treatment].to_numpy().astype(int)
    w_col = matched["weight"] if "weight" in matched.columns else pd.Series(1.0, index=matched.index)
    # positions of the matched ids in data (hash the few matched ids, not the whole frame)
    m_ids = pd.unique(matched["patient_id"].to_numpy())
    rows_m = np.flatnonzero(ids.isin(m_ids).to_numpy())
    pos = pd.Series(rows_m, index=ids.to_numpy()[rows_m])
    pos = pos[~pos.index.duplicated(keep="first")]
    unknown = ~matched["patient_id"].isin(pos.index)
    if unknown.any():
        bad = matched.loc[unknown]
        for role in ("treated", "control"):
            ids_bad = pd.unique(bad.loc[bad["role"] == role, "patient_id"])
            if len(ids_bad):
                raise InputError(
                    f"the matched table names {len(ids_bad)} {role} id(s) not in data[{id_column!r}]: {ids_preview(ids_bad)}"
                )
    m_pos = pos.reindex(matched["patient_id"].to_numpy()).to_numpy(dtype=np.int64)
    w_after = np.zeros(len(data))
    np.add.at(w_after, m_pos, w_col.astype(float).to_numpy())
    t1, t0 = t == 1, t == 0
    pairs = None
    if "set_id" in matched.columns and len(matched):
        is_t = (matched["role"] == "treated").to_numpy()
        sid = matched["set_id"].to_numpy()
        t_of_set = pd.Series(m_pos[is_t], index=sid[is_t])
        ctrl = ~is_t
        pairs = (t_of_set.reindex(sid[ctrl]).to_numpy(), m_pos[ctrl])

    i1, i0 = np.flatnonzero(t1), np.flatnonzero(t0)
    wpos = np.flatnonzero(w_after > 0)  # after matching only weighted patients count
    a1, a0 = wpos[t1[wpos]], wpos[t0[wpos]]
    wa1, wa0 = w_after[a1], w_after[a0]
    rows = []
    for c in covariates:
        col = data[c]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            raise InputError(f"covariate {c!r} must be numeric; got dtype {col.dtype}")
        if col.isna().any():
            bad = ids[col.isna().to_numpy()].tolist()
            raise InputError(f"covariate {c!r} has missing values in {len(bad)} row(s) (ids: {ids_preview(bad)})")
        x = col.to_numpy(dtype=float)
        is01 = bool(np.all((x == 0) | (x == 1)))
        if c in binary and not is01:
            raise InputError(f"covariate {c!r} is listed as binary but holds values other than 0 and 1")
        is_bin = is01 or c in binary
        x1, x0 = x[i1], x[i0]
        mean_t = float(x1.mean()) if len(x1) else float("nan")
        mean_pool = float(x0.mean()) if len(x0) else float("nan")
        mean_tm = _wmean(x[a1], wa1)
        mean_m = _wmean(x[a0], wa0)
        if is_bin:
            v1, v0 = mean_t * (1 - mean_t), mean_pool * (1 - mean_pool)
        else:
            v1 = float(np.var(x1, ddof=1)) if len(x1) > 1 else float("nan")
            v0 = float(np.var(x0, ddof=1)) if len(x0) > 1 else float("nan")
        sd = float(np.sqrt(v1)) if smd_denominator == "treated" else float(np.sqrt((v1 + v0) / 2))
        if not np.isfinite(sd) or sd < _EPS:
            sd = _pooled_sd(x, t, is_bin)

        def smd(diff: float) -> float:
            if not np.isfinite(diff):
                return float("nan")
            if abs(diff) <= _EPS:
                return diff
            # no spread at all in either group (e.g. one treated patient, a constant covariate):
            # the SMD is undefined, not infinite
            return diff / sd if np.isfinite(sd) and sd > _EPS else float("nan")

        if is_bin:
            vr_before = vr_after = float("nan")
            e_before = (abs(mean_t - mean_pool),) * 2
            e_after = (abs(mean_tm - mean_m),) * 2
        else:
            vr_before = _ratio(v1, v0)
            vr_after = _ratio(_wvar(x[a1], wa1), _wvar(x[a0], wa0))
            e_before, e_after = _ecdf_before_after(x, x1, x[a1], wa1, x[a0], wa0)
        pair_dist = float("nan")
        if pairs is not None and len(pairs[1]):
            mp = float(np.mean(np.abs(x[pairs[0]] - x[pairs[1]])))
            # MatchIt standardises the pair distance only when it standardised the mean difference
            standardised = abs(mean_tm - mean_m) > _EPS and np.isfinite(sd) and sd > _EPS
            pair_dist = mp / sd if standardised and abs(mp) > 1e-8 else mp
        rows.append(
            {
                "covariate": c,
                "kind": "binary" if is_bin else "continuous",
                "mean_treated": mean_t,
                "mean_pool": mean_pool,
                "mean_treated_matched": mean_tm,
                "mean_matched": mean_m,
                "sd_denominator": sd,
                "smd_before": smd(mean_t - mean_pool),
                "smd_after": smd(mean_tm - mean_m),
                "var_ratio_before": vr_before,
                "var_ratio_after": vr_after,
                "ecdf_mean_before": e_before[0],
                "ecdf_max_before": e_before[1],
                "ecdf_mean_after": e_after[0],
                "ecdf_max_after": e_after[1],
                "std_pair_dist": pair_dist,
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["smd_denominator"] = SMD_DENOMINATORS[smd_denominator]
    return table


def check_balance(table: pd.DataFrame, threshold: float = 0.1) -> list[str]:
    """Warn about covariates whose |SMD| after matching exceeds ``threshold``.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`balance_table`.
    threshold : float
        Largest acceptable absolute SMD after matching (0.1 is the common rule of thumb; Austin
        2009).

    Returns
    -------
    list of str
        The imbalanced covariates (empty when all are balanced). A covariate with an undefined
        SMD after matching (no matched patients) counts as imbalanced.

    Warns
    -----
    BalanceWarning
        Once, naming every imbalanced covariate with its SMD.
    """
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not threshold > 0:
        raise InputError(f"threshold must be a positive number; got {threshold!r}")
    if not isinstance(table, pd.DataFrame) or not {"covariate", "smd_after"} <= set(table.columns):
        raise InputError("check_balance needs the DataFrame returned by balance_table()")
    smd = table["smd_after"].astype(float)
    bad = table.loc[~(smd.abs() <= threshold), ["covariate", "smd_after"]]
    names = bad["covariate"].astype(str).tolist()
    if names:
        detail = ", ".join(f"{c} ({s:+.3f})" for c, s in zip(bad["covariate"], bad["smd_after"]))
        warnings.warn(
            f"{len(names)} covariate(s) imbalanced after matching (|SMD| > {threshold}; {SMD_DENOMINATOR}): {detail}",
            BalanceWarning,
            stacklevel=2,
        )
    return names
