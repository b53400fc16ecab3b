"""The robust comparison: its statistics on hand-built worlds, its determinism, and `lab compare --robust`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
import pytest

from lab.cli import main
from lab.experiment.robust import RobustOptions, design_seed, robust_compare
from lab.metrics.robustness import noise_split, outcome_robustness, regret, verdict, win_probabilities
from lab.scenario.loader import load_scenario
from tests.conftest import day0_loaded

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = str(ROOT / "scenarios" / "classroom.yaml")


# --------------------------------------------------------------------------- statistics on hand-built arrays
def test_win_probabilities_share_tied_worlds_and_follow_the_direction():
    means = np.array([[1.0, 5.0, 2.0, 3.0],
                      [2.0, 1.0, 2.0, 0.0]])
    assert win_probabilities(means, higher=True).tolist() == [0.625, 0.375]
    assert win_probabilities(means, higher=False).tolist() == [0.375, 0.625]


def test_regret_is_the_loss_against_each_worlds_best():
    means = np.array([[1.0, 5.0], [3.0, 2.0]])
    assert regret(means, higher=True).tolist() == [[2.0, 0.0], [0.0, 3.0]]
    assert regret(means, higher=False).tolist() == [[0.0, 3.0], [2.0, 0.0]]


def test_noise_split_recovers_the_worlds_spread_and_the_noise():
    rng = np.random.default_rng(1)
    w, r, sd_world, sd_noise = 2000, 4, 2.0, 3.0
    d = rng.normal(0, sd_world, (w, 1)) + rng.normal(0, sd_noise, (w, r))
    got = noise_split(d)
    # standard errors: the within variance has w (r - 1) degrees of freedom, the world means' variance w - 1
    var_within, var_means = sd_noise ** 2, sd_world ** 2 + sd_noise ** 2 / r
    se_within = var_within * math.sqrt(2 / (w * (r - 1)))
    se_means = var_means * math.sqrt(2 / (w - 1))
    assert abs(got["sd_within_world"] ** 2 - var_within) < 4 * se_within
    assert abs(got["sd_worlds"] ** 2 - sd_world ** 2) < 4 * math.hypot(se_means, se_within / r)
    assert abs(got["noise_share"] - (sd_noise ** 2 / r) / var_means) < 0.05
    # the shrunk percentiles are those of the worlds without the noise: about +-1.645 sd_world
    assert abs(got["p95_worlds"] - 1.645 * sd_world) < 0.3 and abs(got["p5_worlds"] + 1.645 * sd_world) < 0.3


def test_noise_split_without_replications_says_it_cannot():
    got = noise_split(np.arange(6.0).reshape(6, 1))
    assert got["sd_within_world"] is None and got["sd_worlds"] is None and got["noise_share"] is None


def test_outcome_entry_and_verdict_on_a_world_where_points_always_wins():
    rng = np.random.default_rng(2)
    w, r = 50, 2
    base = rng.normal(100, 5, (w, r))
    x = np.stack([base, base + 10 + rng.normal(0, 1, (w, r)), base - 3])
    entry = outcome_robustness(x, ["none", "points", "credit"], "none", higher=True)
    assert entry["p_best"] == {"none": 0.0, "points": 1.0, "credit": 0.0}
    assert entry["differences"]["credit"]["median"] == pytest.approx(-3.0)
    assert entry["differences"]["credit"]["sd_within_world"] == pytest.approx(0.0, abs=1e-9)
    assert entry["differences"]["points"]["share_beats_baseline"] == 1.0
    assert entry["regret"]["points"]["mean"] == 0.0
    assert entry["regret"]["credit"]["mean"] == pytest.approx(np.mean(x[1] - x[2]))
    v = verdict(entry, "net profit", {"none": "no programme"}, "none")
    assert v["robust"] and v["best"] == "points"
    assert v["text"] == ("points beats no programme on net profit in 100% of plausible worlds, "
                         "and is the best policy in 100%")


def test_a_split_verdict_names_the_parameter_that_decides():
    w = 40
    g = np.linspace(0, 1, w)
    values = np.column_stack([np.random.default_rng(3).uniform(size=w), g])
    means = np.stack([np.zeros(w), g - 0.4])  # points wins exactly when g > 0.4 (60% of the worlds)
    x = means[:, :, None].repeat(2, axis=2)
    entry = outcome_robustness(x, ["none", "points"], "none", higher=True)
    v = verdict(entry, "net profit", {"none": "no programme"}, "none", means, ["none", "points"], values,
                ["behaviour.points_hope", "behaviour.goal_gradient"])
    assert not v["robust"] and v["best"] == "points" and v["p_best"] == 0.6
    assert v["driver"]["parameter"] == "behaviour.goal_gradient" and v["driver"]["rank_correlation"] > 0.9
    assert "depends" in v["text"] and "behaviour.goal_gradient" in v["text"]


def test_a_split_verdict_over_few_worlds_names_no_parameter_within_chance():
    """With 6 worlds chance alone reaches a rank correlation of 1.96 / sqrt(5) = 0.88: a parameter whose
    correlation with the lead is below it is not named as what the verdict depends on."""
    from lab.metrics.robustness import chance_correlation

    values = np.array([[0.1], [0.5], [0.2], [0.9], [0.4], [0.7]])
    lead = np.array([-1.0, 1.0, 2.0, -2.0, 3.0, 0.5])  # points wins in 4 of 6 worlds, loosely tied to the value
    means = np.stack([np.zeros(6), lead])
    entry = outcome_robustness(means[:, :, None].repeat(2, axis=2), ["none", "points"], "none", higher=True)
    v = verdict(entry, "net profit", {"none": "no programme"}, "none", means, ["none", "points"], values,
                ["behaviour.points_hope"])
    rho = float(spearmanr(values[:, 0], lead).statistic)
    assert chance_correlation(6) == pytest.approx(1.959963984540054 / math.sqrt(5), rel=1e-15)
    assert abs(rho) < chance_correlation(6) and "driver" not in v
    assert v["text"].endswith(f"; with 6 worlds no parameter's rank correlation with points's lead stands out from "
                              f"chance (the largest, behaviour.points_hope's {rho:+.2f}, is within the "
                              f"{chance_correlation(6):.2f} that chance alone reaches in 95% of samples)"), v["text"]


def test_the_chance_band_of_a_rank_correlation_holds_95_percent_of_unrelated_samples():
    """Spearman's rho of unrelated samples of 30 worlds falls within chance_correlation(30) in 95% of them: 20,000
    samples (fixed seed) give 0.95 within 3 binomial standard deviations (0.0046) plus the normal
    approximation's own error at 30 worlds (under 0.005)."""
    from lab.metrics.robustness import chance_correlation

    rng = np.random.default_rng(20261204)
    n, samples = 30, 20_000
    ranks = np.argsort(rng.random((samples, n)), axis=1).astype(float)
    rho = 1 - 6 * ((ranks - np.arange(n)) ** 2).sum(axis=1) / (n * (n * n - 1))  # no ties: Spearman's formula
    within = float(np.mean(np.abs(rho) < chance_correlation(n)))
    assert abs(within - 0.95) < 0.0046 + 0.005, within


