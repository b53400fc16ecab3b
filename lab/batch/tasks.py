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
from dataclasses import dataclass
from typing import Any

import numpy as np

from lab.batch.factors import Factor
from lab.batch.overrides import apply
from lab.batch.spec import Batch
from lab.errors import LabError
from lab.experiment.run import run_policy
from lab.metrics.outcomes import OUTCOMES
from lab.policy.model import Policy
from lab.scenario.loader import compile_sources
from lab.scenario.model import Scenario

__all__ = ["SERIES", "PointResult", "PointTask", "RunOutput", "apply_factors", "apply_point", "run_task"]

#: The time series every run keeps in the dataset, one column of its period table each.
SERIES = ("revenue", "net_profit", "alive", "service_quality", "customer_satisfaction", "points_liability",
          "credit_outstanding", "market_share")

#: The address of a task: (design point, replication).
PointTask = tuple[int, int]


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


class _Refused(Exception):
    """The values of a design point do not fit the parameters (raised by the override hook)."""


def _show(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)


def run_task(batch: Batch, point: int, replication: int, values: Mapping[str, Any]) -> PointResult:
    """Run every policy at one design point and replication, with streams from `batch.address(point, replication)`.

    A combination the domain checks refuse, or a run that raises, becomes a
    recorded failure for the runs it concerns; the others still run."""
    label = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
    where = f"design point {point}" + (f" ({label})" if label else "")
    names = batch.policy_names

    def failed_all(msg: str) -> PointResult:
        return PointResult(point, replication, tuple(RunOutput(n, error=msg) for n in names))

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
    records = []
    for src in batch.policies:
        if src.name in loaded.rejected:
            records.append(RunOutput(src.name, error=f"{where}: policy '{src.name}' is invalid here:\n"
                                                     f"{loaded.rejected[src.name]}"))
            continue
        try:
            res = run_policy(sc, loaded.policies[src.name], batch.seed, address=batch.address(point, replication),
                             customers=batch.customers, days=batch.days)
        except MemoryError:
            raise
        except Exception as e:  # an extreme combination the engine refuses: recorded, the batch goes on
            records.append(RunOutput(src.name, error=f"{where}: the run of '{src.name}' failed: "
                                                     f"{type(e).__name__}: {e}"))
            continue
        ts = res.timeseries
        records.append(RunOutput(
            src.name,
            outcomes=np.array([res.summary[k] for k in OUTCOMES], dtype=np.float64),
            period=ts["period"].to_numpy(np.int32),
            day_end=ts["day_end"].to_numpy(np.int32),
            series=ts[list(SERIES)].to_numpy(np.float64),
        ))
    return PointResult(point, replication, tuple(records))
