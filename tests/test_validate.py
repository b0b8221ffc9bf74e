"""Tests of the validate room: a small valid CLIF dataset validates clean, and each broken input
gives one message that names the file, the column, the offending value or id, and a fix."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from controlarm.errors import DataContractError
from controlarm.sources import open_sources
from controlarm.validate import DataQualityReport, validate_sources

DATA = Path(__file__).parent / "data" / "clif_small"
Frames = dict[str, pd.DataFrame]


def load_frames() -> Frames:
    """The valid dataset as text frames (empty cells are empty strings), one per table."""
    return {p.stem: pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted(DATA.glob("*.csv"))}


def write(frames: Frames, folder: Path, fmt: str) -> Path:
    folder.mkdir()
    for name, df in frames.items():
        if fmt == "csv":
            df.to_csv(folder / f"{name}.csv", index=False)
        else:
            df.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def run(tmp_path: Path, mutate: Callable[[Frames], object] | None = None, fmt: str = "csv") -> DataQualityReport:
    frames = load_frames()
    if mutate is not None:
        mutate(frames)
    return validate_sources(open_sources(write(frames, tmp_path / "data", fmt)))


def the_message(messages: tuple[str, ...], start: str) -> str:
    hits = [m for m in messages if m.startswith(start)]
    assert len(hits) == 1, f"expected one message starting {start!r}; got:\n" + "\n".join(messages)
    return hits[0]


def setv(table: str, row: int, column: str, value: str) -> Callable[[Frames], None]:
    def mutate(f: Frames) -> None:
        f[table].loc[row, column] = value

    return mutate


def append_copy(table: str, row: int) -> Callable[[Frames], None]:
    def mutate(f: Frames) -> None:
        f[table] = pd.concat([f[table], f[table].iloc[[row]]], ignore_index=True)

    return mutate


def setv_many(table: str, column: str, values: dict[int, str]) -> Callable[[Frames], None]:
    def mutate(f: Frames) -> None:
        for row, value in values.items():
            f[table].loc[row, column] = value

    return mutate


# ---------------------------------------------------------------------------------------------
# Clean data
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_valid_dataset_validates_clean(tmp_path: Path, fmt: str) -> None:
    report = run(tmp_path, fmt=fmt)
    assert report.errors == ()
    assert report.ok
    report.raise_if_errors()  # does not raise
    assert report.row_counts["patient"] == 3 and report.row_counts["enrollment"] == 3
    assert len(report.warnings) == 4
    assert report.warnings[0].startswith("ecmo_mcs: optional table not found")
    assert "d_dimer row has a reference_unit without FEU or DDU" in report.warnings[1]
    # H3 (hospital B) is written in +02:00, the rest in +00:00: converted exactly, noted with counts
    assert report.warnings[2] == (
        f"hospitalization.{fmt}: column admission_dttm has 2 different UTC offsets (+00:00 in 2 rows (first row 1), "
        "+02:00 in 1 row (first row 3)); each time is converted to UTC with its own offset. Fix: nothing if the "
        "offsets are daylight-saving changes of one time zone; otherwise check the export's time zone.")
    assert report.warnings[3].startswith(f"hospitalization.{fmt}: column discharge_dttm has 2 different UTC offsets")
    d = report.to_dict()
    assert d["errors"] == [] and d["tables"]["labs"] == 8


def test_valid_typed_parquet_and_duckdb_validate_clean(tmp_path: Path) -> None:
    src = open_sources(write(load_frames(), tmp_path / "csv", "csv"))
    (tmp_path / "pq").mkdir()
    src.con.execute(f"ATTACH '{tmp_path / 'study.duckdb'}' AS out")
    for t in src.files:
        sel = f"SELECT * EXCLUDE (value_harmonised, unit_harmonised) FROM {t}" if t == "labs" else f"SELECT * FROM {t}"
        src.con.execute(f"COPY ({sel}) TO '{tmp_path / 'pq' / (t + '.parquet')}' (FORMAT parquet)")
        src.con.execute(f"CREATE TABLE out.{t} AS {sel}")
    src.con.execute("DETACH out")
    for location in (tmp_path / "pq", tmp_path / "study.duckdb"):
        assert validate_sources(open_sources(location)).errors == ()


# ---------------------------------------------------------------------------------------------
# Broken inputs: one test per problem; {ext} is csv or parquet
# ---------------------------------------------------------------------------------------------

BROKEN = {
    "missing_table": (
        lambda f: f.pop("enrollment"),
        "enrollment: required table is missing",
        ["no enrollment.parquet or enrollment.csv in", "Fix: add the enrollment table with at least the columns patient_id, hospitalization_id, arm."],
    ),
    "missing_column": (
        lambda f: f["labs"].drop(columns="reference_unit", inplace=True),
        "labs.{ext}: required column reference_unit is missing",
        ["Columns found: hospitalization_id,", "Fix: add it to labs.{ext} (or rename"],
    ),
    "unparseable_timestamp": (
        setv("hospitalization", 1, "admission_dttm", "2020-13-45 08:00"),
        "hospitalization.{ext}: column admission_dttm has 1 unparseable timestamp",
        ['(row 2: "2020-13-45 08:00")', "Fix: write admission_dttm in ISO 8601"],
    ),
    "non_numeric_lab_value": (
        setv_many("labs", "lab_value_numeric", {1: "high", 3: ">5", 4: "n/a"}),
        "labs.{ext}: column lab_value_numeric has 3 non-numeric values",
        ['(row 2: "high", row 4: ">5", row 5: "n/a"). Fix: put the number in lab_value_numeric and text in lab_value.'],
    ),
    "bad_device_category": (
        setv("respiratory_support", 0, "device_category", "HFNC"),
        "respiratory_support.{ext}: column device_category has 1 value that is not permissible",
        ['"HFNC" in 1 row (first row 1)', "Allowed: CPAP, Face Mask, High Flow NC, IMV,", "Fix: replace each value"],
    ),
    "bad_location_category_case": (
        setv("adt", 1, "location_category", "ICU"),
        "adt.{ext}: column location_category has 1 value that is not permissible",
        ['"ICU" in 1 row (first row 2; did you mean "icu"?)', "case-sensitive", "Fix:"],
    ),
    "discharge_before_admission": (
        setv("hospitalization", 1, "discharge_dttm", "2020-06-01T10:00:00+00:00"),
        "hospitalization.{ext}: discharge_dttm is before admission_dttm in 1 row",
        ["row 2: H2 admission_dttm 2020-06-03 09:30 UTC, discharge_dttm 2020-06-01 10:00 UTC", "Fix: correct"],
    ),
    "duplicate_hospitalization_id": (
        append_copy("hospitalization", 1),
        "hospitalization.{ext}: hospitalization_id is not unique",
        ["1 value appears more than once (H2 in rows 2, 4)", "Fix: keep one row per hospitalization_id"],
    ),
    "orphan_hospitalization_in_labs": (
        setv("labs", 2, "hospitalization_id", "H9"),
        "labs.{ext}: column hospitalization_id has 1 id not found in hospitalization.{ext}.hospitalization_id",
        ["(H9 in 1 row, first row 3)", "Fix: add the hospitalization to hospitalization.{ext} or correct the id"],
    ),
    "orphan_patient_in_enrollment": (
        setv("enrollment", 2, "patient_id", "P9"),
        "enrollment.{ext}: column patient_id has 1 id not found in patient.{ext}.patient_id",
        ["(P9 in 1 row, first row 3)", "Fix: add the patient to patient.{ext}"],
    ),
    "unknown_lab_unit": (
        setv("labs", 0, "reference_unit", "bananas/L"),
        "labs.{ext}: lab_category d_dimer has 1 row whose reference_unit cannot be converted to µg/L FEU",
        ['"bananas/L" in 1 row, first row 1: not a unit pint recognises', "Fix: write the unit as ng/mL"],
    ),
    "crp_unit_with_feu": (
        setv("labs", 4, "reference_unit", "mg/L FEU"),
        "labs.{ext}: lab_category crp has 1 row whose reference_unit cannot be converted to mg/L",
        ['"mg/L FEU" in 1 row, first row 5: FEU applies to D-dimer only', "Fix: write the unit as mg/L or mg/dL"],
    ),
    "fio2_out_of_range": (
        setv("respiratory_support", 0, "fio2_set", "60"),
        "respiratory_support.{ext}: column fio2_set has 1 value outside 0.21–1.0",
        ["(row 1: 60 (device_category High Flow NC))", "Fix: write FiO2 as a fraction", "divide them by 100"],
    ),
    "arm_not_trial_or_pool": (
        setv("enrollment", 1, "arm", "control"),
        "enrollment.{ext}: column arm has 1 value that is not permissible",
        ['"control" in 1 row (first row 2)', "Allowed: pool, trial.", "Fix:"],
    ),
    "ae_grade_6": (
        setv("adverse_event", 0, "grade", "6"),
        "adverse_event.{ext}: column grade has 1 value outside 1–5",
        ["(row 1: 6 (term Pyrexia))", "Fix: use CTCAE grades 1 to 5"],
    ),
    "trial_patient_without_administration": (
        lambda f: f.update(administration=f["administration"].iloc[0:0]),
        "administration.{ext}: 1 trial patient has no administration rows",
        ["(P1 at enrollment.{ext} row 1)", "Fix: add the doses", "or set arm to pool"],
    ),
    "null_in_required_column": (
        setv("vitals", 2, "vital_value", ""),
        "vitals.{ext}: required column vital_value is empty in 1 row",
        ["(row 3)", "Fix: fill in vital_value"],
    ),
    "duplicate_enrollment_patient": (
        append_copy("enrollment", 1),
        "enrollment.{ext}: patient_id is not unique",
        ["(P2 in rows 2, 4)", "Fix: list each patient once"],
    ),
    "enrollment_hospitalization_of_other_patient": (
        setv("enrollment", 1, "hospitalization_id", "H3"),
        "enrollment.{ext}: column hospitalization_id names a hospitalization of another patient in 1 row",
        ["(row 2: patient P2, hospitalization H3 belongs to P3)", "Fix:"],
    ),
    "orphan_patient_in_hospitalization": (
        setv("hospitalization", 2, "patient_id", "P7"),
        "hospitalization.{ext}: column patient_id has 1 id not found in patient.{ext}.patient_id",
        ["(P7 in 1 row, first row 3)", "Fix:"],
    ),
    "unknown_patient_in_adverse_event": (
        setv("adverse_event", 1, "patient_id", "P5"),
        "adverse_event.{ext}: column patient_id has 1 id not found in enrollment.{ext}.patient_id",
        ["(P5 in 1 row, first row 2)", "Fix: add the patient to enrollment.{ext}"],
    ),
    "serious_not_boolean": (
        setv("adverse_event", 0, "serious", "maybe"),
        "adverse_event.{ext}: column serious has 1 value that is not true/false",
        ['(row 1: "maybe")', "Fix: write true or false"],
    ),
    "grade_not_whole": (
        setv("adverse_event", 1, "grade", "2.5"),
        "adverse_event.{ext}: column grade has 1 value that is not a whole number",
        ['(row 2: "2.5")', "Fix: write whole numbers"],
    ),
    "negative_lab_value": (
        setv("labs", 5, "lab_value_numeric", "-1200"),
        "labs.{ext}: column lab_value_numeric has 1 negative value",
        ["(row 6: -1200 (lab_category ferritin))", "Fix: lab results cannot be negative"],
    ),
    "adt_out_before_in": (
        setv("adt", 0, "out_dttm", "2020-06-01T07:00:00+00:00"),
        "adt.{ext}: out_dttm is before in_dttm in 1 row",
        ["(row 1: H1 in_dttm 2020-06-01 08:00 UTC, out_dttm 2020-06-01 07:00 UTC)", "Fix:"],
    ),
    "bad_sex_category": (
        setv("patient", 0, "sex_category", "M"),
        "patient.{ext}: column sex_category has 1 value that is not permissible",
        ['"M" in 1 row (first row 1)', "Allowed: Female, Male, Unknown.", "Fix:"],
    ),
    "bad_relatedness_case": (
        setv("adverse_event", 0, "relatedness", "Possible"),
        "adverse_event.{ext}: column relatedness has 1 value that is not permissible",
        ['did you mean "possible"?', "Fix:"],
    ),
    "unparseable_birth_date": (
        setv("patient", 2, "birth_date", "23/11/1970"),
        "patient.{ext}: column birth_date has 1 unparseable date",
        ['(row 3: "23/11/1970")', "Fix: write birth_date as YYYY-MM-DD"],
    ),
    "bad_lab_category": (
        setv("labs", 0, "lab_category", "D-dimer"),
        "labs.{ext}: column lab_category has 1 value that is not permissible",
        ['"D-dimer" in 1 row (first row 1; did you mean "d_dimer"?)', "crp, cystatin_c, d_dimer,", "Fix:"],
    ),
}


# Parquet written from text frames exercises the same casts as CSV; a subset keeps the suite fast.
PARQUET_TOO = {
    "missing_column", "unparseable_timestamp", "non_numeric_lab_value", "bad_device_category",
    "duplicate_hospitalization_id", "null_in_required_column", "serious_not_boolean", "grade_not_whole",
    "fio2_out_of_range", "unknown_lab_unit",
}
CASES = [(c, "csv") for c in BROKEN] + [(c, "parquet") for c in BROKEN if c in PARQUET_TOO]


@pytest.mark.parametrize(("case", "fmt"), CASES, ids=[f"{c}-{f}" for c, f in CASES])
def test_broken_input(tmp_path: Path, case: str, fmt: str) -> None:
    mutate, start, parts = BROKEN[case]
    report = run(tmp_path, mutate, fmt)
    msg = the_message(report.errors, start.format(ext=fmt))
    for part in parts:
        assert part.format(ext=fmt) in msg, f"{part!r} not in {msg!r}"
    assert "Fix:" in msg
    with pytest.raises(DataContractError) as exc:
        report.raise_if_errors()
    assert msg in exc.value.problems


# ---------------------------------------------------------------------------------------------
# Behaviour of the report
# ---------------------------------------------------------------------------------------------


def test_errors_are_collected_not_stopped_at_first(tmp_path: Path) -> None:
    def mutate(f: Frames) -> None:
        setv("patient", 0, "sex_category", "M")(f)
        setv("labs", 2, "hospitalization_id", "H9")(f)
        setv("adverse_event", 0, "grade", "6")(f)
        f["labs"].drop(columns="lab_collect_dttm", inplace=True)

    report = run(tmp_path, mutate)
    assert len(report.errors) == 4
    assert [e.split(":")[0] for e in report.errors] == ["patient.csv", "labs.csv", "labs.csv", "adverse_event.csv"]


def test_at_most_five_examples_then_and_n_more(tmp_path: Path) -> None:
    report = run(tmp_path, setv_many("labs", "lab_value_numeric", {i: f"x{i}" for i in range(8)}))
    msg = the_message(report.errors, "labs.csv: column lab_value_numeric has 8 non-numeric values")
    assert 'row 5: "x4", and 3 more)' in msg and "row 6" not in msg


def test_warning_records_outside_hospitalization(tmp_path: Path) -> None:
    report = run(tmp_path, setv("vitals", 0, "recorded_dttm", "2020-05-20T08:00:00+00:00"))
    assert report.errors == ()
    msg = the_message(report.warnings, "vitals.csv: 1 row lies more than 24 h outside its hospitalization")
    assert "row 1: H1 recorded_dttm 2020-05-20 08:00 UTC, stay 2020-06-01 08:00 UTC to 2020-06-20 12:00 UTC" in msg


def test_warning_pool_patient_with_administration(tmp_path: Path) -> None:
    def mutate(f: Frames) -> None:
        f["administration"] = pd.concat([f["administration"], f["administration"].iloc[[0]].assign(patient_id="P2")])

    report = run(tmp_path, mutate)
    assert report.errors == ()
    the_message(report.warnings, "administration.csv: 1 pool patient has administration rows (P2 (first row 3))")


def test_fio2_at_bounds_is_valid(tmp_path: Path) -> None:
    report = run(tmp_path, setv_many("respiratory_support", "fio2_set", {0: "1.0", 1: "0.21"}))
    assert report.errors == ()


def test_case_variants_of_accepted_values_are_not_errors(tmp_path: Path) -> None:
    """Booleans and NaN: `yes`/`No`, and an `NaN` in an optional float column, are fine."""
    def mutate(f: Frames) -> None:
        setv_many("adverse_event", "serious", {0: "No", 1: "yes"})(f)
        setv("respiratory_support", 2, "peep_set", "NaN")(f)

    assert run(tmp_path, mutate).errors == ()


def test_to_text_lists_errors_first(tmp_path: Path) -> None:
    text = run(tmp_path, setv("patient", 0, "sex_category", "M")).to_text()
    assert text.splitlines()[0] == "1 error(s), 4 warning(s)"
    assert text.splitlines()[1].startswith("ERROR   patient.csv: column sex_category")


def test_time_zone_mix_is_an_error_with_counts(tmp_path: Path) -> None:
    """Times with and without an offset in one column: the zone-less ones are probably local times."""
    report = run(tmp_path, setv_many("labs", "lab_collect_dttm", {0: "2020-06-01 10:00:00", 2: "2020-06-02T08:00"}))
    msg = the_message(report.errors, "labs.csv: column lab_collect_dttm mixes times with and without a UTC offset")
    assert "(2 rows without, first row 1; 6 rows with an offset: +00:00 in 6 rows)" in msg
    assert "Fix: write every lab_collect_dttm with its offset" in msg


def test_time_zone_spellings_of_utc_are_one_offset(tmp_path: Path) -> None:
    """Z, UTC, +0000 and +00:00 are the same offset: no warning, no error."""
    report = run(tmp_path, setv_many("labs", "lab_collect_dttm", {0: "2020-06-01T10:00:00Z", 1: "2020-06-01 10:00 UTC",
                                                                  2: "2020-06-02T08:00:00+0000"}))
    assert report.errors == ()
    assert not [w for w in report.warnings if "lab_collect_dttm" in w]


def test_all_times_without_offset_are_fine(tmp_path: Path) -> None:
    def mutate(f: Frames) -> None:
        f["labs"]["lab_collect_dttm"] = f["labs"]["lab_collect_dttm"].str.replace("+00:00", "", regex=False)

    report = run(tmp_path, mutate)
    assert report.errors == ()
    assert not [w for w in report.warnings if "lab_collect_dttm" in w]


def test_implausible_vital_and_huge_lab_value(tmp_path: Path) -> None:
    def mutate(f: Frames) -> None:
        setv("vitals", 1, "vital_value", "880")(f)       # spo2 880 %
        setv("labs", 1, "lab_value_numeric", "3e13")(f)  # crp

    report = run(tmp_path, mutate)
    the_message(report.errors, "vitals.csv: column vital_value has 1 implausible value (row 2: 880 (vital_category spo2))")
    the_message(report.errors, "labs.csv: column lab_value_numeric has 1 implausible value (row 2: 3e+13 (lab_category crp))")
