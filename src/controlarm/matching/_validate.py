"""Checks at the door of the matching room: the frame, the columns and the options.

Every check raises an ``InputError`` that says what is wrong, the rule, and what was received.
Nothing here changes ``data``; the arrays returned are fresh copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["CheckedInput", "check_input", "check_choice", "ids_preview"]


@dataclass(frozen=True)
class CheckedInput:
    """The validated arrays ``match()`` works on, all aligned with the rows of ``data``."""

    ids: np.ndarray  # object array of patient ids, data order
    treat: np.ndarray  # int8 array, 1 treated / 0 control
    X: np.ndarray  # float64 (n, p) covariate matrix
    strata: np.ndarray | None  # int codes of the exact strata, or None without exact matching


def ids_preview(ids: Sequence[object], limit: int = 5) -> str:
    """The first ``limit`` ids as text, with an ellipsis when there are more."""
    ids = list(ids)
    shown = ", ".join(map(str, ids[:limit]))
    return shown + (", ..." if len(ids) > limit else "")


def check_choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; raise an InputError otherwise."""
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"matching.{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def _names(name: str, value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    try:
        names = list(value)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"matching.{name} must be a list of column names; got {value!r}") from None
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise InputError(f"matching.{name} must hold column names (strings); got {bad!r}")
    dupes = sorted({v for v in names if names.count(v) > 1})
    if dupes:
        raise InputError(f"matching.{name} names a column more than once: {dupes}")
    return names


def _no_missing(data: pd.DataFrame, column: str, ids: pd.Series, what: str) -> None:
    missing = data[column].isna().to_numpy()
    if missing.any():
        bad = ids[missing].tolist()
        raise InputError(
            f"{what} column {column!r} has missing values in {len(bad)} row(s) (ids: {ids_preview(bad)}); "
            "matching needs complete data: exclude these rows before matching and count them in the flow"
        )


def check_input(
    data: object,
    *,
    treatment: str,
    covariates: Sequence[str],
    exact: Sequence[str],
    id_column: str,
    caliper_columns: Sequence[str] = (),
    allow_no_covariates: bool = False,
) -> CheckedInput:
    """Validate the matching frame and return aligned arrays.

    Raises
    ------
    InputError
        When ``data`` is not a DataFrame, a named column is missing, ids are missing or repeated,
        the treatment is not 1/0 (or bool), a covariate is not numeric, or a covariate or exact
        column has missing values (the message names the column, the count and up to 5 ids).
    """
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame with one row per patient; got {type(data).__name__}")
    covariates = _names("covariates", covariates)
    exact = _names("exact", exact)
    if not covariates and not allow_no_covariates:
        raise InputError("matching.covariates must name at least one covariate; got an empty list")
    if not isinstance(treatment, str) or not isinstance(id_column, str):
        raise InputError("treatment and id_column must be column names (strings)")
    caliper_columns = [c for c in caliper_columns if c not in covariates]
    needed = [id_column, treatment, *covariates, *exact, *caliper_columns]
    absent = [c for c in dict.fromkeys(needed) if c not in data.columns]
    if absent:
        raise InputError(f"data has no column(s) {absent}; columns present: {list(data.columns)}")
    both = sorted(set(covariates) & set(exact))
    if both:
        raise InputError(f"{both} cannot be both a distance covariate and an exact stratum")
    if treatment in covariates or treatment in exact:
        raise InputError(f"the treatment column {treatment!r} cannot also be a covariate or exact stratum")
    if len(data) == 0:
        raise InputError("data has no rows; there is nobody to match")

    ids = data[id_column]
    if ids.isna().any():
        raise InputError(f"id column {id_column!r} has {int(ids.isna().sum())} missing value(s); every row needs an id")
    dup = ids[ids.duplicated(keep=False)] if not ids.is_unique else ids.iloc[:0]
    if len(dup):
        raise InputError(
            f"id column {id_column!r} must be unique (one row per patient); "
            f"{dup.nunique()} id(s) repeat: {ids_preview(pd.unique(dup))}"
        )

    t = data[treatment]
    if t.isna().any():
        _no_missing(data, treatment, ids, "treatment")
    if pd.api.types.is_bool_dtype(t):
        treat = t.to_numpy(dtype=bool).astype(np.int8)
    else:
        values = set(pd.unique(t).tolist())
        if not values <= {0, 1, True, False}:
            raise InputError(
                f"treatment column {treatment!r} must hold 1 (treated) and 0 (candidate control) or booleans; "
                f"got values {sorted(map(str, values))[:10]}"
            )
        treat = t.to_numpy().astype(np.int8)
    n1 = int(treat.sum())
    n0 = int(len(treat) - n1)
    if n1 == 0 or n0 == 0:
        raise InputError(
            f"matching needs at least one treated and one candidate control; got {n1} treated and {n0} controls "
            f"in column {treatment!r}"
        )

    for c in [*covariates, *caliper_columns]:
        if not (pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c])):
            raise InputError(
                f"covariate {c!r} must be numeric (encode categories as 0/1 dummy columns); got dtype {data[c].dtype}"
            )
        _no_missing(data, c, ids, "covariate")
    for c in exact:
        _no_missing(data, c, ids, "exact")
    X = np.empty((len(data), len(covariates)), order="F")  # column-major: each covariate contiguous
    for j, c in enumerate(covariates):
        X[:, j] = data[c].to_numpy(dtype=float)
    if not np.isfinite(X).all():
        bad_col = covariates[int(np.where(~np.isfinite(X).all(axis=0))[0][0])]
        raise InputError(f"covariate {bad_col!r} has infinite values; covariates must be finite numbers")

    strata = None
    if exact:
        strata = data.groupby(list(exact), sort=True, dropna=False).ngroup().to_numpy(dtype=np.int64)

    return CheckedInput(ids=ids.to_numpy(dtype=object, copy=True), treat=treat, X=X, strata=strata)
