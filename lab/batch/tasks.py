"""One task of a batch: every policy at one (design point, replication), run with the same random streams.

A task's random streams come from the batch seed and its address
(`Batch.address`: (replication,) with the default shared streams, so every
design point of a replication sees the same customers; (point, replication)
with `streams: independent`), never from the policy or the order tasks finish in, so the
policies share common random numbers and the dataset is the same whatever
executes it. The factor values reach the scenario and policies through the
scenario loader's override hook (`lab.scenario.loader.compile_sources`), so a
design point is checked and compiled exactly as a scenario file would be.

Tasks run in stacks (`stacks_of`, `run_stack`): the tasks of design points
whose scenarios differ only in the values of parameters the engine holds per
world (`lab.engine.stack.PER_WORLD`: segment parameters, behaviour, store
economics) are simulated together, each policy variant compiled once. A
result never depends on the stack it ran in.

The names say what the things are, as distinct from a comparison's tasks
(`lab.experiment.compare.Task`, one run of one policy): a `PointTask` is the
address of a task, a `PointResult` what it hands back, one `RunOutput` per
policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lab.batch.factors import Factor
from lab.batch.overrides import apply
from lab.batch.spec import Batch
from lab.errors import LabError
from lab.engine.options import RunOptions
from lab.engine.stack import policy_runs, stack_structure
from lab.experiment.memory import bytes_per_customer, stack_budget, stack_size
from lab.engine.record import RunRecord
from lab.experiment.run import records_stacked
from lab.metrics.outcomes import OUTCOMES, outcomes
from lab.metrics.tables import timeseries_each
from lab.policy.model import Policy
from lab.policy.runtime import CompiledPolicy
from lab.scenario.loader import compile_sources, world_of
from lab.scenario.model import Scenario

__all__ = ["PointResult", "PointTask", "RunOutput", "SERIES", "Stack", "apply_factors", "apply_point",
           "run_stack", "run_task", "stacks_of"]

#: The time series every run keeps in the dataset, one column of its period table each.
SERIES = ("revenue", "net_profit", "alive", "service_quality", "customer_satisfaction", "points_liability",
          "credit_outstanding", "market_share")

#: The address of a task: (design point, replication).
PointTask = tuple[int, int]

#: Tasks run as one stack: design points, each with some of its replications (`stacks_of`).
Stack = tuple[tuple[int, tuple[int, ...]], ...]


@dataclass(frozen=True)
class RunOutput:
    """What one run hands back to the driver: outcomes and key series, or the error that stopped it."""

    policy: str
    outcomes: np.ndarray | None = None  # in OUTCOMES order
    period: np.ndarray | None = None
    day_end: np.ndarray | None = None
    series: np.ndarray | None = None  # periods x SERIES
    error: str | None = None


@dataclass(frozen=True)
class PointResult:
    """The runs of one (design point, replication)."""

    point: int
    replication: int
    records: tuple[RunOutput, ...]


def apply_factors(factors: Sequence[Factor], values: Mapping[str, Any], scenario: Scenario,
                  policies: Mapping[str, Policy]) -> tuple[Scenario, dict[str, Policy]]:
    """The scenario and policies with each factor set to its value (the given objects are not changed)."""
    sc = scenario
    pols = dict(policies)
    for f in factors:
        v = f.field_value(values[f.name])
        if f.target.policy is None:
            sc = apply(sc, f.target.steps, v)
        else:
            pols[f.target.policy] = apply(pols[f.target.policy], f.target.steps, v)
    return sc, pols


def apply_point(batch: Batch, values: Mapping[str, Any]) -> tuple[Scenario, dict[str, Policy]]:
    """The scenario and policies at one design point (the base objects are not changed)."""
    return apply_factors(batch.factors, values, batch.scenario, {p.name: p.policy for p in batch.policies})


def stacks_of(batch: Batch, tasks: Sequence[PointTask], jobs: int, memory: int | None = None) -> list[Stack]:
    """The tasks grouped into stacks: tasks of design points whose scenarios share a structure
    (`lab.engine.stack.stack_structure`: the same scenario but for the values of the parameters a stack holds per
    world) go together, whatever their points and replications, as many per stack as
    `lab.experiment.memory.stack_size` allows for the budget `memory` (bytes the stacks running at once may hold;
    None: a share of the machine's memory). A point whose values the parameters refuse has stacks of its own
    (its tasks only record the refusal), as does a point on an existing customer base (`population.from_fit`,
    whose runs the engine never stacks).
    The stacking changes how fast the batch runs, never its results (`run_stack`)."""
    policies = compile_sources(batch.source, keep_going=True).policies.values()
    per_world = batch.largest_customers * max((bytes_per_customer(batch.scenario, p) for p in policies), default=0)
    size = stack_size(per_world, jobs, len(tasks), stack_budget(memory))
    group_of: dict[int, object] = {}
    groups: dict[object, list[PointTask]] = {}
    for point, rep in tasks:
        if point not in group_of:
            group_of[point] = _structure(batch, point)
        groups.setdefault(group_of[point], []).append((point, rep))
    return [_pack(g[i:i + size]) for g in groups.values() for i in range(0, len(g), size)]


def _structure(batch: Batch, point: int) -> object:
    """What a design point's tasks must share with another point's to go in one stack."""
    try:
        sc, _ = apply_point(batch, batch.points[point])
    except (ValueError, TypeError):
        return ("refused", point)
    return ("alone", point) if sc.population.from_fit is not None else stack_structure(sc)


def _pack(tasks: Sequence[PointTask]) -> Stack:
    """Tasks as a stack: each design point with its replications, in the order given."""
    by_point: dict[int, list[int]] = {}
    for point, rep in tasks:
        by_point.setdefault(point, []).append(rep)
    return tuple((point, tuple(reps)) for point, reps in by_point.items())


def _show(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)


def run_task(batch: Batch, point: int, replication: int, values: Mapping[str, Any]) -> PointResult:
    """Run every policy at one design point and replication, with streams from `batch.address(point, replication)`."""
    return run_stack(batch, ((point, (replication,)),), {point: values})[0]


def _outputs_of(policy: str, records: Sequence[RunRecord]) -> list[RunOutput]:
    """Each run's outcomes and key series (its period table's SERIES columns only: a batch keeps no more)."""
    ts = timeseries_each(records, SERIES)
    bounds = np.searchsorted(ts["run"].to_numpy(), np.arange(len(records) + 1)).tolist()
    period, day_end = ts["period"].to_numpy(np.int32), ts["day_end"].to_numpy(np.int32)
    series = ts[list(SERIES)].to_numpy(np.float64)
    out = []
    for i, record in enumerate(records):
        summary = outcomes(record)
        lo, hi = bounds[i], bounds[i + 1]
        out.append(RunOutput(policy, outcomes=np.array([summary[k] for k in OUTCOMES], dtype=np.float64),
                             period=period[lo:hi].copy(), day_end=day_end[lo:hi].copy(),
                             series=series[lo:hi].copy()))
    return out


@dataclass(frozen=True)
class _Run:
    """One run of a stack: a policy's compiled variant at a (design point, replication)."""

    point: int
    replication: int
    where: str
    scenario: Scenario
    policy: CompiledPolicy


