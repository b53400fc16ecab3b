"""The outcome formulas and the run's tables on hand-built run records, with values computed by hand;
and customer lifetime value, which the engine computes, checked on a small run with behaviour off."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from lab.engine.options import RunOptions
from lab.engine.record import CreditLine, CustomerColumns, PointsLedger, RunRecord
from lab.engine.simulate import Simulation
from lab.metrics.outcomes import REGISTRY, outcomes
from lab.metrics.result import summarise
from lab.metrics.tables import customer_table, timeseries, timeseries_each, timeseries_of, transaction_table
from tests.conftest import day0

# every daily series an outcome reads, with distinct values so a formula reading the wrong one shows
DAILY = {
    "day": [0.0, 1.0, 2.0],
    "revenue": [100.0, 200.0, 400.0],
    "gross_profit": [10.0, 20.0, 40.0],
    "net_profit": [-1.0, 5.0, 7.0],
    "discounts": [1.0, 2.0, 4.0],
    "reward_goods_cost": [8.0, 16.0, 32.0],
    "offers_cost": [64.0, 128.0, 256.0],
    "programme_running_cost": [512.0, 1024.0, 2048.0],
    "points_liability": [3.0, 9.0, 27.0],
    "credit_outstanding": [50.0, 70.0, 60.0],
    "bad_debt": [0.5, 0.0, 0.25],
    "acquired": [3.0, 0.0, 2.0],
    "lost": [1.0, 1.0, 0.0],
    "customer_satisfaction": [0.5, 0.7, 0.6],
    "staff_quits": [1.0, 0.0, 2.0],
    "service_quality": [0.6, 0.9, 0.75],
    "purchases": [7.0, 11.0, 13.0],
}


def customers(**cols) -> CustomerColumns:
    """Customer columns for len(acquired_at) customers; unspecified columns are zeros / alive / not members."""
    n = len(cols.get("acquired_at", cols.get("revenue", [])))
    base = dict(segment=np.zeros(n, dtype=np.int64), acquired_at=np.zeros(n), dropped_at=np.full(n, np.nan),
                alive=np.ones(n, dtype=bool), referred=np.zeros(n, dtype=bool), referrals=np.zeros(n, dtype=np.int64),
                member=np.zeros(n, dtype=bool), purchases=np.ones(n, dtype=np.int64), revenue=np.zeros(n),
                discounts=np.zeros(n), clv=np.zeros(n), last_purchase=np.zeros(n))
    base.update({k: np.asarray(v) for k, v in cols.items()})
    return CustomerColumns(**base)


def record(*, days: int = 3, daily: dict | None = None, custs: CustomerColumns | None = None, points=None,
           credit=None, staff: int = 4, tiers=None, transactions=None, period_days: int = 1,
           rule_ids: tuple[str, ...] = ()) -> RunRecord:
    d = {k: np.asarray(v, dtype=float) for k, v in (DAILY if daily is None else daily).items()}
    return RunRecord(scenario="hand", policy="p", days=days, period_days=period_days, staff_count=staff,
                     segments=("a", "b"), categories=("x", "y"), initial_customers=0, daily=d,
                     customers=custs if custs is not None else customers(revenue=[1.0, 2.0]),
                     points=points or {}, credit=credit or {}, tiers=tiers, rule_ids=rule_ids,
                     rule_fires={r: 0 for r in rule_ids}, rule_cost={r: 0.0 for r in rule_ids},
                     transactions=transactions)


def ledger(expired: float, redeemed: float, outstanding=(0.0,)) -> PointsLedger:
    k = len(outstanding)
    e = np.r_[expired, np.zeros(k - 1)]
    r = np.r_[redeemed, np.zeros(k - 1)]
    o = np.asarray(outstanding, dtype=float)
    return PointsLedger.of(earned=e + r + o, redeemed=r, deducted=np.zeros(k), expired=e, outstanding=o)


# --------------------------------------------------------------------------- #
# formulas on the daily books
# --------------------------------------------------------------------------- #
def test_flows_are_summed_over_the_run() -> None:
    out = outcomes(record())
    assert out["revenue"] == 700.0
    assert out["gross_profit"] == 70.0
    assert out["net_profit"] == 11.0
    assert out["bad_debt"] == 0.75
    assert out["acquired"] == 5.0
    assert out["lost"] == 2.0
    assert out["purchases"] == 31.0


def test_programme_cost_adds_discounts_goods_offers_and_running_costs() -> None:
    assert outcomes(record())["programme_cost"] == 7.0 + 56.0 + 448.0 + 3584.0


def test_stocks_are_read_on_the_last_day() -> None:
    out = outcomes(record())
    assert out["points_liability"] == 27.0
    assert out["credit_outstanding"] == 60.0


def test_customer_satisfaction_is_the_last_measured_value() -> None:
    assert outcomes(record())["customer_satisfaction"] == 0.6
    d = dict(DAILY, customer_satisfaction=[0.5, 0.7, np.nan])
    assert outcomes(record(daily=d))["customer_satisfaction"] == 0.7
    d = dict(DAILY, customer_satisfaction=[np.nan, np.nan, np.nan])
    assert math.isnan(outcomes(record(daily=d))["customer_satisfaction"])


def test_service_quality_is_the_mean_over_days() -> None:
    assert outcomes(record())["service_quality"] == pytest.approx(0.75)


def test_staff_turnover_is_leavers_per_staff_member_per_year() -> None:
    # 3 leavers, 4 staff, over 730 days (two years): 3 / 4 / 2
    assert outcomes(record(days=730))["staff_turnover"] == pytest.approx(0.375)
    assert outcomes(record(days=365, staff=3))["staff_turnover"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- #
# formulas on the ledgers
# --------------------------------------------------------------------------- #
def test_breakage_is_the_expired_share_of_points_that_left_the_ledgers() -> None:
    # two ledgers: 3 + 1 expired, 4 + 2 redeemed -> 4 / 10; points still outstanding do not count
    r = record(points={"a": ledger(3.0, 4.0, outstanding=(0.0, 50.0)), "b": ledger(1.0, 2.0, outstanding=(9.0,))})
    assert outcomes(r)["breakage_rate"] == pytest.approx(0.4)
    assert outcomes(record(points={"a": ledger(0.0, 5.0)}))["breakage_rate"] == 0.0
    assert outcomes(record(points={"a": ledger(5.0, 0.0)}))["breakage_rate"] == 1.0
    assert outcomes(record(points={"a": ledger(0.25, 0.5)}))["breakage_rate"] == pytest.approx(1 / 3)  # under a point


def test_breakage_is_undefined_when_no_point_left_a_ledger() -> None:
    assert math.isnan(outcomes(record())["breakage_rate"])
    assert math.isnan(outcomes(record(points={"a": ledger(0.0, 0.0, outstanding=(7.0,))}))["breakage_rate"])


def test_breakage_reads_the_ledger_totals() -> None:
    """The totals the engine stored are the ledger's numbers (they may be summed in another order than the columns)."""
    book = PointsLedger(earned=np.zeros(1), redeemed=np.zeros(1), deducted=np.zeros(1), expired=np.zeros(1),
                        outstanding=np.zeros(1), total_earned=4.0, total_redeemed=3.0, total_deducted=0.0,
                        total_expired=1.0, total_outstanding=0.0)
    assert outcomes(record(points={"a": book}))["breakage_rate"] == 0.25


