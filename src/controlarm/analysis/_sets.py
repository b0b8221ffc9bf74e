"""Analysis room: reading the endpoint frame as matched sets.

Every test of the room starts here. The frame has one row per matched patient (``set_id``,
``patient_id``, ``role`` and endpoint columns); this module checks it against the data contract,
drops missing outcomes the same way for every test, and hands back the sets, the pseudo-pairs of
the published-style analyses, or the de-duplicated arms of the unmatched ones. No library offers
this because the layout is controlarm's own (the tidy matched table, DESIGN section 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataContractError, InputError

__all__ = ["MatchedData", "arms", "check_endpoints", "prepare", "ratio_label"]

KEYS = ("set_id", "patient_id", "role")
ROLES = ("treated", "control")
KINDS = ("binary", "time_to_event", "continuous", "count")


def check_endpoints(endpoints: pd.DataFrame, endpoint_defs: Sequence[Any] = ()) -> None:
    """Check the endpoint frame against the data contract; raise with every problem found.

    Raises
    ------
    InputError
        When ``endpoints`` is not a DataFrame or an endpoint definition is malformed.
    DataContractError
        When the frame breaks the contract (missing columns, bad roles, a set without exactly one
        treated patient or without a control, non-binary values in a binary column, ...).
    """
    if not isinstance(endpoints, pd.DataFrame):
        raise InputError(f"endpoints must be a pandas DataFrame; got {type(endpoints).__name__}")
    names = [e.name for e in endpoint_defs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"endpoint names must be unique; got duplicates {dupes}")
    for e in endpoint_defs:
        if e.kind not in KINDS:
            raise InputError(f"endpoint {e.name!r}: kind must be one of {KINDS}; got {e.kind!r}")
        if e.kind == "time_to_event" and not e.event_column:
            raise InputError(f"endpoint {e.name!r}: a time_to_event endpoint needs event_column")
    problems: list[str] = []
    missing = [c for c in KEYS if c not in endpoints.columns]
    for e in endpoint_defs:
        for col in (e.column, e.event_column):
            if col and col not in endpoints.columns and col not in missing:
                missing.append(col)
    if missing:
        problems.append(f"endpoints: missing columns {missing}; have {list(endpoints.columns)}")
        raise DataContractError(problems)
    if endpoints.empty:
        raise DataContractError("endpoints: the frame has no rows; there is nothing to analyse")
    if endpoints[list(KEYS)].isna().any().any():
        problems.append("endpoints: set_id, patient_id and role must not be missing")
    bad_roles = sorted(set(endpoints["role"].dropna().astype(str)) - set(ROLES))
    if bad_roles:
        problems.append(f"endpoints.role must be 'treated' or 'control'; got {bad_roles}")
    n_treated = endpoints["role"].eq("treated").groupby(endpoints["set_id"]).sum()
    n_control = endpoints["role"].eq("control").groupby(endpoints["set_id"]).sum()
    wrong = n_treated.index[n_treated != 1].tolist()
    if wrong:
        problems.append(
            f"each matched set needs exactly 1 treated patient; sets {wrong[:10]} do not"
        )
    lonely = n_control.index[n_control < 1].tolist()
    if lonely:
        problems.append(f"each matched set needs at least 1 control; sets {lonely[:10]} have none")
    for e in endpoint_defs:
        problems += _check_column(endpoints, e.name, e.column, binary=e.kind == "binary")
        if e.kind == "time_to_event":
            problems += _check_column(endpoints, e.name, e.event_column, binary=True)
            t = pd.to_numeric(endpoints[e.column], errors="coerce")
            if (t < 0).any():
                problems.append(f"endpoint {e.name!r}: column {e.column!r} has negative times")
    if problems:
        raise DataContractError(problems)


def _check_column(df: pd.DataFrame, name: str, column: str, *, binary: bool) -> list[str]:
    values = df[column]
    if not (pd.api.types.is_numeric_dtype(values) or values.isna().all()):
        return [f"endpoint {name!r}: column {column!r} must be numeric; got dtype {values.dtype}"]
    if binary:
        bad = sorted(set(values.dropna().unique()) - {0, 1})
        if bad:
            return [f"endpoint {name!r}: column {column!r} must hold 0/1 (or NaN); got {bad[:5]}"]
    return []


def ratio_label(endpoints: pd.DataFrame) -> str:
    """The matching ratio as text: ``"1:3"``, or ``"1:1-3"`` when sets have 1 to 3 controls."""
    k = endpoints["role"].eq("control").groupby(endpoints["set_id"]).sum()
    lo, hi = int(k.min()), int(k.max())
    return f"1:{lo}" if lo == hi else f"1:{lo}-{hi}"


@dataclass(frozen=True)
class MatchedData:
    """One outcome's data, cut to the complete matched sets.

    Attributes
    ----------
    frame : DataFrame
        ``set_id, patient_id, role, y`` (and ``event`` for time to event) of the sets kept, sorted
        by set, treated first, then patient id.
    n_missing_treated, n_missing_control : int
        Patients (rows) whose outcome is missing.
    n_sets_input, n_sets_dropped : int
        Sets in the frame, and sets dropped because the treated patient or every control lacks
        the outcome.
    """

    frame: pd.DataFrame
    n_missing_treated: int
    n_missing_control: int
    n_sets_input: int
    n_sets_dropped: int

    @property
    def n_sets(self) -> int:
        return self.n_sets_input - self.n_sets_dropped

    def sets(self) -> list[tuple[float, np.ndarray]]:
        """``(treated value, control values)`` per set, in set order."""
        out = []
        for _, g in self.frame.groupby("set_id", sort=True):
            treated = g["role"].to_numpy() == "treated"
            y = g["y"].to_numpy(dtype=float)
            out.append((float(y[treated][0]), y[~treated]))
        return out

    def pseudo_pairs(self) -> pd.DataFrame:
        """One row per control with its set's treated patient: ``set_id, y_treated, y_control``
        (plus ``event_*`` for time to event)."""
        f = self.frame
        t = f[f["role"] == "treated"].drop(columns=["role"])
        c = f[f["role"] == "control"].drop(columns=["role"])
        pairs = c.merge(t, on="set_id", suffixes=("_control", "_treated"), validate="many_to_one")
        pairs = pairs.sort_values(["set_id", "patient_id_control"], kind="stable")
        return pairs.reset_index(drop=True)

    def conventions(self) -> dict[str, Any]:
        """The missing-data bookkeeping every matched-set test reports."""
        return {
            "missing_outcomes": "patients with a missing outcome are dropped; a set is dropped "
            "when its treated patient or all its controls are missing",
            "n_missing_treated": self.n_missing_treated,
            "n_missing_control": self.n_missing_control,
            "n_sets_dropped": self.n_sets_dropped,
            "n_sets_used": self.n_sets,
        }


def prepare(endpoints: pd.DataFrame, column: str, event_column: str | None = None) -> MatchedData:
    """Cut one outcome to its complete matched sets, without touching ``endpoints``."""
    cols = [*KEYS, column] + ([event_column] if event_column else [])
    df = endpoints.loc[:, cols].copy()
    df = df.rename(columns={column: "y"} | ({event_column: "event"} if event_column else {}))
    df["y"] = df["y"].astype(float)
    value_cols = ["y", "event"] if event_column else ["y"]
    if event_column:
        df["event"] = df["event"].astype(float)
    miss = df[value_cols].isna().any(axis=1)
    n_missing_t = int((miss & (df["role"] == "treated")).sum())
    n_missing_c = int((miss & (df["role"] == "control")).sum())
    n_sets_input = int(df["set_id"].nunique())
    df = df[~miss]
    has_t = df["role"].eq("treated").groupby(df["set_id"]).transform("any")
    has_c = df["role"].eq("control").groupby(df["set_id"]).transform("any")
    df = df[has_t & has_c]
    df = df.assign(_order=(df["role"] != "treated").astype(int))
    df = df.sort_values(["set_id", "_order", "patient_id"], kind="stable").drop(columns="_order")
    return MatchedData(
        frame=df.reset_index(drop=True),
        n_missing_treated=n_missing_t,
        n_missing_control=n_missing_c,
        n_sets_input=n_sets_input,
        n_sets_dropped=n_sets_input - int(df["set_id"].nunique()),
    )


def arms(endpoints: pd.DataFrame, column: str, event_column: str | None = None) -> dict[str, Any]:
    """Each arm as distinct patients, for the unmatched analyses and the arm summaries.

    A control matched to several sets (matching with replacement) counts once. Returns
    ``{"treated": frame, "control": frame, "n_missing": {...}, "n_duplicates": int}`` where each
    frame has ``patient_id, y`` (and ``event``) with missing outcomes dropped.
    """
    cols = ["patient_id", "role", column] + ([event_column] if event_column else [])
    df = endpoints.loc[:, cols].rename(
        columns={column: "y"} | ({event_column: "event"} if event_column else {})
    )
    n_rows = len(df)
    df = df.drop_duplicates(subset=["role", "patient_id"], keep="first")
    value_cols = ["y", "event"] if event_column else ["y"]
    miss = df[value_cols].isna().any(axis=1)
    out: dict[str, Any] = {"n_missing": {}, "n_duplicates": n_rows - len(df)}
    for role in ROLES:
        sub = df[df["role"] == role]
        out["n_missing"][role] = int(miss[sub.index].sum())
        keep = sub[~miss[sub.index]].sort_values("patient_id", kind="stable")
        out[role] = keep.drop(columns="role").astype({c: float for c in value_cols})
    return out
