"""What one run gives its readers: its outcomes, series and tables, made from its record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from lab.engine.record import RunRecord
from lab.metrics.outcomes import outcomes
from lab.metrics.tables import customer_table, timeseries_of, transaction_table


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
    return summarise_all([record], [(seed, address)])[0]


def summarise_all(records: Sequence[RunRecord], worlds: Sequence[tuple[int, tuple[int, ...]]]) -> list[RunResult]:
    """`summarise` of each record (`worlds`: each run's seed and address), their series grouped at once
    (`lab.metrics.tables.timeseries_of`): the records of one stack, each result the bits of its own."""
    series = timeseries_of(records)
    return [RunResult(r.scenario, r.policy, seed, address, outcomes(r), ts, customer_table(r), transaction_table(r),
                      dict(r.rule_fires), dict(r.rule_cost), r.launch_day)
            for r, (seed, address), ts in zip(records, worlds, series, strict=True)]
