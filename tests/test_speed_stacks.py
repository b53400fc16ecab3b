"""What the speed work changed keeps every bit: a stack that mixes worlds with the flywheel whole and cut gives
each world its run alone, and a comparison's runs of one policy go in one stack, whole and cut together, the
policies split among the processes before the worlds are."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.engine.options import RunOptions
from lab.engine.simulate import Simulation
from lab.engine.stack import StackedSimulation, stack_key
from lab.experiment.compare import CompareOptions, Task, stacks_of
from lab.experiment.grouping import policy_weight, stack_shape
from lab.experiment.memory import STACK_WORLDS
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


def test_a_comparison_splits_its_policies_among_the_processes_each_with_every_world() -> None:
    """With two processes and four policies, each process gets one stack-group of every world (whole and cut)
    and two policies, the policies paired so their weights (one plus their rules) balance: no programme with
    performance's three rules, points' two with credit's one. The stacks cover the tasks once, heaviest first."""
    loaded = load_scenario(ROOT / "scenarios" / "classroom.yaml")
    tasks = [Task(p, k, cut) for k in range(3) for p in loaded.policies for cut in (False, True)]
    groups = stacks_of(loaded, tasks, CompareOptions(replications=3, jobs=2))
    assert sorted(str(t) for g in groups for t in g) == sorted(str(t) for t in tasks)
    assert [{t.policy for t in g} for g in groups] == [{"none", "performance"}, {"points", "credit"}]
    for g in groups:
        assert {(t.replication, t.cut) for t in g} == {(k, cut) for k in range(3) for cut in (False, True)}
    assert [policy_weight(loaded.policies[p]) for p in loaded.policies] == [1, 3, 2, 4]
    one = stacks_of(loaded, tasks, CompareOptions(replications=3, jobs=1))
    assert len(one) == 1 and sorted(map(str, one[0])) == sorted(map(str, tasks))


def _groups(worlds: int, policies: int, shape: tuple[int, int]) -> int:
    return -(-worlds // shape[0]) * -(-policies // shape[1])


@settings(max_examples=300, deadline=None)
@given(worlds=st.integers(1, 200), policies=st.integers(1, 6), held=st.none() | st.integers(1, 500),
       jobs=st.integers(1, 16))
def test_stack_shape_takes_the_fewest_world_parts_then_the_most_policies_that_keep_the_processes_busy(
        worlds: int, policies: int, held: int | None, jobs: int) -> None:
    """Among the shapes within the bounds (at most STACK_WORLDS worlds and `held` runs a group) that give every
    process a group, the chosen one splits the worlds into the fewest parts, then the policies into the fewest
    groups; with no such shape (fewer runs than processes), every run is a group of its own."""
    per_w, per_p = stack_shape(worlds, policies, held, jobs)
    assert 1 <= per_w <= min(worlds, STACK_WORLDS) and 1 <= per_p <= policies
    assert held is None or per_w * per_p <= held
    valid = [(-(-worlds // w), -p) for w in range(1, min(worlds, STACK_WORLDS) + 1) for p in range(1, policies + 1)
             if (held is None or w * p <= held) and _groups(worlds, policies, (w, p)) >= jobs]
    if valid:
        assert (-(-worlds // per_w), -per_p) == min(valid)
        assert _groups(worlds, policies, (per_w, per_p)) >= jobs
    else:
        assert (per_w, per_p) == (1, 1)
