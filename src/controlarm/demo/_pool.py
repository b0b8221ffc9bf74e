"""Random courses: the ICU pool around the designed patients, and the shared course builder.

Pool patients are drawn in groups, each built to pass or fail exactly one eligibility rule of the
demo study (study.toml): ``eligible``, ``no_dexamethasone`` (first wave, before RECOVERY),
``no_icu_support`` (never on High Flow NC or IMV while in the ICU), ``over_70``, ``index_2022``
(admitted January 2022) and ``no_crp`` (no CRP in the 48 h before the index).
"""

from __future__ import annotations

import numpy as np

from ._timelines import (
    DAY,
    FACE_MASK,
    HFNO,
    HOUR,
    IMV,
    NC,
    NIPPV,
    ROOM_AIR,
    Course,
    Script,
    build_course,
    minutes,
    to_datetime64,
)

__all__ = [
    "POOL_GROUPS",
    "draw_index",
    "draw_covariates",
    "realised",
    "random_script",
    "admission_course",
    "no_support_course",
    "annotate",
]

#: Group -> number of (non-twin) pool patients.
POOL_GROUPS = {
    "eligible": 310,
    "no_dexamethasone": 30,
    "no_icu_support": 30,
    "over_70": 40,
    "index_2022": 15,
    "no_crp": 5,
}

# Calendar windows of the index (COVID-19 waves) and their weights.
_WAVES = (
    (("2020-07-01", "2020-09-30"), 0.08),
    (("2020-10-01", "2020-12-31"), 0.40),
    (("2021-02-15", "2021-05-31"), 0.30),
    (("2021-09-01", "2021-12-30"), 0.22),
)
_FIRST_WAVE = ("2020-03-10", "2020-06-10")
_JAN_2022 = ("2022-01-03", "2022-02-04")
_JAN_2022_START = minutes("2022-01-01T06:00")
CUTOFF = minutes("2022-03-01T00:00")
_EARLIEST_ADMISSION = minutes("2020-03-01T06:00")

_WARDS = ("COVID ward A", "COVID ward B", "COVID ward C", "Internal medicine 2")
_RACES = (("White", 0.85), ("Black or African American", 0.05), ("Asian", 0.04), ("Other", 0.03),
          ("Unknown", 0.03))
_ETHNICITIES = (("Non-Hispanic", 0.9), ("Hispanic", 0.04), ("Unknown", 0.06))


def _uniform_time(rng: np.random.Generator, window: tuple[str, str]) -> int:
    lo, hi = minutes(window[0] + "T00:00"), minutes(window[1] + "T23:59")
    return int(rng.integers(lo, hi + 1))


def draw_index(rng: np.random.Generator, group: str) -> int:
    """Index time of a pool patient of ``group`` (minutes since EPOCH)."""
    if group == "no_dexamethasone":
        return _uniform_time(rng, _FIRST_WAVE)
    if group == "index_2022":
        return _uniform_time(rng, _JAN_2022)
    w = np.array([p for _, p in _WAVES])
    k = int(rng.choice(len(_WAVES), p=w / w.sum()))
    return _uniform_time(rng, _WAVES[k][0])


def draw_covariates(rng: np.random.Generator, group: str) -> dict:
    """Draw one pool patient's baseline: matching covariates, index time, entry route."""
    male = bool(rng.random() < 0.68)
    if group == "over_70":
        age = float(rng.uniform(71.0, 86.0))
    else:
        age = float(rng.normal(57.0, 10.0))
        while not 19.0 <= age <= 69.5:
            age = float(rng.normal(57.0, 10.0))
    height = float(round(rng.normal(176, 7) if male else rng.normal(163, 6.5)))
    bmi = float(np.clip(rng.normal(29.5, 5.0), 18.5, 48.0))
    crp = float(round(np.clip(rng.lognormal(np.log(105), 0.6), 4.0, 420.0), 1))
    if rng.random() < 0.22:
        dsa = float(rng.uniform(0.15, 0.75))
    else:
        dsa = 99.0
        while dsa > 18.0:
            dsa = float(0.4 + rng.gamma(1.6, 2.2))
    index = draw_index(rng, group)
    earliest = _JAN_2022_START if group == "index_2022" else _EARLIEST_ADMISSION
    dsa = max(0.15, min(dsa, (index - earliest) / DAY))
    imv = bool(rng.random() < 0.11)
    u = rng.random()
    entry = "A" if u < 0.72 else ("B" if u < 0.88 else "C")
    crp_unit = "mg/dL" if rng.random() < 0.15 else "mg/L"
    return {
        "male": male, "age": age, "height": height, "bmi": bmi, "crp": crp, "dsa": dsa,
        "index": index, "imv": imv, "entry": entry, "crp_unit": crp_unit,
    }


