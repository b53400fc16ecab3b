"""The programme over a stack's rows at once (PolicyRuntime.share_rows) gives every world its run alone, bit for bit.

tests/test_stack.py draws scenarios and shipped policies at random; these cases aim at what the stacked
runtime keeps per world while it evaluates the rules once over every world's buyers: ledger totals and the
whole-points flag (fractional points, points that mature late), caps and their periods (times, points,
dollars), groups ('best' and 'first'), rules' costs and fire counts, free items, trials (counted per world)
and discounts split back into each world's records, credit lines, rolling windows, blocks that move as
worlds grow, a launch after a warm-up, and the arrivals' rules on enrolment and referral (their welcomes
in order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.engine.options import RunOptions
from lab.engine.simulate import Simulation
from lab.engine.stack import StackedSimulation
from lab.policy.loader import load_policy
from lab.scenario.loader import world_of
from tests.test_stack import alone_and_stacked

ROOT = Path(__file__).resolve().parents[1]

BUSY = """
name: busy
participation: 0.7
points:
  pts: {value: 0.01, lot_days: 30, expiry_days: 120, pending_days: %(pending)d}
credit:
  card: {limit: 150, apr: 0.2, statement_days: 30}
rules:
  - id: earn
    on: purchase
    do:
      - award: {ledger: pts, amount: "purchase.amount * %(rate)s"}
    cap: {per: month, points: 400}
  - id: cash_in
    on: purchase
    when: "customer.points['pts'] >= 100"
    do:
      - redeem: {ledger: pts, cost: 100, discount: 2, max_times: 3}
  - id: gift
    group: thanks
    on: purchase
    when: "purchase.amount >= 40 and purchase.category == customer.favourite_category"
    do:
      - free_item: {category: favourite}
    cap: {per: month, times: 1}
  - id: off
    group: thanks
    on: purchase
    when: "purchase.amount >= 30"
    do:
      - discount: {percent: 10, fixed: 1}
    cap: {per: week, dollars: 12}
  - id: first_a
    group: once
    on: purchase
    when: "customer.spend_30d > 50"
    do:
      - deduct: {ledger: pts, amount: 3}
  - id: first_b
    group: once
    on: purchase
    when: "customer.purchases >= 2"
    do:
      - trial: {category: new}
    cap: {per: year, times: 1}
  - id: sampler
    on: purchase
    when: "purchase.amount >= 45"
    do:
      - trial: {category: shoes}
stacking:
  thanks: best
  once: first
"""

TIGHT = """
name: tight
points:
  pts: {value: 0.01, lot_days: 30, expiry_days: 90}
tiers:
  metric: spend
  window_days: 90
  review_days: 15
  downgrade: one_level
  levels:
    member: {}
    silver: {qualify: 60, earn_multiplier: 1.5, discount_percent: 3}
    gold: {qualify: 150, earn_multiplier: 2, discount_percent: 6}
rules:
  - id: earn
    on: purchase
    do:
      - award: {ledger: pts, amount: "floor(purchase.amount)"}
  - id: cash_in
    on: purchase
    when: "customer.points['pts'] >= 80"
    do:
      - redeem: {ledger: pts, cost: 80, discount: 2}
  - id: next_time
    on: purchase
    when: "purchase.amount >= 35"
    do:
      - voucher: {value: 3, valid_days: 10}
    budget: 150
  - id: big_basket
    on: purchase
    when: "purchase.amount >= 25"
    do:
      - discount: {percent: 5}
budget:
  amount: 120
  per: month
"""

WELCOME = """
name: welcome
points:
  pts: {value: 0.01}
rules:
  - id: join
    on: enrolment
    do:
      - award: {ledger: pts, amount: 50}
  - id: thanks
    on: referral
    do:
      - referral_reward: {ledger: pts, referrer: 20, referred: 10}
  - id: earn
    on: purchase
    do:
      - award: {ledger: pts, amount: "floor(purchase.amount)"}
  - id: cash_in
    on: purchase
    when: "customer.points['pts'] >= 200"
    do:
      - redeem: {ledger: pts, cost: 200, discount: 4}
"""


@pytest.mark.parametrize("name, stacks", [("points", True), ("credit", True), ("performance", True),
                                          ("tiered_points", True), ("hybrid", True), ("none", False)])
def test_which_shipped_policies_stack_their_purchases(small_scenario, name: str, stacks: bool) -> None:
    sc = small_scenario(population__customers=40, days=20)
    cp = load_policy(ROOT / "policies" / f"{name}.yaml", world_of(sc))
    sim = StackedSimulation(sc, cp, [RunOptions(seed=1, address=(i,)) for i in range(2)])
    assert (sim.srt is not None) is stacks


@pytest.mark.parametrize("pending, rate", [(0, "1"), (0, "0.5"), (20, "1")])
def test_a_busy_programme_over_a_stack(small_scenario, policy_from_yaml, pending: int, rate: str) -> None:
    """Caps of every kind, groups, fractional or late-maturing points, credit and windows: each world as alone,
    with marketing that makes the worlds outgrow their rows."""
    sc = small_scenario(population__customers=80, days=130, store__marketing__budget_per_year=40000.0,
                        store__marketing__cost_per_acquisition=10.0)
    cp = policy_from_yaml(BUSY % {"pending": pending, "rate": rate}, sc)
    sim = StackedSimulation(sc, cp, [RunOptions(seed=2, address=(0,))])
    assert sim.srt is not None  # the case is about the stacked runtime
    alone_and_stacked(sc, cp, [RunOptions(seed=s, address=(i,), transactions=True)
                               for i, s in enumerate((2, 3, 2, 9))])


def test_tiers_vouchers_and_budgets_that_bind(small_scenario, policy_from_yaml) -> None:
    """Tier discounts and vouchers are summed per world; budgets (a rule's, and one shared by every rule, per
    month) are rationed over each world's own buyers in the order of their purchases."""
    sc = small_scenario(population__customers=120, days=120)
    cp = policy_from_yaml(TIGHT, sc)
    worlds = [RunOptions(seed=s, address=(i,), transactions=True) for i, s in enumerate((5, 6, 5))]
    assert StackedSimulation(sc, cp, worlds[:1]).srt is not None
    rec = Simulation(sc, cp, worlds[0]).run().record
    tx = rec.transactions
    assert tx is not None
    bit = {rid: np.uint64(1) << np.uint64(k) for k, rid in enumerate(rec.rule_ids)}
    fired = {rid: (tx["rules"] & b) != 0 for rid, b in bit.items()}
    # the case is about budgets that bind: the voucher rule stops within its $150 while big baskets go on
    assert rec.rule_cost["next_time"] <= 150 + 1e-9 and rec.rule_fires["next_time"] > 0
    late = tx["time"] > tx["time"][fired["next_time"]].max()
    assert ((tx["amount"] >= 35) & late & fired["earn"]).any()
    assert (tx["discount"] > 0).any() and rec.rule_fires["cash_in"] > 0
    alone_and_stacked(sc, cp, worlds)


