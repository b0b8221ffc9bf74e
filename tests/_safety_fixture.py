"""A hand-built trial arm for the safety room, every expected number worked out by hand below.

Five treated patients (SAFT-01..05, first administration ``t0`` on different days) on a protocol of
3 administrations 72 h apart (± 24 h), 1.5-3.0 x 10^6 cells/kg; TEAE window 28 days; infusion
window 24 h. Seven matched controls (SAFC-01..07) and one unmatched pool patient.

Administrations (hours after t0; dose):
  SAFT-01  0, 72, 144          2.0 /kg each                       per protocol
  SAFT-02  0, 144              2.0 /kg each                       MISSED #2 (144 h fills slot 3 on time)
  SAFT-03  0, 72, 144          140 x 10^6 cells each, weight 70   2.0 /kg each (by weight)
  SAFT-04  0, 108, 144, 168    2.0, 2.0, 3.5, 2.0 /kg             LATE #2 (+36 h), WRONG DOSE #3, EXTRA (day 7.0)
  SAFT-05  0, 72, 144          1.5 /kg each (dose_min: allowed)   per protocol; dies day 9
  -> 15 administrations; per patient 3 (2-4); doses median 2.0 (1.5-3.5); cumulative 6 (4-9.5);
     3 of 15 divided by weight. SAFT-03's weights: 80 kg (t0 - 72 h), 70 kg (t0 - 1 h, the one used),
     60 kg after the last dose (ignored), 90 kg in another hospitalization (ignored).

Adverse events (hours after t0):
  SAFT-01  Headache (Nervous system disorders) g1, -2 h                    PRE-TREATMENT
           Pyrexia (General disorders ...) g1, possible, 78 h              TEAE, infusion-related #2
           Fatigue (General disorders ...) g1, 28 d exactly                TEAE (edge included)
           Pneumonia (Infections and infestations) g3 serious, 30 d        AFTER THE TEAE WINDOW
  SAFT-03  Nausea g1 30 h, Nausea g3 48 h, "nausea " g2 240 h, Vomiting g2 50 h (GI, not related)
  SAFT-04  Infusion related reaction (Injury, poisoning ...) g2 probable, 0 h   TEAE (edge), infusion #1
           Rash maculo-papular (Skin ...) g2 possible, 164 h              infusion #3 (20 h after)
           Nausea g1 48 h (GI, not related)
  SAFT-05  <script>alert(1)</script> (Investigations) g1 unlikely, 48 h
           Septic shock (Infections and infestations) g5 serious, not related, 8 d;  death 9 d
  -> TEAEs: 11 events in 4 patients (SAFT-02 has none). GI disorders 2 patients (03, 04), 5 events;
     Nausea 2 patients, 4 events, worst grades 3 (03) and 1 (04). Worst grade per patient:
     01 -> 1, 03 -> 3, 04 -> 2, 05 -> 5. Serious TEAE: 1 (05). Related: 01, 04 (3 events).
     Not related: 01, 03, 04, 05 (8 events). Infusion-related: 01, 04 (3 events; #1, #2, #3).

Context "Thrombo-embolic events", codes I26, I63.9, I80, I82 (dots ignored):
  SAFC-01 I26.99 (poa 0), SAFC-02 I82.4 (poa 1), SAFC-03 I639 (poa 0), SAFC-04 I10 (no);
  SAFC-05 has I26.0 only in another hospitalization (not counted); SAFP-99 (unmatched) has I26.0.
  -> controls 3/7 (42.9%), not present on admission 2/7 (28.6%); treated: SAFT-05 I26.0 -> 1/5.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from controlarm.spec import study_from_dict

H = pd.Timedelta(hours=1)
D = pd.Timedelta(days=1)
XSS = "<script>alert(1)</script>"

T0 = {
    "SAFT-01": pd.Timestamp("2021-01-04 08:00", tz="UTC"),
    "SAFT-02": pd.Timestamp("2021-02-01 09:30", tz="UTC"),
    "SAFT-03": pd.Timestamp("2021-03-01 10:00", tz="UTC"),
    "SAFT-04": pd.Timestamp("2021-04-05 07:15", tz="UTC"),
    "SAFT-05": pd.Timestamp("2021-05-03 12:00", tz="UTC"),
}
CONTROLS = [f"SAFC-0{k}" for k in range(1, 8)]
GI = "Gastrointestinal disorders"
GEN = "General disorders and administration site conditions"
INF = "Infections and infestations"


def hosp(pid: str) -> str:
    return "H" + pid


def tables() -> dict[str, pd.DataFrame]:
    adm = []

    def give(pid, hours, dose, unit="10^6 cells/kg"):
        adm.append({"patient_id": pid, "admin_dttm": T0[pid] + hours * H, "product": "MSC", "dose": dose,
                    "dose_unit": unit, "route": "IV", "lot": f"L-{pid}-{hours}"})

    for h in (0, 72, 144):
        give("SAFT-01", h, 2.0)
        give("SAFT-03", h, 140.0, "10^6 cells")
        give("SAFT-05", h, 1.5)
    for h in (0, 144):
        give("SAFT-02", h, 2.0)
    for h, dose in ((0, 2.0), (108, 2.0), (144, 3.5), (168, 2.0)):
        give("SAFT-04", h, dose)
    # another product is not the investigational one: ignored
    adm.append({"patient_id": "SAFT-01", "admin_dttm": T0["SAFT-01"] + 10 * H, "product": "placebo-flush",
                "dose": 99.0, "dose_unit": "mL", "route": "IV", "lot": "X"})

    ae = []

    def event(pid, hours, term, soc, grade, serious=False, rel="not related"):
        ae.append({"patient_id": pid, "onset_dttm": T0[pid] + hours * H, "term": term, "soc": soc, "grade": grade,
                   "serious": serious, "relatedness": rel, "outcome": "recovered/resolved"})

    event("SAFT-01", -2, "Headache", "Nervous system disorders", 1)
    event("SAFT-01", 78, "Pyrexia", GEN, 1, rel="possible")
    event("SAFT-01", 28 * 24, "Fatigue", GEN, 1)
    event("SAFT-01", 30 * 24, "Pneumonia", INF, 3, serious=True)
    event("SAFT-03", 30, "Nausea", GI, 1)
    event("SAFT-03", 48, "Nausea", GI, 3)
    event("SAFT-03", 240, "nausea ", GI, 2)
    event("SAFT-03", 50, "Vomiting", GI, 2)
    event("SAFT-04", 0, "Infusion related reaction", "Injury, poisoning and procedural complications", 2,
          rel="probable")
    event("SAFT-04", 164, "Rash maculo-papular", "Skin and subcutaneous tissue disorders", 2, rel="possible")
    event("SAFT-04", 48, "Nausea", GI, 1)
    event("SAFT-05", 48, XSS, "Investigations", 1, rel="unlikely")
    event("SAFT-05", 8 * 24, "Septic shock", INF, 5, serious=True)
    # a pool patient's AE row is not the trial's
    ae.append({"patient_id": "SAFC-01", "onset_dttm": T0["SAFT-01"], "term": "Pulmonary embolism",
               "soc": "Respiratory, thoracic and mediastinal disorders", "grade": 3, "serious": True,
               "relatedness": "not related", "outcome": "recovered/resolved"})

    ids = list(T0) + CONTROLS + ["SAFP-99"]
    patient = pd.DataFrame({
        "patient_id": ids,
        "sex_category": ["Male"] * len(ids),
        "birth_date": [pd.Timestamp("1960-01-01").date()] * len(ids),
        "death_dttm": [T0["SAFT-05"] + 9 * D if p == "SAFT-05" else (T0["SAFT-01"] if p == "SAFC-02" else pd.NaT)
                       for p in ids],
    })
    patient["death_dttm"] = pd.to_datetime(patient["death_dttm"], utc=True)
    w = T0["SAFT-03"]
    weights = [(hosp("SAFT-03"), w - 72 * H, "weight_kg", 80.0), (hosp("SAFT-03"), w - 1 * H, "weight_kg", 70.0),
               (hosp("SAFT-03"), w - 1 * H, "height_cm", 170.0), (hosp("SAFT-03"), w + 150 * H, "weight_kg", 60.0),
               ("HSAFT-03-old", w - 0.5 * H, "weight_kg", 90.0)]
    vitals = pd.DataFrame(weights, columns=["hospitalization_id", "recorded_dttm", "vital_category", "vital_value"])
    dx = [(hosp("SAFC-01"), "I26.99", 0), (hosp("SAFC-02"), "I82.4", 1), (hosp("SAFC-03"), "I639", 0),
          (hosp("SAFC-04"), "I10", 1), ("HSAFC-05-old", "I26.0", 0), (hosp("SAFP-99"), "I26.0", 0),
          (hosp("SAFT-05"), "I26.0", 0), (hosp("SAFT-01"), "E11.9", 1)]
    dx = pd.DataFrame([{"hospitalization_id": h, "diagnosis_code": c, "diagnosis_code_format": "icd10cm",
                        "diagnosis_primary": 0, "poa_present": p} for h, c, p in dx])
    return {"patient": patient, "vitals": vitals, "administration": pd.DataFrame(adm),
            "adverse_event": pd.DataFrame(ae), "hospital_diagnosis": dx}


def write(folder: Path) -> Path:
    """Write the tables as Parquet into ``folder``; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables().items():
        df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def trial_frame() -> pd.DataFrame:
    return pd.DataFrame({"patient_id": list(T0), "hospitalization_id": [hosp(p) for p in T0],
                         "index_time": list(T0.values())})


