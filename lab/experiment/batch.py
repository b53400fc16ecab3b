"""Scenario batches at research scale: a design over scenario and policy parameters, many runs, one Parquet store.

A batch spec (YAML) names a base scenario, the policies, the factors to vary
(any scenario or policy parameter, by path: see lab.experiment.overrides),
a design (grid, Latin hypercube or Sobol': see lab.experiment.design) and the
replications per design point. Every (design point, replication) is one task
that runs all the policies; its random streams come from the batch seed and
the address (point, replication), never from the policy or the order runs
happen to finish in, so policies share common random numbers and the dataset
is the same whatever executes it.

The driver alone writes the store, in chunks, each file written to a
temporary name and renamed into place. The runs chunk is written last and
commits the chunk: a run is complete iff its rows are in a committed chunk,
so a batch killed at any moment and restarted with --resume skips exactly the
completed runs and ends with the same rows as an uninterrupted batch.
docs/BATCHES.md describes the spec, the store and the guarantees.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing
import os
import re
import shlex
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lab.cliargs import positive_int
from lab.config import Expr, Node, SourceMap, build, option, read_yaml
from lab.errors import Diagnostic, LabError, suggest
from lab.experiment.design import Axis, Design, Grid, Sobol, design_points, grid_size
from lab.experiment.manifest import file_hash, versions
from lab.experiment.overrides import Leaf, PathError, Target, apply, resolve
from lab.experiment.run import json_safe, run_policy, write_atomic, write_json
from lab.metrics.outcomes import OUTCOMES
from lab.policy.loader import compile_checked, read_policy
from lab.policy.model import Policy
from lab.scenario.loader import BASELINE, available_policies, check_scenario, policy_file, read_scenario, world_of
from lab.scenario.model import Scenario

SERIES = ("revenue", "net_profit", "alive", "service_quality", "customer_satisfaction", "points_liability",
          "credit_outstanding", "market_share")
RESERVED = ("run_id", "point", "replication", "policy", "outcome", "value", "period", "day_end", "variable", "error")
MANIFEST = "manifest.json"
PARTS = ("runs", "series", "failures")
FORMAT = 1

EXIT_OK, EXIT_UNFINISHED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PART = re.compile(r"^part-(\d+)\.parquet$")


class BatchError(Exception):
    """A batch that cannot start or go on (a refused output folder, a changed spec): the message says what to do."""


# --------------------------------------------------------------------------- the spec
@dataclass(frozen=True, kw_only=True)
class FactorSpec:
    """One parameter to vary: where it lives, and its range or levels."""

    path: str = option("the parameter, e.g. population.segments.regulars.reward_sensitivity or "
                       "policies.points.rules.redeem.do.0.redeem.discount")
    low: float | None = option("lowest value of a numeric range", default=None)
    high: float | None = option("highest value of a numeric range", default=None)
    steps: int | None = option("grid designs: evenly spaced values over low..high", default=None, min=2, max=100_000)
    levels: tuple[Expr | None, ...] | None = option(
        "or: the values to use (numbers, text, true/false or null), converted to the parameter's type", default=None)
    type_: Literal["float", "int", "choice"] | None = option(
        "float, int or choice (default: from the parameter: whole numbers are int, text and true/false are choice)",
        default=None)
    template: str | None = option("for an expression parameter: the expression, with {value} where the factor's value goes, "
                                  "e.g. 'floor(purchase.amount * {value})'", default=None)
    description: str = option("what the factor is", default="")


@dataclass(frozen=True, kw_only=True)
class BatchSpec:
    """A batch: a base scenario, factors to vary over a design, the policies, and the replications."""

    name: str = option("the batch's name")
    description: str = option("what the batch is for", default="")
    scenario: str = option("the base scenario file, relative to this file")
    policies: tuple[str, ...] | None = option("policies to compare (default: the scenario's); the baseline 'none' is always run",
                                              default=None)
    factors: dict[str, FactorSpec] = option("factors by short name (the name is their column in the dataset)",
                                            default_factory=dict)
    design: Design = option("grid, lhs or sobol", default_factory=Grid, kind="design")
    replications: int = option("replications per design point (common random numbers across policies)", default=3,
                               min=1, max=100_000)
    customers: int | None = option("customers at the start of every run (default: the scenario's)", default=None,
                                   min=1, max=50_000_000)
    days: int | None = option("days simulated in every run (default: the scenario's)", default=None, min=1, max=36500)
    seed: int | None = option("the batch seed (default: the scenario's)", default=None, min=0)


# --------------------------------------------------------------------------- a loaded batch
@dataclass(frozen=True)
class Factor:
    """A checked factor: its target, its domain and how its values become parameter values."""

    name: str
    path: str
    target: Target
    axis: Axis
    dtype: Literal["float64", "int64", "bool", "string"]
    template: str | None
    file: str
    position: tuple[int, int]
    level_positions: tuple[tuple[int, int], ...] = ()

    def field_value(self, value: object) -> object:
        """The parameter value a factor value stands for (expressions become positioned Expr text)."""
        kind = self.target.leaf.kind
        if value is None:
            return None
        if kind == "float":
            return float(value)  # type: ignore[arg-type]
        if kind == "int":
            return int(value)  # type: ignore[call-overload]
        if kind != "expr":
            return value
        text = _expr_text(value)
        line, col = self.position
        if self.template is not None:
            text = self.template.replace("{value}", text)
        elif self.axis.levels is not None and value in self.axis.levels:
            line, col = self.level_positions[self.axis.levels.index(value)]
        return Expr(text, file=self.file, line=line, col=col)

    def describe(self) -> dict[str, object]:
        """The factor as plain data, for the manifest."""
        a = self.axis
        out: dict[str, object] = {"name": self.name, "path": self.path, "type": a.kind, "dtype": self.dtype}
        if a.levels is not None:
            out["levels"] = list(a.levels)
        else:
            out.update(low=a.low, high=a.high)
            if a.steps is not None:
                out["steps"] = a.steps
        if self.template is not None:
            out["template"] = self.template
        return out


@dataclass(frozen=True)
class PolicySource:
    """A policy of the batch as parsed from its file, before any factor touches it."""

    name: str
    policy: Policy
    where: SourceMap
    path: Path


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
    def replications(self) -> int:
        return self.spec.replications

    @property
    def policy_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.policies)

    @property
    def total_runs(self) -> int:
        return len(self.points) * self.replications * len(self.policies)

    def run_id(self, point: int, replication: int, policy: str) -> str:
        """The stable name of a run, e.g. 'p0003-r01-points'."""
        pw = max(4, len(str(max(len(self.points) - 1, 0))))
        rw = max(2, len(str(self.replications - 1)))
        return f"p{point:0{pw}d}-r{replication:0{rw}d}-{policy}"


def load_spec(path: str | Path, *, customers: int | None = None, days: int | None = None) -> Batch:
    """Read and check a batch spec, its scenario and its policies; LabError lists every problem as FILE:LINE:COL.

    `customers` and `days` override the spec's (as the command line does)."""
    path = Path(path)
    file = str(path)
    root = read_yaml(path)
    spec, where = build(root, BatchSpec, file)
    err = _Problems(file, where)
    diags = err.diags

    scenario_path = path.parent / spec.scenario
    if not scenario_path.is_file():
        near = [p.name for p in scenario_path.parent.glob("*.yaml")] if scenario_path.parent.is_dir() else []
        err(("scenario",), f"cannot find the scenario '{spec.scenario}' (looked for {scenario_path}); paths are relative "
                           f"to the batch spec{suggest(Path(spec.scenario).name, near)}")
        raise LabError(diags)
    scenario, sc_where = read_scenario(scenario_path)
    sc_diags = check_scenario(scenario, sc_where, str(scenario_path))
    if sc_diags:
        raise LabError(sc_diags)
    world = world_of(scenario)

    names = list(spec.policies) if spec.policies is not None else list(scenario.policies)
    names = [BASELINE] + [n for n in names if n != BASELINE]
    sources: dict[str, PolicySource] = {}
    for i, name in enumerate(names):
        pf = policy_file(name, scenario_path)
        if pf is None:
            at: tuple[str | int, ...] = ("policies", spec.policies.index(name)) if spec.policies and name in spec.policies \
                else ("policies",) if spec.policies is not None else ("scenario",)
            err(at, f"policy '{name}' not found (looked for {name}.yaml beside the scenario and in policies/)"
                    + suggest(name, available_policies(scenario_path)))
            continue
        pol, pwhere = read_policy(pf)
        compile_checked(pol, pwhere, str(pf), world)
        if pol.name in sources:
            err(("policies",), f"two policies are named '{pol.name}' ({sources[pol.name].path} and {pf}); names must differ")
            continue
        sources[pol.name] = PolicySource(pol.name, pol, pwhere, pf)
    if diags:
        raise LabError(diags)

    customers = customers if customers is not None else spec.customers
    days = days if days is not None else spec.days
    factors: list[Factor] = []
    seen: dict[tuple[object, ...], str] = {}
    fnode = root.get("factors")
    for name, fs in spec.factors.items():
        fac = _check_factor(name, fs, fnode.get(name) if fnode else None, scenario, sources, spec.design, where,
                            file, err, customers, days)
        if fac is None:
            continue
        key = (fac.target.policy, fac.target.steps)
        if key in seen:
            err(("factors", name, "path"), f"factor '{name}' sets the same parameter as factor '{seen[key]}'; "
                                          "merge them into one factor")
            continue
        seen[key] = name
        factors.append(fac)
    design = spec.design
    if not isinstance(design, Grid):
        tag = design.tag
        if not spec.factors:
            err(("design",), f"a {tag} design needs at least one factor; add factors, or use 'design: grid' "
                             "to run just the replications")
        if isinstance(design, Sobol) and design.samples & (design.samples - 1):
            lo = 1 << (design.samples.bit_length() - 1)
            err(("design", tag, "samples"), f"a Sobol' design keeps its balance only with a power of two samples; "
                                            f"use samples: {lo} or {lo * 2}")
    if diags:
        raise LabError(diags)
    if isinstance(design, Grid):
        try:
            n = grid_size([f.axis for f in factors])
        except ValueError as e:
            err(("design",), str(e))
            raise LabError(diags) from None
        if n > 1_000_000:
            err(("design",), f"the grid has {n} points (the limit is 1000000); use fewer levels or steps, "
                             "or an lhs or sobol design")
            raise LabError(diags)
    seed = spec.seed if spec.seed is not None else scenario.seed
    design_seed = getattr(design, "seed", None)
    design_seed = seed if design_seed is None else design_seed
    points = tuple(design_points([f.axis for f in factors], design, design_seed))
    return Batch(spec, path, scenario, sc_where, scenario_path, tuple(sources.values()), tuple(factors), points,
                 seed, design_seed, customers, days)


