"""The behavioural model (lab.engine.behaviour): each formula on hand-computed cases, and both engines' steps in step.

1. Every formula against numbers worked out by hand (the caps, the dropout
   spreading p' = 1 - (1 - p)^(d/m), wear = 1 / (1 + h x heat), ...), so that a
   changed constant or operator fails here (mutation testing holds us to it).
2. Both engines' per-customer steps fed the same state: a vectorised run stops,
   the reference engine is given an exact copy of its customers and programme,
   and each step -- satisfaction, the rate and dropout multipliers, a purchase
   with its rewards and the dropout after it, a service contact, an expiry
   sweep, a credit statement, a campaign offer -- is taken by both, the
   vectorised engine for all customers at once and the reference engine one
   customer at a time. Every customer column and every ledger must then agree
   (to rounding). A response added to one engine only makes this fail, where the
   distribution tests of tests/test_engine_equivalence.py would not notice it.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lab.engine import behaviour as bh
from lab.engine.options import RunOptions
from lab.engine.reference import ReferenceSimulation
from lab.engine.simulate import Simulation
from lab.population.customers import Customers
from lab.scenario.loader import load_scenario
from lab.scenario.model import Behaviour
from tests.conftest import day0, everyone_joins

ROOT = Path(__file__).resolve().parents[1]
B = Behaviour()  # the documented defaults: goal_gradient 0.4, habituation 1, reward_delight 0.05, ...


def close(a, b) -> bool:
    return bool(np.allclose(a, b, rtol=1e-12, atol=1e-15))


# --------------------------------------------------------------------------- 1. the formulas, by hand
def test_the_rate_bound_is_the_product_of_the_largest_factors_with_headroom_and_a_cap() -> None:
    seg = SimpleNamespace(reward_sensitivity=np.array([0.5, 2.0]), satisfaction=np.array([0.5, 0.7]),
                          credit_appetite=np.array([0.5, 0.2]))
    expected = 1.2 * (1 + 0.4 * 2.0) * math.exp(1.0 * (1 - 0.5)) * (1 + 0.3 * 0.5) * 1.3  # = 5.3240...
    assert bh.rate_bound(B, 0.2, seg) == pytest.approx(expected, rel=1e-15)
    assert bh.rate_bound(dataclasses.replace(B, goal_gradient=5.0), 0.2, seg) == 6.0 == bh.M_CAP
    assert bh.rate_bound(dataclasses.replace(B, enabled=False), 0.2, seg) == 1.0


def test_seasonality_peaks_on_the_peak_day_and_bottoms_half_a_year_later() -> None:
    t = np.array([334.0, 334.0 + 182.5, 334.0 + 91.25, 334.0 + 365.0])
    assert close(bh.seasonal_factor(t, 0.25, 335), [1.25, 0.75, 1.0, 1.25])


def test_the_rate_factors() -> None:
    assert bh.satisfaction_rate_factor(B, 0.6, 0.6) == 1.0
    twice = dataclasses.replace(B, satisfaction_rate_effect=2.0)
    assert bh.satisfaction_rate_factor(twice, 0.7, 0.6) == pytest.approx(math.exp(0.2))
    assert bh.goal_gradient_factor(B, 0.5, 0.5) == pytest.approx(1 + 0.4 * 0.5 * 0.25)  # power 2
    assert close(bh.credit_factor(B, np.array([0.5, 0.5]), np.array([True, False]), np.array([0.2, 0.2])), [1.12, 1.0])


def test_the_rate_multiplier_multiplies_the_factors_and_is_capped() -> None:
    flat = dict(seasonality=0.0, peak_day=1, goal=(0.5, 0.8), offer_uplift=0.5, credit=(1.0, True, 0.0))
    expected = 2 * (1 + 0.4 * 0.5 * 0.8 ** 2) * 1.5 * 1.3
    assert bh.rate_multiplier(B, 2.0, 10.0, 0.6, 0.6, bound=6.0, **flat) == pytest.approx(expected)
    assert bh.rate_multiplier(B, 2.0, 10.0, 0.6, 0.6, bound=4.0, **flat) == 4.0
    plain = bh.rate_multiplier(B, 2.0, 10.0, 0.7, 0.6, bound=6.0, seasonality=0.0, peak_day=1)
    assert plain == pytest.approx(2 * math.exp(0.1))
    base = np.array([1.0, 2.0])
    m = bh.rate_multiplier(B, base, np.array([334.0, 334.0]), 0.6, 0.6, bound=6.0, seasonality=0.5, peak_day=335)
    assert close(m, [1.5, 3.0]) and close(base, [1.5, 3.0])  # the base array is multiplied in place


def test_the_dropout_multiplier_and_the_hope_of_a_reward() -> None:
    assert bh.dropout_multiplier(B, 0.6, 0.6) == 1.0
    assert bh.dropout_multiplier(B, 0.5, 0.6) == pytest.approx(math.exp(0.2))  # churn effect 2
    assert bh.dropout_multiplier(B, 0.6, 0.6, 1.0, 0.5) == pytest.approx(1 / 1.25)  # points_hope 0.5
    assert bh.dropout_multiplier(B, 0.6, 0.6, 2.0, 0.5) == pytest.approx(1 / 1.5)


def test_headroom_scales_only_the_reward_driven_part_of_the_response() -> None:
    # two segments, rates 0.1 and 0.3 a day, shares 3:1 -> population mean rate 0.15 a day
    seg = SimpleNamespace(share=np.array([3.0, 1.0]), r=np.array([1.0, 3.0]), alpha_days=np.array([10.0, 10.0]))
    lam = np.array([0.075, 0.15, 0.6])
    assert bh.headroom(B, seg, lam, np.arange(3)) is None  # off by default: the arithmetic is the one above
    on = dataclasses.replace(B, response_headroom=2.0)
    h = bh.headroom(on, seg, lam, np.arange(3))
    assert close(h, [1 / (1 + 2 * 0.5), 1 / (1 + 2 * 1.0), 1 / (1 + 2 * 4.0)])  # 1/2, 1/3, 1/9
    assert bh.headroom(on, seg, lam, 2) == pytest.approx(1 / 9)
    flat = dict(seasonality=0.0, peak_day=1, goal=(0.5, 0.8), offer_uplift=0.5, credit=(1.0, True, 0.0))
    # goal 1 + 0.4 x 0.5 x 0.64 = 1.128 -> 1 + 0.128 / 9; offer 1.5 -> 1 + 0.5 / 9; satisfaction and credit kept
    expected = 2 * (1 + 0.128 / 9) * (1 + 0.5 / 9) * 1.3
    assert bh.rate_multiplier(on, 2.0, 10.0, 0.6, 0.6, bound=6.0, headroom=1 / 9, **flat) == pytest.approx(expected)
    # hope: 1 + 0.5 x 1 x 0.5 = 1.25 -> 1 + 0.25 / 3; the satisfaction part exp(0.2) is not scaled
    assert bh.dropout_multiplier(on, 0.5, 0.6, 1.0, 0.5, 1 / 3) == pytest.approx(math.exp(0.2) / (1 + 0.25 / 3))


def test_wear_out_erodes_the_reward_driven_response_with_days_in_the_programme() -> None:
    seg = SimpleNamespace(share=np.array([1.0]), r=np.array([1.0]), alpha_days=np.array([10.0]))
    lam = np.array([0.05, 0.1, 0.4])
    acquired = np.array([-30.0, 50.0, 250.0])
    assert bh.wear_out(B, 0.0, 10.0) is None  # off by default
    assert bh.response_share(B, seg, lam, acquired, np.arange(3), 100, 300.0) is None
    on = dataclasses.replace(B, wear_out=3.0)
    # joined at the later of acquisition and the launch (day 100): 100, 100, 250; at day 100 + 365 / 3, e^-1
    t = 100 + 365 / 3
    w = bh.response_share(on, seg, lam, acquired, np.arange(3), 100, t)
    assert w == pytest.approx([math.exp(-1), math.exp(-1), 1.0])  # customer 2 joins later than t: no wear yet
    assert bh.wear_out(on, 100.0, 100.0) == 1.0
    slow = dataclasses.replace(B, wear_out=0.5)  # a slow wear-out, inside the plausible range 0-6, still wears
    assert bh.wear_out(slow, 0.0, 730.0) == pytest.approx(math.exp(-1.0))
    assert bh.response_share(slow, seg, lam, acquired, 0, 100, 830.0) == pytest.approx(math.exp(-1.0))
    both = dataclasses.replace(on, response_headroom=2.0)  # lam_ref 0.1: h = 1 / (1 + 2 lam / 0.1)
    hw = bh.response_share(both, seg, lam, acquired, 1, 100, t)
    assert hw == pytest.approx(math.exp(-1) / 3)
    # it scales the goal gradient as the headroom does: 1 + w g rho progress^k
    flat = {"seasonality": 0.0, "peak_day": 1}
    m = bh.rate_multiplier(on, 1.0, t, 0.6, 0.6, bound=6.0, goal=(1.0, 1.0), headroom=math.exp(-1), **flat)
    assert m == pytest.approx(1 + math.exp(-1) * on.goal_gradient)


def test_the_membership_effect_lifts_members_whatever_their_progress_within_their_response_share() -> None:
    assert bh.membership_factor(B, 2.0, 1.0) == 1.0  # off by default (membership_effect 0)
    on = dataclasses.replace(B, membership_effect=0.05)
    assert close(bh.membership_factor(on, np.array([2.0, 2.0]), np.array([1.0, 0.0])), [1.1, 1.0])  # members only
    flat = {"seasonality": 0.0, "peak_day": 1}
    # at progress 0 the goal gradient gives nothing; the membership effect 1 + 0.05 x 2 x h still lifts the member
    m = bh.rate_multiplier(on, 1.0, 10.0, 0.6, 0.6, bound=6.0, goal=(2.0, 0.0), member=(2.0, 1.0), **flat)
    assert m == pytest.approx(1.1)
    m = bh.rate_multiplier(on, 1.0, 10.0, 0.6, 0.6, bound=6.0, goal=(2.0, 0.0), member=(2.0, 1.0), headroom=0.25,
                           **flat)
    assert m == pytest.approx(1.025)  # scaled by the response share, as the goal gradient is
    seg = SimpleNamespace(reward_sensitivity=np.array([0.5, 2.0]), satisfaction=np.array([0.5, 0.7]),
                          credit_appetite=np.array([0.5, 0.2]))
    # the thinning bound grows by the largest member's factor, 1 + 0.05 x 2, and only when the effect is on
    assert bh.rate_bound(on, 0.2, seg) == pytest.approx(bh.rate_bound(B, 0.2, seg) * 1.1, rel=1e-15)


def test_dropout_is_spread_over_the_pace_of_buying() -> None:
    p = np.full(5, 0.1)
    dm = np.array([1.0, 1.0, 2.0, 1.0, 1.0])
    m = np.array([1.0, 2.0, 1.0, 1.0, 1.0])
    assert close(bh.dropout_probability(p, dm, m, 0.0)[:3], [0.1, 1 - 0.9 ** 0.5, 1 - 0.81])
    assert bh.dropout_probability(0.1, 1.0, 1.0, 0.5) == pytest.approx(1 - 0.9 * 0.5)
    assert bh.dropout_probability(0.0, 1.0, 1.0, 0.25) == pytest.approx(0.25)
    assert bh.rescaled_death(10.0, 30.0, 1.0, 2.0) == 20.0
    assert bh.rescaled_death(10.0, 30.0, 3.0, 1.5) == 50.0


def test_the_satisfaction_target_moves_with_service_and_debt_within_0_and_1() -> None:
    assert bh.satisfaction_target(B, 0.5, 0.8, 0.6) == pytest.approx(0.6)  # weight 0.5
    assert bh.satisfaction_target(B, 0.5, 0.8, 0.6, 0.5) == pytest.approx(0.6 - 0.002 * 60 * 0.5)
    assert bh.satisfaction_target(B, 0.9, 1.0, 0.6) == 1.0
    assert bh.satisfaction_target(B, 0.05, 0.6, 0.6, 1.0) == 0.0


def test_satisfaction_relaxes_towards_its_target_with_the_memory() -> None:
    assert bh.satisfaction_at(0.2, 0.0, 60.0, 0.8, 60.0) == pytest.approx(0.8 - 0.6 * math.exp(-1))
    assert bh.satisfaction_at(0.2, 5.0, 3.0, 0.8, 60.0) == pytest.approx(0.2)  # no time has passed yet
    assert bh.satisfaction_at(0.2, 5.0, 5.0, 0.8, 60.0) == pytest.approx(0.2)
    assert close(bh.bumped(np.array([0.9, 0.1, 0.5]), np.array([0.2, -0.3, 0.1])), [1.0, 0.0, 0.6])


def test_habituation_wears_rewards_down_and_fades_with_the_memory() -> None:
    assert bh.decayed_heat(2.0, 0.0, 60.0, 60.0) == pytest.approx(2 * math.exp(-1))
    assert bh.decayed_heat(2.0, 10.0, 5.0, 60.0) == 2.0
    assert bh.wear(3.0, 1.0) == 0.25
    assert bh.wear(3.0, 0.5) == 0.4
    assert bh.wear(3.0, 0.0) == 1.0
    # the response share (headroom x wear-out) scales what is left of the delight; None leaves it alone
    assert bh.wear(3.0, 1.0, 0.5) == 0.125
    assert bh.wear(3.0, 1.0, None) == 0.25
    assert close(bh.wear(np.array([0.0, 1.0]), 1.0, np.array([0.2, 1.0])), [0.2, 0.5])


def test_reward_delight_is_capped_and_scaled_by_sensitivity_and_wear() -> None:
    assert bh.reward_gain(B, 40.0, 20.0, 0.5, 0.5) == pytest.approx(0.05 * 2 * 0.25)
    assert bh.reward_gain(B, 200.0, 20.0, 0.5, 0.5) == pytest.approx(bh.REWARD_DELIGHT_CAP * 0.25)
    assert bh.REWARD_DELIGHT_CAP == 0.2
    assert close(bh.free_item_gain(B, np.array([True, False]), 0.5, 0.5), [0.05 * 0.25, 0.0])


def test_expiry_frustration_and_the_missed_payment_hit() -> None:
    assert bh.expiry_frustration(B, 10.0, 10.0) == pytest.approx(-0.15)
    assert bh.expiry_frustration(B, 100.0, 10.0) == -0.3 == -bh.EXPIRY_FRUSTRATION_CAP
    assert bh.missed_payment_hit(B) == pytest.approx(-0.002 * 30)


def test_trials_offers_service_and_word_of_mouth() -> None:
    new, u = np.array([True, True, False, True]), np.array([0.1, 0.9, 0.1, 0.5])
    assert bh.adopts_trial(new, u, 0.5).tolist() == [True, False, False, False]  # u = 0.5 is not below 0.5
    cum = bh.tastes_after_trial(np.array([[0.5, 0.25, 0.25], [0.5, 0.5, 0.0]]), np.array([2, 2]), 3)
    assert close(cum, [[0.375, 0.5625, 1.0], [0.375, 0.75, 1.0]])
    assert bh.trial_rate_factor(B) == pytest.approx(1.15)
    assert close(bh.offer_take_up(0.3, np.array([0.5, 4.0])), [0.15, 1.0])
    assert bh.handling_quality(0.8, 0.5) == 0.8 and bh.handling_quality(0.8, 2.0) == 0.4
    shift = bh.contact_shift(B, np.array([True, False, False, True]), np.array([False, True, False, True]))
    assert close(shift, [0.03, -0.06, 0.0, 0.03])
    assert bh.refers(np.array([0.2, 0.25, 0.3]), 0.5, 0.5).tolist() == [True, False, False]


# --------------------------------------------------------------------------- 2. both engines, one step, the same state
EVERYTHING = """
name: everything
description: Points with redemptions, stamps for free items, tiers, a store card, a win-back offer, trials.
participation: 0.9
points:
  points: {value: 0.01, expiry_days: 21, lot_days: 7}
  stamps: {value: 0}
