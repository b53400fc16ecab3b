"""Load a scenario file: YAML -> checked `Scenario`, with its policies found and compiled."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.config import SourceMap, build, diag_at, read_yaml
from lab.errors import Diagnostic, LabError, suggest
from lab.policy.loader import compile_checked, read_policy
from lab.policy.runtime import CompiledPolicy, World
from lab.scenario.model import Scenario

BASELINE = "none"


@dataclass(frozen=True)
class LoadedScenario:
    """A scenario with its policies compiled against its world, ready to run."""

    scenario: Scenario
    path: Path
    policies: dict[str, CompiledPolicy]  # by policy name, the baseline first
    policy_files: dict[str, Path]

    @property
    def world(self) -> World:
        return world_of(self.scenario)


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
    """Parse and shape-check a scenario file."""
    return build(read_yaml(path), Scenario, str(path))


def check_scenario(sc: Scenario, where: SourceMap, file: str) -> list[Diagnostic]:
    """Problems with what a scenario refers to."""
    out: list[Diagnostic] = []
    cats = tuple(sc.store.categories)
    if not cats:
        out.append(diag_at(file, where, ("store", "categories"), "the store needs at least one category, e.g. categories: {shirts: {price: 30, margin: 0.5}}"))
    if not sc.population.segments:
        out.append(diag_at(file, where, ("population", "segments"), "the population needs at least one segment"))
    for name, seg in sc.population.segments.items():
        for c in seg.categories:
            if c not in cats:
                out.append(diag_at(file, where, ("population", "segments", name, "categories", c), f"unknown category '{c}'" + suggest(c, cats)))
    return out


def policy_file(name: str, scenario_path: Path) -> Path | None:
    """Where a policy named in a scenario lives: a path relative to the scenario, or NAME in a policies/ folder."""
    candidates = [scenario_path.parent / name, scenario_path.parent / f"{name}.yaml",
                  scenario_path.parent.parent / "policies" / f"{name}.yaml", Path("policies") / f"{name}.yaml"]
    for c in candidates:
        if c.is_file():
            return c
    return None


def available_policies(scenario_path: Path) -> list[str]:
    """Policy names found in the policies/ folders a scenario can see (for suggestions)."""
    names: set[str] = set()
    for folder in (scenario_path.parent.parent / "policies", Path("policies")):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
    return sorted(names)


def load_scenario(path: str | Path, policies: list[str] | None = None) -> LoadedScenario:
    """Read and check a scenario and the policies it compares (or `policies`, if given); the baseline is always included."""
    path = Path(path)
    file = str(path)
    sc, where = read_scenario(path)
    diags = check_scenario(sc, where, file)
    if diags:
        raise LabError(diags)
    world = world_of(sc)
    names = list(policies) if policies else list(sc.policies)
    if BASELINE not in names:
        names.insert(0, BASELINE)
    else:
        names.remove(BASELINE)
        names.insert(0, BASELINE)
    compiled: dict[str, CompiledPolicy] = {}
    files: dict[str, Path] = {}
    for i, name in enumerate(names):
        pf = policy_file(name, path)
        if pf is None:
            loc = ("policies", sc.policies.index(name)) if name in sc.policies else ("policies",)
            hint = suggest(name, available_policies(path))
            msg = f"policy '{name}' not found (looked for {name}.yaml beside the scenario and in policies/){hint}"
            if policies and name in policies:
                raise LabError([Diagnostic("<command line>", 1, 1, msg)])
            raise LabError([diag_at(file, where, loc, msg)])
        pol, pwhere = read_policy(pf)
        cp = compile_checked(pol, pwhere, str(pf), world)
        if pol.name in compiled:
            raise LabError([diag_at(str(pf), pwhere, ("name",), f"two policies are named '{pol.name}'; policy names must differ")])
        compiled[pol.name] = cp
        files[pol.name] = pf
    return LoadedScenario(sc, path, compiled, files)
