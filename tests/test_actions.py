"""The action registry: one handler per action of the language, whose value prices what it applies, and the tests
that make a new action bring its companions (a fuzzing strategy, explain words, a docs entry) or fail."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import test_ledgers as fuzz
import test_policy_files as files
from lab.config import Expr
from lab.policy import model as m
from lab.policy.actions import (ActionHandler, Firing, Phrases, Valuation, handler_for, handlers, register, registered,
                                story_handler)
from lab.policy.effects import GIVEN, Effects
from lab.policy.runtime import ACTIONS, PolicyRuntime, compile_policy

ROOT = Path(__file__).resolve().parent.parent
WORLD = fuzz.WORLD


def test_every_action_of_the_language_has_exactly_one_handler():
    registry = handlers()
    assert {h.model for h in registry.values()} == set(m.Action.__args__)
    assert all(tag == h.model.tag for tag, h in registry.items())
    assert set(ACTIONS) == set(registry)
    assert all(handler_for(cls.__new__(cls)) is registry[cls.tag] for cls in m.Action.__args__)


def test_a_second_handler_for_a_tag_is_refused():
    class Another(ActionHandler):
        model = m.Award

    with pytest.raises(ValueError, match="already has a handler"):
        register(Another())
    with pytest.raises(ValueError, match="already registered"):
        with registered(Another()):
            pass


# --------------------------------------------------------------------------- a new action must bring its companions
@dataclass(frozen=True, kw_only=True)
class Cashback:
    """Cash back to the customer's credit card (a test action: what a newcomer might add)."""

    tag: ClassVar[str] = "cashback_to_card"
    line: str = "card"
    percent: float = 1.0


class CashbackHandler(ActionHandler):
    model = Cashback

    def apply(self, act: Cashback, f: Firing) -> None:
        f.spend("rule_discounts", 0.0)


def _words_missing(act: object) -> bool:
    try:
        handler_for(act).words(act, m.Policy(name="x"), None)  # type: ignore[arg-type]
    except NotImplementedError:
        return True
    return False


def test_registering_an_action_without_its_companions_fails_the_coverage_tests():
    """What a newcomer's "cashback to a card" would meet: each coverage check names the new action."""
    reference = (ROOT / "docs" / "POLICIES.md").read_text(encoding="utf-8")
    assert fuzz.strategy_gaps() == [] and files.explain_gaps() == [] and files.reference_gaps(reference) == []
    with registered(CashbackHandler()):
        assert fuzz.strategy_gaps() == ["cashback_to_card"]  # not fuzzed by the ledger properties
        assert files.explain_gaps() == ["cashback_to_card"]  # no example for the explain test
        assert files.reference_gaps(reference) == ["cashback_to_card"]  # not in docs/POLICIES.md
        assert set(VALUE_CASES) != set(handlers())  # no case for the value test
        assert Cashback not in m.Action.__args__  # and the language cannot name it: the union test fails
        assert _words_missing(Cashback())  # no words for explain
        with pytest.raises(AssertionError):
            test_every_action_of_the_language_has_exactly_one_handler()
    assert fuzz.strategy_gaps() == [] and "cashback_to_card" not in handlers()


# --------------------------------------------------------------------------- value prices what apply gives
# per registered action: the action and the trigger it fires on
VALUE_CASES: dict[str, tuple[object, m.Trigger]] = {
    "award": (m.Award(ledger="pts", amount=Expr("7")), m.OnPurchase()),
    "deduct": (m.Deduct(ledger="pts", amount=Expr("3")), m.OnPurchase()),
    "redeem": (m.Redeem(ledger="pts", cost=20, discount=4.0, free_item="shoes", max_times=3), m.OnPurchase()),
    "discount": (m.Discount(percent=Expr("10"), fixed=Expr("2.5")), m.OnPurchase()),
    "voucher": (m.Voucher(value=Expr("6")), m.OnEnrolment()),
    "free_item": (m.FreeItem(category="trousers"), m.OnEnrolment()),
    "trial": (m.Trial(category="shirts"), m.OnEnrolment()),
    "offer": (m.Offer(cost_per_contact=0.7), m.OnEnrolment()),
    "set_tier": (m.SetTier(tier="silver"), m.OnEnrolment()),
    "grant_credit": (m.GrantCredit(line="card", limit=Expr("50")), m.OnEnrolment()),
    "referral_reward": (m.ReferralReward(ledger="pts", referrer=30, referred=10), m.OnReferral()),
}


def test_every_registered_action_has_a_value_case():
    assert set(VALUE_CASES) == set(handlers())