tiers:
  metric: spend
  window_days: 60
  review_days: 30
  levels:
    basic: {}
    silver: {qualify: 100, earn_multiplier: 2, discount_percent: 5}
credit:
  card: {limit: 300, apr: 0.24, statement_days: 30, min_payment: 10, min_payment_percent: 0.05,
         late_fee: 15, delinquent_after_missed: 2, write_off_after_days: 90}
rules:
  - id: earn
    on: purchase
    do: [{award: {ledger: points, amount: "floor(purchase.amount)"}}]
  - id: redeem
    on: purchase
    when: "customer.points['points'] >= 60"
    do: [{redeem: {ledger: points, cost: 60, discount: 10}}]
  - id: stamp
    on: purchase
    when: "purchase.category == customer.favourite_category"
    do: [{award: {ledger: stamps, amount: 1}}]
  - id: free
    on: purchase
    when: "customer.points['stamps'] >= 2"
    do: [{redeem: {ledger: stamps, cost: 2, free_item: favourite}}]
  - id: winback
    on: {schedule: {every: month, day: 10}}
    do: [{offer: {cost_per_contact: 0.5, response: 0.6, frequency_uplift: 0.5, basket_uplift: 0.2, days: 40}}]
  - id: widen
    on: purchase
    when: "purchase.number >= 2"
    do: [{trial: {category: new}}]
  - id: sorry
    on: {service_contact: {kind: complaint}}
    do: [{award: {ledger: points, amount: "30"}}]
