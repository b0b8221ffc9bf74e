"""Audit room: the audit of a study's own binary outcomes, where the actual allocation is known.

A reader of the published study sees only the arm counts; the pipeline also knows how the events
fell across the matched sets. ``audit_study`` runs :func:`audit_matched_binary` on every binary
outcome with the design and counts a reader would see, then places the *actual* allocation in the
distribution over every allocation consistent with those counts, and names the common tests that
reproduce the study's own published-style p-value.

The actual allocation is kept as its canonical form only: the sorted multiset of set-level
``(controls, treated event, control events)`` triples, with no set id and no patient id, so
``results.json`` can carry it (aggregate data) and ``controlarm audit --results`` can audit again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._json import json_safe
from ..errors import InputError
from ._audit import MATCHED_TESTS, audit_matched_binary
from ._batch import config_tests

__all__ = ["audit_study", "actual_allocation", "audit_allocation", "PUBLISHED_STYLE_TEST"]

#: The published-style test of a binary outcome in the analysis room (McNemar on pseudo-pairs).
PUBLISHED_STYLE_TEST = "mcnemar_pseudo_pairs"


def actual_allocation(endpoints: pd.DataFrame, column: str, *, event_value: int
                      ) -> tuple[np.ndarray, dict[str, int]]:
    """The canonical allocation ``(k, t, c)`` per usable set, sorted, and what was dropped.

    A set is used when its treated patient's outcome is known and at least one control's is;
    controls with an unknown outcome are left out of their set. ``event_value`` is the value
    counted as the event (0 for "alive at day N", so that the event is death).
    """
    need = {"set_id", "role", column}
    if not need <= set(endpoints.columns):
        raise InputError(f"the endpoint frame needs the columns {sorted(need)}; got "
                         f"{sorted(endpoints.columns)}")
    d = endpoints.loc[endpoints[column].notna(), ["set_id", "role", column]]
    ev = (d[column].astype(float) == float(event_value)).astype(int)
    tr = d["role"] == "treated"
    t = ev[tr].groupby(d.loc[tr, "set_id"]).max()
    k = tr.eq(False).groupby(d["set_id"]).sum()
    c = ev[~tr].groupby(d.loc[~tr, "set_id"]).sum()
    all_sets = endpoints["set_id"].nunique()
    sets = sorted(set(t.index) & set(k[k > 0].index))
    rows = np.array([(int(k[s]), int(t[s]), int(c.get(s, 0))) for s in sets],
                    dtype=np.int64).reshape(-1, 3)
    order = np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0])) if len(rows) else []
    dropped = {"sets_without_outcome": int(all_sets - len(sets)),
               "controls_without_outcome": int(((endpoints["role"] == "control")
                                                & endpoints[column].isna()).sum())}
    return rows[order], dropped


def audit_allocation(allocation: Sequence[Sequence[int]], *, published_p: float | None = None,
                     alpha: float = 0.05, max_enumeration: int = 5_000, n_samples: int = 2_000,
                     seed: int = 0) -> dict[str, Any]:
    """Audit the counts of a known allocation and place the allocation in the distribution.

    Parameters
    ----------
    allocation : sequence of (k, t, c)
        Per matched set: controls, treated event (0/1) and control events.
    published_p : float, optional
        The study's own published-style p-value: the common tests that reproduce it are named.
    alpha, max_enumeration, n_samples, seed
        As in :func:`audit_matched_binary`.

    Returns
    -------
    dict
        ``audit`` (``AuditResult.to_dict()``), ``allocation`` (canonical), ``actual`` (each test's
        p-value on the actual allocation, and for each matched-set test ``share_at_or_below``:
        the weighted share of allocations whose p-value is at most the actual one, or for
        Rosenbaum's Gamma at least), and ``points`` (distinct p-values of the exact conditional
        and CMH tests with their weights, for figures).
    """
    cfg = np.asarray(allocation, dtype=np.int64).reshape(-1, 3)
    if cfg.size == 0:
        raise InputError("the allocation has no usable matched set (no set with a known treated "
                         "outcome and at least one control)")
    if (cfg[:, 0] < 1).any() or ((cfg[:, 1] != 0) & (cfg[:, 1] != 1)).any() \
            or (cfg[:, 2] < 0).any() or (cfg[:, 2] > cfg[:, 0]).any():
        raise InputError("each allocation row must be (k >= 1 controls, treated event 0 or 1, "
                         f"0 <= control events <= k); got {cfg.tolist()!r}")
    cfg = cfg[np.lexsort((cfg[:, 2], cfg[:, 1], cfg[:, 0]))]
    res = audit_matched_binary([int(k) + 1 for k in cfg[:, 0]], int(cfg[:, 1].sum()),
                               int(cfg[:, 2].sum()), published_p=published_p, alpha=alpha,
                               max_enumeration=max_enumeration, n_samples=n_samples, seed=seed)
    actual_p = config_tests(cfg, alpha)  # the path of the distribution, so ties compare equal
    frame = res.allocations
    w = frame["w_patient"].to_numpy(dtype=float)
    actual: dict[str, Any] = {}
    for name, p in actual_p.items():
        entry: dict[str, Any] = {"p": p}
        if name in MATCHED_TESTS and p is not None:
            x = frame[name].astype(float).to_numpy()
            ok = ~np.isnan(x)
            tol = 1e-12 * max(1.0, abs(p))
            hit = (x >= p - tol) if name == "rosenbaum_gamma" else (x <= p + tol)
            entry["share_at_or_below"] = float(w[ok & hit].sum() / w[ok].sum()) if ok.any() else None
        actual[name] = entry
    points = {}
    for name in ("exact_conditional", "mantel_haenszel"):
        x = frame[name].astype(float).round(12)
        g = pd.DataFrame({"p": x, "w": w}).dropna().groupby("p", sort=True)["w"].sum()
        points[name] = [[float(p), float(v)] for p, v in g.items()]
    return json_safe({"audit": res.to_dict(), "allocation": cfg.tolist(), "actual": actual,
                      "points": points})


def _event_value(defn: Any) -> int:
    return 0 if bool(getattr(defn, "higher_is_better", True)) else 1


def _event_label(defn: Any) -> str:
    label = str(getattr(defn, "label", defn.name))
    if defn.name.startswith("alive_d"):
        return f"death by day {defn.name[len('alive_d'):]}"
    return f"not '{label}'" if _event_value(defn) == 0 else label


def audit_study(endpoints: pd.DataFrame, endpoint_defs: Sequence[Any],
                outcomes: Mapping[str, Any], *, alpha: float = 0.05, seed: int = 0,
                max_enumeration: int = 5_000, n_samples: int = 2_000) -> dict[str, Any]:
    """Audit every binary outcome of a study run.

    Parameters
    ----------
    endpoints : DataFrame
        The run's endpoint frame (``set_id, patient_id, role`` plus endpoint columns).
    endpoint_defs : sequence of Endpoint
    outcomes : mapping
        ``Results.to_dict()["outcomes"]``: the analysis room's tests, whose published-style
        p-value is looked up among the common tests.
    alpha, seed, max_enumeration, n_samples
        As in :func:`audit_matched_binary`.

    Returns
    -------
    dict
        ``{"settings": {...}, "outcomes": {name: {...}}}``, JSON-ready, aggregates only.
    """
    out: dict[str, Any] = {}
    for defn in endpoint_defs:
        if defn.kind != "binary" or defn.column not in endpoints.columns:
            continue
        ev = _event_value(defn)
        cfg, dropped = actual_allocation(endpoints, defn.column, event_value=ev)
        entry: dict[str, Any] = {"label": defn.label, "event": _event_label(defn),
                                 "event_value": ev, "dropped": dropped}
        if len(cfg) == 0:
            entry["skipped"] = "no matched set with a known treated outcome and a known control"
            out[defn.name] = entry
            continue
        tests = {t.get("name"): t for t in (outcomes.get(defn.name) or {}).get("tests", [])}
        pub = tests.get(PUBLISHED_STYLE_TEST) or {}
        pub_p = pub.get("p_value")
        done = audit_allocation(cfg, published_p=pub_p if pub_p and 0 < pub_p <= 1 else None,
                                alpha=alpha, max_enumeration=max_enumeration,
                                n_samples=n_samples, seed=seed)
        checks = {}
        for name in ("exact_conditional", "mantel_haenszel", "mantel_haenszel_cc",
                     PUBLISHED_STYLE_TEST):
            a, b = (tests.get(name) or {}).get("p_value"), done["actual"].get(name, {}).get("p")
            if a is not None and b is not None:
                checks[name] = {"analysis_p": a, "audit_p": b,
                                "agree": bool(abs(a - b) <= 1e-9 * max(1.0, abs(a)))}
        entry.update(done)
        entry["published_style"] = {
            "test": PUBLISHED_STYLE_TEST, "p": pub_p,
            "identified": done["audit"]["identified"] if pub_p is not None else [],
        }
        entry["crosscheck_with_analysis"] = checks
        out[defn.name] = entry
    return json_safe({
        "settings": {"alpha": alpha, "seed": seed, "max_enumeration": max_enumeration,
                     "n_samples": n_samples,
                     "weighting": "patient-level configurations (every patient of an arm equally "
                                  "likely to be one with the event)"},
        "outcomes": out,
    })
