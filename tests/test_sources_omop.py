"""OMOP CDM v5.4 adapter: the concept map, the mapping SQL on a hand-built OMOP fixture with known
answers, its portability (sqlglot to PostgreSQL and Spark), and the demo study through OMOP and back
giving the same results.json as the CLIF original (apart from the input-file hashes).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from controlarm.errors import InputError
from controlarm.sources import (DEVICE_CATEGORIES, DISCHARGE_CATEGORIES, ECMO_DEVICE_CATEGORIES, LAB_CATEGORIES,
                                LOCATION_CATEGORIES, SEX_CATEGORIES, VITAL_CATEGORIES)
from controlarm.sources.omop import (CDM_TABLES, CLIF_VIEW_TABLES, CONCEPT_COLUMNS, clif_views_sql, export_omop,
                                     load_concept_map, mapping_report_sql, register_omop, write_clif)

UTC = timezone.utc


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# concept map
# ---------------------------------------------------------------------------------------------


def test_shipped_concept_map_names_only_clif_categories():
    cmap = load_concept_map()
    assert tuple(c for c in cmap.columns if c != "map_order") == CONCEPT_COLUMNS
    vocab = {("patient", "sex_category"): SEX_CATEGORIES, ("adt", "location_category"): LOCATION_CATEGORIES,
             ("vitals", "vital_category"): VITAL_CATEGORIES, ("labs", "lab_category"): LAB_CATEGORIES,
             ("respiratory_support", "device_category"): DEVICE_CATEGORIES,
             ("ecmo_mcs", "device_category"): ECMO_DEVICE_CATEGORIES,
             ("hospitalization", "discharge_category"): DISCHARGE_CATEGORIES}
    for (table, field), allowed in vocab.items():
        values = set(cmap[(cmap.clif_table == table) & (cmap.clif_field == field)].clif_value)
        assert values and values <= allowed, (table, field, values - allowed)
    assert cmap["note"].notna().all()  # every row says where it comes from
    dd = cmap[(cmap.clif_table == "labs") & (cmap.clif_value == "d_dimer")]
    assert set(zip(dd.concept_code, dd.unit_qualifier)) == {("48065-7", "FEU"), ("48066-5", "DDU")}
    key = {(r.clif_table, r.clif_value, r.concept_id) for r in cmap.itertuples()}
    assert {("medication_admin_intermittent", "dexamethasone", 1518254), ("adt", "icu", 32037),
            ("hospital_diagnosis", "U07.1", 37311061), ("hospitalization", "inpatient", 9201),
            ("hospitalization", "inpatient", 262), ("patient", "Male", 8507), ("patient", "Female", 8532)} <= key


def test_user_concepts_replace_on_table_field_and_concept_and_add_rows(tmp_path):
    extra = tmp_path / "my.csv"
    extra.write_text("clif_table,clif_field,clif_value,concept_id,concept_name,note\n"
                     "labs,lab_category,d_dimer,3051714,my FEU D-dimer,site check\n"
                     "labs,lab_category,procalcitonin,3046279,Procalcitonin,site\n", encoding="utf-8")
    cmap = load_concept_map(extra)
    row = cmap[cmap.concept_id == 3051714]
    assert len(row) == 1 and row.iloc[0].concept_name == "my FEU D-dimer" and row.iloc[0].unit_qualifier is None
    assert (cmap.concept_id == 3046279).sum() == 1
    shipped = load_concept_map()
    assert len(cmap) == len(shipped) + 1
    # a replaced row keeps its place (first d_dimer row is still the one the exporter writes)
    first = cmap[(cmap.clif_table == "labs") & (cmap.clif_value == "d_dimer")].iloc[0]
    assert first.concept_id == 3051714


def test_concept_file_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("clif_table,clif_field,clif_value,concept_id\nlabs,lab_category,crp,abc\n", encoding="utf-8")
    with pytest.raises(InputError, match="concept_id must be an integer"):
        load_concept_map(bad)
    clash = tmp_path / "clash.csv"
    clash.write_text("clif_table,clif_field,clif_value,concept_id\nlabs,lab_category,ferritin,777\n"
                     "vitals,vital_category,map,777\nlabs,lab_category,crp,777\n", encoding="utf-8")
    with pytest.raises(InputError, match="concept_id 777 appears 2 times for labs.lab_category"):
        load_concept_map(clash)  # one concept, two lab categories: reading would be ambiguous
    with pytest.raises(InputError, match="does not exist"):
        load_concept_map(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------------
# portability
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["postgres", "spark"])
def test_every_statement_transpiles_without_unsupported_constructs(dialect):
    sqlglot = pytest.importorskip("sqlglot")
    statements = {**clif_views_sql(24), **mapping_report_sql(24)}
    for name, sql in statements.items():
        out = sqlglot.transpile(sql, read="duckdb", write=dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)
        assert len(out) == 1, name
        # DuckDB-only syntax that must not appear
        for bad in ("EXCLUDE", "QUALIFY", "list_", "::"):
            assert bad not in sql, (name, bad)


# ---------------------------------------------------------------------------------------------
# a tiny OMOP database with known answers
# ---------------------------------------------------------------------------------------------

def _write(folder: Path, table: str, rows: list[dict]) -> None:
    cols = [c for c, _ in CDM_TABLES[table]]
    pd.DataFrame(rows).reindex(columns=[c for c in cols if any(c in r for r in rows)]).to_parquet(
        folder / f"{table}.parquet", index=False)


def write_tiny_omop(d: Path) -> None:
    """A hand-built OMOP folder whose CLIF reading is known (asserted below)."""
    T = pd.Timestamp
    _write(d, "person", [
        dict(person_id=1, gender_concept_id=8532, year_of_birth=1960, month_of_birth=5, day_of_birth=10,
             race_concept_id=8527, ethnicity_concept_id=0, ethnicity_source_value="Unknown", person_source_value="P1"),
        dict(person_id=2, gender_concept_id=99, year_of_birth=1970, birth_datetime=T("1970-01-02 00:00"),
             race_concept_id=0, ethnicity_concept_id=0),
    ])
    _write(d, "death", [dict(person_id=2, death_date=T("2020-06-20").date(), death_type_concept_id=32817)])
    _write(d, "visit_occurrence", [
        dict(visit_occurrence_id=10, person_id=1, visit_concept_id=9201, visit_start_date=T("2020-06-01").date(),
             visit_start_datetime=T("2020-06-01 08:00"), visit_end_date=T("2020-06-15").date(),
             visit_end_datetime=T("2020-06-15 08:00"), visit_source_value="H1", discharged_to_concept_id=8536),
        dict(visit_occurrence_id=20, person_id=2, visit_concept_id=262, visit_start_date=T("2020-06-10").date(),
             visit_end_date=T("2020-06-20").date(), discharged_to_concept_id=4216643),
        dict(visit_occurrence_id=30, person_id=1, visit_concept_id=9202, visit_start_date=T("2020-07-01").date(),
             visit_end_date=T("2020-07-01").date()),
    ])
    _write(d, "visit_detail", [
        dict(visit_detail_id=100, person_id=1, visit_occurrence_id=10, visit_detail_concept_id=32037,
             visit_detail_start_date=T("2020-06-02").date(), visit_detail_start_datetime=T("2020-06-02 08:00"),
             visit_detail_end_date=T("2020-06-05").date(), visit_detail_end_datetime=T("2020-06-05 08:00"),
             visit_detail_source_value="ICU A"),
        dict(visit_detail_id=101, person_id=1, visit_occurrence_id=10, visit_detail_concept_id=12345,
             visit_detail_start_date=T("2020-06-05").date(), visit_detail_start_datetime=T("2020-06-05 08:00"),
             visit_detail_end_date=T("2020-06-15").date(), visit_detail_end_datetime=T("2020-06-15 08:00")),
    ])
    m = dict(person_id=1, visit_occurrence_id=10, measurement_date=T("2020-06-03").date())
    _write(d, "measurement", [
        {**m, "measurement_id": 1, "measurement_concept_id": 3053279, "value_as_number": 500.0,
         "unit_concept_id": 8842, "measurement_datetime": T("2020-06-03 06:00")},               # DDU by concept
        {**m, "measurement_id": 2, "measurement_concept_id": 3051714, "value_as_number": 1.5,
         "unit_concept_id": 8751, "unit_source_value": "mg/L FEU", "measurement_datetime": T("2020-06-03 07:00")},
        {**m, "measurement_id": 3, "visit_occurrence_id": None, "measurement_concept_id": 3020460,
         "value_as_number": 12.0, "unit_concept_id": 8840, "measurement_datetime": T("2020-06-04 06:00")},
        {**m, "measurement_id": 4, "measurement_concept_id": 999999, "value_as_number": 1.0,
         "measurement_datetime": T("2020-06-04 06:00")},                                          # unmapped
        {**m, "measurement_id": 5, "measurement_concept_id": 3027018, "value_as_number": 88.0,
         "measurement_datetime": T("2020-06-04 07:00")},                                          # heart rate
        {**m, "measurement_id": 6, "measurement_concept_id": 3051714, "value_as_number": 900.0,
         "unit_concept_id": 8842, "unit_source_value": "ng/mL", "measurement_datetime": T("2020-06-05 06:00")},
        {**m, "measurement_id": 7, "measurement_concept_id": 3053279, "value_as_number": 700.0,
         "unit_concept_id": 8748, "unit_source_value": "ug/L FEU", "measurement_datetime": T("2020-06-06 06:00")},
        {**m, "measurement_id": 8, "measurement_concept_id": 3020716, "value_as_number": 60.0,     # FiO2 in %
         "measurement_datetime": T("2020-06-02 10:00")},
        {**m, "measurement_id": 9, "measurement_concept_id": 3022875, "value_as_number": 8.0,      # PEEP
         "measurement_datetime": T("2020-06-02 10:00")},
        {**m, "measurement_id": 10, "measurement_concept_id": 3020716, "value_as_number": 0.4,     # no device then
         "measurement_datetime": T("2020-06-02 12:00")},
    ])
    e = dict(person_id=1, visit_occurrence_id=10)
    _write(d, "device_exposure", [
        {**e, "device_exposure_id": 1, "device_concept_id": 40493026, "device_source_value": "ventilator",
         "device_exposure_start_datetime": T("2020-06-02 10:00"), "device_exposure_end_datetime": T("2020-06-05 22:00")},
        {**e, "device_exposure_id": 2, "device_concept_id": 4224038, "device_source_value": "NC",
         "device_exposure_start_datetime": T("2020-06-05 22:00"), "device_exposure_end_datetime": T("2020-06-06 00:00")},
        {**e, "device_exposure_id": 3, "device_concept_id": 4222966, "device_source_value": "mask",
         "device_exposure_start_datetime": T("2020-06-07 12:00")},                                  # no end: one event
        {**e, "device_exposure_id": 4, "device_concept_id": 555, "device_exposure_start_datetime": T("2020-06-08 12:00")},
    ])
    _write(d, "procedure_occurrence", [
        {**e, "procedure_occurrence_id": 1, "procedure_concept_id": 3655950, "procedure_source_value": "HFNO",
         "procedure_datetime": T("2020-06-01 10:00"), "procedure_end_datetime": T("2020-06-02 10:00")},
        {**e, "procedure_occurrence_id": 2, "procedure_concept_id": 4052536, "procedure_source_value": "ECMO",
         "procedure_datetime": T("2020-06-03 00:00"), "procedure_end_datetime": T("2020-06-03 06:00")},
    ])
    _write(d, "drug_exposure", [
        {**e, "drug_exposure_id": 1, "drug_concept_id": 19075380, "quantity": 6.0, "drug_source_value": "dexa 6 mg",
         "dose_unit_source_value": "mg", "drug_exposure_start_datetime": T("2020-06-02 09:00")},
        {**e, "drug_exposure_id": 2, "drug_concept_id": 40171288, "quantity": 600.0,
         "drug_exposure_start_datetime": T("2020-06-03 09:00")},
        {**e, "drug_exposure_id": 3, "drug_concept_id": 1112807, "drug_exposure_start_datetime": T("2020-06-03 09:00")},
    ])
    _write(d, "concept_ancestor", [dict(ancestor_concept_id=1518254, descendant_concept_id=19075380,
                                        min_levels_of_separation=2, max_levels_of_separation=2)])
    _write(d, "condition_occurrence", [
        dict(condition_occurrence_id=1, person_id=1, condition_concept_id=37311061, condition_source_value="U07.1",
             condition_status_concept_id=32902, condition_start_datetime=T("2020-06-01 09:00"),
             condition_start_date=T("2020-06-01").date()),
        dict(condition_occurrence_id=2, person_id=2, visit_occurrence_id=20, condition_concept_id=37311061,
             condition_start_date=T("2020-06-10").date()),
    ])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("omop")
    write_tiny_omop(d)
    con = duckdb.connect()
    mapping = register_omop(con, d, max_gap_hours=24)
    yield con, mapping
    con.close()


def _rows(con, sql):
    return con.execute(sql).fetchall()


def test_tiny_patients_ids_birth_death_and_sex(tiny):
    con, _ = tiny
    assert _rows(con, "SELECT * FROM patient ORDER BY patient_id") == [
        ("2", "Unknown", datetime(1970, 1, 2).date(), ts("2020-06-20T23:59:59"), None, None),
        ("P1", "Female", datetime(1960, 5, 10).date(), None, "White", "Unknown"),
    ]


def test_tiny_hospitalizations_only_mapped_visits(tiny):
    con, _ = tiny
    assert _rows(con, "SELECT patient_id, hospitalization_id, admission_dttm, discharge_dttm, age_at_admission, "
                      "discharge_category FROM hospitalization ORDER BY 2") == [
        ("2", "20", ts("2020-06-10T00:00"), ts("2020-06-21T00:00"), 50, "Expired"),
        ("P1", "H1", ts("2020-06-01T08:00"), ts("2020-06-15T08:00"), 60, "Home"),
    ]


def test_tiny_adt_icu_from_visit_detail_and_unknown_as_other(tiny):
    con, _ = tiny
    assert _rows(con, "SELECT hospitalization_id, in_dttm, out_dttm, location_category, location_name FROM adt "
                      "ORDER BY in_dttm") == [
        ("H1", ts("2020-06-02T08:00"), ts("2020-06-05T08:00"), "icu", "ICU A"),
        ("H1", ts("2020-06-05T08:00"), ts("2020-06-15T08:00"), "other", None),
    ]


def test_tiny_labs_keep_feu_and_ddu(tiny):
    con, _ = tiny
    assert _rows(con, "SELECT lab_collect_dttm, lab_category, lab_value_numeric, reference_unit FROM labs "
                      "ORDER BY lab_collect_dttm") == [
        (ts("2020-06-03T06:00"), "d_dimer", 500.0, "ng/mL DDU"),   # DDU from the LOINC concept
        (ts("2020-06-03T07:00"), "d_dimer", 1.5, "mg/L FEU"),
        (ts("2020-06-04T06:00"), "crp", 12.0, "mg/dL"),            # no visit id: attached by time
        (ts("2020-06-05T06:00"), "d_dimer", 900.0, "ng/mL FEU"),   # FEU concept, plain unit
        (ts("2020-06-06T06:00"), "d_dimer", 700.0, "ug/L FEU"),    # the source value's FEU wins
    ]
    assert _rows(con, "SELECT vital_category, vital_value FROM vitals") == [("heart_rate", 88.0)]


def test_tiny_exposure_intervals_become_clif_events(tiny):
    con, _ = tiny
    assert _rows(con, "SELECT recorded_dttm, fio2_set, peep_set FROM respiratory_support "
                      "WHERE fio2_set IS NOT NULL OR peep_set IS NOT NULL") == [(ts("2020-06-02T10:00"), 0.6, 8.0)]
    assert _rows(con, "SELECT recorded_dttm, device_category, device_name FROM respiratory_support "
                      "ORDER BY recorded_dttm") == [
        (ts("2020-06-01T10:00"), "High Flow NC", "HFNO"),     # exactly 24 h, followed by IMV: no stop
        (ts("2020-06-02T10:00"), "IMV", "ventilator"),        # 84 h: every 24 h, then e - 24 h
        (ts("2020-06-03T10:00"), "IMV", "ventilator"),
        (ts("2020-06-04T10:00"), "IMV", "ventilator"),
        (ts("2020-06-04T22:00"), "IMV", "ventilator"),
        (ts("2020-06-05T22:00"), "Nasal Cannula", "NC"),      # 2 h, nothing after: stopped by Room Air
        (ts("2020-06-06T00:00"), "Room Air", "(end of device exposure)"),
        (ts("2020-06-07T12:00"), "Face Mask", "mask"),        # no end: one record
    ]
    assert _rows(con, "SELECT recorded_dttm, device_category, mcs_group FROM ecmo_mcs") == [
        (ts("2020-06-03T00:00"), "VV ECMO", "ECMO")]


def test_tiny_intervals_read_back_by_the_rooms_rule_are_the_omop_intervals(tiny):
    """The rooms' own "a record holds until the next one, at most max_gap" gives the OMOP intervals."""
    from controlarm.cohort._intervals import device_intervals_sql, merge_intervals_sql

    con, _ = tiny
    con.execute(f"CREATE OR REPLACE TEMP VIEW _di AS {device_intervals_sql(24)}")
    got = {}
    for cat in ("IMV", "High Flow NC", "Nasal Cannula"):
        con.execute(f"CREATE OR REPLACE TEMP VIEW _one AS SELECT hospitalization_id, start_dttm AS s, end_dttm AS e "
                    f"FROM _di WHERE device_category = '{cat}'")
        got[cat] = _rows(con, f"SELECT s, e FROM ({merge_intervals_sql('_one')}) x")
    assert got == {"IMV": [(ts("2020-06-02T10:00"), ts("2020-06-05T22:00"))],
                   "High Flow NC": [(ts("2020-06-01T10:00"), ts("2020-06-02T10:00"))],
                   "Nasal Cannula": [(ts("2020-06-05T22:00"), ts("2020-06-06T00:00"))]}


