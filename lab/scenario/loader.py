"""Load a scenario file: YAML -> checked `Scenario`, with its policies found and compiled.

One pipeline serves every caller (`lab run`, `lab compare`, `lab validate`
and the batch layer):

1. `read_sources` parses and checks the scenario, finds each policy file
   (beside the scenario or in a policies/ folder), parses it and compiles it
   against the scenario's world; where a policy is missing or two share a
   name, it calls the caller's `missing` / `duplicate` hooks, so each caller
   reports the problem at its own position (the scenario file, the command
   line, a batch spec);
2. `compile_sources` turns those sources into a runnable `LoadedScenario`,
   after an optional `override` hook has changed the scenario and policies
   (a batch's factor values at one design point), re-checking the scenario
   and recompiling the policies against the changed world.

`load_scenario` is the two steps with the hooks that report in the scenario file.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from lab.config import SourceMap, build, diag_at, read_yaml
from lab.config.declare import yaml_name
from lab.config.node import Node
from lab.errors import Diagnostic, LabError, name_problem, name_problems, printable, suggest
from lab.policy.files import find_policy, find_scenario, is_path, looked_in, outside_folder, policy_names
from lab.policy.loader import compile_checked, read_policy
from lab.policy.model import Policy
from lab.policy.runtime import CompiledPolicy, World
from lab.scenario.model import Scenario, purchase_bounds, spend_bound
from lab.scenario.ranges import check_uncertainty

BASELINE = "none"

#: Changes a scenario and its policies (by name) before they are checked and compiled.
Override = Callable[[Scenario, Mapping[str, Policy]], tuple[Scenario, Mapping[str, Policy]]]


@dataclass(frozen=True)
class LoadedScenario:
    """A scenario with its policies compiled against its world, ready to run."""

    scenario: Scenario
    path: Path
    policies: dict[str, CompiledPolicy]  # by policy name, the baseline first
    policy_files: dict[str, Path]
    #: with `compile_sources(..., keep_going=True)`: the policies that do not compile, and why
    rejected: dict[str, LabError] = field(default_factory=dict)

    @property
    def world(self) -> World:
        return world_of(self.scenario)


@dataclass(frozen=True)
class PolicySource:
    """A policy as parsed from its file, before anything overrides it."""

    name: str
    policy: Policy
    where: SourceMap
    path: Path


@dataclass(frozen=True)
class ScenarioSource:
    """A scenario and its policies as parsed from their files: the input of `compile_sources`."""

    scenario: Scenario
    where: SourceMap
    path: Path
    policies: tuple[PolicySource, ...]
    #: the policies compiled against the unchanged scenario (kept by `read_sources`: no override, no recompiling)
    compiled: Mapping[str, CompiledPolicy] | None = field(default=None, compare=False, repr=False)


def world_of(sc: Scenario) -> World:
    """The world a scenario gives its policies: categories with prices and unit costs, and segments."""
    cats = tuple(sc.store.categories)
    return World(
        categories=cats,
        prices=tuple(sc.store.categories[c].price for c in cats),
        unit_costs=tuple(sc.store.categories[c].price * (1 - sc.store.categories[c].margin) for c in cats),
        segments=tuple(sc.population.segments),
    )


def read_scenario(path: str | Path) -> tuple[Scenario, SourceMap]:
    """Parse and shape-check a scenario file (a relative `population.from_fit` is relative to the file)."""
    sc, where = build(read_yaml(path), Scenario, str(path))
    fit = sc.population.from_fit
    if fit is not None and not Path(fit).is_absolute():
        sc = replace(sc, population=replace(sc.population, from_fit=str((Path(path).parent / fit).resolve())))
    return sc, where


def check_scenario(sc: Scenario, where: SourceMap, file: str) -> list[Diagnostic]:
    """Problems with what a scenario refers to."""
    out: list[Diagnostic] = []
    problem = name_problem(sc.name, "the scenario's name")
    if problem is not None:
        out.append(diag_at(file, where, ("name",), problem, code="name"))
    for n, problem in name_problems(sc.store.categories, "a category's name"):
        out.append(diag_at(file, where, ("store", "categories", n), problem, code="name"))
    for n, problem in name_problems(sc.population.segments, "a segment's name"):
        out.append(diag_at(file, where, ("population", "segments", n), problem, code="name"))
    if out:
        return out  # the names below would be checked against names that cannot be kept
    cats = tuple(sc.store.categories)
    if not cats:
        out.append(diag_at(file, where, ("store", "categories"), "the store needs at least one category, e.g. "
                           "categories: {shirts: {price: 30, margin: 0.5}}", code="required"))
    if not sc.population.segments:
        out.append(diag_at(file, where, ("population", "segments"), "the population needs at least one segment",
                           code="required"))
    for name, seg in sc.population.segments.items():
        for c in seg.categories:
            if c not in cats:
                out.append(diag_at(file, where, ("population", "segments", name, "categories", c),
                                   f"unknown category '{printable(c)}'" + suggest(c, cats), code="unknown-name"))
    for name, seg in sc.population.segments.items():  # bounds across fields: absurd rates or spend
        at = ("population", "segments", name)
        for key, why in purchase_bounds(seg.purchases):
            out.append(diag_at(file, where, at + ("purchases", seg.purchases.tag, key), why, code="range"))
        if (why_spend := spend_bound(seg.spend)) is not None:
            out.append(diag_at(file, where, at + ("spend", "q"), why_spend, code="range"))
    if sc.launch_day >= sc.days:
        out.append(diag_at(file, where, ("launch_day",),
                           f"launch_day {sc.launch_day} must come before the end of the run "
                           f"(days: {sc.days}): the programme needs days to be measured on", code="range"))
    fit = sc.population.from_fit
    if fit is not None and not (Path(fit) / "customers.parquet").is_file():
        out.append(diag_at(file, where, ("population", "from_fit"),
                           f"{fit} holds no customers.parquet: give the folder "
                           "`lab fit LOG --out DIR` wrote", code="file"))
    out.extend(check_uncertainty(sc, where, file))
    return out


def policy_file(name: str, scenario_path: Path, *, typed: bool = False) -> Path | None:
    """Where a policy reference lives (lab.policy.files: beside the scenario, its policies/ sibling, the shipped ones).

    ``typed``: the reference came from the command line, so a path is taken as written; a reference from the
    scenario's own ``policies:`` list that is a path must stay inside the scenario's folder."""
    return find_policy(name, scenario_path, typed=typed)


def available_policies(scenario_path: Path) -> list[str]:
    """Policy names a scenario can use (for suggestions): the names of the files a name would find that are
    policies, not the scenarios and batch specs beside the scenario."""
    found = {name: find_policy(name, scenario_path, typed=False) for name in policy_names(scenario_path)}
    return [name for name, path in found.items() if path is not None and not_a_policy(path, typed=True) is None]


#: A file kind (`file_kind`) in words.
KIND_WORDS = {"scenario": "scenario", "batch": "batch spec", "policy": "policy"}
#: Top-level keys only a batch spec has (tests/test_cli.py holds them to lab.batch.spec.BatchSpec's fields).
BATCH_KEYS = frozenset({"factors", "design", "scenario", "replications"})


def top_keys(node: Node) -> set[str]:
    """The text keys at the top level of a YAML file (none when it is not a mapping)."""
    return {k.value for k, _ in node.value if isinstance(k.value, str)} if node.kind == "map" else set()


def file_kind(node: Node) -> str:
    """What a YAML file's top level reads as: "scenario" (it has a store or a population), "batch" (a batch
    spec's own keys), else by its other keys, so that misspelt ones do not decide: "scenario" when more of
    them are keys only a scenario has (days, launch_day, policies, ...) than keys only a policy has (rules,
    points, credit, ...), else "policy"."""
    keys = top_keys(node)
    if keys & {"population", "store"}:
        return "scenario"
    if keys & BATCH_KEYS:
        return "batch"
    scenario, policy = ({yaml_name(f.name) for f in fields(c)} for c in (Scenario, Policy))
    return "scenario" if len(keys & (scenario - policy)) > len(keys & (policy - scenario)) else "policy"


def not_a_policy(path: Path, *, typed: bool) -> str | None:
    """Why the file at `path` is not a policy (a scenario, a batch spec, not YAML, ...), or None if it may be one.

    Says so without quoting the file: a reference from a scenario must not make the lab echo another file's
    contents. A file the user typed on the command line that is not YAML is left to the reader (its position helps)."""
    try:
        node = read_yaml(path)
    except LabError:
        if typed:
            return None
        return "it cannot be read as YAML"
    kind = file_kind(node)
    if kind != "policy":
        return f"it is a {KIND_WORDS[kind]}"
    keys = top_keys(node)
    if "name" not in keys:  # (a policy with a misspelt key still gets the builder's word on it, at its line)
        return "a policy is a mapping with 'name:' and its rules, points, credit or tiers"
    return None


#: Called with (policy name, message, the scenario, its source map) for a policy whose file cannot be found.
Missing = Callable[[str, str, Scenario, SourceMap], None]
#: Called with (the policy kept, the later one with the same name) when two policy files name the same policy.
Duplicate = Callable[[PolicySource, PolicySource], None]


def read_sources(path: str | Path, names: Callable[[Scenario], Sequence[str]], *, missing: Missing,
                 duplicate: Duplicate, typed: Collection[str] = ()) -> ScenarioSource:
    """Read and check a scenario and the policies `names(scenario)` lists, compiling each against its world.

    A scenario that does not check, or a policy that does not compile, raises
    LabError; a missing policy file or a second policy of the same name goes
    to the hook (which may raise, or collect and let the reading go on). The references in `typed` came from
    the command line (a path among them is taken as written, see lab.policy.files)."""
    path = Path(path)
    file = str(path)
    sc, where = read_scenario(path)
    diags = check_scenario(sc, where, file)
    if diags:
        raise LabError(diags)
    world = world_of(sc)
    sources: dict[str, PolicySource] = {}
    compiled: dict[str, CompiledPolicy] = {}
    for name in names(sc):
        given = name in typed
        pf = policy_file(name, path, typed=given)
        if pf is None:
            if not given and outside_folder(name, path):
                missing(name, f"policy '{printable(name)}' is outside the scenario's folder: a path in a scenario is "
                        "relative to its folder and stays inside it; copy the file beside the scenario, or pass "
                        "the path with --policy/--policies", sc, where)
                continue
            if is_path(name) and not given:
                hint = ("; a path in a scenario is relative to its folder and stays inside it (give a name, or pass "
                        "the path with --policy/--policies)")
            elif is_path(name):
                hint = "; no such file"
            else:
                hint = suggest(name, available_policies(path))
            where_ = "" if is_path(name) else f" (looked {looked_in(path)})"
            missing(name, f"policy '{printable(name)}' not found{where_}{hint}", sc, where)
            continue
        why = not_a_policy(pf, typed=given)
        if why is not None:
            missing(name, f"'{printable(name)}' ({printable(str(pf), 80)}) is not a policy: {why}", sc, where)
            continue
        pol, pwhere = read_policy(pf, world)
        cp = compile_checked(pol, pwhere, str(pf), world)
        src = PolicySource(pol.name, pol, pwhere, pf)
        if pol.name in sources:
            duplicate(sources[pol.name], src)
            continue
        sources[pol.name] = src
        compiled[pol.name] = cp
    return ScenarioSource(sc, where, path, tuple(sources.values()), compiled)


def compile_sources(source: ScenarioSource, override: Override | None = None, *,
                    keep_going: bool = False) -> LoadedScenario:
    """The scenario and policies of `source`, changed by `override`, checked and compiled: ready to run.

    Without an override the policies compiled by `read_sources` are reused.
    A scenario the override makes invalid raises LabError; so does a policy
    that no longer compiles, unless `keep_going`, which records it in
    `rejected` and compiles the others."""
    files = {p.name: p.path for p in source.policies}
    if override is None and source.compiled is not None:
        return LoadedScenario(source.scenario, source.path, dict(source.compiled), files)
    sc = source.scenario
    policies: Mapping[str, Policy] = {p.name: p.policy for p in source.policies}
    if override is not None:
        sc, policies = override(sc, policies)
    diags = check_scenario(sc, source.where, str(source.path))
    if diags:
        raise LabError(diags)
    world = world_of(sc)
    compiled: dict[str, CompiledPolicy] = {}
    rejected: dict[str, LabError] = {}
    for p in source.policies:
        try:
            compiled[p.name] = compile_checked(policies[p.name], p.where, str(p.path), world)
        except LabError as e:
            if not keep_going:
                raise
            rejected[p.name] = e
    return LoadedScenario(sc, source.path, compiled, files, rejected)


def scenario_path(ref: str | Path) -> Path:
    """The scenario file a command names: a path as written, else a shipped scenario's name ('classroom')."""
    found = find_scenario(str(ref))
    return found if found is not None else Path(ref)


