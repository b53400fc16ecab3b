"""A batch stacks the tasks of different design points: the dataset is the same whatever the stacking.

Design points whose scenarios differ only in the values of parameters the engine holds per world (segment
parameters, behaviour, store economics: lab.engine.stack.PER_WORLD) share stacks; a factor on a policy makes
variants, each compiled once. Every (point, replication, policy) must be bit-identical to the run alone
(`lab.experiment.run.run_policy` of the point's scenario and policy), whatever the stack compositions and sizes,
the processes, the executor and a kill -9 with --resume.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.batch import load_spec, read_dataset, run_batch
from lab.batch import tasks as batch_tasks
from lab.batch.tasks import PointResult, Stack, apply_point, run_stack, stacks_of
from lab.experiment.memory import bytes_per_customer
from lab.experiment.run import run_policy
from lab.metrics.outcomes import OUTCOMES
from lab.scenario.loader import compile_sources
from tests.conftest import CLASSROOM_DAY0
from tests.test_batch import assert_same_dataset
from tests.test_batch_stack import kill_9_after_the_first_chunk_then_resume

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = CLASSROOM_DAY0  # a day-0 cohort: the specs run a few weeks, the shipped store launches on day 365

#: Scenario parameters a batch may vary (per-world ones: segment, behaviour, store economics), with levels to
#: draw from; a 0 among positive levels gives that point a structure of its own.
SCENARIO_FACTORS = {
    "sens": ("population.segments.bargain_hunters.reward_sensitivity", (0.0, 0.5, 1.5, 3.0)),
    "regsens": ("population.segments.regulars.reward_sensitivity", (0.0, 0.8, 2.0)),
    "gg": ("behaviour.goal_gradient", (0.0, 0.2, 0.6)),
    "power": ("behaviour.goal_gradient_power", (1.0, 1.5, 2.5)),
    "wear": ("behaviour.wear_out", (0.0, 0.3)),
    "fixed": ("store.fixed_cost_per_year", (10000.0, 25000.0)),
    "learn": ("store.learning_rate", (0.9, 1.0)),
    "wage": ("store.staff.wage_per_year", (20000.0, 28000.0)),
    "appetite": ("population.segments.regulars.credit_appetite", (0.0, 0.3, 0.7)),
    "risk": ("population.segments.bargain_hunters.default_risk", (0.01, 0.1)),
    "referral": ("population.segments.regulars.referral_propensity", (0.0, 0.05)),
}
EARN = "policies.points.rules.earn.do.0.award.amount"


def spec_text(factors: dict[str, tuple[str, tuple[float, ...]]], earn: tuple[float, ...], replications: int,
              streams: str, customers: int = 60, days: int = 28, policies: tuple[str, ...] = ("none", "points")) -> str:
    lines = [f"name: cross\nscenario: {CLASSROOM}\ncustomers: {customers}\ndays: {days}\n"
             f"policies: [{', '.join(policies)}]",
             f"replications: {replications}\nseed: 5\nstreams: {streams}\ndesign: grid\nfactors:"]
    for name, (path, levels) in factors.items():
        lines.append(f"  {name}:\n    path: {path}\n    levels: [{', '.join(repr(v) for v in levels)}]")
    if earn:
        lines.append(f"  earn:\n    path: {EARN}\n    template: \"floor(purchase.amount * {{value}})\"\n"
                     f"    levels: [{', '.join(repr(v) for v in earn)}]")
    if not factors and not earn:
        lines[-1] = lines[-1].replace("factors:", "factors: {}")
    return "\n".join(lines) + "\n"


@st.composite
def designs(draw: st.DrawFn) -> tuple[str, list[tuple[int, int]], list[int]]:
    """A factor design (scenario factors, maybe a factor on the points policy) over some of the classroom's
    policies, its tasks, and a random split into stacks."""
    policies = ("none", *draw(st.lists(st.sampled_from(("points", "credit", "performance")), min_size=1,
                                       max_size=2, unique=True)))
    names = draw(st.lists(st.sampled_from(sorted(SCENARIO_FACTORS)), min_size=1, max_size=2, unique=True))
    factors = {}
    for n in names:
        path, pool = SCENARIO_FACTORS[n]
        factors[n] = (path, tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))))
    earn = (tuple(draw(st.lists(st.sampled_from((0.5, 1.0, 2.0)), min_size=0, max_size=2, unique=True)))
            if "points" in policies else ())
    points = int(np.prod([len(v) for _, v in factors.values()])) * max(1, len(earn))
    reps = draw(st.integers(1, 2 if points <= 4 else 1))
    streams = draw(st.sampled_from(["shared", "independent"]))
    tasks = [(p, r) for p in range(points) for r in range(reps)]
    order = draw(st.permutations(tasks))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(tasks) - 1)), max_size=len(tasks) - 1)))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, len(tasks)]) if b > a]
    return spec_text(factors, earn, reps, streams, policies=policies), list(order), sizes


def _pack(tasks: list[tuple[int, int]]) -> Stack:
    by_point: dict[int, list[int]] = {}
    for p, r in tasks:
        by_point.setdefault(p, []).append(r)
    return tuple((p, tuple(rs)) for p, rs in by_point.items())


def _alone(batch, point: int, rep: int) -> dict[str, np.ndarray]:
    """Every policy's outcomes at (point, replication), each run alone by the plain engine."""
    loaded = compile_sources(batch.source, lambda sc, pols: apply_point(batch, batch.points[point]))
    out = {}
    for name in batch.policy_names:
        res = run_policy(loaded.scenario, loaded.policies[name], batch.seed, address=batch.address(point, rep),
                         customers=batch.customers, days=batch.days)
        out[name] = np.array([res.summary[k] for k in OUTCOMES], dtype=np.float64)
        out[name + "/series"] = res.timeseries[list(batch_tasks.SERIES)].to_numpy(np.float64)
    return out


