"""A launch: the policy starts on a launch day for the customers then present, and outcomes are measured from it.

Two ways in: `launch_day` (a warm-up under no programme, identical under every policy, before the
launch) and `population.from_fit` (an existing base from `lab fit`, launched at the calibration end).
With no programme and behaviour off, a launch on the base fitted to tests/data/fit_example.csv must
predict the holdout's repeat transactions as the closed form E[X(T, T + t) | x, t_x, T] does: the
mean over replications within 4 of its standard errors of the closed form (seeds fixed).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lab.engine.options import RunOptions
from lab.engine.simulate import Simulation
from lab.errors import LabError
from lab.experiment.run import run_policy, write_run
from lab.fit.command import add_arguments, main
from lab.scenario.loader import load_scenario
from tests.conftest import everyone_joins

DATA = Path(__file__).parent / "data" / "fit_example.csv"
HOLDOUT_DAYS = 183  # 2025-07-01 .. 2025-12-30
REPLICATIONS = 20
Z = 4.0
LAUNCH = 120


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fit")
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args([str(DATA), "--until", "2025-06-30", "--holdout-until", "2025-12-30", "--model", "bgnbd",
                         "--out", str(out)])
    assert main(args) == 0
    return out


def _launch_scenario(folder: Path, *, behaviour: bool, days: int, extra: str = "") -> Path:
    text = (folder / "scenario.yaml").read_text()
    text = text.replace("  # from_fit: .  ", "  from_fit: .    ")
    text = re.sub(r"^days: 365", f"days: {days}", text, flags=re.M)
    if not behaviour:
        text += "behaviour: {enabled: false}\n"
    path = folder / f"launch_{int(behaviour)}_{days}.yaml"
    path.write_text(text + extra)
    return path


def test_fit_writes_the_customer_histories(fitted) -> None:
    base = pd.read_parquet(fitted / "customers.parquet")
    doc = json.loads((fitted / "fit.json").read_text())
    assert len(base) == doc["data"]["customers"] == 2000
    assert {"x", "t_x", "T", "revenue", "mean_repeat_spend"} <= set(base.columns)


def test_launch_on_the_fitted_base_predicts_the_holdout(fitted) -> None:
    doc = json.loads((fitted / "fit.json").read_text())
    predicted = doc["holdout"]["predicted_repeat_transactions"]
    loaded = load_scenario(_launch_scenario(fitted, behaviour=False, days=HOLDOUT_DAYS), ["none"])
    totals = []
    for k in range(REPLICATIONS):
        raw = Simulation(loaded.scenario, loaded.policies["none"], RunOptions(seed=100 + k)).run()
        assert raw.record.launch_day == 0 and raw.customers.n == 2000
        totals.append(float(raw.daily["repeat_purchases"].sum()))
    mean, se = np.mean(totals), np.std(totals, ddof=1) / np.sqrt(REPLICATIONS)
    assert abs(mean - predicted) <= Z * se, (mean, se, predicted)


def test_the_base_starts_with_its_history(fitted) -> None:
    base = pd.read_parquet(fitted / "customers.parquet")
    loaded = load_scenario(_launch_scenario(fitted, behaviour=False, days=HOLDOUT_DAYS), ["none"])
    raw = Simulation(loaded.scenario, loaded.policies["none"], RunOptions(seed=3)).run()
    c = raw.record.customers
    assert np.allclose(c.acquired_at, -base["T"].to_numpy() * 7.0)
    assert np.all(c.purchases >= base["x"].to_numpy() + 1)
    assert np.all(c.revenue >= base["revenue"].to_numpy() - 1e-9)
    # a customer drawn as gone left at their last purchase, before the launch, and buys nothing after it
    gone = ~np.isnan(c.dropped_at) & (c.dropped_at <= 0)
    assert gone.any()
    assert np.all(c.purchases[gone] == base["x"].to_numpy()[gone] + 1)
    assert np.allclose(c.dropped_at[gone], (base["t_x"] - base["T"]).to_numpy()[gone] * 7.0)


def test_the_programme_launches_for_the_fitted_base(fitted) -> None:
    loaded = load_scenario(_launch_scenario(fitted, behaviour=True, days=120), ["none", "points"])
    none = run_policy(loaded.scenario, loaded.policies["none"], 5)
    points = run_policy(loaded.scenario, loaded.policies["points"], 5)
    assert none.launch_day == points.launch_day == 0
    members = points.customers["member"].to_numpy()
    churned = points.customers["churned"].to_numpy()
    dropped = points.customers["dropped_at"].to_numpy()
    # everyone present at the launch may join; nobody gone before it does
    assert members.sum() > 0 and not np.any(members & churned & (dropped <= 0))


@pytest.fixture(scope="module")
def warm(small_scenario, policy_file):
    sc = small_scenario(launch_day=LAUNCH, days=LAUNCH + 100, population__customers=1500)
    out = {}
    for name in ("none", "points", "credit"):
        cp = policy_file(name, sc)
        raw = Simulation(sc, everyone_joins(cp) if name == "points" else cp, RunOptions(seed=11)).run()
        out[name] = raw
    return sc, out


def test_the_warm_up_is_the_same_under_every_policy(warm) -> None:
    _, runs = warm
    base = runs["none"].daily
    for name, raw in runs.items():
        for key, series in raw.daily.items():
            assert np.array_equal(series[:LAUNCH], base[key][:LAUNCH], equal_nan=True), (name, key)
        assert raw.daily["members"][LAUNCH - 1] == 0
    assert runs["points"].daily["members"][LAUNCH] > 0
    assert not np.array_equal(runs["points"].daily["revenue"][LAUNCH:], base["revenue"][LAUNCH:])


def test_everyone_present_at_the_launch_may_join(warm) -> None:
    sc, runs = warm
    raw = runs["points"]
    c = raw.record.customers
    present = (c.acquired_at < LAUNCH) & (np.isnan(c.dropped_at) | (c.dropped_at >= LAUNCH))
    assert np.all(c.member[present])  # the points policy, its participation set to 1
    assert c.member[c.acquired_at >= LAUNCH].all()


def test_outcomes_are_measured_from_the_launch(warm, tmp_path) -> None:
    sc, runs = warm
    from lab.metrics.result import summarise
    res = summarise(runs["points"].record, 11, ())
    d = runs["points"].daily
    assert res.launch_day == LAUNCH
    assert res.summary["revenue"] == float(d["revenue"][LAUNCH:].sum())
    assert res.summary["purchases"] == float(d["purchases"][LAUNCH:].sum())
    assert res.summary["revenue"] < float(d["revenue"].sum())
    ts = res.timeseries
    assert list(ts["after_launch"]) == list(ts["day_start"] >= LAUNCH)
    # the launch (day 120 of 7-day periods) starts a period: the measured periods add up to the outcomes' totals
    assert LAUNCH % sc.period_days and LAUNCH in set(ts["day_start"]) and LAUNCH in set(ts["day_end"])
    measured = ts[ts["after_launch"]]
    for name in ("revenue", "purchases", "net_profit"):
        assert float(measured[name].sum()) == pytest.approx(res.summary[name], rel=1e-12, abs=1e-9), name
    write_run(res, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["launch_day"] == LAUNCH


def test_without_a_launch_nothing_says_so(small_scenario, policy_file, tmp_path) -> None:
    sc = small_scenario(population__customers=500, days=60)
    res = run_policy(sc, policy_file("points", sc), 1)
    assert res.launch_day is None and "after_launch" not in res.timeseries.columns
    write_run(res, tmp_path)
    assert "launch_day" not in json.loads((tmp_path / "summary.json").read_text())


def test_a_launch_after_the_end_is_refused(fitted) -> None:
    path = _launch_scenario(fitted, behaviour=False, days=100, extra="launch_day: 100\n")
    with pytest.raises(LabError, match="launch_day 100 must come before the end"):
        load_scenario(path, ["none"])


def _same_lives(vec, ref) -> None:
    cv, cr = vec.customers, ref.customers
    n = cv.n
    assert cr.n == n
    np.testing.assert_array_equal(cv.acquired_at[:n], cr.acquired_at[:n])
    np.testing.assert_array_equal(cv.purchases[:n], cr.purchases[:n])
    np.testing.assert_array_equal(cv.alive[:n], cr.alive[:n])
    np.testing.assert_array_equal(vec.member[:n], ref.member[:n])
    np.testing.assert_allclose(cv.dropped_at[:n], cr.dropped_at[:n], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(cv.revenue[:n], cr.revenue[:n], rtol=1e-9)
    for name, book in vec.runtime.points.items():
        np.testing.assert_allclose(book.lots[:n].sum(axis=1), ref.runtime.points[name].lots[:n].sum(axis=1), rtol=1e-9)
    for col in ("purchases", "revenue", "discounts", "members", "alive"):
        np.testing.assert_allclose(vec.daily[col], ref.daily[col], rtol=1e-9, atol=1e-9, err_msg=col)
    assert vec.record.launch_day == ref.record.launch_day


@pytest.mark.parametrize("policy", ["points", "credit"])
def test_both_engines_launch_alike_when_behaviour_is_off(policy, small_scenario, policy_file) -> None:
    """The reference engine (one process per customer) launches as the vectorised one does: with behaviour
    off, the same customers live the same lives, warm-up and launch included."""
    from lab.engine.reference import ReferenceSimulation
    sc = small_scenario(launch_day=40, days=120, behaviour__enabled=False)
    pol = policy_file(policy, sc)
    opts = RunOptions(seed=21, address=(2,))
    _same_lives(Simulation(sc, pol, opts).run(), ReferenceSimulation(sc, pol, opts, follow=()).run())


def test_both_engines_launch_alike_on_the_fitted_base(fitted, policy_file) -> None:
    from lab.engine.reference import ReferenceSimulation
    loaded = load_scenario(_launch_scenario(fitted, behaviour=False, days=60), ["points"])
    pol = loaded.policies["points"]
    opts = RunOptions(seed=4)
    _same_lives(Simulation(loaded.scenario, pol, opts).run(),
                ReferenceSimulation(loaded.scenario, pol, opts, follow=()).run())


def test_retention_after_a_launch_follows_the_customers_present(fitted) -> None:
    """12-month retention of a launched run: of the customers present at the launch (or acquired since, at
    least 365 days before the end), the share still a customer 365 days after the later of the two."""
    loaded = load_scenario(_launch_scenario(fitted, behaviour=False, days=400), ["none"])
    res = run_policy(loaded.scenario, loaded.policies["none"], 9)
    c = res.customers
    present = ~(c["dropped_at"] < 0)
    start = np.maximum(c["acquired_at"], 0.0)
    cohort = present & (start <= 400 - 365)
    survived = ~c["churned"] | (c["dropped_at"] > start + 365)
    assert cohort.sum() < len(c)  # those gone before the launch are not counted
    assert res.summary["retention_12m"] == pytest.approx(float(survived[cohort].mean()), abs=0)


def test_a_smaller_run_keeps_the_first_customers_of_the_base(fitted) -> None:
    loaded = load_scenario(_launch_scenario(fitted, behaviour=False, days=30), ["none"])
    full = Simulation(loaded.scenario, loaded.policies["none"], RunOptions(seed=2)).run()
    part = Simulation(loaded.scenario, loaded.policies["none"], RunOptions(seed=2, customers=300)).run()
    assert part.customers.n == 300
    np.testing.assert_array_equal(part.customers.lam[:300], full.customers.lam[:300])
    # behaviour off: the same lives
    np.testing.assert_array_equal(part.customers.purchases[:300], full.customers.purchases[:300])
    np.testing.assert_array_equal(part.customers.acquired_at[:300], full.customers.acquired_at[:300])


def test_a_comparison_on_the_fitted_base_says_it_launched(fitted) -> None:
    from lab.experiment.compare import CompareOptions, compare
    loaded = load_scenario(_launch_scenario(fitted, behaviour=True, days=60), ["none", "points"])
    comp = compare(loaded, CompareOptions(replications=2, days=60, flywheel_split=False, jobs=1), progress=False)
    summary = comp.summary()
    assert summary["launch_day"] == 0 and summary["customers"] == 2000
    assert set(summary["policies"]) == {"none", "points"}


def test_policies_on_the_fitted_base_run_alone_through_policy_runs(fitted) -> None:
    """An existing customer base never shares a stack: `policy_runs` (which `lab compare` and `lab batch` call)
    gives each policy's world the run alone."""
    from lab.engine.stack import policy_runs
    from tests.test_stack import assert_same

    loaded = load_scenario(_launch_scenario(fitted, behaviour=True, days=60), ["none", "points"])
    policies = [loaded.policies["none"], loaded.policies["points"]]
    worlds = [RunOptions(seed=3, address=(r,), customers=300) for r in range(2)]
    for cp, runs in zip(policies, policy_runs(loaded.scenario, policies, worlds), strict=True):
        for o, raw in zip(worlds, runs, strict=True):
            assert_same(Simulation(loaded.scenario, cp, o).run().record, raw.record, f"{cp.policy.name} {o.address}")
