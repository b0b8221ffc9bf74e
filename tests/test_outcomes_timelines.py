"""The outcomes room against thirty hand-computed timelines (tests/_timelines.py).

Each timeline's docstring-style ``working`` derives its expected endpoints by hand from the written
definitions; here they are compared with what the engine derives, for death counted as 0 free days
(the default) and as -1.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from controlarm.outcomes import derive_daily_status, derive_endpoints, endpoint_definitions
from controlarm.sources import open_sources
from controlarm.spec import load_study

from . import _timelines as T


@pytest.fixture(scope="module", params=[0, -1], ids=["death=0", "death=-1"])
def run(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"timelines{request.param}")
    study = load_study(T.write(folder, request.param))
    sources = open_sources(study.data.source, base_dir=study.base_dir)
    index = T.tables()["index"]
    got = derive_endpoints(sources, index, study).set_index("patient_id")
    return study, sources, index, got, T.expected_frame(request.param)


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    folder = tmp_path_factory.mktemp("timelines_daily")
    study = load_study(T.write(folder))
    sources = open_sources(study.data.source, base_dir=study.base_dir)
    return derive_daily_status(sources, T.tables()["index"], study, days=28)


def test_there_are_at_least_25_timelines_covering_the_required_cases():
    titles = " | ".join(t.title for t in T.TIMELINES)
    assert len(T.TIMELINES) >= 25
    for case in ("death during day 28", "exactly at index + 28 days", "extubation then reintubation", "ECMO",
                 "gap in the records", "discharged alive before day 28", "readmission", "tie",
                 "missing labs", "unit mismatch", "index at the moment of ICU admission"):
        assert case in titles, case


@pytest.mark.parametrize("tl", T.TIMELINES, ids=[t.id for t in T.TIMELINES])
def test_timeline_endpoints_match_the_hand_computation(run, tl):
    _, _, _, got, expected = run
    row, want = got.loc["P" + tl.id], expected.loc["P" + tl.id]
    problems = []
    for col, value in want.items():
        if math.isnan(value) and col not in tl.expected:
            continue  # a component not worked out for this timeline
        have = row[col]
        if math.isnan(value):
            ok = math.isnan(have)
        elif col == "death_time_days":
            ok = have == pytest.approx(value, rel=1e-12, abs=0)
        else:
            ok = have == value
        if not ok:
            problems.append(f"{col}: expected {value}, got {have}")
    assert not problems, f"{tl.id} ({tl.title}):\n" + "\n".join(problems)


def test_endpoint_frame_columns_and_order(run):
    study, _, index, got, _ = run
    assert list(got.index) == list(index["patient_id"])
    defs = endpoint_definitions(study)
    assert [d.name for d in defs] == [
        "alive_d28", "alive_d60", "time_to_death", "need_imv", "imv_free_days_28", "hfno_free_days_28",
        "oxygen_free_days_28", "icu_free_days_28", "hospital_free_days_28", "who_d1", "who_d7", "who_d28",
        "d_dimer_d7"]
    for d in defs:
        assert d.column in got.columns and (d.event_column is None or d.event_column in got.columns)
    for key in ("imv", "hfno", "oxygen", "icu", "hospital"):
        assert {f"{key}_free_days_28_alive", f"{key}_free_days_28_days"} <= set(got.columns)
    assert all(got[c].dtype == float for c in got.columns)


def test_free_days_components_rebuild_the_endpoint(run):
    """Endpoint = days component when alive at day 28, else the death value; alive = not dead by 28."""
    study, _, _, got, _ = run
    dv = study.outcomes.free_days_death_value
    for key in ("imv", "hfno", "oxygen", "icu", "hospital"):
        col = f"{key}_free_days_28"
        rebuilt = np.where(got[f"{col}_alive"] == 1, got[f"{col}_days"], dv)
        assert (got[col].to_numpy() == rebuilt).all(), key
        assert (got[f"{col}_alive"] == got["alive_d28"]).all()  # vital status is known to the cutoff here


def test_derive_endpoints_accepts_an_engine_relation_and_a_repeated_patient(run):
    """A patient indexed twice (risk-set controls reused at two landmarks) gets one row per index."""
    study, sources, index, got, _ = run
    t01 = index[index["patient_id"] == "PT01"]
    later = t01.assign(index_time=t01["index_time"] + pd.Timedelta(days=5))
    both = pd.concat([t01, later], ignore_index=True)
    out = derive_endpoints(sources, both, study)
    assert list(out["patient_id"]) == ["PT01", "PT01"]
    # From D5 the stay [D0, D10) touches days 1-5 only: 23 hospital-free days; WHO day 7 is out of hospital
    assert out["hospital_free_days_28"].tolist() == [18.0, 23.0]
    assert out["who_d7"].tolist() == [4.0, 3.0]
    # no index time (a risk-set candidate before matching): nothing is derived
    none = derive_endpoints(sources, t01.assign(index_time=pd.NaT), study)
    assert none.drop(columns="patient_id").isna().all().all()
    sources.con.register("_idx_view_df", index)
    sources.con.execute("CREATE OR REPLACE TEMP TABLE idx_rel AS SELECT * FROM _idx_view_df")
    sources.con.unregister("_idx_view_df")
    by_name = derive_endpoints(sources, "idx_rel", study).set_index("patient_id")
    pd.testing.assert_frame_equal(by_name.sort_index(), got.sort_index())


def _days(daily: pd.DataFrame, tid: str, col: str, days=range(1, 11)) -> list:
    d = daily[daily["patient_id"] == "P" + tid].set_index("day")
    return [d.loc[k, col] for k in days]


def test_daily_status_gap_and_readmission(daily):
    """T08: HFNC on days 1, 2 and 4, nothing held on day 3 (the gap), room air after; in hospital to
    day 8. T10: in hospital days 1-8 and 16-22 (readmission), IMV on days 16-18."""
    assert _days(daily, "T08", "support_level") == [2, 2, 0, 2, 0, 0, 0, 0, 0, 0]
    assert _days(daily, "T08", "who") == [6, 6, 4, 6, 4, 4, 4, 4, 3, 3]
    assert _days(daily, "T10", "in_hospital", range(1, 29)) == [1] * 8 + [0] * 7 + [1] * 7 + [0] * 6
    assert _days(daily, "T10", "support_level", range(15, 20)) == [0, 4, 4, 4, 0]
    assert _days(daily, "T10", "in_icu", range(15, 21)) == [0, 1, 1, 1, 1, 0]


def test_daily_status_ecmo_and_death(daily):
    """T06: IMV days 1-10 with ECMO days 3-7 (WHO 9 there), NC days 11-14. T02: alive to the end of
    day 27, dead during day 28 (WHO 10)."""
    assert _days(daily, "T06", "support_level", range(1, 16)) == [4, 4, 5, 5, 5, 5, 5, 4, 4, 4, 1, 1, 1, 1, 0]
    assert _days(daily, "T06", "who", range(1, 9)) == [7, 7, 9, 9, 9, 9, 9, 7]
    assert _days(daily, "T06", "support", [3]) == ["ECMO"]
    assert _days(daily, "T02", "alive", range(26, 29)) == [1.0, 1.0, 0.0]
    assert _days(daily, "T02", "who", range(26, 29)) == [7.0, 7.0, 10.0]


def test_daily_status_agrees_with_every_endpoint(daily, run):
    """Counting days in the daily status gives the free-days components and the WHO endpoints."""
    _, _, _, got, _ = run
    d = daily.copy()
    alive = d["alive"] == 1
    # (HFNO days cannot be read from the day's highest level: a day with HFNO and IMV is an IMV day)
    counts = {
        "imv": d["support_level"] >= 4, "oxygen": d["support_level"] >= 1,
        "icu": d["in_icu"] == 1, "hospital": d["in_hospital"] == 1,
    }
    for key, busy in counts.items():
        free = (alive & ~busy).groupby(d["patient_id"]).sum()
        assert (got[f"{key}_free_days_28_days"] == free.reindex(got.index)).all(), key
    for n in (1, 7, 28):
        who = d[d["day"] == n].set_index("patient_id")["who"]
        assert (got[f"who_d{n}"] == who.reindex(got.index)).all(), n
    # HFNO days count High Flow NC only (NIPPV/CPAP share WHO 6 but are not HFNO)
    assert got.loc["PT17", "hfno_free_days_28"] == 28.0


def test_engine_sql_is_written_once_for_duckdb_and_spark(run):
    """One query text; only the epoch spelling differs by dialect (Spark: unix_micros). No file
    reads, no DuckDB-only date arithmetic in the outcome query."""
    from controlarm.outcomes._derive import endpoints_sql

    study = run[0]
    duck, spark = endpoints_sql(study, "ix_rel"), endpoints_sql(study, "ix_rel", dialect="spark")
    assert "epoch_us(" in duck and "unix_micros(" in spark and "epoch_us(" not in spark
    assert duck.replace("epoch_us(", "unix_micros(") == spark
    for dialect_only in ("read_parquet", "to_microseconds", "QUALIFY", "INTERVAL", "::"):
        assert dialect_only not in duck
    with pytest.raises(Exception, match="dialect"):
        endpoints_sql(study, "ix_rel", dialect="oracle")


def test_daily_status_rejects_a_bad_number_of_days(run):
    from controlarm.errors import InputError

    study, sources, index, _, _ = run
    with pytest.raises(InputError, match="days"):
        derive_daily_status(sources, index, study, days=0)