def controls_frame() -> pd.DataFrame:
    return pd.DataFrame({"patient_id": CONTROLS, "hospitalization_id": [hosp(p) for p in CONTROLS],
                         "index_time": [T0["SAFT-01"]] * len(CONTROLS),
                         "set_id": [1, 1, 2, 2, 3, 4, 5]})


def study(*, schedule: bool = True, suppress: bool = False, threshold: int = 5):
    raw = {
        "study": {"name": "safety fixture"},
        "data": {"source": "data"},
        "index": {"product": "MSC", "pool": {"location": "icu"}},
        "features": {"covariates": [{"name": "age", "kind": "age"}]},
        "matching": {"covariates": ["age"]},
        "safety": {
            "teae_days": 28,
            "infusion_window_hours": 24,
            "context_events": [{"name": "Thrombo-embolic events", "codes": ["I26", "I63.9", "I80", "I82"]}],
        },
        "report": {"suppress_small_cells": suppress, "small_cell_threshold": threshold},
    }
    if schedule:
        raw["safety"]["schedule"] = {"n_administrations": 3, "interval_hours": 72, "tolerance_hours": 24,
                                     "dose_min": 1.5, "dose_max": 3.0, "dose_unit": "10^6 cells/kg"}
    return study_from_dict(raw)
