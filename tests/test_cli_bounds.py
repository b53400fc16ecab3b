"""The command line accepts the sizes a scenario file accepts, and refuses the others with the bound and the fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lab.cli import build_parser
from lab.config import FieldMeta
from lab.scenario.model import Population, Scenario

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = str(ROOT / "scenarios" / "classroom.yaml")
SPEC = str(ROOT / "scenarios" / "batches" / "reward_sensitivity.yaml")


def _bound(cls: type, name: str) -> FieldMeta:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return next(m for m in f.metadata.values() if isinstance(m, FieldMeta))


MAX_CUSTOMERS = int(_bound(Population, "customers").max)
MAX_DAYS = int(_bound(Scenario, "days").max)
COMMANDS = {
    "run": ["run", CLASSROOM, "--policy", "points", "--out", "unused"],
    "compare": ["compare", CLASSROOM],
    "trace": ["trace", CLASSROOM, "--policy", "points", "--customer", "0"],
    "batch": ["batch", SPEC],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("option", "value", "bound"), [
    ("--customers", MAX_CUSTOMERS + 1, f"<= {MAX_CUSTOMERS}"),
    ("--customers", 10**12, f"<= {MAX_CUSTOMERS}"),
    ("--customers", 0, ">= 1"),
    ("--days", MAX_DAYS + 1, f"<= {MAX_DAYS}"),
    ("--days", 100_000_000, f"<= {MAX_DAYS}"),
])
def test_sizes_outside_the_scenario_bounds_exit_2_with_the_bound(command, option, value, bound, capsys):
    # parsing alone: should the bound ever go, the test fails instead of starting a run of that size
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*COMMANDS[command], option, str(value)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {value} is outside the bounds" in err and bound in err and "pass " in err
    assert "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_sizes_at_the_bounds_are_accepted(command):
    args = build_parser().parse_args([*COMMANDS[command], "--customers", str(MAX_CUSTOMERS), "--days", str(MAX_DAYS)])
    assert (args.customers, args.days) == (MAX_CUSTOMERS, MAX_DAYS)


def test_an_expression_is_not_a_number(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*COMMANDS["run"], "--customers", "10**12"])
    assert exc.value.code == 2
    assert "expected a whole number, got '10**12'" in capsys.readouterr().err
