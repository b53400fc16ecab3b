"""The rewards customers can see: for each points ledger, how many points one reward takes.

Customers respond to progress towards a reward they can see (the goal gradient, and the hope that keeps
them from leaving part-way), not to the action a policy uses to deliver it. A policy can write the same
reward two ways:

* ``redeem: {ledger: L, cost: N, ...}`` -- the threshold is the action's `cost` (its handler's `goal`);
* a rule whose actions spend the points (``deduct`` from L) and give something of value (``voucher``,
  ``discount``, ``free_item``), with the threshold in its condition (``customer.points['L'] >= N``) or,
  failing that, as the deducted amount when it is a constant number.

Both are read here, once, for the rules engine (lab.policy.runtime: goal progress) and for the warnings
(lab.policy.loader, lab.policy.explain). A ledger whose points are earned but that no rule the lab can
read turns into a reward has no goal: the behaviour model then gives it no response, and `lab validate`
and `lab explain` say so (code ``unseen-reward``) rather than ignoring it silently.

Expressions are read with ``ast.parse`` only (nothing is evaluated); they were already type-checked by
the compiler, so a shape this module does not recognise simply gives no threshold.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from lab.errors import printable
from lab.policy import model as m
from lab.policy.actions import handler_for

#: Actions that give the customer something of value on the firing (what a spent threshold buys).
REWARD_ACTIONS: tuple[type, ...] = (m.Voucher, m.Discount, m.FreeItem)


@dataclass(frozen=True)
class Goal:
    """One reward customers work towards: `cost` points of `ledger`, read from rule `rule` (index `index`)."""

    ledger: str
    cost: float
    rule: str
    index: int
    how: str  # "redeem" or "deduct"


def _points_key(node: ast.AST) -> str | None:
    """The ledger of ``customer.points['L']`` (or None for any other expression)."""
    if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "points"
            and isinstance(node.value.value, ast.Name) and node.value.value.id == "customer"):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
    return None


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _conjuncts(node: ast.AST) -> Iterator[ast.AST]:
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
        for v in node.values:
            yield from _conjuncts(v)
    else:
        yield node


def thresholds(when: str) -> dict[str, float]:
    """Ledger -> the points a condition requires (``customer.points['L'] >= N``, ``> N``, ``N <= ...``), from
    the conjuncts of its top-level ``and``; the largest when one ledger is bounded twice."""
    try:
        tree = ast.parse(str(when), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    out: dict[str, float] = {}
    for c in _conjuncts(tree):
        if not (isinstance(c, ast.Compare) and len(c.ops) == 1):
            continue
        left, op, right = c.left, c.ops[0], c.comparators[0]
        if isinstance(op, (ast.GtE, ast.Gt)):
            ledger, n = _points_key(left), _number(right)
        elif isinstance(op, (ast.LtE, ast.Lt)):
            ledger, n = _points_key(right), _number(left)
        else:
            continue
        if ledger is not None and n is not None and n > 0:
            out[ledger] = max(out.get(ledger, 0.0), n)
    return out


def rule_goals(index: int, rule: m.Rule) -> list[Goal]:
    """The rewards one rule offers: its redeems, and each ledger it deducts from while giving a reward."""
    out = [Goal(g[0], g[1], rule.id, index, "redeem") for a in rule.do if (g := handler_for(a).goal(a)) is not None]
    if not any(isinstance(a, REWARD_ACTIONS) for a in rule.do):
        return out
    bars = thresholds(rule.when)
    for a in rule.do:
        if isinstance(a, m.Deduct):
            cost = bars.get(a.ledger)
            if cost is None:
                cost = _number_text(a.amount)
            if cost is not None and cost > 0:
                out.append(Goal(a.ledger, cost, rule.id, index, "deduct"))
    return out


def _number_text(text: str) -> float | None:
    try:
        return _number(ast.parse(str(text), mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def goals(policy: m.Policy) -> list[Goal]:
    """Every reward of the policy customers can work towards, in rule order."""
    return [g for i, r in enumerate(policy.rules) for g in rule_goals(i, r)]


def goal_costs(policy: m.Policy) -> dict[str, float]:
    """Ledger -> points of its nearest reward (the smallest threshold); 0 for a ledger with no reward in sight."""
    found = goals(policy)
    return {name: min((g.cost for g in found if g.ledger == name), default=0.0) for name in policy.points}


def earned_ledgers(policy: m.Policy) -> dict[str, tuple[int, int]]:
    """Ledger -> (rule index, action index) of the first action that gives customers its points."""
    out: dict[str, tuple[int, int]] = {}
    for i, r in enumerate(policy.rules):
        for j, a in enumerate(r.do):
            if isinstance(a, (m.Award, m.ReferralReward)) and a.ledger in policy.points:
                out.setdefault(a.ledger, (i, j))
    return out


def unseen_rewards(policy: m.Policy) -> list[tuple[str, tuple[int, int]]]:
    """(ledger, where its points are given) for each ledger customers earn but see no reward in."""
    costs = goal_costs(policy)
    return [(name, at) for name, at in earned_ledgers(policy).items() if costs.get(name, 0.0) <= 0]


def unseen_message(ledger: str) -> str:
    """The warning for a ledger with no reward the lab can read."""
    ledger = printable(ledger)
    return (f"customers earn points in ledger '{ledger}' but no rule the lab can read turns them into a reward, so "
            f"the goal gradient and points hope do not act on it (customers respond to progress towards a reward "
            f"they can see); write the reward as 'redeem: {{ledger: {ledger}, cost: N, ...}}', or as a rule with "
            f"\"when: customer.points['{ledger}'] >= N\" that deducts from '{ledger}' and gives a voucher, discount "
            "or free item")