class _Problems:
    """Collects diagnostics at YAML paths of one file."""

    def __init__(self, file: str, where: SourceMap) -> None:
        self.file, self.where = file, where
        self.diags: list[Diagnostic] = []

    def __call__(self, at: tuple[str | int, ...], msg: str) -> None:
        line, col = self.where.at(at)
        self.diags.append(Diagnostic(self.file, line, col, msg))

    def __len__(self) -> int:
        return len(self.diags)


def _check_factor(name: str, fs: FactorSpec, node: Node | None, scenario: Scenario, sources: dict[str, PolicySource],
                  design: Design, where: SourceMap, file: str, err: _Problems, customers: int | None,
                  days: int | None) -> Factor | None:
    base = ("factors", name)
    n0 = len(err)
    if not _NAME.match(name):
        err(base, f"factor name '{name}' becomes a column name: use letters, digits and _ (not starting with a digit)")
    elif name in RESERVED:
        err(base, f"factor name '{name}' is also a column of the dataset; rename it, e.g. '{name}_factor'")
    try:
        target = resolve(fs.path, scenario, {k: v.policy for k, v in sources.items()})
    except PathError as e:
        err(base + ("path",), f"factor '{name}': {e}")
        return None
    leaf = target.leaf
    steps = target.steps
    fields = [s.name for s in steps if s.how == "field"]
    if target.policy is None and customers is not None and fields == ["population", "customers"]:
        err(base + ("path",), f"factor '{name}' varies population.customers, but the batch sets customers: {customers} "
                              "for every run; remove one of them")
    if target.policy is None and days is not None and fields == ["days"]:
        err(base + ("path",), f"factor '{name}' varies days, but the batch sets days: {days} for every run; "
                              "remove one of them")
    has_range = fs.low is not None or fs.high is not None
    kind = _factor_kind(name, fs, leaf, base, err)
    if kind is None:
        return None
    levels_node = node.get("levels") if node is not None else None
    level_nodes = tuple(levels_node.value) if levels_node is not None and levels_node.kind == "seq" else ()
    if has_range and fs.levels is not None:
        err(base + ("levels",), f"factor '{name}' has both a range (low/high) and levels; keep one")
        return None
    if not has_range and fs.levels is None:
        hint = "levels: [true, false]" if leaf.kind == "bool" else "levels: [...]" if kind == "choice" else "low: ..., high: ..."
        err(base, f"factor '{name}' needs a range or levels, e.g. {hint}")
        return None
    if fs.template is not None:
        if leaf.kind != "expr":
            err(base + ("template",), f"factor '{name}': template only applies to expression parameters; "
                                      f"'{fs.path}' is {leaf.describe()}")
        elif "{value}" not in fs.template:
            err(base + ("template",), f"factor '{name}': the template needs {{value}} where the value goes, "
                                      f"e.g. 'floor(purchase.amount * {{value}})'")
    levels: tuple[Any, ...] | None = None
    if has_range:
        if kind == "choice":
            err(base, f"factor '{name}' is a choice: give levels instead of low/high")
            return None
        for key, v in (("low", fs.low), ("high", fs.high)):
            if v is None:
                err(base, f"factor '{name}' needs both low and high (missing {key})")
                return None
            if not math.isfinite(v):
                err(base + (key,), f"factor '{name}': {key} must be a finite number")
                return None
            if kind == "int" and not float(v).is_integer():
                err(base + (key,), f"factor '{name}' takes whole numbers; {key} is {v:g}")
            _check_bounds(name, v, leaf, fs.path, base + (key,), err)
        if fs.low is not None and fs.high is not None and not fs.low < fs.high:
            err(base + ("high",), f"factor '{name}': high ({fs.high:g}) must be above low ({fs.low:g}); to fix a value, "
                                  "set it in the scenario or policy file instead")
    else:
        values = []
        if not level_nodes:
            err(base + ("levels",), f"factor '{name}' needs at least one level")
            return None
        for i, ln in enumerate(level_nodes):
            v = _level_value(name, ln.value, kind, leaf, fs, base + ("levels", i), err)
            values.append(v)
        if len(err) == n0:
            dup = [v for i, v in enumerate(values) if values.index(v) != i]
            if dup:
                err(base + ("levels",), f"factor '{name}' lists the level {dup[0]!r} twice")
        levels = tuple(values)
    if fs.steps is not None:
        if not isinstance(design, Grid):
            err(base + ("steps",), f"factor '{name}': steps only applies to grid designs (an {design.tag} design "
                                   "draws 'samples' values over low..high); remove it")
        elif levels is not None:
            err(base + ("steps",), f"factor '{name}': steps cuts a range into levels; with levels, remove it")
    elif isinstance(design, Grid) and levels is None and has_range:
        err(base, f"factor '{name}': a grid design needs steps (e.g. steps: 5) for a range, or levels")
    if len(err) > n0:
        return None
    axis = Axis(name, kind, fs.low, fs.high, fs.steps, levels)
    positions = tuple((ln.line, ln.col) for ln in level_nodes)
    at = ("template",) if fs.template is not None else ("path",)
    return Factor(name, fs.path, target, axis, _dtype(kind, leaf, levels), fs.template, file,
                  where.at(base + at), positions)


