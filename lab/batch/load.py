"""Load a batch spec: the spec file, its base scenario and policies, its factors and design table.

The base scenario and its policies come through the scenario loader's one
pipeline (`lab.scenario.loader.read_sources`), with hooks that report a
missing or duplicated policy at the spec's `policies` (or `scenario`) key;
the factors are applied later, per design point, through the same pipeline's
override hook (`lab.batch.tasks`). Every problem of the spec itself is
collected with its code and spec path and reported together.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lab.batch.design import Grid, Morris, Saltelli, Sobol, design_points, grid_size
from lab.batch.factors import Factor, check_factor
from lab.batch.overrides import apply
from lab.batch.spec import Batch, BatchSpec
from lab.config import SourceMap, build, read_yaml
from lab.errors import Diagnostics, LabError, name_problem, printable, suggest
from lab.policy.files import find_scenario
from lab.policy.loader import compile_checked
from lab.scenario.loader import BASELINE, PolicySource, read_sources, world_of
from lab.scenario.model import Scenario
from lab.scenario.scale import scale_store as scale

__all__ = ["load_spec"]

#: The most design points a grid may have.
MAX_GRID = 1_000_000


def factors_of_choice(spec: BatchSpec) -> list[str]:
    """The factors declared by levels rather than a numeric range."""
    return [name for name, fs in spec.factors.items() if fs.levels is not None]


def _check_expressions(fac: Factor, sources: dict[str, PolicySource], scenario: Scenario, file: str,
                       err: Diagnostics) -> None:
    """A factor that sets a policy's expression, compiled with each value it takes before any run: each level
    (without a template), or the template with its first value (its numbers change no expression's shape).
    Otherwise an expression that cannot compile would fail every run of its points, found only once they run.
    Only problems in the spec are said (the policy file's own were said when it was read)."""
    if fac.target.policy is None or fac.target.leaf.kind != "expr":
        return
    src = sources[fac.target.policy]
    world = world_of(scenario)
    values = fac.axis.levels if fac.axis.levels is not None else (fac.axis.low,)
    for value in values[:1] if fac.template is not None else values:
        policy = apply(src.policy, fac.target.steps, fac.field_value(value))
        try:
            compile_checked(policy, src.where, str(src.path), world)
        except LabError as e:
            what = (f"its template (with {{value}} = {printable(str(value))})" if fac.template is not None
                    else f"its level {printable(str(value))!r}")
            for d in e.diagnostics:
                if d.file == file:
                    err.add(d.line, d.col, "expression", f"factor '{fac.name}': {what} makes an expression that "
                            f"does not compile: {d.message}", ("factors", fac.name))


def load_spec(path: str | Path, *, customers: int | None = None, days: int | None = None,
              scale_store: bool = False) -> Batch:
    """Read and check a batch spec, its scenario and its policies; LabError lists every problem as FILE:LINE:COL.

    `customers` and `days` override the spec's (as the command line does). `scale_store`: the base scenario's
    whole store scaled to the runs' customers (lab.scenario.scale) before any design point's factors are set, so
    a factor's value is taken as written."""
    found = find_scenario(str(path))  # a path as written, else a shipped batch spec's name
    path = found if found is not None else Path(path)
    file = str(path)
    root = read_yaml(path)
    spec, where = build(root, BatchSpec, file)
    err = Diagnostics(file, where)
    problem = name_problem(spec.name, "the batch's name")
    if problem is not None:  # it names the results folder
        err.at(("name",), "name", problem)

    scenario_path = path.parent / spec.scenario
    if not scenario_path.is_file():
        near = [p.name for p in scenario_path.parent.glob("*.yaml")] if scenario_path.parent.is_dir() else []
        err.at(("scenario",), "unknown-name", f"cannot find the scenario '{printable(spec.scenario)}' (looked for "
               f"{scenario_path}); paths are relative to the batch spec{suggest(Path(spec.scenario).name, near)}")
        err.raise_if_any()

    def names(sc: Scenario) -> list[str]:
        chosen = list(spec.policies) if spec.policies is not None else list(sc.policies)
        return [BASELINE] + [n for n in chosen if n != BASELINE]

    def missing(name: str, msg: str, sc: Scenario, sc_where: SourceMap) -> None:
        at: tuple[str | int, ...] = ("policies", spec.policies.index(name)) if spec.policies and name in spec.policies \
            else ("policies",) if spec.policies is not None else ("scenario",)
        err.at(at, "unknown-name", msg)

    def duplicate(first: PolicySource, second: PolicySource) -> None:
        err.at(("policies",), "duplicate-name", f"two policies are named '{printable(second.name)}' ({first.path} and "
               f"{second.path}); names must differ")

    source = read_sources(scenario_path, names, missing=missing, duplicate=duplicate)
    err.raise_if_any()
    scenario = source.scenario
    sources = {p.name: p for p in source.policies}

    customers = customers if customers is not None else spec.customers
    days = days if days is not None else spec.days
    if scale_store:
        if customers is None:
            raise LabError.at("<command line>", 1, 1, "--scale-store scales the store to the runs' customers, but "
                              "none are set (neither --customers nor the spec's 'customers:'); give --customers N")
        scenario = scale(scenario, customers)
    if days is not None and days <= scenario.launch_day:
        given = "days" if spec.days == days else "--days"
        err.at(("days",) if given == "days" else ("scenario",), "range",
               f"the runs end on day {days} ({given}), before the launch of {scenario_path.name} on day "
               f"{scenario.launch_day} (it runs a warm-up under no programme until then, and outcomes are measured "
               "from the launch); give "
               f"days above {scenario.launch_day} (e.g. {scenario.launch_day + 365} for a year from the launch), or "
               "a scenario with launch_day: 0 and population.arrival_days: 0 (a day-0 cohort)")
        err.raise_if_any()
    factors: list[Factor] = []
    seen: dict[tuple[object, ...], str] = {}
    fnode = root.get("factors")
    for name, fs in spec.factors.items():
        fac = check_factor(name, fs, fnode.get(name) if fnode else None, scenario, sources, spec.design, where,
                           file, err, customers, days)
        if fac is None:
            continue
        key = (fac.target.policy, fac.target.steps)
        if key in seen:
            err.at(("factors", name, "path"), "conflict", f"factor '{name}' sets the same parameter as factor "
                   f"'{seen[key]}'; merge them into one factor")
            continue
        seen[key] = name
        factors.append(fac)
    for fac in factors:
        _check_expressions(fac, sources, scenario, file, err)
    design = spec.design
    if not isinstance(design, Grid):
        tag = design.tag
        if not spec.factors:
            err.at(("design",), "required", f"a {tag} design needs at least one factor; add factors, or use "
                   "'design: grid' to run just the replications")
        if isinstance(design, Sobol) and design.samples & (design.samples - 1):
            lo = 1 << (design.samples.bit_length() - 1)
            err.at(("design", tag, "samples"), "design", f"a Sobol' design keeps its balance only with a power of two "
                   f"samples; use samples: {lo} or {lo * 2}")
        if isinstance(design, Saltelli) and design.samples & (design.samples - 1):
            lo = 1 << (design.samples.bit_length() - 1)
            err.at(("design", tag, "samples"), "design", f"a saltelli design's base samples must be a power of two "
                   f"(its Sobol' sequence keeps its balance only then); use samples: {lo} or {lo * 2}")
        if isinstance(design, Morris) and design.levels % 2:
            err.at(("design", tag, "levels"), "design", f"a morris design needs an even number of levels (the "
                   f"elementary effects' step is levels / (2 (levels - 1)) of the range); use levels: "
                   f"{design.levels + 1}")
        if isinstance(design, (Saltelli, Morris)):
            if importlib.util.find_spec("SALib") is None:
                err.at(("design", tag), "design", f"a {tag} design is drawn by SALib, which is not installed; "
                       "install it with: pip install SALib")
            for name in factors_of_choice(spec):
                err.at(("factors", name), "design", f"factor '{name}' takes levels, but a {tag} design needs "
                       "numeric ranges (low and high) for its indices; give it low and high, or use a grid or lhs "
                       "design")
    err.raise_if_any()
    if isinstance(design, Grid):
        try:
            n = grid_size([f.axis for f in factors])
        except ValueError as e:
            err.at(("design",), "design", str(e))
            raise err.error() from None
        if n > MAX_GRID:
            err.at(("design",), "design", f"the grid has {n} points (the limit is {MAX_GRID}); use fewer levels or "
                   "steps, or an lhs or sobol design")
            err.raise_if_any()
    seed = spec.seed if spec.seed is not None else scenario.seed
    design_seed = getattr(design, "seed", None)
    design_seed = seed if design_seed is None else design_seed
    points = tuple(design_points([f.axis for f in factors], design, design_seed))
    return Batch(spec, path, scenario, source.where, scenario_path, source.policies, tuple(factors), points,
                 seed, design_seed, customers, days)
