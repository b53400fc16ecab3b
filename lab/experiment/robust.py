"""The robust comparison: every policy in many plausible worlds, with common random numbers.

A world is one row of a design over the scenario's plausible ranges (lab.scenario.ranges),
seeded from the comparison's seed and the study's own tag, so the same seed gives the same
worlds. Three designs (``RobustOptions.method``):

* ``lhs`` (the default): a scrambled Latin hypercube of ``worlds`` worlds, for the probability of
  being best, the differences across worlds, regret, the PRIM box and the rank-correlation drivers
  (``sobol``, a scrambled Sobol sequence, serves the same ends);
* ``saltelli``: SALib's Saltelli design of base ``worlds`` (a power of two) without second order,
  ``worlds (D + 2)`` worlds over D varying parameters, for first-order and total Sobol indices
  with bootstrap intervals;
* ``morris``: ``worlds`` Morris trajectories on a ``levels``-level grid, ``worlds (D + 1)`` worlds,
  for elementary effects (mu*, sigma): the cheap screening design.

In an ``lhs`` or ``sobol`` design, world ``w``'s replication ``r`` runs at address ``(w, r)`` under
every policy: the same world and the same customers, so the policies' differences within a world
are paired. In a Saltelli or Morris design every world's replication ``r`` runs at ``(0, r)``: the
worlds share their customers too (common random numbers across the design), so the indices
measure the parameters, not the noise between worlds. Worlds' parameters are applied with
:func:`lab.scenario.ranges.apply`; fixed ranges are dropped from the design. The indices are
lab.metrics.sensitivity's, the batch's own (through lab.metrics.robustness).

The runs of one policy go in stacks (lab.engine.stack): the worlds differ only in the values of
parameters a stack holds per world (`lab.engine.stack.PER_WORLD` holds every path of the ranges'
table), so each world's run is bit-identical to its run alone while the engine's fixed cost per day
is paid once per stack. The stacks are sized to the memory as `lab compare`'s are
(lab.experiment.memory, ``RobustOptions.memory``) and go to local processes as its stacks do (spawn,
the ``__main__`` guard check); the results are put in (policy, world, replication) order whatever
the order they finish in, so the summary is bit-identical for any number of workers. The
statistics are lab.metrics.robustness's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np

from lab.experiment.compare import Progress
from lab.experiment.folder import Workspace, world_key
from lab.experiment.processes import worker_pool
from lab.engine.options import RunOptions
from lab.engine.stack import stack_structure
from lab.experiment.grouping import heaviest_first, policy_weight, runs_of, study_groups
from lab.experiment.memory import bytes_per_customer, runs_held, stack_budget, stack_size
from lab.experiment.run import run_policies
from lab.metrics.outcomes import REGISTRY
from lab.metrics.discovery import reversal_box
from lab.randomness.designs import morris_unit, saltelli_unit
from lab.metrics.robustness import morris_rows, outcome_robustness, rank_drivers, sobol_rows, verdict
from lab.scenario.loader import BASELINE, LoadedScenario
from lab.scenario.model import Scenario
from lab.scenario.ranges import Range, apply, plausible_ranges, sample

__all__ = ["DESIGNS", "RobustOptions", "RobustStudy", "VERDICT_OUTCOMES", "design_seed", "robust_compare",
           "world_design"]

#: The outcomes the robust study words a verdict on, in the order the report shows them.
VERDICT_OUTCOMES = ("net_profit", "retention_12m", "revenue")
# mixed into the comparison's seed so the design's draws are not the engine's
_DESIGN_TAG = 0x526F62757374  # "Robust"
#: The designs a robust comparison can run (``RobustOptions.method``; `lab compare --robust-design`).
DESIGNS = ("lhs", "sobol", "saltelli", "morris")
# the designs whose worlds share their customers (and whose statistics are sensitivity indices)
_SHARED = ("saltelli", "morris")


@dataclass(frozen=True)
class RobustOptions:
    """How a robust comparison is run: ``worlds`` plausible worlds, ``replications`` runs of each policy in each."""

    worlds: int = 64
    replications: int = 2
    # saltelli: worlds is the base N, N (D + 2) worlds run; morris: worlds is the trajectories r, r (D + 1) worlds
    method: Literal["lhs", "sobol", "saltelli", "morris"] = "lhs"
    levels: int = 4  # morris: the grid's levels p (even)
    seed: int | None = None
    customers: int | None = None
    days: int | None = None
    jobs: int = 1
    memory: int | None = None  # bytes the stacks running at once may hold (None: a share of the machine's)

    def __post_init__(self) -> None:
        if self.worlds < 2:
            raise ValueError(f"a robust comparison needs at least 2 worlds, not {self.worlds}")
        if self.replications < 1:
            raise ValueError(f"replications per world must be at least 1, not {self.replications}")
        if self.method not in DESIGNS:
            raise ValueError(f"unknown design '{self.method}'; expected one of {', '.join(DESIGNS)}")
        if self.method in ("sobol", "saltelli") and self.worlds & (self.worlds - 1):
            raise ValueError(f"a Sobol design needs a power of two worlds, not {self.worlds}")
        if self.method == "morris" and (self.levels < 2 or self.levels % 2):
            raise ValueError(f"a Morris design needs an even number of levels (4 is usual), not {self.levels}")


def world_design(ranges: list[Range], options: RobustOptions, seed: int) -> np.ndarray:
    """The worlds' parameter values, one row per world: :func:`lab.scenario.ranges.sample`'s design (lhs, sobol);
    for ``saltelli`` SALib's Saltelli (Sobol-sequence) design of base ``options.worlds`` without second order
    (``worlds * (len(ranges) + 2)`` rows), for ``morris`` SALib's ``worlds`` Morris trajectories on an
    ``options.levels``-level grid (``worlds * (len(ranges) + 1)`` rows), over the unit cube and mapped through each
    range's quantile function."""
    if options.method not in _SHARED:
        return sample(ranges, options.worlds, seed, method=cast(Literal["lhs", "sobol"], options.method))
    u = (saltelli_unit(len(ranges), options.worlds, seed) if options.method == "saltelli"
         else morris_unit(len(ranges), options.worlds, options.levels, seed))
    return np.column_stack([r.ppf(u[:, j]) for j, r in enumerate(ranges)])