# --------------------------------------------------------------------------- #
# formulas on the customers
# --------------------------------------------------------------------------- #
def test_active_customers_counts_the_alive() -> None:
    c = customers(acquired_at=[0, 0, 0, 5], alive=[True, False, True, True], dropped_at=[np.nan, 3, np.nan, np.nan])
    assert outcomes(record(custs=c))["active_customers"] == 3.0


def test_retention_follows_the_cohort_watched_for_a_year() -> None:
    """Horizon 730: the cohort is everyone acquired by day 365; survival means alive 365 days after acquisition."""
    c = customers(
        acquired_at=[0.0, 10.0, 100.0, 100.0, 365.0, 366.0, 200.0],
        dropped_at=[np.nan, 320.0, 466.0, 465.0, 729.5, 400.0, 560.0],
        alive=[True, False, False, False, False, False, False])
    # cohort {0, 1, 2, 3, 4, 6} (5 came too late); survivors: 0 (alive), 2 (466 > 465);
    # not 1 (320 < 375), 3 (dropped exactly at 365 days), 4 (729.5 < 730), 6 (560 < 565)
    assert outcomes(record(days=730, custs=c))["retention_12m"] == pytest.approx(2 / 6)


def test_retention_is_undefined_without_a_year_of_observation() -> None:
    c = customers(acquired_at=[0.0, 1.0])
    assert math.isnan(outcomes(record(days=364, custs=c))["retention_12m"])
    assert outcomes(record(days=365, custs=c))["retention_12m"] == 1.0  # customer 0 is watched exactly a year


