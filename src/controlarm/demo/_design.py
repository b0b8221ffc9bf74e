"""The designed part of the demo: 8 trial patients, their 24 matched "twins", and the margins.

Everything the published aggregates depend on is fixed here, by hand, and does not change with the
seed: trial covariates and courses, the twins' courses (who dies and when, who is intubated), and the
day-7 D-dimer values. The seed only jitters the twins' covariates around their trial patient and
their calendar dates, and draws the random pool (``_pool.py``).

Source of the aggregates: Grégoire C, Layios N, Lambermont B, et al. Bone marrow-derived mesenchymal
stromal cell therapy in severe COVID-19: preliminary results of a phase I/II clinical trial.
Front Immunol 2022;13:932360. doi:10.3389/fimmu.2022.932360.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._timelines import DAY, HFNO, IMV, NC, NIPPV, ROOM_AIR, Script, script_free_days

__all__ = [
    "TrialSpec",
    "TRIAL",
    "TWIN_SCRIPTS",
    "TWIN_CONTEXT_DX",
    "POOL_CONTEXT_DX",
    "TRIAL_D7_DIMER",
    "CONTROL_D7_DIMER",
    "TWIN_TOLERANCE",
    "MARGIN",
    "MATCH_COVARIATES",
    "draw_twin_covariates",
    "jitter_script",
    "covariance_variants",
    "mahalanobis",
]

MATCH_COVARIATES = ("age", "male", "bmi", "crp", "days_since_admission")

#: Largest allowed gap between a twin and its trial patient on each matching covariate.
TWIN_TOLERANCE = {"age": 1.0, "bmi": 0.4, "crp": 3.0, "days_since_admission": 0.2}
#: Every other eligible candidate must be this many times farther from a trial patient than the
#: farthest of its own twins (under every covariance in ``covariance_variants``).
MARGIN = 3.0


@dataclass(frozen=True)
class TrialSpec:
    """One trial patient, as designed."""

    pid: str
    sex: str
    age: float
    height: float
    bmi: float
    crp: float
    dsa: float
    imv: bool
    index: str
    icu_lead: float
    script: Script
    dimer_d7: float
    dose: tuple[float, float, float]
    comorbidities: tuple[str, ...]


def _s(devices, icu_out, discharge, death=None, category="Home", ecmo=None) -> Script:
    return Script(tuple(devices), icu_out, discharge, death, category, ecmo)


_HF, _NC, _RA = HFNO, NC, ROOM_AIR

# Trial arm: 7 on HFNO and 1 on IMV at the first infusion (the index); 3 ever intubated (T04 at
# inclusion, T05 and T07 later); T04 on VV ECMO; nobody dies. T02 has the ischaemic stroke.
TRIAL: tuple[TrialSpec, ...] = (
    TrialSpec("T01", "Male", 58.4, 178, 31.2, 142.0, 3.4, False, "2020-06-18T11:00", 1.2,
              _s([(_HF, 0), (_NC, 2.5), (_RA, 6.5)], 4.5, 11),
              376.0, (1.5, 1.6, 1.5), ("I10", "E66.9")),
    TrialSpec("T02", "Male", 63.1, 172, 27.6, 96.0, 6.1, False, "2020-09-02T10:30", 1.6,
              _s([(_HF, 0), (_NC, 10.5), (_RA, 14)], 12, 27, category="Acute Inpatient Rehab Facility"),
              852.0, (2.0, 2.1, 1.9), ("E11.9", "I10")),
    TrialSpec("T03", "Female", 49.2, 165, 35.8, 188.0, 2.2, False, "2020-10-27T14:00", 0.8,
              _s([(_HF, 0), (_NC, 3.5), (_RA, 6)], 5, 10),
              180.0, (2.6, 2.5, 2.6), ("E66.9",)),
    TrialSpec("T04", "Male", 66.0, 175, 25.9, 52.0, 8.3, True, "2020-11-16T09:30", 3.5,
              _s([(IMV, 0), (_HF, 24), (_NC, 27.5), (_RA, 31)], 27, 38,
                 category="Acute Inpatient Rehab Facility", ecmo=(2.0, 12.0)),
              3800.0, (1.8, 1.8, 1.7), ("E11.9", "I10")),
    TrialSpec("T05", "Male", 44.5, 181, 33.0, 212.0, 4.6, False, "2021-02-09T12:00", 1.1,
              _s([(_HF, 0), (IMV, 1.5), (_HF, 12.5), (_NC, 18), (_RA, 21)], 19, 27),
              1500.0, (3.0, 2.9, 3.0), ("E66.9",)),
    TrialSpec("T06", "Female", 61.3, 160, 26.3, 118.0, 1.5, False, "2021-04-06T10:00", 0.7,
              _s([(_HF, 0), (_NC, 4.5), (_RA, 8)], 6.5, 13),
              320.0, (2.2, 2.3, 2.2), ("I10",)),
    TrialSpec("T07", "Male", 55.2, 170, 28.4, 74.0, 9.7, False, "2021-06-22T11:30", 2.0,
              _s([(_HF, 0), (IMV, 3), (_HF, 14), (_NC, 19), (_RA, 22)], 20, 27),
              1240.0, (1.7, 1.6, 1.7), ()),
    TrialSpec("T08", "Male", 68.0, 174, 30.6, 165.0, 5.2, False, "2021-09-14T10:00", 1.3,
              _s([(_HF, 0), (_NC, 9.5), (_RA, 13)], 11, 18),
              790.0, (2.4, 2.4, 2.5), ("E11.9", "I10", "N18.3")),
)

# Twins' courses, three per trial patient. Deaths by day 28: one in each of the sets of T01, T02,
# T03, T06 and T08 (days 10-27); by day 60 also one in T04's set (in the ICU, day 34) and a second
# one in T08's set (after discharge to long-term care, day 47). Eight twins are intubated after the
# index; T04's twins are on IMV at the index like T04.
TWIN_SCRIPTS: dict[str, tuple[Script, Script, Script]] = {
    "T01": (
        _s([(_HF, 0), (_NC, 2), (_RA, 4.5)], 3, 9),
        _s([(_HF, 0), (_NC, 3), (_RA, 6)], 4, 10),
        _s([(_HF, 0), (IMV, 2.5)], None, 19.3, death=19.3),
    ),
    "T02": (
        _s([(_HF, 0), (_NC, 5), (_RA, 7.5)], 6, 12),
        _s([(_HF, 0), (NIPPV, 1), (_HF, 1.5), (_NC, 4), (_RA, 7)], 5, 12),
        _s([(_HF, 0), (IMV, 2)], None, 13.6, death=13.6),
    ),
    "T03": (
        _s([(_HF, 0), (IMV, 1.5)], None, 23.2, death=23.2, ecmo=(4.0, 20.0)),
        _s([(_HF, 0), (_NC, 4), (_RA, 6)], 5, 10),
        _s([(_HF, 0), (_NC, 2.5), (_RA, 5)], 3.5, 9),
    ),
    "T04": (
        _s([(IMV, 0), (_HF, 10), (_NC, 12.5), (_RA, 16)], 14, 22),
        _s([(IMV, 0)], None, 34.4, death=34.4),
        _s([(IMV, 0), (_HF, 8), (_NC, 10), (_RA, 14)], 12, 20),
    ),
    "T05": (
        _s([(_HF, 0), (_NC, 6), (_RA, 8.5)], 7.5, 13),
        _s([(_HF, 0), (IMV, 1.5), (_HF, 9), (_NC, 11), (_RA, 14)], 12, 19),
        _s([(_HF, 0), (_NC, 3), (_RA, 6)], 4.5, 11),
    ),
    "T06": (
        _s([(_HF, 0), (IMV, 1)], None, 10.4, death=10.4),
        _s([(_HF, 0), (_NC, 2.5), (_RA, 5)], 4, 10),
        _s([(_HF, 0), (_NC, 1.5), (_RA, 3.5)], 2.5, 8.5),
    ),
    "T07": (
        _s([(_HF, 0), (_NC, 2.5), (_RA, 5)], 4, 9),
        _s([(_HF, 0), (_NC, 7), (_RA, 10)], 8, 14),
        _s([(_HF, 0), (NIPPV, 2), (_HF, 3), (IMV, 4), (_HF, 10), (_NC, 12), (_RA, 15)], 13, 20),
    ),
    "T08": (
        _s([(_HF, 0), (IMV, 2), (_HF, 22), (_NC, 25), (_RA, 29)], 27, 33, death=47.2,
           category="Long Term Care Hospital (LTACH)"),
        _s([(_HF, 0), (_NC, 4), (_RA, 7)], 5, 12),
        _s([(_HF, 0), (IMV, 2)], None, 26.5, death=26.5),
    ),
}

# Thrombo-embolic diagnoses of three twins (code, diagnosis_primary, poa_present), for the safety
# room's context table (safety.context_events): fixed by design, no random draw, so nothing else moves.
# Two arose in hospital (poa_present = 0), one was present on admission.
TWIN_CONTEXT_DX: dict[str, tuple[str, int, int]] = {
    "T01-twin3": ("I26.99", 0, 0),    # pulmonary embolism
    "T03-twin1": ("I82.409", 0, 0),   # deep vein thrombosis, lower extremity
    "T05-twin2": ("I82.409", 0, 1),   # deep vein thrombosis, present on admission
}
#: Thrombo-embolic diagnoses of the random pool: (every, offset, code) -> pool course n gets
#: ``code`` (not present on admission) when n % every == offset. Deterministic, no random draw.
POOL_CONTEXT_DX: tuple[tuple[int, int, str], ...] = ((40, 7, "I26.99"), (61, 23, "I80.209"), (97, 50, "I63.9"))

# Day-7 D-dimer. The quartiles are the published ones; the free values are chosen so that the
# Mann-Whitney U (trial above control) is 35 of 192, whose normal approximation with continuity
# correction gives p = 0.00847, the published 0.0085 (exact p = 0.0065).
#: Day-7 D-dimer (µg/L FEU) of the trial arm; numpy type-7 quartiles 362.0, 821.0, 1305.0.
TRIAL_D7_DIMER = (180.0, 320.0, 376.0, 790.0, 852.0, 1240.0, 1500.0, 3800.0)
#: Day-7 D-dimer of the 24 controls; type-7 quartiles 1155.0, 3553.0, 6433.5.
CONTROL_D7_DIMER = (
    420.0, 610.0, 780.0, 845.0, 1020.0, 1110.0, 1170.0, 1480.0, 1890.0, 2350.0, 2900.0, 3400.0,
    3706.0, 4120.0, 4650.0, 5210.0, 5800.0, 6300.0, 6834.0, 7450.0, 8300.0, 9600.0, 11800.0,
    15200.0,
)

# Calendar window of the twins' index (the ICU admission).
TWIN_INDEX_WINDOW = ("2020-07-01T00:00", "2021-11-30T00:00")


def _severity(script: Script) -> float:
    """Days on IMV (death counts as 30) then days on any oxygen: for ranking D-dimer values."""
    if script.death is not None:
        return 1000.0 + (60 - script.death)
    imv = 0.0
    oxy = 0.0
    devs = list(script.devices)
    for k, (d, s) in enumerate(devs):
        e = devs[k + 1][1] if k + 1 < len(devs) else script.discharge
        if d == IMV:
            imv += e - s
        if d != ROOM_AIR:
            oxy += e - s
    return 10 * imv + oxy


def control_dimer_assignment() -> dict[tuple[str, int], float]:
    """Day-7 D-dimer of each twin ``(set, k)``: higher values for sicker courses."""
    keys = [(pid, k) for pid in TWIN_SCRIPTS for k in range(3)]
    sev = np.array([_severity(TWIN_SCRIPTS[p][k]) for p, k in keys])
    order = np.argsort(-sev, kind="stable")
    values = sorted(CONTROL_D7_DIMER, reverse=True)
    return {keys[i]: values[r] for r, i in enumerate(order)}


def draw_twin_covariates(rng: np.random.Generator, spec: TrialSpec) -> dict[str, float]:
    """One near-copy of a trial patient on the matching covariates (well inside tolerance)."""
    return {
        "age": spec.age + rng.uniform(-0.8, 0.8),
        "bmi": spec.bmi + rng.uniform(-0.3, 0.3),
        "crp": round(spec.crp + rng.uniform(-2.5, 2.5), 1),
        "dsa": spec.dsa + rng.uniform(-0.15, 0.15),
    }


def _valid(s: Script) -> bool:
    hour = 1 / 24
    starts = [t for _, t in s.devices]
    end = s.discharge if s.death is None else min(s.discharge, s.death)
    if any(b - a < hour for a, b in zip(starts, starts[1:])) or end - starts[-1] < hour:
        return False
    if s.icu_out is not None:
        icu_level = [k for k, (d, _) in enumerate(s.devices) if d in (IMV, HFNO, NIPPV)]
        after = s.devices[icu_level[-1] + 1][1] if icu_level and icu_level[-1] + 1 < len(starts) else 0.0
        if not after <= s.icu_out <= s.discharge - hour:
            return False
    if s.ecmo is not None:
        segs = [(d, a, starts[k + 1] if k + 1 < len(starts) else end) for k, (d, a) in enumerate(s.devices)]
        if not any(d == IMV and a < s.ecmo[0] and s.ecmo[1] <= b for d, a, b in segs):
            return False
    return True


def _death_class(s: Script) -> tuple:
    return (None,) if s.death is None else (s.death <= 8, s.death <= 28, s.death <= 60)


def jitter_script(rng: np.random.Generator, script: Script, hours: float = 3.0) -> Script:
    """Move each designed time by up to ``hours`` (whole minutes) without changing any outcome.

    A move is kept only when the free days, the death class (by day 8, 28, 60) and the course's
    order stay the same, so designed transitions do not all fall on the minute of the index.
    """
    target = script_free_days(script)
    cls = _death_class(script)
    cur = script

    def moved(s: Script, field: str, k: int | None, delta: float) -> Script:
        if field == "devices":
            devs = list(s.devices)
            devs[k] = (devs[k][0], devs[k][1] + delta)
            return Script(tuple(devs), s.icu_out, s.discharge, s.death, s.discharge_category, s.ecmo)
        if field == "end":  # discharge, and the death when it happens in hospital
            death = s.death + delta if s.death is not None and s.death == s.discharge else s.death
            return Script(s.devices, s.icu_out, s.discharge + delta, death, s.discharge_category, s.ecmo)
        if field == "death":
            return Script(s.devices, s.icu_out, s.discharge, s.death + delta, s.discharge_category, s.ecmo)
        if field == "icu_out":
            return Script(s.devices, s.icu_out + delta, s.discharge, s.death, s.discharge_category, s.ecmo)
        e = list(s.ecmo)
        e[k] += delta
        return Script(s.devices, s.icu_out, s.discharge, s.death, s.discharge_category, tuple(e))

    points = [("devices", k) for k in range(1, len(script.devices))] + [("end", None)]
    if script.death is not None and script.death != script.discharge:
        points.append(("death", None))
    if script.icu_out is not None:
        points.append(("icu_out", None))
    if script.ecmo is not None:
        points += [("ecmo", 0), ("ecmo", 1)]
    for field, k in points:
        delta = int(rng.integers(-round(hours * 60), round(hours * 60) + 1)) / DAY
        for d in (delta, -delta):
            cand = moved(cur, field, k, d)
            if _valid(cand) and script_free_days(cand) == target and _death_class(cand) == cls:
                cur = cand
                break
    return cur


def covariance_variants(x_trial: np.ndarray, x_pool: np.ndarray) -> dict[str, np.ndarray]:
    """Covariances a matcher might use for the Mahalanobis distance.

    ``all``: sample covariance of trial and eligible pool stacked; ``pool``: pool only;
    ``within``: pooled within-group covariance (MatchIt's choice).
    """
    n1, n0 = len(x_trial), len(x_pool)
    s1 = np.cov(x_trial, rowvar=False)
    s0 = np.cov(x_pool, rowvar=False)
    return {
        "all": np.cov(np.vstack([x_trial, x_pool]), rowvar=False),
        "pool": s0,
        "within": ((n1 - 1) * s1 + (n0 - 1) * s0) / (n1 + n0 - 2),
    }


def mahalanobis(a: np.ndarray, b: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Distances between each row of ``a`` (m, p) and each row of ``b`` (n, p): an (m, n) array."""
    inv = np.linalg.inv(cov)
    d = a[:, None, :] - b[None, :, :]
    return np.sqrt(np.einsum("mnp,pq,mnq->mn", d, inv, d))
