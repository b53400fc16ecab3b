"""A stack of worlds gives every world exactly the run it has alone (lab.engine.stack).

Hypothesis picks the scenario (the shipped ones, with small changes to behaviour, the store and the
market), the policy (the shipped ones), the stack's size and the worlds' seeds and addresses; every
field of every world's record -- the daily books, the customers table, the ledgers, the rules'
accounts and the transactions -- must equal the run alone bit for bit (NaN where the run alone has NaN).
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.engine.options import RunOptions
from lab.engine.record import RunRecord
from lab.engine.simulate import Simulation
from lab.engine.stack import StackedSimulation, stack_key
from lab.policy.loader import load_policy
from lab.policy.runtime import CompiledPolicy
from lab.scenario.loader import load_scenario, world_of
from lab.scenario.model import Scenario
from tests.conftest import with_changes

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("classroom", "cafe", "apparel", "grocer")
POLICIES = ("none", "points", "tiered_points", "credit", "hybrid", "performance")
SETTINGS: dict[str, Any] = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@cache
def shipped(name: str) -> Scenario:
    return load_scenario(ROOT / "scenarios" / f"{name}.yaml").scenario


def assert_same(a: Any, b: Any, where: str) -> None:
    """Equal bit for bit, field by field (arrays with NaN where NaN), naming the first field that differs."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict) or hasattr(a, "keys"):
        assert list(a.keys()) == list(b.keys()), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        nan = a.dtype.kind == "f"
        assert np.array_equal(a, b, equal_nan=nan), where
    elif isinstance(a, float) and a != a:
        assert b != b, where
    else:
        assert a == b, where


def alone_and_stacked(sc: Scenario, cp: CompiledPolicy, worlds: list[RunOptions]) -> None:
    alone = [Simulation(sc, cp, o).run().record for o in worlds]
    stacked = [r.record for r in StackedSimulation(sc, cp, worlds).runs()]
    assert len(stacked) == len(worlds)
    for k, (a, b) in enumerate(zip(alone, stacked, strict=True)):
        assert isinstance(b, RunRecord)
        assert_same(a, b, f"world {k}")


@st.composite
def stacks(draw: st.DrawFn) -> tuple[Scenario, CompiledPolicy, list[RunOptions]]:
    base = shipped(draw(st.sampled_from(SCENARIOS)))
    changes: dict[str, Any] = {"population__customers": draw(st.integers(50, 250)), "days": draw(st.integers(60, 160)),
                               # the shipped stores' warm-up shortened to fit (with their wear-out): or a day-0 cohort
                               "launch_day": draw(st.sampled_from([0, 40])),
                               "population__arrival_days": draw(st.sampled_from([0, 40]))}
    if draw(st.booleans()):
        changes["behaviour__enabled"] = draw(st.booleans())
        changes["store__seasonality"] = draw(st.sampled_from([0.0, 0.2]))
        changes["market__competitor_pull"] = draw(st.sampled_from([0.0, 0.01]))
        changes["flywheel"] = draw(st.booleans())
    sc = with_changes(base, **changes)
    cp = load_policy(ROOT / "policies" / f"{draw(st.sampled_from(POLICIES))}.yaml", world_of(sc))
    k = draw(st.integers(1, 4))
    seeds = draw(st.lists(st.integers(0, 2**31), min_size=k, max_size=k))
    addresses = draw(st.lists(st.tuples(st.integers(0, 50)), min_size=k, max_size=k))
    tx = draw(st.booleans())
    return sc, cp, [RunOptions(seed=s, address=a, transactions=tx) for s, a in zip(seeds, addresses, strict=True)]


@settings(max_examples=14, **SETTINGS)
@given(stacks())
def test_a_stacked_world_is_its_run_alone(case: tuple[Scenario, CompiledPolicy, list[RunOptions]]) -> None:
    alone_and_stacked(*case)


def test_growth_and_warm_up(small_scenario) -> None:
    """Worlds that outgrow their rows (marketing brings many customers) and a programme launched after a warm-up."""
    sc = small_scenario(population__customers=60, days=150, launch_day=40,
                        store__marketing__budget_per_year=60000.0, store__marketing__cost_per_acquisition=10.0)
    cp = load_policy(ROOT / "policies" / "hybrid.yaml", world_of(sc))
    alone_and_stacked(sc, cp, [RunOptions(seed=3, address=(i,), transactions=True) for i in range(3)])


def test_a_stack_refuses_runs_that_cannot_share(small_scenario) -> None:
    sc = small_scenario()
    cp = load_policy(ROOT / "policies" / "points.yaml", world_of(sc))
    one, other = RunOptions(seed=1, days=60), RunOptions(seed=1, days=90)
    assert stack_key(sc, cp, one) != stack_key(sc, cp, other)
    with pytest.raises(ValueError):
        StackedSimulation(sc, cp, [one, other])


def test_run_stacked_gives_run_policy_in_order(small_scenario) -> None:
    """The Python API: runs of two policies, grouped into stacks, come back in order, each as run alone."""
    from lab.experiment.run import run_policy, run_stacked

    sc = small_scenario(population__customers=80, days=70)
    runs = [(sc, load_policy(ROOT / "policies" / f"{p}.yaml", world_of(sc)), RunOptions(seed=5, address=(k,)))
            for p in ("none", "points") for k in range(3)]
    got = list(run_stacked(runs, stack_size=2))
    assert len(got) == len(runs)
    for (s, cp, o), r in zip(runs, got, strict=True):
        want = run_policy(s, cp, o.seed, address=o.address)
        assert r.policy == want.policy and r.address == want.address
        assert_same(r.summary, want.summary, "summary")
        assert r.customers.equals(want.customers) and r.timeseries.equals(want.timeseries)


def test_run_policies_gives_each_world_its_run_alone_tables_included(small_scenario) -> None:
    """The policies' stacks of the same worlds, summarised a stack at a time (their period tables from one
    grouping): each world's result, summary and tables, is that world's run alone, in order."""
    from lab.experiment.run import run_policies, run_policy

    sc = small_scenario(population__customers=80, days=70, launch_day=21)
    policies = [load_policy(ROOT / "policies" / f"{p}.yaml", world_of(sc)) for p in ("none", "points")]
    worlds = [RunOptions(seed=5, address=(k,)) for k in range(3)]
    got = run_policies([sc] * len(worlds), policies, worlds)
    assert [len(g) for g in got] == [3, 3]
    for cp, results in zip(policies, got, strict=True):
        for o, r in zip(worlds, results, strict=True):
            want = run_policy(sc, cp, o.seed, address=o.address)
            assert r.policy == want.policy and r.address == want.address
            assert_same(r.summary, want.summary, "summary")
            assert r.customers.equals(want.customers)
            pd.testing.assert_frame_equal(r.timeseries, want.timeseries, check_exact=True)


@pytest.mark.parametrize("launch_day", [0, 30])
def test_self_selection_in_a_stack(small_scenario, launch_day: int) -> None:
    """Joining that tilts by rate and basket (at arrival and at a launch) is drawn per world as alone."""
    sc = small_scenario(population__customers=120, days=100, launch_day=launch_day,
                        behaviour__enrol_rate_tilt=1.0, behaviour__enrol_spend_tilt=0.5)
    cp = load_policy(ROOT / "policies" / "points.yaml", world_of(sc))
    cp = dataclasses.replace(cp, policy=dataclasses.replace(cp.policy, participation=0.5))
    alone_and_stacked(sc, cp, [RunOptions(seed=5, address=(i,), transactions=True) for i in range(3)])