def design_seed(seed: int) -> int:
    """The seed of the worlds' design, derived from the comparison's seed (not the engine's streams)."""
    return int(np.random.SeedSequence([int(seed), _DESIGN_TAG]).generate_state(1, dtype=np.uint64)[0])


@dataclass
class RobustStudy:
    """A robust comparison's worlds and outcomes: ``values[o]`` is a (policies, worlds, replications) array."""

    loaded: LoadedScenario
    options: RobustOptions
    seed: int
    ranges: list[Range]
    design: np.ndarray  # (worlds, len(ranges)) parameter values
    values: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def policies(self) -> list[str]:
        return list(self.loaded.policies)

    @property
    def parameters(self) -> list[str]:
        return [r.path for r in self.ranges]

    def world_means(self, outcome: str) -> np.ndarray:
        """(policies, worlds): each policy's mean over a world's replications."""
        return self.values[outcome].mean(axis=2)

    def summary(self) -> dict:
        """The ``robustness`` section of summary.json (docs/OUTPUTS.md)."""
        labels = {p: ("no programme" if p == BASELINE else p) for p in self.policies}
        out: dict = {
            "worlds": int(self.design.shape[0]), "replications_per_world": self.options.replications,
            "method": self.options.method, "design_seed": design_seed(self.seed),
            "parameters": [{"path": r.path, "low": r.low, "high": r.high, "shape": r.shape} for r in self.ranges],
            "outcomes": {}, "verdict": {},
        }
        for name, o in REGISTRY.items():
            out["outcomes"][name] = outcome_robustness(self.values[name], self.policies, BASELINE, o.higher_is_better)
        b = self.policies.index(BASELINE)
        boot_seed = design_seed(self.seed) % 2**32
        if self.options.method == "saltelli":
            out["sobol_base"] = self.options.worlds
            out["design_note"] = (f"the worlds of a Saltelli design share their customers ({self.options.replications} "
                                  "replication(s) in every world), so its shares of worlds carry those customers' "
                                  "luck in every world at once: for the probabilities, regret and where the verdict "
                                  "reverses, use the lhs design")
            for name in VERDICT_OUTCOMES:
                means = self.world_means(name)
                out["outcomes"][name]["sobol"] = {p: sobol_rows(means[i] - means[b], self.parameters, boot_seed)
                                                  for i, p in enumerate(self.policies) if i != b}
        if self.options.method == "morris":
            out["morris_trajectories"], out["morris_levels"] = self.options.worlds, self.options.levels
            out["design_note"] = (f"the worlds of a Morris design lie on a {self.options.levels}-level grid that "
                                  "includes each range's ends and share their customers, so its shares of worlds "
                                  "are not the plausible ranges' own: for the probabilities, regret and where the "
                                  "verdict reverses, use the lhs design")
            spans = [r.high - r.low for r in self.ranges]
            for name in VERDICT_OUTCOMES:
                means = self.world_means(name)
                out["outcomes"][name]["morris"] = {
                    p: morris_rows(self.design, means[i] - means[b], self.parameters, spans, boot_seed)
                    for i, p in enumerate(self.policies) if i != b}
        out["discovery"] = {}
        for name in VERDICT_OUTCOMES:
            label = REGISTRY[name].label.lower()
            v = verdict(out["outcomes"][name], label, labels, BASELINE, self.world_means(name), self.policies,
                        self.design, self.parameters)
            out["verdict"][name] = v
            if "best" in v:
                higher = bool(REGISTRY[name].higher_is_better)
                drivers = rank_drivers(self.world_means(name), self.policies, v["best"], higher, self.design,
                                       self.parameters)
                out["outcomes"][name]["drivers"] = drivers
                out["discovery"][name] = reversal_box(self.world_means(name), self.policies, v["best"], higher,
                                                      self.design, self.parameters, label, labels,
                                                      order=[d["parameter"] for d in drivers])
        return out