def load_scenario(path: str | Path, policies: list[str] | None = None) -> LoadedScenario:
    """Read and check a scenario and the policies it compares (or `policies`, if given), the baseline always first.

    `path` may be a shipped scenario's name; `policies` are references given on the command line."""
    path = scenario_path(path)
    file = str(path)

    def names(sc: Scenario) -> list[str]:
        out = list(policies) if policies else list(sc.policies)
        if BASELINE not in out:
            out.insert(0, BASELINE)
        else:
            out.remove(BASELINE)
            out.insert(0, BASELINE)
        return out

    def missing(name: str, msg: str, sc: Scenario, where: SourceMap) -> None:
        if policies and name in policies:
            raise LabError([Diagnostic("<command line>", 1, 1, msg, code="unknown-name")])
        loc = ("policies", sc.policies.index(name)) if name in sc.policies else ("policies",)
        raise LabError([diag_at(file, where, loc, msg, code="unknown-name")])

    def duplicate(first: PolicySource, second: PolicySource) -> None:
        raise LabError([diag_at(str(second.path), second.where, ("name",),
                                f"two policies are named '{printable(second.name)}'; policy names must differ",
                                code="duplicate-name")])

    return compile_sources(read_sources(path, names, missing=missing, duplicate=duplicate, typed=policies or ()))
