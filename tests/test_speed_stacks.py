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
from lab.experiment.memory import STACK_WORLDS, bytes_per_customer
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


def test_a_resumed_comparison_groups_its_complete_worlds_and_runs_the_rest_a_policy_a_stack() -> None:
    """Worlds every policy still has to run are grouped as ever; a world some of whose runs are kept goes one
    policy a stack; every task is in one stack once, and no group holds more runs than the budget."""
    loaded = load_scenario(ROOT / "scenarios" / "classroom.yaml")
    tasks = [Task(p, k, cut) for k in range(3) for p in loaded.policies for cut in (False, True)]
    kept = {Task("points", 0, False), Task("credit", 2, True), Task("none", 2, True)}
    todo = [t for t in tasks if t not in kept]
    groups = stacks_of(loaded, todo, CompareOptions(replications=3, jobs=2))
    assert sorted(str(t) for g in groups for t in g) == sorted(str(t) for t in todo)
    partial = {(0, False), (2, True)}
    for g in groups:
        worlds = {(t.replication, t.cut) for t in g}
        if worlds & partial:
            assert worlds <= partial and len({t.policy for t in g}) == 1
        else:
            assert {t.policy for t in g} in ({"none", "performance"}, {"points", "credit"})
            assert worlds == {(k, cut) for k in range(3) for cut in (False, True)} - partial
    per_world = 2000 * max(bytes_per_customer(loaded.scenario, p) for p in loaded.policies.values())
    tight = stacks_of(loaded, todo, CompareOptions(replications=3, jobs=2, memory=per_world * 2 * 3))
    assert max(len(g) for g in tight) <= 3  # runs_held: three runs a process
    assert sorted(str(t) for g in tight for t in g) == sorted(str(t) for t in todo)
    single = stacks_of(loaded, todo, CompareOptions(replications=3, jobs=2, memory=per_world * 2))
    assert [len(g) for g in single] == [1] * len(todo)  # one run a process: every stack one run, each once
    assert sorted(str(t) for g in single for t in g) == sorted(str(t) for t in todo)


def test_a_resumed_robust_study_groups_its_complete_runs_and_runs_the_rest_a_policy_a_stack() -> None:
    """The robust study's runs (world, replication) every policy still has to make go in groups; the rest one
    policy a stack; every task once."""
    from lab.experiment import robust
    from lab.scenario.ranges import plausible_ranges

    loaded = load_scenario(ROOT / "scenarios" / "classroom.yaml")
    options = robust.RobustOptions(worlds=4, replications=2, jobs=2)
    ranges = tuple(r for r in plausible_ranges(loaded.scenario) if not r.fixed)
    design = robust.world_design(list(ranges), options, robust.design_seed(loaded.scenario.seed))
    tasks = [(p, w, k) for p in loaded.policies for w in range(4) for k in range(2)]
    todo = [t for t in tasks if t not in {("points", 1, 0), ("none", 3, 1)}]
    groups = robust._stacks(loaded, todo, design, ranges, options)
    got = sorted((p, w, k) for ps, runs in groups for p in ps for w, k, _ in runs)
    assert got == sorted(todo)
    for ps, runs in groups:
        if {(w, k) for w, k, _ in runs} & {(1, 0), (3, 1)}:
            assert len(ps) == 1
    assert any(len(ps) > 1 for ps, _ in groups)


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
