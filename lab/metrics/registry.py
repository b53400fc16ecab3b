"""What an outcome is: its name, how people read it, its unit, which way is better, and its formula.

`Outcome` is one row of the lab's single table of outcomes (`lab.metrics.outcomes.REGISTRY`); the
summary files, the terminal table, the HTML report, the figures and docs/OUTPUTS.md all read that
table, so an outcome is added, renamed or redefined in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from lab.engine.record import RunRecord

# the units an outcome may have; the text and figure formatters know how to show each
UNITS = ("$", "share", "customers", "purchases", "0-1", "per year")


class Direction(Enum):
    """Which way an outcome is good news for the retailer."""

    HIGHER = "higher"
    LOWER = "lower"
    NEITHER = "neither"  # the direction depends on the question (breakage, concentration, ...)


@dataclass(frozen=True)
class Outcome:
    """One outcome of a run: a number computed from the run's record."""

    name: str                       # identifier, as in summary.json and replications.parquet
    label: str                      # how sentences, tables and figures name it
    unit: str                       # one of UNITS; shares are stored as fractions
    direction: Direction
    description: str                # one line, copied into summary.json and docs/OUTPUTS.md
    formula: Callable[[RunRecord], float]

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"outcome name '{self.name}' is not an identifier")
        if self.unit not in UNITS:
            raise ValueError(f"outcome '{self.name}': unit '{self.unit}' is not one of {', '.join(UNITS)}")
        if not self.label or not self.description:
            raise ValueError(f"outcome '{self.name}' needs a label and a description")

    @property
    def higher_is_better(self) -> bool | None:
        """True, False, or None when neither direction is better (the summary.json field)."""
        return {Direction.HIGHER: True, Direction.LOWER: False, Direction.NEITHER: None}[self.direction]

    def __call__(self, record: RunRecord) -> float:
        return float(self.formula(record))


class Registry(Mapping[str, Outcome]):
    """The outcomes in table order, looked up by name."""

    def __init__(self, outcomes: Iterable[Outcome]) -> None:
        self._by_name: dict[str, Outcome] = {}
        for o in outcomes:
            if o.name in self._by_name:
                raise ValueError(f"outcome '{o.name}' is registered twice")
            self._by_name[o.name] = o

    def __getitem__(self, name: str) -> Outcome:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def selection(self, names: Sequence[str]) -> tuple[str, ...]:
        """A named subset (the headline, the forest plot's), checked against the registry."""
        missing = [n for n in names if n not in self._by_name]
        if missing:
            raise ValueError(f"not registered outcomes: {', '.join(missing)}")
        return tuple(names)

    def evaluate(self, record: RunRecord) -> dict[str, float]:
        """Every outcome of one run, in table order."""
        return {name: o(record) for name, o in self._by_name.items()}
