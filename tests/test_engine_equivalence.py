"""The vectorised engine against the reference engine (one SimPy process per customer).

Two checks, both through the engines' public interface (constructor, run, RawRun):

1. Same distribution. With the full behavioural model on, R replications of
   both engines (seed 7, addresses 0..R-1) give, for each key outcome, two
   samples of R numbers. The difference of the means must be consistent with 0:
   - Welch: the two samples are treated as independent (t-interval with
     Welch-Satterthwaite degrees of freedom). Replication k of both engines
     shares its random streams, so the samples are positively correlated and
     Welch's standard error over-states the true one: this check is
     conservative and catches only gross departures.
   - Paired: the same replication of both engines is one pair (common random
     numbers); the t-interval of the mean paired difference uses the
     standard error of the differences, which is what common random numbers
     make small. This is the sharp check.
   Each test compares k outcomes in both ways; every interval is at level
   1 - 0.01/(2k) (Bonferroni), so a test's family-wise false-alarm
   probability is at most 1%. The seeds are fixed: the verdict is
   reproducible, and no tolerance was tuned to the seed.

2. Same individual stories. With behaviour switched off the model has no
   feedback between customers, so counter-based streams must give every
   customer the same history in both engines: see
   `test_same_story_for_every_customer_when_behaviour_is_off` for exactly
   what is asserted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lab.engine.reference import STORY_KINDS, ReferenceSimulation
from lab.engine.options import RunOptions
from lab.engine.record import RawRun
from lab.engine.simulate import Simulation
from lab.report.story import format_story
from lab.errors import LabError
from lab.metrics.outcomes import outcomes

ROOT = Path(__file__).resolve().parents[1]
FAMILY_ALPHA = 0.01
R = 10
SEED = 7

# A programme that exercises most of the engine: quick expiry, tiers, campaigns with offers,
# birthday vouchers, trials, complaint rules, partial participation.
PROGRAMME = """
name: programme
description: Quick-expiring points, two tiers, a monthly win-back offer, birthday vouchers, trials.
participation: 0.8
cost_per_member_per_year: 1.0
points:
  points: {value: 0.01, expiry_days: 60, lot_days: 7}
tiers:
  metric: spend
  window_days: 90
  review_days: 30
  levels:
    basic: {}
    silver: {qualify: 150, earn_multiplier: 2, discount_percent: 5}
rules:
  - id: earn
    on: purchase
    do: [{award: {ledger: points, amount: "floor(purchase.amount)"}}]
  - id: redeem
    on: purchase
    when: "customer.points['points'] >= 200"
    do: [{redeem: {ledger: points, cost: 200, discount: 2}}]
  - id: winback
    on: {schedule: {every: month, day: 10}}
    when: "days_since(customer.last_purchase) > 20"
    do: [{offer: {cost_per_contact: 0.5, response: 0.3, frequency_uplift: 0.5, days: 20}}]
  - id: birthday
    on: birthday
    do: [{voucher: {value: "5", valid_days: 30}}]
  - id: widen
    on: purchase
    when: "purchase.number == 3"
    do: [{trial: {category: new}}]
  - id: sorry
    on: {service_contact: {kind: complaint}}
    do: [{award: {ledger: points, amount: "100"}}]
"""

# Used when policies/credit.yaml does not exist: a store card with interest, fees and write-offs.
CREDIT = """
name: credit
description: A store card with a $300 limit, 24% APR and a late fee; regular buyers get $200 more.
cost_per_member_per_year: 2.0
credit:
  card: {limit: 300, apr: 0.24, statement_days: 30, min_payment: 10, min_payment_percent: 0.05,
         late_fee: 15, delinquent_after_missed: 2, write_off_after_days: 90}
rules:
  - id: raise
    on: purchase
    when: "customer.purchases >= 3"
    cap: {per: ever, times: 1}
    do: [{grant_credit: {line: card, raise_by: "200"}}]
