"""Tests of the pipeline's own rules (the rooms are tested in their own files)."""

from __future__ import annotations

import pytest

from controlarm.errors import InputError
from controlarm.pipeline import run_study
from controlarm.spec import load_study

from . import _clif


def test_risk_set_index_is_refused_with_a_fix_until_it_is_wired(tmp_path):
    study_file = _clif.write(tmp_path)
    study_file.write_text(study_file.read_text().replace('product = "MSC"', 'product = "MSC"\npool_method = "risk_set"'))
    study = load_study(study_file)
    assert study.index.pool_method == "risk_set"
    with pytest.raises(InputError, match="risk_set.*not available in `controlarm run` yet.*Fix"):
        run_study(study)
