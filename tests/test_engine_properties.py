"""Invariants of the vectorised engine that must hold in any small world (hypothesis).

Each example is a whole (small, short) simulation, so example counts are kept low;
the worlds vary in size, horizon, seed, behaviour on/off and policy.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.engine.options import RunOptions
from lab.engine.record import RawRun
from lab.engine.simulate import Simulation
from lab.experiment.run import run_policy
from lab.policy.runtime import PolicyRuntime

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

# Points that expire and can be taken away, tiers, a capped bonus, a store card that grows.
PROGRAMME = """
name: programme
description: Points with quick expiry and deductions, tiers, a capped bonus and a store card.
participation: 0.7
points:
  points: {value: 0.01, expiry_days: 30, lot_days: 7}
tiers:
  metric: spend
  window_days: 60
  review_days: 14
  levels:
    basic: {}
    gold: {qualify: 80, earn_multiplier: 2, discount_percent: 10}
credit:
  card: {limit: 60, apr: 0.3, statement_days: 14, late_fee: 5, write_off_after_days: 30}
rules:
  - id: earn
    on: purchase
    do: [{award: {ledger: points, amount: "floor(purchase.amount)"}}]
  - id: redeem
    on: purchase
    when: "customer.points['points'] >= 50"
    do: [{redeem: {ledger: points, cost: 50, discount: 1, max_times: 2}}]
  - id: bonus
    on: purchase
    when: "purchase.amount > 30"
    cap: {per: month, times: 2}
    do: [{discount: {percent: "10"}}]
  - id: fine
    on: {service_contact: {kind: inquiry}}
    do: [{deduct: {ledger: points, amount: "20"}}]
  - id: raise
    on: purchase
    when: "customer.purchases >= 2"
    do: [{grant_credit: {line: card, raise_by: "5"}}]
"""

# A card with no interest, no fees and no statements within the horizon: what is owed only grows by charges.
CARD = """
name: card
description: A store card whose balance only moves by purchases.
participation: 0.8
credit:
  card: {limit: LIMIT, apr: 0, late_fee: 0, statement_days: 365}
