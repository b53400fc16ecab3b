"""The main job: run every policy of a scenario over replications and compare them honestly.

Replication k of every policy uses the same random streams (common random
numbers), so differences against the baseline are paired and their intervals
are tight. Replications run on local processes; with a precision target they
are added in waves until every headline outcome's 95% interval is within
that fraction of its mean (Law & Kelton's sequential procedure), up to a cap.
Each policy is also run with the flywheel cut (service quality frozen) so the
share of its effect that travels round the loop can be measured.

The module runs just past 500 lines: the comparison's tasks, its precision waves,
its processes and the Comparison's paired statistics are one procedure, kept in
one place so the common-random-numbers pairing is visible end to end.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lab.config.declare import option
from lab.experiment.folder import Workspace, check_free_space, key_of
from lab.experiment.processes import check_main_guarded, spawn_pool
from lab.engine.options import RunOptions
from lab.experiment.grouping import policy_weight, study_groups
from lab.experiment.memory import bytes_per_customer, runs_held, stack_budget, stack_size
from lab.experiment.run import run_policies, run_stacked
from lab.metrics.flywheel_share import FlywheelShare, flywheel_share
from lab.metrics.outcomes import HEADLINE, REGISTRY
from lab.metrics.stats import Interval, lorenz_curve, mean_ci, paired_diff_ci, relative_half_width, replications_needed
from lab.scenario.loader import BASELINE, LoadedScenario
from lab.scenario.model import Scenario

LORENZ_POINTS = 101
# A comparison past this many replications per policy is a study for `lab batch` (a store on a cluster, resumable
# run by run): at a second a run, 10,000 replications of five policies with their flywheel-cut twins take a day.
MAX_REPLICATIONS = 10_000


@dataclass(frozen=True)
class CompareOptions:
    """How a comparison is run."""

    replications: int = option("replications per policy", default=10, min=1, max=MAX_REPLICATIONS)
    precision: float | None = None
    max_replications: int = option("the cap on replications with a precision target", default=100, min=1,
                                   max=MAX_REPLICATIONS)
    seed: int | None = None
    customers: int | None = None
    days: int | None = None
    jobs: int = 1
    flywheel_split: bool = True
    precision_of: str = "difference"  # what --precision aims at: "difference" (vs the baseline) or "level"
    memory: int | None = None  # bytes the stacks running at once may hold (None: a share of the machine's memory)


@dataclass(frozen=True)
class Task:
    """One run to do: a policy, a replication, with the flywheel whole or cut."""

    policy: str
    replication: int
    cut: bool = False


@dataclass
class TaskResult:
    """The compact part of a run a comparison keeps. With a workspace the frames are on its disk, not here (None):
    a comparison holds one number per outcome per run, whatever its replications."""

    task: Task
    outcomes: dict[str, float]
    timeseries: pd.DataFrame | None
    retention: pd.DataFrame | None
    lorenz: pd.DataFrame | None
    rule_fires: dict[str, int]
    seconds: float


#: The per-run frames of a comparison, in the order they are written.
FRAMES = ("timeseries", "retention", "lorenz")


def retention_curve(customers: pd.DataFrame, days: int, step: int) -> pd.DataFrame:
    """Share of customers still alive at each tenure, among those observed that long (right-censored at the end)."""
    acq = customers["acquired_at"].to_numpy()
    dropped = customers["dropped_at"].to_numpy()
    churned = customers["churned"].to_numpy()
    end_alive = np.where(churned, dropped, np.inf)
    rows = []
    for tau in range(0, days + 1, step):
        at_risk = acq + tau <= days
        n = int(at_risk.sum())
        if n == 0:
            break
        alive = end_alive[at_risk] > acq[at_risk] + tau
        rows.append((tau, float(alive.mean()), n))
    return pd.DataFrame(rows, columns=["tenure_days", "retained", "at_risk"])


def lorenz_points(revenue: np.ndarray) -> pd.DataFrame:
    """The Lorenz curve of revenue across customers, sampled at evenly spaced customer shares."""
    x, y = lorenz_curve(np.maximum(revenue, 0.0))
    grid = np.linspace(0.0, 1.0, LORENZ_POINTS)
    return pd.DataFrame({"customer_share": grid, "revenue_share": np.interp(grid, x, y)})




def _execute(loaded: LoadedScenario, tasks: list[Task], seed: int, customers: int | None, days: int | None,
             workspace: Workspace | None = None, room_for: int = 0) -> list[TaskResult]:
    """Runs as stacks, the flywheel whole in some worlds and cut in others (a world's own switch:
    lab.engine.stack.PER_WORLD_SWITCHES): each result bit-identical to the run alone. When every policy of the
    tasks has the same worlds (as `stacks_of` groups them), the policies' stacks share their warm-up
    (`lab.experiment.run.run_policies`); otherwise each policy's runs are one stack.

    Given a `workspace`, the process that made the runs keeps them there (`Workspace.keep`, each run's files
    whole or not at all) and returns them without their frames, so the processes write their runs side by
    side and hand back only the outcomes; once the group's first run is written, the disk must have room for
    `room_for` more runs of its size (`check_free_space`; `_run_tasks` counts them), or the comparison stops
    there. A run's `seconds` is its share of the stack's time."""
    t0 = time.perf_counter()
    whole, cut = loaded.scenario, replace(loaded.scenario, flywheel=False)

    def world(t: Task) -> tuple[Scenario, RunOptions]:
        return cut if t.cut else whole, RunOptions(seed=seed, address=(t.replication,), customers=customers, days=days)

    by_policy: dict[str, list[Task]] = {}
    for t in tasks:
        by_policy.setdefault(t.policy, []).append(t)
    first = next(iter(by_policy.values()))
    if all([(t.replication, t.cut) for t in g] == [(t.replication, t.cut) for t in first] for g in by_policy.values()):
        scenarios, options = zip(*(world(t) for t in first))
        shared = run_policies(list(scenarios), [loaded.policies[p] for p in by_policy], list(options))
        done = dict(zip((t for g in by_policy.values() for t in g), (res for runs in shared for res in runs)))
        results = [done[t] for t in tasks]
    else:
        runs = []
        for t in tasks:
            sc, opts = world(t)
            runs.append((sc, loaded.policies[t.policy], opts))
        results = list(run_stacked(runs, stack_size=len(tasks)))
    seconds = (time.perf_counter() - t0) / len(tasks)
    horizon = days or whole.days
    out = [TaskResult(t, res.summary, res.timeseries, retention_curve(res.customers, horizon, whole.period_days),
                      lorenz_points(res.customers["revenue"].to_numpy()), res.rule_fires, seconds)
           for t, res in zip(tasks, results, strict=True)]
    if workspace is None:
        return out
    for i, r in enumerate(out):
        assert r.timeseries is not None and r.retention is not None and r.lorenz is not None
        size = workspace.keep(key_of(r.task.policy, r.task.replication, r.task.cut), r.outcomes, r.rule_fires,
                              r.seconds, {"timeseries": r.timeseries, "retention": r.retention, "lorenz": r.lorenz})
        if i == 0 and room_for:
            check_free_space(workspace.path, size * room_for)
    return [replace(r, timeseries=None, retention=None, lorenz=None) for r in out]


def stacks_of(loaded: LoadedScenario, tasks: list[Task], options: CompareOptions) -> list[list[Task]]:
    """The tasks grouped into stacks for the processes, the heaviest first: the worlds (a replication, with the
    flywheel whole or cut) that every policy of the tasks runs in groups of policies x worlds
    (`lab.experiment.grouping.study_groups`), the group's policies sharing their warm-up in `_execute`, within
    the memory budget (`options.memory`, or a share of the machine's); the rest (a resumed comparison's
    unfinished worlds) one policy a stack (`lab.experiment.memory.stack_size`). Only the speed depends on the
    grouping."""
    customers = options.customers or loaded.scenario.population.customers
    per_world = customers * max(bytes_per_customer(loaded.scenario, p) for p in loaded.policies.values())
    budget = stack_budget(options.memory)
    policies = list(dict.fromkeys(t.policy for t in tasks))
    weight = {p: policy_weight(loaded.policies[p]) for p in policies}
    of_world: dict[tuple[int, bool], list[str]] = {}
    for t in tasks:
        of_world.setdefault((t.replication, t.cut), []).append(t.policy)
    groups = study_groups(of_world, policies, weight, runs_held(per_world, options.jobs, budget),
                          stack_size(per_world, options.jobs, len(tasks), budget), options.jobs)
    return [[Task(p, *w) for w in worlds for p in together] for together, worlds in groups]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """A progress bar with an ETA on a terminal; plain periodic lines otherwise."""

    def __init__(self, total: int, label: str, stream=None, every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.t0 = time.monotonic()
        self.last = 0.0
        self.every = every
        self.label = label
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit="run", file=self.stream, dynamic_ncols=True)

    def estimate(self, seconds: float, runs: int) -> None:
        """Say how long the runs to do will take (from the first one's time), before they are under way."""
        text = f"{self.label}: {runs} runs to do, about {_duration(seconds)} at the first run's pace"
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def extend(self, more: int) -> None:
        self.total += more
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            el = now - self.t0
            rate = self.done / el if el > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            print(f"{self.label}: {self.done}/{self.total} runs, {rate:.2f} runs/s, ETA {eta:.0f} s", file=self.stream,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class Comparison:
    """Everything a comparison produced: per-replication outcomes, series, curves, and their statistics."""

    loaded: LoadedScenario
    options: CompareOptions
    seed: int
    results: list[TaskResult] = field(default_factory=list)
    seconds: float = 0.0  # the time the runs took in this process's call (the resumed runs' not included)
    resumed: int = 0  # runs read back from the workspace of an interrupted comparison, not run again
    robustness: dict | None = None  # the robust study's section of summary.json (lab.experiment.robust), if run
    # where the runs' frames are when they are not held in memory (compare(..., workspace=...)); read while it exists
    store: Workspace | None = None
    # keyed by len(results): appends invalidate it
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def policies(self) -> list[str]:
        return list(self.loaded.policies)

    @property
    def baseline(self) -> str:
        return BASELINE

    @property
    def days(self) -> int:
        """The runs' length in days: --days, or the scenario's."""
        return self.options.days or self.loaded.scenario.days

    @property
    def customers(self) -> int:
        """The runs' starting customers as asked for: --customers, or the scenario's."""
        return self.options.customers or self.loaded.scenario.population.customers

    @property
    def measured_from(self) -> int:
        """The first day the outcomes cover: the scenario's launch day, 0 without one (as each run's record has
        it: lab.engine.record.RunRecord.measured_from)."""
        return self.loaded.scenario.launch_day

    @property
    def measured_days(self) -> int:
        """How many days the outcomes cover: from `measured_from` to the end of the runs."""
        return self.days - self.measured_from

    @property
    def launched(self) -> bool:
        """Whether the programme launches on a store already trading (a launch day, or an existing base from
        `population.from_fit`), so that retention follows the customers present at the launch (as
        lab.engine.launch.Launch.launched says of each run)."""
        sc = self.loaded.scenario
        return sc.launch_day > 0 or sc.population.from_fit is not None

    def _frame(self, cut: bool) -> pd.DataFrame:
        key = ("frame", cut, len(self.results))
        if key not in self._cache:
            self._cache[key] = self._build_frame(cut)
        return self._cache[key]

    def _build_frame(self, cut: bool) -> pd.DataFrame:
        rows = [(r.task.policy, r.task.replication, k, v) for r in self.results if r.task.cut == cut
                for k, v in r.outcomes.items()]
        return pd.DataFrame(rows, columns=["policy", "replication", "outcome", "value"]).sort_values(
            ["policy", "replication", "outcome"], kind="stable").reset_index(drop=True)

    @property
    def replications(self) -> pd.DataFrame:
        """One row per policy x replication x outcome (the flywheel whole)."""
        return self._frame(False)

    @property
    def replications_cut(self) -> pd.DataFrame:
        """The same with the flywheel cut."""
        return self._frame(True)

    def _order(self) -> list[TaskResult]:
        """The runs in the frames' order: policy name, the flywheel cut before whole, replication."""
        return sorted(self.results, key=lambda r: (r.task.policy, not r.task.cut, r.task.replication))

    def _stack(self, attr: str) -> pd.DataFrame:
        key = ("stack", attr, len(self.results))
        if key not in self._cache:
            self._cache[key] = self._build_stack(attr)
        return self._cache[key]

    def _build_stack(self, attr: str) -> pd.DataFrame:
        frames = []
        for r in self.results:
            f = getattr(r, attr).copy()
            f.insert(0, "flywheel", not r.task.cut)
            f.insert(0, "replication", r.task.replication)
            f.insert(0, "policy", r.task.policy)
            frames.append(f)
        if not frames:
            return pd.DataFrame()
        return (pd.concat(frames, ignore_index=True).sort_values(["policy", "flywheel", "replication"], kind="stable")
                .reset_index(drop=True))

    def frame_file(self, name: str) -> Path:
        """With a workspace: the file of every run's frames of kind ``name`` (``timeseries``, ``retention``,
        ``lorenz``), stacked in the published files' order; written once (streamed run by run) and reused."""
        assert self.store is not None
        key = ("file", name, len(self.results))
        if key not in self._cache:
            from lab.experiment.folder import key_of

            runs = [(key_of(r.task.policy, r.task.replication, r.task.cut),
                     {"policy": r.task.policy, "replication": r.task.replication, "flywheel": not r.task.cut})
                    for r in self._order()]
            self._cache[key] = self.store.stack(name, runs)
        return self._cache[key]

    def frames(self, name: str, policy: str, flywheel: bool = True, columns: list[str] | None = None) -> pd.DataFrame:
        """One policy's rows of the stacked frames ``name`` (every replication, sorted by replication), with the
        flywheel whole (or cut): what a figure draws. With a workspace it is read from disk, only these rows and
        ``columns`` (and the leading policy, replication and flywheel), so a figure holds one series' values, not
        every run's frames."""
        if self.store is None:
            f = self._stack(name)
            f = f[(f["policy"] == policy) & (f["flywheel"] == flywheel)]
            if columns is not None:
                f = f[["policy", "replication", "flywheel", *[c for c in columns if c in f.columns]]]
            return f.reset_index(drop=True)
        import pyarrow.parquet as pq

        path = self.frame_file(name)
        meta, names, groups = self._row_groups(name)
        cols = None if columns is None else ["policy", "replication", "flywheel",
                                             *[c for c in columns if c in names]]
        if groups is not None:
            with pq.ParquetFile(path, metadata=meta) as f:
                table = f.read_row_groups(groups.get((policy, flywheel), []), columns=cols)
        else:  # a file whose row groups do not each hold one run: read it through a filter
            table = pq.read_table(path, columns=cols, filters=[("policy", "==", policy),
                                                               ("flywheel", "==", flywheel)])
        return table.to_pandas().reset_index(drop=True)

    def _row_groups(self, name: str) -> tuple[Any, tuple[str, ...], dict[tuple[str, bool], list[int]] | None]:
        """The stacked file ``name``'s footer, its column names and which row groups hold each (policy, flywheel)
        pair's runs (None unless every row group holds one pair, as :meth:`Workspace.stack` writes them).

        Read once: a figure asks for one policy's rows many times (one series each), and parsing the footer of
        every run's row group is most of the cost of a small read, so each read reuses the footer and reads
        only its runs' row groups, in file order (the rows a filter on policy and flywheel selects)."""
        key = ("row groups", name, len(self.results))
        if key not in self._cache:
            import pyarrow.parquet as pq

            meta = pq.read_metadata(self.frame_file(name))
            names = tuple(meta.schema.to_arrow_schema().names)
            groups: dict[tuple[str, bool], list[int]] | None = {} if {"policy", "flywheel"} <= set(names) else None
            for g in range(meta.num_row_groups if groups is not None else 0):
                stats = [meta.row_group(g).column(names.index(c)).statistics for c in ("policy", "flywheel")]
                if any(s is None or not s.has_min_max or s.min != s.max for s in stats):
                    groups = None
                    break
                assert groups is not None
                groups.setdefault((str(stats[0].min), bool(stats[1].min)), []).append(g)
            self._cache[key] = (meta, names, groups)
        return self._cache[key]

    def __getstate__(self) -> dict:
        """What a worker process receives: everything but the caches, which it rebuilds (the stacked frame files'
        paths are kept: a worker reads those files, never writes them)."""
        state = dict(self.__dict__)
        state["_cache"] = {k: v for k, v in self._cache.items() if k[0] == "file"}
        return state

    def _frames_all(self, name: str) -> pd.DataFrame:
        if self.store is None:
            return self._stack(name)
        return pd.read_parquet(self.frame_file(name))

    @property
    def timeseries(self) -> pd.DataFrame:
        """Per policy x replication x period: the store and flywheel series (every run's: for a few replications;
        a figure reads one policy's with :meth:`frames`)."""
        return self._frames_all("timeseries")

    @property
    def retention(self) -> pd.DataFrame:
        return self._frames_all("retention")

    @property
    def lorenz(self) -> pd.DataFrame:
        return self._frames_all("lorenz")

    def matrix(self, outcome: str, cut: bool = False) -> pd.DataFrame:
        """Replications x policies for one outcome."""
        key = ("matrix", outcome, cut, len(self.results))
        if key not in self._cache:
            self._cache[key] = self._build_matrix(outcome, cut)
        return self._cache[key]

    def _build_matrix(self, outcome: str, cut: bool) -> pd.DataFrame:
        f = self._frame(cut)
        f = f[f["outcome"] == outcome]
        return f.pivot(index="replication", columns="policy", values="value")[
            [p for p in self.policies if p in set(f["policy"])]]

    def interval(self, policy: str, outcome: str, cut: bool = False) -> Interval:
        return mean_ci(_finite(self.matrix(outcome, cut)[policy].to_numpy()))

    def difference(self, policy: str, outcome: str, cut: bool = False) -> Interval:
        """Paired difference policy - baseline over replications (common random numbers)."""
        mat = self.matrix(outcome, cut)
        x, y = mat[policy].to_numpy(), mat[self.baseline].to_numpy()
        ok = np.isfinite(x) & np.isfinite(y)
        return paired_diff_ci(x[ok], y[ok])

    def programme_return(self, policy: str) -> Interval:
        """Return on the programme: (net profit - baseline net profit) / programme cost, per replication."""
        mat = self.matrix("net_profit")
        cost = self.matrix("programme_cost")[policy].to_numpy()
        gain = mat[policy].to_numpy() - mat[self.baseline].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            roi = np.where(cost > 0, gain / cost, np.nan)
        return mean_ci(_finite(roi))

    def flywheel_share_verdict(self, policy: str, outcome: str = "net_profit") -> FlywheelShare:
        """The flywheel share of a policy's effect, or why it is not meaningful (lab.metrics.flywheel_share)."""
        whole = self.matrix(outcome)
        d_whole = whole[policy].to_numpy() - whole[self.baseline].to_numpy()
        if not any(r.task.cut for r in self.results):
            return flywheel_share(d_whole, None)
        cut = self.matrix(outcome, cut=True)
        return flywheel_share(d_whole, cut[policy].to_numpy() - cut[self.baseline].to_numpy())

    def flywheel_share(self, policy: str, outcome: str = "net_profit") -> Interval | None:
        """Share of a policy's effect on an outcome that travels round the flywheel: 1 - effect(cut) / effect(whole);
        None when it is not meaningful (see `flywheel_share_verdict` for why)."""
        return self.flywheel_share_verdict(policy, outcome).interval

    def summary(self) -> dict:
        """The stable contract of summary.json (see docs/OUTPUTS.md)."""
        n = len({r.task.replication for r in self.results if not r.task.cut})
        out: dict = {
            "scenario": self.loaded.scenario.name,
            "baseline": self.baseline,
            "seed": self.seed,
            "replications": n,
            "days": self.days,
            "customers": self.customers,
            "level": 0.95,
            "outcomes": {o.name: {"unit": o.unit, "higher_is_better": o.higher_is_better, "description": o.description}
                         for o in REGISTRY.values()},
            "policies": {},
        }
        if self.launched:  # outcomes are measured from the launch
            out["launch_day"] = self.measured_from
        for p in self.policies:
            entry: dict = {"outcomes": {o: self.interval(p, o).to_dict() for o in REGISTRY}}
            if p != self.baseline:
                entry["vs_baseline"] = {o: {**self.difference(p, o).to_dict(),
                                            "excludes_zero": bool(self.difference(p, o).excludes_zero)}
                                        for o in REGISTRY}
                entry["programme_return"] = self.programme_return(p).to_dict()
                share = self.flywheel_share_verdict(p)
                entry["flywheel_share_net_profit"] = share.interval.to_dict() if share.interval is not None else None
                entry["flywheel_share_note"] = share.reason
            out["policies"][p] = entry
        out["verdict"] = self.verdict()
        if self.robustness is not None:
            out["robustness"] = self.robustness
        return out

    def verdict(self) -> dict:
        """Which policy wins on net profit and on retention, by how much, and how sure we are."""
        res = {}
        for outcome in ("net_profit", "retention_12m", "revenue"):
            means = {p: self.interval(p, outcome).mean for p in self.policies}
            finite = {p: v for p, v in means.items() if math.isfinite(v)}
            if not finite:
                continue
            best = max(finite, key=lambda p: finite[p])
            entry = {"best": best, "mean": finite[best]}
            if best != self.baseline:
                d = self.difference(best, outcome)
                entry["vs_baseline"] = d.to_dict()
                entry["significant"] = bool(d.excludes_zero)
            others = [p for p in finite if p != best]
            if others:
                runner = max(others, key=lambda p: finite[p])
                mat = self.matrix(outcome)
                gap = paired_diff_ci(mat[best].to_numpy(), mat[runner].to_numpy())
                entry["runner_up"] = runner
                entry["vs_runner_up"] = gap.to_dict()
                entry["clear_winner"] = bool(gap.excludes_zero)
            robust = (self.robustness or {}).get("verdict", {}).get(outcome)
            if robust is not None and "best" in robust:
                # the robust study's verdict: a lead in this one world is no clear winner when it is fragile
                entry["holds_across_worlds"] = bool(robust["robust"] and robust["best"] == best)
                if "clear_winner" in entry:
                    entry["clear_in_this_world"] = entry["clear_winner"]
                    entry["clear_winner"] = entry["clear_winner"] and entry["holds_across_worlds"]
            res[outcome] = entry
        return res


def _finite(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[np.isfinite(x)]


PRECISION_OF = ("difference", "level")


def _needed(comp: Comparison, precision: float, of: str = "difference") -> int:
    """Replications needed so every headline outcome meets the precision target.

    With `of="difference"` (the default) the target is on what the verdict
    rests on: each policy's paired difference against the baseline, whose 95%
    half-width must be within `precision` of the baseline's mean (a difference
    of 0 has no relative precision of its own). With `of="level"` it is each
    policy's own mean."""
    need = 0
    for p in comp.policies:
        if of == "difference" and p == comp.baseline:
            continue
        for o in HEADLINE:
            mat = comp.matrix(o)
            if of == "difference":
                x, y = mat[p].to_numpy(), mat[comp.baseline].to_numpy()
                ok = np.isfinite(x) & np.isfinite(y)
                d, base = x[ok] - y[ok], y[ok]
                if len(d) < 2 or np.all(d == d[0]) or float(np.mean(base)) == 0.0:
                    continue
                # the same spread as the differences, centred on the baseline's mean: Law & Kelton's count for it
                # is the count for a half-width within `precision` of the baseline
                x = d - np.mean(d) + np.mean(base)
                if mean_ci(d).half_width / abs(float(np.mean(base))) <= precision:
                    continue
            else:
                x = _finite(mat[p].to_numpy())
                if len(x) < 2 or np.all(x == x[0]):
                    continue
                if relative_half_width(mean_ci(x)) <= precision:
                    continue
            try:
                need = max(need, replications_needed(x, precision))
            except ValueError:
                continue
    return need


def identity(loaded: LoadedScenario, options: CompareOptions) -> dict:
    """What makes a comparison this comparison (its inputs by hash, seed and options): a resume must match it."""
    from lab.experiment.manifest import file_hash

    seed = options.seed if options.seed is not None else loaded.scenario.seed
    return {"scenario": file_hash(loaded.path), "policies": {k: file_hash(v) for k, v in loaded.policy_files.items()},
            "order": list(loaded.policies), "seed": seed, "replications": options.replications,
            "precision": options.precision, "precision_of": options.precision_of,
            "max_replications": options.max_replications, "customers": options.customers, "days": options.days,
            "flywheel_split": options.flywheel_split}


def compare(loaded: LoadedScenario, options: CompareOptions, progress: bool = True,
            on_result: Callable[[TaskResult], None] | None = None, workspace: Workspace | None = None,
            pool: ProcessPoolExecutor | None = None) -> Comparison:
    """Run the comparison: every policy x replication (and the flywheel-cut twins), in parallel.

    With a `workspace` (lab.experiment.folder), each finished run is written
    there as it comes (by the process that made it) and runs already there are
    not run again: a killed comparison resumed gives the uninterrupted result;
    `on_result` then gets each run without its frames. The time the whole
    comparison will take is said (on the progress stream) once the first run
    has been timed, and after each group's first run the disk's free space is
    checked against the measured size of that run's files, for the runs still
    to come and the published copy.

    The runs go to `pool` when one is given (lab.experiment.processes.worker_pool,
    which the caller keeps and shuts down: `lab compare` draws its figures on
    it afterwards); otherwise to a pool of `options.jobs` workers made for
    them, or with one job to this process."""
    seed = options.seed if options.seed is not None else loaded.scenario.seed
    comp = Comparison(loaded, options, seed)
    t0 = time.perf_counter()
    comp.store = workspace
    kept: dict[str, TaskResult] = {}
    if workspace is not None:
        for key, data in workspace.kept():
            if key.startswith("r"):  # a comparison's run (a robust study's are "w...": lab.experiment.robust)
                kept[key] = TaskResult(Task("", 0), data["outcomes"], None, None, None, data["rule_fires"],
                                       data["seconds"])
    first = max(2, options.replications) if options.precision is not None else max(1, options.replications)
    wave = list(range(first))
    bar = Progress(0, f"compare {loaded.scenario.name}") if progress else None
    own = pool is None and options.jobs > 1
    if own:
        check_main_guarded(f"compare(..., CompareOptions(jobs={options.jobs}))")
        pool = spawn_pool(options.jobs)
    try:
        done_reps = 0
        while wave:
            tasks = [Task(p, k, cut) for k in wave for p in comp.policies
                     for cut in ((False, True) if options.flywheel_split else (False,))]
            todo = []
            for t in tasks:
                got = kept.pop(key_of(t.policy, t.replication, t.cut), None)
                if got is None:
                    todo.append(t)
                    continue
                comp.results.append(replace(got, task=t))
                comp.resumed += 1
            if bar is not None:  # the runs to do: those kept from an interrupted comparison would inflate the rate
                bar.extend(len(todo))
            first_new = True
            for group in _run_tasks(loaded, todo, seed, options, pool, workspace, len(comp.results) + len(todo)):
                for r in group:
                    comp.results.append(r)
                    if first_new and bar is not None:
                        first_new = False
                        bar.estimate(r.seconds * len(todo) / max(1, min(options.jobs, len(todo))), len(todo))
                    if on_result is not None:
                        on_result(r)
                if bar is not None:  # a group's runs end together: counted at once, for a rate that holds
                    bar.step(len(group))
            done_reps += len(wave)
            if options.precision is None:
                break
            need = min(_needed(comp, options.precision, options.precision_of), options.max_replications)
            wave = list(range(done_reps, need)) if need > done_reps else []
    finally:
        if own and pool is not None:
            pool.shutdown()
        if bar is not None:
            bar.close()
    comp.results.sort(key=lambda r: (comp.policies.index(r.task.policy), r.task.cut, r.task.replication))
    comp.seconds = time.perf_counter() - t0
    return comp


def _run_tasks(loaded: LoadedScenario, tasks: list[Task], seed: int, options: CompareOptions,
               pool: ProcessPoolExecutor | None, workspace: Workspace | None,
               published: int) -> Iterable[list[TaskResult]]:
    """The tasks' results, a group at a time as the groups end, run here or on `pool`. With a `workspace`,
    each group checks the disk after its first run for the room the runs still to come need: the later groups'
    runs and its own rest (the groups before it are taken to be written, as they are with one process), and
    once more every run of the comparison, `published` of them, for the published folder."""
    stacks = stacks_of(loaded, tasks, options)
    after = [sum(len(g) for g in stacks[i:]) - 1 for i in range(len(stacks))]
    rooms = [a + published if workspace is not None else 0 for a in after]
    if pool is None:
        for group, room in zip(stacks, rooms, strict=True):
            yield _execute(loaded, group, seed, options.customers, options.days, workspace, room)
        return
    futures = [pool.submit(_execute, loaded, group, seed, options.customers, options.days, workspace, room)
               for group, room in zip(stacks, rooms, strict=True)]
    for f in as_completed(futures):
        yield f.result()


def write_comparison(comp: Comparison, out: Path, argv: list[str] | None = None) -> dict[str, Path]:
    """Write a comparison's files under `out` (the report is written by lab.report)."""
    from lab.experiment.manifest import manifest
    from lab.experiment.run import write_atomic, write_json, write_parquet

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "summary": out / "summary.json",
        "replications": out / "replications.parquet",
        "timeseries": out / "timeseries.parquet",
        "retention": out / "retention.parquet",
        "lorenz": out / "lorenz.parquet",
        "manifest": out / "manifest.json",
    }
    write_json(files["summary"], comp.summary())
    reps = pd.concat([comp.replications.assign(flywheel=True), comp.replications_cut.assign(flywheel=False)],
                     ignore_index=True)
    write_parquet(files["replications"], reps)
    for name in FRAMES:
        if comp.store is None:
            write_parquet(files[name], getattr(comp, name))
        else:  # stacked on disk run by run: the frames are never all in memory
            stacked = comp.frame_file(name)
            write_atomic(files[name], partial(shutil.copyfile, stacked))
    inputs: dict[str, str | Path] = {"scenario": comp.loaded.path,
                                     **{f"policy:{k}": v for k, v in comp.loaded.policy_files.items()}}
    opts = comp.options
    write_json(files["manifest"], manifest(inputs, comp.seed, argv, options={
        "replications": opts.replications, "precision": opts.precision, "max_replications": opts.max_replications,
        "customers": opts.customers, "days": opts.days, "jobs": opts.jobs, "flywheel_split": opts.flywheel_split},
        seconds=comp.seconds))
    return files
