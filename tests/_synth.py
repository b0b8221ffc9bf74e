"""A fast, seeded generator of synthetic CLIF hospitalizations for outcome cross-checks and benchmarks.

Vectorised numpy, written in chunks with pyarrow, so 5M hospitalizations (about 30 days of records
each) fit in memory one chunk at a time. The data are built to hit the edge cases of the outcome
definitions, not to look clinical:

* respiratory records about daily (exponential spacing, so gaps beyond the maximum gap happen),
  devices changing as a Markov chain over every CLIF category, records a little before admission
  and after discharge, and same-instant records of two devices (ties);
* ECMO runs (and non-ECMO Impella rows that must be ignored);
* ICU stays (some starting exactly at the index, some twice), readmissions with their own records;
* deaths inside and after the stay, some exactly at index + 28 or 60 days, some exactly on a day
  boundary;
* D-dimer in several units (ng/mL, µg/L, mg/L FEU, µg/L DDU) plus a unit that cannot convert
  (mmol/L), missing values, two values equidistant from day 7 (a tie) and two at the same instant.

Ids: patient ``P<i>``, hospitalization ``H<i>``, readmission ``R<i>``. Times are microseconds since
the epoch (UTC) in the arrays, ``timestamp[us, UTC]`` in the tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["DEVICES", "generate", "write_parquet", "DIMER_UNITS"]

US = 1_000_000
MIN = 60 * US
HOUR = 3600 * US
DAY = 24 * HOUR
T0 = int(pd.Timestamp("2020-03-01", tz="UTC").value // 1000)

DEVICES = np.array(["Room Air", "Nasal Cannula", "Face Mask", "Trach Collar", "Other", "High Flow NC",
                    "NIPPV", "CPAP", "IMV"], dtype=object)
_DEV_P = np.array([0.22, 0.2, 0.06, 0.03, 0.02, 0.17, 0.06, 0.04, 0.2])
DIMER_UNITS = np.array(["ng/mL", "ug/L", "mg/L FEU", "ug/L DDU", "mmol/L"], dtype=object)
_UNIT_P = np.array([0.35, 0.25, 0.25, 0.13, 0.02])
_UNIT_SCALE = np.array([1.0, 1.0, 0.001, 0.5, 0.001])  # stored value = FEU µg/L * scale


def _ts(us: np.ndarray) -> pa.Array:
    return pa.array(us.astype("int64"), type=pa.timestamp("us", tz="UTC"))


def _ids(prefix: str, idx: np.ndarray) -> pa.Array:
    return pa.array(np.char.add(prefix, idx.astype(str)).astype(object), type=pa.string())


def _uniform_int(rng, lo, hi, size=None) -> np.ndarray:
    return rng.integers(lo, hi, size=size, dtype=np.int64)


def _stays(rng, adm: np.ndarray, dis: np.ndarray, rate_per_day: float):
    """Respiratory records of stays [adm, dis): (row -> stay position, time, device)."""
    n = len(adm)
    los_days = (dis - adm) / DAY
    m = np.maximum(1, rng.poisson(los_days * rate_per_day + 1.0))
    owner = np.repeat(np.arange(n), m)
    first = np.zeros(len(owner), dtype=bool)
    starts = np.concatenate([[0], np.cumsum(m)[:-1]])
    first[starts] = True
    # times: admission, then exponential spacing; some records fall a little past discharge
    step = rng.exponential(DAY / rate_per_day, size=len(owner)).astype(np.int64)
    step[first] = 0
    step = (step // MIN) * MIN  # whole minutes
    rel = np.cumsum(step)
    rel -= np.repeat(rel[starts], m)
    t = adm[owner] + rel
    # a first record up to 6 h before admission for 10% of stays
    early = first & (rng.random(len(owner)) < 0.1)
    t[early] -= _uniform_int(rng, 1, 6 * 60, early.sum()) * MIN
    keep = t < dis[owner] + 12 * HOUR
    keep |= first
    # devices: a Markov chain, a change at 35% of records and at every stay's first record
    new = rng.choice(len(DEVICES), size=len(owner), p=_DEV_P)
    change = first | (rng.random(len(owner)) < 0.35)
    pos = np.where(change, np.arange(len(owner)), 0)
    np.maximum.accumulate(pos, out=pos)
    dev = new[pos]
    owner, t, dev = owner[keep], t[keep], dev[keep]
    # ties: 3% of records get a twin at the same instant with another device
    twin = rng.random(len(owner)) < 0.03
    owner = np.concatenate([owner, owner[twin]])
    t = np.concatenate([t, t[twin]])
    dev = np.concatenate([dev, (dev[twin] + 1 + rng.integers(0, len(DEVICES) - 1, twin.sum())) % len(DEVICES)])
    return owner, t, dev


def generate(n: int, seed: int, *, start: int = 0, rate_per_day: float = 1.0) -> dict[str, pa.Table]:
    """Tables of ``n`` patients (ids ``start .. start + n - 1``), each with one index hospitalization.

    Returns
    -------
    dict
        ``patient, hospitalization, adt, respiratory_support, ecmo_mcs, labs, index`` as Arrow tables
        (``index``: patient_id, hospitalization_id, index_time).
    """
    rng = np.random.default_rng([seed, start])
    i = np.arange(start, start + n)
    adm = T0 + _uniform_int(rng, 0, 600 * 24 * 60, n) * MIN
    los = _uniform_int(rng, 2 * 24 * 60, 55 * 24 * 60, n) * MIN
    dis = adm + los
    # ICU stay: 70% of stays; entry within 3 days of admission
    has_icu = rng.random(n) < 0.7
    icu_in = np.minimum(adm + _uniform_int(rng, 0, 3 * 24 * 60, n) * MIN, dis - HOUR)
    icu_out = np.minimum(icu_in + _uniform_int(rng, 1 * 24 * 60, 25 * 24 * 60, n) * MIN, dis)
    # index: at admission (20%), at ICU entry (15%), else within 72 h of admission
    u = rng.random(n)
    idx = adm + _uniform_int(rng, 0, 72 * 60, n) * MIN
    idx = np.where(u < 0.2, adm, idx)
    idx = np.where((u >= 0.2) & (u < 0.35) & has_icu, icu_in, idx)
    idx = np.minimum(idx, dis - HOUR)
    # deaths: 30%, anywhere from index to 40 days after discharge; some exactly on day boundaries
    death = np.full(n, -1, dtype=np.int64)
    dies = rng.random(n) < 0.30
    span = (dis[dies] - idx[dies]) + 40 * DAY
    death[dies] = idx[dies] + (rng.random(dies.sum()) * span).astype(np.int64) // MIN * MIN
    exact = dies & (rng.random(n) < 0.15)
    k = rng.choice(np.array([28, 28, 60, 7, 14, 1, 3]), size=n)
    death[exact] = idx[exact] + k[exact] * DAY
    # a death inside the stay ends it
    inside = dies & (death < dis)
    dis = np.where(inside, death, dis)
    icu_out = np.minimum(icu_out, dis)
    icu_in = np.minimum(icu_in, icu_out)
    # a second ICU stay for 15% of ICU patients
    icu2 = has_icu & (rng.random(n) < 0.15) & (dis - icu_out > 2 * DAY)
    icu2_in = icu_out + DAY
    icu2_out = np.minimum(icu2_in + _uniform_int(rng, 12 * 60, 6 * 24 * 60, n) * MIN, dis)
    # readmission: 8%, 1 to 20 days after discharge, for those alive then
    readm = (rng.random(n) < 0.08) & ((death < 0) | (death > dis + 25 * DAY))
    r_adm = dis + _uniform_int(rng, 24 * 60, 20 * 24 * 60, n) * MIN
    r_dis = r_adm + _uniform_int(rng, 24 * 60, 15 * 24 * 60, n) * MIN
    r_icu = readm & (rng.random(n) < 0.4)

    pid = _ids("P", i)
    hid = _ids("H", i)
    rid_all = np.char.add("R", i.astype(str)).astype(object)
    hid_all = np.char.add("H", i.astype(str)).astype(object)
    pid_all = np.char.add("P", i.astype(str)).astype(object)

    birth = (pd.Timestamp("1940-01-01").value // (DAY * 1000) + _uniform_int(rng, 0, 60 * 365, n)).astype("int32")
    patient = pa.table({
        "patient_id": pid,
        "sex_category": pa.array(np.where(rng.random(n) < 0.6, "Male", "Female").astype(object)),
        "birth_date": pa.array(birth, type=pa.date32()),
        "death_dttm": pa.array(np.where(death >= 0, death, 0), type=pa.timestamp("us", tz="UTC"), mask=death < 0),
    })
    h_pid = np.concatenate([pid_all, pid_all[readm]])
    h_hid = np.concatenate([hid_all, rid_all[readm]])
    h_adm = np.concatenate([adm, r_adm[readm]])
    h_dis = np.concatenate([dis, r_dis[readm]])
    hospitalization = pa.table({
        "patient_id": pa.array(h_pid, type=pa.string()),
        "hospitalization_id": pa.array(h_hid, type=pa.string()),
        "admission_dttm": _ts(h_adm),
        "discharge_dttm": _ts(h_dis),
    })

    # adt: ward / icu / ward (/ icu / ward), readmissions ward or icu
    rows_h, rows_loc, rows_in, rows_out = [], [], [], []

    def add(mask, h, loc, a, b):
        rows_h.append(h[mask]); rows_loc.append(np.full(mask.sum(), loc, dtype=object))
        rows_in.append(a[mask]); rows_out.append(b[mask])

    no_icu = ~has_icu
    add(no_icu, hid_all, "ward", adm, dis)
    add(has_icu, hid_all, "ward", adm, icu_in)
    add(has_icu, hid_all, "icu", icu_in, icu_out)
    add(has_icu & ~icu2, hid_all, "ward", icu_out, dis)
    add(icu2, hid_all, "ward", icu_out, icu2_in)
    add(icu2, hid_all, "icu", icu2_in, icu2_out)
    add(icu2, hid_all, "ward", icu2_out, dis)
    add(readm & ~r_icu, rid_all, "ward", r_adm, r_dis)
    add(r_icu, rid_all, "icu", r_adm, r_dis)
    a_in, a_out = np.concatenate(rows_in), np.concatenate(rows_out)
    adt = pa.table({
        "hospitalization_id": pa.array(np.concatenate(rows_h), type=pa.string()),
        "in_dttm": _ts(a_in), "out_dttm": _ts(a_out),
        "location_category": pa.array(np.concatenate(rows_loc), type=pa.string()),
    })

    # respiratory support, index stays then readmissions
    owner, t, dev = _stays(rng, h_adm, h_dis, rate_per_day)
    resp = pa.table({
        "hospitalization_id": pa.array(h_hid[owner], type=pa.string()),
        "recorded_dttm": _ts(t),
        "device_category": pa.array(DEVICES[dev], type=pa.string()),
    })

    # ECMO: 4% of index stays, records every 8 h for 1-10 days; Impella rows for 1% (ignored)
    ecmo_on = rng.random(n) < 0.04
    e_start = adm + (rng.random(n) * (dis - adm)).astype(np.int64) // MIN * MIN
    e_len = _uniform_int(rng, 1, 10, n) * 3  # records
    e_owner = np.repeat(np.flatnonzero(ecmo_on), e_len[ecmo_on])
    e_k = np.arange(len(e_owner)) - np.repeat(np.cumsum(e_len[ecmo_on]) - e_len[ecmo_on], e_len[ecmo_on])
    e_t = e_start[e_owner] + e_k * 8 * HOUR
    imp = np.flatnonzero(rng.random(n) < 0.01)
    ecmo = pa.table({
        "hospitalization_id": pa.array(np.concatenate([hid_all[e_owner], hid_all[imp]]), type=pa.string()),
        "recorded_dttm": _ts(np.concatenate([e_t, e_start[imp]])),
        "device_category": pa.array(np.concatenate([np.full(len(e_owner), "VV ECMO", dtype=object),
                                                    np.full(len(imp), "Impella", dtype=object)]), type=pa.string()),
        "mcs_group": pa.array(np.concatenate([np.full(len(e_owner), "ECMO", dtype=object),
                                              np.full(len(imp), "temporary LVAD", dtype=object)]), type=pa.string()),
    })

    # D-dimer: ~8 per index stay, 2 per readmission; ties around day 7 for 6%; same-instant pairs for 3%
    m = rng.poisson(8, n)
    l_owner = np.repeat(np.arange(n), m)
    l_t = adm[l_owner] + (rng.random(len(l_owner)) * (dis - adm)[l_owner]).astype(np.int64) // MIN * MIN
    l_h = hid_all[l_owner]
    tie = np.flatnonzero(rng.random(n) < 0.06)
    d = _uniform_int(rng, 0, 20 * 60, len(tie)) * MIN
    same = np.flatnonzero(rng.random(n) < 0.03)
    s_t = idx[same] + 7 * DAY + _uniform_int(rng, -12 * 60, 12 * 60, len(same)) * MIN
    r_owner = np.repeat(np.flatnonzero(readm), 2)
    r_t = r_adm[r_owner] + (rng.random(len(r_owner)) * (r_dis - r_adm)[r_owner]).astype(np.int64)
    lab_h = np.concatenate([l_h, hid_all[tie], hid_all[tie], hid_all[same], hid_all[same], rid_all[r_owner]])
    lab_t = np.concatenate([l_t, idx[tie] + 7 * DAY - d, idx[tie] + 7 * DAY + d, s_t, s_t, r_t])
    nl = len(lab_h)
    feu = np.round(rng.lognormal(7.0, 0.8, nl), 1)
    unit = rng.choice(len(DIMER_UNITS), size=nl, p=_UNIT_P)
    value = feu * _UNIT_SCALE[unit]
    missing = rng.random(nl) < 0.03
    labs = pa.table({
        "hospitalization_id": pa.array(lab_h, type=pa.string()),
        "lab_collect_dttm": _ts(lab_t),
        "lab_category": pa.array(np.full(nl, "d_dimer", dtype=object), type=pa.string()),
        "lab_value_numeric": pa.array(value, mask=missing),
        "reference_unit": pa.array(DIMER_UNITS[unit], type=pa.string()),
    })
    index = pa.table({"patient_id": pid, "hospitalization_id": hid, "index_time": _ts(idx)})
    return {"patient": patient, "hospitalization": hospitalization, "adt": adt, "respiratory_support": resp,
            "ecmo_mcs": ecmo, "labs": labs, "index": index}


def write_parquet(folder: Path, n: int, seed: int, *, chunk: int = 250_000, rate_per_day: float = 1.0) -> dict[str, int]:
    """Write ``<table>.parquet`` for ``n`` patients into ``folder`` (plus ``index.parquet``); return row counts."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    counts: dict[str, int] = {}
    try:
        for start in range(0, n, chunk):
            tables = generate(min(chunk, n - start), seed, start=start, rate_per_day=rate_per_day)
            for name, table in tables.items():
                if name not in writers:
                    writers[name] = pq.ParquetWriter(folder / f"{name}.parquet", table.schema, compression="zstd")
                writers[name].write_table(table, row_group_size=1_000_000)
                counts[name] = counts.get(name, 0) + table.num_rows
    finally:
        for w in writers.values():
            w.close()
    return counts