"""

worlds = st.fixed_dictionaries({
    "customers": st.integers(50, 300),
    "days": st.integers(20, 120),
    "seed": st.integers(0, 2**31 - 1),
    "behaviour": st.booleans(),
    "policy": st.sampled_from(["none", "points", "programme"]),
})


def _run(small_scenario, policy_file, policy_from_yaml, world: dict) -> RawRun:
    sc = small_scenario(population__customers=world["customers"], days=world["days"],
                        behaviour__enabled=world["behaviour"])
    cp = policy_from_yaml(PROGRAMME, sc) if world["policy"] == "programme" else policy_file(world["policy"], sc)
    return Simulation(sc, cp, RunOptions(seed=world["seed"], transactions=True)).run()


@settings(max_examples=12, **SETTINGS)
@given(world=worlds)
def test_money_customers_and_ledgers_add_up(world, small_scenario, policy_file, policy_from_yaml) -> None:
    raw = _run(small_scenario, policy_file, policy_from_yaml, world)
    c, d, tx = raw.customers, raw.daily, raw.transactions
    assert tx is not None
    n = c.n
    # money: revenue is gross sales less discounts, per customer, per day and in total
    np.testing.assert_allclose(c.revenue[:n], c.gross[:n] - c.discounts[:n], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(d["revenue"], d["gross_sales"] - d["discounts"], rtol=1e-6, atol=1e-9)
    total = d["revenue"].sum()
    assert math.isclose(c.revenue[:n].sum(), total, rel_tol=1e-6)
    assert math.isclose(tx["amount"].sum(), d["gross_sales"].sum(), rel_tol=1e-6)
    assert math.isclose(tx["discount"].sum(), d["discounts"].sum(), rel_tol=1e-6, abs_tol=1e-9)
    assert np.all(tx["discount"] >= 0) and np.all(tx["discount"] <= tx["amount"] + 1e-9)
    assert len(tx["amount"]) == d["purchases"].sum() == c.purchases[:n].sum()
    # nobody buys before arriving or after dropping out (a BG/NBD dropout follows its purchase at the same time)
    who = tx["customer_id"]
    assert np.all(tx["time"] >= c.acquired_at[who])
    gone = ~c.alive[who]
    assert np.all(tx["time"][gone] <= c.dropped_at[who][gone])
    assert np.all(np.isnan(c.dropped_at[:n]) == c.alive[:n])
    # ledgers: every point earned was redeemed, deducted, expired or is still outstanding
    for name, book in raw.runtime.points.items():
        left = book.redeemed[:n] + book.deducted[:n] + book.expired[:n] + book.lots[:n].sum(axis=1)
        np.testing.assert_allclose(book.earned[:n], left, rtol=1e-9, atol=1e-6, err_msg=name)
    for name, line in raw.runtime.credit.items():
        assert np.all(line.owed[:n] >= -1e-9), name
        owed = line.charged[:n] + line.interest[:n] + line.fees[:n] - line.repaid[:n] - line.written_off[:n]
        np.testing.assert_allclose(line.owed[:n], owed, rtol=1e-9, atol=1e-6, err_msg=name)


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(x == y or (math.isnan(x) and math.isnan(y))
                                        for x, y in zip(a.values(), b.values()))


@settings(max_examples=6, **SETTINGS)
@given(world=worlds)
def test_same_scenario_and_seed_give_the_same_run(world, small_scenario, policy_file, policy_from_yaml) -> None:
    sc = small_scenario(population__customers=world["customers"], days=world["days"],
                        behaviour__enabled=world["behaviour"])
    cp = policy_from_yaml(PROGRAMME, sc) if world["policy"] == "programme" else policy_file(world["policy"], sc)
    one, two = (run_policy(sc, cp, world["seed"], address=(1, 2), transactions=True) for _ in range(2))
    assert _same(one.summary, two.summary)
    pd.testing.assert_frame_equal(one.timeseries, two.timeseries, check_exact=True)
    pd.testing.assert_frame_equal(one.customers, two.customers, check_exact=True)
    pd.testing.assert_frame_equal(one.transactions, two.transactions, check_exact=True)
    assert one.rule_fires == two.rule_fires and one.rule_cost == two.rule_cost


@settings(max_examples=8, **SETTINGS)
@given(limit=st.integers(1, 200), appetite=st.floats(0.05, 1.0), seed=st.integers(0, 2**31 - 1))
def test_credit_owed_never_above_the_limit(limit, appetite, seed, small_scenario, policy_from_yaml) -> None:
    """With no interest, fees or statements, what a customer owes is the running sum of what they put on
    credit, and the limit never changes: so the final balance bounds the balance at every purchase."""
    base = small_scenario()
    segments = {k: dataclasses.replace(s, credit_appetite=appetite) for k, s in base.population.segments.items()}
    sc = small_scenario(population__customers=150, days=90, population__segments=segments)
    cp = policy_from_yaml(CARD.replace("LIMIT", str(limit)), sc)
    raw = Simulation(sc, cp, RunOptions(seed=seed, transactions=True)).run()
    tx, n = raw.transactions, raw.customers.n
    assert tx is not None
    line = raw.runtime.credit["card"]
    charged = np.bincount(tx["customer_id"], weights=tx["credit"], minlength=n)
    np.testing.assert_allclose(line.owed[:n], charged, rtol=1e-9, atol=1e-9)
    assert np.all(line.owed[:n] <= line.limit[:n] + 1e-9)
    assert np.all(line.limit[:n][raw.member[:n]] == limit) and np.all(line.owed[:n][~raw.member[:n]] == 0)
    # at most the customer's appetite share of what they paid goes on the card
    assert np.all(tx["credit"] <= appetite * (tx["amount"] - tx["discount"]) + 1e-9)
    assert line.owed[:n].sum() > 0  # the card was used: the bound above was tested


# --------------------------------------------------------------------------- the rules engine, batch against one by one
class _Facts:
    """A test's customer facts for the rules engine: purchases so far, and a fixed favourite/least category."""

    def __init__(self, n: int, n_cats: int) -> None:
        self.purchases = np.zeros(n)
        self.n_cats = n_cats

    def get(self, name: str, idx: np.ndarray):
        if name == "customer.purchases":
            return self.purchases[idx]
        if name == "customer.favourite_category":
            return idx % self.n_cats
        if name == "customer.least_category":
            return (idx + 1) % self.n_cats
        raise KeyError(name)


