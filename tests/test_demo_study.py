"""The demo study end to end: the published aggregates of the seed study come out of the whole chain.

Reference: Grégoire C et al. Front Immunol 2022;13:932360 (doi:10.3389/fimmu.2022.932360), and
../shared/reference/seed_study.md. The published survival p-values are McNemar without continuity
correction on 24 pseudo-pairs: chi2 = b = 5 (day 28) and 7 (day 60), i.e. p = 1 - F_chi2(1)(5) and
1 - F_chi2(1)(7); the D-dimer quartiles are built into the synthetic data and must come back through
cohort -> matching -> outcomes (lab nearest day 7 within +-1 day, harmonised units) -> analysis.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

paper_p28 = 0.025347318677468  # chi2.sf(5, 1)
paper_p60 = 0.008150971593502  # chi2.sf(7, 1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict, float]:
    out = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "controlarm", "demo", "--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    assert res.returncode == 0, res.stderr
    assert f"report: {out / 'index.html'}" in res.stdout
    return out, json.loads((out / "results.json").read_text()), elapsed


def _test(results: dict, outcome: str, name: str) -> dict:
    return next(t for t in results["outcomes"][outcome]["tests"] if t["name"] == name)


def test_reference_values_are_what_scipy_says():
    assert stats.chi2.sf(5, 1) == pytest.approx(paper_p28, rel=1e-12)
    assert stats.chi2.sf(7, 1) == pytest.approx(paper_p60, rel=1e-12)


def test_outputs_exist(demo):
    out, _, _ = demo
    for name in ("index.html", "results.json", "matched_sets.csv", "manifest.json", "study.toml"):
        assert (out / name).is_file(), name


def test_controlarm_selects_24_controls_in_8_sets_of_4(demo):
    out, results, _ = demo
    assert results["matching"]["n_sets"] == 8
    rows = (out / "matched_sets.csv").read_text().splitlines()[1:]
    roles = [r.split(",")[1] for r in rows]
    assert roles.count("treated") == 8 and roles.count("control") == 24
    sets = [r.split(",")[0] for r in rows]
    assert all(sets.count(s) == 4 for s in set(sets))


@pytest.mark.parametrize("day,deaths,p", [(28, 5, paper_p28), (60, 7, paper_p60)])
def test_survival_reproduces_the_paper(demo, day, deaths, p):
    _, results, _ = demo
    o = results["outcomes"][f"alive_d{day}"]
    assert o["summaries"]["treated"]["events"] == 8 and o["summaries"]["treated"]["n"] == 8
    assert o["summaries"]["control"]["n"] == 24
    assert 24 - o["summaries"]["control"]["events"] == deaths
    published = _test(results, f"alive_d{day}", "mcnemar_pseudo_pairs")
    assert published["framing"] == "published-style" and published["warning"]
    assert published["statistic"] == deaths
    assert published["p_value"] == pytest.approx(p, rel=1e-6)
    assert published["conventions"]  # says: no continuity correction, 24 pseudo-pairs
    matched = [t for t in o["tests"] if t["framing"] == "matched"]
    assert {t["name"] for t in matched} >= {"exact_conditional", "mantel_haenszel"}
    # every test that respects the 8 sets is far from the published p (seed_study.md: 0.06-0.47)
    assert all(0.06 <= t["p_value"] <= 0.5 for t in matched)


def test_d_dimer_quartiles_reproduce_the_paper(demo):
    _, results, _ = demo
    s = results["outcomes"]["d_dimer_d7"]["summaries"]
    assert (s["treated"]["median"], s["treated"]["q1"], s["treated"]["q3"]) == (821.0, 362.0, 1305.0)
    assert (s["control"]["median"], s["control"]["q1"], s["control"]["q3"]) == (3553.0, 1155.0, 6433.5)
    assert s["treated"]["n"] == 8 and s["control"]["n"] == 24


@pytest.mark.parametrize("outcome", ["imv_free_days_28", "hfno_free_days_28", "oxygen_free_days_28", "icu_free_days_28"])
def test_free_days_show_no_significant_difference(demo, outcome):
    _, results, _ = demo
    tests = results["outcomes"][outcome]["tests"]
    assert tests and all(t["p_value"] > 0.05 for t in tests)


def test_trial_arm_at_inclusion(demo):
    """7 on HFNO and 1 on IMV at inclusion; 3 ever intubated, i.e. 2 of the 7 after the index."""
    _, results, _ = demo
    need = results["outcomes"]["need_imv"]["summaries"]["treated"]
    assert need["n"] == 7 and need["n_missing"] == 1 and need["events"] == 2
    balance = {row["covariate"]: row for row in results["matching"]["balance"]}
    assert balance["imv_at_index"]["mean_treated"] == pytest.approx(1 / 8)


def test_every_outcome_has_summaries_tests_and_conventions(demo):
    _, results, _ = demo
    assert set(results["outcomes"]) == {
        "alive_d28", "alive_d60", "time_to_death", "need_imv", "imv_free_days_28", "hfno_free_days_28",
        "oxygen_free_days_28", "icu_free_days_28", "d_dimer_d7"}
    for name, o in results["outcomes"].items():
        assert set(o["summaries"]) == {"treated", "control"}, name
        assert any(t["framing"] == "matched" for t in o["tests"]), name
        for t in o["tests"]:
            assert t["name"] and t["method"] and "conventions" in t, name
            assert t["p_value"] is None or 0 <= t["p_value"] <= 1


def test_report_says_the_data_are_synthetic_and_shows_no_ids(demo):
    out, _, _ = demo
    html = (out / "index.html").read_text()
    assert "SYNTHETIC DATA" in html
    ids = [r.split(",")[2] for r in (out / "matched_sets.csv").read_text().splitlines()[1:]]
    assert not [i for i in ids if f">{i}<" in html or f" {i} " in html]


def test_demo_is_deterministic(demo, tmp_path):
    out, _, _ = demo
    res = subprocess.run([sys.executable, "-m", "controlarm", "demo", "--out", str(tmp_path), "-q"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    for name in ("results.json", "matched_sets.csv", "index.html"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_demo_finishes_in_seconds(demo):
    _, _, elapsed = demo
    assert elapsed < 60  # measured about 4 s on a 2-core machine; the bound leaves room for a loaded CI
