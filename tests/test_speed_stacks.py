"""What the speed work changed keeps every bit: a stack that mixes worlds with the flywheel whole and cut gives
each world its run alone, and a comparison's runs of one policy go in one stack, whole and cut together."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.engine.options import RunOptions
from lab.engine.simulate import Simulation
from lab.engine.stack import StackedSimulation, stack_key
from lab.experiment.compare import CompareOptions, Task, stacks_of
from lab.policy.loader import load_policy
from lab.scenario.loader import load_scenario, world_of
from tests.conftest import with_changes
from tests.test_stack import SETTINGS, assert_same, shipped

ROOT = Path(__file__).resolve().parents[1]


@settings(max_examples=6, **SETTINGS)
@given(scenario=st.sampled_from(("classroom", "cafe", "apparel")),
       policy=st.sampled_from(("none", "points", "credit", "performance")),
       cuts=st.lists(st.booleans(), min_size=2, max_size=4).filter(lambda c: len(set(c)) == 2),
       seed=st.integers(0, 2**31))
def test_worlds_whole_and_cut_share_a_stack_bit_for_bit(scenario: str, policy: str, cuts: list[bool],
                                                        seed: int) -> None:
    """The flywheel switch is a world's own: a stack of worlds whole and cut gives each its run alone."""
    base = with_changes(shipped(scenario), population__customers=120, days=120, launch_day=0,
                        population__arrival_days=0)
    cp = load_policy(ROOT / "policies" / f"{policy}.yaml", world_of(base))
    scenarios = [dataclasses.replace(base, flywheel=not cut) for cut in cuts]
    worlds = [RunOptions(seed=seed, address=(k,)) for k in range(len(cuts))]
    assert len({stack_key(sc, cp, o) for sc, o in zip(scenarios, worlds)}) == 1
    stacked = [r.record for r in StackedSimulation(scenarios, cp, worlds).runs()]
    for k, (sc, o) in enumerate(zip(scenarios, worlds, strict=True)):
        assert_same(Simulation(sc, cp, o).run().record, stacked[k], f"world {k} (flywheel {sc.flywheel})")


def test_a_comparison_stacks_every_policy_of_its_worlds_whole_and_cut_together() -> None:
    """Every policy of a world goes in one stack (their warm-up is shared); the stacks cover the tasks once."""
    loaded = load_scenario(ROOT / "scenarios" / "classroom.yaml")
    tasks = [Task(p, k, cut) for k in range(3) for p in loaded.policies for cut in (False, True)]
    groups = stacks_of(loaded, tasks, CompareOptions(replications=3, jobs=2))
    assert sorted(str(t) for g in groups for t in g) == sorted(str(t) for t in tasks)
    assert len(groups) == 2  # one per process
    for g in groups:
        worlds = {(t.replication, t.cut) for t in g}
        assert {t.policy for t in g} == set(loaded.policies)
        assert len(g) == len(worlds) * len(loaded.policies)