def _factor_kind(name: str, fs: FactorSpec, leaf: Leaf, base: tuple, err: _Problems) -> str | None:
    want = fs.type_
    if leaf.kind in ("float", "int"):
        natural = leaf.kind
        if want == "float" and natural == "int":
            err(base + ("type",), f"factor '{name}': '{fs.path}' takes whole numbers; use type: int (or leave type out)")
            return None
        return want or natural
    if leaf.kind == "expr":
        if want == "choice":
            return "choice"
        if fs.template is not None or fs.low is not None or fs.high is not None:
            return want or "float"
        return want or "choice"
    if want in ("float", "int"):
        err(base + ("type",), f"factor '{name}': '{fs.path}' is {leaf.describe()}, so the factor is a choice; "
                              "give levels and remove type")
        return None
    return "choice"


def _check_bounds(name: str, v: float, leaf: Leaf, path: str, at: tuple, err: _Problems) -> None:
    meta = leaf.meta
    if meta is not None and meta.violates(v):
        err(at, f"factor '{name}': {v:g} is outside what '{path}' allows ({meta.bounds_text()})")


def _level_value(name: str, v: object, kind: str, leaf: Leaf, fs: FactorSpec, at: tuple, err: _Problems) -> object:
    bad = f"factor '{name}': level {v!r} is not {leaf.describe()} as '{fs.path}' needs"
    if v is None:
        if not leaf.optional:
            err(at, f"factor '{name}': '{fs.path}' cannot be left empty (null)")
        return None
    numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
    if leaf.kind in ("float", "int") or (leaf.kind == "expr" and kind in ("float", "int")):
        if not numeric:
            err(at, bad if leaf.kind != "expr" else f"factor '{name}': level {v!r} is not a number")
            return v
        if (kind == "int" or leaf.kind == "int") and not float(v).is_integer():
            err(at, f"factor '{name}': level {v!r} is not a whole number as '{fs.path}' needs")
            return v
        _check_bounds(name, float(v), leaf, fs.path, at, err)
        return int(v) if (kind == "int" or leaf.kind == "int") else float(v)
    if leaf.kind == "bool":
        if not isinstance(v, bool):
            err(at, bad + " (write true or false)")
        return v
    if leaf.kind == "literal":
        if v not in leaf.choices:
            err(at, f"factor '{name}': {v!r} is not one of " + ", ".join(map(repr, leaf.choices))
                + (suggest(v, leaf.choices) if isinstance(v, str) else ""))
        return v
    if leaf.kind == "str":
        if not isinstance(v, str):
            err(at, bad + f" (put it in quotes: \"{v}\")")
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return v  # an expression level: text, or a number used as a constant expression


