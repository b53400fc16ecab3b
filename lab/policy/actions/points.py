"""Actions on points ledgers: award, deduct, redeem, referral_reward."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lab.errors import suggest
from lab.policy import model as m
from lab.policy.actions.base import ActionHandler, CheckContext, Firing, Phrases, Problem, Valuation, register


def check_ledger(ledger: str, policy: m.Policy) -> list[Problem]:
    """An action's points ledger must be declared under 'points:'."""
    points, lines = tuple(policy.points), tuple(policy.credit)
    if ledger in points:
        return []
    hint = f" ('{ledger}' is a credit line)" if ledger in lines else suggest(ledger, points)
    if not points:
        hint = "; declare it under 'points:' first"
    return [(("ledger",), f"unknown points ledger '{ledger}'{hint}")]


def check_trigger(h: ActionHandler, ctx: CheckContext) -> list[Problem]:
    """An action restricted to one trigger (`only_on`) must be on a rule with that trigger."""
    if h.only_on is None or ctx.trigger == h.only_on:
        return []
    return [((), h.only_on_reason.format(tag=h.tag, trigger=ctx.trigger))]


def check_category(name: str, cat: str, ctx: CheckContext) -> list[Problem]:
    """A category an action names must be one of the store's (or 'favourite' / 'new')."""
    cats = ctx.categories
    if cats is None or cat in ("favourite", "new") or cat in cats:
        return []
    return [((name,), f"unknown category '{cat}'" + suggest(cat, (*cats, "favourite", "new")))]


def affordable_rewards(balance: np.ndarray, act: m.Redeem) -> np.ndarray:
    """Rewards a redeemable balance buys, at most max_times; a balance a hair below the cost (rounding) buys one."""
    times = np.minimum(np.floor(balance / act.cost + 1e-9), act.max_times)
    return np.where(balance + 1e-9 >= act.cost, np.maximum(times, 1), 0)


class AwardHandler(ActionHandler):
    model = m.Award
    stacks = True
    expressions = ("amount",)

    def check(self, act: m.Award, ctx: CheckContext) -> list[Problem]:
        return check_ledger(act.ledger, ctx.policy)

    def value(self, act: m.Award, v: Valuation) -> np.ndarray:
        return np.maximum(v.number("amount"), 0) * v.earn_multiplier * v.rt.policy.points[act.ledger].value

    def apply(self, act: m.Award, f: Firing) -> None:
        rt, who, r = f.rt, f.who, f.rule
        pts = np.maximum(f.number("amount"), 0.0)
        if rt.policy.tiers:
            pts = pts * rt.earn_multiplier(who)
        if r.rule.cap is not None and r.rule.cap.points is not None:
            row = rt.cap_row[r.index]
            room = np.maximum(r.rule.cap.points - rt.cap_points[row, who], 0.0)
            pts = np.minimum(pts, room)
            rt.cap_points[row, who] += pts
        rt.points[act.ledger].award(who, pts, f.day)
        rt.qualify(who, pts, "points", act.ledger)
        f.spend("points_awarded", pts, scale=rt.policy.points[act.ledger].value)

    def words(self, act: m.Award, policy: m.Policy, say: Phrases) -> str:
        multiplied = " (tier earn multipliers apply)" if policy.tiers and any(
            lvl.earn_multiplier != 1 for lvl in policy.tiers.levels.values()) else ""
        return f"give {say.points_amount(act.amount)} in '{act.ledger}'{multiplied}"


class DeductHandler(ActionHandler):
    model = m.Deduct
    stacks = True
    expressions = ("amount",)

    def check(self, act: m.Deduct, ctx: CheckContext) -> list[Problem]:
        return check_ledger(act.ledger, ctx.policy)

    def apply(self, act: m.Deduct, f: Firing) -> None:
        f.rt.points[act.ledger].take(f.who, f.number("amount"), f.day, how="deducted")

    def words(self, act: m.Deduct, policy: m.Policy, say: Phrases) -> str:
        return f"take {say.amount(act.amount, 'points')} from '{act.ledger}', oldest first and never below zero"


