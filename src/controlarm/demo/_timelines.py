"""Patient courses of the synthetic demo: one hospital stay as explicit intervals, in minutes.

A ``Course`` is the generator's own description of one hospitalisation: locations, respiratory
support devices, ECMO runs, dexamethasone doses, designed measurements. Tables are rendered from it
later (``_tables.py``). Keeping the course explicit lets the generator evaluate the study's rules
(index time, free days) on exactly what it is about to write, and check its own design.

All times are integers: minutes since ``EPOCH`` (2020-01-01 00:00 UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "EPOCH",
    "DAY",
    "HOUR",
    "HFNO",
    "IMV",
    "NIPPV",
    "NC",
    "FACE_MASK",
    "ROOM_AIR",
    "Script",
    "Course",
    "minutes",
    "to_datetime64",
    "index_time",
    "free_days",
    "script_free_days",
    "device_at",
    "ever_device_after",
    "build_course",
]

EPOCH = np.datetime64("2020-01-01T00:00", "m")
HOUR = 60
DAY = 24 * HOUR

HFNO = "High Flow NC"
IMV = "IMV"
NIPPV = "NIPPV"
NC = "Nasal Cannula"
FACE_MASK = "Face Mask"
ROOM_AIR = "Room Air"

ICU_DEVICES = (HFNO, IMV)


def minutes(iso: str) -> int:
    """Minutes since ``EPOCH`` of an ISO date-time string read as UTC."""
    return int((np.datetime64(iso, "m") - EPOCH).astype(np.int64))


def to_datetime64(t: int) -> np.datetime64:
    """The UTC ``datetime64[m]`` of a time in minutes since ``EPOCH``."""
    return EPOCH + np.timedelta64(int(t), "m")


@dataclass(frozen=True)
class Script:
    """The course after the index, in days relative to the index.

    ``devices`` lists ``(device_category, start_day)``; each device lasts until the next one starts,
    and the last one until discharge or death. ``icu_out`` is the day of ICU discharge (``None``:
    the patient dies in the ICU). ``death`` may fall after ``discharge`` (death linked after
    discharge). ``ecmo`` is a ``(start_day, end_day)`` VV ECMO run.
    """

    devices: tuple[tuple[str, float], ...]
    icu_out: float | None
    discharge: float
    death: float | None = None
    discharge_category: str = "Home"
    ecmo: tuple[float, float] | None = None


@dataclass
class Course:
    """One hospitalisation of one patient, as intervals in minutes since ``EPOCH``."""

    key: str
    group: str
    sex: str
    birth: np.datetime64
    admission: int
    discharge: int
    discharge_category: str
    death: int | None
    adt: list[tuple[str, str, int, int]]
    segments: list[tuple[str, int, int]]
    ecmo: list[tuple[int, int]] = field(default_factory=list)
    dexa: list[int] = field(default_factory=list)
    height: float = 170.0
    weight: float = 80.0
    hw_time: int = 0
    index: int | None = None
    ref: int = 0
    crp: tuple[int, float, str] | None = None
    crp_blackout: tuple[int, int] | None = None
    dimer7: tuple[int, float, str] | None = None
    dimer_blackout: tuple[int, int] | None = None
    diagnoses: list[tuple[str, int, int]] = field(default_factory=list)
    meds: list[tuple[str, str, int, float, str, str]] = field(default_factory=list)
    race: str = "White"
    ethnicity: str = "Non-Hispanic"
    patient_id: str = ""
    inclusion: int | None = None
    severity: float = 1.0


def _intervals(course: Course, devices: tuple[str, ...]) -> list[tuple[int, int]]:
    return [(s, e) for d, s, e in course.segments if d in devices]


def index_time(course: Course) -> int | None:
    """First time at which the pool index rule holds, or ``None``.

    The rule (study.toml ``[index.pool]``): in an ICU location, on High Flow NC or IMV, and a
    dexamethasone dose within the previous 24 hours. Each condition holds on a union of half-open
    intervals ``[start, end)``, so the first time all hold is the latest start of some overlapping
    triple.
    """
    icu = [(i, o) for cat, _, i, o in course.adt if cat == "icu"]
    dev = _intervals(course, ICU_DEVICES)
    dexa = [(t, t + DAY) for t in course.dexa]
    best = None
    for a1, b1 in icu:
        for a2, b2 in dev:
            lo12, hi12 = max(a1, a2), min(b1, b2)
            if lo12 >= hi12:
                continue
            for a3, b3 in dexa:
                lo, hi = max(lo12, a3), min(hi12, b3)
                if lo < hi and (best is None or lo < best):
                    best = lo
    return best


def device_at(course: Course, t: int) -> str | None:
    """The device category in use at ``t`` (``None`` outside every segment)."""
    for d, s, e in course.segments:
        if s <= t < e:
            return d
    return None


def ever_device_after(course: Course, t: int, device: str) -> bool:
    """Whether ``device`` is in use at any time after ``t``."""
    return any(d == device and e > t for d, s, e in course.segments)


def free_days(course: Course, index: int, horizon: int = 28) -> dict[str, int]:
    """IMV-, HFNO-, oxygen- and ICU-free days to ``horizon`` (0 for all if dead by then).

    Day ``d`` is the window ``[index + (d-1) days, index + d days)``; a day is free when the
    device (or the ICU location) is in use at no time of the window. After an alive discharge
    every day is free.
    """
    if course.death is not None and course.death <= index + horizon * DAY:
        return {"imv": 0, "hfno": 0, "oxygen": 0, "icu": 0}
    busy = {
        "imv": [(s, e) for d, s, e in course.segments if d == IMV],
        "hfno": [(s, e) for d, s, e in course.segments if d == HFNO],
        "oxygen": [(s, e) for d, s, e in course.segments if d != ROOM_AIR],
        "icu": [(i, o) for cat, _, i, o in course.adt if cat == "icu"],
    }
    out = {}
    for name, ivs in busy.items():
        n = 0
        for d in range(1, horizon + 1):
            a, b = index + (d - 1) * DAY, index + d * DAY
            n += not any(s < b and e > a for s, e in ivs)
        out[name] = n
    return out


def script_free_days(script: Script, horizon: int = 28) -> dict[str, int]:
    """``free_days`` of a script, in days relative to the index (the ICU stay starts by day 0)."""
    end = script.discharge if script.death is None else min(script.discharge, script.death)
    if script.death is not None and script.death <= horizon:
        return {"imv": 0, "hfno": 0, "oxygen": 0, "icu": 0}
    devs = list(script.devices)
    segs = [(d, s, min(devs[k + 1][1], end) if k + 1 < len(devs) else end) for k, (d, s) in enumerate(devs)]
    icu_end = end if script.icu_out is None else min(script.icu_out, end)
    busy = {
        "imv": [(s, e) for d, s, e in segs if d == IMV],
        "hfno": [(s, e) for d, s, e in segs if d == HFNO],
        "oxygen": [(s, e) for d, s, e in segs if d != ROOM_AIR],
        "icu": [(0.0, icu_end)],
    }
    return {k: sum(not any(s < d and e > d - 1 for s, e in ivs) for d in range(1, horizon + 1))
            for k, ivs in busy.items()}


def build_course(
    *,
    key: str,
    group: str,
    sex: str,
    birth: np.datetime64,
    admission: int,
    ed_end: int,
    icu_in: int | None,
    index: int,
    pre_devices: list[tuple[str, int]],
    script: Script,
    icu_name: str,
    ward_names: tuple[str, str],
) -> Course:
    """Assemble a course: ED -> ward -> ICU (from ``icu_in``) -> ward -> discharge.

    ``pre_devices`` are ``(device, start)`` before the index (absolute minutes, sorted, the first at
    admission); the script's devices follow from the index. When ``icu_in`` is ``None`` the patient
    never enters the ICU and ``script.icu_out`` is ignored.
    """
    discharge = index + round(script.discharge * DAY)
    death = None if script.death is None else index + round(script.death * DAY)
    end = discharge if death is None else min(discharge, death)
    starts = list(pre_devices) + [(d, index + round(s * DAY)) for d, s in script.devices]
    segments = []
    for k, (d, s) in enumerate(starts):
        e = min(starts[k + 1][1], end) if k + 1 < len(starts) else end
        if e > s:
            segments.append((d, s, e))
    adt: list[tuple[str, str, int, int]] = []
    ward_pre, ward_post = ward_names
    first_hosp_out = icu_in if icu_in is not None else end
    adt.append(("ed", "Emergency department", admission, min(ed_end, first_hosp_out)))
    if ed_end < first_hosp_out:
        adt.append(("ward", ward_pre, ed_end, first_hosp_out))
    if icu_in is not None:
        icu_out = end if script.icu_out is None else index + round(script.icu_out * DAY)
        icu_out = min(icu_out, end)
        adt.append(("icu", icu_name, icu_in, icu_out))
        if icu_out < end:
            adt.append(("ward", ward_post, icu_out, end))
    ecmo = []
    if script.ecmo is not None:
        ecmo.append((index + round(script.ecmo[0] * DAY), index + round(script.ecmo[1] * DAY)))
    return Course(
        key=key,
        group=group,
        sex=sex,
        birth=birth,
        admission=admission,
        discharge=end,
        discharge_category="Expired" if death is not None and death <= discharge else script.discharge_category,
        death=death,
        adt=adt,
        segments=segments,
        ecmo=ecmo,
        index=index,
        ref=index,
    )