def test_repeat_purchase_rate_counts_customers_who_bought_twice() -> None:
    c = customers(acquired_at=[0, 0, 0, 0], purchases=[1, 2, 2, 5])
    assert outcomes(record(custs=c))["repeat_purchase_rate"] == 0.75


def test_mean_clv_is_the_mean_over_customers() -> None:
    c = customers(acquired_at=[0, 0, 0], clv=[1.0, 2.0, 6.0])
    assert outcomes(record(custs=c))["mean_clv"] == 3.0


def test_top20_share_takes_the_largest_fifth_of_revenue() -> None:
    c = customers(revenue=np.arange(1.0, 11.0))  # top 2 of 10: (9 + 10) / 55
    assert outcomes(record(custs=c))["top20_revenue_share"] == pytest.approx(19 / 55)


def test_customer_outcomes_are_undefined_without_customers() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # undefined, not the mean of nothing
        out = outcomes(record(custs=customers(acquired_at=[])))
    for name in ("repeat_purchase_rate", "mean_clv", "top20_revenue_share", "retention_12m"):
        assert math.isnan(out[name]), name
    assert out["active_customers"] == 0.0


def test_outcomes_come_in_registry_order() -> None:
    out = outcomes(record())
    assert tuple(out) == REGISTRY.names
    assert all(isinstance(v, float) for v in out.values())


# --------------------------------------------------------------------------- #
# the record refuses inconsistent columns
# --------------------------------------------------------------------------- #
def test_record_columns_must_have_one_row_per_customer() -> None:
    with pytest.raises(ValueError, match="'revenue' has 1 rows, expected 2"):
        customers(acquired_at=[0.0, 1.0], revenue=[3.0])
    with pytest.raises(ValueError, match="'expired' has 2 rows, expected 1"):
        PointsLedger.of(earned=[1.0], redeemed=[0.0], deducted=[0.0], expired=[0.0, 1.0], outstanding=[1.0])
    with pytest.raises(ValueError, match="'fees' has 0 rows, expected 1"):
        CreditLine.of(owed=[1.0], charged=[1.0], repaid=[0.0], interest=[0.0], fees=[], written_off=[0.0])


def test_ledger_totals_are_the_sums_of_the_columns() -> None:
    book = PointsLedger.of(earned=[5.0, 4.0], redeemed=[1.0, 2.0], deducted=[0.0, 1.0], expired=[3.0, 0.0],
                           outstanding=[1.0, 1.0])
    assert (book.total_earned, book.total_redeemed, book.total_deducted, book.total_expired,
            book.total_outstanding) == (9.0, 3.0, 1.0, 3.0, 2.0)
    line = CreditLine.of(owed=[10.0, 0.0], charged=[12.0, 5.0], repaid=[3.0, 5.0], interest=[0.5, 0.0],
                         fees=[0.5, 0.0], written_off=[0.0, 0.0])
    assert (line.total_owed, line.total_charged, line.total_repaid, line.total_interest, line.total_fees,
            line.total_written_off) == (10.0, 17.0, 8.0, 0.5, 0.5, 0.0)


# --------------------------------------------------------------------------- #
# the run's tables
# --------------------------------------------------------------------------- #
def test_timeseries_sums_flows_keeps_stocks_and_averages_rates() -> None:
    daily = {
        "day": [0, 1, 2, 3, 4],
        "revenue": [10.0, 20.0, 30.0, 40.0, 0.0],
        "gross_profit": [1.0, 2.0, 3.0, 4.0, 0.0],
        "acquired": [1.0, 2.0, 0.0, 5.0, 1.0],
        "lost": [0.0, 1.0, 3.0, 0.0, 0.0],
        "alive": [10.0, 11.0, 8.0, 13.0, 14.0],
        "points_liability": [1.0, 2.0, 3.0, 4.0, 5.0],
        "service_quality": [0.5, 0.7, 0.2, 0.4, 0.9],
    }
    ts = timeseries(record(days=5, daily=daily, period_days=2))
    assert list(ts.columns) == ["period", "day_start", "day_end", "revenue", "gross_profit", "acquired", "lost",
                                "alive", "points_liability", "service_quality", "margin", "net_customers"]
    assert ts["period"].dtype == ts["day_start"].dtype == ts["day_end"].dtype == np.int64
    assert list(ts["period"]) == [0, 1, 2]
    assert list(ts["day_start"]) == [0, 2, 4]
    assert list(ts["day_end"]) == [2, 4, 5]  # the last period is cut at the horizon
    assert list(ts["revenue"]) == [30.0, 70.0, 0.0]
    assert list(ts["alive"]) == [11.0, 13.0, 14.0]
    assert list(ts["points_liability"]) == [2.0, 4.0, 5.0]
    np.testing.assert_allclose(ts["service_quality"], [0.6, 0.3, 0.9])
    np.testing.assert_allclose(ts["margin"][:2], [0.1, 0.1])
    assert math.isnan(ts["margin"].iloc[2])  # no revenue, no margin
    assert list(ts["net_customers"]) == [2.0, 2.0, 1.0]