"""
DAYS = 75  # long enough for offers (day 10 and 40), expiries, two statements and habituated rewards


@pytest.fixture(scope="module")
def grocer():
    """scenarios/grocer.yaml (seasonality, a Pareto/NBD segment) at 400 customers, with rewards delightful enough
    to reach the cap on one reward's delight; a day-0 cohort, so the state at DAYS has members of every age in
    the programme only through arrivals, and the shipped wear-out acts on all of them."""
    sc = day0(load_scenario(ROOT / "scenarios" / "grocer.yaml").scenario)  # with the grocer's wear-out
    return dataclasses.replace(sc, days=DAYS, population=dataclasses.replace(sc.population, customers=400),
                               behaviour=dataclasses.replace(sc.behaviour, reward_delight=1.0))


@pytest.fixture(scope="module")
def stopped(grocer, policy_from_yaml):
    """A vectorised run of the whole programme, stopped at the end of its horizon."""
    sim = Simulation(grocer, policy_from_yaml(EVERYTHING, grocer), RunOptions(seed=11))
    sim.run()
    return sim


def _twins(sim: Simulation) -> tuple[Simulation, ReferenceSimulation]:
    """Both engines holding exact copies of one state (customers, programme, store)."""
    vec = copy.deepcopy(sim)
    ref = ReferenceSimulation(sim.sc, sim.cp, sim.opts, follow=())
    ref.c, ref.runtime, ref.store = copy.deepcopy(sim.c), copy.deepcopy(sim.runtime), vec.store
    return vec, ref


def _alive(sim: Simulation) -> np.ndarray:
    return np.flatnonzero(sim.c.alive[: sim.c.n])


def _times(idx: np.ndarray, day: int) -> np.ndarray:
    return day + (np.arange(len(idx)) * 0.618034) % 1.0  # distinct times within the day


# (level, time it was recorded): two engines may record the same state at different times
_CLOCKED = {"sat_at": "t_sat", "t_sat": None, "heat": "t_heat", "t_heat": None}


def _same_state(vec: Simulation, ref: ReferenceSimulation, later: float) -> None:
    """Every declared customer column and every ledger array of the two engines agree (to rounding).

    Satisfaction and recent rewards are compared as they stand at time `later`: the vectorised engine
    brings a whole batch's reward count up to date when anyone in it is rewarded, the reference engine
    only the rewarded customer's, and either way the level at any later time is the same."""
    n = vec.c.n
    assert ref.c.n == n
    for name in Customers.COLUMNS:
        if name in _CLOCKED:
            continue
        a, b = getattr(vec.c, name)[:n], getattr(ref.c, name)[:n]
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"customer column {name}")
    everyone = np.arange(n)
    np.testing.assert_allclose(vec.satisfaction(everyone, later), [ref.satisfaction(i, later) for i in range(n)],
                               rtol=1e-9, err_msg="satisfaction")
    memory = vec.beh.satisfaction_memory_days
    np.testing.assert_allclose(bh.decayed_heat(vec.c.heat[:n], vec.c.t_heat[:n], later, memory),
                               bh.decayed_heat(ref.c.heat[:n], ref.c.t_heat[:n], later, memory), rtol=1e-9,
                               err_msg="recent rewards (heat)")
    for kind in ("points", "credit"):
        for ledger, book in getattr(vec.runtime, kind).items():
            other = getattr(ref.runtime, kind)[ledger]
            for attr, value in vars(book).items():
                if isinstance(value, np.ndarray) and value.dtype != object:
                    np.testing.assert_allclose(value, getattr(other, attr), rtol=1e-9, atol=1e-12,
                                               err_msg=f"{kind} ledger {ledger}: {attr}")
    for attr in ("member", "tier", "voucher", "voucher_until"):
        np.testing.assert_allclose(getattr(vec.runtime, attr), getattr(ref.runtime, attr), rtol=1e-9, err_msg=attr)