def _run_stack(loaded: LoadedScenario, policies: list[str], runs: list[tuple[int, int, tuple[float, ...]]],
               ranges: tuple[Range, ...], seed: int, customers: int | None, days: int | None,
               shared: bool = False) -> list[tuple]:
    """The policies' runs of the worlds-and-replications `runs` (world, replication, the world's values), each
    policy's runs one stack, the policies sharing their warm-up (`lab.experiment.run.run_policies`): (policy,
    world, replication, outcomes) of each, policy by policy in the order given, each bit-identical to
    `run_policy` of its world alone."""
    worlds: dict[int, Scenario] = {}
    scenarios, options = [], []
    for w, k, row in runs:
        if w not in worlds:  # (a world's replications share its scenario)
            worlds[w] = apply(loaded.scenario, ranges, row)
        scenarios.append(worlds[w])
        options.append(RunOptions(seed=seed, address=(0, k) if shared else (w, k), customers=customers, days=days))
    results = run_policies(scenarios, [loaded.policies[p] for p in policies], options)
    return [(p, w, k, res.summary) for p, of_policy in zip(policies, results, strict=True)
            for (w, k, _), res in zip(runs, of_policy, strict=True)]


def _stacks(loaded: LoadedScenario, tasks: list[tuple[str, int, int]], design: np.ndarray,
            ranges: tuple[Range, ...], options: RobustOptions) -> list[tuple[list[str], list[tuple[int, int, tuple]]]]:
    """The tasks as groups of stacks (policies, their runs), the heaviest first: the runs (world, replication)
    of one structure that every policy still has to make in groups of policies x runs
    (`lab.experiment.grouping.study_groups`; a world whose value of a parameter is 0 where the others' are not, as at a
    Morris grid's end, has a structure of its own: lab.engine.stack.stack_structure), within the memory budget;
    the rest (a resumed study's unfinished runs) one policy a stack of at most `stack_size` runs."""
    customers = options.customers or loaded.scenario.population.customers
    per_world = customers * max(bytes_per_customer(loaded.scenario, p) for p in loaded.policies.values())
    budget = stack_budget(options.memory)
    size = stack_size(per_world, options.jobs, len(tasks), budget)
    held = runs_held(per_world, options.jobs, budget)
    policies = list(dict.fromkeys(p for p, _, _ in tasks))
    weight = {p: policy_weight(loaded.policies[p]) for p in policies}
    rows = {w: tuple(float(v) for v in design[w]) for w in {w for _, w, _ in tasks}}
    structure = {w: stack_structure(apply(loaded.scenario, ranges, rows[w])) for w in rows}
    by_structure: dict[str, dict[tuple[int, int, tuple], list[str]]] = {}
    for p, w, k in tasks:
        by_structure.setdefault(structure[w], {}).setdefault((w, k, rows[w]), []).append(p)
    groups = [g for of_run in by_structure.values()
              for g in study_groups(of_run, policies, weight, held, size, options.jobs)]
    return heaviest_first(groups, weight, runs_of)