def _check_against_alone(batch, results: list[PointResult], charged: set[tuple[int, int, str]] = frozenset()) -> None:
    """Every record equals its run alone (but the `charged` ones: (point, replication, policy) that failed)."""
    for res in results:
        alone = _alone(batch, res.point, res.replication)
        assert [r.policy for r in res.records] == list(batch.policy_names)
        for rec in res.records:
            if (res.point, res.replication, rec.policy) in charged:
                continue
            assert rec.error is None, rec.error
            assert rec.outcomes is not None and rec.series is not None
            where = f"point {res.point} replication {res.replication} policy {rec.policy}"
            assert np.array_equal(rec.outcomes, alone[rec.policy], equal_nan=True), where
            assert np.array_equal(rec.series, alone[rec.policy + "/series"], equal_nan=True), where


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(designs())
def test_every_run_of_a_stack_of_design_points_is_the_run_alone(tmp_path_factory, drawn) -> None:
    text, order, sizes = drawn
    path = tmp_path_factory.mktemp("cross") / "spec.yaml"
    path.write_text(text)
    batch = load_spec(path)
    stacks, at = [], 0
    for n in sizes:  # any composition: points of different structures and variants may be drawn together
        stacks.append(_pack(order[at:at + n]))
        at += n
    values = {p: batch.points[p] for p in range(len(batch.points))}
    results = [res for s in stacks for res in run_stack(batch, s, values)]
    assert sorted((r.point, r.replication) for r in results) == sorted(order)
    _check_against_alone(batch, results)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(designs(), st.integers(1, 3), st.sampled_from([None, 1, 200_000, 2_000_000]))
def test_the_stacks_the_driver_makes_hold_every_task_once_and_give_the_runs_alone(tmp_path_factory, drawn, jobs,
                                                                                   memory) -> None:
    text, order, _ = drawn
    path = tmp_path_factory.mktemp("cross") / "spec.yaml"
    path.write_text(text)
    batch = load_spec(path)
    stacks = stacks_of(batch, sorted(order), jobs, memory)
    held = [(p, r) for s in stacks for p, reps in s for r in reps]
    assert sorted(held) == sorted(order) and len(set(held)) == len(held)
    for s in stacks:  # a stack holds points of one scenario structure
        structures = {batch_tasks.stack_structure(apply_point(batch, batch.points[p])[0]) for p, _ in s}
        assert len(structures) == 1
    values = {p: batch.points[p] for p in range(len(batch.points))}
    _check_against_alone(batch, [res for s in stacks for res in run_stack(batch, s, values)])


# --------------------------------------------------------------------------- one batch, stacked across points
CROSS = spec_text({"sens": ("population.segments.bargain_hunters.reward_sensitivity", (0.5, 1.5, 2.5)),
                   "gg": ("behaviour.goal_gradient", (0.0, 0.4))}, (1.0, 2.0), 2, "shared", customers=120, days=40)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cross") / "spec.yaml"
    path.write_text(CROSS)
    return path


