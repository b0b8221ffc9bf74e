"""More broken inputs (issue 9's corpus): each stops with one clear message naming the table,
column, rows or ids, and the fix; at the command line, exit code 2 and no traceback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from controlarm.cli import main
from controlarm.errors import DataContractError

from . import _clif
from .test_validate import Frames, run, setv, the_message


def _append(table: str, row: dict) -> callable:
    def mutate(f: Frames) -> None:
        f[table] = pd.concat([f[table], pd.DataFrame([row])], ignore_index=True).fillna("")

    return mutate


DATA_CASES = {
    "death_before_admission": (
        setv("patient", 1, "death_dttm", "2020-06-01T10:00:00+00:00"),  # P2 admitted 2020-06-03
        "patient.csv: death_dttm is before the admission of 1 hospitalization",
        ["row 2: P2 death_dttm 2020-06-01", "H2 admission_dttm 2020-06-03", "Fix: correct death_dttm"],
    ),
    "administration_after_death": (
        setv("patient", 0, "death_dttm", "2020-06-03T00:00:00+00:00"),  # P1 dosed 2020-06-02 and 06-05
        "administration.csv: admin_dttm is after the patient's death in 1 row",
        ["row 2: P1 admin_dttm 2020-06-05", "death_dttm 2020-06-03", "Fix: correct admin_dttm"],
    ),
    "overlapping_icu_stays": (
        _append("adt", {"hospitalization_id": "H1", "in_dttm": "2020-06-05T00:00:00+00:00",
                        "out_dttm": "2020-06-12T00:00:00+00:00", "location_category": "icu",
                        "location_name": "SICU", "hospital_id": "A"}),
        "adt.csv: 1 pair of ICU stays of the same hospitalization overlap",
        ["H1 2020-06-01", "Fix: correct the in_dttm and out_dttm"],
    ),
    "treated_patient_also_in_pool": (
        _append("enrollment", {"patient_id": "P1", "hospitalization_id": "H1", "arm": "pool", "inclusion_dttm": ""}),
        "enrollment.csv: patient_id is not unique",
        ["P1 in rows 1, ", "Fix: list each patient once"],
    ),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_broken_data(tmp_path: Path, case: str) -> None:
    mutate, start, parts = DATA_CASES[case]
    report = run(tmp_path, mutate)
    msg = the_message(report.errors, start)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    with pytest.raises(DataContractError):
        report.raise_if_errors()


def _cli(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(list(args))
    return int(info.value.code or 0), capsys.readouterr().err


SPEC_CASES = {
    "caliper_so_tight_nobody_matches": (
        ("ratio = 1", "ratio = 1\ncaliper = 0.0001"),
        ["No trial patient has a control within matching.caliper = 0.0001", "0 of 1 trial patients",
         "Fix: widen matching.caliper"],
    ),
    "ratio_larger_than_the_pool": (
        ("ratio = 1", "ratio = 5"),
        ["matching.ratio = 5 asks for 5 distinct controls", "only 2 pool candidates",
         "Fix: lower matching.ratio to at most 2"],
    ),
    "conflicting_ratio_and_variable_ratio": (
        ("ratio = 1", "ratio = 1\nmin_controls = 3\nmax_controls = 2"),
        ["`matching`: max_controls must not be below min_controls"],  # the spec room's wording (no "Fix:")
    ),
}


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_broken_study_file(tmp_path: Path, capsys, case: str) -> None:
    (old, new), parts = SPEC_CASES[case]
    study = _clif.write(tmp_path)
    text = study.read_text()
    assert old in text
    study.write_text(text.replace(old, new, 1))
    code, err = _cli(capsys, "run", str(study), "--out", str(tmp_path / "out"), "-q")
    assert code == 2, err
    for part in parts:
        assert part in err, f"{part!r} not in {err!r}"
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "index.html").exists()
