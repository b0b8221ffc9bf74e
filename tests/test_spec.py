"""Tests of the spec room: the study file, its template, its errors and its hash."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from controlarm.errors import InputError
from controlarm.spec import load_study, study_from_dict, template_text

DEMO = Path(__file__).parents[1] / "src" / "controlarm" / "demo" / "study.toml"


def _base() -> dict:
    return tomllib.loads(template_text())


def test_template_is_a_valid_study():
    study = study_from_dict(_base())
    assert study.matching.ratio == 3
    assert study.index.pool.devices == ("High Flow NC", "IMV")
    assert [c.name for c in study.features.covariates] == ["age", "male", "crp", "imv_at_index", "diabetes"]


def test_demo_study_is_valid_and_resolves_paths_against_its_folder():
    study = load_study(DEMO)
    assert study.base_dir == DEMO.parent.resolve()
    assert study.matching.covariates == ("age", "male", "bmi", "crp", "days_since_admission")
    assert study.study.synthetic is True


def test_hash_is_stable_and_changes_with_the_spec():
    a = study_from_dict(_base())
    b = study_from_dict(_base())
    assert a.spec_hash == b.spec_hash and len(a.spec_hash) == 64
    raw = _base()
    raw["matching"]["ratio"] = 2
    assert study_from_dict(raw).spec_hash != a.spec_hash


def test_report_real_ids_is_off_by_default_and_leaves_the_hash_alone():
    a = study_from_dict(_base())
    assert a.report.real_ids is False and a.report.listings is False
    assert "real_ids" not in a.model_dump(mode="json")["report"]  # left out of the canonical JSON while off
    raw = _base()
    raw["report"]["real_ids"] = False  # written out explicitly: the same plan, the same hash
    assert study_from_dict(raw).spec_hash == a.spec_hash
    raw["report"].pop("real_ids")
    assert study_from_dict(raw).spec_hash == a.spec_hash  # a study file without the key
    raw["report"]["real_ids"] = True
    on = study_from_dict(raw)
    assert on.report.real_ids is True and on.spec_hash != a.spec_hash


def test_study_is_frozen():
    study = study_from_dict(_base())
    with pytest.raises(Exception):
        study.matching.ratio = 4  # type: ignore[misc]


def _error(raw: dict, text: str = "") -> str:
    with pytest.raises(InputError) as exc:
        study_from_dict(raw, source="study.toml", text=text)
    return str(exc.value)


def test_unknown_key_names_its_path_and_line():
    text = template_text().replace("ratio = 3 ", "ratoi = 3 ")
    msg = _error(tomllib.loads(text), text)
    assert "unknown key `matching.ratoi`" in msg
    line = next(i + 1 for i, l in enumerate(text.splitlines()) if l.startswith("ratoi"))
    assert f"study.toml, line {line}" in msg


def test_bad_value_names_rule_and_received_value():
    raw = _base()
    raw["matching"]["ratio"] = 0
    msg = _error(raw)
    assert "`matching.ratio`" in msg and "greater than or equal to 1" in msg and "got 0" in msg


def test_bad_device_lists_the_allowed_categories():
    raw = _base()
    raw["index"]["pool"]["devices"] = ["HFNO"]
    msg = _error(raw)
    assert "`index.pool.devices[0]`" in msg and "'High Flow NC'" in msg and "got 'HFNO'" in msg


def test_matching_covariate_must_be_a_feature():
    raw = _base()
    raw["matching"]["covariates"] = ["age", "bmi"]
    msg = _error(raw)
    assert "matching.covariates names 'bmi'" in msg and "not defined under [[features.covariates]]" in msg


def test_missing_section_is_reported():
    raw = _base()
    del raw["matching"]
    assert "`matching` is required but missing" in _error(raw)


def test_lab_covariate_needs_a_category():
    raw = _base()
    raw["features"]["covariates"].append({"name": "ferritin", "kind": "lab"})
    assert "needs `category`" in _error(raw)


def test_duplicate_covariate_names():
    raw = _base()
    raw["features"]["covariates"].append({"name": "age", "kind": "age"})
    assert "repeated: age" in _error(raw)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(InputError, match="study file not found.*controlarm init"):
        load_study(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nname = 1\n")
    with pytest.raises(InputError, match="bad.toml: not valid TOML"):
        load_study(bad)