visits = st.lists(
    st.tuples(st.integers(0, 12),  # days since the previous batch
              st.lists(st.tuples(st.integers(0, 19), st.floats(1.0, 120.0), st.integers(0, 2)),
                       min_size=1, max_size=20, unique_by=lambda v: v[0])),
    min_size=1, max_size=12)


@settings(max_examples=40, **SETTINGS)
@given(batches=visits, members=st.lists(st.booleans(), min_size=20, max_size=20))
def test_a_batch_of_one_is_the_same_customer_inside_a_batch(batches, members, small_scenario, policy_from_yaml) -> None:
    """The rules engine answers a batch of purchases exactly as it answers each customer alone, in effects and in
    state."""
    sc = small_scenario()
    cp = policy_from_yaml(PROGRAMME, sc)
    n, cats = 20, len(sc.store.categories)
    together, alone = PolicyRuntime(cp, n), PolicyRuntime(cp, n)
    enrolled = np.flatnonzero(members)
    together.enrol(enrolled)
    alone.enrol(enrolled)
    facts = _Facts(n, cats)
    day = 0
    for gap, visits_today in batches:
        if gap:
            for rt in (together, alone):
                for book in rt.points.values():
                    book.advance(float(day + gap))
                if day // 14 != (day + gap) // 14:
                    rt.tier_review(float(day + gap))
        day += gap
        idx = np.array([v[0] for v in visits_today])
        amount = np.array([v[1] for v in visits_today])
        cat = np.array([v[2] for v in visits_today])
        times = day + np.linspace(0.1, 0.9, len(idx))
        share = np.full(len(idx), 0.5)
        number = facts.purchases[idx] + 1
        batch = together.purchase(idx, times, amount, cat, number, share, float(day), facts)
        for j, i in enumerate(idx):
            one = alone.purchase(idx[j:j + 1], times[j:j + 1], amount[j:j + 1], cat[j:j + 1], number[j:j + 1],
                                 share[j:j + 1], float(day), facts)
            for field in ("discount", "points_discount", "delight", "credit", "rules"):
                assert getattr(one, field)[0] == getattr(batch, field)[j], (field, int(i), day)
        facts.purchases[idx] += 1
    for name in together.points:
        a, b = together.points[name], alone.points[name]
        for field in ("lots", "earned", "redeemed", "deducted", "expired"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    for name in together.credit:
        np.testing.assert_array_equal(together.credit[name].owed, alone.credit[name].owed)
        np.testing.assert_array_equal(together.credit[name].limit, alone.credit[name].limit)
    np.testing.assert_array_equal(together.tier, alone.tier)
    a, b = together.accounts, alone.accounts
    assert a.rule_fires == b.rule_fires and a.offers_sent == b.offers_sent
    for field in ("discounts", "points_redeemed_value", "free_item_retail", "vouchers_issued"):
        assert math.isclose(getattr(a, field), getattr(b, field), rel_tol=1e-9, abs_tol=1e-9), field


def test_with_behaviour_off_points_change_what_customers_pay_not_what_they_do(small_scenario, policy_file,
                                                                               classroom) -> None:
    """Common random numbers: with behaviour off, a points programme gives the same purchases at the same
    times and amounts as no programme, and the same dropouts; only discounts differ."""
    sc = small_scenario(days=120, behaviour__enabled=False)
    cp = policy_file("points", sc)
    base = Simulation(sc, classroom.policies["none"], RunOptions(seed=5, transactions=True)).run()
    prog = Simulation(sc, cp, RunOptions(seed=5, transactions=True)).run()
    n = base.customers.n
    assert prog.customers.n == n
    np.testing.assert_array_equal(base.transactions["time"], prog.transactions["time"])
    np.testing.assert_array_equal(base.transactions["amount"], prog.transactions["amount"])
    np.testing.assert_array_equal(base.customers.alive[:n], prog.customers.alive[:n])
    assert prog.transactions["discount"].sum() > 0
