"""Actions on a member's standing: set_tier (their tier) and grant_credit (a credit line's limit)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lab.errors import suggest
from lab.policy import model as m
from lab.policy.actions.base import ActionHandler, CheckContext, Firing, Phrases, Problem, register


class SetTierHandler(ActionHandler):
    model = m.SetTier

    def check(self, act: m.SetTier, ctx: CheckContext) -> list[Problem]:
        tiers = tuple(ctx.policy.tiers.levels) if ctx.policy.tiers else ()
        out: list[Problem] = []
        if not tiers:
            out.append(((), "set_tier needs tiers; declare 'tiers:' first"))
        elif act.tier is not None and act.tier not in tiers:
            out.append((("tier",), f"unknown tier '{act.tier}'" + suggest(act.tier, tiers)))
        if act.tier is None and act.by == 0:
            out.append(((), "set_tier needs 'tier: <name>' or 'by: <levels>'"))
        return out

    def apply(self, act: m.SetTier, f: Firing) -> None:
        rt, who = f.rt, f.who
        if act.tier is not None:
            rt.tier[who] = rt.tier_names.index(act.tier)
        if act.by:
            rt.tier[who] = np.clip(rt.tier[who] + act.by, 0, len(rt.tier_names) - 1)

    def words(self, act: m.SetTier, policy: m.Policy, say: Phrases) -> str:
        parts = []
        if act.tier is not None:
            parts.append(f"set the customer's tier to '{act.tier}'")
        if act.by:
            parts.append(f"move the customer's tier {'up' if act.by > 0 else 'down'} {say.num(abs(act.by))} "
                         f"level{'s' if abs(act.by) != 1 else ''} (within the tiers there are)")
        return ", then ".join(parts) or "leave the tier as it is (neither tier nor by is set)"


class GrantCreditHandler(ActionHandler):
    model = m.GrantCredit
    expressions = ("limit", "raise_by")
    story_events = ("credit_limit",)

    def check(self, act: m.GrantCredit, ctx: CheckContext) -> list[Problem]:
        lines = tuple(ctx.policy.credit)
        if act.line in lines:
            return []
        return [(("line",), f"unknown credit line '{act.line}'"
                 + (suggest(act.line, lines) if lines else "; declare it under 'credit:' first"))]

    def apply(self, act: m.GrantCredit, f: Firing) -> None:
        f.rt.credit[act.line].raise_limit(f.who, f.number("limit"), f.number("raise_by"))

    def words(self, act: m.GrantCredit, policy: m.Policy, say: Phrases) -> str:
        parts = []
        if not say.zero(act.limit):
            parts.append(f"the limit becomes at least {say.amount(act.limit, 'dollars', money=True)}")
        if not say.zero(act.raise_by):
            rise = say.amount(act.raise_by, 'dollars', money=True)
            parts.append(f"{'then ' if parts else ''}the limit rises by {rise}")
        what = ", ".join(parts) or "no change (neither limit nor raise_by is set)"
        return (f"open or raise the '{act.line}' credit line: {what} "
                "(a limit is never lowered; closed lines stay closed)")

    def story(self, e: Mapping[str, Any], say: Phrases) -> str:
        return (f"credit limit on {e.get('line', 'the line')} raised by {say.money(float(e.get('amount', 0.0)))} "
                f"to {say.money(e.get('limit', 0.0))}")


for _h in (SetTierHandler(), GrantCreditHandler()):
    register(_h)
