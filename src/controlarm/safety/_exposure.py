"""Exposure of the trial arm: administrations, doses in the protocol's unit, and adherence.

Room: ``safety``. Why own code: no Python library reports exposure to a cell-therapy schedule (dose
per kg from an absolute cell count and the weight, administrations against a protocol schedule with
a time tolerance); R's ``tern`` and ``admiral`` cover parts of it for CDISC data, Python has nothing.
The rows come out of the engine (``_queries``); the per-patient frames here are small (one row per
administration of a handful of trial patients), so they are worked in pandas.

Conventions (stated in every result):

* Day of an administration = hours since the patient's first administration / 24, one decimal;
  the first is day 0.0.
* Dose units: ``10^k <base>``, ``<coef> x 10^k <base>``, ``1e<k> <base>``, ``million <base>`` and a
  bare ``<base>`` (``cells``, ``mg``, ...), each optionally ``/kg``. Two units convert when their base
  is the same; an absolute amount becomes per-kg by dividing by the last ``vitals`` ``weight_kg``
  recorded at or before the administration in the trial hospitalization.
* Adherence: expected administration k (k = 1..n) at (k - 1) x interval after the first, on time when
  |actual - expected| <= tolerance (both edges on time). Actual administrations are aligned to the
  expected ones in time order by the alignment with the fewest deviations (then the smallest total
  time difference, then the earliest slot): an expected administration left without one is
  *missed*, an administration left without a slot is *extra*, an aligned one outside the tolerance
  is *late* or *early*. The dose of each aligned administration is checked against
  dose_min..dose_max (inclusive) in the schedule's unit: outside is *wrong dose*, not convertible
  is *dose not assessable*.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DoseUnit",
    "parse_dose_unit",
    "convert_dose",
    "derive_exposure",
    "derive_deviations",
    "DEVIATION_KINDS",
]

#: Deviation kinds, in display order.
DEVIATION_KINDS = ("missed", "late", "early", "wrong dose", "dose not assessable", "extra")
_REL = 1e-9  # relative tolerance of dose comparisons (unit conversion rounding)


@dataclass(frozen=True)
class DoseUnit:
    """A parsed dose unit: ``scale`` x ``base`` [per kg]."""

    text: str
    scale: float
    base: str
    per_kg: bool

    @property
    def absolute(self) -> bool:
        return not self.per_kg


_WORDS = {"thousand": 1e3, "million": 1e6, "billion": 1e9}


def parse_dose_unit(text: str | None) -> DoseUnit | None:
    """Parse a dose unit such as ``"10^6 cells/kg"``, ``"2 x 10^8 cells"`` or ``"mg"``.

    Returns None for an empty unit.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    t = str(text).strip().lower().replace("×", "x").replace("·", "x")
    t = re.sub(r"\s*/\s*", "/", re.sub(r"\s+", " ", t))
    if not t:
        return None
    per_kg = False
    if t.endswith("/kg"):
        per_kg, t = True, t[: -len("/kg")].strip()
    t = re.sub(r"^x\s*", "", t)
    scale = 1.0
    m = re.match(r"^(?:(\d+(?:\.\d+)?)\s*[x*]\s*)?10\s*\^\s*([+-]?\d+)\s*(.*)$", t)
    m2 = re.match(r"^(\d+(?:\.\d+)?)e([+-]?\d+)\s*(.*)$", t)
    m3 = re.match(r"^(thousand|million|billion)\s+(.*)$", t)
    if m:
        scale = float(m.group(1) or 1.0) * 10.0 ** int(m.group(2))
        t = m.group(3)
    elif m2:
        scale = float(m2.group(1)) * 10.0 ** int(m2.group(2))
        t = m2.group(3)
    elif m3:
        scale = _WORDS[m3.group(1)]
        t = m3.group(2)
    base = t.strip()
    if base in ("cell", "cells"):
        base = "cells"
    return DoseUnit(text=str(text).strip(), scale=scale, base=base, per_kg=per_kg)


def convert_dose(dose: float, unit: str | None, target: str | None, weight_kg: float | None) -> tuple[float, str]:
    """Convert one dose to ``target``; return ``(value, how)``.

    ``how`` is ``"same unit"``, ``"scaled"``, ``"divided by weight"``, ``"multiplied by weight"``,
    ``"no weight"`` (per-kg conversion impossible: value NaN) or ``"not convertible"`` (NaN).
    """
    if dose is None or (isinstance(dose, float) and math.isnan(dose)):
        return float("nan"), "no dose"
    src, dst = parse_dose_unit(unit), parse_dose_unit(target)
    if dst is None:
        return float(dose), "same unit"
    if src is None or src.base != dst.base:
        return float("nan"), "not convertible"
    value = float(dose) * src.scale / dst.scale
    if src.per_kg == dst.per_kg:
        same = src.scale == dst.scale
        return value, "same unit" if same else "scaled"
    w = None if weight_kg is None or (isinstance(weight_kg, float) and math.isnan(weight_kg)) else float(weight_kg)
    if w is None or w <= 0:
        return float("nan"), "no weight"
    if dst.per_kg:
        return value / w, "divided by weight"
    return value * w, "multiplied by weight"


