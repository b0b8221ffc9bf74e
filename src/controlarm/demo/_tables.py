"""Render courses into the CLIF 2.1 and trial tables (pyarrow), fixed row order.

Only the designed values matter to the study; everything rendered here around them (charting
times, vital signs, the daily lab panel) is random but plausible, and drawn from its own generator
so the design never depends on it.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa

from ._timelines import DAY, EPOCH, FACE_MASK, HFNO, HOUR, IMV, NC, NIPPV, ROOM_AIR, Course

__all__ = ["render_tables", "TABLE_NAMES"]

TABLE_NAMES = (
    "patient", "hospitalization", "adt", "vitals", "labs", "respiratory_support",
    "medication_admin_intermittent", "ecmo_mcs", "hospital_diagnosis", "enrollment",
    "administration", "adverse_event",
)

_TS = pa.timestamp("us", tz="UTC")
_EPOCH_US = int(EPOCH.astype("datetime64[us]").astype(np.int64))
_SEV = {ROOM_AIR: 0, NC: 1, FACE_MASK: 2, HFNO: 3, NIPPV: 3, IMV: 4}
_STEP = {IMV: (60, 181), HFNO: (60, 181), NIPPV: (60, 121), NC: (120, 241), FACE_MASK: (120, 241),
         ROOM_AIR: (180, 361)}
_DEVICE_NAME = {IMV: "Mechanical ventilator", HFNO: "Optiflow high flow nasal cannula",
                NIPPV: "BiPAP", NC: "Nasal cannula", FACE_MASK: "Non-rebreather mask",
                ROOM_AIR: "Room air"}
_IMV_MODES = ("Assist Control-Volume Control", "Pressure Control", "Pressure Support/CPAP")


def _ts(minutes) -> pa.Array:
    m = np.asarray(minutes, dtype=np.int64)
    return pa.array(_EPOCH_US + m * 60_000_000, type=pa.int64()).cast(_TS)


def _ts_nullable(values: list) -> pa.Array:
    return pa.array([None if v is None else _EPOCH_US + int(v) * 60_000_000 for v in values],
                    type=pa.int64()).cast(_TS)


class _Cols:
    """Column buffers of one table: numpy chunks or scalar runs, concatenated once."""

    def __init__(self):
        self.cols: dict[str, list] = defaultdict(list)

    def add(self, **chunks):
        n = next(len(v) for v in chunks.values() if isinstance(v, np.ndarray))
        for k, v in chunks.items():
            self.cols[k].append(v if isinstance(v, np.ndarray) else (v, n))

    def get(self, k) -> np.ndarray:
        parts = self.cols[k]
        if not parts:
            return np.array([], dtype=object)
        if all(isinstance(p, tuple) for p in parts):
            return np.repeat(np.array([p[0] for p in parts], dtype=object), [p[1] for p in parts])
        return np.concatenate([p if isinstance(p, np.ndarray) else np.full(p[1], p[0]) for p in parts])


def _str(a) -> pa.Array:
    return pa.array(np.asarray(a, dtype=object), type=pa.string())


def _float(a) -> pa.Array:
    a = np.asarray(a, dtype=float)
    return pa.array(a, type=pa.float64(), mask=np.isnan(a))


def _sorted(table: pa.Table, keys: list[str]) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


def _device_codes(c: Course, times: np.ndarray) -> np.ndarray:
    """Severity code of the device in use at each time (records hold until the next one)."""
    starts = np.array([s for _, s, _ in c.segments])
    sev = np.array([_SEV[d] for d, _, _ in c.segments])
    k = np.searchsorted(starts, times, side="right") - 1
    out = np.where(k >= 0, sev[np.clip(k, 0, None)], 0)
    for s, e in c.ecmo:
        out = np.where((times >= s) & (times < e), 5, out)
    return out


def _resp(rng, c: Course, buf: _Cols) -> None:
    hid = "H" + c.patient_id
    for d, s, e in c.segments:
        lo, hi = _STEP[d]
        steps = rng.integers(lo, hi, size=(e - s) // lo + 2)
        t = s + np.concatenate([[0], np.cumsum(steps)])
        t = t[t < e]
        n = len(t)
        fio2 = np.full(n, np.nan)
        lpm = np.full(n, np.nan)
        peep = np.full(n, np.nan)
        mode = np.full(n, None, dtype=object)
        if d == IMV:
            fio2 = np.clip(rng.uniform(0.4, 0.8) + rng.normal(0, 0.06, n), 0.3, 1.0)
            peep = np.clip(2 * np.round((rng.uniform(9, 15) + rng.normal(0, 1, n)) / 2), 6, 18)
            mode = np.full(n, _IMV_MODES[int(rng.integers(0, 3))], dtype=object)
        elif d == HFNO:
            fio2 = np.clip(rng.uniform(0.45, 0.85) + rng.normal(0, 0.06, n), 0.3, 1.0)
            lpm = np.clip(5 * np.round((rng.uniform(40, 60) + rng.normal(0, 4, n)) / 5), 30, 60)
        elif d == NIPPV:
            fio2 = np.clip(rng.uniform(0.4, 0.7) + rng.normal(0, 0.05, n), 0.3, 1.0)
            peep = np.clip(np.round(rng.uniform(6, 10) + rng.normal(0, 0.7, n)), 5, 12)
            mode = np.full(n, "Pressure Support/CPAP", dtype=object)
        elif d == NC:
            lpm = np.clip(np.round(rng.uniform(1.5, 5) + rng.normal(0, 0.7, n)), 1, 6)
        elif d == FACE_MASK:
            lpm = np.clip(np.round(rng.uniform(8, 15) + rng.normal(0, 1, n)), 6, 15)
        buf.add(hospitalization_id=hid, recorded_dttm=t, device_category=d,
                device_name=_DEVICE_NAME[d], mode_category=mode, fio2_set=np.round(fio2, 2),
                lpm_set=lpm, peep_set=peep)


def _ecmo(rng, c: Course, buf: _Cols) -> None:
    hid = "H" + c.patient_id
    for s, e in c.ecmo:
        t = s + np.concatenate([[0], np.cumsum(rng.integers(120, 241, size=(e - s) // 120 + 2))])
        t = t[t < e]
        n = len(t)
        buf.add(hospitalization_id=hid, recorded_dttm=t, device_category="VV ECMO",
                mcs_group="ECMO", flow=np.round(rng.uniform(3.8, 5.0) + rng.normal(0, 0.2, n), 2),
                sweep=np.round(np.clip(rng.uniform(3, 7) + rng.normal(0, 0.8, n), 1, 10), 1),
                fdO2=np.round(np.clip(rng.uniform(0.6, 1.0) + rng.normal(0, 0.05, n), 0.21, 1.0), 2))


_VITALS = ("heart_rate", "sbp", "dbp", "map", "spo2", "respiratory_rate", "temp_c")


def _vitals(rng, c: Course, buf: _Cols) -> None:
    hid = "H" + c.patient_id
    span = c.discharge - c.admission
    t = c.admission + 15 + np.concatenate([[0], np.cumsum(rng.integers(210, 271, size=span // 210 + 2))])
    t = t[t < c.discharge]
    n = len(t)
    sev = _device_codes(c, t).astype(float)
    sev4 = np.minimum(sev, 4)
    hr = np.round(78 + rng.normal(0, 6) + 4 * sev4 + rng.normal(0, 8, n))
    sbp = np.round(128 + rng.normal(0, 8) - 3 * sev4 + rng.normal(0, 12, n))
    dbp = np.round(0.55 * sbp + rng.normal(0, 6, n))
    mean_ap = np.round((sbp + 2 * dbp) / 3)
    spo2 = np.clip(np.round(np.array([96, 95, 93, 92, 93, 93])[sev.astype(int)] + rng.normal(0, 1.8, n)), 80, 100)
    rr = np.clip(np.round(np.array([17, 20, 24, 26, 22, 22])[sev.astype(int)] + rng.normal(0, 3, n)), 8, 45)
    temp = np.round(36.9 + 0.25 * (sev >= 3) + rng.normal(0, 0.45, n), 1)
    for name, v in zip(_VITALS, (hr, sbp, dbp, mean_ap, spo2, rr, temp)):
        buf.add(hospitalization_id=hid, recorded_dttm=t, vital_category=name, vital_value=v)
    buf.add(hospitalization_id=hid, recorded_dttm=np.array([c.hw_time, c.hw_time]),
            vital_category=np.array(["height_cm", "weight_kg"], dtype=object),
            vital_value=np.array([c.height, c.weight]))


_LAB_UNITS = {
    "ferritin": ("Ferritin", "ng/mL", 0),
    "lymphocytes_absolute": ("Lymphocytes, absolute", "10^3/uL", 2),
    "interleukin_06": ("Interleukin-6", "pg/mL", 1),
    "ldh": ("Lactate dehydrogenase", "U/L", 0),
    "fibrinogen": ("Fibrinogen", "mg/dL", 0),
    "creatinine": ("Creatinine", "mg/dL", 2),
    "platelet_count": ("Platelets", "10^3/uL", 0),
}


def _fmt(v: np.ndarray, dec: int) -> np.ndarray:
    return np.char.mod(f"%.{dec}f", v).astype(object)


def _labs(rng, c: Course, buf: _Cols) -> None:
    hid = "H" + c.patient_id
    first_day = (c.admission + 8 * HOUR) // DAY + 1
    days = np.arange(first_day, c.discharge // DAY + 1)
    t = np.concatenate([[c.admission + int(rng.integers(30, 121))],
                        days * DAY + 5 * HOUR + rng.integers(0, 91, size=len(days))])
    t = t[t < c.discharge - 30]
    n = len(t)
    x = (t - c.ref) / DAY
    sev = _device_codes(c, t)
    high = (sev >= 4).astype(float)
    k = np.arange(n)
    rows: list[tuple[str, np.ndarray, np.ndarray, str, str, int]] = []

    # CRP around its designed value at the index (mg/L, or mg/dL for some patients)
    crp_ref = c.crp[1] * (10 if c.crp[2] == "mg/dL" else 1) if c.crp else rng.lognormal(np.log(90), 0.5)
    tau = np.where(x < 0, 2.5, 4.0)
    crp = (3 + crp_ref * np.exp(-np.abs(x) / tau) * (1 + 0.6 * high)) * rng.lognormal(0, 0.12, n)
    unit = c.crp[2] if c.crp else "mg/L"
    keep = np.ones(n, bool)
    if c.crp_blackout is not None:
        keep &= ~((t >= c.crp_blackout[0]) & (t <= c.crp_blackout[1]))
    v = np.round(crp / 10, 2) if unit == "mg/dL" else np.round(crp, 1)
    rows.append(("crp", t[keep], v[keep], unit, "C-reactive protein", 2 if unit == "mg/dL" else 1))
    if c.crp is not None:
        rows.append(("crp", np.array([c.crp[0]]), np.array([c.crp[1]]), c.crp[2],
                     "C-reactive protein", 2 if c.crp[2] == "mg/dL" else 1))

    # D-dimer (µg/L FEU), reported in the unit of the lab system of the day
    base = rng.lognormal(np.log(900), 0.45) * c.severity ** 0.5
    dd = base * (1 + 0.05 * np.clip(x + 3, 0, 20)) * (1 + 0.8 * high) * rng.lognormal(0, 0.2, n)
    keep = np.ones(n, bool)
    if c.dimer_blackout is not None:
        keep &= ~((t >= c.dimer_blackout[0]) & (t <= c.dimer_blackout[1]))
    year2021 = t >= (np.datetime64("2021-01-01T00:00", "m") - EPOCH).astype(np.int64)
    poc = rng.random(n) < 0.1
    # Three laboratories' conventions, as in real warehouses: ng/mL FEU, mg/L FEU, and a point-of-care
    # assay reporting D-dimer units (DDU, about half the FEU number).
    for mask, u, scale, dec in ((keep & ~year2021 & ~poc, "ng/mL FEU", 1, 0),
                                (keep & year2021 & ~poc, "mg/L FEU", 1000, 2),
                                (keep & poc, "ng/mL DDU", 2, 0)):
        if mask.any():
            rows.append(("d_dimer", t[mask], np.round(dd[mask] / scale, dec), u, "D-dimer", dec))
    if c.dimer7 is not None:
        rows.append(("d_dimer", np.array([c.dimer7[0]]), np.array([c.dimer7[1]]), c.dimer7[2],
                     "D-dimer", 0))

    # The rest of the panel
    ferr = rng.lognormal(np.log(850), 0.6) * rng.lognormal(0, 0.15, n)
    lymph = np.clip(0.6 + 0.08 * np.clip(x, 0, 15), 0.2, 2.0) * rng.lognormal(0, 0.2, n)
    il6 = (3 + 40 * np.exp(-np.abs(x) / 3) * (1 + 2 * high)) * rng.lognormal(0, 0.3, n)
    ldh = (360 + 45 * np.minimum(sev, 4)) * rng.lognormal(0, 0.12, n)
    fib = rng.uniform(450, 750) * rng.lognormal(0, 0.12, n)
    creat = rng.lognormal(np.log(0.9), 0.25) * (1 + 0.5 * high) * rng.lognormal(0, 0.08, n)
    plt_ = np.clip(220 + 8 * x, 90, 500) * rng.lognormal(0, 0.15, n)
    panel = {
        "ferritin": (ferr, k % 2 == 0),
        "lymphocytes_absolute": (lymph, np.ones(n, bool)),
        "interleukin_06": (il6, k % 3 == 0),
        "ldh": (ldh, np.ones(n, bool)),
        "fibrinogen": (fib, k % 2 == 0),
        "creatinine": (creat, np.ones(n, bool)),
        "platelet_count": (plt_, np.ones(n, bool)),
    }
    for cat, (vals, mask) in panel.items():
        name, u, dec = _LAB_UNITS[cat]
        rows.append((cat, t[mask], np.round(vals[mask], dec), u, name, dec))

    for cat, tt, vv, u, name, dec in rows:
        res = tt + rng.integers(40, 181, size=len(tt))
        buf.add(hospitalization_id=hid, lab_collect_dttm=tt, lab_result_dttm=res, lab_category=cat,
                lab_name=name, lab_value=_fmt(vv, dec),
                lab_value_numeric=vv.astype(float), reference_unit=u)


def _meds(c: Course, buf: _Cols) -> None:
    hid = "H" + c.patient_id
    rows = [("dexamethasone", "dexamethasone 6 mg", t, 6.0, "mg", "iv") for t in c.dexa] + c.meds
    if not rows:
        return
    cat, name, t, dose, unit, route = zip(*rows)
    buf.add(hospitalization_id=hid, admin_dttm=np.array(t), med_category=np.array(cat, dtype=object),
            med_name=np.array(name, dtype=object), med_route_category=np.array(route, dtype=object),
            med_dose=np.array(dose, dtype=float), med_dose_unit=np.array(unit, dtype=object),
            mar_action_category="given")


def render_tables(courses: list[Course], trial_extra: dict, rng: np.random.Generator) -> dict[str, pa.Table]:
    """All tables of the data model, sorted, from the courses (ordered by patient id).

    ``trial_extra`` carries ``administration`` and ``adverse_event`` rows (lists of dicts) and
    the trial inclusion times.
    """
    resp, ecmo, vit, labs, meds = _Cols(), _Cols(), _Cols(), _Cols(), _Cols()
    for c in courses:
        _resp(rng, c, resp)
        _ecmo(rng, c, ecmo)
        _vitals(rng, c, vit)
        _labs(rng, c, labs)
        _meds(c, meds)
    t: dict[str, pa.Table] = {}

    pid = [c.patient_id for c in courses]
    hid = ["H" + p for p in pid]
    t["patient"] = pa.table({
        "patient_id": _str(pid),
        "sex_category": _str([c.sex for c in courses]),
        "birth_date": pa.array([c.birth.astype("datetime64[D]").astype(object) for c in courses], pa.date32()),
        "death_dttm": _ts_nullable([c.death for c in courses]),
        "race_category": _str([c.race for c in courses]),
        "ethnicity_category": _str([c.ethnicity for c in courses]),
    })
    adm_days = np.array([(EPOCH + np.timedelta64(c.admission, "m")).astype("datetime64[D]") for c in courses])
    births = np.array([c.birth.astype("datetime64[D]") for c in courses])
    age_adm = np.floor((adm_days - births).astype(np.int64) / 365.25).astype(np.int32)
    t["hospitalization"] = pa.table({
        "patient_id": _str(pid),
        "hospitalization_id": _str(hid),
        "admission_dttm": _ts([c.admission for c in courses]),
        "discharge_dttm": _ts([c.discharge for c in courses]),
        "age_at_admission": pa.array(age_adm, pa.int32()),
        "discharge_category": _str([c.discharge_category for c in courses]),
    })
    adt = [("H" + c.patient_id, cat, name, i, o) for c in courses for cat, name, i, o in c.adt]
    t["adt"] = _sorted(pa.table({
        "hospitalization_id": _str([r[0] for r in adt]),
        "in_dttm": _ts([r[3] for r in adt]),
        "out_dttm": _ts([r[4] for r in adt]),
        "location_category": _str([r[1] for r in adt]),
        "location_name": _str([r[2] for r in adt]),
        "hospital_id": _str(["CHU-1"] * len(adt)),
    }), ["hospitalization_id", "in_dttm"])
    t["vitals"] = _sorted(pa.table({
        "hospitalization_id": _str(vit.get("hospitalization_id")),
        "recorded_dttm": _ts(vit.get("recorded_dttm")),
        "vital_category": _str(vit.get("vital_category")),
        "vital_value": _float(vit.get("vital_value")),
    }), ["hospitalization_id", "recorded_dttm", "vital_category"])
    t["labs"] = _sorted(pa.table({
        "hospitalization_id": _str(labs.get("hospitalization_id")),
        "lab_collect_dttm": _ts(labs.get("lab_collect_dttm")),
        "lab_result_dttm": _ts(labs.get("lab_result_dttm")),
        "lab_category": _str(labs.get("lab_category")),
        "lab_name": _str(labs.get("lab_name")),
        "lab_value": _str(labs.get("lab_value")),
        "lab_value_numeric": _float(labs.get("lab_value_numeric")),
        "reference_unit": _str(labs.get("reference_unit")),
    }), ["hospitalization_id", "lab_collect_dttm", "lab_category", "reference_unit"])
    t["respiratory_support"] = _sorted(pa.table({
        "hospitalization_id": _str(resp.get("hospitalization_id")),
        "recorded_dttm": _ts(resp.get("recorded_dttm")),
        "device_category": _str(resp.get("device_category")),
        "device_name": _str(resp.get("device_name")),
        "mode_category": _str(resp.get("mode_category")),
        "fio2_set": _float(resp.get("fio2_set")),
        "lpm_set": _float(resp.get("lpm_set")),
        "peep_set": _float(resp.get("peep_set")),
    }), ["hospitalization_id", "recorded_dttm"])
    t["medication_admin_intermittent"] = _sorted(pa.table({
        "hospitalization_id": _str(meds.get("hospitalization_id")),
        "admin_dttm": _ts(meds.get("admin_dttm")),
        "med_category": _str(meds.get("med_category")),
        "med_name": _str(meds.get("med_name")),
        "med_route_category": _str(meds.get("med_route_category")),
        "med_dose": _float(meds.get("med_dose")),
        "med_dose_unit": _str(meds.get("med_dose_unit")),
        "mar_action_category": _str(meds.get("mar_action_category")),
    }), ["hospitalization_id", "admin_dttm", "med_category"])
    t["ecmo_mcs"] = _sorted(pa.table({
        "hospitalization_id": _str(ecmo.get("hospitalization_id")),
        "recorded_dttm": _ts(ecmo.get("recorded_dttm").astype(np.int64)),
        "device_category": _str(ecmo.get("device_category")),
        "mcs_group": _str(ecmo.get("mcs_group")),
        "flow": _float(ecmo.get("flow")),
        "sweep": _float(ecmo.get("sweep")),
        "fdO2": _float(ecmo.get("fdO2")),
    }), ["hospitalization_id", "recorded_dttm"])
    dx = [("H" + c.patient_id, code, p, poa) for c in courses for code, p, poa in c.diagnoses]
    t["hospital_diagnosis"] = _sorted(pa.table({
        "hospitalization_id": _str([r[0] for r in dx]),
        "diagnosis_code": _str([r[1] for r in dx]),
        "diagnosis_code_format": _str(["icd10cm"] * len(dx)),
        "diagnosis_primary": pa.array([r[2] for r in dx], pa.int32()),
        "poa_present": pa.array([r[3] for r in dx], pa.int32()),
    }), ["hospitalization_id", "diagnosis_code"])
    t["enrollment"] = pa.table({
        "patient_id": _str(pid),
        "hospitalization_id": _str(hid),
        "arm": _str(["trial" if c.group == "trial" else "pool" for c in courses]),
        "inclusion_dttm": _ts_nullable([c.inclusion for c in courses]),
    })
    adm = trial_extra["administration"]
    t["administration"] = _sorted(pa.table({
        "patient_id": _str([r["patient_id"] for r in adm]),
        "admin_dttm": _ts([r["admin_dttm"] for r in adm]),
        "product": _str([r["product"] for r in adm]),
        "dose": _float([r["dose"] for r in adm]),
        "dose_unit": _str([r["dose_unit"] for r in adm]),
        "route": _str([r["route"] for r in adm]),
        "lot": _str([r["lot"] for r in adm]),
    }), ["patient_id", "admin_dttm"])
    ae = trial_extra["adverse_event"]
    t["adverse_event"] = _sorted(pa.table({
        "patient_id": _str([r["patient_id"] for r in ae]),
        "onset_dttm": _ts([r["onset_dttm"] for r in ae]),
        "term": _str([r["term"] for r in ae]),
        "soc": _str([r["soc"] for r in ae]),
        "grade": pa.array([r["grade"] for r in ae], pa.int32()),
        "serious": pa.array([r["serious"] for r in ae], pa.bool_()),
        "relatedness": _str([r["relatedness"] for r in ae]),
        "outcome": _str([r["outcome"] for r in ae]),
        "note": _str([r.get("note") for r in ae]),
    }), ["patient_id", "onset_dttm"])
    return t