def test_timeseries_of_some_columns_gives_their_values_in_the_whole_table() -> None:
    """A batch asks for a few columns: each has the bits it has in the whole table (sums whose order matters)."""
    rng = np.random.default_rng(11)
    daily = {"day": list(range(95)), "revenue": list(rng.standard_normal(95) * 10.0 ** rng.uniform(-2, 7, 95)),
             "gross_profit": list(rng.uniform(0, 5, 95)), "acquired": [1.0] * 95, "lost": [0.0] * 95,
             "alive": list(rng.uniform(0, 99, 95)), "service_quality": list(rng.uniform(0, 1, 95))}
    whole = timeseries(record(days=95, daily=daily, period_days=30))
    some = timeseries(record(days=95, daily=daily, period_days=30), ["service_quality", "revenue", "alive"])
    assert list(some.columns) == ["period", "day_start", "day_end", "service_quality", "revenue", "alive"]
    for col in some.columns:
        assert some[col].to_numpy().tobytes() == whole[col].to_numpy().tobytes(), col
    with pytest.raises(ValueError, match="whole table"):
        timeseries(record(days=95, daily=daily, period_days=30), ["margin"])


def test_timeseries_of_many_runs_gives_each_run_its_own_table() -> None:
    """A batch groups the days of many runs at once: each run's rows have the bits of its own whole table,
    whatever its period, its horizon and the runs beside it (NaN days, a rate's mean, skipped as alone)."""
    rng = np.random.default_rng(5)
    records = []
    for days, period in ((95, 30), (40, 7), (61, 30), (1, 30)):
        daily = {"day": list(range(days)), "gross_profit": list(rng.uniform(0, 5, days)),
                 "revenue": list(rng.standard_normal(days) * 10.0 ** rng.uniform(-2, 7, days)),
                 "acquired": [1.0] * days, "lost": [0.0] * days, "alive": list(rng.uniform(0, 99, days)),
                 "customer_satisfaction": [np.nan if d % 3 else float(rng.uniform()) for d in range(days)]}
        records.append(record(days=days, daily=daily, period_days=period))
    columns = ["customer_satisfaction", "revenue", "alive"]
    many = timeseries_each(records, columns)
    assert list(many.columns) == ["run", "period", "day_start", "day_end", *columns]
    assert list(many["run"].drop_duplicates()) == [0, 1, 2, 3]
    for i, rec in enumerate(records):
        mine = many[many["run"] == i]
        whole = timeseries(rec)
        assert len(mine) == len(whole)
        for col in ["period", "day_start", "day_end", *columns]:
            assert mine[col].to_numpy().tobytes() == whole[col].to_numpy().tobytes(), (i, col)
    assert timeseries_each([], columns).empty


