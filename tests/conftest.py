"""Shared fixtures: the classroom scenario, small variants of it, and policies written inline.

Scenario variants are made with `dataclasses.replace` along double-underscore
paths, e.g. ``small_scenario(population__customers=300, behaviour__enabled=False)``.
The fixtures are session-scoped so that hypothesis tests can use them.
"""

from __future__ import annotations

import atexit
import dataclasses
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab.policy.loader import load_policy
from lab.policy.runtime import CompiledPolicy
from lab.scenario.loader import LoadedScenario, load_scenario, world_of
from lab.scenario.model import Scenario

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"
POLICIES = ROOT / "policies"


def traced_work(fn: Callable[[], Any]) -> tuple[Any, int]:
    """fn's result and the work it took, counted as Python trace events (calls and lines): a deterministic
    measure, whatever the machine's load, for tests that hostile input is refused with bounded work."""
    events = 0

    def count(frame: object, event: str, arg: object) -> Any:
        nonlocal events
        events += 1
        return count

    before = sys.gettrace()
    sys.settrace(count)
    try:
        result = fn()
    finally:
        sys.settrace(before)
    return result, events


def with_changes(obj: Any, **changes: Any) -> Any:
    """A copy of a frozen dataclass with fields changed along double-underscore paths (a__b=1 sets obj.a.b)."""
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in changes.items():
        head, _, rest = path.partition("__")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        direct[head] = with_changes(direct.get(head, getattr(obj, head)), **sub)
    return dataclasses.replace(obj, **direct)


def day0(sc: Scenario) -> Scenario:
    """A shipped store as a day-0 cohort: every starting customer arrives on day 0 and the policy runs from day 0
    (no warm-up, no launch), the world of the BG/NBD checks and of the tests of mechanics."""
    return dataclasses.replace(sc, launch_day=0, population=dataclasses.replace(sc.population, arrival_days=0))


def day0_loaded(ls: LoadedScenario) -> LoadedScenario:
    """A loaded shipped store as a day-0 cohort (`day0`), its policies as compiled: for the tests that only need a
    quick run with a short horizon (a horizon below the launch day is refused)."""
    return dataclasses.replace(ls, scenario=day0(ls.scenario))


def day0_file(folder: Path, days: int = 365, source: Path = CLASSROOM) -> Path:
    """A copy of a shipped scenario file as a day-0 cohort (launch_day 0, arrival_days 0) over `days`, written into
    folder: for the tests that run the file through the command line or a batch spec with a short horizon and no
    warm-up (the shipped stores launch after a year's warm-up, so a horizon below a year needs this)."""
    text = source.read_text()
    for key, value in (("days", days), ("launch_day", 0), ("  arrival_days", 0)):
        text, n = re.subn(rf"^{key}: *\d+", f"{key}: {value}", text, count=1, flags=re.M)
        assert n == 1, f"{source.name} has no top-level '{key.strip()}:' line"
    path = folder / f"{source.stem}_day0.yaml"
    path.write_text(text)
    return path


_DAY0_DIR = Path(tempfile.mkdtemp(prefix="lab-tests-day0-"))
atexit.register(shutil.rmtree, _DAY0_DIR, True)
#: The classroom as a day-0 cohort (`day0_file`): the scenario of the batch tests, whose specs run a few weeks.
CLASSROOM_DAY0 = day0_file(_DAY0_DIR)


def everyone_joins(cp: CompiledPolicy) -> CompiledPolicy:
    """The policy with participation 1 (the shipped points policy signs up half the customers)."""
    return dataclasses.replace(cp, policy=dataclasses.replace(cp.policy, participation=1.0))


@pytest.fixture(scope="session")
def classroom() -> LoadedScenario:
    """scenarios/classroom.yaml with its policies compiled."""
    return load_scenario(CLASSROOM)


@pytest.fixture(scope="session")
def small_scenario(classroom: LoadedScenario) -> Callable[..., Scenario]:
    """A factory of classroom variants: 300 customers over 180 days as a day-0 cohort (no warm-up, the policy from
    day 0: the world the tests of mechanics are written against) unless the overrides say otherwise."""

    def make(**overrides: Any) -> Scenario:
        base = {"population__customers": 300, "days": 180, "launch_day": 0, "population__arrival_days": 0}
        base.update(overrides)
        return with_changes(classroom.scenario, **base)

    return make


@pytest.fixture(scope="session")
def policy_from_yaml(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Scenario], CompiledPolicy]:
    """Compile a policy written inline (YAML text) against a scenario's world, through the real loader."""
    folder = tmp_path_factory.mktemp("policies")
    count = 0

    def make(text: str, scenario: Scenario) -> CompiledPolicy:
        nonlocal count
        count += 1
        path = folder / f"policy{count}.yaml"
        path.write_text(text)
        return load_policy(path, world_of(scenario))

    return make


@pytest.fixture(scope="session")
def policy_file() -> Callable[[str, Scenario], CompiledPolicy]:
    """Compile policies/NAME.yaml against a scenario's world."""

    def make(name: str, scenario: Scenario) -> CompiledPolicy:
        return load_policy(POLICIES / f"{name}.yaml", world_of(scenario))

    return make
