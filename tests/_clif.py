"""A tiny hand-built CLIF dataset with timelines whose endpoints are worked out by hand.

Used by the cohort, features, outcomes and pipeline tests. Every expected number in those tests is
derived in their docstrings from the timelines below, not from controlarm's output.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

T = pd.Timestamp


def ts(s: str) -> pd.Timestamp:
    return T(s, tz="UTC")


def _every(start: str, end: str, device: str, hours: int = 6, **extra) -> list[dict]:
    """Respiratory records every `hours` from start (inclusive) to end (exclusive)."""
    out = []
    t = ts(start)
    while t < ts(end):
        out.append({"recorded_dttm": t, "device_category": device, **extra})
        t += pd.Timedelta(hours=hours)
    return out


# patient_id -> (arm, sex, birth_date, admission, discharge, death)
PATIENTS = {
    # trial: index = first MSC 2020-06-02 00:00
    "T1": ("trial", "Male", "1970-01-01", "2020-06-01 00:00", "2020-06-12 00:00", None),
    # pool, eligible: index = 2020-07-01 06:00 (ICU in_dttm 06:00, HFNC from 06:00, dex at 2020-07-01 00:00)
    "C1": ("pool", "Male", "1968-05-01", "2020-07-01 00:00", "2020-07-11 00:00", "2020-07-11 00:00"),
    # pool, eligible, becomes index only when dexamethasone is first given (2020-08-03 12:00)
    "C2": ("pool", "Female", "1965-01-01", "2020-08-01 00:00", "2020-08-20 00:00", None),
    # pool: never on dexamethasone
    "C3": ("pool", "Male", "1960-01-01", "2020-09-01 00:00", "2020-09-10 00:00", None),
    # pool: older than 70 at index
    "C4": ("pool", "Female", "1940-01-01", "2020-10-01 00:00", "2020-10-10 00:00", None),
    # pool: only nasal cannula in ICU -> never on HFNO/IMV in ICU
    "C5": ("pool", "Male", "1975-01-01", "2020-11-01 00:00", "2020-11-08 00:00", None),
}


def tables() -> dict[str, pd.DataFrame]:
    patient, hosp, enrol = [], [], []
    for pid, (arm, sex, birth, adm, dis, death) in PATIENTS.items():
        patient.append({"patient_id": pid, "sex_category": sex, "birth_date": pd.Timestamp(birth).date(),
                        "death_dttm": ts(death) if death else pd.NaT, "race_category": "White",
                        "ethnicity_category": "Non-Hispanic"})
        hosp.append({"patient_id": pid, "hospitalization_id": "H" + pid, "admission_dttm": ts(adm),
                     "discharge_dttm": ts(dis), "discharge_category": "Expired" if death else "Home"})
        enrol.append({"patient_id": pid, "hospitalization_id": "H" + pid, "arm": arm,
                      "inclusion_dttm": ts("2020-06-02 00:00") if arm == "trial" else pd.NaT})

    adt = [
        ("T1", "ward", "2020-06-01 00:00", "2020-06-01 00:00"),
        ("T1", "icu", "2020-06-01 00:00", "2020-06-10 00:00"),
        ("T1", "ward", "2020-06-10 00:00", "2020-06-12 00:00"),
        ("C1", "ward", "2020-07-01 00:00", "2020-07-01 06:00"),
        ("C1", "icu", "2020-07-01 06:00", "2020-07-11 00:00"),
        ("C2", "icu", "2020-08-01 00:00", "2020-08-15 00:00"),
        ("C2", "ward", "2020-08-15 00:00", "2020-08-20 00:00"),
        ("C3", "icu", "2020-09-01 00:00", "2020-09-10 00:00"),
        ("C4", "icu", "2020-10-01 00:00", "2020-10-10 00:00"),
        ("C5", "icu", "2020-11-01 00:00", "2020-11-08 00:00"),
    ]
    adt = pd.DataFrame([{"hospitalization_id": "H" + p, "location_category": loc, "in_dttm": ts(a),
                         "out_dttm": ts(b), "location_name": loc.upper()} for p, loc, a, b in adt])

    resp = []

    def add(pid, rows):
        resp.extend({"hospitalization_id": "H" + pid, **r} for r in rows)

    # T1: HFNC 06-01 00:00 -> IMV 06-03 12:00 -> IMV until 06-05 06:00 -> NC -> Room Air 06-09 00:00
    add("T1", _every("2020-06-01 00:00", "2020-06-03 12:00", "High Flow NC", fio2_set=0.6))
    add("T1", _every("2020-06-03 12:00", "2020-06-05 06:00", "IMV", hours=2, fio2_set=0.5, peep_set=10.0))
    add("T1", _every("2020-06-05 06:00", "2020-06-09 00:00", "Nasal Cannula", lpm_set=3.0))
    add("T1", _every("2020-06-09 00:00", "2020-06-12 00:00", "Room Air"))
    # C1: HFNC from ICU entry 07-01 06:00 until death 07-11 00:00
    add("C1", _every("2020-07-01 06:00", "2020-07-11 00:00", "High Flow NC", fio2_set=0.7))
    # C2: HFNC from 08-01 00:00 to 08-10 00:00, then Room Air
    add("C2", _every("2020-08-01 00:00", "2020-08-10 00:00", "High Flow NC", fio2_set=0.5))
    add("C2", _every("2020-08-10 00:00", "2020-08-20 00:00", "Room Air"))
    add("C3", _every("2020-09-01 00:00", "2020-09-05 00:00", "IMV", fio2_set=0.5))
    add("C4", _every("2020-10-01 00:00", "2020-10-05 00:00", "High Flow NC", fio2_set=0.5))
    add("C5", _every("2020-11-01 00:00", "2020-11-05 00:00", "Nasal Cannula", lpm_set=2.0))
    resp = pd.DataFrame(resp)
    for col in ("fio2_set", "lpm_set", "peep_set"):
        if col not in resp:
            resp[col] = float("nan")

    meds = []
    for pid, start, days in [("T1", "2020-06-01 00:00", 10), ("C1", "2020-07-01 00:00", 10),
                             ("C2", "2020-08-03 12:00", 10), ("C4", "2020-10-01 00:00", 5),
                             ("C5", "2020-11-01 00:00", 5)]:
        for d in range(days):
            meds.append({"hospitalization_id": "H" + pid, "admin_dttm": ts(start) + pd.Timedelta(days=d),
                         "med_category": "dexamethasone", "med_name": "DEXAMETHASONE 6 MG IV",
                         "med_route_category": "iv", "med_dose": 6.0, "med_dose_unit": "mg"})
    meds = pd.DataFrame(meds)

    labs = [
        # CRP before index: T1 two values in the 48 h look-back, the later one counts (mg/dL -> x10)
        ("T1", "2020-05-31 12:00", "crp", 50.0, "mg/L"),
        ("T1", "2020-06-01 20:00", "crp", 8.0, "mg/dL"),
        ("C1", "2020-07-01 05:00", "crp", 120.0, "mg/L"),
        ("C2", "2020-08-03 06:00", "crp", 90.0, "mg/L"),
        ("C2", "2020-07-30 06:00", "crp", 10.0, "mg/L"),   # outside the 48 h look-back
        # D-dimer around day 7: T1 index 06-02 00:00 -> target 06-09 00:00
        ("T1", "2020-06-08 20:00", "d_dimer", 900.0, "ng/mL"),   # 4 h before
        ("T1", "2020-06-09 03:00", "d_dimer", 1.5, "mg/L FEU"),  # 3 h after: nearest -> 1500 ug/L
        ("T1", "2020-06-10 06:00", "d_dimer", 400.0, "ug/L"),    # outside +-1 day
        # C1 index 07-01 06:00 -> target 07-08 06:00; two values 5 h either side: the earlier wins
        ("C1", "2020-07-08 01:00", "d_dimer", 2000.0, "ng/mL"),
        ("C1", "2020-07-08 11:00", "d_dimer", 3000.0, "ng/mL"),
        # C2 has no D-dimer within +-1 day of day 7
        ("C2", "2020-08-05 06:00", "d_dimer", 700.0, "ng/mL"),
    ]
    labs = pd.DataFrame([{"hospitalization_id": "H" + p, "lab_collect_dttm": ts(t), "lab_category": c,
                          "lab_value_numeric": v, "reference_unit": u, "lab_value": str(v), "lab_name": c.upper()}
                         for p, t, c, v, u in labs])

    vitals = []
    for pid, t, cat, v in [("T1", "2020-06-01 01:00", "weight_kg", 90.0), ("T1", "2020-06-01 01:00", "height_cm", 180.0),
                           ("T1", "2020-06-01 22:00", "respiratory_rate", 28.0),
                           ("C1", "2020-07-01 01:00", "weight_kg", 80.0), ("C1", "2020-07-01 01:00", "height_cm", 170.0),
                           ("C1", "2020-07-01 05:00", "respiratory_rate", 30.0),
                           ("C2", "2020-08-01 01:00", "weight_kg", 70.0), ("C2", "2020-08-01 01:00", "height_cm", 160.0),
                           ("C2", "2020-08-03 10:00", "respiratory_rate", 24.0)]:
        vitals.append({"hospitalization_id": "H" + pid, "recorded_dttm": ts(t), "vital_category": cat, "vital_value": v})
    vitals = pd.DataFrame(vitals)

    dx = pd.DataFrame([{"hospitalization_id": "H" + p, "diagnosis_code": c, "diagnosis_code_format": "icd10cm",
                        "diagnosis_primary": 0, "poa_present": 1}
                       for p, c in [("T1", "U07.1"), ("T1", "E11.9"), ("C1", "U07.1"), ("C1", "I10"), ("C2", "U07.1")]])
    ecmo = pd.DataFrame({"hospitalization_id": pd.Series(dtype=str), "recorded_dttm": pd.Series(dtype="datetime64[ns, UTC]"),
                         "device_category": pd.Series(dtype=str), "mcs_group": pd.Series(dtype=str)})
    admin = pd.DataFrame([{"patient_id": "T1", "admin_dttm": ts("2020-06-02 00:00") + pd.Timedelta(days=3 * k),
                           "product": "MSC", "dose": 2.0, "dose_unit": "10^6 cells/kg", "route": "IV", "lot": "L1"}
                          for k in range(3)])
    ae = pd.DataFrame([{"patient_id": "T1", "onset_dttm": ts("2020-06-06 00:00"), "term": "Ischaemic stroke",
                        "soc": "Nervous system disorders", "grade": 3, "serious": True, "relatedness": "not related",
                        "outcome": "recovered"}])
    return {
        "patient": pd.DataFrame(patient), "hospitalization": pd.DataFrame(hosp), "adt": adt,
        "respiratory_support": resp, "medication_admin_intermittent": meds, "labs": labs, "vitals": vitals,
        "hospital_diagnosis": dx, "ecmo_mcs": ecmo, "enrollment": pd.DataFrame(enrol),
        "administration": admin, "adverse_event": ae,
    }


STUDY = """
[study]
name = "tiny"
seed = 1
[data]
source = "data"
cutoff = 2021-01-01
[cohort]
calendar_start = 2020-03-01
calendar_end = 2021-12-31
age_min = 18
age_max = 70
[index]
product = "MSC"
[index.pool]
location = "icu"
devices = ["High Flow NC", "IMV"]
medication = "dexamethasone"
medication_window_hours = 24
[features]
[[features.covariates]]
name = "age"
kind = "age"
[[features.covariates]]
name = "male"
kind = "sex"
[[features.covariates]]
name = "bmi"
kind = "bmi"
lookback_hours = 720
[[features.covariates]]
name = "crp"
kind = "lab"
category = "crp"
unit = "mg/L"
[[features.covariates]]
name = "respiratory_rate"
kind = "vital"
category = "respiratory_rate"
lookback_hours = 24
[[features.covariates]]
name = "days_since_admission"
kind = "days_since_admission"
[[features.covariates]]
name = "imv_at_index"
kind = "device_at_index"
devices = ["IMV"]
[[features.covariates]]
name = "diabetes"
kind = "diagnosis"
codes = ["E11"]
[matching]
distance = "mahalanobis"
covariates = ["crp"]
ratio = 1
[outcomes]
survival_days = [28, 60]
free_days = ["imv", "hfno", "oxygen", "icu"]
free_days_horizon = 28
[[outcomes.labs]]
category = "d_dimer"
day = 7
window_days = 1
unit = "ug/L"
"""


def write(folder: Path, fmt: str = "parquet") -> Path:
    """Write the tables and the study file; return the study file's path."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, df in tables().items():
        if fmt == "parquet":
            df.to_parquet(data / f"{name}.parquet", index=False)
        else:
            df.to_csv(data / f"{name}.csv", index=False)
    study = folder / "study.toml"
    study.write_text(STUDY)
    return study