def test_the_stopped_run_exercises_every_response(stopped) -> None:
    """The shared state below is only a test if it has offers live, rewards worn, credit used and Pareto customers."""
    c, day = stopped.c, DAYS
    idx = _alive(stopped)
    assert stopped.on and stopped.m_bound > 1.0 and stopped.sc.store.seasonality > 0
    assert (c.offer_until[idx] > day).sum() > 10
    assert (c.heat[idx] > 0).sum() > 50
    assert (c.lam_mult[idx] > 1).sum() > 10  # trials adopted
    assert (stopped.runtime.credit_use(idx)[1] > 0).sum() > 50
    assert c.pareto[idx].sum() > 20 and (~c.pareto[idx]).sum() > 20
    assert (stopped.runtime.tier[idx] > 0).sum() > 20


def test_both_engines_read_the_same_satisfaction_rate_and_dropout_multipliers(stopped) -> None:
    vec, ref = _twins(stopped)
    day = DAYS
    idx = _alive(vec)
    t = _times(idx, day)
    vec.now = float(day)
    s = vec.satisfaction(idx, t)
    m = vec.rate_multiplier(idx, t)
    d = vec.dropout_multiplier(idx, t)
    np.testing.assert_allclose(s, [ref.satisfaction(int(i), float(x)) for i, x in zip(idx, t)], rtol=1e-12)
    np.testing.assert_allclose(m, [ref.rate_multiplier(int(i), float(x), day) for i, x in zip(idx, t)], rtol=1e-12)
    np.testing.assert_allclose(d, [ref.dropout_multiplier(int(i), float(x)) for i, x in zip(idx, t)], rtol=1e-12)
    assert len(np.unique(np.round(m, 6))) > 20 and m.max() > 1.5  # the multipliers really vary


