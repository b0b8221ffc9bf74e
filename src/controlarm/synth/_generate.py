"""Synthetic CLIF warehouse of any size, written in chunks with constant memory.

Why this exists: the demo study (``controlarm.demo``) is 8 trial patients and ~450 curated pool
patients, built to reproduce a paper; it says nothing about how the pipeline behaves on a hospital
warehouse of a million stays. ``generate_warehouse`` writes every table the pipeline reads
(docs/data-model.md) for ``N`` hospitalizations, plus a small trial arm and a ``study.toml`` that
runs the demo study's design (ICU, on HFNO or IMV, dexamethasone within 24 h) on it, so that
``controlarm run DIR/study.toml`` works end to end at any size. It feeds ``benchmarks/scale.py``.

What it draws from (see ``_courses`` for the parameters): a mix of stays, 35 % severe COVID-19
ICU courses (ward on nasal cannula, ICU on high-flow or invasive ventilation, intubation of some
high-flow patients, step-down, dexamethasone daily in 85 %, ECMO in 6 % of the ventilated), 10 %
other ICU stays and 55 % ward stays; admissions uniform over 2020-03 .. 2022-03; age normal
(62, 14) or (58, 19), male 62 % or 50 %, BMI lognormal (median 28); deaths 3-40 % by course,
mostly in hospital. Rows (``_tables``): respiratory records every 4-12 h by device, heart and
respiratory rate every 12 h, a morning lab draw (CRP, D-dimer, creatinine daily for COVID stays;
lymphocytes, ferritin, platelets every other day; lognormal values), ICD-10 diagnoses. About
110 rows per hospitalization on average (1M hospitalizations: 112M rows, 750 MB of Parquet).

How: hospitalizations are drawn in fixed blocks of ``BLOCK`` with vectorised NumPy, block ``b``
from ``numpy.random.default_rng([seed, 0, b])``; blocks are gathered into chunks and each chunk is
appended to one Parquet file per table (``pyarrow.parquet.ParquetWriter``, zstd, row groups of at
most ``ROW_GROUP`` rows). Memory is therefore bounded by one chunk, whatever ``N``; and the tables'
contents depend only on ``N`` and the seed, not on the chunk size (the bytes differ only by
row-group boundaries). The trial arm (``default_rng([seed, 1])``) is appended last.

THE DATA ARE SYNTHETIC: no real patient is behind any row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from ._courses import draw_courses
from ._tables import SCHEMAS, TABLE_NAMES, render_block, trial_tables

__all__ = ["generate_warehouse", "SynthResult", "BLOCK", "DEFAULT_CHUNK", "DEFAULT_SEED", "MANIFEST"]

#: Hospitalizations per random block (the unit of determinism).
BLOCK = 5_000
#: Default hospitalizations per chunk (the unit of memory).
DEFAULT_CHUNK = 100_000
DEFAULT_SEED = 20240501
ROW_GROUP = 1_048_576
#: File written last in the output folder: what was generated (its presence means "complete").
MANIFEST = "synth.json"
_VERSION = 1


@dataclass(frozen=True)
class SynthResult:
    """What :func:`generate_warehouse` wrote.

    Attributes
    ----------
    folder : Path
    study_file : Path
    hospitalizations, treated, seed : int
    row_counts : dict
        Table -> rows written.
    seconds : float
    """

    folder: Path
    study_file: Path
    hospitalizations: int
    treated: int
    seed: int
    row_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def generate_warehouse(out: str | Path, hospitalizations: int, *, seed: int = DEFAULT_SEED, treated: int = 8,
                       chunk_size: int = DEFAULT_CHUNK,
                       progress: Callable[[int, int], None] | None = None) -> SynthResult:
    """Write a synthetic CLIF warehouse of ``hospitalizations`` pool stays, a trial arm and a study file.

    Parameters
    ----------
    out : str or Path
        Output folder (created). Receives ``<table>.parquet`` for every table of the data model,
        ``study.toml`` (data source ``"."``) and ``synth.json``. Existing files of those names are
        overwritten.
    hospitalizations : int
        Pool hospitalizations (one per patient), at least 1.
    seed : int
    treated : int
        Trial patients (each given the product three times), 1 to 999.
    chunk_size : int
        Hospitalizations held in memory at once; rounded up to a multiple of ``BLOCK``.
    progress : callable, optional
        Called as ``progress(done, total)`` after each chunk (the CLI draws a bar).

    Returns
    -------
    SynthResult

    Raises
    ------
    InputError
        A size or count out of range.
    """
    if hospitalizations < 1:
        raise InputError(f"--hospitalizations must be at least 1; got {hospitalizations}")
    if not 1 <= treated <= 999:
        raise InputError(f"--treated must be an integer from 1 to 999; got {treated}")
    if chunk_size < 1:
        raise InputError(f"chunk size must be at least 1; got {chunk_size}")
    started = time.perf_counter()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)
    blocks_per_chunk = max(1, -(-chunk_size // BLOCK))
    counts = {name: 0 for name in TABLE_NAMES}
    writers = {name: pq.ParquetWriter(folder / f"{name}.parquet", SCHEMAS[name], compression="zstd")
               for name in TABLE_NAMES}
    try:
        n_blocks = -(-hospitalizations // BLOCK)
        for first_block in range(0, n_blocks, blocks_per_chunk):
            parts: dict[str, list[pa.Table]] = {name: [] for name in TABLE_NAMES}
            for b in range(first_block, min(first_block + blocks_per_chunk, n_blocks)):
                n = min(BLOCK, hospitalizations - b * BLOCK)
                rng = np.random.default_rng([seed, 0, b])
                tables = render_block(draw_courses(rng, n), rng, b * BLOCK + 1)
                for name, table in tables.items():
                    parts[name].append(table)
            _write(writers, parts, counts)
            del parts
            if progress is not None:
                progress(min((first_block + blocks_per_chunk) * BLOCK, hospitalizations), hospitalizations)
        rng = np.random.default_rng([seed, 1])
        trial, _ = trial_tables(draw_courses(rng, treated, trial=True), rng)
        _write(writers, {name: [table] for name, table in trial.items()}, counts)
    finally:
        for w in writers.values():
            w.close()
    study_file = folder / "study.toml"
    study_file.write_text(study_text(hospitalizations, treated, seed), encoding="utf-8")
    seconds = time.perf_counter() - started
    (folder / MANIFEST).write_text(json.dumps({
        "generator": "controlarm.synth", "version": _VERSION, "hospitalizations": hospitalizations,
        "treated": treated, "seed": seed, "row_counts": counts, "seconds": round(seconds, 2),
    }, indent=2) + "\n", encoding="utf-8")
    return SynthResult(folder=folder, study_file=study_file, hospitalizations=hospitalizations, treated=treated,
                       seed=seed, row_counts=counts, seconds=seconds)


def _write(writers: dict[str, pq.ParquetWriter], parts: dict[str, list[pa.Table]], counts: dict[str, int]) -> None:
    for name, tables in parts.items():
        if not tables:
            continue
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if table.num_rows:
            writers[name].write_table(table, row_group_size=ROW_GROUP)
            counts[name] += table.num_rows


def study_text(hospitalizations: int, treated: int, seed: int) -> str:
    """The study file written beside the tables: the demo study's design on the synthetic warehouse."""
    return f'''# controlarm study on a SYNTHETIC warehouse written by `controlarm synth` ({hospitalizations:,} pool
# hospitalizations, {treated} trial patients, seed {seed}). The design is the demo study's: candidates
# indexed at the first time they are in ICU, on high-flow oxygen or invasive ventilation, and given
# dexamethasone within the previous 24 hours; 1:3 nearest-neighbour Mahalanobis matching.

[study]
name = "Synthetic warehouse: {hospitalizations:,} hospitalizations, {treated} treated (controlarm synth)"
description = "Generated by controlarm synth; the data are synthetic."
synthetic = true
seed = {seed}

[data]
source = "."
cutoff = 2022-09-01

[cohort]
calendar_start = 2020-03-01
calendar_end = 2021-12-31
age_min = 18
age_max = 70

[index]
trial = "first_administration"
product = "MSC"

[index.pool]
location = "icu"
devices = ["High Flow NC", "IMV"]
medication = "dexamethasone"
medication_window_hours = 24

[features]
default_lookback_hours = 48

[[features.covariates]]
name = "age"
kind = "age"

[[features.covariates]]
name = "male"
kind = "sex"

[[features.covariates]]
name = "bmi"
kind = "bmi"
lookback_hours = 720

[[features.covariates]]
name = "crp"
kind = "lab"
category = "crp"
unit = "mg/L"
lookback_hours = 48

[[features.covariates]]
name = "respiratory_rate"
kind = "vital"
category = "respiratory_rate"
lookback_hours = 24

[[features.covariates]]
name = "days_since_admission"
kind = "days_since_admission"

[[features.covariates]]
name = "imv_at_index"
kind = "device_at_index"
devices = ["IMV"]

[[features.covariates]]
name = "diabetes"
kind = "diagnosis"
codes = ["E10", "E11"]

[[features.covariates]]
name = "hypertension"
kind = "diagnosis"
codes = ["I10"]

[matching]
method = "nearest"
distance = "mahalanobis"
covariates = ["age", "male", "bmi", "crp", "days_since_admission"]
exact = ["imv_at_index"]
ratio = 3
replace = false
order = "data"

[outcomes]
survival_days = [28, 60]
need_imv = true
free_days = ["imv", "hfno", "oxygen", "icu"]
free_days_horizon = 28
free_days_death_value = 0
max_gap_hours = 24

[[outcomes.labs]]
category = "d_dimer"
day = 7
window_days = 1
unit = "ug/L"

[safety]
teae_days = 28
infusion_window_hours = 24

[safety.schedule]
n_administrations = 3
interval_hours = 72
tolerance_hours = 24
dose_min = 1.5
dose_max = 3.0
dose_unit = "10^6 cells/kg"

[[safety.context_events]]
name = "Thrombo-embolic events"
codes = ["I26", "I63", "I74", "I80", "I82"]

[analysis]
published_style = true
alpha = 0.05

[report]
listings = false
'''
