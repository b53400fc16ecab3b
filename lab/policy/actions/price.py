"""Actions on what a customer pays: discount (this purchase) and voucher (the next one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lab.policy import model as m
from lab.policy.actions.base import ActionHandler, CheckContext, Firing, Phrases, Problem, Valuation, register
from lab.policy.actions.points import check_trigger


def discount_wanted(amount: np.ndarray, percent: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Dollars off a purchase a discount asks for, before it meets what the purchase can take.

    `percent` is clipped to 0-100 and `fixed` to at least 0 (the action's expressions as evaluated)."""
    return amount * (np.clip(percent, 0, 100) / 100.0) + np.maximum(fixed, 0)


class DiscountHandler(ActionHandler):
    model = m.Discount
    stacks = True
    expressions = ("percent", "fixed")
    only_on = "purchase"
    only_on_reason = ("'{tag}' changes the price of a purchase, so it only works on 'purchase' rules, not '{trigger}'; "
                      "use a voucher for a discount on the next purchase")
    discount_source = True

    def check(self, act: m.Discount, ctx: CheckContext) -> list[Problem]:
        return check_trigger(self, ctx)

    def value(self, act: m.Discount, v: Valuation) -> np.ndarray:
        return np.minimum(v.amount, discount_wanted(v.amount, v.number("percent"), v.number("fixed")))

    def apply(self, act: m.Discount, f: Firing) -> None:
        amount, sub, eff = f.amount[f.sub], f.sub, f.eff
        d = np.minimum(f.room(), discount_wanted(amount, f.number("percent"), f.number("fixed")))
        eff.discount[sub] += d
        eff.delight[sub] += d
        f.count("discounts", d)
        f.spend("rule_discounts", d)

    def words(self, act: m.Discount, policy: m.Policy, say: Phrases) -> str:
        parts = []
        if not say.zero(act.percent):
            parts.append(say.amount(act.percent, "percent", unit="%"))
        if not say.zero(act.fixed):
            parts.append(say.amount(act.fixed, "dollars", money=True))
        if not parts:
            return "a discount of nothing (neither percent nor fixed is set)"
        return f"take {' plus '.join(parts)} off this purchase (never more than the purchase)"


class VoucherHandler(ActionHandler):
    model = m.Voucher
    stacks = True
    expressions = ("value",)
    story_events = ("voucher",)

    def value(self, act: m.Voucher, v: Valuation) -> np.ndarray:
        return np.maximum(v.number("value"), 0)

    def apply(self, act: m.Voucher, f: Firing) -> None:
        rt, who, day = f.rt, f.who, f.day
        v = np.maximum(f.number("value"), 0.0)
        rt.voucher[who] = np.maximum(rt.voucher_kept(who, day), v)
        rt.voucher_until[who] = day + act.valid_days
        f.count("vouchers_issued", v)
        f.spend("vouchers", v)  # at face value when issued, as value() prices it for budgets

    def words(self, act: m.Voucher, policy: m.Policy, say: Phrases) -> str:
        return (f"send a voucher for {say.amount(act.value, 'dollars', money=True)} off the next purchase, "
                f"valid for {say.num(act.valid_days)} days")

    def story(self, e: Mapping[str, Any], say: Phrases) -> str:
        worth, until = say.money(float(e.get("amount", 0.0))), float(e.get("until", 0.0))
        return f"received a {worth} voucher, valid until day {until:.0f}"


for _h in (DiscountHandler(), VoucherHandler()):
    register(_h)
