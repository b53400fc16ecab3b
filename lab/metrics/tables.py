"""The tables of one run: a per-period time series of the store and the flywheel, one row per customer,
and one row per purchase (docs/OUTPUTS.md gives every column)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lab.engine.record import RunRecord

# how each daily column becomes a per-period value
_STOCKS = ("alive", "customers", "members", "points_outstanding", "points_liability", "credit_outstanding",
           "unit_cost_factor", "staff_satisfaction", "staff_experience_days", "repeat_sales_share", "market_share")
_MEANS = ("service_quality", "service_load", "customer_satisfaction")


def aggregation(column: str) -> str:
    """How a daily column becomes a per-period value: a stock's last value, a rate's mean, a flow's sum."""
    return "last" if column in _STOCKS else ("mean" if column in _MEANS else "sum")


def timeseries(record: RunRecord, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per period: flows summed, stocks at the period's end, rates averaged. Time in days.

    `columns`: only these of the daily columns (each is aggregated on its own, so its values are the same as in
    the whole table); the margin and the net customers come only with the whole table."""
    if columns is not None:
        return timeseries_each([record], columns).drop(columns="run")
    return timeseries_of([record])[0]


def timeseries_of(records: Sequence[RunRecord]) -> list[pd.DataFrame]:
    """`timeseries(record)`, the whole table, of every record, from one grouping of all their days (a stack's
    runs have the same daily columns; one grouping per run costs more than its adding): each (run, period) is
    aggregated on its own, in the order of its days, so every table has the bits of the run's own."""
    if not records:
        return []
    columns = {k: v.dtype for k, v in records[0].daily.items()}
    if any({k: v.dtype for k, v in r.daily.items()} != columns for r in records[1:]):
        raise ValueError("timeseries_of: the records' daily columns differ (names or types): summarise the runs "
                         "of one stack together, or each on its own")
    grouped = _grouped(records, [k for k in columns if k != "day"])
    bounds = np.searchsorted(grouped["run"].to_numpy(), np.arange(len(records) + 1)).tolist()
    tables = []
    for i, record in enumerate(records):
        out = grouped.iloc[bounds[i]:bounds[i + 1]].drop(columns="run").reset_index(drop=True)
        gp, rev = out["gross_profit"].to_numpy(dtype=float), out["revenue"].to_numpy(dtype=float)
        out["margin"] = np.divide(gp, rev, out=np.full(len(rev), np.nan), where=rev > 0)
        out["net_customers"] = out["acquired"] - out["lost"]
        if record.launch_day is not None:  # a launched run: which periods are the warm-up, which are measured
            out["after_launch"] = out["day_start"] >= record.launch_day
        tables.append(out)
    return tables


def timeseries_each(records: Sequence[RunRecord], columns: Sequence[str]) -> pd.DataFrame:
    """`timeseries(record, columns)` of every record, in one table: its rows are each run's in turn, with the
    run's place in `records` in a leading column "run". It is one grouping of all their days (a batch keeps a
    few series of thousands of runs, and one grouping per run costs more than its adding); each (run, period)
    is aggregated on its own, in the order of its days, so every value has the bits of the run's own table."""
    if "margin" in columns:
        raise ValueError("a period's margin comes from its sums: ask for the whole table")
    return _grouped(records, list(columns))


def period_starts(days: int, period_days: int, launch_day: int | None) -> np.ndarray:
    """The first day of each period of a run: every `period_days` from day 0, and again from the launch day, so
    that no period holds days on both sides of the launch (the period it would split ends short the day before).
    Every day of a period flagged `after_launch` is then a measured day, and the periods' sums after the launch
    add up to the outcomes' totals."""
    starts = np.arange(0, days, period_days, dtype=np.int64)
    if launch_day:
        starts = np.union1d(starts[starts < launch_day], np.arange(launch_day, days, period_days, dtype=np.int64))
    return starts


def _grouped(records: Sequence[RunRecord], keep: list[str]) -> pd.DataFrame:
    """The per-period table of `keep` of every record, as `timeseries_each` describes it (the whole table
    replaces the summed margin with the margin of the sums)."""
    lengths = [len(r.daily["day"]) for r in records]
    starts = [period_starts(r.days, r.period_days, r.launch_day) for r in records]
    frame = pd.DataFrame({k: np.concatenate([r.daily[k] for r in records] or [np.zeros(0)]) for k in keep})
    frame["run"] = np.repeat(np.arange(len(records), dtype=np.int64), lengths)
    frame["period"] = np.concatenate([np.searchsorted(s, r.daily["day"].astype(np.int64), side="right") - 1
                                      for r, s in zip(records, starts, strict=True)]
                                     or [np.zeros(0, dtype=np.int64)]).astype(np.int64)
    out = frame.groupby(["run", "period"], sort=True).agg({k: aggregation(k) for k in keep}).reset_index()
    # each run's starts and then its end, one after another: row (run, period) starts at offset[run] + period
    bounds = np.concatenate([np.append(s, r.days) for r, s in zip(records, starts, strict=True)]
                            or [np.zeros(0, dtype=np.int64)]).astype(np.int64)
    offset = np.cumsum([0] + [len(s) + 1 for s in starts])[:-1].astype(np.int64)
    at = offset[out["run"].to_numpy()] + out["period"].to_numpy()
    out.insert(2, "day_start", bounds[at])
    out.insert(3, "day_end", bounds[at + 1])
    return out


def customer_table(record: RunRecord) -> pd.DataFrame:
    """One row per customer ever acquired."""
    c = record.customers
    frame = pd.DataFrame({
        "customer_id": np.arange(c.n),
        "segment": pd.Categorical.from_codes(c.segment, categories=list(record.segments)),
        "acquired_at": c.acquired_at,
        "referred": c.referred,
        "member": c.member,
        "purchases": c.purchases,
        "revenue": c.revenue,
        "discounts": c.discounts,
        "clv": c.clv,
        "last_purchase": c.last_purchase,
        "churned": ~c.alive,
        "dropped_at": c.dropped_at,
        "referrals": c.referrals,
    })
    if record.tiers is not None and c.tier is not None:
        frame["tier"] = pd.Categorical.from_codes(c.tier, categories=list(record.tiers))
    for name, book in record.points.items():
        frame[f"points_{name}"] = book.outstanding
    for name, line in record.credit.items():
        frame[f"credit_owed_{name}"] = line.owed
        frame[f"credit_written_off_{name}"] = line.written_off
    return frame


def transaction_table(record: RunRecord) -> pd.DataFrame | None:
    """One row per purchase, when the run kept them."""
    tx = record.transactions
    if tx is None:
        return None
    cats = list(record.categories)
    ids = record.rule_ids
    # each distinct bit mask of rules is spelled out once
    uniq, inv = np.unique(tx["rules"].astype(np.uint64), return_inverse=True)
    names = [";".join(ids[i] for i in range(min(len(ids), 64)) if int(u) >> i & 1) for u in uniq]
    labels = np.array(names, dtype=object)[inv]
    return pd.DataFrame({
        "customer_id": tx["customer_id"].astype(np.int64),
        "time": tx["time"],
        "amount": tx["amount"],
        "category": pd.Categorical.from_codes(tx["category"].astype(np.int64), categories=cats),
        "discount": tx["discount"],
        "credit": tx["credit"],
        "rules": labels,
    }).sort_values(["time", "customer_id"]).reset_index(drop=True)  # a sort on two keys is stable