def run_stack(batch: Batch, stack: Stack, values: Mapping[int, Mapping[str, Any]]) -> list[PointResult]:
    """Run every policy at each (design point, replication) of `stack` (`values`: each point's factor values),
    each policy's runs in stacks of the engine (`lab.experiment.run.records_stacked`), the stacks of several
    policies on the same worlds sharing their warm-up (`lab.engine.stack.policy_runs`): every result is
    bit-identical to `run_task` of its (point, replication) alone.

    A policy variant (the policy as a point's factors leave it, against the world of the point's scenario)
    compiles once, keyed by its content, and its compiled object is shared by every point that uses it, so
    their runs may share an engine stack; runs of different variants, or in scenarios of different structure,
    go in different engine stacks. A combination the domain checks refuse, or a run that raises, becomes a
    recorded failure for the runs it concerns; the others still run. An engine stack that raises is rerun
    world by world, so that a failure is charged to the run it belongs to and never to the runs that happened
    to share its stack."""
    names = batch.policy_names
    out: dict[PointTask, dict[str, RunOutput]] = {(p, r): {} for p, reps in stack for r in reps}
    compiled: dict[tuple[str, str, str], CompiledPolicy | LabError] = {}
    runs: dict[str, list[_Run]] = {n: [] for n in names}
    structure: dict[int, str] = {}

    def failed(point: int, reps: Sequence[int], msg: str, which: Sequence[str] = names) -> None:
        for r in reps:
            out[(point, r)].update((n, RunOutput(n, error=msg)) for n in which)

    for point, reps in stack:
        label = ", ".join(f"{k}={_show(v)}" for k, v in values[point].items())
        where = f"design point {point}" + (f" ({label})" if label else "")
        try:
            sc, pols = apply_factors(batch.factors, values[point], batch.scenario,
                                     {p.name: p.policy for p in batch.policies})
        except (ValueError, TypeError) as e:
            failed(point, reps, f"{where}: the values do not fit the parameters: {e}")
            continue
        world = repr(world_of(sc))
        keys = {src.name: (src.name, repr(pols[src.name]), world) for src in batch.policies}
        need = tuple(src for src in batch.policies if keys[src.name] not in compiled)

        def override(_sc: Scenario, _pols: Mapping[str, Policy], sc: Scenario = sc,
                     pols: dict[str, Policy] = pols) -> tuple[Scenario, dict[str, Policy]]:
            return sc, pols

        try:  # checks the point's scenario, and compiles the variants not compiled yet
            loaded = compile_sources(replace(batch.source, policies=need), override, keep_going=True)
        except LabError as e:
            failed(point, reps, f"{where}: the scenario is invalid here:\n{e}")
            continue
        for src in need:
            compiled[keys[src.name]] = (loaded.policies[src.name] if src.name in loaded.policies
                                        else loaded.rejected[src.name])
        structure[point] = stack_structure(sc)
        for src in batch.policies:
            cp = compiled[keys[src.name]]
            if isinstance(cp, LabError):
                failed(point, reps, f"{where}: policy '{src.name}' is invalid here:\n{cp}", (src.name,))
            else:
                runs[src.name] += [_Run(point, r, where, sc, cp) for r in reps]
    # each policy's runs in groups that may share an engine stack; groups of the same worlds under different
    # policies run together, so that their warm-up is simulated once (lab.engine.stack.policy_runs)
    together: dict[tuple[object, ...], list[tuple[str, list[_Run]]]] = {}
    for name in names:
        groups: dict[tuple[str, int], list[_Run]] = {}
        for run in runs[name]:
            groups.setdefault((structure[run.point], id(run.policy)), []).append(run)
        for group in groups.values():
            worlds = (structure[group[0].point], *((run.point, run.replication) for run in group))
            together.setdefault(worlds, []).append((name, group))
    for members in together.values():
        for (name, group), results in zip(members, _shared_outputs(batch, members), strict=True):
            for run, res in zip(group, results, strict=True):
                out[(run.point, run.replication)][name] = res
    return [PointResult(p, r, tuple(out[(p, r)][n] for n in names)) for p, reps in stack for r in reps]