def test_tiny_medications_roll_up_through_concept_ancestor(tiny):
    con, _ = tiny
    assert _rows(con, "SELECT admin_dttm, med_category, med_name, med_dose, med_dose_unit "
                      "FROM medication_admin_intermittent ORDER BY admin_dttm") == [
        (ts("2020-06-02T09:00"), "dexamethasone", "dexa 6 mg", 6.0, "mg"),
        (ts("2020-06-03T09:00"), "tocilizumab", None, 600.0, None),
    ]


def test_tiny_diagnoses_from_source_value_or_concept(tiny):
    con, _ = tiny
    assert _rows(con, "SELECT hospitalization_id, diagnosis_code, diagnosis_primary, poa_present "
                      "FROM hospital_diagnosis ORDER BY 1") == [("20", "U07.1", 0, None), ("H1", "U07.1", 1, 0)]


def test_tiny_unknown_concepts_are_counted_not_silently_dropped(tiny):
    _, mapping = tiny
    msgs = "\n".join(mapping.messages())
    assert "OMOP: 1 visit_occurrence rows whose visit_concept_id is not mapped" in msgs and "9202: 1" in msgs
    assert "OMOP: 1 visit_detail rows whose visit_detail_concept_id is not mapped" in msgs and "12345: 1" in msgs
    assert "OMOP: 1 person rows whose gender_concept_id is not mapped" in msgs
    assert "OMOP: 1 measurement rows whose concept is not mapped" in msgs and "999999: 1" in msgs
    assert "OMOP: 1 device_exposure rows whose concept is not mapped" in msgs and "555: 1" in msgs
    assert "OMOP: 1 ECMO exposures shorter than max_gap_hours" in msgs
    assert "OMOP: 1 respiratory settings (FiO2, flow, PEEP) measured at a time when no" in msgs


