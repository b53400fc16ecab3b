"""What a batch is: the spec as declared in YAML, and the checked batch loaded from it.

`BatchSpec` (with `lab.batch.factors.FactorSpec` for each factor) is the
declaration `lab.config.build` checks a spec file against; `Batch` is what
`lab.batch.load.load_spec` returns once the base scenario, its policies and
every factor have been checked: the inputs every task needs, and the design
table. A `Batch` is plain frozen data, so it travels to worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lab.batch.design import Design, Grid
from lab.batch.factors import Factor, FactorSpec
from lab.config import SourceMap, option
from lab.scenario.loader import PolicySource, ScenarioSource
from lab.scenario.model import Scenario

__all__ = ["Batch", "BatchError", "BatchSpec"]


class BatchError(Exception):
    """A batch that cannot start or go on (a refused output folder, a changed spec): the message says what to do."""


@dataclass(frozen=True, kw_only=True)
class BatchSpec:
    """A batch: a base scenario, factors to vary over a design, the policies, and the replications."""

    name: str = option("the batch's name")
    description: str = option("what the batch is for", default="")
    scenario: str = option("the base scenario file, relative to this file")
    policies: tuple[str, ...] | None = option("policies to compare (default: the scenario's); "
                                              "the baseline 'none' is always run",
                                              default=None)
    factors: dict[str, FactorSpec] = option("factors by short name (the name is their column in the dataset)",
                                            default_factory=dict)
    design: Design = option("grid, lhs, sobol, saltelli or morris", default_factory=Grid, kind="design")
    replications: int = option("replications per design point (common random numbers across policies)", default=3,
                               min=1, max=100_000)
    customers: int | None = option("customers at the start of every run (default: the scenario's)", default=None,
                                   min=1, max=50_000_000)
    days: int | None = option("days simulated in every run (default: the scenario's)", default=None, min=1, max=36500)
    seed: int | None = option("the batch seed (default: the scenario's)", default=None, min=0)
    streams: Literal["shared", "independent"] = option(
        "shared: every design point of replication k sees the same customers (common random numbers across the "
        "design, as across a comparison's policies); independent: fresh customers per design point", default="shared")


@dataclass(frozen=True)
class Batch:
    """A checked batch spec with its base scenario, policies, factors and design table."""

    spec: BatchSpec
    spec_path: Path
    scenario: Scenario
    scenario_where: SourceMap
    scenario_path: Path
    policies: tuple[PolicySource, ...]
    factors: tuple[Factor, ...]
    points: tuple[dict[str, Any], ...]
    seed: int
    design_seed: int
    customers: int | None
    days: int | None

    @property
    def source(self) -> ScenarioSource:
        """The base scenario and its policies, as the scenario loader's pipeline read them (before any factor)."""
        return ScenarioSource(self.scenario, self.scenario_where, self.scenario_path, self.policies)

    @property
    def replications(self) -> int:
        return self.spec.replications

    @property
    def policy_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.policies)

    @property
    def total_runs(self) -> int:
        return len(self.points) * self.replications * len(self.policies)

    @property
    def streams(self) -> str:
        return self.spec.streams

    @property
    def largest_customers(self) -> int:
        """The starting customers of the batch's largest run (a factor may set them point by point)."""
        sizes = [self.customers or self.scenario.population.customers]
        if self.customers is None:
            sizes += [int(v[f.name]) for f in self.factors if f.path == "population.customers" for v in self.points
                      if v.get(f.name) is not None]
        return max(sizes)

    def address(self, point: int, replication: int) -> tuple[int, ...]:
        """The random-stream address of a run at (point, replication).

        Shared streams (the default): (replication,), so every design point of
        replication k sees the same customers, and replication k of a batch is
        replication k of `lab compare` with the same seed. Independent streams:
        (point, replication), fresh customers per design point."""
        return (replication,) if self.spec.streams == "shared" else (point, replication)

    def run_id(self, point: int, replication: int, policy: str) -> str:
        """The stable name of a run, e.g. 'p0003-r01-points'."""
        pw = max(4, len(str(max(len(self.points) - 1, 0))))
        rw = max(2, len(str(self.replications - 1)))
        return f"p{point:0{pw}d}-r{replication:0{rw}d}-{policy}"
