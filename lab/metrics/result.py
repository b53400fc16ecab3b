"""What one run gives its readers: its outcomes, series and tables, made from its record."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lab.engine.record import RunRecord
from lab.metrics.outcomes import outcomes
from lab.metrics.tables import customer_table, timeseries, transaction_table


@dataclass(frozen=True)
class RunResult:
    """What one run gives its readers."""

    scenario: str
    policy: str
    seed: int
    address: tuple[int, ...]
    summary: dict[str, float]
    timeseries: pd.DataFrame
    customers: pd.DataFrame
    transactions: pd.DataFrame | None
    rule_fires: dict[str, int]
    rule_cost: dict[str, float]
    launch_day: int | None = None  # the day the programme launched, outcomes measured from it (None: no launch)


def summarise(record: RunRecord, seed: int, address: tuple[int, ...]) -> RunResult:
    """Turn a run's record into its outcomes, series and tables."""
    return RunResult(record.scenario, record.policy, seed, address, outcomes(record), timeseries(record),
                     customer_table(record), transaction_table(record), dict(record.rule_fires),
                     dict(record.rule_cost), record.launch_day)
