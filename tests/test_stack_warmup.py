"""Policies that share their worlds share the warm-up (lab.engine.stack.policy_runs), and no bit moves.

Before the launch no policy runs its programme, so the days before it are simulated once and each policy's
stack continues from a copy. Hypothesis picks the scenario (the shipped ones, shortened, with small changes),
the policies (several, repeats allowed, in any order), the worlds (their seeds, addresses and whether each
world's flywheel is whole); every field of every world's record must equal the same policy's stack made on its
own, which tests/test_stack.py holds equal to the run alone.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.engine.options import RunOptions
from lab.engine.simulate import Simulation
from lab.engine.stack import StackedSimulation, policy_runs
from lab.policy.loader import load_policy
from lab.policy.runtime import CompiledPolicy
from lab.scenario.loader import world_of
from lab.scenario.model import Scenario
from tests.conftest import with_changes
from tests.test_stack import POLICIES, ROOT, SCENARIOS, SETTINGS, assert_same, shipped

Case = tuple[list[Scenario], list[CompiledPolicy], list[RunOptions]]


@st.composite
def shared_worlds(draw: st.DrawFn) -> Case:
    base = shipped(draw(st.sampled_from(SCENARIOS)))
    changes: dict[str, Any] = {"population__customers": draw(st.integers(50, 200)), "days": draw(st.integers(50, 120)),
                               "launch_day": draw(st.sampled_from([0, 1, 30, 45])),
                               "population__arrival_days": draw(st.sampled_from([0, 20]))}
    if draw(st.booleans()):
        changes["behaviour__enabled"] = draw(st.booleans())
        changes["market__competitor_pull"] = draw(st.sampled_from([0.0, 0.01]))
    sc = with_changes(base, **changes)
    names = draw(st.lists(st.sampled_from(POLICIES), min_size=2, max_size=4))
    compiled = {n: load_policy(ROOT / "policies" / f"{n}.yaml", world_of(sc)) for n in set(names)}
    k = draw(st.integers(1, 3))
    seeds = draw(st.lists(st.integers(0, 2**31), min_size=k, max_size=k))
    cut = draw(st.lists(st.booleans(), min_size=k, max_size=k))
    tx = draw(st.booleans())
    scenarios = [with_changes(sc, flywheel=False) if c else sc for c in cut]
    worlds = [RunOptions(seed=s, address=(j,), transactions=tx) for j, s in enumerate(seeds)]
    return scenarios, [compiled[n] for n in names], worlds


@settings(max_examples=12, **SETTINGS)
@given(shared_worlds())
def test_a_shared_warm_up_gives_each_policy_its_own_stack(case: Case) -> None:
    scenarios, policies, worlds = case
    together = policy_runs(scenarios, policies, worlds)
    assert len(together) == len(policies)
    for j, (cp, runs) in enumerate(zip(policies, together, strict=True)):
        apart = StackedSimulation(scenarios, cp, worlds).runs()
        assert len(runs) == len(worlds)
        for w, (a, b) in enumerate(zip(apart, runs, strict=True)):
            assert b.record.policy == cp.policy.name
            assert_same(a.record, b.record, f"policy {j} ({cp.policy.name}), world {w}")


def test_the_copies_match_the_runs_alone(small_scenario) -> None:
    """One fixed case against Simulation directly: a launch after day 0, two programmes after the first."""
    sc = small_scenario(launch_day=30, days=90)
    policies = [load_policy(ROOT / "policies" / f"{n}.yaml", world_of(sc)) for n in ("none", "points", "credit")]
    worlds = [RunOptions(seed=11, address=(r,), transactions=True) for r in range(2)]
    for cp, runs in zip(policies, policy_runs(sc, policies, worlds), strict=True):
        for o, raw in zip(worlds, runs, strict=True):
            assert_same(Simulation(sc, cp, o).run().record, raw.record, f"{cp.policy.name} {o.address}")


def test_no_policies_no_runs(small_scenario) -> None:
    assert policy_runs(small_scenario(), [], [RunOptions(seed=1)]) == []
