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

__all__ = ["balance_table", "check_balance", "SMD_DENOMINATOR"]

SMD_DENOMINATOR = "SD of the treated group before matching (MatchIt ATT convention; binary: sqrt(p(1-p)))"
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


def balance_table(
    data: pd.DataFrame,
    matched: pd.DataFrame,
    *,
    treatment: str,
    covariates: Sequence[str],
    binary: Sequence[str] = (),
    id_column: str = "patient_id",
) -> pd.DataFrame:
    """Balance of each covariate before and after matching.

    Parameters
    ----------
    data : DataFrame
        The matching frame: one row per patient with ``id_column``, ``treatment`` (1/0) and the
        covariates. "Before matching" compares all treated with all candidate controls (the pool).
    matched : DataFrame
        The tidy matched table (``patient_id``, ``role``, and ``weight``; without ``weight`` every
        row counts 1). A patient's weight is the sum of its rows' weights.
    treatment, covariates, id_column : str, sequence of str, str
        Column names in ``data``.
    binary : sequence of str
        Covariates to treat as binary (they must hold only 0/1). Covariates whose values are all
        0 or 1 are binary anyway, as in MatchIt.

    Returns
    -------
    DataFrame
        One row per covariate: ``covariate, kind, mean_treated, mean_pool, mean_treated_matched,
        mean_matched, sd_denominator, smd_before, smd_after, var_ratio_before, var_ratio_after``.
        ``attrs["smd_denominator"]`` states the SMD convention. Variance ratios (treated / control)
        are NaN for binary covariates.

    Raises
    ------
    InputError
        When a column is missing, a covariate has missing values or is not numeric, a covariate
        listed in ``binary`` is not 0/1, or ``matched`` names ids that are not in ``data``.

    Notes
    -----
    SMD = (mean_t - mean_c) / s, where s is the SD (n - 1) of the treated group in the full sample,
    or sqrt(p (1 - p)) for a binary covariate; after matching the treated mean is over the
    matched treated and the control mean is weighted. When s < sqrt(machine eps) (the covariate is
    constant among the treated) s falls back to MatchIt's pooled within-group SD; when the mean
    difference itself is below sqrt(eps) the SMD is the raw difference (MatchIt). This function
    never warns; see :func:`check_balance`.

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
    w_by = w_col.astype(float).groupby([matched["role"], matched["patient_id"]]).sum()
    pos = pd.Series(np.arange(len(data)), index=ids.to_numpy())
    w_after = np.zeros(len(data))
    for role in ("treated", "control"):
        if role not in w_by.index.get_level_values(0):
            continue
        part = w_by.loc[role]
        missing = [i for i in part.index if i not in pos.index]
        if missing:
            raise InputError(
                f"the matched table names {len(missing)} {role} id(s) not in data[{id_column!r}]: {ids_preview(missing)}"
            )
        w_after[pos.loc[part.index].to_numpy()] += part.to_numpy()
    t1, t0 = t == 1, t == 0

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
        ones = np.ones(len(x))
        mean_t = _wmean(x[t1], ones[t1])
        mean_pool = _wmean(x[t0], ones[t0])
        mean_tm = _wmean(x[t1], w_after[t1])
        mean_m = _wmean(x[t0], w_after[t0])
        if is_bin:
            sd = float(np.sqrt(mean_t * (1 - mean_t)))
        else:
            sd = float(np.std(x[t1], ddof=1)) if t1.sum() > 1 else float("nan")
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
        else:
            vr_before = _ratio(_wvar(x[t1], ones[t1]), _wvar(x[t0], ones[t0]))
            vr_after = _ratio(_wvar(x[t1], w_after[t1]), _wvar(x[t0], w_after[t0]))
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
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["smd_denominator"] = SMD_DENOMINATOR
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