def test_the_whole_tables_of_many_runs_grouped_at_once_are_each_runs_own() -> None:
    """A stack's runs are summarised together (`timeseries_of`): each run's whole table -- margin, net customers
    and its launch's warm-up flag included -- is frame for frame, bit for bit, the one it has alone."""
    rng = np.random.default_rng(8)
    records = []
    for days, period, launch in ((95, 30, None), (40, 7, 14), (61, 30, 0), (1, 30, None)):
        daily = {"day": list(range(days)), "gross_profit": list(rng.uniform(0, 5, days)),
                 "revenue": list(rng.uniform(0, 1, days) * (rng.uniform(0, 1, days) > 0.3)),
                 "acquired": list(rng.integers(0, 4, days).astype(float)),
                 "lost": list(rng.integers(0, 3, days).astype(float)), "alive": list(rng.uniform(0, 99, days)),
                 "customer_satisfaction": list(rng.uniform(0, 1, days))}
        records.append(dataclasses.replace(record(days=days, daily=daily, period_days=period), launch_day=launch))
    together = timeseries_of(records)
    assert len(together) == len(records)
    for rec, mine in zip(records, together, strict=True):
        alone = timeseries(rec)
        pd.testing.assert_frame_equal(mine, alone, check_exact=True)
        for col in alone.columns:
            assert mine[col].to_numpy().tobytes() == alone[col].to_numpy().tobytes(), col
    assert [list(t["period"]) for t in together] == [[0, 1, 2, 3], [0, 1, 2, 3, 4, 5], [0, 1, 2], [0]]
    assert "after_launch" in together[1] and "after_launch" not in together[0]
    # a launch on day 14 of 7-day periods: the period starting that day is the first one measured
    assert list(together[1]["after_launch"]) == [False, False, True, True, True, True]
    assert list(together[2]["after_launch"]) == [True, True, True]  # launched on day 0: no warm-up
    # a launch inside a period ends that period short: no period holds days on both sides of it
    mid = dataclasses.replace(records[1], launch_day=10)
    ts = timeseries(mid)
    assert list(ts["day_start"]) == [0, 7, 10, 17, 24, 31, 38]
    assert list(ts["day_end"]) == [7, 10, 17, 24, 31, 38, 40]
    assert list(ts["period"]) == list(range(7))
    assert list(ts["after_launch"]) == [False, False, True, True, True, True, True]
    assert ts["revenue"].iloc[1] == float(np.sum(mid.daily["revenue"][7:10]))
    assert timeseries_of([records[0], mid])[1].equals(ts)
    assert timeseries_of([]) == []
    other = dataclasses.replace(records[0], daily={**records[0].daily, "alive": np.arange(95)})  # integers now
    with pytest.raises(ValueError, match="daily columns differ"):
        timeseries_of([records[0], other])


def test_customer_table_has_a_row_per_customer_and_a_column_per_ledger() -> None:
    c = customers(acquired_at=[0.0, 4.5], segment=[1, 0], alive=[True, False], dropped_at=[np.nan, 9.0],
                  member=[True, False], purchases=[3, 1], revenue=[30.0, 5.0], discounts=[2.0, 0.0],
                  clv=[11.0, 1.5], last_purchase=[8.0, 4.5], referred=[False, True], referrals=[1, 0],
                  tier=np.array([1, 0], dtype=np.int16))
    pts = PointsLedger.of(earned=[10.0, 2.0], redeemed=[5.0, 0.0], deducted=[0.0, 0.0], expired=[1.0, 0.0],
                          outstanding=[4.0, 2.0])
    card = CreditLine.of(owed=[7.0, 0.0], charged=[9.0, 3.0], repaid=[2.0, 0.0], interest=[0.0, 0.0],
                         fees=[0.0, 0.0], written_off=[0.0, 3.0])
    t = customer_table(record(custs=c, points={"stars": pts}, credit={"card": card}, tiers=("basic", "gold")))
    assert list(t["customer_id"]) == [0, 1]
    assert list(t["segment"]) == ["b", "a"]
    assert list(t["tier"]) == ["gold", "basic"]
    assert list(t["churned"]) == [False, True]
    assert list(t["member"]) == [True, False]
    assert list(t["referred"]) == [False, True]
    assert list(t["referrals"]) == [1, 0]
    for col, values in (("acquired_at", [0.0, 4.5]), ("purchases", [3, 1]), ("revenue", [30.0, 5.0]),
                        ("discounts", [2.0, 0.0]), ("clv", [11.0, 1.5]), ("last_purchase", [8.0, 4.5]),
                        ("points_stars", [4.0, 2.0]), ("credit_owed_card", [7.0, 0.0]),
                        ("credit_written_off_card", [0.0, 3.0])):
        assert list(t[col]) == values, col
    assert math.isnan(t["dropped_at"][0]) and t["dropped_at"][1] == 9.0
    assert "tier" not in customer_table(record(custs=c))


