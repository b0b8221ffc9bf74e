"""Render one block of courses into the CLIF and trial tables (pyarrow), vectorised.

Row-level values drawn here (charting times, vital signs, laboratory values, diagnoses) come from
the block's own generator after the courses, so a block's tables depend only on the seed and the
block number. Ids are zero-padded (``P000000001`` / ``H000000001``) so that string order is
numeric order. Strings are built once per block and expanded with Arrow ``take``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ._courses import COVID, DAY, DEVICES, HOUR, ICU, IMV, MIN, N_SLOTS, RECORD_STEP_H, WARD, Courses

__all__ = ["SCHEMAS", "TABLE_NAMES", "render_block", "trial_tables"]

_TS = pa.timestamp("us", tz="UTC")
_S, _F, _I = pa.string(), pa.float64(), pa.int32()

SCHEMAS: dict[str, pa.Schema] = {
    "patient": pa.schema([("patient_id", _S), ("sex_category", _S), ("birth_date", pa.date32()),
                          ("death_dttm", _TS), ("race_category", _S), ("ethnicity_category", _S)]),
    "hospitalization": pa.schema([("patient_id", _S), ("hospitalization_id", _S), ("admission_dttm", _TS),
                                  ("discharge_dttm", _TS), ("age_at_admission", _I), ("discharge_category", _S)]),
    "adt": pa.schema([("hospitalization_id", _S), ("in_dttm", _TS), ("out_dttm", _TS),
                      ("location_category", _S), ("location_name", _S), ("hospital_id", _S)]),
    "vitals": pa.schema([("hospitalization_id", _S), ("recorded_dttm", _TS), ("vital_category", _S),
                         ("vital_value", _F)]),
    "labs": pa.schema([("hospitalization_id", _S), ("lab_collect_dttm", _TS), ("lab_category", _S),
                       ("lab_value_numeric", _F), ("reference_unit", _S)]),
    "respiratory_support": pa.schema([("hospitalization_id", _S), ("recorded_dttm", _TS), ("device_category", _S),
                                      ("fio2_set", _F), ("lpm_set", _F), ("peep_set", _F)]),
    "medication_admin_intermittent": pa.schema([("hospitalization_id", _S), ("admin_dttm", _TS), ("med_category", _S),
                                                ("med_name", _S), ("med_route_category", _S), ("med_dose", _F),
                                                ("med_dose_unit", _S), ("mar_action_category", _S)]),
    "ecmo_mcs": pa.schema([("hospitalization_id", _S), ("recorded_dttm", _TS), ("device_category", _S),
                           ("mcs_group", _S), ("flow", _F), ("sweep", _F), ("fdO2", _F)]),
    "hospital_diagnosis": pa.schema([("hospitalization_id", _S), ("diagnosis_code", _S), ("diagnosis_code_format", _S),
                                     ("diagnosis_primary", _I), ("poa_present", _I)]),
    "enrollment": pa.schema([("patient_id", _S), ("hospitalization_id", _S), ("arm", _S), ("inclusion_dttm", _TS)]),
    "administration": pa.schema([("patient_id", _S), ("admin_dttm", _TS), ("product", _S), ("dose", _F),
                                 ("dose_unit", _S), ("route", _S), ("lot", _S)]),
    "adverse_event": pa.schema([("patient_id", _S), ("onset_dttm", _TS), ("term", _S), ("soc", _S), ("grade", _I),
                                ("serious", pa.bool_()), ("relatedness", _S), ("outcome", _S)]),
}
TABLE_NAMES = tuple(SCHEMAS)

_DEVICE_ARR = pa.array(DEVICES, _S)
_RACE = pa.array(["White", "Black or African American", "Asian", "Other", "Unknown"], _S)
_RACE_P = np.array([0.72, 0.1, 0.06, 0.05, 0.07])
_ETH = pa.array(["Non-Hispanic", "Hispanic", "Unknown"], _S)
_ETH_P = np.array([0.85, 0.08, 0.07])
_SEX = pa.array(["Female", "Male"], _S)


def _ts(us) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), type=_TS)


def _ts_null(us) -> pa.Array:
    us = np.asarray(us, dtype=np.int64)
    return pa.array(np.where(us < 0, 0, us), type=_TS, mask=us < 0)


def _const(value, n: int, typ=_S) -> pa.Array:
    return pa.array([value], typ).take(pa.array(np.zeros(n, dtype=np.int32)))


def _pick(values: pa.Array, codes) -> pa.Array:
    return values.take(pa.array(np.asarray(codes, dtype=np.int32)))


def _f(a) -> pa.Array:
    a = np.asarray(a, dtype=np.float64)
    nan = np.isnan(a)
    return pa.array(a, _F, mask=nan) if nan.any() else pa.array(a, _F)


def ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """Zero-padded ids (``P000000001``) of 1-based ``numbers``."""
    return pa.array(np.char.add(prefix, np.char.zfill(numbers.astype(str), 9)).astype(object), _S)


def _expand(owner_s: np.ndarray, owner_e: np.ndarray, step: np.ndarray, rng, jitter_min: int = 0):
    """Regular records over intervals ``[s, e)`` every ``step`` µs: (interval index, time)."""
    length = np.maximum(owner_e - owner_s, 0)
    m = np.where(length > 0, (length - 1) // step + 1, 0)
    k = np.repeat(np.arange(len(m)), m)
    pos = np.arange(len(k)) - np.repeat(np.cumsum(m) - m, m)
    t = owner_s[k] + pos * step[k]
    if jitter_min:
        j = rng.integers(-jitter_min, jitter_min + 1, len(k)) * MIN
        t = np.where(pos > 0, np.minimum(t + j, owner_e[k] - MIN), t)
    return k, t


def render_block(c: Courses, rng: np.random.Generator, first_number: int) -> dict[str, pa.Table]:
    """Tables of one block; hospitalization ``i`` of the block is number ``first_number + i``."""
    n = c.n
    numbers = np.arange(first_number, first_number + n)
    pid, hid = ids("P", numbers), ids("H", numbers)
    return _render(c, rng, pid, hid, arm="pool")


def _render(c: Courses, rng, pid: pa.Array, hid: pa.Array, *, arm: str, inclusion=None) -> dict[str, pa.Table]:
    n = c.n
    t: dict[str, pa.Table] = {}
    covid, icu = c.kind == COVID, c.kind != WARD

    sex = c.male.astype(np.int32)
    race = rng.choice(len(_RACE_P), n, p=_RACE_P)
    eth = rng.choice(len(_ETH_P), n, p=_ETH_P)
    t["patient"] = pa.table([pid, _pick(_SEX, sex), pa.array(c.birth_day.astype(np.int32), pa.date32()),
                             _ts_null(c.death), _pick(_RACE, race), _pick(_ETH, eth)], schema=SCHEMAS["patient"])

    expired = (c.death >= 0) & (c.death <= c.dis)
    other = rng.choice(4, n, p=[0.8, 0.1, 0.05, 0.05])
    dis_cat = pa.array(["Home", "Skilled Nursing Facility (SNF)", "Acute Inpatient Rehab Facility",
                        "Long Term Care Hospital (LTACH)", "Expired"], _S)
    age_adm = np.floor(((c.adm // DAY) - c.birth_day) / 365.25).astype(np.int32)
    t["hospitalization"] = pa.table([pid, hid, _ts(c.adm), _ts(c.dis), pa.array(age_adm, _I),
                                     _pick(dis_cat, np.where(expired, 4, other))], schema=SCHEMAS["hospitalization"])

    # adt: ed, ward (before ICU), icu, ward (after ICU); ward stays: ed, ward
    slot_in = np.stack([c.adm, c.ed_out, np.where(icu, c.icu_in, 0), np.where(icu, c.icu_out, 0)], axis=1)
    slot_out = np.stack([c.ed_out, np.where(icu, c.icu_in, c.dis), np.where(icu, c.icu_out, 0),
                         np.where(icu, c.dis, 0)], axis=1)
    keep = slot_out > slot_in
    owner = np.repeat(np.arange(n), 4)[keep.ravel()]
    loc = np.tile(np.arange(4), n)[keep.ravel()]
    loc_cat = pa.array(["ed", "ward", "icu", "ward"], _S)
    ward_no = rng.integers(0, 6, n)
    loc_names = pa.array(["Emergency department"] + [f"Ward {k}" for k in "ABCDEF"] + ["ICU 1", "ICU 2"], _S)
    name_code = np.select([loc == 0, loc == 2], [0, 7 + (owner % 2)], 1 + ward_no[owner])
    t["adt"] = pa.table([hid.take(pa.array(owner)), _ts(slot_in.ravel()[keep.ravel()]),
                         _ts(slot_out.ravel()[keep.ravel()]), _pick(loc_cat, loc), _pick(loc_names, name_code),
                         _const("CHU-1", len(owner))], schema=SCHEMAS["adt"])

    # respiratory support: one record every RECORD_STEP_H hours of each segment (a few minutes' jitter)
    s, e, dev = c.seg_s.ravel(), c.seg_e.ravel(), c.seg_dev.ravel()
    live = e > s
    seg_owner = np.repeat(np.arange(n), N_SLOTS)[live]
    s, e, dev = s[live], e[live], dev[live]
    k, rt = _expand(s, e, RECORD_STEP_H[dev] * HOUR, rng, jitter_min=20)
    r_owner, r_dev = seg_owner[k], dev[k]
    m = len(k)
    fio2 = np.select([r_dev == IMV, r_dev == 3, r_dev == 4], [rng.uniform(0.35, 0.9, m), rng.uniform(0.4, 0.95, m),
                                                              rng.uniform(0.35, 0.7, m)], np.nan)
    lpm = np.select([r_dev == 1, r_dev == 2, r_dev == 3], [rng.integers(1, 7, m), rng.integers(6, 16, m),
                                                           5 * rng.integers(6, 13, m)], np.nan)
    peep = np.where((r_dev == IMV) | (r_dev == 4), 2 * rng.integers(3, 9, m), np.nan)
    t["respiratory_support"] = pa.table([hid.take(pa.array(r_owner)), _ts(rt), _pick(_DEVICE_ARR, r_dev),
                                         _f(np.round(fio2, 2)), _f(lpm), _f(peep)], schema=SCHEMAS["respiratory_support"])

    # vitals: heart rate and respiratory rate every 12 h, height and weight once
    k, vt = _expand(c.adm + 30 * MIN, c.dis, np.full(n, 12 * HOUR), rng, jitter_min=45)
    in_icu = icu[k] & (vt >= c.icu_in[k]) & (vt < c.icu_out[k])
    m = len(k)
    hr = np.round(rng.normal(80, 12, m) + 12 * in_icu)
    rr = np.round(np.clip(rng.normal(18, 3, m) + np.where(in_icu & covid[k], 7, 2 * in_icu), 8, 45))
    hw = np.arange(n)
    hw_t = c.adm + 20 * MIN
    vit_owner = np.concatenate([hw, hw, k, k])
    vit_time = np.concatenate([hw_t, hw_t, vt, vt])
    vit_cat = np.concatenate([np.zeros(n), np.ones(n), np.full(m, 2), np.full(m, 3)]).astype(np.int32)
    vit_val = np.concatenate([c.height, c.weight, hr, rr])
    cats = pa.array(["height_cm", "weight_kg", "heart_rate", "respiratory_rate"], _S)
    t["vitals"] = pa.table([hid.take(pa.array(vit_owner)), _ts(vit_time), _pick(cats, vit_cat), _f(vit_val)],
                           schema=SCHEMAS["vitals"])

    t["labs"] = _labs(c, rng, hid)

    # dexamethasone once daily
    dx = c.dexa_n > 0
    owner = np.repeat(np.flatnonzero(dx), c.dexa_n[dx])
    pos = np.arange(len(owner)) - np.repeat(np.cumsum(c.dexa_n[dx]) - c.dexa_n[dx], c.dexa_n[dx])
    md = len(owner)
    t["medication_admin_intermittent"] = pa.table([
        hid.take(pa.array(owner)), _ts(c.dexa_first[owner] + pos * DAY), _const("dexamethasone", md),
        _const("dexamethasone 6 mg", md), _const("iv", md), pa.array(np.full(md, 6.0), _F), _const("mg", md),
        _const("given", md)], schema=SCHEMAS["medication_admin_intermittent"])

    # ECMO every 2 h
    on = c.ecmo_s >= 0
    idx = np.flatnonzero(on)
    k, et = _expand(c.ecmo_s[idx], c.ecmo_e[idx], np.full(len(idx), 2 * HOUR), rng)
    me = len(k)
    t["ecmo_mcs"] = pa.table([hid.take(pa.array(idx[k])), _ts(et), _const("VV ECMO", me), _const("ECMO", me),
                              _f(np.round(rng.uniform(3.5, 5.2, me), 2)), _f(np.round(rng.uniform(2, 8, me), 1)),
                              _f(np.round(rng.uniform(0.6, 1.0, me), 2))], schema=SCHEMAS["ecmo_mcs"])

    t["hospital_diagnosis"] = _diagnoses(c, rng, hid)
    t["enrollment"] = pa.table([pid, hid, _const(arm, n),
                                _ts_null(np.full(n, -1) if inclusion is None else inclusion)], schema=SCHEMAS["enrollment"])
    return t


# lab_category, unit, rounding, per-kind period in days (0 = not drawn) for WARD, ICU, COVID
_LABS = (
    ("crp", "mg/L", 1, (2, 1, 1)),
    ("d_dimer", "ug/L FEU", 0, (0, 2, 1)),
    ("creatinine", "mg/dL", 2, (2, 1, 1)),
    ("lymphocytes_absolute", "10^3/uL", 2, (0, 2, 2)),
    ("ferritin", "ng/mL", 0, (0, 0, 2)),
    ("platelet_count", "10^3/uL", 0, (2, 2, 0)),
)


def _labs(c: Courses, rng, hid: pa.Array) -> pa.Table:
    """A morning draw each day (05:00-06:30), the first at admission; analytes by kind and period."""
    n = c.n
    first_day = c.adm // DAY + 1
    n_days = np.maximum(c.dis // DAY - first_day + 1, 0) + 1
    k = np.repeat(np.arange(n), n_days)
    day = np.arange(len(k)) - np.repeat(np.cumsum(n_days) - n_days, n_days)  # 0 = admission draw
    t = np.where(day == 0, c.adm[k] + 40 * MIN,
                 (first_day[k] + day - 1) * DAY + 5 * HOUR + rng.integers(0, 91, len(k)) * MIN)
    ok = t < c.dis[k] - 10 * MIN
    k, day, t = k[ok], day[ok], t[ok]
    kind = c.kind[k]
    sev = np.where(c.icu_in[k] >= 0, np.exp(-np.abs(t - c.icu_in[k]) / (4 * DAY)), 0.0) * (kind == COVID)
    base = {
        "crp": np.where(kind == WARD, np.exp(rng.normal(np.log(15), 1.0, n))[k],
                        5 + np.exp(rng.normal(np.log(110), 0.5, n))[k] * (0.3 + 0.7 * sev)),
        "d_dimer": np.exp(rng.normal(np.log(900), 0.5, n))[k] * (1 + 0.04 * day) * (1 + (kind == COVID)),
        "creatinine": np.exp(rng.normal(np.log(0.9), 0.3, n))[k] * (1 + 0.4 * (kind == ICU)),
        "lymphocytes_absolute": np.where(kind == COVID, 0.7, 1.4) * np.exp(rng.normal(0, 0.3, n))[k],
        "ferritin": np.exp(rng.normal(np.log(800), 0.6, n))[k],
        "platelet_count": np.exp(rng.normal(np.log(230), 0.25, n))[k],
    }
    owners, times, cats, vals, units = [], [], [], [], []
    for code, (cat, unit, dec, periods) in enumerate(_LABS):
        period = np.array(periods)[kind]
        mask = (period > 0) & (day % np.maximum(period, 1) == 0)
        v = np.round(base[cat][mask] * np.exp(rng.normal(0, 0.12, int(mask.sum()))), dec)
        owners.append(k[mask])
        times.append(t[mask])
        cats.append(np.full(int(mask.sum()), code, dtype=np.int32))
        vals.append(v)
    o = np.concatenate(owners)
    cat_arr = pa.array([x[0] for x in _LABS], _S)
    unit_arr = pa.array([x[1] for x in _LABS], _S)
    cc = np.concatenate(cats)
    return pa.table([hid.take(pa.array(o)), _ts(np.concatenate(times)), _pick(cat_arr, cc), _f(np.concatenate(vals)),
                     _pick(unit_arr, cc)], schema=SCHEMAS["labs"])


_DX_WARD = ("J18.9", "I50.9", "N17.9", "K85.9", "S72.001A", "N39.0", "I48.91", "K57.92")
_DX_ICU = ("A41.9", "I21.4", "J96.01", "I46.9", "K92.2", "I61.9")


def _diagnoses(c: Courses, rng, hid: pa.Array) -> pa.Table:
    """Primary code by kind (COVID U07.1), then comorbidities (diabetes, hypertension, obesity,
    respiratory failure in ICU, pulmonary embolism)."""
    n = c.n
    codes = list(("U07.1",) + _DX_WARD + _DX_ICU + ("E11.9", "I10", "E66.9", "J96.01", "I26.99", "J12.82"))
    primary = np.select([c.kind == COVID, c.kind == ICU],
                        [0, 1 + len(_DX_WARD) + rng.integers(0, len(_DX_ICU), n)], 1 + rng.integers(0, len(_DX_WARD), n))
    base = len(_DX_WARD) + len(_DX_ICU) + 1
    bmi = c.weight / (c.height / 100) ** 2
    extra = [
        (rng.random(n) < 0.15 + 0.2 * (c.age > 55), base),  # diabetes
        (rng.random(n) < 0.2 + 0.35 * (c.age > 55), base + 1),  # hypertension
        ((bmi >= 30) & (rng.random(n) < 0.7), base + 2),  # obesity
        ((c.kind == COVID) & (c.icu_in >= 0), base + 3),  # respiratory failure
        ((c.kind == COVID) & (rng.random(n) < 0.05), base + 4),  # pulmonary embolism
        (c.kind == COVID, base + 5),  # COVID pneumonia
    ]
    owner = np.concatenate([np.arange(n)] + [np.flatnonzero(m) for m, _ in extra])
    code = np.concatenate([primary] + [np.full(int(m.sum()), k) for m, k in extra])
    is_primary = np.concatenate([np.ones(n, np.int32), np.zeros(len(owner) - n, np.int32)])
    order = np.argsort(owner, kind="stable")
    owner, code, is_primary = owner[order], code[order], is_primary[order]
    poa = np.where(code == base + 4, 0, 1).astype(np.int32)
    return pa.table([hid.take(pa.array(owner)), _pick(pa.array(codes, _S), code), _const("icd10cm", len(owner)),
                     pa.array(is_primary, _I), pa.array(poa, _I)], schema=SCHEMAS["hospital_diagnosis"])


_AES = (
    ("Hypokalaemia", "Metabolism and nutrition disorders"),
    ("Atrial fibrillation", "Cardiac disorders"),
    ("Hyperglycaemia", "Metabolism and nutrition disorders"),
    ("Delirium", "Psychiatric disorders"),
    ("Anaemia", "Blood and lymphatic system disorders"),
    ("Pyrexia", "General disorders and administration site conditions"),
)


def trial_tables(c: Courses, rng: np.random.Generator, *, product: str = "MSC") -> tuple[dict[str, pa.Table], np.ndarray]:
    """Tables of the trial arm: its CLIF rows plus enrollment, administration and adverse_event.

    The product is first given 12-72 h after the patient is first in ICU on dexamethasone (so the
    trial patient meets the pool's index rule before the first dose), then every 72 h, three doses
    of 1.5-3.0 x 10^6 cells/kg; each patient has 0-2 adverse events in the first week.
    """
    n = c.n
    numbers = np.arange(1, n + 1)
    pid = pa.array([f"T{k:03d}" for k in numbers], _S)
    hid = pa.array([f"HT{k:03d}" for k in numbers], _S)
    start = np.maximum(c.icu_in, c.dexa_first)
    index = start + (rng.uniform(12, 72, n) * HOUR / MIN).astype(np.int64) * MIN
    inclusion = index - rng.integers(2 * 60, 8 * 60, n) * MIN
    t = _render(c, rng, pid, hid, arm="trial", inclusion=inclusion)
    owner = np.repeat(np.arange(n), 3)
    dose_no = np.tile(np.arange(3), n)
    doses = np.round(rng.uniform(1.5, 3.0, 3 * n), 2)
    lots = pa.array([f"MSC-{p}-{d + 1}" for p, d in zip(pid.take(pa.array(owner)).to_pylist(), dose_no)], _S)
    t["administration"] = pa.table([pid.take(pa.array(owner)), _ts(index[owner] + dose_no * 72 * HOUR),
                                    _const(product, 3 * n), pa.array(doses, _F), _const("10^6 cells/kg", 3 * n),
                                    _const("IV", 3 * n), lots], schema=SCHEMAS["administration"])
    n_ae = rng.integers(0, 3, n)
    owner = np.repeat(np.arange(n), n_ae)
    ma = len(owner)
    which = rng.integers(0, len(_AES), ma)
    grade = rng.choice([1, 2, 3], ma, p=[0.5, 0.35, 0.15]).astype(np.int32)
    onset = index[owner] + (rng.uniform(2, 160, ma) * HOUR / MIN).astype(np.int64) * MIN
    order = np.lexsort((onset, owner))
    owner, which, grade, onset = owner[order], which[order], grade[order], onset[order]
    t["adverse_event"] = pa.table([pid.take(pa.array(owner)), _ts(onset), _pick(pa.array([a[0] for a in _AES], _S), which),
                                   _pick(pa.array([a[1] for a in _AES], _S), which), pa.array(grade, _I),
                                   pa.array(grade >= 3), _pick(pa.array(["not related", "unlikely", "possible"], _S),
                                                               rng.integers(0, 3, ma)),
                                   _const("recovered/resolved", ma)], schema=SCHEMAS["adverse_event"])
    return t, index
