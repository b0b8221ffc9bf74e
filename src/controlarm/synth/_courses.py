"""Hospitalization courses of one block, drawn as NumPy arrays (no rows yet).

A course is the skeleton every table is rendered from: admission, ED, ward and ICU times,
respiratory-support segments, ECMO, dexamethasone, death, and the patient's fixed traits. Times are
int64 microseconds since the Unix epoch (UTC), in whole minutes.

Three kinds of stay, drawn per hospitalization (``KIND_P``):

* ``COVID`` (35 %): severe COVID-19. ED 2-6 h, ward on nasal cannula for an exponential time (mean
  1.5 days, 20 % straight to ICU), ICU stay lognormal (median 7 days, 1-45). In ICU: high-flow nasal
  cannula first (75 %) of whom 35 % are intubated later, or invasive ventilation at once (25 %);
  survivors step down to HFNO (after IMV) or nasal cannula for their last quarter of ICU (at most
  2 days), then ward (1-8 days). ECMO for 6 % of the ventilated. Dexamethasone 6 mg once daily for
  10 days from 1-36 h after admission in 85 %. Death 15 % (+25 % if ventilated), in ICU for 85 % of
  deaths, else 1-90 days after discharge.
* ``ICU`` (10 %): other critical illness. ICU stay lognormal (median 3 days), IMV 45 %, NIPPV 15 %,
  nasal cannula otherwise; dexamethasone in 8 %; death 15 %.
* ``WARD`` (55 %): ward only, 1-12 days, room air (70 %) or nasal cannula; death 3 %.

Age normal (62, 14) for COVID stays, (58, 19) otherwise, clipped to 18-95; male 62 % (COVID) or
50 %; height normal (176, 7) cm for men and (163, 6.5) for women; BMI lognormal (median 28,
sigma 0.17). Admissions uniform over 2020-03-01 .. 2022-03-01.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Courses", "draw_courses", "US", "MIN", "HOUR", "DAY", "T_START", "DEVICES", "KIND_P",
           "WARD", "ICU", "COVID", "RA", "NC", "FM", "HFNO", "NIPPV", "IMV"]

US = 1_000_000
MIN = 60 * US
HOUR = 60 * MIN
DAY = 24 * HOUR
T_START = int(np.datetime64("2020-03-01T00:00", "us").astype(np.int64))
ADMISSION_SPAN_DAYS = 730

WARD, ICU, COVID = 0, 1, 2
KIND_P = (0.55, 0.10, 0.35)

#: Respiratory device codes -> CLIF device_category.
DEVICES = ("Room Air", "Nasal Cannula", "Face Mask", "High Flow NC", "NIPPV", "IMV")
RA, NC, FM, HFNO, NIPPV, IMV = range(6)
#: Hours between respiratory records, by device (well under the 24 h a record may hold).
RECORD_STEP_H = np.array([12, 8, 8, 4, 4, 4])
N_SLOTS = 6


@dataclass
class Courses:
    """Arrays of one block of ``n`` hospitalizations (index ``i`` = position in the block)."""

    n: int
    kind: np.ndarray
    male: np.ndarray
    age: np.ndarray  # years at admission (float)
    birth_day: np.ndarray  # days since epoch
    height: np.ndarray
    weight: np.ndarray
    adm: np.ndarray
    ed_out: np.ndarray
    icu_in: np.ndarray  # -1 without ICU
    icu_out: np.ndarray
    dis: np.ndarray
    death: np.ndarray  # -1: alive at the end of follow-up
    seg_dev: np.ndarray  # (n, N_SLOTS) device codes
    seg_s: np.ndarray  # (n, N_SLOTS) start; a slot with e <= s is empty
    seg_e: np.ndarray
    ever_imv: np.ndarray
    ecmo_s: np.ndarray  # -1 without ECMO
    ecmo_e: np.ndarray
    dexa_first: np.ndarray  # -1 without dexamethasone
    dexa_n: np.ndarray


def _minutes(x) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) / MIN).astype(np.int64) * MIN


def draw_courses(rng: np.random.Generator, n: int, *, trial: bool = False) -> Courses:
    """Draw ``n`` courses. ``trial=True`` draws trial patients: COVID stays with ICU and
    dexamethasone, age 35-69, at least 12 days in ICU, admitted 2020-09 .. 2021-06, no death before
    leaving ICU (their product is given in ICU, see ``_tables.trial_tables``).
    """
    u = rng.random(n)
    kind = np.where(u < KIND_P[0], WARD, np.where(u < KIND_P[0] + KIND_P[1], ICU, COVID))
    if trial:
        kind[:] = COVID
    covid = kind == COVID
    has_icu = kind != WARD

    male = rng.random(n) < np.where(covid, 0.62, 0.5)
    age = np.clip(np.where(covid, rng.normal(62, 14, n), rng.normal(58, 19, n)), 18, 95)
    if trial:
        age = rng.uniform(35, 69.5, n)
    height = np.round(np.where(male, rng.normal(176, 7, n), rng.normal(163, 6.5, n)))
    bmi = np.exp(rng.normal(np.log(28), 0.17, n))
    weight = np.round(bmi * (height / 100) ** 2, 1)

    if trial:
        adm_day = rng.uniform(184, 486, n)  # 2020-09-01 .. 2021-06-30
    else:
        adm_day = rng.uniform(0, ADMISSION_SPAN_DAYS, n)
    adm = T_START + _minutes(adm_day * DAY)
    adm_days = adm // DAY
    birth_day = (adm_days - np.floor(age * 365.25) - rng.integers(0, 365, n)).astype(np.int64)
    age = (adm_days - birth_day) / 365.25

    ed_out = adm + _minutes(rng.uniform(2, 6, n) * HOUR)
    ward_pre = np.where(rng.random(n) < 0.2, 0.0, np.minimum(rng.exponential(1.5, n), 7.0))
    ward_pre = np.where(covid, ward_pre, np.minimum(rng.exponential(0.5, n), 3.0))
    icu_in = ed_out + _minutes(ward_pre * DAY)
    icu_los = np.where(covid, np.clip(np.exp(rng.normal(np.log(7), 0.6, n)), 1, 45),
                       np.clip(np.exp(rng.normal(np.log(3), 0.6, n)), 0.5, 30))
    if trial:
        icu_los = np.maximum(icu_los, rng.uniform(12, 18, n))
    icu_out = icu_in + _minutes(icu_los * DAY)

    # first ICU device; COVID: HFNO then maybe IMV; other ICU: IMV / NIPPV / NC
    v = rng.random(n)
    first = np.where(covid, np.where(v < 0.25, IMV, HFNO), np.where(v < 0.45, IMV, np.where(v < 0.6, NIPPV, NC)))
    escalate = covid & (first == HFNO) & (rng.random(n) < 0.35)
    imv_s = np.where(first == IMV, icu_in, np.where(escalate, icu_in + _minutes(rng.uniform(0.1, 0.6, n) * icu_los * DAY), -1))
    ever_imv = has_icu & (imv_s >= 0)

    # death
    p_death = np.select([kind == WARD, kind == ICU], [0.03, 0.15], 0.15 + 0.25 * ever_imv)
    dies = rng.random(n) < p_death
    if trial:
        dies &= rng.random(n) < 0.5
    in_hosp = dies & (rng.random(n) < 0.85)
    post_ward = _minutes(rng.uniform(1, 8, n) * DAY)
    ward_los = _minutes(rng.uniform(1, 12, n) * DAY)
    dis = np.where(has_icu, np.where(in_hosp, icu_out, icu_out + post_ward), ed_out + ward_los)
    death = np.where(dies, np.where(in_hosp, dis, dis + _minutes(rng.uniform(1, 90, n) * DAY)), -1)

    # respiratory segments: pre-ICU, first ICU device, IMV, ICU step-down, ward (two halves)
    step = np.minimum(_minutes(np.minimum(0.25 * icu_los, 2.0) * DAY), icu_out - icu_in)
    step_t = np.where(in_hosp, icu_out, icu_out - step)  # a death in ICU ends on the last device
    imv_e = np.where(ever_imv, step_t, -1)
    first_e = np.where(first == IMV, icu_in, np.where(escalate, imv_s, step_t))
    post_dev = np.where(ever_imv, HFNO, NC)
    mid = icu_out + (dis - icu_out) // 2 // MIN * MIN
    ward_dev = np.where(rng.random(n) < 0.3, NC, RA)
    seg_dev = np.stack([np.where(covid, NC, RA), first, np.full(n, IMV), post_dev, np.full(n, NC), np.full(n, RA)], axis=1)
    seg_s = np.stack([adm, icu_in, imv_s, step_t, icu_out, mid], axis=1)
    seg_e = np.stack([icu_in, first_e, imv_e, step_t, mid, dis], axis=1)
    ward = ~has_icu
    seg_dev[ward, 0] = ward_dev[ward]
    seg_s[ward, 0], seg_e[ward, 0] = adm[ward], dis[ward]
    seg_e[ward, 1:] = seg_s[ward, 1:]  # empty
    first_only = has_icu & ~ever_imv
    seg_e[first_only, 2] = seg_s[first_only, 2]
    seg_s[first_only, 2] = seg_e[first_only, 2] = 0
    icu_in = np.where(has_icu, icu_in, -1)
    icu_out = np.where(has_icu, icu_out, -1)

    # ECMO: 6 % of ventilated COVID stays, starting 1-3 days after intubation, until IMV ends
    ecmo = covid & ever_imv & (rng.random(n) < 0.06)
    ecmo_s = imv_s + _minutes(rng.uniform(1, 3, n) * DAY)
    ecmo_e = np.minimum(ecmo_s + _minutes(rng.uniform(4, 20, n) * DAY), imv_e)
    ecmo &= ecmo_e > ecmo_s + HOUR
    ecmo_s = np.where(ecmo, ecmo_s, -1)
    ecmo_e = np.where(ecmo, ecmo_e, -1)

    # dexamethasone: daily, exactly 24 h apart, 10 doses or until discharge
    dexa = np.where(covid, rng.random(n) < 0.85, (kind == ICU) & (rng.random(n) < 0.08))
    if trial:
        dexa[:] = True
    dexa_first = adm + _minutes(rng.uniform(1, 36, n) * HOUR)
    dexa_n = np.where(dexa & (dexa_first < dis), np.minimum(10, (dis - dexa_first - 1) // DAY + 1), 0)
    dexa_first = np.where(dexa_n > 0, dexa_first, -1)

    return Courses(n=n, kind=kind, male=male, age=age, birth_day=birth_day, height=height, weight=weight,
                   adm=adm, ed_out=ed_out, icu_in=icu_in, icu_out=icu_out, dis=dis, death=death,
                   seg_dev=seg_dev, seg_s=seg_s, seg_e=seg_e, ever_imv=ever_imv, ecmo_s=ecmo_s, ecmo_e=ecmo_e,
                   dexa_first=dexa_first, dexa_n=dexa_n.astype(np.int64))