def test_views_cover_every_clif_table(tiny):
    _, mapping = tiny
    assert set(mapping.views) == set(CLIF_VIEW_TABLES)


# ---------------------------------------------------------------------------------------------
# the demo study through OMOP and back
# ---------------------------------------------------------------------------------------------


def _run(study: Path, out: Path) -> dict:
    res = subprocess.run([sys.executable, "-m", "controlarm", "run", str(study), "--out", str(out), "-q"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    from controlarm.demo import generate_demo

    base = tmp_path_factory.mktemp("omop_rt")
    study = generate_demo(base / "clif")
    export = export_omop(base / "clif" / "data", base / "omop", max_gap_hours=24)
    con = duckdb.connect()
    mapping = register_omop(con, base / "omop", max_gap_hours=24)
    (base / "back").mkdir()
    shutil.copy(study, base / "back" / "study.toml")   # same study file, same relative data folder
    write_clif(con, base / "back" / "data", mapping)
    con.close()
    return base, export, mapping


def test_export_writes_cdm_tables_with_source_values(round_trip):
    base, export, _ = round_trip
    assert export.unmapped == ()
    con = duckdb.connect()
    for table in ("person", "visit_occurrence", "visit_detail", "measurement", "device_exposure",
                  "procedure_occurrence", "drug_exposure", "condition_occurrence", "death"):
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{base / 'omop' / table}.parquet'").fetchall()]
        assert cols == [c for c, _ in CDM_TABLES[table]], table
    ids = con.execute(f"SELECT min(person_source_value), count(DISTINCT person_id) FROM '{base}/omop/person.parquet'"
                      ).fetchone()
    assert ids == ("C0001", 462)
    units = {r[0] for r in con.execute(f"SELECT DISTINCT unit_source_value FROM '{base}/omop/measurement.parquet' "
                                       "WHERE measurement_concept_id IN (3051714, 3053279)").fetchall()}
    assert {"ng/mL FEU", "ng/mL DDU", "mg/L FEU"} <= units
    for name in ("enrollment", "administration", "adverse_event"):
        assert (base / "omop" / f"{name}.parquet").is_file()


def test_demo_omop_round_trip_gives_the_same_clif_rows(round_trip):
    base, _, mapping = round_trip
    assert mapping.messages() == ()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for f in sorted((base / "clif" / "data").glob("*.parquet")):
        a, b = f"'{f}'", f"'{base / 'back' / 'data' / f.name}'"
        cols_a = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {a}").fetchall()]
        cols_b = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {b}").fetchall()}
        # columns OMOP has no place for (docs/omop.md): lab_result_dttm, ventilator mode, ECMO flows
        lost = {c for c in cols_a if c not in cols_b}
        assert lost <= {"lab_result_dttm", "mode_category", "flow", "sweep", "fdO2"}
        cols = ", ".join(f'"{c}"' for c in cols_a if c in cols_b)
        for x, y in ((a, b), (b, a)):
            assert con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {x} EXCEPT ALL SELECT {cols} FROM {y})"
                               ).fetchone()[0] == 0, f.name