def test_margin_of_a_period_with_little_revenue() -> None:
    daily = {"day": [0, 1], "revenue": [0.5, 0.0], "gross_profit": [0.2, 0.0], "acquired": [0.0, 0.0],
             "lost": [0.0, 0.0]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero on the way
        ts = timeseries(record(days=2, daily=daily))
    assert ts["margin"].iloc[0] == pytest.approx(0.4)
    assert math.isnan(ts["margin"].iloc[1])


def test_transaction_table_names_the_rules_and_sorts_by_time_then_customer() -> None:
    tx = {"customer_id": np.array([1, 0, 0], dtype=np.int32), "time": np.array([2.5, 2.5, 1.0]),
          "amount": np.array([10.0, 20.0, 30.0]), "category": np.array([1, 0, 1], dtype=np.int16),
          "discount": np.array([0.0, 1.0, 2.0]), "credit": np.array([0.0, 0.0, 5.0]),
          "rules": np.array([0b101, 0, 0b010], dtype=np.uint64)}
    t = transaction_table(record(transactions=tx, rule_ids=("earn", "redeem", "bonus")))
    assert list(t["customer_id"]) == [0, 0, 1]
    assert list(t["time"]) == [1.0, 2.5, 2.5]
    assert list(t["amount"]) == [30.0, 20.0, 10.0]
    assert list(t["category"]) == ["y", "x", "y"]
    assert list(t["discount"]) == [2.0, 1.0, 0.0]
    assert list(t["credit"]) == [5.0, 0.0, 0.0]
    assert list(t["rules"]) == ["redeem", "", "earn;bonus"]
    assert list(t.columns) == ["customer_id", "time", "amount", "category", "discount", "credit", "rules"]
    assert t["customer_id"].dtype == np.int64
    assert list(t.index) == [0, 1, 2]
    assert transaction_table(record()) is None


def test_transaction_table_reads_all_64_rule_bits() -> None:
    ids = tuple(f"r{i}" for i in range(64))
    one = lambda v, dt=np.float64: np.array([v], dtype=dt)  # noqa: E731
    tx = {"customer_id": one(0, np.int64), "time": one(1.0), "amount": one(5.0), "category": one(0, np.int16),
          "discount": one(0.0), "credit": one(0.0), "rules": one((1 << 63) | 1, np.uint64)}
    assert list(transaction_table(record(transactions=tx, rule_ids=ids))["rules"]) == ["r0;r63"]


def test_transaction_table_of_a_run_without_purchases() -> None:
    empty = {k: np.zeros(0, dtype=d) for k, d in (("customer_id", np.int64), ("time", float), ("amount", float),
                                                  ("category", np.int16), ("discount", float), ("credit", float),
                                                  ("rules", np.uint64))}
    t = transaction_table(record(transactions=empty))
    assert len(t) == 0 and t["rules"].dtype == object


def test_summarise_carries_the_record_through() -> None:
    tx = {"customer_id": np.array([1]), "time": np.array([0.5]), "amount": np.array([3.0]),
          "category": np.array([0], dtype=np.int16), "discount": np.array([0.0]), "credit": np.array([0.0]),
          "rules": np.array([1], dtype=np.uint64)}
    rec = record(rule_ids=("earn",), transactions=tx)
    res = summarise(rec, 42, (3,))
    assert (res.scenario, res.policy, res.seed, res.address) == ("hand", "p", 42, (3,))
    assert res.summary == outcomes(rec)
    assert res.rule_fires == {"earn": 0} and res.rule_cost == {"earn": 0.0}
    pd.testing.assert_frame_equal(res.timeseries, timeseries(rec))
    pd.testing.assert_frame_equal(res.customers, customer_table(rec))
    pd.testing.assert_frame_equal(res.transactions, transaction_table(rec))
    assert summarise(record(), 1, ()).transactions is None


# --------------------------------------------------------------------------- #
# lifetime value, computed by the engine
# --------------------------------------------------------------------------- #
def test_lifetime_value_is_the_margin_discounted_to_acquisition(small_scenario, classroom) -> None:
    """With behaviour off, no programme and a flat experience curve (unit costs stay at list), a purchase of
    `amount` in category k earns margin `amount × margin_k`; lifetime value discounts each to the customer's
    acquisition at the scenario's annual rate: clv_i = Σ amount × margin_k × (1 + r)^(-(t - acquired_at_i)/365)."""
    sc = small_scenario(population__customers=150, days=400, behaviour__enabled=False, store__learning_rate=1.0,
                        discount_rate=0.25)
    rec = Simulation(sc, classroom.policies["none"], RunOptions(seed=3, transactions=True)).run().record
    tx, c = rec.transactions, rec.customers
    assert tx is not None
    margins = np.array([cat.margin for cat in sc.store.categories.values()])
    who = tx["customer_id"]
    age = tx["time"] - c.acquired_at[who]
    expected = np.bincount(who, weights=tx["amount"] * margins[tx["category"]] * 1.25 ** (-age / 365.0), minlength=c.n)
    undiscounted = np.bincount(who, weights=tx["amount"] * margins[tx["category"]], minlength=c.n)
    assert np.all(age >= 0) and age.max() > 300  # purchases late enough for discounting to matter
    np.testing.assert_allclose(c.clv, expected, rtol=1e-9, atol=1e-9)
    assert c.clv.sum() < 0.95 * undiscounted.sum()
    assert pd.Series(c.clv).mean() == pytest.approx(outcomes(rec)["mean_clv"])


# --------------------------------------------------------------------------- #
# points stranded with customers who have left (issue 13, item 3)
# --------------------------------------------------------------------------- #
def _valued(outstanding, value: float, expired: float = 0.0, redeemed: float = 0.0) -> PointsLedger:
    o = np.asarray(outstanding, dtype=float)
    k = len(o)
    e, r = np.r_[expired, np.zeros(k - 1)], np.r_[redeemed, np.zeros(k - 1)]
    return PointsLedger.of(earned=e + r + o, redeemed=r, deducted=np.zeros(k), expired=e, outstanding=o, value=value)


def test_the_liability_held_by_lapsed_customers_is_their_outstanding_points_at_each_ledgers_value() -> None:
    # customers 0 and 2 have dropped out; ledger a is worth $0.01 a point, b $0.5
    custs = customers(revenue=[1.0, 1.0, 1.0], alive=[False, True, False], dropped_at=[5.0, np.nan, 9.0])
    r = record(custs=custs, points={"a": _valued([100.0, 300.0, 40.0], 0.01), "b": _valued([2.0, 8.0, 0.0], 0.5)})
    assert outcomes(r)["lapsed_points_liability"] == pytest.approx((100 + 40) * 0.01 + 2 * 0.5)
    nobody_left = record(custs=customers(revenue=[1.0, 1.0]), points={"a": _valued([5.0, 6.0], 1.0)})
    assert outcomes(nobody_left)["lapsed_points_liability"] == 0.0


def test_breakage_counting_lapsed_customers_points_is_defined_when_nothing_expired() -> None:
    # the cashback-style case: nothing expires, 60 points redeemed, 30 held by a customer who left, 10 by one alive
    custs = customers(revenue=[1.0, 1.0], alive=[False, True], dropped_at=[5.0, np.nan])
    r = record(custs=custs, points={"a": _valued([30.0, 10.0], 0.01, expired=0.0, redeemed=60.0)})
    out = outcomes(r)
    assert out["breakage_rate"] == 0.0  # the old measure sees no breakage at all
    assert out["stranded_breakage_rate"] == pytest.approx(30 / 90)
    # no point ever left a ledger: breakage is undefined, the stranded breakage is 1 (all that is lost is lapsed)
    r = record(custs=custs, points={"a": _valued([30.0, 10.0], 0.01)})
    assert math.isnan(outcomes(r)["breakage_rate"]) and outcomes(r)["stranded_breakage_rate"] == 1.0
    # expiry counts as before: 20 expired, 60 redeemed, 30 lapsed -> 50 / 110
    r = record(custs=custs, points={"a": _valued([30.0, 10.0], 0.01, expired=20.0, redeemed=60.0)})
    assert outcomes(r)["stranded_breakage_rate"] == pytest.approx(50 / 110)
    assert math.isnan(outcomes(record(custs=custs))["stranded_breakage_rate"])


def test_a_run_records_each_ledgers_value_and_the_lapsed_liability_is_part_of_the_liability(classroom) -> None:
    points = classroom.policies["points"]
    rec = Simulation(day0(classroom.scenario), points, RunOptions(customers=300, days=200, seed=3)).run().record
    assert rec.points and all(b.value == points.policy.points[n].value for n, b in rec.points.items())
    out = outcomes(rec)
    assert (~rec.customers.alive).any()
    assert 0.0 < out["lapsed_points_liability"] <= out["points_liability"] + 1e-9
