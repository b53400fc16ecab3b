"""Where a policy or scenario reference points: the one resolution rule of every command.

A reference is either a **path** (it holds a folder separator or ends in ``.yaml``/``.yml``) or a **name**
(``points``). The same rule serves ``lab validate``, ``explain``, ``run``, ``compare``, ``trace``, a scenario's
``policies:`` list and a batch spec:

- a path given on the command line is taken as written (relative to the working folder);
- a path written in a scenario is relative to the scenario's folder and must stay inside it (a scenario
  cannot make the lab read, and quote, a file elsewhere on the disk);
- a name is looked up beside the scenario (``NAME.yaml``), then in the ``policies/`` folder next to the
  scenario's folder (the layout of this repository and of a project copied from it), then among the
  policies shipped with the package (``lab/data/policies``, installed with it).

Nothing depends on the working folder except a path the user typed.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SHIPPED", "SHIPPED_POLICIES", "SHIPPED_SCENARIOS", "is_path", "policy_names", "find_policy",
           "find_scenario", "looked_in", "outside_folder"]

#: The data installed with the package.
SHIPPED = Path(__file__).resolve().parent.parent / "data"
SHIPPED_POLICIES = SHIPPED / "policies"
SHIPPED_SCENARIOS = SHIPPED / "scenarios"
_SUFFIXES = (".yaml", ".yml")


def is_path(ref: str) -> bool:
    """Whether a reference is written as a path (else it is a name)."""
    return "/" in ref or "\\" in ref or ref.endswith(_SUFFIXES) or ref in (".", "..")


def _folders(scenario: Path | None) -> list[Path]:
    out: list[Path] = []
    if scenario is not None:
        out += [scenario.parent, scenario.parent.parent / "policies"]
    out.append(SHIPPED_POLICIES)
    return list(dict.fromkeys(out))


def looked_in(scenario: Path | None) -> str:
    """Where a name is looked for, in words, for a "not found" message."""
    places = (["beside the scenario", "in policies/ next to the scenario's folder"] if scenario is not None else [])
    return ", ".join(places + ["among the shipped policies"])


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def find_policy(ref: str, scenario: Path | None = None, *, typed: bool = True) -> Path | None:
    """The file a policy reference names, or None.

    ``typed`` says the reference was given by the user on the command line (a path is then taken as written);
    a reference read from the scenario file ``scenario`` has ``typed=False`` (a path stays inside its folder)."""
    try:
        if is_path(ref):
            if typed:
                p = Path(ref)
                return p if p.is_file() else None
            if scenario is None or Path(ref).is_absolute():
                return None
            p = scenario.parent / ref
            return p if p.is_file() and _inside(p, scenario.parent) else None
        for folder in _folders(scenario):
            for suffix in _SUFFIXES:
                p = folder / f"{ref}{suffix}"
                if p.is_file():
                    return p
    except (OSError, ValueError):  # a name too long for a file name, a NUL byte, ...
        return None
    return None


def outside_folder(ref: str, scenario: Path) -> bool:
    """Whether a path reference in the scenario file `scenario` names an existing file outside the scenario's
    folder (which `find_policy` does not take from a scenario: a path there stays inside its folder)."""
    try:
        p = scenario.parent / ref  # (an absolute ref stays as it is)
        return is_path(ref) and p.is_file() and not _inside(p, scenario.parent)
    except (OSError, ValueError):  # a name too long for a file name, a NUL byte, ...
        return False


def policy_names(scenario: Path | None = None) -> list[str]:
    """The policy names a reference can use (for suggestions)."""
    names: set[str] = set()
    for folder in _folders(scenario):
        if folder.is_dir():
            names.update(p.stem for p in folder.iterdir() if p.suffix in _SUFFIXES)
    return sorted(names)


def find_scenario(ref: str) -> Path | None:
    """The scenario (or batch spec) file a command-line reference names: a path as written, else a shipped one's
    name."""
    try:
        p = Path(ref)
        if p.is_file():
            return p
        if not is_path(ref):
            for folder in (SHIPPED_SCENARIOS, SHIPPED_SCENARIOS / "batches"):
                for suffix in _SUFFIXES:
                    q = folder / f"{ref}{suffix}"
                    if q.is_file():
                        return q
    except (OSError, ValueError):
        return None
    return None