def test_demo_through_omop_gives_identical_results_json(round_trip):
    base, _, _ = round_trip
    clif = _run(base / "clif" / "study.toml", base / "out_clif")
    omop = _run(base / "back" / "study.toml", base / "out_omop")
    for r in (clif, omop):
        r["reproducibility"].pop("inputs")   # the data-source field: hashes of the input files
    assert json.dumps(clif, sort_keys=True) == json.dumps(omop, sort_keys=True)
    assert clif["outcomes"]["d_dimer_d7"]["summaries"]["treated"]["median"] == 821.0


# ---------------------------------------------------------------------------------------------
# the study file
# ---------------------------------------------------------------------------------------------


def test_study_file_data_model_and_omop_concepts(tmp_path):
    import tomllib

    from controlarm.spec._models import Study

    base = tomllib.loads((Path(__file__).parents[1] / "src/controlarm/demo/study.toml").read_text(encoding="utf-8"))
    clif = Study.model_validate(base)
    assert clif.data.model == "clif" and clif.data.omop is None
    assert "model" not in clif.model_dump(mode="json")["data"]   # a CLIF study's spec hash is unchanged
    omop = Study.model_validate({**base, "data": {**base["data"], "model": "omop",
                                                  "omop": {"concepts": "my_concepts.csv"}}})
    assert omop.data.model == "omop" and omop.data.omop.concepts == "my_concepts.csv"
    assert omop.spec_hash != clif.spec_hash
    with pytest.raises(ValueError, match="data.model"):
        Study.model_validate({**base, "data": {**base["data"], "omop": {"concepts": "x.csv"}}})
    with pytest.raises(ValueError):
        Study.model_validate({**base, "data": {**base["data"], "model": "i2b2"}})