def _birth(index: int, age: float) -> np.datetime64:
    day = to_datetime64(index).astype("datetime64[D]")
    return day - np.timedelta64(int(round(age * 365.25)), "D")


def _weight(height: float, bmi: float) -> float:
    return round(bmi * (height / 100) ** 2, 1)


def realised(cov: dict) -> np.ndarray:
    """The matching covariates exactly as the study rules will compute them from the tables."""
    index = cov["index"]
    age = (to_datetime64(index).astype("datetime64[D]") - _birth(index, cov["age"])).astype(int) / 365.25
    bmi = _weight(cov["height"], cov["bmi"]) / (cov["height"] / 100) ** 2
    if cov.get("crp_unit") == "mg/dL":
        crp = round(cov["crp"] / 10, 2) * 10
    else:
        crp = cov["crp"]
    dsa = round(cov["dsa"] * DAY) / DAY
    return np.array([age, float(cov["male"]), bmi, crp, dsa])


def _d(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A duration in days, on whole hours."""
    return round(rng.uniform(lo, hi) * 24) / 24


def _recovery(rng, devices, t, icu_floor):
    """HFNO/NC/RA de-escalation from day ``t``; returns icu_out, discharge, category."""
    nc = t
    devices.append((NC, nc))
    ra = nc + _d(rng, 1.5, 6.0)
    devices.append((ROOM_AIR, ra))
    icu_out = max(nc + _d(rng, 0.3, 2.5), icu_floor)
    discharge = max(ra, icu_out) + _d(rng, 1.5, 6.0)
    long_stay = discharge > 25
    u = rng.random()
    if long_stay and u < 0.4:
        cat = "Acute Inpatient Rehab Facility" if u < 0.25 else "Long Term Care Hospital (LTACH)"
    elif u < 0.06:
        cat = "Skilled Nursing Facility (SNF)"
    else:
        cat = "Home"
    return icu_out, discharge, cat


def random_script(rng: np.random.Generator, imv_at_index: bool, frailty: float = 1.0) -> Script:
    """A random course after the index (days), ~30% mortality overall."""
    devices: list[tuple[str, float]] = []
    ecmo = None
    death = None
    if imv_at_index:
        t_imv, p_death = 0.0, 0.5 * frailty
        devices.append((IMV, 0.0))
        intubated = True
    else:
        hf = _d(rng, 0.8, 7.0)
        devices.append((HFNO, 0.0))
        if rng.random() < 0.15:  # NIPPV episodes while on high flow
            t = _d(rng, 0.2, 0.6)
            while t < hf - 0.7:
                devices.append((NIPPV, t))
                devices.append((HFNO, t + _d(rng, 0.17, 0.5)))
                t += _d(rng, 0.8, 2.0)
        u = rng.random()
        intubated = u < 0.33
        if intubated:
            t_imv, p_death = hf, 0.6 * frailty
            devices.append((IMV, t_imv))
        elif u < 0.33 + 0.05 * frailty:  # ceiling of care: dies on high flow
            death = hf + _d(rng, 1.0, 8.0)
            return Script(tuple(devices), None, death, death)
        else:
            icu_out, discharge, cat = _recovery(rng, devices, hf, hf - _d(rng, 0.0, 0.5))
            return _maybe_late_death(rng, Script(tuple(devices), icu_out, discharge, None, cat))
    # intubated branch
    imv_days = float(np.clip(rng.gamma(2.5, 4.0), 3.0, 30.0))
    if rng.random() < 0.12:
        start = t_imv + _d(rng, 0.5, 3.0)
        ecmo = (start, start + _d(rng, 4.0, min(20.0, imv_days - 0.5)) if imv_days > 5 else start + 3)
        imv_days = max(imv_days, ecmo[1] - t_imv + 1.0)
    if rng.random() < p_death:
        death = t_imv + _d(rng, 1.0, imv_days)
        if ecmo is not None and ecmo[1] > death:
            ecmo = (ecmo[0], death) if ecmo[0] < death - 0.2 else None
        return Script(tuple(devices), None, death, death, ecmo=ecmo)
    ext = t_imv + round(imv_days * 24) / 24
    devices.append((HFNO, ext))
    icu_out, discharge, cat = _recovery(rng, devices, ext + _d(rng, 0.5, 3.0), ext + 1.0)
    return _maybe_late_death(rng, Script(tuple(devices), icu_out, discharge, None, cat, ecmo))


def _maybe_late_death(rng, script: Script) -> Script:
    if rng.random() < 0.03:
        cat = "Hospice" if rng.random() < 0.5 else "Skilled Nursing Facility (SNF)"
        death = script.discharge + _d(rng, 5.0, 60.0)
        return Script(script.devices, script.icu_out, script.discharge, death, cat, script.ecmo)
    return script


def _dexa_times(first: int, end: int, cover_until: int) -> list[int]:
    n = max(10, (cover_until - first) // DAY + 2)
    return [first + k * DAY for k in range(n) if first + k * DAY < end]


def admission_course(
    rng: np.random.Generator,
    *,
    key: str,
    group: str,
    cov: dict,
    script: Script,
    dexa: str | None,
    icu_name: str,
) -> Course:
    """Course of a patient whose pool index (or intended index) is ``cov["index"]``.

    ED -> ward -> ICU. ``cov["entry"]``: "A" enters the ICU at the index on the index device;
    "B" enters earlier on NIPPV or a face mask and is escalated at the index; "C" enters earlier on
    the index device and receives the first dexamethasone dose at the index. ``dexa`` is
    "admission" (daily from admission), "index" (daily from the index) or ``None``.
    """
    index = cov["index"]
    adm = index - round(cov["dsa"] * DAY)
    room = index - adm
    entry = cov["entry"]
    ed_len = min(int(rng.integers(2 * HOUR, 6 * HOUR + 1)), room // 2)
    if entry in ("B", "C") and room - ed_len - HOUR >= 3 * HOUR:
        gap = int(rng.integers(2 * HOUR, min(36 * HOUR, room - ed_len - HOUR) + 1))
    else:
        entry, gap = "A", 0
    if entry == "C" and dexa is not None:
        dexa = "index"
    icu_in = index - gap
    ed_end = adm + ed_len
    if icu_in - ed_end < 90:
        ed_end = icu_in
    pre = [(NC, adm)]
    mask_at = icu_in - min(int(rng.integers(3 * HOUR, 12 * HOUR + 1)), (icu_in - adm) // 2)
    if mask_at > adm:
        pre.append((FACE_MASK, mask_at))
    dev0 = script.devices[0][0]
    if entry == "B":
        pre.append((NIPPV if rng.random() < 0.6 else FACE_MASK, icu_in))
    elif entry == "C":
        pre.append((dev0, icu_in))
    sex = "Male" if cov["male"] else "Female"
    wards = (str(rng.choice(_WARDS)), str(rng.choice(_WARDS)))
    c = build_course(
        key=key, group=group, sex=sex, birth=_birth(index, cov["age"]), admission=adm,
        ed_end=ed_end, icu_in=icu_in, index=index, pre_devices=pre, script=script,
        icu_name=icu_name, ward_names=wards,
    )
    c.height = cov["height"]
    c.weight = _weight(cov["height"], cov["bmi"])
    c.hw_time = adm + int(rng.integers(15, max(16, min(90, room // 2))))
    if dexa == "admission":
        first = adm + int(rng.integers(30, max(31, min(180, room // 2))))
        c.dexa = _dexa_times(first, c.discharge, index)
    elif dexa == "index":
        c.dexa = _dexa_times(index, c.discharge, index)
    if cov.get("crp") is not None and group != "no_crp":
        t = index - int(rng.integers(30, max(31, min(12 * HOUR, room - 20))))
        value = round(cov["crp"] / 10, 2) if cov.get("crp_unit") == "mg/dL" else cov["crp"]
        c.crp = (t, value, cov.get("crp_unit", "mg/L"))
        c.crp_blackout = (t - HOUR, index + HOUR)
    elif group == "no_crp":
        c.crp_blackout = (index - 50 * HOUR, index + HOUR)
    c.severity = 1.0 + (script.death is not None) + any(d == IMV for d, _ in script.devices)
    return c


def no_support_course(rng: np.random.Generator, key: str) -> Course:
    """A patient never on High Flow NC or IMV while in the ICU (three variants)."""
    ref = draw_index(rng, "no_icu_support")
    age = float(np.clip(rng.normal(60, 12), 25, 88))
    male = bool(rng.random() < 0.6)
    height = float(round(rng.normal(176, 7) if male else rng.normal(163, 6.5)))
    bmi = float(np.clip(rng.normal(28.5, 5.0), 18.5, 45.0))
    dsa = float(rng.uniform(0.5, 4.0))
    u = rng.random()
    wards = (str(rng.choice(_WARDS)), str(rng.choice(_WARDS)))
    adm = ref - round(dsa * DAY)
    ed_end = adm + int(rng.integers(2 * HOUR, 6 * HOUR + 1))
    pre = [(NC, adm)]
    if u < 0.4:  # ward only, nasal cannula
        script = Script(((NC, 0.0), (ROOM_AIR, _d(rng, 1.0, 5.0))), None, _d(rng, 6.0, 11.0))
        icu_in = None
    elif u < 0.75:  # ICU on NIPPV / face mask only
        nip = _d(rng, 1.0, 4.0)
        if rng.random() < 0.15:
            die = nip + _d(rng, 0.5, 4.0)
            script = Script(((NIPPV, 0.0), (FACE_MASK, nip)), None, die, die)
        else:
            script = Script(((NIPPV, 0.0), (FACE_MASK, nip), (NC, nip + _d(rng, 0.5, 2.0)),
                             (ROOM_AIR, nip + _d(rng, 3.0, 6.0))),
                            nip + _d(rng, 1.0, 2.5), nip + _d(rng, 7.0, 12.0))
        icu_in = ref
    else:  # high flow on the ward (ceiling of care or ICU beds full)
        hf = _d(rng, 1.0, 5.0)
        if rng.random() < 0.2:
            die = hf + _d(rng, 0.2, 3.0)
            script = Script(((HFNO, 0.0),), None, die, die)
        else:
            script = Script(((HFNO, 0.0), (NC, hf), (ROOM_AIR, hf + _d(rng, 1.5, 5.0))), None,
                            hf + _d(rng, 6.0, 10.0))
        icu_in = None
    c = build_course(
        key=key, group="no_icu_support", sex="Male" if male else "Female", birth=_birth(ref, age),
        admission=adm, ed_end=ed_end, icu_in=icu_in, index=ref, pre_devices=pre, script=script,
        icu_name="ICU 1", ward_names=wards,
    )
    c.index = None
    c.height = height
    c.weight = _weight(height, bmi)
    c.hw_time = adm + int(rng.integers(15, 90))
    c.dexa = _dexa_times(adm + int(rng.integers(30, 180)), c.discharge, ref)
    c.crp = None
    c.severity = 1.0 + (script.death is not None)
    return c


def _pick(rng, options) -> str:
    p = np.array([w for _, w in options])
    return options[int(rng.choice(len(options), p=p / p.sum()))][0]


def annotate(rng: np.random.Generator, c: Course, *, comorbidities: tuple[str, ...] | None = None,
             tocilizumab: bool = True) -> None:
    """Race, diagnoses and the other medications (enoxaparin, tocilizumab) of a course."""
    c.race = _pick(rng, _RACES)
    c.ethnicity = _pick(rng, _ETHNICITIES)
    year = int(str(to_datetime64(c.admission))[:4])
    icu = any(cat == "icu" for cat, *_ in c.adt)
    ever_imv = any(d == IMV for d, *_ in c.segments)
    dx = [("U07.1", 1, 1), ("J12.82" if year >= 2021 else "J12.89", 0, 1)]
    if icu:
        dx.append(("J96.01", 0, 1))
    if ever_imv and rng.random() < 0.6:
        dx.append(("J80", 0, 0))
    if comorbidities is None:
        bmi = c.weight / (c.height / 100) ** 2
        como = []
        if rng.random() < 0.24:
            como.append("E11.9")
        elif rng.random() < 0.02:
            como.append("E10.9")
        if rng.random() < 0.38:
            como.append("I10")
        if bmi >= 30 and rng.random() < 0.6:
            como.append("E66.9")
        for code, p in (("N18.3", 0.07), ("J44.9", 0.07), ("I25.10", 0.08), ("E78.5", 0.2)):
            if rng.random() < p:
                como.append(code)
    else:
        como = list(comorbidities)
    dx.extend((code, 0, 1) for code in como)
    c.diagnoses = dx
    end = c.discharge
    first = c.admission + int(rng.integers(60, 300))
    dose = 40.0 if c.weight < 100 else 60.0
    c.meds.extend(("enoxaparin", f"enoxaparin {dose:g} mg", t, dose, "mg", "sc")
                  for t in range(first, end, DAY))
    if tocilizumab and icu and c.admission >= minutes("2021-01-15T00:00") and rng.random() < 0.25:
        t = c.ref + int(rng.integers(2 * HOUR, 30 * HOUR))
        if t < end:
            mg = float(min(800.0, round(8 * c.weight, -1)))
            c.meds.append(("tocilizumab", f"tocilizumab {mg:g} mg", t, mg, "mg", "iv"))