@pytest.fixture(scope="module")
def alone(spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The batch with every task alone: a budget of one byte leaves one world per stack."""
    out = tmp_path_factory.mktemp("alone") / "store"
    res = run_batch(spec, out, jobs=1, memory=1, stream=open(os.devnull, "w"))
    assert res.completed == res.total == 12 * 2 * 2 and res.failed == 0
    return out


def test_points_of_one_structure_share_stacks_and_a_zero_makes_a_structure_of_its_own(spec: Path) -> None:
    batch = load_spec(spec)
    tasks = [(p, r) for p in range(12) for r in range(2)]
    stacks = stacks_of(batch, tasks, jobs=1)
    gg = [{batch.points[p]["gg"] for p, _ in s} for s in stacks]
    assert gg == [{0.0}, {0.4}]  # grid order: sens, then gg, then earn; goal_gradient 0 is structure
    assert [len({p for p, _ in s}) for s in stacks] == [6, 6]
    assert [sum(len(reps) for _, reps in s) for s in stacks] == [12, 12]


def test_each_policy_variant_compiles_once_per_stack(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = load_spec(spec)
    compiled: list[str] = []
    real = batch_tasks.compile_sources

    def counted(source, override=None, **kw):
        loaded = real(source, override, **kw)
        compiled.extend(loaded.policies)
        return loaded

    stack = stacks_of(batch, [(p, 0) for p in range(12)], jobs=1)[0]
    assert len(stack) == 6
    monkeypatch.setattr(batch_tasks, "compile_sources", counted)
    run_stack(batch, stack, {p: batch.points[p] for p, _ in stack})
    # six points, two earn rates: 'none' once, 'points' once per earn rate
    assert sorted(compiled) == ["none", "points", "points"]


def test_a_batch_stacked_across_points_is_the_batch_of_tasks_alone(spec: Path, alone: Path, tmp_path: Path) -> None:
    res = run_batch(spec, tmp_path / "one", jobs=1, stream=open(os.devnull, "w"))
    assert res.completed == 48
    assert_same_dataset(alone, tmp_path / "one")


def test_two_processes_and_a_small_budget_give_the_same_dataset(spec: Path, alone: Path, tmp_path: Path) -> None:
    batch = load_spec(spec)
    per_world = 120 * max(bytes_per_customer(batch.scenario, p)
                          for p in compile_sources(batch.source).policies.values())
    # a budget of ten worlds, two processes: stacks of five tasks, some across points, none a whole structure
    assert [sum(len(r) for _, r in s) for s in stacks_of(batch, [(p, r) for p in range(12) for r in range(2)], 2,
                                                         10 * per_world)] == [5, 5, 2, 5, 5, 2]
    res = run_batch(spec, tmp_path / "two", jobs=2, memory=10 * per_world, flush_runs=7,
                    stream=open(os.devnull, "w"))
    assert res.completed == 48
    assert_same_dataset(alone, tmp_path / "two")


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_a_dask_cluster_gives_the_same_dataset(spec: Path, alone: Path, tmp_path: Path, processes: bool) -> None:
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(processes=processes, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        res = run_batch(spec, tmp_path / "dask", executor="dask", client=client, jobs=2,
                        stream=open(os.devnull, "w"))
    assert res.completed == 48 and res.unfinished == 0
    assert_same_dataset(alone, tmp_path / "dask")


def test_kill_9_among_stacks_of_design_points_then_resume_gives_the_batch_of_tasks_alone(spec: Path, alone: Path,
                                                                                       tmp_path: Path) -> None:
    out = tmp_path / "killed"
    done = kill_9_after_the_first_chunk_then_resume(spec, out)
    assert 0 < done < 48  # killed among the first stack's chunks, before the second stack's
    assert_same_dataset(alone, out)  # the tasks left were stacked afresh across points, and give the same bits


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(designs(), st.sampled_from([None, 1, 300_000]))
def test_every_run_of_a_batch_dataset_is_the_run_alone(tmp_path_factory, drawn, memory) -> None:
    text, _, _ = drawn
    folder = tmp_path_factory.mktemp("cross")
    (folder / "spec.yaml").write_text(text)
    batch = load_spec(folder / "spec.yaml")
    res = run_batch(batch, folder / "store", jobs=1, memory=memory, flush_runs=3, stream=open(os.devnull, "w"))
    assert res.completed == res.total and res.failed == 0
    runs = read_dataset(folder / "store").runs
    for point in range(len(batch.points)):
        for rep in range(batch.replications):
            alone = _alone(batch, point, rep)
            for name in batch.policy_names:
                got = runs[runs["run_id"] == batch.run_id(point, rep, name)].set_index("outcome")["value"]
                want = dict(zip(OUTCOMES, alone[name], strict=True))
                assert sorted(got.index) == sorted(want), (point, rep, name)
                assert all(np.array_equal(got[k], want[k], equal_nan=True) for k in want), (point, rep, name)


def test_a_stack_that_raises_is_rerun_world_by_world_and_only_the_failing_runs_are_charged(
        spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = load_spec(spec)
    stack = stacks_of(batch, [(p, r) for p in range(12) for r in range(2)], jobs=1)[1]  # goal gradient 0.4
    bad = sorted(p for p, _ in stack if batch.points[p]["sens"] == 1.5)  # both earn rates
    real = batch_tasks.records_stacked

    def refusing(runs, **kw):  # the engine refuses the points policy at sensitivity 1.5, replication 1
        runs = list(runs)
        if any(sc.population.segments["bargain_hunters"].reward_sensitivity == 1.5 and o.address == (1,)
               and cp.policy.name == "points" for sc, cp, o in runs):
            raise RuntimeError("refused here")
        return real(runs, **kw)

    monkeypatch.setattr(batch_tasks, "records_stacked", refusing)
    results = run_stack(batch, stack, {p: batch.points[p] for p, _ in stack})
    charged = [(r.point, r.replication, rec.policy) for r in results for rec in r.records if rec.error]
    assert charged == [(p, 1, "points") for p in bad]
    for r in results:
        for rec in r.records:
            if rec.error:
                assert f"design point {r.point} (sens=1.5, gg=0.4, earn=" in rec.error
                assert "the run of 'points' failed: RuntimeError: refused here" in rec.error
    monkeypatch.setattr(batch_tasks, "records_stacked", real)
    _check_against_alone(batch, results, set(charged))  # every stack-mate kept, as alone