"""


def _key_outcomes(raw: RawRun) -> dict[str, float]:
    out = outcomes(raw.record)
    rt = raw.runtime
    key = {k: out[k] for k in ("purchases", "revenue", "active_customers", "repeat_purchase_rate", "acquired")}
    if rt.points:
        key["points_redeemed"] = float(sum(b.redeemed.sum() for b in rt.points.values()))
        key["points_expired"] = float(sum(b.expired.sum() for b in rt.points.values()))
        key["points_liability"] = out["points_liability"]
    if rt.credit:
        key["credit_charged"] = float(sum(b.charged.sum() for b in rt.credit.values()))
        key["credit_outstanding"] = out["credit_outstanding"]
        key["bad_debt"] = out["bad_debt"]
    return key


def _interval_misses_zero(diff: float, se: float, df: float, level: float) -> bool:
    """Does the t-interval diff +- t*se at this level exclude 0? (A zero SE means both engines agree exactly.)"""
    if se == 0.0:
        return abs(diff) > 1e-9 * max(1.0, abs(diff))
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return abs(diff) > half


def _compare(scenario, policy) -> list[str]:
    """Run both engines R times and return the outcomes whose difference of means is not consistent with 0."""
    vec: dict[str, list[float]] = {}
    ref: dict[str, list[float]] = {}
    for k in range(R):
        opts = RunOptions(seed=SEED, address=(k,))
        for store, engine in ((vec, Simulation(scenario, policy, opts)),
                              (ref, ReferenceSimulation(scenario, policy, opts, follow=()))):
            for name, value in _key_outcomes(engine.run()).items():
                store.setdefault(name, []).append(value)
    level = 1 - FAMILY_ALPHA / (2 * len(vec))
    problems = []
    for name in vec:
        a, b = np.array(vec[name]), np.array(ref[name])
        va, vb = a.var(ddof=1) / R, b.var(ddof=1) / R
        se_w = float(np.sqrt(va + vb))
        df_w = (va + vb) ** 2 / (va**2 / (R - 1) + vb**2 / (R - 1)) if se_w > 0 else R - 1
        d = a - b
        se_p = float(d.std(ddof=1) / np.sqrt(R))
        if _interval_misses_zero(float(d.mean()), se_w, df_w, level):
            problems.append(f"{name}: Welch: vectorised {a.mean():.4g} vs reference {b.mean():.4g} (se {se_w:.3g})")
        if _interval_misses_zero(float(d.mean()), se_p, R - 1, level):
            problems.append(f"{name}: paired: mean difference {d.mean():.4g} (se {se_p:.3g})")
    return problems


@pytest.fixture
def world(small_scenario):
    """The classroom over 200 days with 300 customers and the full behavioural model."""
    return small_scenario(days=200)


def test_same_distribution_without_programme(world, classroom) -> None:
    problems = _compare(world, classroom.policies["none"])
    assert not problems, "\n".join(problems)


def test_same_distribution_with_points(world, policy_file) -> None:
    problems = _compare(world, policy_file("points", world))
    assert not problems, "\n".join(problems)


def test_same_distribution_with_a_rich_programme(world, policy_from_yaml) -> None:
    problems = _compare(world, policy_from_yaml(PROGRAMME, world))
    assert not problems, "\n".join(problems)


def test_same_distribution_with_credit(world, policy_file, policy_from_yaml) -> None:
    policy = (policy_file("credit", world) if (ROOT / "policies" / "credit.yaml").is_file()
              else policy_from_yaml(CREDIT, world))
    problems = _compare(world, policy)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- individual stories
def _histories(raw: RawRun) -> dict[int, np.ndarray]:
    """Each customer's purchases as rows (time, amount, category, discount, credit), in time order."""
    tx = raw.transactions
    assert tx is not None
    order = np.lexsort((tx["time"], tx["customer_id"]))
    rows = np.column_stack([tx["time"], tx["amount"], tx["category"].astype(float), tx["discount"],
                            tx["credit"]])[order]
    ids = tx["customer_id"][order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    return {int(ids[s]): part for s, part in zip(starts, np.split(rows, starts[1:]))}


@pytest.mark.parametrize("which", ["programme", "credit"])
def test_same_story_for_every_customer_when_behaviour_is_off(which, small_scenario, policy_from_yaml) -> None:
    """With `behaviour.enabled: false` both engines must give every customer the same life. Asserted:

    - the same customers (count, segment, acquisition time bit for bit, referred or not);
    - per customer: the same number of purchases, and purchase times, amounts, categories,
      discounts and credit equal to 1e-9 (relative) -- the same draws through the same arithmetic;
    - the same dropouts at the same times (1e-9 days), the same revenue per customer, the same
      points outstanding / credit owed per customer (1e-9 relative);
    - the same daily purchases and revenue (1e-9 relative) and the same staff and service series.
    Service contacts are not compared one by one: the vectorised engine handles a day's contacts
    after its purchases and skips those of customers who dropped out later that day."""
    scenario = small_scenario(days=200, behaviour__enabled=False)
    policy = policy_from_yaml(PROGRAMME if which == "programme" else CREDIT, scenario)
    opts = RunOptions(seed=SEED, address=(3,), transactions=True)
    vec = Simulation(scenario, policy, opts).run()
    reference = ReferenceSimulation(scenario, policy, opts, follow=[0, 1, 2, 3, 4])
    ref = reference.run()
    cv, cr = vec.customers, ref.customers
    n = cv.n
    assert cr.n == n
    np.testing.assert_array_equal(cv.seg[:n], cr.seg[:n])
    np.testing.assert_array_equal(cv.acquired_at[:n], cr.acquired_at[:n])
    np.testing.assert_array_equal(cv.referred[:n], cr.referred[:n])
    np.testing.assert_array_equal(cv.purchases[:n], cr.purchases[:n])
    np.testing.assert_array_equal(cv.alive[:n], cr.alive[:n])
    np.testing.assert_allclose(cv.dropped_at[:n], cr.dropped_at[:n], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(cv.revenue[:n], cr.revenue[:n], rtol=1e-9)
    hv, hr = _histories(vec), _histories(ref)
    assert hv.keys() == hr.keys()
    for i in hv:
        np.testing.assert_allclose(hv[i], hr[i], rtol=1e-9, atol=1e-9, err_msg=f"customer {i}")
    for name, book in vec.runtime.points.items():
        np.testing.assert_allclose(book.lots[:n].sum(axis=1), ref.runtime.points[name].lots[:n].sum(axis=1), rtol=1e-9)
    for name, book in vec.runtime.credit.items():
        np.testing.assert_allclose(book.owed[:n], ref.runtime.credit[name].owed[:n], rtol=1e-9, atol=1e-9)
    for col in ("purchases", "revenue", "gross_sales", "discounts", "staff_quits", "service_quality", "alive"):
        np.testing.assert_allclose(vec.daily[col], ref.daily[col], rtol=1e-9, atol=1e-9, err_msg=col)
    # the reference's stories tell the same purchases
    for i in range(5):
        story = [e for e in reference.trace(i) if e["kind"] == "purchase"]
        told = np.array([[e["time"], e["amount"], e["discount"]] for e in story]).reshape(-1, 3)
        np.testing.assert_allclose(told, hv[i][:, [0, 1, 3]], rtol=1e-9, atol=1e-9)


def test_story_tells_the_customer_record(small_scenario, policy_from_yaml) -> None:
    """A followed customer's story (and its text) agrees with what the run recorded about them."""
    scenario = small_scenario(population__customers=120, days=150)
    policy = policy_from_yaml(PROGRAMME, scenario)
    follow = list(range(0, 120, 7))
    sim = ReferenceSimulation(scenario, policy, RunOptions(seed=SEED, address=(1,)), follow=follow)
    raw = sim.run()
    c = raw.customers
    for i in follow:
        story = sim.trace(i)
        assert [e["kind"] for e in story][0] == "acquired" and story[-1]["kind"] == "end"
        assert all(e["kind"] in STORY_KINDS for e in story)
        assert all(a["time"] <= b["time"] for a, b in zip(story, story[1:]))
        bought = [e for e in story if e["kind"] == "purchase"]
        assert len(bought) == c.purchases[i]
        assert np.isclose(sum(e["paid"] for e in bought), c.revenue[i], rtol=1e-9)
        drops = [e for e in story if e["kind"] == "dropout"]
        assert len(drops) == (0 if c.alive[i] else 1)
        if drops:
            assert drops[0]["time"] == c.dropped_at[i]
        assert story[-1]["balances"]["points"]["points"] == pytest.approx(raw.runtime.points["points"].lots[i].sum())
        text = format_story(story, i, scenario, policy).splitlines()
        assert len(text) == 2 + (len(story) - 1) + 1
        fate = text[-1]
        assert (f"dropped out on day {c.dropped_at[i]:.2f}" in fate) if drops else ("still a customer" in fate)
        assert f"{int(c.purchases[i])} purchase" in fate
    assert any(not c.alive[i] for i in follow) and any(c.alive[i] for i in follow)
    with pytest.raises(LabError, match="numbered 0 to"):
        sim.trace(c.n + 5)
    with pytest.raises(LabError, match="follow="):
        sim.trace(1)
