"""The package's structure: imports point one way, and no module imports itself round a cycle.

Data flows YAML -> validated model -> engine -> plain run record -> metrics -> reports.
Each subpackage of lab has a layer below; a module may import only from its own
layer or lower ones. Imports inside functions count (they still tie the modules
together); imports under ``if TYPE_CHECKING:`` do not, since they never run and only
name a type the caller hands over.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Lowest first. Packages on one line form one layer and may import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "randomness"),
    ("config",),
    ("policy",),
    ("scenario",),
    ("population", "schemas"),
    ("engine",),
    ("metrics", "fit"),
    ("experiment",),
    ("batch",),
    ("report",),
    ("cliargs", "cli", "__main__", "lab"),
)
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in (ROOT / "lab").rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return mods


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Line numbers inside `if TYPE_CHECKING:` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Each lab module's lab modules imported at run time (module level or inside functions)."""
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        tree = ast.parse(p.read_text())
        skip = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                graph[m].update(a.name for a in node.names if a.name in mods)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    if full in mods:
                        graph[m].add(full)
                    elif node.module in mods:
                        graph[m].add(node.module)
    return graph


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "lab"


def test_every_subpackage_has_a_layer():
    packages = {_package(m) for m in _modules()}
    assert packages <= set(RANK), f"give these a layer in LAYERS: {sorted(packages - set(RANK))}"


def test_no_module_imports_from_a_layer_above_its_own():
    graph = _imports(_modules())
    upstream = sorted(f"{m} imports {n}" for m, deps in graph.items() for n in deps
                      if RANK[_package(n)] > RANK[_package(m)])
    assert not upstream, "imports that reach upstream:\n" + "\n".join(upstream)


def test_the_lab_package_has_no_import_cycles():
    graph = _imports(_modules())
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import cycle: " + " -> ".join(trail[trail.index(n):] + [n])
            if n not in state:
                visit(n, trail + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_the_checks_see_a_cycle_and_an_upstream_import():
    """The graph the checks walk is the real one: known edges are in it."""
    graph = _imports(_modules())
    assert "lab.engine.record" in graph["lab.metrics.outcomes"]  # metrics read the run record
    assert "lab.policy.runtime" not in graph["lab.policy.actions.base"]  # a type-only import is not an edge