def robust_compare(loaded: LoadedScenario, options: RobustOptions, progress: bool = True,
                   workspace: Workspace | None = None) -> RobustStudy:
    """Run every policy in ``options.worlds`` plausible worlds, ``options.replications`` times each (CRN).

    With a ``workspace`` (lab.experiment.folder, the comparison's own), each finished run's outcomes are kept
    there as they come and runs already kept are not run again: a killed robust comparison resumed gives the
    uninterrupted result (the workspace's identity must hold the robust options)."""
    seed = options.seed if options.seed is not None else loaded.scenario.seed
    ranges = [r for r in plausible_ranges(loaded.scenario) if not r.fixed]
    design = world_design(ranges, options, design_seed(seed))
    worlds = design.shape[0]
    study = RobustStudy(loaded, options, seed, ranges, design)
    t0 = time.perf_counter()
    tasks = [(p, w, k) for p in study.policies for w in range(worlds) for k in range(options.replications)]
    bar = Progress(len(tasks), f"robust {loaded.scenario.name}") if progress else None
    got: dict[tuple[str, int, int], dict[str, float]] = {}
    if workspace is not None:
        stored = dict(workspace.kept())
        for t in tasks:
            data = stored.get(world_key(*t))
            if data is not None:
                got[t] = data["outcomes"]
                if bar is not None:
                    bar.step()
    todo = [t for t in tasks if t not in got]
    try:
        with worker_pool(options.jobs, f"robust_compare(..., RobustOptions(jobs={options.jobs}))") as pool:
            for group in _run(loaded, todo, design, tuple(ranges), seed, options, pool):
                for p, w, k, outcomes in group:
                    got[(p, w, k)] = outcomes
                    if workspace is not None:
                        workspace.keep(world_key(p, w, k), outcomes, {}, 0.0)
                if bar is not None:  # a group's runs end together: counted at once, for a rate that holds
                    bar.step(len(group))
    finally:
        if bar is not None:
            bar.close()
    shape = (len(study.policies), worlds, options.replications)
    for name in REGISTRY:
        arr = np.empty(shape)
        for i, p in enumerate(study.policies):
            for w in range(worlds):
                for k in range(options.replications):
                    v = got[(p, w, k)].get(name)
                    arr[i, w, k] = np.nan if v is None else float(v)
        study.values[name] = arr
    study.seconds = time.perf_counter() - t0
    return study


def _run(loaded: LoadedScenario, tasks: list[tuple[str, int, int]], design: np.ndarray, ranges: tuple[Range, ...],
         seed: int, options: RobustOptions, pool: ProcessPoolExecutor | None) -> Iterable[list[tuple]]:
    """Each group's (policy, world, replication, outcomes), a group at a time, as the groups end."""
    shared = options.method in _SHARED  # the design's worlds share their customers: the indices see no noise between
    stacks = _stacks(loaded, tasks, design, ranges, options) if tasks else []
    if pool is None:
        for together, runs in stacks:
            yield _run_stack(loaded, together, runs, ranges, seed, options.customers, options.days, shared)
        return
    futures = [pool.submit(_run_stack, loaded, together, runs, ranges, seed, options.customers, options.days, shared)
               for together, runs in stacks]
    for f in as_completed(futures):
        yield f.result()
