"""What a run hands to the metrics: the plain record of one run of one policy in one scenario.

The record is the whole contract between an engine and everything downstream of it (metrics,
experiments, reports): frozen dataclasses of numpy arrays and plain values, nothing live. An
engine builds it once, at the end of its run, with `record_run`, which reads the engine's live
objects (the customer columns, the programme's ledgers) by attribute and copies out what the
metrics need; this module never imports those classes, so the metrics that import it do not
depend on the engine's internals.

Per-customer arrays hold the `n` customers ever acquired, in id order, and are read-only views
of the engine's final columns (no copy). Ledger totals are stored, not recomputed from the
columns: the engine sums its whole ledger arrays, and a sum in another order may differ in the
last bit, which would move the reported numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from lab.policy.runtime import PolicyRuntime
    from lab.population.customers import Customers
    from lab.scenario.model import Scenario


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only view of an array (the engine's own array stays writable). A view of a row group's column
    (`Column.row_group`) keeps the group's records alive with it; copying it out instead raised the 1M-customer
    apparel run's peak memory from 908 to 982 MB (one run each), a cost paid during the run for memory freed
    only after it."""
    v = a.view()
    v.flags.writeable = False
    return v


def _check_lengths(obj: Any, n: int, what: str) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray) and len(value) != n:
            raise ValueError(f"{what}: column '{f.name}' has {len(value)} rows, expected {n}")


@dataclass(frozen=True)
class CustomerColumns:
    """One row per customer ever acquired (the starting customers included), in id order."""

    segment: np.ndarray       # int: index into RunRecord.segments
    acquired_at: np.ndarray   # day (fractional) of acquisition and first purchase
    dropped_at: np.ndarray    # day of dropout; NaN while alive
    alive: np.ndarray         # bool: not dropped out by the end
    referred: np.ndarray      # bool: came by referral
    referrals: np.ndarray     # int: customers this customer referred
    member: np.ndarray        # bool: joined the programme
    purchases: np.ndarray     # int: purchases over the run, the first included
    revenue: np.ndarray       # $ taken from the customer, after discounts
    discounts: np.ndarray     # $ off received
    clv: np.ndarray           # $ margin since acquisition, discounted at the scenario's rate (computed by the engine)
    last_purchase: np.ndarray  # day of the last purchase
    tier: np.ndarray | None = None  # int16: index into RunRecord.tiers, when the policy has tiers

    def __post_init__(self) -> None:
        _check_lengths(self, len(self.acquired_at), "customer columns")

    @property
    def n(self) -> int:
        """Customers ever acquired."""
        return len(self.acquired_at)


@dataclass(frozen=True)
class PointsLedger:
    """One points ledger: per customer, points earned, redeemed, deducted, expired and still outstanding
    (earned = redeemed + deducted + expired + outstanding); and the ledger's totals of each (points).
    `value` is the ledger's dollars per point (the policy's `value`; NaN when the builder did not say)."""

    earned: np.ndarray
    redeemed: np.ndarray
    deducted: np.ndarray
    expired: np.ndarray
    outstanding: np.ndarray
    total_earned: float
    total_redeemed: float
    total_deducted: float
    total_expired: float
    total_outstanding: float
    value: float = float("nan")

    def __post_init__(self) -> None:
        _check_lengths(self, len(self.earned), "points ledger")

    @classmethod
    def of(cls, *, earned: np.ndarray, redeemed: np.ndarray, deducted: np.ndarray, expired: np.ndarray,
           outstanding: np.ndarray, value: float = float("nan")) -> PointsLedger:
        """A ledger from its per-customer columns, its totals their sums."""
        e, r, d, x, o = (np.asarray(v, dtype=np.float64) for v in (earned, redeemed, deducted, expired, outstanding))
        return cls(e, r, d, x, o, float(e.sum()), float(r.sum()), float(d.sum()), float(x.sum()), float(o.sum()),
                   float(value))


@dataclass(frozen=True)
class CreditLine:
    """One store-credit line: per customer, dollars owed at the end (unpaid interest and fees included),
    charged, repaid, interest and fees accrued, and written off; and the line's totals of each ($)."""

    owed: np.ndarray
    charged: np.ndarray
    repaid: np.ndarray
    interest: np.ndarray
    fees: np.ndarray
    written_off: np.ndarray
    total_owed: float
    total_charged: float
    total_repaid: float
    total_interest: float
    total_fees: float
    total_written_off: float

    def __post_init__(self) -> None:
        _check_lengths(self, len(self.owed), "credit line")

    @classmethod
    def of(cls, *, owed: np.ndarray, charged: np.ndarray, repaid: np.ndarray, interest: np.ndarray,
           fees: np.ndarray, written_off: np.ndarray) -> CreditLine:
        """A line from its per-customer columns, its totals their sums."""
        o, c, r, i, f, w = (np.asarray(v, dtype=np.float64)
                            for v in (owed, charged, repaid, interest, fees, written_off))
        return cls(o, c, r, i, f, w, float(o.sum()), float(c.sum()), float(r.sum()), float(i.sum()), float(f.sum()),
                   float(w.sum()))