@pytest.mark.parametrize("tag", sorted(VALUE_CASES))
def test_an_actions_value_is_what_applying_it_costs(tag):
    """'best' stacking and budgets price an action with its handler's value: it must be what apply then gives."""
    act, trigger = VALUE_CASES[tag]
    rule = m.Rule(id="r", on=trigger, do=(act,))
    policy = m.Policy(name="v", points={"pts": m.PointsLedger(value=0.02)}, credit={"card": m.CreditLine()},
                      tiers=m.Tiers(levels={"member": m.TierLevel(),
                                            "silver": m.TierLevel(qualify=10, earn_multiplier=2)}),
                      rules=(rule,))
    cp, problems = compile_policy(policy, WORLD)
    assert problems == []
    n = 4
    rt = PolicyRuntime(cp, n)
    idx = np.arange(n)
    rt.enrol(idx)
    rt.tier[:2] = 1  # two silver members: earn multipliers must be priced too
    rt.points["pts"].award(idx, np.array([0.0, 19.9999999999, 45.0, 70.0]), 0.0)
    amount = np.array([80.0, 120.0, 200.0, 15.0])
    v = Valuation(rt, idx, {}, 1.0, amount if trigger.tag == "purchase" else np.zeros(n), cp.rules[0].amounts[0])
    worth = handler_for(act).value(act, v)
    event = {"purchase.amount": amount} if trigger.tag == "purchase" else {}
    partner = idx[::-1].copy() if trigger.tag == "referral" else None
    eff = rt.fire(trigger.tag, idx, 1.0, fuzz.FakeShop(n, WORLD, rt), event, partner=partner)
    spent = rt.accounts.rule_cost["r"]
    if worth is None:
        assert spent == 0.0
        return
    # goods are worth their retail price to the customer, and cost the programme their unit cost
    goods = [g for g in eff.records() if GIVEN[g.kind].goods]
    retail = sum(float(np.asarray(WORLD.prices)[g.codes].sum()) for g in goods)
    unit = sum(g.total(np.asarray(WORLD.unit_costs)) for g in goods)
    assert float(np.sum(np.broadcast_to(worth, (n,)))) == pytest.approx(spent - unit + retail, rel=1e-12)
    assert (eff.rules == 1).all()


def test_redeem_values_a_balance_a_hair_short_as_the_reward_it_buys():
    """The rounding that lets 19.9999999999 points buy a 20-point reward is the same in value and apply (one copy)."""
    act = m.Redeem(ledger="pts", cost=20, discount=4.0)
    policy = m.Policy(name="v", points={"pts": m.PointsLedger()}, rules=(m.Rule(id="r", on=m.OnPurchase(), do=(act,)),))
    cp, _ = compile_policy(policy, WORLD)
    rt = PolicyRuntime(cp, 1)
    rt.enrol(np.array([0]))
    rt.points["pts"].award(np.array([0]), np.array([19.9999999999]), 0.0)
    v = Valuation(rt, np.array([0]), {}, 0.0, np.array([50.0]))
    assert handler_for(act).value(act, v)[0] == 4.0
    eff = rt.fire("purchase", np.array([0]), 0.0, fuzz.FakeShop(1, WORLD, rt), {"purchase.amount": np.array([50.0])})
    assert eff.discount[0] == 4.0 and eff.points_discount[0] == 4.0


# --------------------------------------------------------------------------- typed effects
def test_effects_refuse_an_undeclared_kind_and_list_records_in_booking_order():
    eff = Effects.empty(np.arange(3))
    with pytest.raises(KeyError, match="declare it"):
        eff.give("cashback", np.array([0]))
    offer = m.Offer(cost_per_contact=0.25)
    eff.give("offer", np.array([1, 2]), offer=offer)
    eff.give("trial", np.array([0]), np.array([2]))
    eff.give("free_item", np.array([1]), np.array([0]))
    assert [g.kind for g in eff.records()] == [k for k in GIVEN if k in ("free_item", "trial", "offer")]
    unit = np.array([1.5, 2.0, 4.0])
    assert [g.total(unit) for g in eff.records()] == [1.5, 4.0, 0.5]
    assert eff.offers[0][1] is offer and eff.trials[0][1].tolist() == [2]


def test_every_story_event_has_its_handlers_words():
    say = Phrases(money=lambda x: f"${x:.2f}", points=lambda x: f"{x:g}")
    for h in handlers().values():
        for what in h.story_events:
            assert story_handler(what) is h
            text = h.story({"what": what, "amount": 3.0, "points_spent": 100.0, "category": "shoes", "days": 5,
                            "until": 40.0, "line": "card", "limit": 80.0}, say)
            assert text and "{" not in text
    assert story_handler("no such event") is None
