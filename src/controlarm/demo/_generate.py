"""The synthetic demo data set: a reconstruction of Grégoire et al. (2022) for controlarm.

``generate_demo`` writes one Parquet file per table of docs/data-model.md plus the demo study file;
``demo_design`` returns what was designed (the matched sets, the designed outcomes, the margins).
THE DATA ARE SYNTHETIC. See docs/demo.md.

References
----------
Grégoire C, Layios N, Lambermont B, et al. Bone marrow-derived mesenchymal stromal cell therapy in
severe COVID-19: preliminary results of a phase I/II clinical trial. Front Immunol
2022;13:932360. doi:10.3389/fimmu.2022.932360
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from . import _design as D
from ._pool import (
    CUTOFF,
    POOL_GROUPS,
    admission_course,
    annotate,
    draw_covariates,
    no_support_course,
    random_script,
    realised,
)
from ._tables import TABLE_NAMES, render_tables
from ._timelines import (
    DAY,
    FACE_MASK,
    HFNO,
    HOUR,
    IMV,
    NC,
    Course,
    build_course,
    device_at,
    ever_device_after,
    free_days,
    index_time,
    minutes,
    to_datetime64,
)

__all__ = ["generate_demo", "demo_design"]

_DIMER_SWITCH = minutes("2021-01-01T00:00")
_ELIGIBLE_LIKE = ("eligible", "over_70", "index_2022", "no_crp", "twin")


@dataclass
class _Build:
    courses: list[Course]
    by_key: dict[str, Course]
    sets: dict[str, list[str]]
    x_trial: np.ndarray
    margins: dict
    extra: dict


def _trial_cov(spec: D.TrialSpec) -> dict:
    return {"male": spec.sex == "Male", "age": spec.age, "height": float(spec.height),
            "bmi": spec.bmi, "crp": spec.crp, "dsa": spec.dsa, "index": minutes(spec.index),
            "imv": spec.imv, "crp_unit": "mg/L"}


def _dimer_unit(t: int) -> str:
    return "ng/mL FEU" if t < _DIMER_SWITCH else "ug/L FEU"


def _set_dimer7(rng: np.random.Generator, c: Course, value: float) -> None:
    target = c.index + 7 * DAY
    t = target + int(rng.integers(-3 * HOUR, 3 * HOUR + 1))
    c.dimer7 = (t, float(value), _dimer_unit(t))
    c.dimer_blackout = (target - 21 * HOUR, target + 21 * HOUR)


def _trial_course(rng: np.random.Generator, spec: D.TrialSpec) -> Course:
    cov = _trial_cov(spec)
    index = cov["index"]
    adm = index - round(spec.dsa * DAY)
    icu_in = index - round(spec.icu_lead * DAY)
    pre = [(NC, adm), (FACE_MASK, icu_in - 6 * HOUR), (HFNO, icu_in)]
    if spec.imv:
        pre.append((IMV, index - 30 * HOUR))
    c = build_course(
        key=spec.pid, group="trial", sex=spec.sex,
        birth=to_datetime64(index).astype("datetime64[D]") - np.timedelta64(round(spec.age * 365.25), "D"),
        admission=adm, ed_end=adm + int(rng.integers(2 * HOUR, 5 * HOUR)), icu_in=icu_in,
        index=index, pre_devices=pre, script=D.jitter_script(rng, spec.script), icu_name="ICU 1",
        ward_names=("COVID ward A", "COVID ward A"),
    )
    c.patient_id = spec.pid
    c.height = float(spec.height)
    c.weight = round(spec.bmi * (spec.height / 100) ** 2, 1)
    c.hw_time = adm + int(rng.integers(30, 90))
    first = adm + int(rng.integers(60, 180))
    c.dexa = [first + k * DAY for k in range(max(10, (index - first) // DAY + 2)) if first + k * DAY < c.discharge]
    t = index - int(rng.integers(HOUR, 8 * HOUR))
    c.crp = (t, spec.crp, "mg/L")
    c.crp_blackout = (t - HOUR, index + HOUR)
    _set_dimer7(rng, c, spec.dimer_d7)
    c.inclusion = index - int(rng.integers(3 * HOUR, 8 * HOUR))
    c.severity = 1.0 + spec.imv
    annotate(rng, c, comorbidities=spec.comorbidities, tocilizumab=False)
    if spec.pid == "T02":
        c.diagnoses += [("I33.0", 0, 0), ("I63.9", 0, 0)]
    return c


def _trial_extra(trial: list[Course]) -> dict:
    adm, ae = [], []
    for spec, c in zip(D.TRIAL, trial):
        stamp = str(to_datetime64(c.index))[2:7].replace("-", "")
        for k in range(3):
            adm.append({"patient_id": spec.pid, "admin_dttm": c.index + k * 72 * HOUR, "product": "MSC",
                        "dose": spec.dose[k], "dose_unit": "10^6 cells/kg", "route": "IV",
                        "lot": f"BM-MSC-{stamp}-{spec.pid}-{k + 1}"})
    other = {
        "T01": ("Hypokalaemia", "Metabolism and nutrition disorders", 1, 2.3),
        "T03": ("Constipation", "Gastrointestinal disorders", 1, 4.1),
        "T04": ("Atrial fibrillation", "Cardiac disorders", 2, 5.6),
        "T05": ("Hyperglycaemia", "Metabolism and nutrition disorders", 2, 1.4),
        "T06": ("Insomnia", "Psychiatric disorders", 1, 3.2),
        "T07": ("Anaemia", "Blood and lymphatic system disorders", 2, 8.5),
        "T08": ("Delirium", "Psychiatric disorders", 2, 6.3),
    }
    for spec, c in zip(D.TRIAL, trial):
        if spec.pid in other:
            term, soc, grade, day = other[spec.pid]
            ae.append({"patient_id": spec.pid, "onset_dttm": c.index + round(day * DAY), "term": term,
                       "soc": soc, "grade": grade, "serious": False, "relatedness": "not related",
                       "outcome": "recovered/resolved", "note": None})
        if spec.pid == "T02":
            ae.append({"patient_id": "T02", "onset_dttm": c.index + 9 * DAY + 5 * HOUR,
                       "term": "Ischaemic stroke", "soc": "Nervous system disorders", "grade": 3,
                       "serious": True, "relatedness": "not related",
                       "outcome": "recovered/resolved with sequelae",
                       "note": "Cardioembolic, caused by aortic endocarditis; judged unrelated to MSC."})
    return {"administration": adm, "adverse_event": ae}


def _twin_cov(rng: np.random.Generator, spec: D.TrialSpec) -> dict:
    cov = D.draw_twin_covariates(rng, spec)
    male = spec.sex == "Male"
    lo, hi = (minutes(s) for s in D.TWIN_INDEX_WINDOW)
    cov.update({"male": male, "imv": spec.imv, "entry": "A", "crp_unit": "mg/L",
                "height": float(round(rng.normal(176, 6) if male else rng.normal(163, 5.5))),
                "index": int(rng.integers(lo, hi))})
    return cov


def _check_margins(x_trial, imv_trial, x_tw, tw_set, imv_tw, x_pool, imv_pool):
    """Violating twins and pool rows, and the smallest margin ratio by covariance variant."""
    bad_tw, bad_pool, ratios = set(), set(), {}
    for name, cov in D.covariance_variants(x_trial, np.vstack([x_tw, x_pool])).items():
        d_tw = D.mahalanobis(x_trial, x_tw, cov)
        d_pool = D.mahalanobis(x_trial, x_pool, cov)
        worst = np.inf
        for i in range(len(x_trial)):
            own = tw_set == i
            r = d_tw[i, own].max()
            others = np.concatenate([d_tw[i, ~own & (imv_tw == imv_trial[i])],
                                     d_pool[i, imv_pool == imv_trial[i]]])
            worst = min(worst, others.min() / r)
            bad_pool.update(np.flatnonzero((imv_pool == imv_trial[i]) & (d_pool[i] < D.MARGIN * r)))
            bad_tw.update(np.flatnonzero(~own & (imv_tw == imv_trial[i]) & (d_tw[i] < D.MARGIN * r)))
        bad_tw.update(np.flatnonzero(d_tw.argmin(axis=0) != tw_set))
        ratios[name] = float(worst)
    return bad_tw, bad_pool, ratios


def _build(seed: int) -> _Build:
    r_design, r_pool, r_course, r_tables = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    trial = [_trial_course(r_course, spec) for spec in D.TRIAL]
    x_trial = np.array([realised(_trial_cov(s)) for s in D.TRIAL])
    imv_trial = np.array([s.imv for s in D.TRIAL])

    tw_cov = [_twin_cov(r_design, spec) for spec in D.TRIAL for _ in range(3)]
    tw_set = np.repeat(np.arange(len(D.TRIAL)), 3)
    pool_cov = [(g, draw_covariates(r_pool, g)) for g, n in POOL_GROUPS.items() if g != "no_icu_support"
                for _ in range(n)]
    elig = [k for k, (g, _) in enumerate(pool_cov) if g == "eligible"]
    for _ in range(100):
        x_tw = np.array([realised(c) for c in tw_cov])
        x_pool = np.array([realised(pool_cov[k][1]) for k in elig])
        imv_pool = np.array([pool_cov[k][1]["imv"] for k in elig])
        bad_tw, bad_pool, ratios = _check_margins(
            x_trial, imv_trial, x_tw, tw_set, np.array([c["imv"] for c in tw_cov]), x_pool, imv_pool)
        if not bad_tw and not bad_pool:
            break
        for j in sorted(bad_tw):
            tw_cov[j] = _twin_cov(r_design, D.TRIAL[tw_set[j]])
        for j in sorted(bad_pool):
            pool_cov[elig[j]] = ("eligible", draw_covariates(r_pool, "eligible"))
    else:  # pragma: no cover - the loop converges in a few rounds
        raise RuntimeError("demo generator: could not separate the twins from the pool")

    dimer = D.control_dimer_assignment()
    pool: list[Course] = []
    for j, cov in enumerate(tw_cov):
        spec = D.TRIAL[tw_set[j]]
        k = j % 3
        c = admission_course(r_course, key=f"{spec.pid}-twin{k + 1}", group="twin", cov=cov,
                             script=D.jitter_script(r_course, D.TWIN_SCRIPTS[spec.pid][k]),
                             dexa="admission", icu_name="ICU 1")
        _set_dimer7(r_course, c, dimer[(spec.pid, k)])
        annotate(r_course, c)
        if c.key in D.TWIN_CONTEXT_DX:
            c.diagnoses.append(D.TWIN_CONTEXT_DX[c.key])
        pool.append(c)
    for n, (group, cov) in enumerate(pool_cov):
        for _ in range(50):
            script = random_script(r_course, cov["imv"], frailty=1.5 if group == "over_70" else 1.0)
            last = cov["index"] + DAY * max(script.discharge, script.death or 0.0)
            if group != "index_2022" or last < CUTOFF - DAY:
                break
        dexa = None if group == "no_dexamethasone" else "admission"
        icu = "ICU 1" if r_course.random() < 0.8 else "ICU 2"
        c = admission_course(r_course, key=f"p{n:04d}", group=group, cov=cov, script=script,
                             dexa=dexa, icu_name=icu)
        annotate(r_course, c)
        c.diagnoses.extend((code, 0, 0) for every, offset, code in D.POOL_CONTEXT_DX if n % every == offset)
        pool.append(c)
    for n in range(POOL_GROUPS["no_icu_support"]):
        c = no_support_course(r_course, key=f"n{n:04d}")
        annotate(r_course, c)
        pool.append(c)

    # Pool ids follow admission order; twins end up interleaved with everyone else.
    order = sorted(range(len(pool)), key=lambda i: (pool[i].admission, i))
    for rank, i in enumerate(order, start=1):
        pool[i].patient_id = f"C{rank:04d}"
    for c in pool:
        got = index_time(c)
        want = c.index if c.group in _ELIGIBLE_LIKE else None
        if got != want:  # pragma: no cover - a design bug, never user input
            raise RuntimeError(f"demo generator: {c.key} has index {got}, designed {want}")
        if c.death is not None and c.death >= CUTOFF:
            c.death = None
    courses = sorted(pool, key=lambda c: c.patient_id) + trial
    by_key = {c.key: c for c in courses}
    sets = {spec.pid: [by_key[f"{spec.pid}-twin{k + 1}"].patient_id for k in range(3)] for spec in D.TRIAL}
    return _Build(courses, by_key, sets, x_trial, {"ratios": ratios}, {"r_tables": r_tables})


def _iso(t: int | None) -> str | None:
    return None if t is None else str(to_datetime64(t)) + ":00+00:00"


def _cov_dict(x: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(D.MATCH_COVARIATES, x)}


def _patient_record(c: Course) -> dict:
    idx = c.index
    return {
        "patient_id": c.patient_id,
        "index_dttm": _iso(idx),
        "device_at_index": device_at(c, idx),
        "death_day": None if c.death is None else (c.death - idx) / DAY,
        "imv_after_index": ever_device_after(c, idx, IMV) and device_at(c, idx) != IMV,
        "ever_imv": any(d == IMV for d, *_ in c.segments),
        "ecmo": bool(c.ecmo),
        "d7_d_dimer": c.dimer7[1],
        "d7_d_dimer_dttm": _iso(c.dimer7[0]),
        "d7_d_dimer_unit": c.dimer7[2],
        "free_days": free_days(c, idx),
    }


def _pvalues(b: _Build) -> dict[str, dict[str, float]]:
    from scipy import stats

    out = {}
    for kind in ("imv", "hfno", "oxygen", "icu"):
        t = np.array([free_days(b.by_key[s.pid], b.by_key[s.pid].index)[kind] for s in D.TRIAL], float)
        ctl = np.array([[free_days(b.by_key[f"{s.pid}-twin{k + 1}"], b.by_key[f"{s.pid}-twin{k + 1}"].index)[kind]
                         for k in range(3)] for s in D.TRIAL], float)
        out[kind] = {
            "signed_rank_sets": float(stats.wilcoxon(t - ctl.mean(axis=1)).pvalue),
            "mann_whitney": float(stats.mannwhitneyu(t, ctl.ravel()).pvalue),
            "signed_rank_pseudo_pairs": float(stats.wilcoxon((t[:, None] - ctl).ravel()).pvalue),
        }
    return out


def demo_design(seed: int = 20200601) -> dict:
    """What the demo data set was designed to contain, for tests and documentation.

    Parameters
    ----------
    seed : int
        The seed given to :func:`generate_demo`.

    Returns
    -------
    dict
        JSON-serialisable: ``trial`` and ``twins`` (one record per patient: index, covariates as
        the study rules compute them, designed outcomes), ``matched_sets`` (trial id -> its three
        twins, in order), ``deaths`` (twin ids dead by day 28 and by day 60), ``d_dimer_quartiles``,
        ``free_day_pvalues`` (scipy, on the designed courses), ``margins`` (smallest ratio of a
        non-own candidate's Mahalanobis distance to the farthest own twin, by covariance), and
        ``pool_groups`` (pool patients by the eligibility rule they were built to pass or fail).
    """
    b = _build(seed)
    trial, twins = [], {}
    for spec, x in zip(D.TRIAL, b.x_trial):
        c = b.by_key[spec.pid]
        trial.append({**_patient_record(c), "covariates": _cov_dict(x), "imv_at_index": spec.imv,
                      "doses": list(spec.dose)})
    for spec in D.TRIAL:
        for k in range(3):
            c = b.by_key[f"{spec.pid}-twin{k + 1}"]
            twins[c.patient_id] = {**_patient_record(c), "set": spec.pid, "imv_at_index": spec.imv,
                                   "covariates": _cov_dict(_course_covariates(c))}
    dead28 = sorted(p for p, r in twins.items() if r["death_day"] is not None and r["death_day"] <= 28)
    dead60 = sorted(p for p, r in twins.items() if r["death_day"] is not None and r["death_day"] <= 60)
    groups: dict[str, int] = {}
    for c in b.courses:
        groups[c.group] = groups.get(c.group, 0) + 1
    return {
        "seed": seed,
        "synthetic": True,
        "trial": trial,
        "twins": twins,
        "matched_sets": b.sets,
        "deaths": {"day28": dead28, "day60": dead60},
        "d_dimer_quartiles": {"trial": [362.0, 821.0, 1305.0], "control": [1155.0, 3553.0, 6433.5]},
        "free_day_pvalues": _pvalues(b),
        "margins": {"min_ratio_by_covariance": b.margins["ratios"], "required": D.MARGIN},
        "twin_tolerance": dict(D.TWIN_TOLERANCE),
        "pool_groups": groups,
    }


def _course_covariates(c: Course) -> np.ndarray:
    """Matching covariates of a course, from its own rows (as the study rules compute them)."""
    day = to_datetime64(c.index).astype("datetime64[D]")
    age = (day - c.birth.astype("datetime64[D]")).astype(int) / 365.25
    crp = c.crp[1] * (10 if c.crp[2] == "mg/dL" else 1)
    return np.array([age, float(c.sex == "Male"), c.weight / (c.height / 100) ** 2, crp,
                     (c.index - c.admission) / DAY])


def generate_demo(out_dir: Path, seed: int = 20200601) -> Path:
    """Write the synthetic demo study: ``out_dir/data/<table>.parquet`` and ``out_dir/study.toml``.

    Parameters
    ----------
    out_dir : path
        Folder to write into (created if missing). Existing files of the same names are replaced.
    seed : int
        Seed of the random parts. The same seed gives byte-identical files.

    Returns
    -------
    Path
        ``out_dir / "study.toml"``, ready for ``controlarm run``.

    Notes
    -----
    The data are synthetic. The 8 trial patients, their 24 matched controls and the outcomes
    behind the published aggregates are designed by hand (``demo_design``); the rest of the pool
    (430 patients) is random around them. See docs/demo.md.
    """
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    data = out_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    b = _build(seed)
    tables = render_tables(b.courses, _trial_extra([b.by_key[s.pid] for s in D.TRIAL]), b.extra["r_tables"])
    for name in TABLE_NAMES:
        pq.write_table(tables[name], data / f"{name}.parquet", compression="zstd")
    study = out_dir / "study.toml"
    study.write_bytes(resources.files("controlarm.demo").joinpath("study.toml").read_bytes())
    return study
