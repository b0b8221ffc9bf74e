"""Tests of the pipeline's own joins (the rooms are tested in their own files)."""

from __future__ import annotations

import pandas as pd
import pytest

from controlarm.cohort import build_cohort
from controlarm.demo import generate_demo
from controlarm.errors import InputError
from controlarm.pipeline import run_study
from controlarm.sources import open_sources
from controlarm.spec import load_study


@pytest.fixture(scope="module")
def risk_set_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("riskset")
    path = generate_demo(folder)
    path.write_text(path.read_text().replace('product = "MSC"', 'product = "MSC"\npool_method = "risk_set"', 1))
    study = load_study(path)
    return study, run_study(study)


def test_risk_set_controls_start_at_their_treated_patients_landmark(risk_set_run):
    """Li, Propert & Rosenbaum (2001): a control's index is the treated patient's landmark on the
    control's own clock (time since ICU admission), and the control is eligible at that time."""
    study, run = risk_set_run
    m = run.matched
    assert run.results.n_sets == 8 and (m["role"] == "control").sum() == 24
    sources = open_sources(study.data.source, base_dir=study.base_dir)
    elig = build_cohort(sources, study).eligibility
    origin = elig.intervals.drop_duplicates("patient_id").set_index("patient_id")["origin_time"]
    lm = elig.landmarks.set_index("patient_id")["landmark_day"]
    for set_id, grp in m.groupby("set_id"):
        treated = grp.loc[grp["role"] == "treated", "patient_id"].item()
        for row in grp[grp["role"] == "control"].itertuples():
            offset = (row.index_time - origin[row.patient_id]) / pd.Timedelta(days=1)
            assert offset == pytest.approx(lm[treated], abs=1e-6)
            at_risk = elig.at_risk(lm[treated])["patient_id"]
            assert row.patient_id in set(at_risk)
    # without replacement, nobody serves twice
    assert m.loc[m["role"] == "control", "patient_id"].is_unique


def test_risk_set_flow_and_balance_cover_every_feature(risk_set_run):
    _, run = risk_set_run
    steps = {(s.stage, s.group): s for s in run.flow.steps}
    assert steps[("matching", "pool")].n_out == 24
    assert set(run.balance["covariate"]) == {c.name for c in run.study.features.covariates}
    assert run.baseline["patient_id"].is_unique


def test_risk_set_refuses_a_propensity_score(tmp_path):
    path = generate_demo(tmp_path)
    text = path.read_text().replace('product = "MSC"', 'product = "MSC"\npool_method = "risk_set"', 1)
    path.write_text(text.replace('distance = "mahalanobis"', 'distance = "logit_ps"'))
    with pytest.raises(InputError, match="propensity score has no meaning across landmarks.*Fix"):
        run_study(load_study(path))
