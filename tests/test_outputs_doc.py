"""Contract: docs/OUTPUTS.md's table of outcomes is the outcome registry, row for row (names in order, label,
unit, which way is better, description). Behaviour of the outcomes is tested in tests/test_outcomes.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.metrics.outcomes import REGISTRY
from lab.metrics.registry import Direction

OUTPUTS_MD = Path(__file__).resolve().parents[1] / "docs" / "OUTPUTS.md"
BETTER = {Direction.HIGHER: "higher", Direction.LOWER: "lower", Direction.NEITHER: "--"}


def _outcome_rows() -> list[list[str]]:
    """The rows of the table under '### The outcomes', as cells."""
    text = OUTPUTS_MD.read_text()
    section = text.split("### The outcomes", 1)[1].split("\n### ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:5] == ["outcome", "label", "unit", "better", "definition (from the registry)"], header
    assert set(lines[1].replace("|", "")) == {"-"}
    return [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in lines[2:]]


def test_the_table_lists_exactly_the_registered_outcomes_in_order() -> None:
    names = [row[0].strip("`") for row in _outcome_rows()]
    assert names == list(REGISTRY.names)


@pytest.mark.parametrize("name", REGISTRY.names)
def test_each_row_carries_the_registered_label_unit_direction_and_description(name: str) -> None:
    rows = {row[0].strip("`"): row for row in _outcome_rows()}
    o = REGISTRY[name]
    _name, label, unit, better, description, formula = rows[name]
    assert label == o.label
    assert unit == o.unit
    assert better == BETTER[o.direction]
    assert description == o.description
    assert formula, f"{name}: the exact formula is missing"