def _dtype(kind: str, leaf: Leaf, levels: tuple[Any, ...] | None) -> Literal["float64", "int64", "bool", "string"]:
    if kind == "int":
        return "int64"
    if kind == "float":
        return "float64"
    if leaf.kind in ("float", "int"):
        return "float64" if leaf.kind == "float" else "int64"
    if leaf.kind == "bool":
        return "bool"
    if levels is not None and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in levels):
        return "float64"
    return "string"


def _expr_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --------------------------------------------------------------------------- one task: all policies of (point, replication)
@dataclass(frozen=True)
class RunRecord:
    """What one run hands back to the driver: outcomes and key series, or the error that stopped it."""

    policy: str
    outcomes: np.ndarray | None = None  # in OUTCOMES order
    period: np.ndarray | None = None
    day_end: np.ndarray | None = None
    series: np.ndarray | None = None  # periods x SERIES
    error: str | None = None


@dataclass(frozen=True)
class TaskResult:
    """The runs of one (design point, replication)."""

    point: int
    replication: int
    records: tuple[RunRecord, ...]


def apply_point(batch: Batch, values: Mapping[str, Any]) -> tuple[Scenario, dict[str, Policy]]:
    """The scenario and policies at one design point (the base objects are not changed)."""
    sc = batch.scenario
    pols = {p.name: p.policy for p in batch.policies}
    for f in batch.factors:
        v = f.field_value(values[f.name])
        if f.target.policy is None:
            sc = apply(sc, f.target.steps, v)
        else:
            pols[f.target.policy] = apply(pols[f.target.policy], f.target.steps, v)
    return sc, pols


def _show(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)


def run_task(batch: Batch, point: int, replication: int, values: Mapping[str, Any]) -> TaskResult:
    """Run every policy at one design point and replication, with streams from (point, replication).

    A combination the domain checks refuse, or a run that raises, becomes a
    recorded failure for the runs it concerns; the others still run."""
    label = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
    where = f"design point {point}" + (f" ({label})" if label else "")
    names = batch.policy_names

    def failed_all(msg: str) -> TaskResult:
        return TaskResult(point, replication, tuple(RunRecord(n, error=msg) for n in names))

    try:
        sc, pols = apply_point(batch, values)
    except (ValueError, TypeError) as e:
        return failed_all(f"{where}: the values do not fit the parameters: {e}")
    diags = check_scenario(sc, batch.scenario_where, str(batch.scenario_path))
    if diags:
        return failed_all(f"{where}: the scenario is invalid here:\n{LabError(diags)}")
    world = world_of(sc)
    records = []
    for src in batch.policies:
        try:
            cp = compile_checked(pols[src.name], src.where, str(src.path), world)
        except LabError as e:
            records.append(RunRecord(src.name, error=f"{where}: policy '{src.name}' is invalid here:\n{e}"))
            continue
        try:
            res = run_policy(sc, cp, batch.seed, address=(point, replication), customers=batch.customers, days=batch.days)
        except MemoryError:
            raise
        except Exception as e:  # an extreme combination the engine refuses: recorded, the batch goes on
            records.append(RunRecord(src.name, error=f"{where}: the run of '{src.name}' failed: {type(e).__name__}: {e}"))
            continue
        ts = res.timeseries
        records.append(RunRecord(
            src.name,
            outcomes=np.array([res.summary[k] for k in OUTCOMES], dtype=np.float64),
            period=ts["period"].to_numpy(np.int32),
            day_end=ts["day_end"].to_numpy(np.int32),
            series=ts[list(SERIES)].to_numpy(np.float64),
        ))
    return TaskResult(point, replication, tuple(records))