@pytest.mark.parametrize("launch_day", [0, 35])
def test_welcomes_in_order_and_a_launch(small_scenario, policy_from_yaml, launch_day: int) -> None:
    """Enrolment and referral rules make each welcome's rules depend on the one before: arrivals keep each world's
    welcomes in order; a programme launched after a warm-up runs over the stack from its launch."""
    sc = small_scenario(population__customers=90, days=110, launch_day=launch_day,
                        store__marketing__budget_per_year=20000.0, store__marketing__cost_per_acquisition=10.0)
    cp = policy_from_yaml(WELCOME, sc)
    alone_and_stacked(sc, cp, [RunOptions(seed=4, address=(i,), transactions=True) for i in range(3)])


@pytest.mark.parametrize("name", ["points", "credit", "performance", "tiered_points", "hybrid"])
def test_shipped_policies_with_spread_arrivals(small_scenario, name: str) -> None:
    """Starting customers who arrive over the first days, paid and referred arrivals on the same days."""
    sc = small_scenario(population__customers=150, days=90, population__arrival_days=20,
                        store__marketing__budget_per_year=15000.0, store__marketing__cost_per_acquisition=20.0)
    cp = load_policy(ROOT / "policies" / f"{name}.yaml", world_of(sc))
    alone_and_stacked(sc, cp, [RunOptions(seed=7, address=(i,), transactions=True) for i in range(3)])


OFFERS = """
name: offers
points:
  pts: {value: 0.01}
rules:
  - id: earn
    on: purchase
    do:
      - award: {ledger: pts, amount: "floor(purchase.amount)"}
  - id: come_back
    on: purchase
    when: "purchase.amount >= 30"
    do:
      - offer: {cost_per_contact: 0.5, response: 0.3, frequency_uplift: 0.4, days: 20}
    cap: {per: month, times: 1}
"""


def test_a_policy_whose_purchases_stay_world_by_world(small_scenario, policy_from_yaml) -> None:
    """An action whose handler does not work over a stack (an offer on a purchase rule): the policy's purchases go
    world by world through each world's own runtime, still each world as alone."""
    sc = small_scenario(population__customers=100, days=100)
    cp = policy_from_yaml(OFFERS, sc)
    assert StackedSimulation(sc, cp, [RunOptions(seed=1)]).srt is None
    alone_and_stacked(sc, cp, [RunOptions(seed=8, address=(i,), transactions=True) for i in range(3)])


class _NanAtRow:
    """Customer facts with one non-finite spend, at row 8 of a stack (customer 3 of its second world)."""

    def get(self, name: str, idx: np.ndarray) -> np.ndarray:
        if name == "customer.spend":
            return np.where(idx == 8, np.nan, 10.0)
        raise KeyError(name)


def test_a_non_finite_number_over_a_stack_names_the_customer_in_its_own_run(tmp_path) -> None:
    """The run stops with the place in the policy, and the customer as its own run numbers it, not its row."""
    from lab.errors import LabError
    from lab.policy.runtime import PolicyRuntime, World

    path = tmp_path / "guarded.yaml"
    path.write_text("name: guarded\npoints:\n  points: {}\nrules:\n  - id: earn\n    on: purchase\n    do:\n"
                    "      - award: {ledger: points, amount: \"customer.spend * 2\"}\n")
    cp = load_policy(path, World(("shirts",), (30.0,), (15.0,), ("all",)))
    worlds = [PolicyRuntime(cp, 5), PolicyRuntime(cp, 5)]
    stacked = PolicyRuntime(cp, 0)
    stacked.share_rows(worlds, np.array([0, 5, 10]))
    idx = np.arange(10)
    stacked.enrol(idx)
    assert worlds[1].member.all()  # the worlds' columns are views of the stacked rows
    with pytest.raises(LabError) as info:
        stacked.purchase(idx, np.zeros(10), np.full(10, 20.0), np.zeros(10, dtype=np.int64), np.ones(10),
                         np.zeros(10), 17.0, _NanAtRow())
    (d,) = info.value.diagnostics
    assert "customer 3" in d.message and "day 17" in d.message and (d.file, d.line) == (str(path), 8)