def _multipliers_agree(vec, ref) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The alive customers at day DAYS, their candidate times, and both multipliers, held equal in both engines."""
    day = DAYS
    idx = _alive(vec)
    t = _times(idx, day)
    vec.now = float(day)
    m = vec.rate_multiplier(idx, t)
    d = vec.dropout_multiplier(idx, t)
    np.testing.assert_allclose(m, [ref.rate_multiplier(int(i), float(x), day) for i, x in zip(idx, t)], rtol=1e-12)
    np.testing.assert_allclose(d, [ref.dropout_multiplier(int(i), float(x)) for i, x in zip(idx, t)], rtol=1e-12)
    return idx, t, m, d


def test_both_engines_scale_the_response_by_the_same_headroom(stopped) -> None:
    vec, ref = _twins(stopped)
    vec.beh = ref.beh = dataclasses.replace(vec.beh, response_headroom=2.0)
    idx, t, m, d = _multipliers_agree(vec, ref)
    day = DAYS
    off = copy.deepcopy(stopped)
    off.now = float(day)
    assert (m < off.rate_multiplier(idx, t) - 1e-9).sum() > 20  # the headroom really bites


def test_both_engines_wear_the_response_out_alike(stopped) -> None:
    """The grocer wears the response out (wear_out 3 a year); both engines read each member's days in the
    programme from the same columns and launch day, and the wear really lowers the multipliers."""
    vec, ref = _twins(stopped)
    assert vec.beh.wear_out > 0
    idx, t, m, d = _multipliers_agree(vec, ref)
    day = DAYS
    unworn = copy.deepcopy(stopped)
    unworn.beh = dataclasses.replace(unworn.beh, wear_out=0.0)
    unworn.now = float(day)
    assert (m < unworn.rate_multiplier(idx, t) - 1e-9).sum() > 20  # the wear-out really bites
    assert (d > unworn.dropout_multiplier(idx, t) + 1e-9).sum() > 20  # and the hope fades with it


def test_both_engines_lift_members_by_the_same_membership_effect(stopped) -> None:
    """With a membership effect (0.05) and the grocer's wear-out, both engines read the same members, sensitivities
    and response shares, and members buy faster than without it (the bound M recomputed for it, as a run does)."""
    vec, ref = _twins(stopped)
    vec.beh = ref.beh = dataclasses.replace(vec.beh, membership_effect=0.05)
    vec.m_bound = ref.m_bound = bh.rate_bound(vec.beh, vec.sc.store.seasonality, vec.seg)
    idx, t, m, d = _multipliers_agree(vec, ref)
    off = copy.deepcopy(stopped)
    off.beh = dataclasses.replace(off.beh, membership_effect=0.0)  # the grocer ships 0.1
    assert vec.m_bound > bh.rate_bound(off.beh, vec.sc.store.seasonality, vec.seg)
    off.m_bound = vec.m_bound
    off.now = float(DAYS)
    members = vec.runtime.member[idx]
    m_off = off.rate_multiplier(idx, t)
    assert (m[members] > m_off[members] + 1e-9).sum() > 20  # the effect really lifts members
    np.testing.assert_array_equal(m[~members], m_off[~members])  # and nobody else


def test_both_engines_wear_a_rewards_delight_by_the_same_response_share(stopped) -> None:
    """A reward's delight is part of the reward-driven response: both engines scale it by headroom x wear-out
    (the grocer's wear-out 3 a year, and a headroom of 2 here), from the same columns and launch day, and the
    share really lowers it below habituation's alone."""
    vec, ref = _twins(stopped)
    vec.beh = ref.beh = dataclasses.replace(vec.beh, response_headroom=2.0)
    day = DAYS
    idx = _alive(vec)
    t = _times(idx, day)
    worn = vec._wear(idx, t)
    np.testing.assert_allclose(worn, [ref.wear(int(i), float(x)) for i, x in zip(idx, t)], rtol=1e-12)
    plain = bh.wear(vec.c.heat[idx], vec.beh.habituation)
    assert np.all(worn <= plain + 1e-15) and (worn < 0.9 * plain).sum() > 20


def test_a_purchase_and_the_dropout_after_it_do_the_same_in_both_engines(stopped) -> None:
    vec, ref = _twins(stopped)
    day = DAYS
    idx = _alive(vec)
    t = _times(idx, day)
    vec.now = float(day)
    heat_before = vec.c.heat[idx].copy()
    m = vec.rate_multiplier(idx, t)
    s = vec._purchase(idx, t, repeat=True)
    vec._dropout_after(idx, t, m, s)
    for i, x in zip(idx.tolist(), t.tolist()):
        m_i = ref.rate_multiplier(i, x, day)
        ref._purchase(i, x, day, repeat=True)
        ref._maybe_drop_out(i, x, m_i)
    _same_state(vec, ref, day + 1.0)
    assert (vec.c.heat[idx] > heat_before).sum() > 20  # rewards delighted (and wore down) customers
    assert (~vec.c.alive[idx]).sum() > 0  # someone dropped out
    np.testing.assert_allclose(vec.book.revenue, ref.book.revenue, rtol=1e-9)
    np.testing.assert_allclose(vec.book.reward_goods, ref.book.reward_goods, rtol=1e-9)
    assert vec.book.reward_goods > 0


def test_a_service_contact_does_the_same_in_both_engines(stopped) -> None:
    vec, ref = _twins(stopped)
    day = DAYS
    idx = _alive(vec)
    t = _times(idx, day)
    vec.now = float(day)
    for c in (vec.c, ref.c):
        c.next_contact[:] = np.inf
        c.next_contact[idx] = t
    before = vec.c.sat_at[idx].copy()
    vec._service_contacts(day + 1.0)
    for i, x in zip(idx.tolist(), t.tolist()):
        ref._contact(i, x, day)
    _same_state(vec, ref, day + 1.0)
    assert vec.book.complaints > 0 and vec.book.resolved > 0 and (vec.c.sat_at[idx] != before).sum() > 100


def test_the_calendar_expiry_statements_and_offers_do_the_same_in_both_engines(stopped) -> None:
    vec, ref = _twins(stopped)
    for day in (99, 120):  # the 10th of a month (the win-back offer), then a statement and tier-review day
        vec.now = float(day)
        vec.expiry_sweep(day)
        if day % 30 == 0:
            for line in vec.runtime.credit.values():
                vec._statement(line, day)
            vec.tier_review(day)
        if day % 30 == 9:
            for r in vec.runtime.triggers("schedule"):
                vec.scheduled(r, day)
        ref._calendar(day)
        _same_state(vec, ref, day + 1.0)
    assert vec.book.points_expired > 0 and vec.book.offers_cost > 0 and (vec.book.interest + vec.book.fees) > 0
    for k in ("points_expired", "offers_cost", "interest", "fees", "bad_debt", "credit_repaid"):
        assert getattr(vec.book, k) == pytest.approx(getattr(ref.book, k), rel=1e-9), k


def test_the_fast_population_satisfaction_is_the_formula(grocer, policy_file) -> None:
    """The vectorised engine's in-place satisfaction of everyone (used without credit) is behaviour's, bit for bit."""
    sim = Simulation(grocer, policy_file("points", grocer), RunOptions(seed=3, days=40))
    sim.run()
    n = sim.c.n
    everyone = np.arange(n)
    assert (sim.c.sat_at[:n] != sim.c.sat_ref[:n]).sum() > 10
    for t in (40.0, 40.5, 400.0):
        assert np.array_equal(sim._everyone_satisfaction(n, t), sim.satisfaction(everyone, t))


# --------------------------------------------------------------------------- 3. heavy and light buyers
def _uplift(base: np.ndarray, policy: np.ndarray) -> tuple[float, float]:
    """Relative uplift sum(policy - base) / sum(base) over paired customers, with its standard error from the
    ratio estimator's linearisation: sqrt(sum((d - R base)^2)) / sum(base)."""
    d = policy - base
    ratio = float(d.sum() / base.sum())
    return ratio, float(np.sqrt(np.sum((d - ratio * base) ** 2)) / base.sum())


def test_with_headroom_heavy_buyers_uplift_under_points_shrinks_towards_light_buyers() -> None:
    """Apparel, 2,000 customers, one year, points against no programme (same seed: common random numbers): the
    heavy half's relative uplift in purchases minus the light half's, without headroom and with 2. The contrast
    must fall by more than 4 standard errors (the two runs' errors share customers and are positively correlated,
    so adding their variances overstates the error), and the heavy half must lose most of its uplift.
    Measured: the contrast falls from about 8 points to 1. Light buyers' uplift does not overtake the heavy
    buyers' at plausible values: most light buyers never near a reward within the year (docs/MODEL.md, 4b)."""
    ls = load_scenario(ROOT / "scenarios" / "apparel.yaml", ["none", "points"])
    opts = RunOptions(seed=7, customers=2000, days=365)
    contrast, heavy = {}, {}
    for h in (0.0, 2.0):
        # the day-0 cohort, everyone a member, no wear-out and no membership effect: the headroom alone
        sc = dataclasses.replace(day0(ls.scenario), behaviour=dataclasses.replace(
            ls.scenario.behaviour, response_headroom=h, wear_out=0.0, membership_effect=0.0))
        runs = []
        for name in ("none", "points"):
            sim = Simulation(sc, everyone_joins(ls.policies[name]), opts)
            purchases = sim.run().record.customers.purchases[:2000].astype(float)
            runs.append((purchases, sim.c.lam[:2000].copy()))
        lam = runs[0][1]
        assert np.array_equal(lam, runs[1][1])  # the same customers under both policies
        base, pol = runs[0][0], runs[1][0]
        light, hv = lam < np.median(lam), lam >= np.median(lam)
        (ul, sl), (uh, sh) = _uplift(base[light], pol[light]), _uplift(base[hv], pol[hv])
        contrast[h] = (uh - ul, math.hypot(sl, sh))
        heavy[h] = uh
    fall = contrast[0.0][0] - contrast[2.0][0]
    assert fall > 4 * math.hypot(contrast[0.0][1], contrast[2.0][1])
    assert heavy[2.0] < 0.5 * heavy[0.0]


def test_rate_bound_paths_are_the_parameters_the_bound_reads() -> None:
    """RATE_BOUND_PATHS (what the batch report warns about) lists exactly the scenario parameters that move M:
    each number of the behaviour, the store's seasonality and every segment's numbers, changed in turn."""
    import fnmatch

    from lab.population.customers import SegmentTable

    sc = load_scenario(ROOT / "scenarios" / "classroom.yaml").scenario

    def bound(s) -> float:
        return bh.rate_bound(s.behaviour, s.store.seasonality, SegmentTable.from_scenario(s))

    def moved(v: object) -> object:
        if isinstance(v, bool):
            return not v
        return v * 0.8 if v else 0.05

    m0 = bound(sc)
    changed = {}
    for f in dataclasses.fields(sc.behaviour):
        v = getattr(sc.behaviour, f.name)
        if isinstance(v, (bool, int, float)):
            other = dataclasses.replace(sc, behaviour=dataclasses.replace(sc.behaviour, **{f.name: moved(v)}))
            changed[f"behaviour.{f.name}"] = bound(other) != m0
    store = dataclasses.replace(sc.store, seasonality=0.2)
    changed["store.seasonality"] = bound(dataclasses.replace(sc, store=store)) != m0
    segs = sc.population.segments
    for f in dataclasses.fields(next(iter(segs.values()))):
        if not all(isinstance(getattr(g, f.name), (int, float)) and not isinstance(getattr(g, f.name), bool)
                   for g in segs.values()):
            continue
        every = {k: dataclasses.replace(g, **{f.name: moved(getattr(g, f.name))}) for k, g in segs.items()}
        other = dataclasses.replace(sc, population=dataclasses.replace(sc.population, segments=every))
        changed[f"population.segments.bargain_hunters.{f.name}"] = bound(other) != m0
    listed = {path: any(fnmatch.fnmatchcase(path, p) for p in bh.RATE_BOUND_PATHS) for path in changed}
    assert changed == listed
    assert sum(changed.values()) == len(bh.RATE_BOUND_PATHS)  # (each entry of the list was exercised)
