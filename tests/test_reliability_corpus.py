"""The bad-input corpus (issue 9), counted: every broken data file and study file in one table.

Each case starts from the tiny hand-built study of ``tests/_clif.py`` written as CSV (it validates
and runs clean), breaks one thing, and runs the command line in-process (``controlarm validate``,
or ``controlarm run`` for design problems that only matching can see). A case is *clean* when:

* the exit code is 2;
* there is no traceback;
* stderr holds one message (one ``Fix:``), and it contains the case's expected parts: the file or
  key, the column, the rows or ids, and the fix;
* no input file changed (SHA-256 of every file under the study's folder before and after).

``test_corpus_summary`` prints ``bad-input corpus: N cases, N clean`` (the issue's "Must show") and,
when ``CONTROLARM_CORPUS_REPORT`` names a file, writes the per-case outcome there as JSON.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from controlarm.cli import main

from . import _clif

MIN_CASES = 50


# ---------------------------------------------------------------------------------------------
# Mutations of a study folder (study.toml + data/*.csv)
# ---------------------------------------------------------------------------------------------
Mutate = Callable[[Path], None]


def _frame(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / "data" / f"{table}.csv", dtype=str, keep_default_na=False)


def _save(folder: Path, table: str, df: pd.DataFrame) -> None:
    df.to_csv(folder / "data" / f"{table}.csv", index=False)


def setv(table: str, row: int, column: str, value: str) -> Mutate:
    def mutate(folder: Path) -> None:
        df = _frame(folder, table)
        df.loc[row, column] = value
        _save(folder, table, df)
    return mutate


def setmany(table: str, column: str, values: dict[int, str]) -> Mutate:
    def mutate(folder: Path) -> None:
        df = _frame(folder, table)
        for row, value in values.items():
            df.loc[row, column] = value
        _save(folder, table, df)
    return mutate


def drop_column(table: str, column: str) -> Mutate:
    def mutate(folder: Path) -> None:
        _save(folder, table, _frame(folder, table).drop(columns=column))
    return mutate


def rename_column(table: str, old: str, new: str) -> Mutate:
    def mutate(folder: Path) -> None:
        _save(folder, table, _frame(folder, table).rename(columns={old: new}))
    return mutate


def append(table: str, row: dict) -> Mutate:
    def mutate(folder: Path) -> None:
        df = _frame(folder, table)
        _save(folder, table, pd.concat([df, pd.DataFrame([row])], ignore_index=True).fillna(""))
    return mutate


def copy_row(table: str, row: int, **changes: str) -> Mutate:
    def mutate(folder: Path) -> None:
        df = _frame(folder, table)
        extra = df.iloc[[row]].assign(**changes)
        _save(folder, table, pd.concat([df, extra], ignore_index=True))
    return mutate


def delete_file(name: str) -> Mutate:
    def mutate(folder: Path) -> None:
        (folder / "data" / name).unlink()
    return mutate


def write_bytes(name: str, data: bytes) -> Mutate:
    def mutate(folder: Path) -> None:
        (folder / "data" / name).write_bytes(data)
    return mutate


def recode(table: str, encoding: str, replace: tuple[str, str] | None = None) -> Mutate:
    def mutate(folder: Path) -> None:
        path = folder / "data" / f"{table}.csv"
        text = path.read_text(encoding="utf-8")
        if replace:
            text = text.replace(*replace)
        path.write_bytes(text.encode(encoding))
    return mutate


def redelimit(table: str, sep: str) -> Mutate:
    def mutate(folder: Path) -> None:
        _frame(folder, table).to_csv(folder / "data" / f"{table}.csv", index=False, sep=sep)
    return mutate


def text_edit(table: str, old: str, new: str) -> Mutate:
    def mutate(folder: Path) -> None:
        path = folder / "data" / f"{table}.csv"
        text = path.read_text(encoding="utf-8")
        assert old in text, old
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return mutate


def to_parquet(table: str, df_change: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> Mutate:
    def mutate(folder: Path) -> None:
        df = _frame(folder, table)
        if df_change is not None:
            df = df_change(df)
        (folder / "data" / f"{table}.csv").unlink()
        df.to_parquet(folder / "data" / f"{table}.parquet", index=False)
    return mutate


def spec(old: str, new: str) -> Mutate:
    def mutate(folder: Path) -> None:
        path = folder / "study.toml"
        text = path.read_text(encoding="utf-8")
        assert old in text, old
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return mutate


def spec_bytes(data: bytes) -> Mutate:
    def mutate(folder: Path) -> None:
        (folder / "study.toml").write_bytes(data)
    return mutate


def both(*mutations: Mutate) -> Mutate:
    def mutate(folder: Path) -> None:
        for m in mutations:
            m(folder)
    return mutate


@dataclass(frozen=True)
class Case:
    mutate: Mutate
    parts: tuple[str, ...]       # every one must appear in the message
    command: str = "validate"    # or "run" (design problems seen only by matching)
    kind: str = "data"           # "data" or "study" (for the count)


def D(mutate: Mutate, *parts: str, command: str = "validate") -> Case:
    return Case(mutate, parts, command, "data")


def S(mutate: Mutate, *parts: str, command: str = "validate") -> Case:
    return Case(mutate, parts, command, "study")


TS = "2020-06-01 00:00:00+00:00"

CASES: dict[str, Case] = {
    # ---- tables and columns
    "missing_table_enrollment": D(delete_file("enrollment.csv"), "enrollment: required table is missing",
                                  "Fix: add the enrollment table"),
    "missing_table_patient": D(delete_file("patient.csv"), "patient: required table is missing", "Fix:"),
    "missing_column_reference_unit": D(drop_column("labs", "reference_unit"),
                                       "labs.csv: required column reference_unit is missing", "Fix:"),
    "missing_column_admission_dttm": D(drop_column("hospitalization", "admission_dttm"),
                                       "hospitalization.csv: required column admission_dttm is missing", "Fix:"),
    "misspelt_column": D(rename_column("vitals", "vital_value", "vital_valeu"),
                         "vitals.csv: required column vital_value is missing", "vital_valeu", "Fix:"),
    "header_column_without_name": D(rename_column("vitals", "vital_value", " "), "vitals.csv",
                                    "has no name", "Fix:"),
    "duplicate_column_names": D(rename_column("labs", "lab_name", "LAB_CATEGORY"), "labs.csv",
                                "appears twice", "Fix: keep one column per name"),
    "csv_and_parquet_for_one_table": D(lambda f: _frame(f, "vitals").to_parquet(f / "data" / "vitals.parquet"),
                                       "vitals: both vitals.csv and vitals.parquet", "Fix: keep one"),
    # ---- types
    "unparseable_timestamp": D(setv("hospitalization", 1, "admission_dttm", "2020-13-45 08:00"),
                               "hospitalization.csv: column admission_dttm has 1 unparseable timestamp",
                               'row 2: "2020-13-45 08:00"', "Fix: write admission_dttm in ISO 8601"),
    "non_numeric_lab_value": D(setmany("labs", "lab_value_numeric", {1: "high", 3: ">5"}),
                               "labs.csv: column lab_value_numeric has 2 non-numeric values",
                               'row 2: "high"', "Fix:"),
    "decimal_comma": D(setv("vitals", 0, "vital_value", "90,5"),
                       "vitals.csv: column vital_value has 1 non-numeric value", 'row 1: "90,5"', "Fix:"),
    "grade_not_whole": D(setv("adverse_event", 0, "grade", "2.5"),
                         "adverse_event.csv: column grade has 1 value that is not a whole number", "row 1", "Fix:"),
    "serious_not_boolean": D(setv("adverse_event", 0, "serious", "maybe"),
                             "adverse_event.csv: column serious has 1 value that is not true/false", "Fix:"),
    "unparseable_birth_date": D(setv("patient", 2, "birth_date", "23/11/1970"),
                                "patient.csv: column birth_date has 1 unparseable date", 'row 3: "23/11/1970"', "Fix:"),
    "dose_as_text": D(setv("administration", 0, "dose", "two million"),
                      "administration.csv: column dose has 1 non-numeric value", "row 1", "Fix:"),
    "infinite_value": D(setv("vitals", 0, "vital_value", "inf"),
                        "vitals.csv: column vital_value has 1 non-numeric value", 'row 1: "inf"', "Fix:"),
    "huge_value_overflows": D(setv("labs", 0, "lab_value_numeric", "1e400"),
                              "labs.csv: column lab_value_numeric has 1 non-numeric value", 'row 1: "1e400"', "Fix:"),
    "huge_vital_value": D(setv("vitals", 0, "vital_value", "90000000"),
                          "vitals.csv: column vital_value has 1 implausible value", "row 1", "weight_kg", "Fix:"),
    "huge_lab_value": D(setv("labs", 0, "lab_value_numeric", "5e15"),
                        "labs.csv: column lab_value_numeric has 1 implausible value", "row 1", "crp", "Fix:"),
    "nan_in_required_column": D(setv("vitals", 2, "vital_value", "NaN"),
                                "vitals.csv: required column vital_value is empty in 1 row", "(row 3)", "NaN", "Fix:"),
    "nan_timestamp": D(setv("hospitalization", 0, "admission_dttm", "NaN"),
                       "hospitalization.csv: column admission_dttm has 1 unparseable timestamp", "Fix:"),
    "empty_required_id": D(setv("labs", 3, "hospitalization_id", ""),
                           "labs.csv: required column hospitalization_id is empty in 1 row", "(row 4)", "Fix:"),
    # ---- categories
    "unknown_device_category": D(setv("respiratory_support", 0, "device_category", "HFNC"),
                                 "respiratory_support.csv: column device_category", '"HFNC" in 1 row', "Fix:"),
    "location_category_wrong_case": D(setv("adt", 1, "location_category", "ICU"),
                                      "adt.csv: column location_category", 'did you mean "icu"?', "Fix:"),
    "unknown_sex": D(setv("patient", 0, "sex_category", "M"), "patient.csv: column sex_category", '"M"', "Fix:"),
    "unknown_arm": D(setv("enrollment", 1, "arm", "control"), "enrollment.csv: column arm", '"control"', "Fix:"),
    "unknown_lab_category": D(setv("labs", 0, "lab_category", "D-dimer"), "labs.csv: column lab_category",
                              '"D-dimer"', "Fix:"),
    "unknown_vital_category": D(setv("vitals", 2, "vital_category", "resp_rate"), "vitals.csv: column vital_category",
                                '"resp_rate"', "Fix:"),
    "unknown_relatedness": D(setv("adverse_event", 0, "relatedness", "Possible"),
                             "adverse_event.csv: column relatedness", 'did you mean "possible"?', "Fix:"),
    # ---- time order and semantics
    "death_before_admission": D(setv("patient", 1, "death_dttm", "2020-06-20 00:00:00+00:00"),
                                "patient.csv: death_dttm is before the admission", "row 2: C1", "HC1", "Fix:"),
    "infusion_after_death": D(setv("patient", 0, "death_dttm", "2020-06-03 00:00:00+00:00"),
                              "administration.csv: admin_dttm is after the patient's death", "T1", "Fix:"),
    "overlapping_icu_stays": D(append("adt", {"hospitalization_id": "HT1", "location_category": "icu",
                                              "in_dttm": "2020-06-05 00:00:00+00:00",
                                              "out_dttm": "2020-06-11 00:00:00+00:00", "location_name": "SICU"}),
                               "adt.csv: 1 pair of ICU stays of the same hospitalization overlap", "HT1", "Fix:"),
    "discharge_before_admission": D(setv("hospitalization", 1, "discharge_dttm", "2020-06-30 00:00:00+00:00"),
                                    "hospitalization.csv: discharge_dttm is before admission_dttm in 1 row",
                                    "row 2: HC1", "Fix:"),
    "adt_out_before_in": D(setv("adt", 1, "out_dttm", "2020-05-31 00:00:00+00:00"),
                           "adt.csv: out_dttm is before in_dttm in 1 row", "row 2: HT1", "Fix:"),
    "duplicate_patient_id": D(copy_row("patient", 1), "patient.csv: patient_id is not unique", "C1 in rows 2, 7",
                              "Fix:"),
    "duplicate_hospitalization_id": D(copy_row("hospitalization", 1),
                                      "hospitalization.csv: hospitalization_id is not unique", "HC1", "Fix:"),
    "treated_patient_also_in_pool": D(append("enrollment", {"patient_id": "T1", "hospitalization_id": "HT1",
                                                            "arm": "pool", "inclusion_dttm": ""}),
                                      "enrollment.csv: patient_id is not unique", "T1 in rows 1, 7",
                                      "Fix: list each patient once"),
    "enrollment_hospitalization_of_other_patient": D(setv("enrollment", 1, "hospitalization_id", "HC2"),
                                                     "enrollment.csv: column hospitalization_id names a "
                                                     "hospitalization of another patient", "HC2", "Fix:"),
    "orphan_hospitalization_in_labs": D(setv("labs", 2, "hospitalization_id", "H9"),
                                        "labs.csv: column hospitalization_id has 1 id not found", "H9", "Fix:"),
    "orphan_patient_in_enrollment": D(setv("enrollment", 2, "patient_id", "P9"),
                                      "enrollment.csv: column patient_id has 1 id not found", "P9", "Fix:"),
    "orphan_patient_in_adverse_event": D(setv("adverse_event", 0, "patient_id", "X1"),
                                         "adverse_event.csv: column patient_id has 1 id not found", "X1", "Fix:"),
    "trial_patient_without_administration": D(text_edit("enrollment", "C1,HC1,pool", "C1,HC1,trial"),
                                              "administration.csv: 1 trial patient has no administration rows",
                                              "C1", "Fix:"),
    # ---- units and ranges
    "unconvertible_lab_unit": D(setv("labs", 5, "reference_unit", "bananas/L"),
                                "labs.csv: lab_category d_dimer has 1 row whose reference_unit cannot be converted",
                                '"bananas/L"', "Fix:"),
    "crp_unit_with_feu": D(setv("labs", 0, "reference_unit", "mg/L FEU"),
                           "labs.csv: lab_category crp has 1 row whose reference_unit cannot be converted", "Fix:"),
    "crp_dimension_mismatch": D(setv("labs", 0, "reference_unit", "mmol/L"),
                                "labs.csv: lab_category crp has 1 row whose reference_unit cannot be converted",
                                '"mmol/L"', "Fix:"),
    "fio2_as_percentage": D(setv("respiratory_support", 0, "fio2_set", "60"),
                            "respiratory_support.csv: column fio2_set has 1 value outside 0.21–1.0", "row 1",
                            "Fix: write FiO2 as a fraction"),
    "negative_lab_value": D(setv("labs", 1, "lab_value_numeric", "-8"),
                            "labs.csv: column lab_value_numeric has 1 negative value", "row 2", "Fix:"),
    "negative_dose": D(setv("administration", 1, "dose", "-2"),
                       "administration.csv: column dose has 1 negative value", "row 2", "Fix:"),
    "ae_grade_6": D(setv("adverse_event", 0, "grade", "6"), "adverse_event.csv: column grade has 1 value outside 1–5",
                    "Fix:"),
    # ---- files: empty, encoding, delimiter, corrupt
    "empty_file": D(write_bytes("patient.csv", b""), "patient.csv: is empty (no header line)", "Fix:"),
    "latin1_encoding_header": D(recode("vitals", "latin-1", ("vital_value", "vital_valué")), "vitals.csv",
                                "UTF-8", "Fix:"),
    "latin1_encoding_body": D(recode("labs", "latin-1", ("D_DIMER", "D_DIMÈRE")), "labs.csv", "UTF-8", "Fix:"),
    "utf16_encoding": D(recode("adt", "utf-16"), "adt.csv", "UTF-8", "Fix:"),
    "semicolon_delimiter": D(redelimit("hospitalization", ";"), "hospitalization.csv",
                             "semicolon-separated", "Fix: save the file as comma-separated CSV"),
    "tab_delimiter": D(redelimit("patient", "\t"), "patient.csv", "tab-separated", "Fix:"),
    "ragged_row": D(text_edit("vitals", "weight_kg,90.0", "weight_kg,90.0,extra"), "vitals.csv",
                    "cannot be read as CSV", "Fix:"),
    "unterminated_quote": D(text_edit("labs", ",CRP", ',"CRP'), "labs.csv", "cannot be read as CSV", "Fix:"),
    "corrupt_parquet": D(both(delete_file("vitals.csv"), write_bytes("vitals.parquet", b"PAR1 not really PAR1")),
                         "vitals.parquet: cannot be read as Parquet", "Fix:"),
    "parquet_nested_column": D(to_parquet("vitals", lambda df: df.assign(vital_value=[{"v": 1.0}] * len(df))),
                               "vitals.parquet: column vital_value is stored as STRUCT", "Fix:"),
    "timezone_mix_naive_and_offset": D(setmany("labs", "lab_collect_dttm", {0: "2020-05-31 12:00:00",
                                                                            1: "2020-06-01 20:00:00"}),
                                       "labs.csv: column lab_collect_dttm mixes times with and without a UTC offset",
                                       "2 rows without", "row 1", "Fix:"),
    # ---- the study file
    "study_file_missing": S(lambda f: (f / "study.toml").unlink(), "study.toml: study file not found", "Fix:"),
    "study_file_empty": S(spec_bytes(b""), "study.toml: the study file is empty", "Fix:"),
    "study_file_not_toml": S(spec("[matching]", "[matching\n"), "not valid TOML", "Fix:"),
    "study_file_not_utf8": S(spec_bytes('[study]\nname = "caf\u00e9"\n'.encode("latin-1")), "study.toml",
                             "UTF-8", "Fix:"),
    "duplicate_key": S(spec("ratio = 1", "ratio = 1\nratio = 2"), "not valid TOML", "Fix:"),
    "unknown_key": S(spec("ratio = 1", "ratio = 1\nratoi = 2"), "unknown key `matching.ratoi`", "Fix:"),
    "missing_required_key": S(spec('product = "MSC"\n', ""), "`index.product`", "Fix:"),
    "wrong_type_ratio": S(spec("ratio = 1", 'ratio = "three"'), "`matching.ratio`", "three", "Fix:"),
    "ratio_zero": S(spec("ratio = 1", "ratio = 0"), "`matching.ratio`", "Fix:"),
    "conflicting_min_max_controls": S(spec("ratio = 1", "ratio = 1\nmin_controls = 3\nmax_controls = 2"),
                                      "max_controls", "min_controls", "Fix:"),
    "age_min_above_age_max": S(spec("age_min = 18", "age_min = 80"), "age_min", "age_max", "Fix:"),
    "calendar_end_before_start": S(spec("calendar_end = 2021-12-31", "calendar_end = 2019-12-31"),
                                   "calendar_end", "Fix:"),
    "unknown_device_in_index_rule": S(spec('devices = ["High Flow NC", "IMV"]', 'devices = ["HFNC"]'),
                                      "HFNC", "Fix:"),
    "matching_covariate_not_defined": S(spec('covariates = ["crp"]', 'covariates = ["lactate"]'),
                                        "lactate", "Fix:"),
    "data_source_missing": S(spec('source = "data"', 'source = "nowhere"'), "nowhere", "does not exist", "Fix:"),
    "data_source_not_a_folder": S(spec('source = "data"', 'source = "study.toml"'),
                                  "is a file but not a DuckDB database", "Fix:"),
    "unknown_product": S(spec('product = "MSC"', 'product = "MSCs"'), "MSCs", "Fix:"),
    "unconvertible_outcome_unit": S(spec('unit = "ug/L"', 'unit = "bananas"'), "bananas", "Fix:"),
    "caliper_so_tight_nobody_matches": S(spec("ratio = 1", "ratio = 1\ncaliper = 0.0001"),
                                         "No trial patient has a control within matching.caliper = 0.0001",
                                         "Fix: widen matching.caliper", command="run"),
    "ratio_larger_than_the_pool": S(spec("ratio = 1", "ratio = 5"),
                                    "matching.ratio = 5 asks for 5 distinct controls", "only 2 pool candidates",
                                    "Fix: lower matching.ratio", command="run"),
}


# ---------------------------------------------------------------------------------------------
# Running one case
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    case: str
    kind: str
    code: int | None = None
    message: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _invoke(argv: list[str]) -> tuple[int | None, str, str]:
    """Run the CLI in-process; return (exit code, stderr, traceback text if an exception escaped)."""
    from contextlib import redirect_stderr, redirect_stdout

    err, out = io.StringIO(), io.StringIO()
    code, tb = None, ""
    with redirect_stderr(err), redirect_stdout(out):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:  # a bug: what a user would see as a traceback
            tb = traceback.format_exc()
    return code, err.getvalue(), tb


def run_case(name: str, template: Path, work: Path) -> Outcome:
    case = CASES[name]
    folder = work / name
    shutil.copytree(template, folder)
    case.mutate(folder)
    before = _hashes(folder)
    argv = [case.command, str(folder / "study.toml"), "-q"]  # progress lines are not the message
    if case.command == "run":
        argv += ["--out", str(work / f"{name}-out")]
    code, err, tb = _invoke(argv)
    outcome = Outcome(name, case.kind, code, err.strip())
    if tb or "Traceback" in err:
        outcome.problems.append("traceback:\n" + (tb or err))
    if code != 2:
        outcome.problems.append(f"exit code {code}, not 2")
    msg = err.strip()
    if msg.startswith("error: "):
        msg = msg[len("error: "):]
    elif not tb:
        outcome.problems.append("stderr does not start with 'error: '")
    if msg.count("Fix:") != 1:
        outcome.problems.append(f"{msg.count('Fix:')} 'Fix:' in the message (want one message with one fix)")
    for part in case.parts:
        if part not in msg:
            outcome.problems.append(f"{part!r} not in the message")
    if _hashes(folder) != before:
        outcome.problems.append("an input file was modified")
    if case.command == "run" and (work / f"{name}-out" / "index.html").exists():
        outcome.problems.append("a report was written")
    return outcome


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus") / "template"
    _clif.write(folder, fmt="csv")
    return folder


_OUTCOMES: dict[str, Outcome] = {}


def test_the_template_is_clean(template, tmp_path):
    code, err, tb = _invoke(["validate", str(template / "study.toml")])
    assert (code, tb) == (0, ""), err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, template, tmp_path):
    outcome = run_case(name, template, tmp_path)
    _OUTCOMES[name] = outcome
    assert outcome.clean, f"{name}: " + "; ".join(outcome.problems) + f"\n--- stderr ---\n{outcome.message}"


def test_corpus_summary(template, tmp_path, capsys):
    """The count the issue asks for: every case of the corpus, and how many gave a clean message."""
    for name in CASES:
        if name not in _OUTCOMES:  # this test was selected alone: run what did not run
            _OUTCOMES[name] = run_case(name, template, tmp_path)
    outcomes = [_OUTCOMES[n] for n in CASES]
    n_clean = sum(o.clean for o in outcomes)
    by_kind = {k: sum(o.kind == k for o in outcomes) for k in ("data", "study")}
    line = (f"bad-input corpus: {len(outcomes)} cases ({by_kind['data']} data, {by_kind['study']} study file), "
            f"{n_clean} clean (exit 2, no traceback, one message naming where and the fix, inputs unchanged)")
    with capsys.disabled():
        print("\n" + line)
    target = os.environ.get("CONTROLARM_CORPUS_REPORT")
    if target:
        Path(target).write_text(json.dumps({"cases": len(outcomes), "clean": n_clean, "by_kind": by_kind,
                                            "outcomes": {o.case: {"clean": o.clean, "code": o.code,
                                                                  "problems": o.problems, "message": o.message}
                                                         for o in outcomes}}, indent=2), encoding="utf-8")
    assert len(outcomes) >= MIN_CASES
    assert n_clean == len(outcomes), [o.case for o in outcomes if not o.clean]