@dataclass(frozen=True)
class RunRecord:
    """Everything one run produced that the metrics read, as plain data.

    `daily` holds one array per daily series (the store's books and the flywheel's links, one value
    per day 0 .. days-1; docs/OUTPUTS.md lists them); `transactions`, when the run kept them, one
    array per column (customer_id, time, amount, category, discount, credit, rules: a bit mask over
    `rule_ids`)."""

    scenario: str
    policy: str
    days: int
    period_days: int
    staff_count: int
    segments: tuple[str, ...]
    categories: tuple[str, ...]
    initial_customers: int
    daily: Mapping[str, np.ndarray]
    customers: CustomerColumns
    points: Mapping[str, PointsLedger]
    credit: Mapping[str, CreditLine]
    tiers: tuple[str, ...] | None
    rule_ids: tuple[str, ...]
    rule_fires: Mapping[str, int]
    rule_cost: Mapping[str, float]
    transactions: Mapping[str, np.ndarray] | None = None
    # the day the programme launched (a warm-up under no programme before it, or an existing base from
    # `population.from_fit` at day 0), from which outcomes are measured; None: no launch, the policy ran
    # from day 0 on a day-0 cohort
    launch_day: int | None = None
    # each customer's revenue when the programme launched (NaN: not present then); None without a launch (the
    # starting customers are then the launch's customers, from nothing)
    launch_revenue: np.ndarray | None = None

    @property
    def measured_from(self) -> int:
        """The first day the outcomes cover: the launch day, or 0 without a launch."""
        return self.launch_day or 0


@dataclass(frozen=True)
class RawRun:
    """What an engine's `run()` returns: the plain `record`, which is all the metrics ever see, and the
    engine's live state at the end (`customers`, `runtime`), kept only for the engine's own tests."""

    record: RunRecord
    customers: Any  # lab.population.customers.Customers
    runtime: Any  # lab.policy.runtime.PolicyRuntime

    @property
    def daily(self) -> Mapping[str, np.ndarray]:
        return self.record.daily

    @property
    def transactions(self) -> Mapping[str, np.ndarray] | None:
        return self.record.transactions

    @property
    def member(self) -> np.ndarray:
        return self.record.customers.member


def record_run(scenario: Scenario, policy_name: str, days: int, daily: dict[str, np.ndarray], customers: Customers,
               runtime: PolicyRuntime, transactions: dict[str, np.ndarray] | None, rule_ids: tuple[str, ...],
               initial_customers: int, launch_day: int | None = None,
               launch_revenue: np.ndarray | None = None) -> RawRun:
    """The record of a finished run, from the engine's live objects (called once, at the end of `run()`)."""
    c, rt = customers, runtime
    n = c.n
    cols = CustomerColumns(
        segment=_frozen(c.seg[:n]), acquired_at=_frozen(c.acquired_at[:n]), dropped_at=_frozen(c.dropped_at[:n]),
        alive=_frozen(c.alive[:n]), referred=_frozen(c.referred[:n]), referrals=_frozen(c.referrals[:n]),
        member=_frozen(rt.member[:n].copy()), purchases=_frozen(c.purchases[:n]), revenue=_frozen(c.revenue[:n]),
        discounts=_frozen(c.discounts[:n]), clv=_frozen(c.clv[:n]), last_purchase=_frozen(c.last_purchase[:n]),
        tier=_frozen(rt.tier[:n]) if rt.policy.tiers is not None else None)
    points = {}
    for name, b in rt.points.items():
        held = b.lots.sum(axis=1)
        points[name] = PointsLedger(
            earned=_frozen(b.earned[:n]), redeemed=_frozen(b.redeemed[:n]), deducted=_frozen(b.deducted[:n]),
            expired=_frozen(b.expired[:n]), outstanding=_frozen(b.lots[:n].sum(axis=1)),
            total_earned=float(b.earned.sum()), total_redeemed=float(b.redeemed.sum()),
            total_deducted=float(b.deducted.sum()), total_expired=float(b.expired.sum()),
            total_outstanding=float(held.sum()), value=float(rt.policy.points[name].value))
    credit = {}
    for name, line in rt.credit.items():
        credit[name] = CreditLine(
            owed=_frozen(line.owed[:n]), charged=_frozen(line.charged[:n]), repaid=_frozen(line.repaid[:n]),
            interest=_frozen(line.interest[:n]), fees=_frozen(line.fees[:n]), written_off=_frozen(line.written_off[:n]),
            total_owed=float(line.owed.sum()), total_charged=float(line.charged.sum()),
            total_repaid=float(line.repaid.sum()), total_interest=float(line.interest.sum()),
            total_fees=float(line.fees.sum()), total_written_off=float(line.written_off.sum()))
    record = RunRecord(
        scenario=scenario.name, policy=policy_name, days=days, period_days=scenario.period_days,
        staff_count=scenario.store.staff.count, segments=tuple(scenario.population.segments),
        categories=tuple(scenario.store.categories), initial_customers=initial_customers,
        daily={k: _frozen(v) for k, v in daily.items()}, customers=cols, points=points, credit=credit,
        tiers=tuple(rt.tier_names) if rt.policy.tiers is not None else None, rule_ids=tuple(rule_ids),
        rule_fires=dict(rt.accounts.rule_fires), rule_cost=dict(rt.accounts.rule_cost),
        transactions={k: _frozen(v) for k, v in transactions.items()} if transactions is not None else None,
        launch_day=launch_day,
        launch_revenue=None if launch_revenue is None else _frozen(
            np.concatenate([launch_revenue, np.full(max(n - launch_revenue.size, 0), np.nan)])[:n]))
    return RawRun(record, customers, runtime)
