"""When the programme starts and on whom: a run's launch day and its starting population, for both engines.

Until `launch_day` the store runs under no programme, the same under every policy (docs/MODEL.md, "Launch
day"); a scenario with `population.from_fit` starts from the customers `lab fit` found, their traits drawn
from each one's posterior (lab.population.existing).
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.engine.options import RunOptions
from lab.errors import LabError
from lab.population.existing import ExistingBase
from lab.randomness import Streams
from lab.scenario.model import Scenario


@dataclass(frozen=True)
class Launch:
    """A run's launch: the day the policy starts, the existing base (if any) and the starting customers."""

    day: int
    base: ExistingBase | None
    customers: int

    @property
    def launched(self) -> bool:
        """Whether the policy starts later than day 0 or on an existing base (outcomes then count from the launch)."""
        return self.day > 0 or self.base is not None


def plan_launch(scenario: Scenario, streams: Streams, opts: RunOptions, days: int) -> Launch:
    """The launch of one run; a launch day on or after the run's end is refused (it would measure nothing)."""
    day = scenario.launch_day
    base = None
    if scenario.population.from_fit is not None:
        from lab.population.existing import existing_base

        base = existing_base(scenario, streams, opts.customers)
    if day >= days:
        raise LabError.at("<scenario>", 1, 1, f"launch_day {day} is not before the end of the run "
                          f"(day {days}): outcomes are measured from the launch; give days above {day}, or a "
                          f"launch_day below {days}")
    customers = base.history.n if base is not None else (opts.customers or scenario.population.customers)
    return Launch(day, base, customers)