def _target_unit(adm: pd.DataFrame, schedule) -> str:
    if schedule is not None and schedule.dose_unit.strip():
        return schedule.dose_unit.strip()
    units = adm["dose_unit"].dropna().astype(str).str.strip()
    units = units[units != ""]
    if units.empty:
        return ""
    counts = units.value_counts()
    return str(sorted(counts[counts == counts.max()].index)[0])


def derive_exposure(adm: pd.DataFrame, first: pd.Series, schedule) -> tuple[pd.DataFrame, str, list[str]]:
    """One row per administration with its number, day and dose in the target unit.

    Parameters
    ----------
    adm : DataFrame
        ``patient_id, admin_dttm, dose, dose_unit, weight_kg`` (administrations of the product to
        the trial patients).
    first : Series
        patient_id -> time of the first administration.
    schedule : ScheduleSpec or None

    Returns
    -------
    (DataFrame, str, list of str)
        Administrations with ``number`` (1-based, in time order), ``day``, ``dose_target``,
        ``conversion``; the target unit; notes (aggregate, no ids).
    """
    out = adm.sort_values(["patient_id", "admin_dttm", "dose"], kind="mergesort").reset_index(drop=True)
    out["number"] = out.groupby("patient_id").cumcount() + 1
    t0 = out["patient_id"].map(first)
    out["day"] = ((out["admin_dttm"] - t0).dt.total_seconds() / 86400.0).round(1)
    unit = _target_unit(out, schedule)
    conv = [convert_dose(d, u, unit, w) for d, u, w in zip(out["dose"], out["dose_unit"], out["weight_kg"])]
    out["dose_target"] = [c[0] for c in conv]
    out["conversion"] = [c[1] for c in conv]
    notes: list[str] = []
    n_all = len(out)
    by_weight = int((out["conversion"] == "divided by weight").sum())
    if by_weight:
        src = sorted(set(out.loc[out["conversion"] == "divided by weight", "dose_unit"].astype(str)))
        notes.append(
            f"{by_weight} of {n_all} administrations were recorded as an absolute amount "
            f"({', '.join(src)}) and divided by the patient's last weight (vitals weight_kg) recorded at "
            f"or before the administration, to give {unit}."
        )
    for how, text in (("no weight", "had an absolute dose but no weight recorded before them; their dose in "
                                    f"{unit} is unknown"),
                      ("not convertible", f"had a dose unit that cannot be converted to {unit}"),
                      ("no dose", "had no dose recorded"),
                      ("multiplied by weight", f"were recorded per kg and multiplied by the weight to give {unit}")):
        k = int((out["conversion"] == how).sum())
        if k:
            notes.append(f"{k} of {n_all} administrations {text}.")
    return out, unit, notes


