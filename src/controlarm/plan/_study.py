"""Plan room: the confirmatory trial planned from a finished analysis.

Two steps, so that ``results.json`` can carry what is needed to plan again:

1. :func:`plan_inputs` reduces a study run to aggregate inputs: the control arm's outcome
   distribution (matched controls, and the whole eligible pool when it was derived) and the
   observed effect of each endpoint with its confidence interval. No patient id, no row-level
   data: day-28 deaths as counts, free days as counts per value, a log-scale lab as mean and SD.
2. :func:`plan_trial` turns the inputs and :class:`PlanSettings` into sample sizes per endpoint
   for each assumed effect ("observed", the CI limit nearer to no effect, the farther one, or
   user values) and power curves around each size.

Endpoints and the effect each uses:

* binary mortality (the first ``alive_dN`` endpoint): death risk difference, from the analysis
  room's matched Mantel-Haenszel risk difference of survival (sign flipped);
* time to death: the stratified Cox hazard ratio when estimable, else the hazard ratio implied by
  the day-N mortality of the two arms under exponential survival, ``log(1 - p_t) / log(1 - p_c)``;
* free days: an additive shift, the analysis room's Hodges-Lehmann set difference;
* continuous labs: the set-level mean difference of log values (ratio of geometric means), with a
  t interval over sets, and the controls' SD of log values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._json import json_safe
from ..errors import ControlarmError, InputError
from ._binary import plan_binary
from ._continuous import plan_continuous
from ._curves import power_curve
from ._free_days import plan_free_days
from ._survival import plan_survival

__all__ = ["PlanSettings", "plan_inputs", "plan_trial", "EFFECTS"]

#: Assumed-effect scenarios (name -> meaning).
EFFECTS = {
    "observed": "the effect observed in the matched analysis",
    "ci_near_null": "the confidence limit nearer to no effect (a cautious assumption)",
    "ci_far": "the confidence limit farther from no effect (an optimistic assumption)",
    "user": "values given in the study file's plan section or on the command line",
}


@dataclass(frozen=True)
class PlanSettings:
    """How to plan: control distribution, effect scenarios, alpha, power, allocation, dropout.

    ``control`` is ``"matched"`` (the matched controls) or ``"pool"`` (every eligible pool
    candidate). ``effects`` lists scenarios from :data:`EFFECTS`. User values: ``p_treated``
    (treated mortality), ``hazard_ratio``, ``free_days_shift`` (days), ``lab_ratio`` (ratio of
    geometric means, treated / control). ``workers`` never changes a result.
    """

    control: str = "matched"
    effects: tuple[str, ...] = ("observed", "ci_near_null")
    alpha: float = 0.05
    power: float = 0.8
    allocation: float = 1.0
    dropout: float = 0.0
    n_sims: int = 2000
    seed: int = 0
    workers: int | None = 1
    p_treated: float | None = None
    hazard_ratio: float | None = None
    free_days_shift: float | None = None
    lab_ratio: float | None = None
    curves: bool = True

    def __post_init__(self) -> None:
        if self.control not in ("matched", "pool"):
            raise InputError(f"plan.control must be 'matched' or 'pool'; got {self.control!r}")
        bad = [e for e in self.effects if e not in EFFECTS]
        if bad or not self.effects:
            raise InputError(f"plan.effects must be a non-empty list from {list(EFFECTS)}; got "
                             f"{list(self.effects)!r}")

    @classmethod
    def from_spec(cls, spec: Any, *, alpha: float, seed: int, **override: Any) -> "PlanSettings":
        """From a ``[plan]`` section (``alpha`` None there means ``[analysis] alpha``)."""
        keys = ("control", "effects", "power", "allocation", "dropout", "n_sims", "p_treated",
                "hazard_ratio", "free_days_shift", "lab_ratio", "curves")
        kw = {k: getattr(spec, k) for k in keys if hasattr(spec, k)}
        kw["effects"] = tuple(kw.get("effects", cls.effects))
        a = getattr(spec, "alpha", None)
        kw.update(alpha=alpha if a is None else a, seed=seed, **override)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("workers", None)  # never changes a result, so not part of the record
        return json_safe(d)


# --------------------------------------------------------------------------- inputs
def _est(outcome: Mapping[str, Any] | None, name: str) -> dict[str, Any] | None:
    for e in (outcome or {}).get("estimates", []) or []:
        if e.get("name") == name and e.get("value") is not None:
            return {"observed": e.get("value"), "ci_low": e.get("ci_low"),
                    "ci_high": e.get("ci_high"), "source": name}
    return None


def _arm(frame: pd.DataFrame, column: str, role: str | None) -> pd.Series:
    d = frame if role is None else frame.loc[frame["role"] == role]
    return d[column].dropna().astype(float)


def _counts(x: pd.Series) -> dict[str, list]:
    v, c = np.unique(x.to_numpy(), return_counts=True)
    return {"values": [float(a) for a in v], "counts": [int(b) for b in c]}


def _log_lab(endpoints: pd.DataFrame, column: str) -> dict[str, Any] | None:
    """Set-level mean difference of log values with a t interval over sets."""
    d = endpoints.loc[endpoints[column].notna() & (endpoints[column] > 0), ["set_id", "role", column]]
    d = d.assign(y=np.log(d[column].astype(float)))
    tr = d[d["role"] == "treated"].groupby("set_id")["y"].mean()
    co = d[d["role"] == "control"].groupby("set_id")["y"].mean()
    diff = (tr - co).dropna()
    if diff.size < 2:
        return None
    m, se = float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(diff.size))
    q = float(stats.t.ppf(0.975, diff.size - 1))
    return {"observed": m, "ci_low": m - q * se, "ci_high": m + q * se,
            "source": f"mean over {diff.size} sets of (log treated - mean log controls), t interval"}


def plan_inputs(endpoints: pd.DataFrame, endpoint_defs: Sequence[Any],
                outcomes: Mapping[str, Any], *,
                pool_endpoints: pd.DataFrame | None = None) -> dict[str, Any]:
    """Aggregate inputs of the plan from a study run (see the module docstring).

    Parameters
    ----------
    endpoints : DataFrame
        The run's endpoint frame (``set_id, role`` plus endpoint columns), matched patients.
    endpoint_defs : sequence of Endpoint
    outcomes : mapping
        ``Results.to_dict()["outcomes"]`` (estimates and their CIs).
    pool_endpoints : DataFrame, optional
        Endpoint columns of every eligible pool candidate (for ``control = "pool"``).

    Returns
    -------
    dict
        JSON-ready: ``mortality``, ``survival``, ``free_days`` (list), ``continuous`` (list).
    """
    sources = {"matched": endpoints.loc[endpoints["role"] == "control"]}
    if pool_endpoints is not None:
        sources["pool"] = pool_endpoints
    out: dict[str, Any] = {"mortality": None, "survival": None, "free_days": [], "continuous": []}
    alive = sorted((d for d in endpoint_defs if d.kind == "binary" and d.name.startswith("alive_d")
                    and d.column in endpoints.columns), key=lambda d: int(d.name[7:]))
    if alive:
        d = alive[0]
        ctrl = {}
        for src, frame in sources.items():
            if d.column in frame.columns:
                x = _arm(frame, d.column, None)
                ctrl[src] = {"n": int(x.size), "deaths": int((x == 0).sum())}
        t = _arm(endpoints, d.column, "treated")
        rd = _est(outcomes.get(d.name), "mh_risk_difference")
        if rd is not None:  # survival difference -> death difference
            rd = {"observed": -rd["observed"],
                  "ci_low": None if rd["ci_high"] is None else -rd["ci_high"],
                  "ci_high": None if rd["ci_low"] is None else -rd["ci_low"],
                  "source": "mh_risk_difference of survival, sign flipped (death, treated - control)"}
        out["mortality"] = {"endpoint": d.name, "day": int(d.name[7:]), "control": ctrl,
                            "treated": {"n": int(t.size), "deaths": int((t == 0).sum())},
                            "effect": rd}
        days = [int(a.name[7:]) for a in alive]
        tte = next((e for e in endpoint_defs if e.kind == "time_to_event"), None)
        hr = _est(outcomes.get(tte.name), "hr_cox_stratified_by_set") if tte is not None else None
        out["survival"] = {"endpoint": tte.name if tte is not None else None,
                           "follow_up_days": max(days), "at_day": int(d.name[7:]),
                           "effect": hr}
    for d in endpoint_defs:
        if d.column not in endpoints.columns:
            continue
        if d.kind == "count" and "free_days" in d.name:
            ctrl = {src: _counts(_arm(f, d.column, None)) for src, f in sources.items()
                    if d.column in f.columns}
            out["free_days"].append({"endpoint": d.name, "label": d.label, "control": ctrl,
                                     "effect": _est(outcomes.get(d.name),
                                                    "hodges_lehmann_set_difference")})
        elif d.kind == "continuous":
            ctrl = {}
            for src, f in sources.items():
                if d.column in f.columns:
                    x = _arm(f, d.column, None)
                    x = np.log(x[x > 0])
                    # The source is always recorded, usable or not: a missing key means "this
                    # control distribution was not derived" (plan_trial refuses that), whereas
                    # fewer than two values > 0 only leaves this one endpoint unplanned.
                    ok = x.size >= 2
                    ctrl[src] = {"n": int(x.size), "mean_log": float(x.mean()) if ok else None,
                                 "sd_log": float(x.std(ddof=1)) if ok else None}
            out["continuous"].append({"endpoint": d.name, "label": d.label, "scale": "log",
                                      "unit": getattr(d, "unit", ""), "control": ctrl,
                                      "effect": _log_lab(endpoints, d.column)})
    return json_safe(out)


# --------------------------------------------------------------------------- plan
def _pick(effect: Mapping[str, Any] | None, scenario: str, null: float, user: float | None
          ) -> tuple[float | None, str | None]:
    """The assumed effect of a scenario, or why there is none."""
    if scenario == "user":
        return (user, None) if user is not None else (None, "no user value given")
    if effect is None or effect.get("observed") is None:
        return None, "the analysis gave no estimate"
    if scenario == "observed":
        return float(effect["observed"]), None
    lo, hi = effect.get("ci_low"), effect.get("ci_high")
    if lo is None or hi is None:
        return None, "the analysis gave no confidence interval"
    if lo <= null <= hi:
        if scenario == "ci_near_null":
            return None, ("the confidence interval includes no effect: a trial powered on its "
                          "nearer limit would need infinitely many patients")
    near, far = (lo, hi) if abs(lo - null) <= abs(hi - null) else (hi, lo)
    return float(near if scenario == "ci_near_null" else far), None


#: Simulated trials per point of a power curve (at most): the curve is a picture, each point
#: carries its Monte Carlo SE, and the planned size itself uses the full ``n_sims``.
CURVE_SIMS = 500


def _grid(n: int) -> list[int]:
    return sorted({max(2, int(round(v))) for v in np.linspace(max(2, n / 4), 2 * n, 5)} | {n})


def plan_trial(inputs: Mapping[str, Any], settings: PlanSettings) -> dict[str, Any]:
    """Sample sizes per endpoint for each assumed effect, and power curves.

    Parameters
    ----------
    inputs : mapping
        From :func:`plan_inputs` (or ``results.json``'s ``plan.inputs``).
    settings : PlanSettings

    Returns
    -------
    dict
        ``settings``, ``inputs``, ``scenarios`` (one per effect: ``effect``, ``meaning``,
        ``endpoints`` as ``SampleSize.to_dict()`` plus ``name`` and ``assumed``, and
        ``not_planned`` with the reason) and ``curves`` (power against control-arm size around
        each size of the first scenario that planned the endpoint).

    Raises
    ------
    InputError
        ``control = "pool"`` but the inputs hold no pool distribution.
    """
    s = settings
    src = s.control
    common = dict(alpha=s.alpha, power=s.power, allocation=s.allocation, dropout=s.dropout,
                  n_sims=s.n_sims, seed=s.seed, workers=s.workers)
    needs_pool = [e for e in [inputs.get("mortality")] + list(inputs.get("free_days") or [])
                  + list(inputs.get("continuous") or []) if e and src not in e.get("control", {})]
    if needs_pool:
        raise InputError(f"plan.control = {src!r}, but the run holds no {src} control "
                         f"distribution for {needs_pool[0]['endpoint']}. Fix: run the study with "
                         f"[plan] control = \"{src}\", or plan from the matched controls "
                         "(--control matched).")
    scenarios, curves, curve_done = [], [], set()
    for scen in s.effects:
        planned, skipped = [], []

        def add(name: str, label: str, fn, curve):
            try:
                res = fn()
            except ControlarmError as exc:
                skipped.append({"name": name, "endpoint": label, "reason": str(exc)})
                return
            planned.append({"name": name, **res.to_dict()})
            if s.curves and name not in curve_done:
                curve_done.add(name)
                kind, effect = curve
                n_curve = min(s.n_sims, CURVE_SIMS)
                frame = power_curve(kind, _grid(res.n_control), alpha=s.alpha,
                                    allocation=s.allocation, n_sims=n_curve, seed=s.seed,
                                    workers=s.workers, **effect)
                curves.append({"name": name, "endpoint": label, "effect_scenario": scen,
                               "n_control_planned": res.n_control, "target_power": s.power,
                               "n_simulations": n_curve,
                               "points": frame.drop(columns="endpoint").to_dict("records")})

        mort = inputs.get("mortality")
        if mort:
            c = mort["control"][src]
            p_c = c["deaths"] / c["n"] if c["n"] else float("nan")
            user = None if s.p_treated is None else s.p_treated - p_c
            rd, why = _pick(mort.get("effect"), scen, 0.0, user)
            label = f"death by day {mort['day']}"
            if not c["n"]:
                rd, why = None, f"no {src} control has the outcome"
            if rd is None:
                skipped.append({"name": mort["endpoint"], "endpoint": label, "reason": why})
            else:
                p_t = p_c + rd
                add(mort["endpoint"], label,
                    lambda: _named(plan_binary(p_c, _prob(p_t, "treated mortality"), **common),
                                   label),
                    ("binary", {"p_control": p_c, "p_treated": p_t}))
                surv = inputs.get("survival") or {}
                hr_in = surv.get("effect")
                if hr_in is not None:
                    hr, why = _pick({k: (v if k == "source" or v is None else math.log(v))
                                     for k, v in hr_in.items()}, scen, 0.0,
                                    None if s.hazard_ratio is None else math.log(s.hazard_ratio))
                    hr = None if hr is None else math.exp(hr)
                elif scen == "user" and s.hazard_ratio is not None:
                    hr, why = s.hazard_ratio, None
                else:  # implied by the day-N mortality under exponential survival
                    hr = (math.log(1 - p_t) / math.log(1 - p_c)) if 0 < p_t < 1 and 0 < p_c < 1 \
                        else None
                    why = "the assumed mortality gives no hazard ratio" if hr is None else None
                tlabel = f"time to death (to day {surv.get('follow_up_days')})"
                if hr is None or not 0 < p_c < 1:
                    skipped.append({"name": surv.get("endpoint") or "time_to_death",
                                    "endpoint": tlabel, "reason": why or "no control deaths"})
                else:
                    lam = -math.log(1 - p_c) / surv["at_day"]
                    add(surv.get("endpoint") or "time_to_death", tlabel,
                        lambda: _named(plan_survival(hr, control_survival=1 - p_c,
                                                     at_day=surv["at_day"],
                                                     follow_up=surv["follow_up_days"], **common),
                                       tlabel),
                        ("survival", {"hazard_ratio": hr, "hazard_control": lam,
                                      "follow_up": surv["follow_up_days"]}))
        for fd in inputs.get("free_days") or []:
            shift, why = _pick(fd.get("effect"), scen, 0.0, s.free_days_shift)
            if shift is None or shift == 0:
                skipped.append({"name": fd["endpoint"], "endpoint": fd["label"],
                                "reason": why or "the assumed shift is 0"})
                continue
            c = fd["control"][src]
            values = np.repeat(c["values"], c["counts"]).tolist()
            add(fd["endpoint"], fd["label"],
                lambda: plan_free_days(values, shift=shift, endpoint=fd["label"], **common),
                ("free_days", {"control_values": values, "shift": shift}))
        for lab in inputs.get("continuous") or []:
            user = None if s.lab_ratio is None else _log(s.lab_ratio)
            diff, why = _pick(lab.get("effect"), scen, 0.0, user)
            c = lab["control"].get(src) or {}
            if c.get("sd_log") is None:
                why = (f"fewer than 2 {src} controls have a value > 0 "
                       f"(n = {c.get('n', 0)}): no control SD on the log scale")
            elif diff is not None and diff == 0:
                why = "the assumed difference is 0"
            if diff is None or diff == 0 or c.get("sd_log") is None:
                skipped.append({"name": lab["endpoint"], "endpoint": lab["label"],
                                "reason": why or "no assumed difference or no control values"})
                continue
            label = f"{lab['label']} (log scale)"
            add(lab["endpoint"], label,
                lambda: plan_continuous(diff, c["sd_log"], endpoint=label, **common),
                ("continuous", {"difference": diff, "sd": c["sd_log"]}))
        scenarios.append({"effect": scen, "meaning": EFFECTS[scen], "endpoints": planned,
                          "not_planned": skipped})
    return json_safe({"settings": s.to_dict(), "inputs": dict(inputs), "scenarios": scenarios,
                      "curves": curves,
                      "monte_carlo": "power simulated in fixed chunks of 1000 trials, each seeded "
                                     "by SeedSequence(seed).spawn; mc_se = sqrt(p (1 - p) / "
                                     "n_simulations); identical for any number of workers"})


def _prob(p: float, what: str) -> float:
    if not 0 < p < 1:
        raise InputError(f"the assumed {what} is {p:.3g}, outside (0, 1): no trial can be "
                         "planned on it. Fix: use another effect scenario or a user value")
    return p


def _log(ratio: float) -> float:
    if not ratio > 0:
        raise InputError(f"plan.lab_ratio must be > 0 (a ratio of geometric means); got {ratio!r}")
    return math.log(ratio)


def _named(res, endpoint: str):
    from dataclasses import replace

    return replace(res, endpoint=endpoint)