# --------------------------------------------------------------------------- the store
_ARROW = {"float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_(), "string": pa.string()}


def schemas(factors: Sequence[Factor] | Sequence[Mapping[str, Any]]) -> dict[str, pa.Schema]:
    """The Arrow schema of each table of the store, given the factors (or their manifest entries)."""
    fac = [(f.name, f.dtype) if isinstance(f, Factor) else (f["name"], f["dtype"]) for f in factors]
    ident = [pa.field("run_id", pa.string()), pa.field("point", pa.int32()), pa.field("replication", pa.int32()),
             pa.field("policy", pa.string())]
    fcols = [pa.field(n, _ARROW[t]) for n, t in fac]
    return {
        "runs": pa.schema(ident + fcols + [pa.field("outcome", pa.string()), pa.field("value", pa.float64())]),
        "series": pa.schema(ident + [pa.field("period", pa.int32()), pa.field("day_end", pa.int32()),
                                     pa.field("variable", pa.string()), pa.field("value", pa.float64())]),
        "failures": pa.schema(ident + fcols + [pa.field("error", pa.string())]),
    }


def _parts(folder: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if folder.is_dir():
        for p in folder.iterdir():
            m = _PART.match(p.name)
            if m:
                out[int(m.group(1))] = p
    return out


def committed_chunks(out: Path) -> list[int]:
    """Chunk numbers whose runs file exists: the runs file is written last, so these chunks are whole."""
    return sorted(_parts(out / "runs"))


def recover(out: Path) -> tuple[set[str], int]:
    """Tidy a store after an interruption and say what it holds.

    Deletes temporary files and the series/failures files of chunks whose runs
    file was never written (an interrupted flush), then returns the run ids of
    the complete runs and the next free chunk number."""
    chunks = set(committed_chunks(out))
    for part in PARTS:
        folder = out / part
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                p.unlink()
        for n, p in _parts(folder).items():
            if n not in chunks:
                p.unlink()
    done: set[str] = set()
    for part in ("runs", "failures"):
        for n, p in _parts(out / part).items():
            done.update(pq.read_table(p, columns=["run_id"]).column("run_id").to_pylist())
    return done, (max(chunks) + 1 if chunks else 0)


class DatasetWriter:
    """Buffers task results and writes them as atomic chunks (series and failures first, runs last)."""

    def __init__(self, out: Path, batch: Batch, first_chunk: int = 0, done: set[str] | None = None) -> None:
        self.out = out
        self.batch = batch
        self.chunk = first_chunk
        self.done = done if done is not None else set()
        self.schemas = schemas(batch.factors)
        self.buffer: list[TaskResult] = []
        self.pending = 0
        self.failed = 0

    def add(self, result: TaskResult) -> tuple[int, int]:
        """Buffer a task's runs (dropping any already stored or buffered); returns (runs added, failures among them)."""
        ids = [self.batch.run_id(result.point, result.replication, r.policy) for r in result.records]
        keep = tuple(r for r, i in zip(result.records, ids) if i not in self.done)
        if not keep:
            return 0, 0
        self.done.update(ids)
        self.buffer.append(replace(result, records=keep))
        self.pending += len(keep)
        bad = sum(r.error is not None for r in keep)
        self.failed += bad
        return len(keep), bad

    def flush(self) -> None:
        """Write the buffered runs as one chunk; a no-op when nothing is buffered."""
        if not self.buffer:
            return
        tables = self._tables()
        name = f"part-{self.chunk:05d}.parquet"
        for part in ("series", "failures", "runs"):
            t = tables[part]
            if part != "runs" and t.num_rows == 0:
                continue
            write_atomic(self.out / part / name, lambda p, t=t: pq.write_table(t, p))
        self.chunk += 1
        self.buffer = []
        self.pending = 0

    def _tables(self) -> dict[str, pa.Table]:
        b = self.batch
        ok = [(res, r) for res in self.buffer for r in res.records if r.error is None]
        bad = [(res, r) for res in self.buffer for r in res.records if r.error is not None]
        n_out = len(OUTCOMES)

        def ident(pairs: list, reps: np.ndarray | int) -> dict[str, pa.Array]:
            ids = [b.run_id(res.point, res.replication, r.policy) for res, r in pairs]
            return {
                "run_id": pa.array(np.repeat(np.array(ids, dtype=object), reps), pa.string()),
                "point": pa.array(np.repeat(np.array([res.point for res, _ in pairs], dtype=np.int32), reps)),
                "replication": pa.array(np.repeat(np.array([res.replication for res, _ in pairs], dtype=np.int32), reps)),
                "policy": pa.array(np.repeat(np.array([r.policy for _, r in pairs], dtype=object), reps), pa.string()),
            }

        def factor_cols(pairs: list, reps: np.ndarray | int) -> dict[str, pa.Array]:
            cols = {}
            for f in b.factors:
                vals = np.empty(len(pairs), dtype=object)
                vals[:] = [b.points[res.point][f.name] for res, _ in pairs]
                cols[f.name] = pa.array(np.repeat(vals, reps).tolist(), _ARROW[f.dtype])
            return cols

        runs = ident(ok, n_out) | factor_cols(ok, n_out)
        runs["outcome"] = pa.array(np.tile(np.array(list(OUTCOMES), dtype=object), len(ok)), pa.string())
        runs["value"] = pa.array(np.concatenate([r.outcomes for _, r in ok]) if ok else np.empty(0))
        lengths = np.array([r.series.size for _, r in ok], dtype=np.int64)
        series = ident(ok, lengths)
        n_var = len(SERIES)
        series["period"] = pa.array(np.concatenate([np.repeat(r.period, n_var) for _, r in ok]) if ok
                                    else np.empty(0, np.int32))
        series["day_end"] = pa.array(np.concatenate([np.repeat(r.day_end, n_var) for _, r in ok]) if ok
                                     else np.empty(0, np.int32))
        series["variable"] = pa.array(np.concatenate([np.tile(np.array(SERIES, dtype=object), len(r.period)) for _, r in ok])
                                      if ok else np.empty(0, dtype=object), pa.string())
        series["value"] = pa.array(np.concatenate([r.series.ravel() for _, r in ok]) if ok else np.empty(0))
        failures = ident(bad, 1) | factor_cols(bad, 1)
        failures["error"] = pa.array([r.error for _, r in bad], pa.string())
        return {k: pa.Table.from_pydict(v, schema=self.schemas[k]) for k, v in
                (("runs", runs), ("series", series), ("failures", failures))}


@dataclass(frozen=True)
class BatchData:
    """A batch store read back: long tables sorted canonically, and the manifest."""

    runs: pd.DataFrame
    series: pd.DataFrame
    failures: pd.DataFrame
    manifest: dict[str, Any]


def read_dataset(out: str | Path) -> BatchData:
    """Read a batch store: every committed chunk concatenated, rows sorted by run id (then outcome, variable, period).

    The result is the same whatever the chunking, the executor or the order
    runs finished in; chunks of an interrupted flush are ignored."""
    import json

    out = Path(out)
    mpath = out / MANIFEST
    if not mpath.is_file():
        raise BatchError(f"{out} is not a batch store (no {MANIFEST}); give the --out folder of a 'lab batch' run")
    manifest = json.loads(mpath.read_text())
    sch = schemas(manifest["factors"])
    chunks = set(committed_chunks(out))
    frames = {}
    order = {"runs": ["run_id", "outcome"], "series": ["run_id", "variable", "period"], "failures": ["run_id"]}
    for part in PARTS:
        files = [p for n, p in sorted(_parts(out / part).items()) if n in chunks]
        tables = [pq.read_table(p, schema=sch[part]) for p in files]
        table = pa.concat_tables(tables) if tables else sch[part].empty_table()
        frame = table.to_pandas()
        frames[part] = frame.sort_values(order[part], kind="stable").reset_index(drop=True)
    return BatchData(frames["runs"], frames["series"], frames["failures"], manifest)


# --------------------------------------------------------------------------- manifest
def identity(batch: Batch) -> dict[str, Any]:
    """What makes a batch this batch: inputs by hash, seed, sizes, factors and design table (compared on --resume)."""
    d = batch.spec.design
    return json_safe({
        "format": FORMAT,
        "name": batch.spec.name,
        "spec": {"path": str(batch.spec_path), "sha256": file_hash(batch.spec_path)},
        "scenario": {"path": str(batch.scenario_path), "sha256": file_hash(batch.scenario_path)},
        "policies": {p.name: {"path": str(p.path), "sha256": file_hash(p.path)} for p in batch.policies},
        "seed": batch.seed,
        "replications": batch.replications,
        "customers": batch.customers,
        "days": batch.days,
        "design": {"type": d.tag, "samples": getattr(d, "samples", len(batch.points)), "seed": batch.design_seed},
        "factors": [f.describe() for f in batch.factors],
        "outcomes": list(OUTCOMES),
        "series_variables": list(SERIES),
        "total_runs": batch.total_runs,
        "code_sha256": code_hash(),
        "points": [{"point": i, **p} for i, p in enumerate(batch.points)],
    })  # type: ignore[return-value]


def code_hash() -> str:
    """sha256 over the lab package's Python sources: the model that produced the numbers, edits included."""
    import lab

    h = hashlib.sha256()
    root = Path(lab.__file__).parent
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


_COMPARED = ("format", "seed", "replications", "customers", "days", "design", "factors", "points")


def _check_same(old: dict[str, Any], new: dict[str, Any], out: Path, allow_code_change: bool) -> None:
    problems = []
    if old.get("code_sha256") != new["code_sha256"] and not allow_code_change:
        problems.append("the lab's code changed since the batch started (code_sha256 differs), so resumed runs could "
                        "differ from the stored ones; if the change cannot affect results, add --allow-code-change")
    for what in ("spec", "scenario"):
        if old.get(what, {}).get("sha256") != new[what]["sha256"]:
            problems.append(f"the {what} file {new[what]['path']} changed since the batch started (sha256 differs)")
    oldp = old.get("policies", {})
    if list(oldp) != list(new["policies"]):
        problems.append(f"the policies differ (stored: {', '.join(oldp)}; now: {', '.join(new['policies'])})")
    else:
        for name, v in new["policies"].items():
            if oldp[name].get("sha256") != v["sha256"]:
                problems.append(f"the policy file {v['path']} changed since the batch started (sha256 differs)")
    for key in _COMPARED:
        if old.get(key) != new[key]:
            problems.append(f"'{key}' differs from the stored batch ({_brief(old.get(key))} then, {_brief(new[key])} now)")
    if problems:
        raise BatchError(f"cannot resume {out}: " + "; ".join(problems)
                         + ". Resuming must rerun the same batch: restore the files and use the same options, or start afresh "
                         "with another --out")


def _brief(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _session(command: Sequence[str], executor: str, jobs: int | None, resumed: bool) -> dict[str, Any]:
    return {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": list(command),
            "cwd": os.getcwd(), "executor": executor, "jobs": jobs, "resumed": resumed, "versions": _versions(executor)}


def _versions(executor: str) -> dict[str, str]:
    out = versions()
    if executor == "dask":
        from importlib import metadata

        for name in ("dask", "distributed"):
            try:
                out[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                out[name] = "not installed"
    return out


# --------------------------------------------------------------------------- executors
Task = tuple[int, int]  # (design point, replication)
_WORKER_BATCH: Batch | None = None


def _init_worker(batch: Batch) -> None:
    global _WORKER_BATCH
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _WORKER_BATCH = batch


def _local_task(point: int, replication: int, values: dict[str, Any]) -> TaskResult:
    assert _WORKER_BATCH is not None, "worker not initialised"
    return run_task(_WORKER_BATCH, point, replication, values)


def _dask_task(batch: Batch, point: int, replication: int, values: dict[str, Any]) -> TaskResult:
    return run_task(batch, point, replication, values)


def _worker_copy(batch: Batch) -> Batch:
    """The batch without its design table: tasks carry their own point's values."""
    return replace(batch, points=())


class WorkersDied(Exception):
    """Worker processes kept dying; the runs finished so far are saved."""


class LocalRunner:
    """Runs tasks on local processes (spawned), restarting the pool when a worker dies."""

    def __init__(self, batch: Batch, jobs: int, max_restarts: int = 3, tick: float = 1.0) -> None:
        self.batch = batch
        self.jobs = jobs
        self.max_restarts = max_restarts
        self.tick = tick
        self.restarts = 0
        self.unfinished: list[Task] = []
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(_worker_copy(self.batch),))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def results(self, tasks: Sequence[Task]) -> Iterator[TaskResult | None]:
        """Yield results as tasks complete (None every `tick` seconds with nothing new)."""
        queue = deque(tasks)
        inflight: dict[Any, Task] = {}
        window = max(2 * self.jobs, 2)
        self._pool = self._new_pool()
        try:
            while queue or inflight:
                broken = False
                while queue and len(inflight) < window and not broken:
                    t = queue[0]
                    try:
                        fut = self._pool.submit(_local_task, t[0], t[1], self.batch.points[t[0]])
                    except BrokenProcessPool:
                        broken = True
                        break
                    queue.popleft()
                    inflight[fut] = t
                if not broken:
                    done, _ = wait(list(inflight), timeout=self.tick, return_when=FIRST_COMPLETED)
                    if not done:
                        yield None
                        continue
                    for fut in done:
                        t = inflight.pop(fut)
                        try:
                            res = fut.result()
                        except BrokenProcessPool:
                            broken = True
                            queue.appendleft(t)
                            continue
                        yield res
                if broken:
                    for fut, t in list(inflight.items()):
                        if fut.done() and fut.exception() is None:
                            yield fut.result()
                        else:
                            queue.appendleft(t)
                    inflight.clear()
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    self.restarts += 1
                    if self.restarts > self.max_restarts:
                        self.unfinished = sorted(queue)
                        raise WorkersDied(f"worker processes died {self.restarts} times (out of memory? try fewer "
                                          f"--jobs or --customers); {len(queue)} tasks were not run")
                    print(f"lab batch: a worker process died; restarting the pool ({self.restarts}/{self.max_restarts}) "
                          "and rerunning its tasks", file=sys.stderr)
                    self._pool = self._new_pool()
        finally:
            self.close()


class DaskRunner:
    """Runs tasks on a Dask distributed cluster: an existing one (address or client) or a LocalCluster it starts."""

    def __init__(self, batch: Batch, jobs: int | None, address: str | None = None, client: Any = None,
                 retries: int = 3, tick: float = 1.0) -> None:
        try:
            from dask import distributed  # noqa: F401
        except ImportError:
            raise BatchError("the dask executor needs the optional 'dask' extra: pip install -e '.[dask]' "
                             "(or use --executor local)") from None
        self.batch = batch
        self.jobs = jobs
        self.address = address
        self.client = client
        self.retries = retries
        self.tick = tick
        self.unfinished: list[Task] = []
        self.errors: list[str] = []
        self._own: list[Any] = []

    def _connect(self) -> Any:
        from dask.distributed import Client, LocalCluster

        if self.client is not None:
            return self.client
        if self.address is not None:
            try:
                client = Client(self.address, timeout="20s")
            except (OSError, TimeoutError) as e:
                raise BatchError(f"cannot reach the Dask scheduler at {self.address}: {e}; start one with "
                                 "'dask scheduler' and workers with 'dask worker <address>'") from None
        else:
            import logging

            cluster = LocalCluster(n_workers=self.jobs or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.WARNING)
            self._own.append(cluster)
            client = Client(cluster)
        self._own.insert(0, client)
        return client

    def close(self) -> None:
        for thing in self._own:
            thing.close()
        self._own = []

    def results(self, tasks: Sequence[Task]) -> Iterator[TaskResult | None]:
        """Yield results as tasks complete (None every `tick` seconds with nothing new)."""
        from dask.distributed import wait as dwait

        client = self._connect()
        try:
            ctx = client.scatter(_worker_copy(self.batch), broadcast=True, hash=False)
            queue = deque(tasks)
            inflight: dict[Any, Task] = {}
            window = max(2 * sum(client.nthreads().values()), 4)
            while queue or inflight:
                while queue and len(inflight) < window:
                    t = queue.popleft()
                    fut = client.submit(_dask_task, ctx, t[0], t[1], self.batch.points[t[0]], retries=self.retries,
                                        pure=False)
                    inflight[fut] = t
                try:
                    done, _ = dwait(list(inflight), timeout=self.tick, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    yield None
                    continue
                for fut in done:
                    t = inflight.pop(fut)
                    if fut.status == "finished":
                        yield fut.result()
                    else:
                        self.unfinished.append(t)
                        try:
                            fut.result()
                        except Exception as e:  # KilledWorker and the like: not a result, so not recorded
                            self.errors.append(f"{type(e).__name__}: {e}")
                        else:
                            self.errors.append(f"task {t} ended as {fut.status}")
                    fut.release()
        finally:
            self.close()


# --------------------------------------------------------------------------- progress
class Progress:
    """done/total, rate, ETA and failures: a tqdm bar on a terminal, a plain line every `interval` seconds otherwise."""

    def __init__(self, total: int, done: int, failed: int, stream: TextIO, interval: float = 10.0) -> None:
        self.total, self.done, self.failed = total, done, failed
        self.start_done = done
        self.stream = stream
        self.interval = interval
        self.t0 = self.last = time.monotonic()
        self.bar = None
        if _isatty(stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="run", file=stream, dynamic_ncols=True, smoothing=0.05)
            self.bar.set_postfix(failed=failed)

    def update(self, runs: int, failed: int) -> None:
        self.done += runs
        self.failed += failed
        if self.bar is not None:
            self.bar.update(runs)
            if failed:
                self.bar.set_postfix(failed=self.failed)
        self.tick()

    def rate(self) -> float:
        """Runs per minute in this session."""
        elapsed = time.monotonic() - self.t0
        return (self.done - self.start_done) / elapsed * 60 if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        left = self.total - self.done
        eta = _duration(left / rate * 60) if rate > 0 else "?"
        pct = 100 * self.done / self.total if self.total else 100
        return (f"lab batch: {self.done}/{self.total} runs ({pct:.0f}%), {rate:.1f} runs/min, ETA {eta}, "
                f"{self.failed} failed")

    def tick(self) -> None:
        now = time.monotonic()
        if self.bar is None and now - self.last >= self.interval:
            print(self.line(), file=self.stream, flush=True)
            self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


# --------------------------------------------------------------------------- the driver
@dataclass(frozen=True)
class BatchRun:
    """What a call of run_batch did."""

    out: Path
    total: int
    skipped: int
    completed: int
    failed: int
    unfinished: int
    seconds: float
    messages: tuple[str, ...] = field(default=())


def run_batch(spec: str | Path | Batch, out: str | Path, *, executor: Literal["local", "dask"] = "local",
              address: str | None = None, jobs: int | None = None, resume: bool = False,
              customers: int | None = None, days: int | None = None, flush_runs: int = 500,
              flush_seconds: float = 60.0, max_restarts: int = 3, client: Any = None,
              command: Sequence[str] | None = None, stream: TextIO | None = None,
              progress_interval: float = 10.0, allow_code_change: bool = False) -> BatchRun:
    """Run (or resume) a batch into the store `out`; see the module docstring for the guarantees.

    Raises LabError for a bad spec and BatchError for a refused store (not
    empty without `resume`, or written by a different batch). `client` is an
    existing dask.distributed Client (used with executor="dask"). `allow_code_change` lets a resume go on
    although the lab's sources changed since the batch started (the sessions record both hashes)."""
    import json

    stream = stream if stream is not None else sys.stderr
    batch = spec if isinstance(spec, Batch) else load_spec(spec, customers=customers, days=days)
    out = Path(out)
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    ident = identity(batch)
    mpath = out / MANIFEST
    command = list(command) if command is not None else [sys.executable, *sys.argv]
    runner: LocalRunner | DaskRunner
    if executor == "dask":
        runner = DaskRunner(batch, jobs if jobs else None, address=address, client=client, retries=max_restarts)
    elif executor == "local":
        if address is not None:
            raise BatchError("--address is for --executor dask; add --executor dask, or drop --address")
        runner = LocalRunner(batch, jobs, max_restarts=max_restarts)
    else:
        raise BatchError(f"unknown executor '{executor}'{suggest(executor, ['local', 'dask'])}")
    if out.exists() and not out.is_dir():
        raise BatchError(f"--out {out} is a file, not a folder; choose another --out")
    nonempty = out.is_dir() and any(out.iterdir())
    if nonempty and not resume:
        what = "already holds a batch" if mpath.is_file() else "is not empty"
        raise BatchError(f"{out} {what}; add --resume to continue it, or choose another --out")
    if nonempty and not mpath.is_file():
        raise BatchError(f"{out} is not empty and holds no {MANIFEST}, so it is not a batch to resume; "
                         "choose another --out")
    if mpath.is_file():
        manifest = json.loads(mpath.read_text())
        _check_same(manifest, ident, out, allow_code_change)
        manifest["sessions"] = manifest.get("sessions", []) + [_session(command, executor, jobs, True)]
        manifest["sessions"][-1]["code_sha256"] = ident["code_sha256"]
    else:
        manifest = {**ident, "sessions": [_session(command, executor, jobs, False)]}
        manifest["versions"] = manifest["sessions"][0]["versions"]
        manifest["command"] = command
    out.mkdir(parents=True, exist_ok=True)
    write_json(mpath, manifest)

    done, first = recover(out)
    tasks: list[Task] = []
    for point in range(len(batch.points)):
        for rep in range(batch.replications):
            if any(batch.run_id(point, rep, p) not in done for p in batch.policy_names):
                tasks.append((point, rep))
    skipped = len(done)
    old_failed = 0
    if (out / "failures").is_dir():
        old_failed = sum(pq.read_metadata(p).num_rows for n, p in _parts(out / "failures").items())
    writer = DatasetWriter(out, batch, first, done)
    progress = Progress(batch.total_runs, skipped, old_failed, stream, progress_interval)
    t0 = time.monotonic()
    last_flush = t0
    messages: list[str] = []
    completed = failed = 0
    gen = runner.results(tasks) if tasks else iter(())
    try:
        for res in gen:
            if res is not None:
                n, bad = writer.add(res)
                completed += n
                failed += bad
                progress.update(n, bad)
            else:
                progress.tick()
            now = time.monotonic()
            if writer.pending >= flush_runs or (writer.pending and now - last_flush >= flush_seconds):
                writer.flush()
                last_flush = now
    except WorkersDied as e:
        messages.append(str(e))
    finally:
        if hasattr(gen, "close"):
            gen.close()
        writer.flush()
        progress.close()
    unfinished = list(runner.unfinished)
    if isinstance(runner, DaskRunner) and runner.errors:
        messages.append(f"{len(runner.errors)} tasks could not run on the cluster (first: {runner.errors[0]})")
    return BatchRun(out, batch.total_runs, skipped, completed, failed,
                    len(unfinished) * len(batch.policies), time.monotonic() - t0, tuple(messages))


# --------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lab batch", description="Run a batch spec (design points x policies x "
                                "replications) into a Parquet store; see docs/BATCHES.md.")
    p.add_argument("spec", help="the batch spec (YAML)")
    p.add_argument("--out", help="the store folder (default: results/<batch name>)")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local processes (default) or a Dask cluster")
    p.add_argument("--address", help="tcp://HOST:PORT of a running Dask scheduler (with --executor dask)")
    p.add_argument("--jobs", type=positive_int, help="local worker processes (default: the number of CPUs)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted batch in --out, skipping completed runs")
    p.add_argument("--customers", type=positive_int, help="customers at the start of every run (overrides the spec)")
    p.add_argument("--days", type=positive_int, help="days simulated in every run (overrides the spec)")
    p.add_argument("--flush-runs", type=positive_int, default=500, help="write a chunk every this many runs (default 500)")
    p.add_argument("--flush-seconds", type=float, default=60.0, help="... or every this many seconds (default 60)")
    p.add_argument("--retries", type=int, default=3, help="times to restart dead workers / retry a task (default 3)")
    p.add_argument("--allow-code-change", action="store_true",
                   help="resume although the lab's code changed since the batch started")
    return p


def main_batch(argv: Sequence[str] | None = None) -> int:
    """`lab batch SPEC ...`: run or resume a batch; returns the exit code (0 done, 1 runs left undone, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        batch = load_spec(args.spec, customers=args.customers, days=args.days)
        out = Path(args.out) if args.out else Path("results") / batch.spec.name
        print(f"lab batch: '{batch.spec.name}': {len(batch.points)} design points x {batch.replications} replications x "
              f"{len(batch.policies)} policies = {batch.total_runs} runs -> {out}", file=sys.stderr)
        command = ["lab", "batch", *argv]
        result = run_batch(batch, out, executor=args.executor, address=args.address, jobs=args.jobs,
                           resume=args.resume, flush_runs=args.flush_runs, flush_seconds=args.flush_seconds,
                           max_restarts=args.retries, command=command, allow_code_change=args.allow_code_change)
    except LabError as e:
        for d in e.diagnostics:
            print(d, file=sys.stderr)
        return EXIT_BAD_INPUT
    except BatchError as e:
        print(f"lab batch: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        again = argv if "--resume" in argv else [*argv, "--resume"]
        print(f"lab batch: interrupted; the completed runs are saved. Continue with: lab batch {shlex.join(again)}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    for m in result.messages:
        print(f"lab batch: {m}", file=sys.stderr)
    print(f"lab batch: {result.completed} runs in {_duration(result.seconds)} ({result.skipped} already done, "
          f"{result.failed} failed) -> {result.out}", file=sys.stderr)
    if result.failed:
        print(f"lab batch: failures are in {result.out / 'failures'} (run_id, error)", file=sys.stderr)
    if result.unfinished:
        print(f"lab batch: {result.unfinished} runs were not done; rerun the same command with --resume", file=sys.stderr)
        return EXIT_UNFINISHED
    print(f"lab batch: open with pandas.read_parquet('{result.out / 'runs'}'), or: lab batch-report {result.out}",
          file=sys.stderr)
    return EXIT_OK


def main_batch_report(argv: Sequence[str] | None = None) -> int:
    """`lab batch-report DIR ...`: analyse a batch store (see lab.experiment.batch_report)."""
    from lab.experiment.batch_report import main_batch_report as _main

    return _main(argv)


if __name__ == "__main__":
    # run through the package's module so worker processes unpickle lab.experiment.batch, not __main__
    from lab.experiment import batch as _batch

    sys.exit(_batch.main_batch(sys.argv[1:]))
