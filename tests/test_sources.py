"""Tests of the sources room: reading folders of CSV/Parquet and DuckDB files, canonical types,
lab unit harmonisation, and the reading errors ``open_sources`` raises."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from controlarm.errors import DataContractError, InputError
from controlarm.sources import TABLES, Sources, harmonised_unit, lab_unit_factor, open_sources

DATA = Path(__file__).parent / "data" / "clif_small"


# ---------------------------------------------------------------------------------------------
# Fixtures: the small valid dataset (3 patients: P1 trial, P2 and P3 pool) as CSV, Parquet, DuckDB
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def csv_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "csv"
    shutil.copytree(DATA, folder)
    return folder


def _export(csv_folder: Path, fmt: str, dest: Path) -> Path:
    """Write the canonical (typed) tables of ``csv_folder`` as Parquet files or a DuckDB file."""
    src = open_sources(csv_folder)
    try:
        if fmt == "duckdb":
            src.con.execute(f"ATTACH '{dest}' AS out")
        else:
            dest.mkdir()
        for t in src.files:
            select = f"SELECT * EXCLUDE (value_harmonised, unit_harmonised) FROM {t}" if t == "labs" else f"SELECT * FROM {t}"
            if fmt == "duckdb":
                src.con.execute(f"CREATE TABLE out.{t} AS {select}")
            else:
                src.con.execute(f"COPY ({select}) TO '{dest / (t + '.parquet')}' (FORMAT parquet)")
        if fmt == "duckdb":
            src.con.execute("DETACH out")
    finally:
        src.close()
    return dest


@pytest.fixture
def parquet_dir(csv_dir: Path, tmp_path: Path) -> Path:
    return _export(csv_dir, "parquet", tmp_path / "parquet")


@pytest.fixture
def duckdb_file(csv_dir: Path, tmp_path: Path) -> Path:
    return _export(csv_dir, "duckdb", tmp_path / "study.duckdb")


def _table(src: Sources, t: str) -> pd.DataFrame:
    return src.df(f"SELECT * FROM {t}").sort_index(axis=1)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def test_csv_folder_loads_with_canonical_names_and_types(csv_dir: Path) -> None:
    src = open_sources(csv_dir)
    assert isinstance(src, Sources)
    assert src.tables == tuple(TABLES)
    assert src.kind == "folder" and src.location == csv_dir.resolve()
    assert src.row_counts["patient"] == 3 and src.row_counts["labs"] == 8 and src.row_counts["ecmo_mcs"] == 0
    assert src.files["labs"] == csv_dir.resolve() / "labs.csv"
    assert "ecmo_mcs" not in src.files and src.absent == ("ecmo_mcs",)
    assert any(w.startswith("ecmo_mcs: optional table not found") for w in src.warnings)
    duck_type = {"str": "VARCHAR", "float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN", "date": "DATE",
                 "timestamp": "TIMESTAMP WITH TIME ZONE"}
    for name, schema in TABLES.items():
        types = dict(src.con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {name})").fetchall())
        for c in schema.columns:
            assert types[c.name] == duck_type[c.dtype], (name, c.name)
    labs_types = dict(src.con.execute("SELECT column_name, column_type FROM (DESCRIBE labs)").fetchall())
    assert labs_types["value_harmonised"] == "DOUBLE" and labs_types["unit_harmonised"] == "VARCHAR"
    src.close()


def test_absent_optional_table_is_empty_with_columns(csv_dir: Path) -> None:
    src = open_sources(csv_dir)
    df = src.df("SELECT * FROM ecmo_mcs")
    assert len(df) == 0
    assert list(df.columns) == list(TABLES["ecmo_mcs"].column_names)


def test_times_are_utc_naive_read_as_utc_offsets_converted(csv_dir: Path) -> None:
    src = open_sources(csv_dir)
    h = src.df("SELECT hospitalization_id, admission_dttm FROM hospitalization ORDER BY 1").set_index("hospitalization_id")
    assert str(h["admission_dttm"].dt.tz) == "UTC"
    assert h.loc["H1", "admission_dttm"] == pd.Timestamp("2020-06-01 08:00", tz="UTC")
    assert h.loc["H2", "admission_dttm"] == pd.Timestamp("2020-06-03 09:30", tz="UTC")  # naive -> UTC
    assert h.loc["H3", "admission_dttm"] == pd.Timestamp("2020-06-05 12:00", tz="UTC")  # +02:00 -> UTC
    assert src.con.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"


def test_ids_stay_text_with_leading_zeros(csv_dir: Path) -> None:
    for name in ("patient", "hospitalization", "enrollment", "administration", "adverse_event"):
        f = csv_dir / f"{name}.csv"
        f.write_text(f.read_text().replace("P1,", "007,"))
    src = open_sources(csv_dir)
    assert "007" in set(src.df("SELECT patient_id FROM patient")["patient_id"])


def test_parquet_folder_gives_the_same_tables(csv_dir: Path, parquet_dir: Path) -> None:
    a, b = open_sources(csv_dir), open_sources(parquet_dir)
    assert b.files["labs"].suffix == ".parquet"
    for t in TABLES:
        pd.testing.assert_frame_equal(_table(a, t), _table(b, t), check_dtype=False)


def test_duckdb_file_gives_the_same_tables_read_only(csv_dir: Path, duckdb_file: Path) -> None:
    a, b = open_sources(csv_dir), open_sources(duckdb_file)
    assert b.kind == "duckdb" and b.files["patient"] == duckdb_file.resolve()
    for t in TABLES:
        pd.testing.assert_frame_equal(_table(a, t), _table(b, t), check_dtype=False)
    with pytest.raises(duckdb.Error):
        b.con.execute("INSERT INTO src.main.patient (patient_id) VALUES ('X')")
    assert open_sources(f"duckdb:///{duckdb_file}").row_counts == b.row_counts


def test_relative_source_resolved_against_base_dir(csv_dir: Path) -> None:
    src = open_sources("csv", base_dir=csv_dir.parent)
    assert src.location == csv_dir.resolve()


def test_naive_parquet_timestamps_read_as_utc(csv_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "naive"
    shutil.copytree(csv_dir, folder)
    (folder / "hospitalization.csv").unlink()
    pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P3"],
            "hospitalization_id": ["H1", "H2", "H3"],
            "admission_dttm": pd.to_datetime(["2020-06-01 08:00", "2020-06-03 09:30", "2020-06-05 12:00"]),
            "discharge_dttm": pd.to_datetime(["2020-06-20 12:00", "2020-07-01 10:00", "2020-06-25 07:00"]),
            "age_at_admission": [60.0, 64.0, 49.0],
        }
    ).to_parquet(folder / "hospitalization.parquet")
    src = open_sources(folder)
    h = src.df("SELECT * FROM hospitalization ORDER BY hospitalization_id")
    assert h["admission_dttm"].iloc[0] == pd.Timestamp("2020-06-01 08:00", tz="UTC")
    assert h["age_at_admission"].tolist() == [60, 64, 49]


def test_column_names_match_case_insensitively_and_extras_pass_through(csv_dir: Path) -> None:
    f = csv_dir / "vitals.csv"
    lines = f.read_text().splitlines()
    lines[0] = " Hospitalization_ID,RECORDED_DTTM,vital_category,vital_value"
    f.write_text("\n".join([lines[0] + ",site_note"] + [ln + ",x" for ln in lines[1:]]) + "\n")
    src = open_sources(csv_dir)
    cols = list(src.df("SELECT * FROM vitals").columns)
    assert cols[:2] == ["hospitalization_id", "recorded_dttm"] and cols[-1] == "site_note"


def test_unknown_file_is_a_warning_with_a_suggestion(csv_dir: Path) -> None:
    (csv_dir / "lab.csv").write_text("a\n1\n")
    src = open_sources(csv_dir)
    assert any("lab.csv" in w and "did you mean labs.csv" in w for w in src.warnings)


def test_df_helper_binds_parameters(csv_dir: Path) -> None:
    src = open_sources(csv_dir)
    df = src.df("SELECT patient_id FROM enrollment WHERE arm = ?", ["trial"])
    assert df["patient_id"].tolist() == ["P1"]


# ---------------------------------------------------------------------------------------------
# Unit harmonisation
# ---------------------------------------------------------------------------------------------


def test_d_dimer_and_crp_harmonised_exactly(csv_dir: Path, parquet_dir: Path) -> None:
    for folder in (csv_dir, parquet_dir):
        src = open_sources(folder)
        labs = src.df(
            "SELECT hospitalization_id AS h, lab_category AS c, value_harmonised AS v, unit_harmonised AS u, "
            "reference_unit FROM labs"
        ).set_index(["h", "c"])
        assert labs.loc[("H1", "d_dimer"), "v"] == 821.0  # ng/mL: exactly, no 1.0000000000000002
        assert labs.loc[("H2", "d_dimer"), "v"] == pytest.approx(3553.0, rel=1e-9)  # mg/L FEU x 1000
        assert labs.loc[("H3", "d_dimer"), "v"] == 900.0  # µg/L DDU x 2
        assert set(labs.xs("d_dimer", level="c")["u"]) == {"µg/L FEU"}
        assert labs.loc[("H1", "crp"), "v"] == 125.0 and labs.loc[("H1", "crp"), "u"] == "mg/L"  # mg/dL x 10
        assert labs.loc[("H2", "crp"), "v"] == 80.0
        # others pass through unchanged, with their own unit
        assert labs.loc[("H2", "ferritin"), "v"] == 1200.0 and labs.loc[("H2", "ferritin"), "u"] == "ng/mL"
        assert labs.loc[("H1", "lymphocytes_absolute"), "u"] == "10^3/µL"


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        ("ug/L", 1.0), ("µg/L", 1.0), ("μg/L", 1.0), ("ng/mL", 1.0), ("ng/ml", 1.0), ("mcg/L", 1.0),
        ("mg/L", 1000.0), ("mg/L FEU", 1000.0), ("MG/L FEU", 1000.0), ("ug/mL FEU", 1000.0),
        ("µg/mL", 1000.0), ("ng/mL DDU", 2.0), ("ng/mL (DDU)", 2.0), ("µg/L DDU", 2.0),
        ("mg/L DDU", 2000.0), ("ug/L FEU", 1.0),
    ],
)
def test_d_dimer_unit_factors(unit: str, factor: float) -> None:
    f = lab_unit_factor("d_dimer", unit)
    assert f.factor == factor and f.unit == "µg/L FEU" and f.problem is None


def test_harmonised_unit_labels() -> None:
    assert harmonised_unit("d_dimer") == "µg/L FEU"
    assert harmonised_unit("crp") == "mg/L"
    assert harmonised_unit("ferritin") is None


def test_crp_unit_factors_and_bad_units() -> None:
    assert lab_unit_factor("crp", "mg/dL").factor == 10.0
    assert lab_unit_factor("crp", "mg/L").factor == 1.0
    assert lab_unit_factor("crp", "mg/L FEU").factor is None  # FEU is a D-dimer notion
    assert lab_unit_factor("d_dimer", "xyzzy/L").problem == "not a unit pint recognises"
    assert "mass concentration" in lab_unit_factor("d_dimer", "nmol/L").problem
    assert lab_unit_factor("d_dimer", "ng/mL").assumed_feu and not lab_unit_factor("d_dimer", "ng/mL FEU").assumed_feu


def test_identity_factor_keeps_every_float(tmp_path: Path, csv_dir: Path) -> None:
    """ng/mL -> µg/L must not perturb any value (factor exactly 1.0), over many awkward floats."""
    values = [821.0, 0.1, 0.3, 1 / 3, 3.553, 1e-7, 123456.789, 2.675, 0.2 + 0.1]
    rows = "".join(f"H1,2020-06-01T10:00:00+00:00,d_dimer,{v!r},ng/mL\n" for v in values)
    (csv_dir / "labs.csv").write_text(
        "hospitalization_id,lab_collect_dttm,lab_category,lab_value_numeric,reference_unit\n" + rows
    )
    got = open_sources(csv_dir).df("SELECT value_harmonised FROM labs")["value_harmonised"].tolist()
    assert got == values
    assert all(math.copysign(1, g) == 1 for g in got)


# ---------------------------------------------------------------------------------------------
# Reading errors (broken inputs that raise from open_sources)
# ---------------------------------------------------------------------------------------------


def test_broken_folder_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        open_sources("nowhere", base_dir=tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "nowhere") in msg and "does not exist" in msg and "Fix:" in msg


def test_broken_both_csv_and_parquet_present(csv_dir: Path) -> None:
    pd.DataFrame({"patient_id": ["P1"]}).to_parquet(csv_dir / "patient.parquet")
    with pytest.raises(DataContractError) as exc:
        open_sources(csv_dir)
    msg = str(exc.value)
    assert "patient.csv" in msg and "patient.parquet" in msg and "Fix: keep one" in msg


def test_broken_corrupt_parquet(csv_dir: Path) -> None:
    (csv_dir / "labs.csv").unlink()
    (csv_dir / "labs.parquet").write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DataContractError) as exc:
        open_sources(csv_dir)
    (problem,) = exc.value.problems
    assert problem.startswith("labs.parquet: cannot be read as Parquet") and "Fix:" in problem


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("patient_id,,birth_date", "column 2 of the header has no name"),
        ("patient_id,sex_category,Patient_ID", "column name 'Patient_ID' appears twice"),
        ("patient_id;sex_category;birth_date", "looks semicolon-separated"),
    ],
)
def test_broken_csv_bad_header(csv_dir: Path, header: str, expected: str) -> None:
    (csv_dir / "patient.csv").write_text(header + "\nP1,Male,1960-03-14\n")
    with pytest.raises(DataContractError) as exc:
        open_sources(csv_dir)
    msg = str(exc.value)
    assert msg.startswith("patient.csv:") and expected in msg and "Fix:" in msg


def test_broken_csv_empty_file(csv_dir: Path) -> None:
    (csv_dir / "adt.csv").write_text("")
    with pytest.raises(DataContractError, match=r"adt\.csv: is empty \(no header line\)\. Fix:"):
        open_sources(csv_dir)


def test_broken_csv_ragged_row(csv_dir: Path) -> None:
    f = csv_dir / "vitals.csv"
    f.write_text(f.read_text() + "H1,2020-06-01T10:00:00+00:00,spo2,90,extra\n")
    with pytest.raises(DataContractError) as exc:
        open_sources(csv_dir)
    msg = str(exc.value)
    assert msg.startswith("vitals.csv: cannot be read as CSV") and "Line: 7" in msg and "Fix:" in msg


def test_broken_csv_not_utf8(csv_dir: Path) -> None:
    (csv_dir / "patient.csv").write_bytes("patient_id,sex_category,birth_date\nP\xe9,Male,1960-03-14\n".encode("latin-1"))
    with pytest.raises(DataContractError, match=r"patient\.csv: is not UTF-8 encoded\. Fix:"):
        open_sources(csv_dir)


def test_broken_reading_problems_are_collected(csv_dir: Path) -> None:
    (csv_dir / "adt.csv").write_text("")
    (csv_dir / "labs.parquet").write_bytes(b"junk")
    with pytest.raises(DataContractError) as exc:
        open_sources(csv_dir)
    assert len(exc.value.problems) == 2


def test_broken_duckdb_file_missing_or_corrupt(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        open_sources(tmp_path / "study.duckdb")
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(DataContractError, match=r"bad\.duckdb: cannot be opened as a DuckDB database"):
        open_sources(bad)


def test_broken_source_kinds(tmp_path: Path) -> None:
    f = tmp_path / "data.xlsx"
    f.write_bytes(b"x")
    with pytest.raises(InputError, match="not a DuckDB database"):
        open_sources(f)
    with pytest.raises(InputError, match="mysql:// engine is not supported"):
        open_sources("mysql://host/db")
    # a PostgreSQL URL is an engine: a server that is not there is named, without the password
    with pytest.raises(InputError, match=r"cannot connect to PostgreSQL at postgresql://u:\*\*\*@127\.0\.0\.1:1/db"):
        open_sources("postgresql://u:secret@127.0.0.1:1/db")


def test_float_ids_from_pandas_become_integer_text(csv_dir: Path) -> None:
    (csv_dir / "patient.csv").unlink()
    pd.DataFrame(
        {"patient_id": [1.0, 2.0, float("nan")], "sex_category": ["Male", "Female", "Male"],
         "birth_date": ["1960-03-14", "1955-07-02", "1970-11-23"]}
    ).to_parquet(csv_dir / "patient.parquet")
    ids = open_sources(csv_dir).df("SELECT patient_id FROM patient")["patient_id"].tolist()
    assert ids == ["1", "2", None]


def test_duckdb_settings_come_from_the_environment(monkeypatch) -> None:
    folder = Path(__file__).parent / "data" / "clif_small"
    monkeypatch.setenv("CONTROLARM_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("CONTROLARM_THREADS", "1")
    s = open_sources(folder)
    try:
        limit, threads = s.con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchall()[0]
    finally:
        s.close()
    assert limit in ("953.6 MiB", "1.0 GiB", "1000.0 MB") and int(threads) == 1
    monkeypatch.setenv("CONTROLARM_MEMORY_LIMIT", "lots")
    with pytest.raises(InputError, match="CONTROLARM_MEMORY_LIMIT like 3GB"):
        open_sources(folder)
