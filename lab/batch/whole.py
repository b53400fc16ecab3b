"""Which policy parameters count whole things, so a batch factor on them must take whole numbers.

A field's declared type says ``int`` for a count the model stores as one (a cap's ``times``), but some
whole quantities are written as numbers of a points ledger: a stamp card's length is the ``cost`` of its
redeem action, in stamps, and a ledger that only ever receives whole points never holds 7.05 of them. A
factor over such a parameter sampled as 7.05 would silently mean 8 (the balance first reaches it at 8).
This module says, for a factor's target, why its values must be whole (or None when they need not be):

- the ``cost`` of a redeem action on a ledger whose points are whole \
(every award to it, and every referral reward, is a whole number, and no tier multiplies
  points by a fraction);
- an expression template that compares a count with ``{value}``: a field whose unit counts things
  (purchases, categories, customers, rewards; lab.policy.fields), or a whole ledger's points.
"""

from __future__ import annotations

import ast
import re

from lab.batch.overrides import Target, get
from lab.policy import model as m
from lab.policy.fields import FIELDS

__all__ = ["whole_ledgers", "whole_reason"]

#: Units of fields that count things (only whole values occur).
COUNT_UNITS = frozenset({"purchases", "categories", "customers", "rewards"})
_COUNTS = tuple(f.name for f in FIELDS if f.unit in COUNT_UNITS)
_POINT_FIELDS = tuple(f.name for f in FIELDS if f.unit == "points")
_WHOLE_CALLS = frozenset({"floor", "ceil", "round"})
_WHOLE_OF_WHOLES = frozenset({"min", "max", "if_else", "abs"})


def _whole_expr(node: ast.AST) -> bool:
    """Whether an expression's value is a whole number whatever the customer (conservatively)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int) and not isinstance(node.value, bool)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in _WHOLE_CALLS and len(node.args) == 1:
            return True
        if node.func.id in _WHOLE_OF_WHOLES:
            args = node.args[1:] if node.func.id == "if_else" else node.args
            return bool(args) and all(_whole_expr(a) for a in args)
        return False
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        return _whole_expr(node.left) and _whole_expr(node.right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _whole_expr(node.operand)
    return False


def _whole_text(text: str) -> bool:
    try:
        return _whole_expr(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False


def _is_whole(v: float | None) -> bool:
    return v is None or float(v).is_integer()


def whole_ledgers(policy: m.Policy) -> frozenset[str]:
    """The points ledgers of `policy` that only ever hold whole points."""
    if policy.tiers is not None and not all(float(t.earn_multiplier).is_integer()
                                            for t in policy.tiers.levels.values()):
        return frozenset()
    whole = set(policy.points)
    for rule in policy.rules:
        for act in rule.do:
            if isinstance(act, m.Award) and not _whole_text(str(getattr(act.amount, "text", act.amount))):
                whole.discard(act.ledger)
            elif isinstance(act, m.ReferralReward) and not (_is_whole(act.referrer) and _is_whole(act.referred)):
                whole.discard(act.ledger)
            if rule.cap is not None and not _is_whole(rule.cap.points) and isinstance(act, m.Award):
                whole.discard(act.ledger)
    return frozenset(whole)


def _compares_with_value(template: str, fields: tuple[str, ...], key: str | None = None) -> str | None:
    """The field of `fields` that `template` compares with {value}, or None."""
    for name in fields:
        sub = rf"\[\s*['\"]{re.escape(key)}['\"]\s*\]" if key is not None else r"(?:\[\s*['\"][^'\"]*['\"]\s*\])?"
        lhs = rf"{re.escape(name)}{sub}"
        op = r"\s*(?:>=|<=|==|!=|>|<)\s*"
        if re.search(lhs + op + r"\{value\}", template) or re.search(r"\{value\}" + op + lhs, template):
            return name
    return None


def whole_reason(target: Target, policy: m.Policy | None, template: str | None) -> str | None:
    """Why the factor on `target` must take whole numbers (words for a message), or None if it need not."""
    if policy is None:
        return None
    ledgers = whole_ledgers(policy)
    if template is not None:
        counted = _compares_with_value(template, _COUNTS)
        if counted is not None:
            return f"the template compares {counted}, a count, with {{value}}"
        for ledger in sorted(ledgers):
            counted = _compares_with_value(template, _POINT_FIELDS, ledger)
            if counted is not None:
                return (f"the template compares the points of '{ledger}' with {{value}}, and that ledger only "
                        "ever holds whole points")
        return None
    if target.leaf.kind != "float" or not target.steps:
        return None
    last = target.steps[-1]
    try:
        owner = get(policy, target.steps[:-1])
    except (AttributeError, KeyError, IndexError, TypeError):
        return None
    if isinstance(owner, m.Redeem) and last.name == "cost" and owner.ledger in ledgers:
        return f"the '{owner.ledger}' ledger only ever holds whole points: every award to it is a whole number"
    return None
