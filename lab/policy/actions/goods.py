"""Actions that hand customers something: a free item, a trial of a category, a targeted offer.

What is handed out is recorded as a typed :class:`~lab.policy.effects.Given`
record; the engines book its cost and act on it (delight, adoption, response).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lab.policy import model as m
from lab.policy.actions.base import ActionHandler, CheckContext, Firing, Phrases, Problem, Valuation, register
from lab.policy.actions.points import check_category


class FreeItemHandler(ActionHandler):
    model = m.FreeItem
    stacks = True
    category_fields = ("category",)
    story_events = ("free_item",)

    def check(self, act: m.FreeItem, ctx: CheckContext) -> list[Problem]:
        return check_category("category", act.category, ctx)

    def value(self, act: m.FreeItem, v: Valuation) -> np.ndarray:
        return v.rt.price(act.category, v.idx, v.env)

    def apply(self, act: m.FreeItem, f: Firing) -> None:
        rt = f.rt
        codes = rt.category_codes(act.category, f.idx, f.env)[f.sub]
        f.eff.give("free_item", f.who, codes)
        retail = np.asarray(rt.world.prices)[codes]
        f.eff.delight[f.sub] += retail
        f.count("free_item_retail", retail)
        f.spend("reward_goods", np.asarray(rt.world.unit_costs)[codes])

    def words(self, act: m.FreeItem, policy: m.Policy, say: Phrases) -> str:
        return f"give a free item from {say.category(act.category)}"

    def story(self, e: Mapping[str, Any], say: Phrases) -> str:
        return f"free {e.get('category', 'item')} (worth {say.money(float(e.get('amount', 0.0)))})"


class TrialHandler(ActionHandler):
    model = m.Trial
    stacks = True
    category_fields = ("category",)
    story_events = ("trial",)

    def check(self, act: m.Trial, ctx: CheckContext) -> list[Problem]:
        return check_category("category", act.category, ctx)

    def value(self, act: m.Trial, v: Valuation) -> np.ndarray:
        return v.rt.price(act.category, v.idx, v.env)

    def apply(self, act: m.Trial, f: Firing) -> None:
        codes = f.rt.category_codes(act.category, f.idx, f.env)[f.sub]
        f.eff.give("trial", f.who, codes)
        f.spend("reward_goods", np.asarray(f.rt.world.unit_costs)[codes])

    def words(self, act: m.Trial, policy: m.Policy, say: Phrases) -> str:
        return f"bundle a free trial of {say.category(act.category)}"

    def story(self, e: Mapping[str, Any], say: Phrases) -> str:
        return f"free trial of {e.get('category', 'a category')} (worth {say.money(float(e.get('amount', 0.0)))})"


class OfferHandler(ActionHandler):
    model = m.Offer
    story_events = ("offer",)

    def value(self, act: m.Offer, v: Valuation) -> float:
        return act.cost_per_contact

    def apply(self, act: m.Offer, f: Firing) -> None:
        who, acc = f.who, f.rt.accounts
        f.eff.give("offer", who, offer=act)
        acc.offers_sent += int(who.size)
        c = act.cost_per_contact * who.size
        acc.offers_cost += c
        f.spend("offers", c)

    def words(self, act: m.Offer, policy: m.Policy, say: Phrases) -> str:
        uplift = f"buy {say.percent(act.frequency_uplift)} more often"
        if act.basket_uplift > 0:
            uplift += f" and spend {say.percent(act.basket_uplift)} more per basket"
        return (f"send a targeted offer ({say.money(act.cost_per_contact)} per customer contacted; "
                f"{say.percent(act.response)} respond; responders {uplift} for {say.num(act.days)} days)")

    def story(self, e: Mapping[str, Any], say: Phrases) -> str:
        reply = f"responded: buys more for {e.get('days', '?')} days" if e.get("responded") else "no response"
        return f"received an offer ({reply})"


for _h in (FreeItemHandler(), TrialHandler(), OfferHandler()):
    register(_h)
