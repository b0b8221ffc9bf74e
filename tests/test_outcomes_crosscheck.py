"""The engine's endpoints equal an independent plain-pandas implementation on 10k synthetic hospitalizations.

``tests/_synth.py`` generates the hospitalizations (seeded; gaps, ties, ECMO, readmissions, deaths on
day boundaries, D-dimer in several units, lab ties); ``tests/_outcomes_pandas.py`` re-derives every
endpoint from the written definitions in a different shape (Timedeltas, all records, one row per
day, no bitmask, hand-written unit factors). Two studies: the default one (28 days, death = 0,
24-hour gap, cutoff) and a variant that exercises the multi-word bitmasks (90 days), death = -1, a
12-hour gap and no cutoff (vital status unknown after the last discharge).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from controlarm.outcomes import derive_daily_status, derive_endpoints
from controlarm.sources import open_sources
from controlarm.spec import study_from_dict

from . import _synth
from ._outcomes_pandas import LEVEL, expand_days, reference_endpoints

N = 10_000
SEED = 7


def _study(outcomes: dict | None = None, cutoff: str | None = "2022-06-01"):
    raw = {
        "study": {"name": "cross-check"},
        "data": {"source": "data", **({"cutoff": cutoff} if cutoff else {})},
        "index": {"product": "MSC", "pool": {"location": "icu"}},
        "features": {"covariates": [{"name": "age", "kind": "age"}]},
        "matching": {"covariates": ["age"]},
        "outcomes": {"survival_days": [28, 60], "free_days": ["imv", "hfno", "oxygen", "icu", "hospital"],
                     "who_scale_days": [1, 7, 14, 28],
                     "labs": [{"category": "d_dimer", "day": 7, "window_days": 1},
                              {"category": "d_dimer", "day": 3, "window_days": 0.5}],
                     **(outcomes or {})},
    }
    return study_from_dict(raw)


STUDIES = {
    "default": _study(),
    "90 days, death -1, 12 h gap, no cutoff": _study(
        {"survival_days": [90], "free_days_horizon": 90, "free_days_death_value": -1, "max_gap_hours": 12,
         "who_scale_days": [2, 62, 63, 90]}, cutoff=None),
}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    tables = _synth.generate(N, SEED)
    folder = tmp_path_factory.mktemp("synth10k")
    for name, table in tables.items():
        if name != "index":
            pq.write_table(table, folder / f"{name}.parquet")
    frames = {name: t.to_pandas() for name, t in tables.items()}
    return open_sources(folder), frames


@pytest.mark.parametrize("name", list(STUDIES))
def test_engine_equals_plain_pandas_on_10k_hospitalizations(synth, name):
    sources, frames = synth
    study = STUDIES[name]
    got = derive_endpoints(sources, frames["index"], study)
    want = reference_endpoints(frames, frames["index"], study)
    assert list(got.columns) == list(want.columns)
    assert len(got) == N
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_dtype=False)
    # the data reach the edge cases the definitions are about
    h = study.outcomes.free_days_horizon
    assert got[f"imv_free_days_{h}"].nunique() > 20 and got["need_imv"].isna().any()
    assert (got[f"imv_free_days_{h}"] == study.outcomes.free_days_death_value).sum() > 500
    assert got["d_dimer_d7"].notna().sum() > 2000


def test_daily_status_equals_plain_pandas(synth):
    """Highest support level, ICU and hospital flags of every patient-day 1..28."""
    sources, frames = synth
    study = STUDIES["default"]
    got = derive_daily_status(sources, frames["index"], study, days=28)
    ix = frames["index"].reset_index(drop=True).assign(ord=lambda d: np.arange(len(d)))
    # intervals the pandas way (the reference module's own helpers), then one row per day
    from ._outcomes_pandas import _holding

    gap = pd.Timedelta(hours=study.outcomes.max_gap_hours)
    hosp = frames["hospitalization"]
    hs = ix[["ord", "patient_id", "index_time"]].merge(hosp, on="patient_id")
    resp = _holding(frames["respiratory_support"], hosp, gap)
    resp["kind"] = resp["device_category"].map(lambda d: LEVEL.get(d, 1))
    ecmo = frames["ecmo_mcs"]
    ecmo = _holding(ecmo[ecmo["device_category"].str.contains("ECMO")], hosp, gap).assign(kind=5)
    adt = frames["adt"]
    icu = adt[adt["location_category"] == "icu"].rename(columns={"in_dttm": "start", "out_dttm": "end"}).assign(kind=6)
    stay = hosp.rename(columns={"admission_dttm": "start", "discharge_dttm": "end"}).assign(kind=7)
    iv = pd.concat([x[["hospitalization_id", "start", "end", "kind"]] for x in (resp, ecmo, icu, stay)])
    iv = iv[(iv["end"] > iv["start"]) & (iv["kind"] > 0)]
    days = expand_days(hs[["ord", "hospitalization_id", "index_time"]].merge(iv, on="hospitalization_id"), 28)
    grid = pd.MultiIndex.from_product([range(N), range(1, 29)], names=["ord", "day"])
    level = days[days["kind"] <= 5].groupby(["ord", "day"])["kind"].max().reindex(grid, fill_value=0)
    icu_f = days[days["kind"] == 6].groupby(["ord", "day"]).size().reindex(grid, fill_value=0) > 0
    hosp_f = days[days["kind"] == 7].groupby(["ord", "day"]).size().reindex(grid, fill_value=0) > 0
    assert len(got) == N * 28
    assert (got["support_level"].to_numpy() == level.to_numpy()).all()
    assert (got["in_icu"].to_numpy() == icu_f.to_numpy().astype(int)).all()
    assert (got["in_hospital"].to_numpy() == hosp_f.to_numpy().astype(int)).all()