def _align(actual: list[float], expected: list[float], tol: float) -> list[tuple[int | None, int | None]]:
    """Order-preserving alignment of actual to expected times (hours from the first).

    Returns pairs ``(actual index or None, slot or None)``: matched, extra (slot None) or missed
    (actual None). Cost: number of deviations, then total |difference|, then earliest slot.
    """
    m, n = len(actual), len(expected)
    inf = (math.inf, math.inf)
    # best[i][k]: cost of aligning actual[i:] with expected[k:]
    best = [[inf] * (n + 1) for _ in range(m + 1)]
    move: list[list[str | None]] = [[None] * (n + 1) for _ in range(m + 1)]
    best[m][n] = (0, 0.0)
    for i in range(m, -1, -1):
        for k in range(n, -1, -1):
            if i == m and k == n:
                continue
            options = []
            if i < m and k < n:
                d = abs(actual[i] - expected[k])
                c = best[i + 1][k + 1]
                options.append(((c[0] + (0 if d <= tol + 1e-9 else 1), c[1] + d), 0, "match"))
            first = i == 0 and k == 0 and m > 0  # the first administration always fills slot 1
            if k < n and not first:  # slot k missed
                c = best[i][k + 1]
                options.append(((c[0] + 1, c[1]), 2, "miss"))
            if i < m and not first:  # actual i extra
                c = best[i + 1][k]
                options.append(((c[0] + 1, c[1]), 1, "extra"))
            if options:
                cost, _, mv = min(options, key=lambda o: (o[0], o[1]))
                best[i][k], move[i][k] = cost, mv
    pairs: list[tuple[int | None, int | None]] = []
    i = k = 0
    while i < m or k < n:
        mv = move[i][k]
        if mv == "match":
            pairs.append((i, k))
            i, k = i + 1, k + 1
        elif mv == "miss":
            pairs.append((None, k))
            k += 1
        else:
            pairs.append((i, None))
            i += 1
    return pairs


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def derive_deviations(exposure: pd.DataFrame, patients: list[str], schedule, unit: str,
                      death_day: dict[str, float] | None = None) -> pd.DataFrame:
    """Every deviation from the protocol schedule, one row each.

    Parameters
    ----------
    exposure : DataFrame
        From :func:`derive_exposure`.
    patients : list of str
        Every treated patient (a patient without administrations misses every one).
    schedule : ScheduleSpec
    unit : str
        Unit of ``dose_target`` (the schedule's).
    death_day : dict, optional
        patient_id -> day of death after the first administration; a missed administration
        expected after it says so.

    Returns
    -------
    DataFrame
        ``patient_id, administration (slot number, or None for an extra), kind, expected_day,
        actual_day, dose, detail``.
    """
    cols = ["patient_id", "administration", "kind", "expected_day", "actual_day", "dose", "detail"]
    rows = []
    h = schedule.interval_hours
    tol = schedule.tolerance_hours
    expected = [k * h for k in range(schedule.n_administrations)]
    death_day = death_day or {}
    groups = dict(tuple(exposure.groupby("patient_id", sort=False)))
    for pid in patients:
        g = groups.get(pid)
        if g is None or g.empty:
            for k in range(schedule.n_administrations):
                rows.append((pid, k + 1, "missed", None, None, None, "no administration recorded"))
            continue
        g = g.sort_values("number")
        hours = ((g["admin_dttm"] - g["admin_dttm"].iloc[0]).dt.total_seconds() / 3600.0).tolist()
        for ai, slot in _align(hours, expected, tol):
            if ai is None:
                exp_day = round(expected[slot] / 24, 1)
                dd = death_day.get(pid)
                detail = f"expected day {exp_day:.1f} ± {tol / 24:.1f}"
                if dd is not None and dd * 24 < expected[slot] - tol:
                    detail += f"; the patient died on day {dd:.1f}"
                rows.append((pid, slot + 1, "missed", exp_day, None, None, detail))
                continue
            r = g.iloc[ai]
            dose = r["dose_target"]
            dose_out = None if pd.isna(dose) else float(dose)
            if slot is None:
                rows.append((pid, None, "extra", None, float(r["day"]), dose_out,
                             f"administration {int(r['number'])} on day {r['day']:.1f} has no scheduled slot"))
                continue
            diff = hours[ai] - expected[slot]
            exp_day = round(expected[slot] / 24, 1)
            if abs(diff) > tol + 1e-9:
                kind = "late" if diff > 0 else "early"
                rows.append((pid, slot + 1, kind, exp_day, float(r["day"]), dose_out,
                             f"day {r['day']:.1f}, expected day {exp_day:.1f} ± {tol / 24:.1f} "
                             f"({abs(diff):.1f} h {'after' if diff > 0 else 'before'})"))
            lo, hi = schedule.dose_min, schedule.dose_max
            if lo is None and hi is None:
                continue
            if dose_out is None:
                rows.append((pid, slot + 1, "dose not assessable", exp_day, float(r["day"]), None,
                             f"dose {r['dose']} {r['dose_unit']} cannot be expressed in {unit} ({r['conversion']})"))
                continue
            below = lo is not None and dose_out < lo * (1 - _REL)
            above = hi is not None and dose_out > hi * (1 + _REL)
            if below or above:
                rng_text = f"{'' if lo is None else _fmt(lo)}–{'' if hi is None else _fmt(hi)}"
                rows.append((pid, slot + 1, "wrong dose", exp_day, float(r["day"]), dose_out,
                             f"dose {_fmt(dose_out)} {unit}, protocol {rng_text} {unit}"))
    out = pd.DataFrame(rows, columns=cols)
    order = {k: i for i, k in enumerate(DEVIATION_KINDS)}
    out["_o"] = out["kind"].map(order)
    out["_a"] = out["administration"].fillna(np.inf)
    pos = {p: i for i, p in enumerate(patients)}
    out["_p"] = out["patient_id"].map(pos)
    out = out.sort_values(["_p", "_a", "_o"], kind="mergesort").drop(columns=["_o", "_a", "_p"])
    return out.reset_index(drop=True)
