"""``results.json`` against its checked-in JSON Schema (docs/results.schema.json) and its documentation.

jsonschema is not a dependency, so :func:`validate` below implements the part of JSON Schema 2020-12
that the schema file uses (type, enum, const, pattern, minimum/maximum, properties, required,
additionalProperties, items, anyOf, $ref to $defs) and fails on any other keyword, so the schema
cannot silently grow beyond what is checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from controlarm.report import SCHEMA_VERSION, write_report

from .test_report import FakeSafety, make_run, stub_figures

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCHEMA = json.loads((DOCS / "results.schema.json").read_text(encoding="utf-8"))
_KNOWN = {"$schema", "$id", "$defs", "$ref", "title", "description", "type", "enum", "const", "pattern", "minimum",
          "maximum", "properties", "required", "additionalProperties", "items", "anyOf"}
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def validate(value: Any, schema: dict, path: str = "$", root: dict = SCHEMA) -> list[str]:
    """Errors of ``value`` against ``schema`` (empty when valid)."""
    unknown = set(schema) - _KNOWN
    assert not unknown, f"{path}: schema keyword(s) the test validator does not check: {unknown}"
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return validate(value, target, path, root)
    errors: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, t) for t in types):
            return [f"{path}: expected {types}, got {type(value).__name__} {value!r:.60}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {value!r} != {schema['const']!r}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} > {schema['maximum']}")
    if "anyOf" in schema and all(validate(value, s, path, root) for s in schema["anyOf"]):
        errors.append(f"{path}: {value!r:.60} matches none of anyOf")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"{path}: missing {k!r}" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            if key in props:
                errors += validate(item, props[key], f"{path}.{key}", root)
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected key {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += validate(item, schema["additionalProperties"], f"{path}.{key}", root)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]", root)
    return errors


def test_the_validator_catches_mistakes():
    good = {"type": "object", "required": ["a"], "additionalProperties": False,
            "properties": {"a": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^<[0-9]+$"}]}}}
    assert validate({"a": 3}, good) == [] and validate({"a": "<5"}, good) == []
    assert validate({"a": -1}, good) and validate({"a": "5"}, good) and validate({}, good) and validate({"a": 1, "b": 2}, good)
    assert validate(True, {"type": "integer"}) and validate(1.5, {"type": "integer"})


@pytest.mark.parametrize("variant", ["safety", "suppressed-no-safety", "listings-sparse", "real-ids"])
def test_results_json_matches_the_schema(variant, tmp_path, monkeypatch):
    stub_figures(monkeypatch)
    run = {"safety": lambda: make_run(safety=FakeSafety()),
           "suppressed-no-safety": lambda: make_run(suppress=True),
           "listings-sparse": lambda: make_run(listings=True, trajectories=False, sensitivity=False),
           "real-ids": lambda: make_run(listings=True, real_ids=True, safety=FakeSafety())}[variant]()
    data = json.loads(write_report(run, tmp_path / "r")["results.json"].read_text(encoding="utf-8"))
    assert data["schema_version"] == SCHEMA_VERSION
    assert validate(data, SCHEMA) == []


def _property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(schema, dict):
        names |= set(schema.get("properties", {}))
        for value in schema.values():
            names |= _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            names |= _property_names(value)
    return names


def test_every_schema_key_is_documented():
    doc = (DOCS / "results-schema.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_0-9]+)`", doc))
    missing = sorted(_property_names(SCHEMA) - documented)
    assert missing == [], f"keys in results.schema.json but not described in results-schema.md: {missing}"
    assert f"schema {SCHEMA_VERSION}" in doc