def test_commands_export_and_map_back(tmp_path, round_trip):
    from typer.testing import CliRunner

    from controlarm.cli import app

    base, _, _ = round_trip
    runner = CliRunner()
    res = runner.invoke(app, ["omop-to-clif", str(base / "omop"), str(tmp_path / "clif")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "clif" / "respiratory_support.parquet").is_file()
    assert (tmp_path / "clif" / "enrollment.parquet").is_file()
    res = runner.invoke(app, ["export-omop", str(tmp_path / "nope"), str(tmp_path / "out")])
    assert res.exit_code == 2 and "not a folder" in res.output and "Traceback" not in res.output


# ---------------------------------------------------------------------------------------------
# the same SQL on a real PostgreSQL: a throwaway server (tests/_postgres.py), or the one
# CONTROLARM_TEST_PSQL names with psql connection arguments ("-h /tmp/pgsock -p 5432 -U postgres")
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def psql_args():
    """psql connection arguments: CONTROLARM_TEST_PSQL, or a throwaway server (tests/_postgres.py)."""
    import os
    import shlex
    from urllib.parse import parse_qs

    from tests._postgres import postgres_server, require_or_skip

    if not shutil.which("psql"):
        require_or_skip("psql is not installed")
    if os.environ.get("CONTROLARM_TEST_PSQL"):
        yield shlex.split(os.environ["CONTROLARM_TEST_PSQL"])
        return
    with postgres_server() as uri:
        q = parse_qs(uri.partition("?")[2])
        yield ["-h", q["host"][0], "-p", q["port"][0], "-U", "postgres", "-d", "postgres"]


def test_transpiled_sql_gives_the_same_rows_on_postgresql(tiny, tmp_path, psql_args):
    import os

    sqlglot = pytest.importorskip("sqlglot")
    con, _ = tiny
    schema = f"controlarm_omop_test_{os.getpid()}"
    base = ["psql", *psql_args, "-v", "ON_ERROR_STOP=1", "-q"]
    env = {**os.environ, "PGOPTIONS": f"-c TimeZone=UTC -c search_path={schema}"}

    def psql(*cmds: str) -> str:
        res = subprocess.run(base + [a for c in cmds for a in ("-c", c)], env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[:2000]
        return res.stdout

    pgtype = {"BIGINT": "BIGINT", "VARCHAR": "TEXT", "DATE": "DATE", "TIMESTAMP": "TIMESTAMP",
              "DOUBLE": "DOUBLE PRECISION"}
    psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE", f"CREATE SCHEMA {schema}")
    try:
        tables = {**{t: [(c, pgtype[y]) for c, y in cols] for t, cols in CDM_TABLES.items()},
                  "_omop_concept_map": [("clif_table", "TEXT"), ("clif_field", "TEXT"), ("clif_value", "TEXT"),
                                        ("concept_id", "BIGINT"), ("unit_qualifier", "TEXT")]}
        for t, cols in tables.items():
            f = tmp_path / f"{t}.csv"
            con.execute(f"COPY (SELECT {', '.join(c for c, _ in cols)} FROM {t}) TO '{f}' (HEADER)")
            psql(f"CREATE TABLE {t} ({', '.join(f'{c} {y}' for c, y in cols)})", f"\\copy {t} FROM '{f}' CSV HEADER")
        for table, sql in clif_views_sql(24).items():
            pg = sqlglot.transpile(sql, read="duckdb", write="postgres", unsupported_level=sqlglot.ErrorLevel.RAISE)[0]
            f = tmp_path / f"clif_{table}.csv"
            f.write_text(psql(f"COPY ({pg}) TO STDOUT WITH CSV HEADER"))
            types = con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()
            cast = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t, *_ in types)
            con.execute(f"CREATE OR REPLACE TEMP VIEW _pg AS SELECT {cast} FROM read_csv('{f}', header = true, "
                        "all_varchar = true)")
            for x, y in (("_pg", table), (table, "_pg")):
                assert con.execute(f"SELECT count(*) FROM (SELECT * FROM {x} EXCEPT ALL SELECT * FROM {y})"
                                   ).fetchone()[0] == 0, table
        for sql in mapping_report_sql(24).values():
            psql(f"COPY ({sqlglot.transpile(sql, read='duckdb', write='postgres')[0]}) TO STDOUT WITH CSV")
    finally:
        psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.skipif(not (__import__("os").environ.get("CONTROLARM_TEST_SPARK")
                         or __import__("os").environ.get("CONTROLARM_REQUIRE_ENGINES") == "1"),
                    reason="set CONTROLARM_TEST_SPARK=1 to run the mapping on Spark local (slow; CI runs it)")
def test_transpiled_sql_gives_the_same_rows_on_spark(tiny, tmp_path):
    sqlglot = pytest.importorskip("sqlglot")
    pyspark_sql = pytest.importorskip("pyspark.sql")
    con, _ = tiny
    spark = (pyspark_sql.SparkSession.builder.master("local[1]").appName("controlarm-omop-test")
             .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    try:
        stype = {"BIGINT": "BIGINT", "VARCHAR": "STRING", "DATE": "DATE", "TIMESTAMP": "TIMESTAMP_NTZ",
                 "DOUBLE": "DOUBLE"}
        for t in list(CDM_TABLES) + ["_omop_concept_map"]:
            if t in CDM_TABLES and con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == 0:
                spark.sql("SELECT " + ", ".join(f"CAST(NULL AS {stype[y]}) AS {c}" for c, y in CDM_TABLES[t])
                          + " WHERE 1 = 0").createOrReplaceTempView(t)
                continue
            f = tmp_path / f"t{t}.parquet"   # Spark skips files whose name starts with "_"
            cols = "clif_table, clif_field, clif_value, concept_id, unit_qualifier" if t.startswith("_") else "*"
            con.execute(f"COPY (SELECT {cols} FROM {t}) TO '{f}' (FORMAT parquet)")
            spark.read.parquet(str(f)).createOrReplaceTempView(t)
        for table, sql in clif_views_sql(24).items():
            out = tmp_path / f"clif_{table}"
            spark.sql(sqlglot.transpile(sql, read="duckdb", write="spark",
                                        unsupported_level=sqlglot.ErrorLevel.RAISE)[0]
                      ).coalesce(1).write.mode("overwrite").parquet(str(out))
            types = con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()
            cast = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t, *_ in types)
            con.execute(f"CREATE OR REPLACE TEMP VIEW _sp AS SELECT {cast} FROM read_parquet('{out}/*.parquet')")
            for x, y in (("_sp", table), (table, "_sp")):
                assert con.execute(f"SELECT count(*) FROM (SELECT * FROM {x} EXCEPT ALL SELECT * FROM {y})"
                                   ).fetchone()[0] == 0, table
    finally:
        spark.stop()


def test_demo_with_data_model_omop_gives_identical_results_json(round_trip):
    """The same, through the study file: ``[data] model = "omop"`` on the exported OMOP folder."""
    base, _, _ = round_trip
    study = base / "via_omop" / "study.toml"
    study.parent.mkdir()
    shutil.copytree(base / "omop", study.parent / "data")
    text = (base / "clif" / "study.toml").read_text(encoding="utf-8")
    study.write_text(text.replace("[data]\n", '[data]\nmodel = "omop"\n', 1), encoding="utf-8")
    clif_out = base / "out_clif"
    clif = json.loads((clif_out / "results.json").read_text()) if clif_out.is_dir() else _run(
        base / "clif" / "study.toml", clif_out)
    omop = _run(study, base / "out_via_omop")
    assert omop["spec"]["data"]["model"] == "omop"
    for r in (clif, omop):   # the data-source fields: input files, data model, and so the spec hash
        r["reproducibility"].pop("inputs", None)
        r["spec"]["data"].pop("model", None)
        for part in ("reproducibility", "study"):
            r[part].pop("spec_hash", None)
    assert json.dumps(clif, sort_keys=True) == json.dumps(omop, sort_keys=True)
