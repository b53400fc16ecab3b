"""One task of a batch: every policy at one (design point, replication), run with the same random streams.

A task's random streams come from the batch seed and its address
(`Batch.address`: (replication,) with the default shared streams, so every
design point of a replication sees the same customers; (point, replication)
with `streams: independent`), never from the policy or the order tasks finish in, so the
policies share common random numbers and the dataset is the same whatever
executes it. The factor values reach the scenario and policies through the
scenario loader's override hook (`lab.scenario.loader.compile_sources`), so a
design point is checked and compiled exactly as a scenario file would be.

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
from lab.experiment.memory import bytes_per_customer, stack_budget, stack_size
from lab.experiment.run import run_stacked
from lab.metrics.result import RunResult
from lab.metrics.outcomes import OUTCOMES
from lab.policy.model import Policy
from lab.scenario.loader import compile_sources
from lab.scenario.model import Scenario

__all__ = ["PointResult", "PointTask", "RunOutput", "SERIES", "Stack", "apply_factors", "apply_point",
           "run_stack", "run_task", "stacks_of"]

#: The time series every run keeps in the dataset, one column of its period table each.
SERIES = ("revenue", "net_profit", "alive", "service_quality", "customer_satisfaction", "points_liability",
          "credit_outstanding", "market_share")

#: The address of a task: (design point, replication).
PointTask = tuple[int, int]

#: Tasks run as one stack: a design point and some of its replications.
Stack = tuple[int, tuple[int, ...]]


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
    """The tasks grouped into stacks: the replications of one design point (worlds of a stack share their
    scenario and compiled policies), as many per stack as `lab.experiment.memory.stack_size` allows for the
    budget `memory` (bytes the stacks running at once may hold; None: a share of the machine's memory)."""
    policies = compile_sources(batch.source, keep_going=True).policies.values()
    per_world = batch.largest_customers * max((bytes_per_customer(batch.scenario, p) for p in policies), default=0)
    size = stack_size(per_world, jobs, len(tasks), stack_budget(memory))
    by_point: dict[int, list[int]] = {}
    for point, rep in tasks:
        by_point.setdefault(point, []).append(rep)
    return [(point, tuple(reps[i:i + size])) for point, reps in by_point.items() for i in range(0, len(reps), size)]


class _Refused(Exception):
    """The values of a design point do not fit the parameters (raised by the override hook)."""


def _show(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)


def run_task(batch: Batch, point: int, replication: int, values: Mapping[str, Any]) -> PointResult:
    """Run every policy at one design point and replication, with streams from `batch.address(point, replication)`."""
    return run_stack(batch, point, (replication,), values)[0]


def _output(policy: str, res: RunResult) -> RunOutput:
    ts = res.timeseries
    return RunOutput(policy, outcomes=np.array([res.summary[k] for k in OUTCOMES], dtype=np.float64),
                     period=ts["period"].to_numpy(np.int32), day_end=ts["day_end"].to_numpy(np.int32),
                     series=ts[list(SERIES)].to_numpy(np.float64))


def run_stack(batch: Batch, point: int, replications: Sequence[int], values: Mapping[str, Any]) -> list[PointResult]:
    """Run every policy at one design point for each of `replications`, each policy's replications as one stack
    (`lab.experiment.run.run_stacked`): every result is bit-identical to `run_task` of its replication alone.

    A combination the domain checks refuse, or a run that raises, becomes a
    recorded failure for the runs it concerns; the others still run. A stack
    that raises is rerun world by world, so that a failure is charged to the
    run it belongs to and never to the runs that happened to share its stack."""
    label = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
    where = f"design point {point}" + (f" ({label})" if label else "")
    names = batch.policy_names
    reps = list(replications)

    def failed_all(msg: str) -> list[PointResult]:
        return [PointResult(point, r, tuple(RunOutput(n, error=msg) for n in names)) for r in reps]

    def override(sc: Scenario, pols: Mapping[str, Policy]) -> tuple[Scenario, dict[str, Policy]]:
        try:
            return apply_factors(batch.factors, values, sc, pols)
        except (ValueError, TypeError) as e:
            raise _Refused(str(e)) from None

    try:
        loaded = compile_sources(batch.source, override, keep_going=True)
    except _Refused as e:
        return failed_all(f"{where}: the values do not fit the parameters: {e}")
    except LabError as e:
        return failed_all(f"{where}: the scenario is invalid here:\n{e}")
    sc = loaded.scenario
    by_policy: list[list[RunOutput]] = []
    for src in batch.policies:
        if src.name in loaded.rejected:
            msg = f"{where}: policy '{src.name}' is invalid here:\n{loaded.rejected[src.name]}"
            by_policy.append([RunOutput(src.name, error=msg) for _ in reps])
            continue
        cp = loaded.policies[src.name]
        runs = [(sc, cp, RunOptions(seed=batch.seed, address=batch.address(point, r), customers=batch.customers,
                                    days=batch.days)) for r in reps]
        try:
            by_policy.append([_output(src.name, res) for res in run_stacked(runs, stack_size=len(reps))])
            continue
        except MemoryError:
            raise
        except Exception as e:  # an extreme combination the engine refuses: recorded, the batch goes on
            if len(reps) == 1:
                by_policy.append([RunOutput(src.name, error=f"{where}: the run of '{src.name}' failed: "
                                                            f"{type(e).__name__}: {e}")])
                continue
        alone = replace(batch, policies=(src,))  # the stack failed: each world alone, so each failure is its own
        by_policy.append([run_stack(alone, point, (r,), values)[0].records[0] for r in reps])
    return [PointResult(point, r, tuple(outs[i] for outs in by_policy)) for i, r in enumerate(reps)]
