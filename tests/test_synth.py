"""The synthetic warehouse generator (controlarm.synth) and `controlarm synth`.

Small sizes only: the whole file runs in well under 20 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from controlarm.cli import app
from controlarm.sources._schema import TABLES
from controlarm.synth import BLOCK, MANIFEST, generate_warehouse

runner = CliRunner()


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synth") / "w"
    generate_warehouse(folder, 12_000, seed=7, treated=5, chunk_size=BLOCK)
    return folder


def _contents(folder: Path) -> dict:
    return {name: pq.read_table(folder / f"{name}.parquet") for name in TABLES}


def test_every_contract_table_written_with_its_columns(small):
    for name, schema in TABLES.items():
        table = pq.read_table(small / f"{name}.parquet")
        assert set(schema.required_columns) <= set(table.column_names), name
        assert set(table.column_names) <= set(schema.column_names), name
    info = json.loads((small / MANIFEST).read_text())
    assert info["hospitalizations"] == 12_000 and info["treated"] == 5 and info["seed"] == 7
    assert pq.read_metadata(small / "patient.parquet").num_rows == 12_005


def test_validate_passes_and_the_index_rule_finds_candidates(small):
    res = runner.invoke(app, ["validate", str(small / "study.toml"), "--json"])
    assert res.exit_code == 0, res.output
    # stage progress goes to stderr, so the JSON on stdout stays parseable
    summary = json.loads(res.stdout)
    assert summary["warnings"] == []
    assert summary["eligible"]["trial"] == 5
    # ICU + HFNO/IMV + dexamethasone within 24 h: a sizeable share of the pool is eligible
    assert summary["eligible"]["pool"] > 0.1 * 12_000


def test_same_seed_same_bytes(small, tmp_path):
    again = tmp_path / "again"
    generate_warehouse(again, 12_000, seed=7, treated=5, chunk_size=BLOCK)
    for name in TABLES:
        assert (small / f"{name}.parquet").read_bytes() == (again / f"{name}.parquet").read_bytes(), name


def test_chunk_size_does_not_change_the_data(small, tmp_path):
    other = tmp_path / "big-chunks"
    generate_warehouse(other, 12_000, seed=7, treated=5, chunk_size=100_000)
    a, b = _contents(small), _contents(other)
    for name in TABLES:
        assert a[name].equals(b[name]), name
    assert pq.read_metadata(small / "labs.parquet").num_row_groups > pq.read_metadata(other / "labs.parquet").num_row_groups


def test_another_seed_other_data(small, tmp_path):
    other = tmp_path / "seed8"
    generate_warehouse(other, 12_000, seed=8, treated=5, chunk_size=BLOCK)
    assert not pq.read_table(small / "hospitalization.parquet").equals(pq.read_table(other / "hospitalization.parquet"))


_PEAK = """
import resource, sys
from controlarm.synth import generate_warehouse
generate_warehouse(sys.argv[1], int(sys.argv[2]), seed=1, chunk_size=5_000)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_kb(folder: Path, n: int) -> int:
    out = subprocess.run([sys.executable, "-c", _PEAK, str(folder), str(n)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def test_memory_does_not_grow_with_size(tmp_path):
    """Peak RSS at 60k hospitalizations stays within 25 % (and 80 MB) of the peak at 10k: chunks of 5k."""
    small_kb = _peak_kb(tmp_path / "a", 10_000)
    large_kb = _peak_kb(tmp_path / "b", 60_000)
    assert large_kb < 1.25 * small_kb and large_kb - small_kb < 80_000, (small_kb, large_kb)


def test_cli_writes_and_reports(tmp_path):
    res = runner.invoke(app, ["synth", "--hospitalizations", "3000", "--out", str(tmp_path / "c"), "--treated", "3",
                              "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["row_counts"]["enrollment"] == 3003 and info["row_counts"]["administration"] == 9
    assert (tmp_path / "c" / "study.toml").is_file()


def test_cli_rejects_a_bad_size(tmp_path):
    res = runner.invoke(app, ["synth", "--hospitalizations", "0", "--out", str(tmp_path / "d")])
    assert res.exit_code == 2
    assert "--hospitalizations must be at least 1; got 0" in res.output