def test_outcomes_with_no_better_direction_get_differences_but_no_best():
    x = np.arange(12.0).reshape(2, 3, 2)
    entry = outcome_robustness(x, ["none", "points"], "none", higher=None)
    assert "p_best" not in entry and "regret" not in entry and "points" in entry["differences"]


# --------------------------------------------------------------------------- the study
SMALL = dict(worlds=3, replications=2, customers=120, days=60)  # with the classroom as a day-0 cohort


def test_same_seed_gives_the_same_worlds_and_a_different_seed_others():
    assert design_seed(5) == design_seed(5) != design_seed(6)


def test_robust_summary_is_bit_identical_across_worker_counts():
    loaded = day0_loaded(load_scenario(CLASSROOM))
    one = robust_compare(loaded, RobustOptions(jobs=1, seed=11, **SMALL), progress=False)
    two = robust_compare(loaded, RobustOptions(jobs=2, seed=11, **SMALL), progress=False)
    assert json.dumps(one.summary(), sort_keys=True) == json.dumps(two.summary(), sort_keys=True)
    for name in one.values:
        assert np.array_equal(one.values[name], two.values[name], equal_nan=True)
    # common random numbers: the worlds differ from one another, the replications within a world too
    prof = one.values["net_profit"]
    assert len({float(v) for v in prof[0, :, 0]}) == 3 and prof[0, 0, 0] != prof[0, 0, 1]


def test_cli_robust_writes_the_section_and_prints_how_sure(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", CLASSROOM, "--policies", "points", "--replications", "2", "--customers", "120",
                 "--days", "425", "--robust", "3", "--robust-replications", "2", "--no-flywheel-split",
                 "--jobs", "1", "--quiet", "--out", str(out)]) == 0
    section = json.loads((out / "summary.json").read_text())["robustness"]
    assert section["worlds"] == 3 and section["replications_per_world"] == 2
    assert set(section["outcomes"]["net_profit"]["p_best"]) == {"none", "points"}
    assert sum(section["outcomes"]["net_profit"]["p_best"].values()) == pytest.approx(1.0)
    assert section["verdict"]["net_profit"]["text"]
    printed = capsys.readouterr().out
    assert "How sure? 3 plausible worlds x 2 replications" in printed
    # three worlds: no rank correlation stands out from chance (1.96 / sqrt(2) = 1.39), and the line says so
    from lab.metrics.robustness import chance_correlation
    from lab.report.robust import format_robust

    drivers = section["outcomes"]["net_profit"]["drivers"]
    assert drivers and all(abs(d["rank_correlation"]) < chance_correlation(3) for d in drivers)
    assert ("what moves the leader's margin (rank correlation across worlds; chance alone reaches 1.39 with 3 "
            "worlds): no parameter beyond chance (the largest: ") in printed
    # the same correlations over many worlds stand out, and are named as they are
    many = {**section, "worlds": 10**6, "outcomes": {"net_profit": {
        k: v for k, v in section["outcomes"]["net_profit"].items() if k != "worlds"}}}
    named = ", ".join(f"{d['parameter']} {d['rank_correlation']:+.2f}" for d in drivers[:4]
                      if abs(d["rank_correlation"]) >= chance_correlation(10**6))
    assert f"chance alone reaches 0.00 with 1000000 worlds): {named}\n" in format_robust(many) + "\n"


