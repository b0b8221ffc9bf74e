"""Tests of the synthetic demo generator (controlarm.demo).

Everything the published aggregates depend on is re-derived here from the written Parquet tables,
with pandas, by the study rules spelled out in the demo brief (index, covariates, free days, day-7
D-dimer), independently of the generator's own bookkeeping. Truth comes from the paper:
Grégoire C, et al. Front Immunol 2022;13:932360. doi:10.3389/fimmu.2022.932360.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from controlarm.demo import demo_design, generate_demo

SEED = 20200601
H = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
TABLES = (
    "patient", "hospitalization", "adt", "vitals", "labs", "respiratory_support",
    "medication_admin_intermittent", "ecmo_mcs", "hospital_diagnosis", "enrollment",
    "administration", "adverse_event",
)
MATCH = ["age", "male", "bmi", "crp", "days_since_admission"]
# Published day-7 D-dimer, µg/L: median [IQR] (paper_quartiles, numpy type-7 percentiles)
PAPER_TRIAL_DIMER = [362.0, 821.0, 1305.0]
PAPER_CONTROL_DIMER = [1155.0, 3553.0, 6433.5]


# ---------------------------------------------------------------- fixtures: write twice, read once
@pytest.fixture(scope="module")
def written(tmp_path_factory):
    a = generate_demo(tmp_path_factory.mktemp("a"), seed=SEED)
    b = generate_demo(tmp_path_factory.mktemp("b"), seed=SEED)
    return a, b


@pytest.fixture(scope="module")
def tables(written):
    data = written[0].parent / "data"
    return {name: pd.read_parquet(data / f"{name}.parquet") for name in TABLES}


@pytest.fixture(scope="module")
def design():
    return demo_design(SEED)


# ---------------------------------------------------------------- the study rules, in pandas
def _np(s):
    """UTC datetime64 values of a tz-aware column."""
    return s.dt.tz_convert(None).to_numpy()


def _device_holds(t):
    """Respiratory records with the end of their hold: next record, at most 24 h."""
    rs = t["respiratory_support"].sort_values(["hospitalization_id", "recorded_dttm"]).copy()
    nxt = rs.groupby("hospitalization_id")["recorded_dttm"].shift(-1)
    cap = rs["recorded_dttm"] + 24 * H
    rs["end"] = nxt.where(nxt.notna() & (nxt < cap), cap)
    return rs


def _pool_index(t):
    """First time in ICU, on High Flow NC or IMV, with dexamethasone in the previous 24 h."""
    holds = _device_holds(t)
    dev = holds[holds.device_category.isin(["High Flow NC", "IMV"])]
    icu = t["adt"][t["adt"].location_category == "icu"]
    dexa = t["medication_admin_intermittent"]
    dexa = dexa[dexa.med_category == "dexamethasone"]
    pool = t["enrollment"][t["enrollment"].arm == "pool"].hospitalization_id
    dev_g, icu_g, dexa_g = (dict(tuple(x.groupby("hospitalization_id"))) for x in (dev, icu, dexa))
    out = {}
    for hid in pool:
        i, d, m = icu_g.get(hid), dev_g.get(hid), dexa_g.get(hid)
        if i is None or d is None:
            out[hid] = (pd.NaT, "never on HFNO/IMV in ICU")
            continue
        ii, io = _np(i.in_dttm), _np(i.out_dttm)
        ds, de = _np(d.recorded_dttm), _np(d.end)
        cand = np.unique(np.concatenate([ii, ds] + ([] if m is None else [_np(m.admin_dttm)])))
        in_icu = ((ii[None] <= cand[:, None]) & (cand[:, None] < io[None])).any(1)
        on_dev = ((ds[None] <= cand[:, None]) & (cand[:, None] < de[None])).any(1)
        if not (in_icu & on_dev).any():
            out[hid] = (pd.NaT, "never on HFNO/IMV in ICU")
            continue
        if m is None:
            out[hid] = (pd.NaT, "never on dexamethasone at that time")
            continue
        ma = _np(m.admin_dttm)
        on_dexa = ((ma[None] > cand[:, None] - np.timedelta64(24, "h")) & (ma[None] <= cand[:, None])).any(1)
        ok = in_icu & on_dev & on_dexa
        out[hid] = ((pd.Timestamp(cand[ok][0]).tz_localize("UTC"), None) if ok.any()
                    else (pd.NaT, "never on dexamethasone at that time"))
    return out


def _indices(t):
    """hospitalization_id -> (index time, reason when none), trial and pool."""
    adm = t["administration"]
    first = adm[adm["product"] == "MSC"].groupby("patient_id").admin_dttm.min()
    out = {"H" + pid: (ts, None) for pid, ts in first.items()}
    out.update(_pool_index(t))
    return out


def _last_in_window(df, time_col, value_col, idx, hours):
    """Per hospitalization, the last ``value_col`` with ``time_col`` in [index - hours, index]."""
    m = df.merge(idx, on="hospitalization_id")
    m = m[(m[time_col] <= m["index"]) & (m[time_col] >= m["index"] - hours * H)]
    return m.sort_values(time_col).groupby("hospitalization_id")[value_col].last()


def _baseline(t, indices):
    """Covariates as of the index for every patient with one (NaN when missing)."""
    idx = pd.DataFrame([(h, ts) for h, (ts, _) in indices.items() if pd.notna(ts)],
                       columns=["hospitalization_id", "index"])
    b = idx.merge(t["hospitalization"], on="hospitalization_id").merge(t["patient"], on="patient_id")
    b["age"] = (b["index"].dt.tz_convert(None).dt.normalize() - pd.to_datetime(b.birth_date)).dt.days / 365.25
    b["male"] = (b.sex_category == "Male").astype(float)
    vit = t["vitals"]
    w = _last_in_window(vit[vit.vital_category == "weight_kg"], "recorded_dttm", "vital_value", idx, 720)
    ht = _last_in_window(vit[vit.vital_category == "height_cm"], "recorded_dttm", "vital_value", idx, 720)
    crp = t["labs"][t["labs"].lab_category == "crp"].copy()
    crp["value"] = np.where(crp.reference_unit == "mg/dL", crp.lab_value_numeric * 10, crp.lab_value_numeric)
    c = _last_in_window(crp, "lab_collect_dttm", "value", idx, 48)
    holds = _device_holds(t).merge(idx, on="hospitalization_id")
    holds = holds[(holds.recorded_dttm <= holds["index"]) & (holds.end > holds["index"])]
    dev = holds.sort_values("recorded_dttm").groupby("hospitalization_id").device_category.last()
    b = b.set_index("hospitalization_id")
    b["bmi"] = w.reindex(b.index) / (ht.reindex(b.index) / 100) ** 2
    b["crp"] = c.reindex(b.index)
    b["days_since_admission"] = (b["index"] - b.admission_dttm) / DAY
    b["device"] = dev.reindex(b.index)
    b["imv_at_index"] = b.device == "IMV"
    return b.reset_index().set_index("patient_id")


def _eligible(t, base):
    arm = t["enrollment"].set_index("patient_id").arm
    ok = (base.age >= 18) & (base.age <= 70)
    ok &= (base["index"] >= pd.Timestamp("2020-03-01", tz="UTC")) & (base["index"] < pd.Timestamp("2022-01-01", tz="UTC"))
    ok &= base[MATCH].notna().all(axis=1)
    e = base[ok].copy()
    e["arm"] = arm.reindex(e.index)
    return e


def _free_days(t, pid, index, holds):
    hid = "H" + pid
    death = t["patient"].set_index("patient_id").death_dttm.get(pid)
    if pd.notna(death) and death <= index + 28 * DAY:
        return {"imv": 0, "hfno": 0, "oxygen": 0, "icu": 0}
    discharge = t["hospitalization"].set_index("hospitalization_id").discharge_dttm[hid]
    r = holds[holds.hospitalization_id == hid]
    s = _np(r.recorded_dttm)
    e = np.minimum(_np(r.end), discharge.to_datetime64())
    icu = t["adt"][(t["adt"].hospitalization_id == hid) & (t["adt"].location_category == "icu")]
    busy = {
        "imv": (s[r.device_category == "IMV"], e[r.device_category == "IMV"]),
        "hfno": (s[r.device_category == "High Flow NC"], e[r.device_category == "High Flow NC"]),
        "oxygen": (s[r.device_category != "Room Air"], e[r.device_category != "Room Air"]),
        "icu": (_np(icu.in_dttm), _np(icu.out_dttm)),
    }
    out = {}
    for k, (bs, be) in busy.items():
        n = 0
        for d in range(1, 29):
            a = (index + (d - 1) * DAY).to_datetime64()
            b = (index + d * DAY).to_datetime64()
            n += not ((bs < b) & (be > a)).any()
        out[k] = n
    return out


def _dimer_d7(t, pid, index):
    labs = t["labs"]
    d = labs[(labs.hospitalization_id == "H" + pid) & (labs.lab_category == "d_dimer")].copy()
    # FEU units convert by 1 (ng/mL = ug/L) or 1000 (mg/L); DDU is half of FEU (Adam et al. 2009)
    factor = d.reference_unit.map({"ng/mL FEU": 1.0, "ug/L FEU": 1.0, "mg/L FEU": 1000.0, "ng/mL DDU": 2.0})
    assert factor.notna().all(), set(d.reference_unit)
    d["value"] = d.lab_value_numeric * factor
    d["gap"] = (d.lab_collect_dttm - (index + 168 * H)).abs()
    d = d[d.gap <= 24 * H].sort_values("gap")
    return d.iloc[0].value, d.iloc[0].gap, (d.iloc[1].gap if len(d) > 1 else None)


@pytest.fixture(scope="module")
def derived(tables):
    idx = _indices(tables)
    base = _baseline(tables, idx)
    return idx, base, _eligible(tables, base)


def _sets(design):
    return {tid: list(c) for tid, c in design["matched_sets"].items()}


# ---------------------------------------------------------------- file format
def test_same_seed_gives_identical_bytes(written):
    a, b = (p.parent for p in written)
    for name in TABLES:
        assert (a / "data" / f"{name}.parquet").read_bytes() == (b / "data" / f"{name}.parquet").read_bytes(), name
    assert a.joinpath("study.toml").read_bytes() == b.joinpath("study.toml").read_bytes()
    assert sorted(p.name for p in (a / "data").iterdir()) == sorted(f"{n}.parquet" for n in TABLES)


def test_other_seed_changes_the_random_part(tmp_path, written):
    other = generate_demo(tmp_path, seed=SEED + 1).parent / "data" / "vitals.parquet"
    assert other.read_bytes() != (written[0].parent / "data" / "vitals.parquet").read_bytes()


def test_study_file_is_the_packaged_one(written):
    packaged = resources.files("controlarm.demo").joinpath("study.toml").read_bytes()
    assert written[0].name == "study.toml"
    assert written[0].read_bytes() == packaged


def test_column_types(written):
    data = written[0].parent / "data"
    ts = pa.timestamp("us", tz="UTC")
    for name in TABLES:
        schema = pq.read_schema(data / f"{name}.parquet")
        assert schema.metadata is None or b"pandas" not in schema.metadata, name
        for field in schema:
            if field.name.endswith("_dttm"):
                assert field.type == ts, (name, field.name, field.type)
    assert pq.read_schema(data / "patient.parquet").field("birth_date").type == pa.date32()


def test_required_columns_and_keys(tables):
    required = {
        "patient": ["patient_id", "sex_category", "birth_date"],
        "hospitalization": ["patient_id", "hospitalization_id", "admission_dttm", "discharge_dttm"],
        "adt": ["hospitalization_id", "in_dttm", "out_dttm", "location_category"],
        "vitals": ["hospitalization_id", "recorded_dttm", "vital_category", "vital_value"],
        "labs": ["hospitalization_id", "lab_collect_dttm", "lab_category", "lab_value_numeric", "reference_unit"],
        "respiratory_support": ["hospitalization_id", "recorded_dttm", "device_category"],
        "medication_admin_intermittent": ["hospitalization_id", "admin_dttm", "med_category"],
        "ecmo_mcs": ["hospitalization_id", "recorded_dttm", "device_category"],
        "hospital_diagnosis": ["hospitalization_id", "diagnosis_code"],
        "enrollment": ["patient_id", "hospitalization_id", "arm"],
        "administration": ["patient_id", "admin_dttm", "product", "dose", "dose_unit"],
        "adverse_event": ["patient_id", "onset_dttm", "term", "soc", "grade", "serious", "relatedness"],
    }
    for name, cols in required.items():
        assert set(cols) <= set(tables[name].columns), name
    hosp = tables["hospitalization"]
    assert hosp.hospitalization_id.is_unique
    assert (hosp.hospitalization_id == "H" + hosp.patient_id).all()
    assert (hosp.discharge_dttm > hosp.admission_dttm).all()
    rs = tables["respiratory_support"]
    assert rs.fio2_set.dropna().between(0.21, 1.0).all()
    gaps = rs.groupby("hospitalization_id").recorded_dttm.diff().dropna()
    assert gaps.max() < 24 * H
    vit_rows = tables["vitals"].groupby(["hospitalization_id", "recorded_dttm", "vital_category"]).size()
    assert vit_rows.max() == 1


# ---------------------------------------------------------------- trial arm
def test_trial_arm(tables, derived):
    idx, base, _ = derived
    enr = tables["enrollment"]
    trial = enr[enr.arm == "trial"].patient_id.tolist()
    assert trial == [f"T0{i}" for i in range(1, 9)]
    devices = base.loc[trial, "device"].value_counts().to_dict()
    assert devices == {"High Flow NC": 7, "IMV": 1}
    assert tables["patient"].set_index("patient_id").loc[trial].death_dttm.isna().all()
    assert (base.loc[trial, "age"].between(18, 70)).all()


def test_three_infusions_72_hours_apart(tables):
    adm = tables["administration"]
    assert set(adm["product"]) == {"MSC"}
    for pid, g in adm.groupby("patient_id"):
        times = g.admin_dttm.sort_values()
        assert len(times) == 3
        assert (times.diff().dropna() == 72 * H).all()
        assert g.dose.between(1.5, 3.0).all()
        assert (g.dose_unit == "10^6 cells/kg").all()
        assert g.lot.notna().all()


def test_trial_imv_and_ecmo(tables, derived):
    idx, _, _ = derived
    rs = tables["respiratory_support"]
    ever_imv = set(rs[(rs.device_category == "IMV") & rs.hospitalization_id.str.startswith("HT")].hospitalization_id)
    assert len(ever_imv) == 3
    ecmo = tables["ecmo_mcs"]
    trial_ecmo = set(ecmo[ecmo.hospitalization_id.str.startswith("HT")].hospitalization_id)
    assert len(trial_ecmo) == 1 and trial_ecmo <= ever_imv
    assert (ecmo.device_category == "VV ECMO").all()


def test_adverse_events(tables):
    ae = tables["adverse_event"]
    assert not ae.relatedness.isin(["possible", "probable", "definite"]).any()
    stroke = ae[ae.term == "Ischaemic stroke"]
    assert len(stroke) == 1
    s = stroke.iloc[0]
    assert s.soc == "Nervous system disorders" and s.grade in (3, 4) and bool(s.serious)
    assert "endocarditis" in s.note
    assert (~ae[ae.term != "Ischaemic stroke"].serious).all()


# ---------------------------------------------------------------- pool, eligibility
def test_pool_size_and_exclusions(tables, derived, design):
    idx, base, elig = derived
    enr = tables["enrollment"]
    pool = enr[enr.arm == "pool"]
    twins = {c for s in design["matched_sets"].values() for c in s}
    assert len(pool) - len(twins) >= 400
    reasons = pd.Series([r for hid, (ts, r) in idx.items() if r is not None]).value_counts().to_dict()
    assert reasons == {"never on HFNO/IMV in ICU": 30, "never on dexamethasone at that time": 30}
    pool_base = base[base.index.str.startswith("C")]
    assert (pool_base.age > 70).sum() == 40
    assert (pool_base["index"] >= pd.Timestamp("2022-01-01", tz="UTC")).sum() == 15
    assert pool_base.crp.isna().sum() == 5
    assert pool_base[["age", "male", "bmi", "days_since_admission"]].notna().all().all()
    assert set(twins) <= set(elig.index)
    assert len(elig[elig.arm == "pool"]) == design["pool_groups"]["eligible"] + len(twins)


def test_pool_mortality_is_realistic(tables):
    pat = tables["patient"]
    pool = pat[pat.patient_id.str.startswith("C")]
    assert 0.22 <= pool.death_dttm.notna().mean() <= 0.38
    assert (pool.death_dttm.dropna() < pd.Timestamp("2022-03-01", tz="UTC")).all()


def test_twin_index_is_icu_admission(tables, derived, design):
    _, base, _ = derived
    adt = tables["adt"]
    for tid, controls in _sets(design).items():
        for cid in controls:
            first_icu = adt[(adt.hospitalization_id == "H" + cid) & (adt.location_category == "icu")].in_dttm.min()
            assert base.loc[cid, "index"] == first_icu
            assert base.loc[cid, "index"] == pd.Timestamp(design["twins"][cid]["index_dttm"])


# ---------------------------------------------------------------- matching design
def test_twins_within_tolerance(derived, design):
    _, base, _ = derived
    tol = design["twin_tolerance"]
    for tid, controls in _sets(design).items():
        t = base.loc[tid]
        for cid in controls:
            c = base.loc[cid]
            assert c.male == t.male and c.imv_at_index == t.imv_at_index, cid
            assert abs(c.age - t.age) <= tol["age"], cid
            assert abs(c.bmi - t.bmi) <= tol["bmi"], cid
            assert abs(c.crp - t.crp) <= tol["crp"], cid
            assert abs(c.days_since_admission - t.days_since_admission) <= tol["days_since_admission"], cid
            for k, v in design["twins"][cid]["covariates"].items():
                assert c[k] == pytest.approx(v, rel=1e-9, abs=1e-9), (cid, k)


def _mahalanobis(x, y, cov):
    d = x[:, None, :] - y[None, :, :]
    return np.sqrt(np.einsum("mnp,pq,mnq->mn", d, np.linalg.inv(cov), d))


def _covariances(elig):
    x = elig[MATCH].to_numpy(float)
    treated = (elig.arm == "trial").to_numpy()
    s1, s0 = np.cov(x[treated], rowvar=False), np.cov(x[~treated], rowvar=False)
    n1, n0 = treated.sum(), (~treated).sum()
    return {"all": np.cov(x, rowvar=False), "pool": s0,
            "within": ((n1 - 1) * s1 + (n0 - 1) * s0) / (n1 + n0 - 2)}


def test_no_other_candidate_near_a_trial_patient(derived, design):
    _, _, elig = derived
    trial = elig[elig.arm == "trial"]
    pool = elig[elig.arm == "pool"]
    sets = _sets(design)
    for name, cov in _covariances(elig).items():
        d = _mahalanobis(trial[MATCH].to_numpy(float), pool[MATCH].to_numpy(float), cov)
        for i, tid in enumerate(trial.index):
            own = pool.index.isin(sets[tid])
            same = (pool.imv_at_index == trial.loc[tid, "imv_at_index"]).to_numpy()
            ratio = d[i, ~own & same].min() / d[i, own].max()
            assert ratio >= 3.0, (name, tid, ratio)
        # each twin is nearer its own trial patient than any other
        for cid in pool.index[pool.index.isin([c for s in sets.values() for c in s])]:
            j = pool.index.get_loc(cid)
            assert trial.index[d[:, j].argmin()] == next(t for t, s in sets.items() if cid in s)
    # trial patients are not near-duplicates: far apart compared with any twin distance
    cov = _covariances(elig)["all"]
    x = trial[MATCH].to_numpy(float)
    dt = _mahalanobis(x, x, cov)
    d_twin = _mahalanobis(x, pool[MATCH].to_numpy(float), cov)
    max_twin = max(d_twin[i, pool.index.isin(sets[tid])].max() for i, tid in enumerate(trial.index))
    assert dt[~np.eye(len(x), dtype=bool)].min() > 3.0 * max_twin


def test_greedy_matching_picks_the_twins(derived, design):
    """Greedy 1:3 nearest neighbour, Mahalanobis, exact on imv_at_index, MatchIt-style rounds."""
    _, _, elig = derived
    trial = elig[elig.arm == "trial"]
    pool = elig[elig.arm == "pool"]
    for cov in _covariances(elig).values():
        d = _mahalanobis(trial[MATCH].to_numpy(float), pool[MATCH].to_numpy(float), cov)
        same = trial.imv_at_index.to_numpy()[:, None] == pool.imv_at_index.to_numpy()[None, :]
        d = np.where(same, d, np.inf)
        taken = np.zeros(len(pool), bool)
        got = {tid: [] for tid in trial.index}
        for _ in range(3):
            for i, tid in enumerate(trial.index):
                j = int(np.argmin(np.where(taken, np.inf, d[i])))
                taken[j] = True
                got[tid].append(pool.index[j])
        assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in _sets(design).items()}


# ---------------------------------------------------------------- outcomes
def test_designed_deaths(tables, derived, design):
    _, base, _ = derived
    death = tables["patient"].set_index("patient_id").death_dttm
    sets = _sets(design)
    by28, by60 = [], []
    for tid, controls in sets.items():
        for cid in controls:
            dd = (death[cid] - base.loc[cid, "index"]) / DAY if pd.notna(death[cid]) else np.inf
            assert dd > 8
            if dd <= 28:
                by28.append(tid)
            if dd <= 60:
                by60.append(tid)
    assert len(by28) == 5 and len(set(by28)) == 5
    assert len(by60) == 7
    assert max(pd.Series(by60).value_counts()) == 2
    assert sorted(c for s in sets.values() for c in s if death[c] is not pd.NaT and pd.notna(death[c])
                  and (death[c] - base.loc[c, "index"]) <= 28 * DAY) == design["deaths"]["day28"]
    for tid in sets:
        assert pd.isna(death[tid])


def test_some_twins_intubated_after_index(tables, derived, design):
    _, base, _ = derived
    rs = tables["respiratory_support"]
    later = 0
    for cid in (c for s in _sets(design).values() for c in s):
        if base.loc[cid, "imv_at_index"]:
            continue
        r = rs[(rs.hospitalization_id == "H" + cid) & (rs.recorded_dttm > base.loc[cid, "index"])]
        later += (r.device_category == "IMV").any()
    assert later >= 3


def test_day7_d_dimer_quartiles(tables, derived, design):
    _, base, _ = derived
    sets = _sets(design)
    trial, ctl = [], []
    for tid, controls in sets.items():
        for pid, out in [(tid, trial)] + [(c, ctl) for c in controls]:
            v, gap, second = _dimer_d7(tables, pid, base.loc[pid, "index"])
            assert gap <= 3 * H and (second is None or second >= 20 * H), pid
            out.append(v)
    assert np.percentile(trial, [25, 50, 75]).tolist() == PAPER_TRIAL_DIMER
    assert np.percentile(ctl, [25, 50, 75]).tolist() == PAPER_CONTROL_DIMER
    # R: wilcox.test(trial, control, exact = FALSE, correct = TRUE)$p.value; paper_pvalue 0.0085
    p = stats.mannwhitneyu(trial, ctl, method="asymptotic", use_continuity=True).pvalue
    assert p == pytest.approx(0.0085, abs=5e-5)


def test_free_days_not_significantly_different(tables, derived, design):
    _, base, _ = derived
    sets = _sets(design)
    holds = _device_holds(tables)
    fd = {pid: _free_days(tables, pid, base.loc[pid, "index"], holds)
          for tid, cs in sets.items() for pid in [tid] + cs}
    for pid, rec in list(design["twins"].items()) + [(r["patient_id"], r) for r in design["trial"]]:
        assert fd[pid] == rec["free_days"], pid
    for kind in ("imv", "hfno", "oxygen", "icu"):
        t = np.array([fd[tid][kind] for tid in sets], float)
        c = np.array([[fd[x][kind] for x in sets[tid]] for tid in sets], float)
        p_sets = stats.wilcoxon(t - c.mean(axis=1)).pvalue
        p_mw = stats.mannwhitneyu(t, c.ravel()).pvalue
        p_pairs = stats.wilcoxon((t[:, None] - c).ravel()).pvalue
        assert min(p_sets, p_mw, p_pairs) > 0.05, (kind, p_sets, p_mw, p_pairs)
        assert p_sets == pytest.approx(design["free_day_pvalues"][kind]["signed_rank_sets"])


def test_published_mcnemar_reproduced(tables, derived, design):
    """McNemar without continuity correction on 24 pseudo-pairs: paper_pvalue 0.025 and 0.0082."""
    _, base, _ = derived
    death = tables["patient"].set_index("patient_id").death_dttm
    for day, paper_pvalue in ((28, 0.025), (60, 0.0082)):
        b = sum(pd.notna(death[c]) and death[c] - base.loc[c, "index"] <= day * DAY
                for cs in _sets(design).values() for c in cs)
        p = stats.chi2.sf(b ** 2 / b, 1)
        assert p == pytest.approx(paper_pvalue, abs=5e-4)


def test_design_record_is_json(design):
    text = json.dumps(design)
    assert json.loads(text)["synthetic"] is True
    assert min(design["margins"]["min_ratio_by_covariance"].values()) >= 3.0
    assert len(design["twins"]) == 24 and all(len(v) == 3 for v in design["matched_sets"].values())