def _options(batch: Batch, run: _Run) -> RunOptions:
    return RunOptions(seed=batch.seed, address=batch.address(run.point, run.replication), customers=batch.customers,
                      days=batch.days)


def _shared_outputs(batch: Batch, members: Sequence[tuple[str, Sequence[_Run]]]) -> list[list[RunOutput]]:
    """The outputs of several policies' groups of runs of the same worlds (each group as `_outputs` gives it),
    their warm-up simulated once. If that raises, each policy's group runs on its own, so that a failure is
    charged to the runs it belongs to."""
    group = members[0][1]
    if len(members) > 1:
        try:
            raws = policy_runs([run.scenario for run in group], [g[0].policy for _, g in members],
                               [_options(batch, run) for run in group])
            return [_outputs_of(name, [raw.record for raw in runs])
                    for (name, _), runs in zip(members, raws, strict=True)]
        except MemoryError:
            raise
        except Exception:  # (rerun policy by policy below: the failure is recorded where it belongs)
            pass
    return [_outputs(batch, name, g) for name, g in members]


def _outputs(batch: Batch, name: str, group: Sequence[_Run]) -> list[RunOutput]:
    """The outputs of one policy's runs that may share an engine stack (one variant, one scenario structure)."""
    triples = [(run.scenario, run.policy, _options(batch, run)) for run in group]
    try:
        return _outputs_of(name, [raw.record for raw, _ in records_stacked(triples, stack_size=len(triples))])
    except MemoryError:
        raise
    except Exception as e:  # an extreme combination the engine refuses: recorded, the batch goes on
        if len(group) == 1:
            return [RunOutput(name, error=f"{group[0].where}: the run of '{name}' failed: {type(e).__name__}: {e}")]
    return [_outputs(batch, name, (run,))[0] for run in group]  # the stack failed: each world alone