def test_cli_robust_needs_two_worlds(tmp_path, capsys):
    assert main(["compare", CLASSROOM, "--replications", "2", "--customers", "50", "--days", "395", "--robust", "1",
                 "--quiet", "--no-flywheel-split", "--jobs", "1", "--out", str(tmp_path / "x")]) == 2
    assert "at least 2 worlds" in capsys.readouterr().err


# --------------------------------------------------------------------------- Sobol indices
def test_sobol_indices_find_the_one_parameter_that_matters():
    from SALib.sample import sobol as saltelli

    from lab.metrics.robustness import sobol_rows

    names = ["a", "b", "c"]
    u = saltelli.sample({"num_vars": 3, "names": names, "bounds": [[0, 1]] * 3}, 1024, calc_second_order=False,
                        seed=4)
    y = np.where(u[:, 1] > 0.3, 1.0, -1.0)  # only b matters, through a threshold
    rows = sobol_rows(y, names, seed=5)
    assert rows[0]["parameter"] == "b"
    # the true indices of b are 1, of a and c 0: each within its 95% bootstrap interval (+ the estimator's own
    # small bias at N = 1024 for b)
    assert rows[0]["S1_low"] - 0.05 <= 1 <= rows[0]["S1_high"] + 0.05
    assert rows[0]["ST_low"] - 0.05 <= 1 <= rows[0]["ST_high"] + 0.05
    for r in rows[1:]:
        assert r["S1_low"] - 1e-9 <= 0 <= r["S1_high"] + 1e-9 and r["ST_low"] - 1e-9 <= 0 <= r["ST_high"] + 1e-9


def test_a_saltelli_study_runs_n_times_parameters_plus_two_worlds(tmp_path):
    known = ROOT / "tests" / "data" / "robust_known.yaml"
    study = robust_compare(load_scenario(known), RobustOptions(worlds=4, replications=1, method="saltelli",
                                                               customers=60, days=60, seed=2), progress=False)
    assert study.design.shape == (4 * (2 + 2), 2)
    section = study.summary()
    assert section["worlds"] == 16 and section["sobol_base"] == 4
    rows = section["outcomes"]["net_profit"]["sobol"]["points"]
    assert {r["parameter"] for r in rows} == set(study.parameters)


@pytest.mark.parametrize("method, worlds", [("saltelli", 2), ("morris", 2)])
def test_sensitivity_designs_are_bit_identical_across_worker_counts(method, worlds):
    # the known world's two parameters: a Saltelli base of 2 is 2 x (2 + 2) = 8 worlds, 2 Morris trajectories
    # 2 x (2 + 1) = 6 worlds; a year, so the policies' differences (and the indices) are not all zero
    known = load_scenario(ROOT / "tests" / "data" / "robust_known.yaml")
    opts = dict(worlds=worlds, replications=1, method=method, customers=100, days=365, seed=4)
    one = robust_compare(known, RobustOptions(jobs=1, **opts), progress=False)
    two = robust_compare(known, RobustOptions(jobs=2, **opts), progress=False)
    assert one.design.shape[0] == worlds * (4 if method == "saltelli" else 3)
    a, b = one.summary(), two.summary()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    rows = a["outcomes"]["net_profit"]["sobol" if method == "saltelli" else "morris"]["points"]
    assert {r["parameter"] for r in rows} == set(one.parameters)
    assert any(r["ST" if method == "saltelli" else "mu_star"] for r in rows)  # a real response, not all zeros


@pytest.mark.parametrize("args, words", [
    (["--robust", "12", "--robust-design", "saltelli"], "use --robust 8 or --robust 16"),
    (["--robust-design", "morris"], "--robust-design morris needs --robust N"),
])
def test_cli_refuses_a_robust_design_the_worlds_cannot_make(args, words, tmp_path, capsys):
    assert main(["compare", CLASSROOM, "--replications", "2", "--customers", "50", "--days", "395", *args,
                 "--quiet", "--no-flywheel-split", "--jobs", "1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # refused before any run


def test_cli_robust_design_morris_prints_the_effects(tmp_path, capsys):
    known = str(ROOT / "tests" / "data" / "robust_known.yaml")
    out = tmp_path / "cmp"
    assert main(["compare", known, "--replications", "2", "--customers", "100", "--days", "365", "--robust", "2",
                 "--robust-design", "morris", "--robust-replications", "1", "--no-flywheel-split", "--jobs", "1",
                 "--quiet", "--out", str(out)]) == 0
    section = json.loads((out / "summary.json").read_text())["robustness"]
    assert section["method"] == "morris" and section["worlds"] == 6 and section["morris_trajectories"] == 2
    printed = capsys.readouterr().out
    assert "Morris effects per plausible range" in printed and "(note: the worlds of a Morris design" in printed
    assert (out / "fig_robust_drivers.png").exists()
