"""The outcomes of a run, each defined once, here: its metadata and its formula on the run's record.

`REGISTRY` is the one table of outcomes, in the order of every table and file. docs/OUTPUTS.md
copies each row (a test keeps it in step); summary.json, the terminal table, the HTML report and
the figures read their names, units, directions and descriptions from it. `HEADLINE` and `FOREST`
name the subsets the terminal table and the forest plot show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lab.engine.record import PointsLedger, RunRecord
from lab.metrics.registry import Direction, Outcome, Registry
from lab.metrics.stats import top_share

HIGHER, LOWER, NEITHER = Direction.HIGHER, Direction.LOWER, Direction.NEITHER
NAN = float("nan")


@dataclass(frozen=True)
class Total:
    """The formula 'the daily series summed over the run'."""

    series: str

    def __call__(self, r: RunRecord) -> float:
        return float(r.daily[self.series][r.measured_from:].sum())


@dataclass(frozen=True)
class Final:
    """The formula 'the daily series on the last day'."""

    series: str

    def __call__(self, r: RunRecord) -> float:
        return float(r.daily[self.series][-1])


def programme_cost(r: RunRecord) -> float:
    d, f = r.daily, r.measured_from
    return float(d["discounts"][f:].sum() + d["reward_goods_cost"][f:].sum() + d["offers_cost"][f:].sum()
                 + d["programme_running_cost"][f:].sum())


def points_left_ledgers(r: RunRecord) -> tuple[float, float]:
    """Points expired and points redeemed, summed over every customer and every points ledger."""
    expired = float(sum(b.total_expired for b in r.points.values()))
    redeemed = float(sum(b.total_redeemed for b in r.points.values()))
    return expired, redeemed


def breakage_rate(r: RunRecord) -> float:
    expired, redeemed = points_left_ledgers(r)
    return expired / (expired + redeemed) if expired + redeemed > 0 else NAN


def _held_by_lapsed(r: RunRecord, book: PointsLedger) -> float:
    """Points of one ledger outstanding at the end with customers who have dropped out (rows are customer ids)."""
    held = book.outstanding
    lapsed = np.zeros(len(held), dtype=bool)
    m = min(len(held), r.customers.n)
    lapsed[:m] = ~r.customers.alive[:m]
    return float(held[lapsed].sum())


def lapsed_points(r: RunRecord) -> float:
    """Points still outstanding at the end in the accounts of customers who have dropped out (every ledger)."""
    return float(sum(_held_by_lapsed(r, b) for b in r.points.values()))


def lapsed_points_liability(r: RunRecord) -> float:
    """Dollar value of the points held at the end by customers who have dropped out: a liability on the books
    that no one is left to redeem (the 'system of hope' of a scheme's breakage)."""
    return float(sum(b.value * _held_by_lapsed(r, b) for b in r.points.values()))


def stranded_breakage_rate(r: RunRecord) -> float:
    """Breakage counting the points stranded with lapsed customers as broken: (expired + lapsed) /
    (expired + redeemed + lapsed), in points; NaN when the denominator is 0."""
    expired, redeemed = points_left_ledgers(r)
    lapsed = lapsed_points(r)
    total = expired + redeemed + lapsed
    return (expired + lapsed) / total if total > 0 else NAN


def active_customers(r: RunRecord) -> float:
    return float(r.customers.alive.sum())


#: How long 12-month retention follows a customer, in days.
RETENTION_DAYS = 365


def retention_horizon(launch_day: int) -> int:
    """The shortest run, in days, whose 12-month retention can be measured: a year from the launch (from day 0
    for a day-0 cohort), as `retention_12m` follows its customers."""
    return launch_day + RETENTION_DAYS


def retention_12m(r: RunRecord) -> float:
    c = r.customers
    if r.launch_day is not None:  # from the launch: customers present then, or acquired since, followed 365 days
        start = np.maximum(c.acquired_at, r.launch_day)
        cohort = (start <= r.days - RETENTION_DAYS) & ~(c.dropped_at < r.launch_day)
        if not cohort.any():
            return NAN
        survived = c.alive[cohort] | (c.dropped_at[cohort] > start[cohort] + RETENTION_DAYS)
        return float(survived.mean())
    cohort = c.acquired_at <= r.days - RETENTION_DAYS
    if not cohort.any():
        return NAN
    survived = c.alive[cohort] | (c.dropped_at[cohort] > c.acquired_at[cohort] + RETENTION_DAYS)
    return float(survived.mean())


def repeat_purchase_rate(r: RunRecord) -> float:
    c = r.customers
    return float((c.purchases >= 2).mean()) if c.n else NAN


def mean_clv(r: RunRecord) -> float:
    c = r.customers
    return float(c.clv.mean()) if c.n else NAN


def top20_revenue_share(r: RunRecord) -> float:
    c = r.customers
    return float(top_share(c.revenue, 0.2)) if c.n else NAN


def customer_satisfaction(r: RunRecord) -> float:
    sat = r.daily["customer_satisfaction"]
    return float(sat[~np.isnan(sat)][-1]) if np.any(~np.isnan(sat)) else NAN


def staff_turnover(r: RunRecord) -> float:
    f = r.measured_from
    return float(r.daily["staff_quits"][f:].sum()) / r.staff_count / ((r.days - f) / 365.0)


def service_quality(r: RunRecord) -> float:
    return float(r.daily["service_quality"][r.measured_from:].mean())


def launch_customers(r: RunRecord) -> tuple[np.ndarray, np.ndarray]:
    """(customer ids present when the programme launched, their revenue since), for the member comparison.

    With a launch: everyone alive at it, their revenue from it to the end. Without one: the starting customers
    (ids below `initial_customers`), their revenue over the whole run."""
    c = r.customers
    if r.launch_revenue is None:
        ids = np.arange(min(r.initial_customers, c.n))
        return ids, np.asarray(c.revenue[ids], dtype=float)
    ids = np.flatnonzero(~np.isnan(r.launch_revenue))
    return ids, np.asarray(c.revenue[ids] - r.launch_revenue[ids], dtype=float)


def _measured_years(r: RunRecord) -> float:
    return (r.days - r.measured_from) / 365.0


def launch_customer_revenue(r: RunRecord) -> float:
    ids, rev = launch_customers(r)
    return float(rev.mean()) / _measured_years(r) if ids.size else NAN


def launch_member_share(r: RunRecord) -> float:
    ids, _ = launch_customers(r)
    return float(r.customers.member[ids].mean()) if ids.size else NAN


def naive_member_gap(r: RunRecord) -> float:
    ids, rev = launch_customers(r)
    member = r.customers.member[ids]
    if member.all() or not member.any():
        return NAN
    return float(rev[member].mean() - rev[~member].mean()) / _measured_years(r)


REGISTRY = Registry([
    Outcome("revenue", "revenue", "$", HIGHER,
            "money taken from customers: gross sales less every discount", Total("revenue")),
    Outcome("gross_profit", "gross profit", "$", HIGHER,
            "revenue less cost of goods sold and of free items and trials", Total("gross_profit")),
    Outcome("net_profit", "net profit", "$", HIGHER,
            "gross profit less wages, hiring, fixed costs, marketing, offers, programme running costs, bad debt "
            "and profit sharing, plus credit interest and fees", Total("net_profit")),
    Outcome("programme_cost", "programme cost", "$", LOWER,
            "discounts given by the programme + cost of free items and trials + offers + running costs",
            programme_cost),
    Outcome("points_liability", "points liability", "$", LOWER,
            "value of points outstanding at the end", Final("points_liability")),
    Outcome("breakage_rate", "breakage rate", "share", NEITHER,
            "points expired / (points expired + points redeemed)", breakage_rate),
    Outcome("lapsed_points_liability", "points liability held by lapsed customers", "$", LOWER,
            "value of the points outstanding at the end in the accounts of customers who have dropped out",
            lapsed_points_liability),
    Outcome("stranded_breakage_rate", "breakage incl. lapsed customers' points", "share", NEITHER,
            "(points expired + points held by lapsed customers) / (points expired + points redeemed + points held "
            "by lapsed customers)", stranded_breakage_rate),
    Outcome("credit_outstanding", "credit outstanding", "$", NEITHER,
            "credit balances owed at the end", Final("credit_outstanding")),
    Outcome("bad_debt", "bad debt", "$", LOWER,
            "credit principal written off (unpaid interest and fees were never income)", Total("bad_debt")),
    Outcome("active_customers", "active customers", "customers", HIGHER,
            "customers still alive (not dropped out) at the end", active_customers),
    Outcome("retention_12m", "12-month retention", "share", HIGHER,
            "of customers acquired at least 365 days before the end, the share still alive 365 days after "
            "acquisition", retention_12m),
    Outcome("repeat_purchase_rate", "repeat-purchase rate", "share", HIGHER,
            "share of customers who bought at least twice", repeat_purchase_rate),
    Outcome("mean_clv", "mean customer lifetime value", "$", HIGHER,
            "mean discounted margin per customer since acquisition (revenue less cost of goods and rewards)",
            mean_clv),
    Outcome("top20_revenue_share", "top-20% revenue share", "share", NEITHER,
            "share of revenue from the top 20% of customers (the 80/20 rule)", top20_revenue_share),
    Outcome("acquired", "acquired", "customers", NEITHER,
            "customers acquired during the run (marketing and referrals)", Total("acquired")),
    Outcome("lost", "lost", "customers", LOWER, "customers who dropped out during the run", Total("lost")),
    Outcome("customer_satisfaction", "customer satisfaction", "0-1", HIGHER,
            "mean satisfaction of alive customers at the end", customer_satisfaction),
    Outcome("staff_turnover", "staff turnover", "per year", LOWER,
            "staff leavers per member of staff per year", staff_turnover),
    Outcome("service_quality", "service quality", "0-1", HIGHER, "mean service quality over the run",
            service_quality),
    Outcome("purchases", "purchases", "purchases", HIGHER, "purchases during the run", Total("purchases")),
    Outcome("launch_customer_revenue", "revenue per launch customer-year", "$", HIGHER,
            "revenue since the launch per customer present at it, per year (without a launch: the starting "
            "customers over the run); its paired difference against the baseline is the programme's causal effect "
            "per launch customer", launch_customer_revenue),
    Outcome("launch_member_share", "members among launch customers", "share", NEITHER,
            "share of the customers present at the launch who joined the programme then", launch_member_share),
    Outcome("naive_member_gap", "naive member gap", "$", NEITHER,
            "members' minus non-members' revenue per launch customer-year within this run: the estimate a "
            "retailer makes from its own data, self-selection included (empty when everyone or no one joined)",
            naive_member_gap),
])

HEADLINE = REGISTRY.selection(("net_profit", "revenue", "retention_12m", "active_customers"))
FOREST = REGISTRY.selection((*HEADLINE, "mean_clv", "customer_satisfaction"))

# name -> (unit, higher is better?, description), derived from REGISTRY for readers not yet moved to it
# (the batch layer); new code reads REGISTRY
OUTCOMES: dict[str, tuple[str, bool | None, str]] = {
    o.name: (o.unit, o.higher_is_better, o.description) for o in REGISTRY.values()}


def outcomes(record: RunRecord) -> dict[str, float]:
    """The scalar outcomes of one run, in table order."""
    return REGISTRY.evaluate(record)
