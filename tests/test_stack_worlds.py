"""Worlds whose scenarios differ in parameter values share a stack, each world still its run alone.

Hypothesis picks a shipped scenario and policy, a set of plausible ranges (lab.scenario.ranges.TABLE,
segment multipliers among them) and, for each world of the stack, its own values in them; every field
of every world's record must equal its run alone bit for bit. Then: runs of mixed structures through
`run_stacked`, the compatibility rule (`stack_key`) itself, and the robust comparison run in stacks
against the same worlds run one by one.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lab.engine.options import RunOptions
from lab.engine.simulate import Simulation
from lab.engine.stack import PER_WORLD, StackedSimulation, stack_key, stack_structure
from lab.experiment.run import run_policy, run_stacked
from lab.policy.loader import load_policy
from lab.policy.runtime import CompiledPolicy
from lab.scenario.loader import load_scenario, world_of
from lab.scenario.model import Scenario
from lab.scenario.ranges import SEGMENT_PREFIX, TABLE, apply
from tests.conftest import day0, day0_loaded, with_changes
from tests.test_stack import POLICIES, ROOT, SCENARIOS, SETTINGS, assert_same, shipped

# every path of the plausible ranges is a parameter a stack may hold per world
PATHS = [r.path for r in TABLE]


def _per_world(path: str) -> bool:
    head, _, name = path.rpartition(".")
    return name in PER_WORLD.get("population.segments.*" if path.startswith(SEGMENT_PREFIX) else head, ())


def test_every_plausible_range_is_a_per_world_parameter() -> None:
    assert [p for p in PATHS if not _per_world(p)] == []


@st.composite
def small_scenarios(draw: st.DrawFn) -> Scenario:
    base = shipped(draw(st.sampled_from(SCENARIOS)))
    return with_changes(base, population__customers=draw(st.integers(60, 220)), days=draw(st.integers(60, 120)),
                        launch_day=draw(st.sampled_from([0, 30])),
                        population__arrival_days=draw(st.sampled_from([0, 30])))


def _world(base: Scenario, picks: list[int], u: list[float]) -> Scenario:
    """The scenario with the picked ranges set at quantiles u of their distributions."""
    ranges = [TABLE[j] for j in picks]
    return apply(base, ranges, [float(r.ppf(q)) for r, q in zip(ranges, u, strict=True)])


@st.composite
def stacks_of_worlds(draw: st.DrawFn) -> tuple[list[Scenario], CompiledPolicy, list[RunOptions]]:
    base = draw(small_scenarios())
    cp = load_policy(ROOT / "policies" / f"{draw(st.sampled_from(POLICIES))}.yaml", world_of(base))
    # several paths at once, at least one segment multiplier among them
    segment = draw(st.sampled_from([j for j, r in enumerate(TABLE) if r.multiplier]))
    picks = sorted({segment, *draw(st.sets(st.integers(0, len(TABLE) - 1), min_size=2, max_size=12))})
    k = draw(st.integers(2, 4))
    quantile = st.floats(0.02, 0.98)  # inside the ranges: every world's values have the same signs
    scenarios = [_world(base, picks, draw(st.lists(quantile, min_size=len(picks), max_size=len(picks))))
                 for _ in range(k)]
    seeds = draw(st.lists(st.integers(0, 2**31), min_size=k, max_size=k))
    tx = draw(st.booleans())
    worlds = [RunOptions(seed=s, address=(w,), transactions=tx) for w, s in enumerate(seeds)]
    return scenarios, cp, worlds


@settings(max_examples=12, **SETTINGS)
@given(stacks_of_worlds())
def test_worlds_of_different_values_are_each_their_run_alone(
        case: tuple[list[Scenario], CompiledPolicy, list[RunOptions]]) -> None:
    scenarios, cp, worlds = case
    assume(len({stack_key(sc, cp, o) for sc, o in zip(scenarios, worlds, strict=True)}) == 1)
    alone = [Simulation(sc, cp, o).run().record for sc, o in zip(scenarios, worlds, strict=True)]
    stacked = [r.record for r in StackedSimulation(scenarios, cp, worlds).runs()]
    for w, (a, b) in enumerate(zip(alone, stacked, strict=True)):
        assert_same(a, b, f"world {w}")


@st.composite
def mixed_runs(draw: st.DrawFn) -> tuple[list[tuple[Scenario, CompiledPolicy, RunOptions]], int]:
    """Runs of one or two policies in worlds of several structures: as written, at a range's end (0 where the
    scenario has a positive value), and inside the ranges."""
    base = draw(small_scenarios())
    policies = [load_policy(ROOT / "policies" / f"{p}.yaml", world_of(base))
                for p in draw(st.lists(st.sampled_from(POLICIES), min_size=1, max_size=2, unique=True))]
    picks = sorted(draw(st.sets(st.integers(0, len(TABLE) - 1), min_size=3, max_size=8)))
    n = draw(st.integers(3, 6))
    quantiles = st.lists(st.sampled_from([0.0, 0.3, 0.7, 1.0]) | st.floats(0.0, 1.0), min_size=len(picks),
                         max_size=len(picks))
    scenarios = [base if draw(st.booleans()) else _world(base, picks, draw(quantiles)) for _ in range(n)]
    runs = [(sc, cp, RunOptions(seed=7, address=(w,), transactions=True)) for cp in policies
            for w, sc in enumerate(scenarios)]
    return runs, draw(st.integers(1, 4))


@settings(max_examples=6, **SETTINGS)
@given(mixed_runs())
def test_run_stacked_gives_each_world_its_run_alone(case: tuple[list, int]) -> None:
    runs, size = case
    got = list(run_stacked(runs, stack_size=size))
    assert len(got) == len(runs)
    for (sc, cp, o), r in zip(runs, got, strict=True):
        want = run_policy(sc, cp, o.seed, address=o.address, transactions=True)
        assert r.policy == want.policy and r.address == want.address
        assert_same(r.summary, want.summary, "summary")
        assert r.customers.equals(want.customers) and r.timeseries.equals(want.timeseries)
        assert r.transactions is not None and r.transactions.equals(want.transactions)


# --------------------------------------------------------------------------- the rule
def _classroom() -> Scenario:
    return day0(shipped("classroom"))  # the short horizons below are a day-0 cohort's


@cache
def _points() -> CompiledPolicy:
    return load_policy(ROOT / "policies" / "points.yaml", world_of(_classroom()))


def _key(sc: Scenario, cp: CompiledPolicy | None = None) -> tuple:
    return stack_key(sc, cp or _points(), RunOptions(seed=1))


@pytest.mark.parametrize("changes", [
    {"behaviour__goal_gradient": 0.47, "behaviour__habituation": 3.0, "market__competitor_pull": 0.0},
    {"store__staff__bonus_effect": 0.21, "store__learning_rate": 0.93, "store__prior_volume_days": 900.0},
    {"market__spend_per_year": 7e6, "behaviour__goal_gradient_power": 2.0},
])
def test_values_are_not_structure(changes: dict[str, Any]) -> None:
    sc = _classroom()
    assert _key(with_changes(sc, **changes)) == _key(sc)


def test_segment_multipliers_are_not_structure() -> None:
    sc = _classroom()
    ranges = [r for r in TABLE if r.multiplier]
    assert _key(apply(sc, ranges, [1.3] * len(ranges))) == _key(sc)


@pytest.mark.parametrize("changes", [
    {"days": 200},  # the horizon
    {"behaviour__wear_out": 1.0},  # a branch: positive where the scenario's is zero
    {"behaviour__points_hope": 0.0},  # ... and zero where it is positive
    {"behaviour__enabled": False},
    {"store__seasonality": 0.35},  # read by the shared calendar, not per world
    {"store__service_quality": 0.6},
    {"store__staff__count": 4},
    {"behaviour__goal_gradient_power": 2.5},  # numpy's x ** 2.0 is x * x, not the general power
])
def test_structure_keeps_runs_apart(changes: dict[str, Any]) -> None:
    sc = _classroom()
    assert sc.behaviour.wear_out == 0 < sc.behaviour.points_hope and sc.behaviour.goal_gradient_power == 2.0
    assert _key(with_changes(sc, **changes)) != _key(sc)


def test_general_powers_share_a_structure_and_the_policy_must_be_one_object() -> None:
    sc = _classroom()
    assert (stack_structure(with_changes(sc, behaviour__goal_gradient_power=2.5))
            == stack_structure(with_changes(sc, behaviour__goal_gradient_power=3.7)))
    cp = load_policy(ROOT / "policies" / "points.yaml", world_of(sc))
    again = load_policy(ROOT / "policies" / "points.yaml", world_of(sc))
    assert _key(sc, cp) != _key(sc, again)


def test_a_stack_refuses_worlds_of_different_structure() -> None:
    sc = with_changes(_classroom(), population__customers=60, days=40)
    cp = load_policy(ROOT / "policies" / "points.yaml", world_of(sc))
    other = with_changes(sc, behaviour__wear_out=1.0)
    with pytest.raises(ValueError, match="cannot share a stack"):
        StackedSimulation([sc, other], cp, [RunOptions(seed=1, address=(0,)), RunOptions(seed=1, address=(1,))])


# --------------------------------------------------------------------------- the robust comparison in stacks
@pytest.mark.parametrize("method, worlds", [("lhs", 4), ("morris", 2)])
def test_robust_in_stacks_is_the_worlds_run_one_by_one(method: str, worlds: int) -> None:
    from lab.experiment.robust import RobustOptions, robust_compare

    path = ROOT / ("scenarios/classroom.yaml" if method == "lhs" else "tests/data/robust_known.yaml")
    loaded = day0_loaded(load_scenario(path))
    opts = RobustOptions(worlds=worlds, replications=2, method=method, customers=100, days=60, seed=3)  # type: ignore[arg-type]
    study = robust_compare(loaded, opts, progress=False)
    shared = method == "morris"  # a Morris design's worlds share their customers
    for i, p in enumerate(study.policies):
        for w, row in enumerate(study.design):
            sc = apply(loaded.scenario, study.ranges, [float(v) for v in row])
            for k in range(opts.replications):
                res = run_policy(sc, loaded.policies[p], study.seed, address=(0, k) if shared else (w, k),
                                 customers=100, days=60)
                for name, arr in study.values.items():
                    v = res.summary.get(name)
                    want = np.nan if v is None else float(v)
                    assert arr[i, w, k] == want or (want != want and arr[i, w, k] != arr[i, w, k]), (p, w, k, name)


def test_robust_stacks_follow_the_memory_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A memory budget for one world's customers makes stacks of one run, and groups of one policy; the results
    are the same."""
    from lab.experiment import robust
    from lab.experiment.memory import bytes_per_customer

    loaded = day0_loaded(load_scenario(ROOT / "scenarios" / "classroom.yaml"))
    sizes: list[int] = []
    real = robust._run_stack

    def counted(loaded: Any, policies: list[str], runs: list, *args: Any) -> list:
        sizes.append(len(runs))
        return real(loaded, policies, runs, *args)

    monkeypatch.setattr(robust, "_run_stack", counted)
    per = 80 * max(bytes_per_customer(loaded.scenario, p) for p in loaded.policies.values())
    base = dict(worlds=3, replications=1, customers=80, days=40, seed=2)
    tight = robust.robust_compare(loaded, robust.RobustOptions(memory=per, **base), progress=False)  # type: ignore[arg-type]
    assert set(sizes) == {1}
    sizes.clear()
    roomy = robust.robust_compare(loaded, robust.RobustOptions(**base), progress=False)  # type: ignore[arg-type]
    assert sizes == [3]  # every policy's three worlds in one group (one process: one group), a stack a policy
    for name in tight.values:
        assert np.array_equal(tight.values[name], roomy.values[name], equal_nan=True)
    assert dataclasses.asdict(tight.options) != dataclasses.asdict(roomy.options)