class RedeemHandler(ActionHandler):
    model = m.Redeem
    stacks = True
    category_fields = ("free_item",)
    only_on = "purchase"
    only_on_reason = ("'{tag}' changes the price of a purchase, so it only works on 'purchase' rules, not '{trigger}'; "
                      "use a voucher for a discount on the next purchase")
    story_events = ("redeemed",)

    def check(self, act: m.Redeem, ctx: CheckContext) -> list[Problem]:
        out = check_ledger(act.ledger, ctx.policy) + check_trigger(self, ctx)
        if act.discount == 0 and act.free_item is None:
            out.append(((), "redeem needs a reward: 'discount: <dollars>' or 'free_item: <category>'"))
        if act.free_item is not None:
            out += check_category("free_item", act.free_item, ctx)
        return out

    def goal(self, act: m.Redeem) -> tuple[str, float]:
        return act.ledger, act.cost

    def value(self, act: m.Redeem, v: Valuation) -> np.ndarray:
        times = affordable_rewards(v.rt.points[act.ledger].balance(v.idx, v.day), act)
        per = act.discount + (v.rt.price(act.free_item, v.idx, v.env) if act.free_item else 0.0)
        return times * per

    def apply(self, act: m.Redeem, f: Firing) -> None:
        rt, who, sub, eff = f.rt, f.who, f.sub, f.eff
        book = rt.points[act.ledger]
        times = affordable_rewards(book.balance(who, f.day), act)
        if act.discount > 0 and not act.free_item:
            # never trade points for more discount than the purchase can take: wait for a bigger basket
            times = np.minimum(times, np.floor(f.room() / act.discount + 1e-9))
        got = book.take(who, times * act.cost, f.day, how="redeemed")
        times = np.floor(got / act.cost + 1e-9)
        value_pts = got * rt.policy.points[act.ledger].value
        f.count("points_redeemed_value", value_pts)
        rt.rewards[who] += times
        if act.discount > 0:
            d = np.minimum(times * act.discount, f.room())
            eff.discount[sub] += d
            eff.points_discount[sub] += d
            eff.delight[sub] += d
            f.spend("points_discounts", d)
        if act.free_item:
            has = times > 0
            codes = rt.category_codes(act.free_item, f.idx, f.env)[sub][has]
            reps = times[has].astype(np.int64)
            eff.give("free_item", np.repeat(who[has], reps), np.repeat(codes, reps))
            retail = np.asarray(rt.world.prices)[codes] * reps
            eff.delight[sub[has]] += retail
            f.count("free_item_retail", retail, rows=who[has])
            f.spend("reward_goods", np.asarray(rt.world.unit_costs)[codes] * reps, rows=who[has])

    def words(self, act: m.Redeem, policy: m.Policy, say: Phrases) -> str:
        reward = []
        if act.discount > 0:
            reward.append(f"{say.money(act.discount)} off this purchase")
        if act.free_item is not None:
            reward.append(f"a free item from {say.category(act.free_item)}")
        what = " and ".join(reward) or "nothing (no reward declared)"
        many = f", up to {say.times(act.max_times)} on one purchase" if act.max_times > 1 else ""
        return (f"once the customer holds {say.num(act.cost)} redeemable '{act.ledger}' points, "
                f"trade them for {what}{many}")

    def story(self, e: Mapping[str, Any], say: Phrases) -> str:
        amount = float(e.get("amount", 0.0))
        text = f"redeemed {say.points(e.get('points_spent', 0.0))} {e.get('ledger', 'points')}"
        return text + (f" for {say.money(amount)} off" if amount > 0 else "")


class ReferralRewardHandler(ActionHandler):
    model = m.ReferralReward
    only_on = "referral"
    only_on_reason = "'{tag}' only works on 'referral' rules, not '{trigger}'"

    def check(self, act: m.ReferralReward, ctx: CheckContext) -> list[Problem]:
        return check_ledger(act.ledger, ctx.policy) + check_trigger(self, ctx)

    def value(self, act: m.ReferralReward, v: Valuation) -> float:
        return (act.referrer + act.referred) * v.rt.policy.points[act.ledger].value

    def apply(self, act: m.ReferralReward, f: Firing) -> None:
        book = f.rt.points[act.ledger]
        value = f.rt.policy.points[act.ledger].value
        k = len(f.sub)
        if act.referrer > 0:
            book.award(f.who, np.full(k, act.referrer), f.day)
            f.spend("points_awarded", act.referrer * value * k)
        if act.referred > 0 and f.partner is not None:
            book.award(f.partner[f.sub], np.full(k, act.referred), f.day)
            f.spend("points_awarded", act.referred * value * k)

    def words(self, act: m.ReferralReward, policy: m.Policy, say: Phrases) -> str:
        return (f"give the referrer {say.num(act.referrer)} points and the new customer {say.num(act.referred)} points "
                f"in '{act.ledger}'")


for _h in (AwardHandler(), DeductHandler(), RedeemHandler(), ReferralRewardHandler()):
    register(_h)
