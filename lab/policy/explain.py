"""A policy in plain English, for the students and managers who read rather than write YAML.

`explain` walks every construct of a :class:`~lab.policy.model.Policy` -- who
joins, the running cost, points ledgers (value, lots, expiry, pending days),
credit lines, tiers, each rule (trigger, condition, actions, group, cap,
budget), stacking and the global budget -- and says what it does. The output
is deterministic (same policy, same text) so it can be diffed and tested.

Expressions are always quoted verbatim; common simple forms are also put
into words ("2 points per whole dollar", "the customer's purchases so far is
at least 3"). Putting an expression into words only *reads* its syntax tree
(``ast.parse``, as the expression compiler does); nothing is ever evaluated,
and text beyond the compiler's own limits is only quoted. Each action's words
are its handler's (lab.policy.actions), told with the formats defined here.
"""

from __future__ import annotations

import ast
import math
import warnings

from lab.policy import fields, goals
from lab.policy import model as m
from lab.policy.actions import Phrases, handler_for
from lab.policy.expr import FUNCTIONS, MAX_DEPTH, MAX_NODES, MAX_TEXT_LENGTH
from lab.policy.runtime import ENGINE_FIELDS, RUNTIME_FIELDS

__all__ = ["explain"]

# Noun phrases for the expression fields (declared with each field in lab.policy.fields).
_NOUNS: dict[str, str] = fields.nouns()
_FLAGS = ("customer.member", "customer.referred", "contact.complaint", "contact.resolved")

_COMPARE_WORDS: dict[type, str] = {
    ast.GtE: "is at least", ast.Gt: "is more than", ast.LtE: "is at most", ast.Lt: "is less than",
    ast.Eq: "is", ast.NotEq: "is not", ast.In: "is one of", ast.NotIn: "is none of",
}
_ARITH_WORDS: dict[type, str] = {ast.Add: "plus", ast.Sub: "minus", ast.Mult: "times", ast.Div: "divided by"}
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_PERIOD_WORDS = {"day": "per day", "week": "per week", "month": "per month (30 days)", "year": "per year (365 days)",
                 "ever": "ever"}
_STACK_WORDS = {
    "all": "every matching rule fires",
    "first": "only the first matching rule (in file order) fires for each customer",
    "best": "only the matching rule worth the most to the customer fires",
}


def explain(policy: m.Policy) -> str:
    """Describe a policy in plain English: every ledger, credit line, tier, rule and limit it declares."""
    out: list[str] = [f"Policy '{policy.name}'" + (f": {policy.description}" if policy.description else "")]
    if policy.is_baseline:
        out.append("")
        out.append("No loyalty programme: nothing to join, nothing to earn. "
                   "Customers buy, or stop buying, on their own; other policies are measured against this one.")
        return "\n".join(out) + "\n"
    out += ["", "Who takes part"]
    out.append(f"  {_percent(policy.participation)} of customers join the programme"
               + (" (everyone)." if policy.participation >= 1 else "."))
    if policy.cost_per_member_per_year > 0:
        out.append(f"  Running the programme costs {_money(policy.cost_per_member_per_year)} per member per year "
                   "(cards, systems, staff time).")
    else:
        out.append("  The programme has no running cost per member.")
    if policy.points:
        out += ["", "Points"]
        for name, led in policy.points.items():
            out += _points_lines(name, led)
        out += ["", "What customers work towards (the goal gradient and points hope respond to it)"]
        out += _goal_lines(policy)
    if policy.credit:
        out += ["", "Store credit"]
        for name, line in policy.credit.items():
            out += _credit_lines(name, line)
    if policy.tiers is not None:
        out += ["", "Tiers"]
        out += _tier_lines(policy.tiers)
    if policy.rules:
        out += ["", "Rules (checked in this order for each event)"]
        for i, rule in enumerate(policy.rules, 1):
            out += _rule_lines(i, rule, policy)
    groups = list(dict.fromkeys(r.group for r in policy.rules if r.group))
    if groups or policy.stacking:
        out += ["", "Rule groups"]
        for g in groups:
            mode = policy.stacking.get(g, "all")
            members = ", ".join(f"'{r.id}'" for r in policy.rules if r.group == g)
            default = "" if g in policy.stacking else " (the default, 'all')"
            out.append(f"  Group '{g}' ({members}): {_STACK_WORDS[mode]}{default}.")
    for g in policy.stacking:
        if g not in groups:
            out.append(f"  Stacking names group '{g}', but no rule is in it.")
    out += ["", "Budget"]
    if policy.budget is not None:
        b = policy.budget
        per = "in all" if b.per == "ever" else _PERIOD_WORDS[b.per]
        until = "for good" if b.per == "ever" else "until the budget resets"
        out.append(f"  All rules together may spend {_money(b.amount)} on rewards {per}; once it is spent, "
                   f"every rule with a cost stops {until}.")
    else:
        out.append("  No global budget: rewards are paid for as long as customers earn them.")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- ledgers, credit, tiers
def _points_lines(name: str, led: m.PointsLedger) -> list[str]:
    w = led.lot_days
    lines = [f"  Ledger '{name}': each point is worth {_money(led.value)} to the customer (this prices the liability)."]
    lot = "day" if w == 1 else f"{_num(w)}-day window"
    lines.append(f"    Points earned in the same {lot} form one lot; points are spent oldest lot first.")
    if led.expiry_days is None:
        lines.append("    Points never expire.")
    else:
        e = led.expiry_days
        if w == 1:
            lines.append(f"    Points expire {_num(e)} days after the day they are earned.")
        else:
            lines.append(f"    A lot expires {_num(e)} days after its window closes (at the next lot boundary), "
                         f"so points last between {_num(e)} and {_num(e + w)} days.")
    if led.pending_days > 0:
        p = led.pending_days
        lines.append(f"    Points are pending for {_num(p)} days after their lot's window closes "
                     f"(between {_num(p)} and {_num(p + w)} days after earning) before they can be redeemed.")
    else:
        lines.append("    Points can be redeemed as soon as they are earned.")
    return lines


def _goal_lines(policy: m.Policy) -> list[str]:
    """The reward customers see in each ledger (lab.policy.goals), or the warning that they see none."""
    found = goals.goals(policy)
    costs = goals.goal_costs(policy)
    lines = []
    for name in policy.points:
        mine = [g for g in found if g.ledger == name]
        if mine:
            how = "; ".join(f"rule '{g.rule}' ({'redeem' if g.how == 'redeem' else 'deduct and reward'}, "
                            f"{_num(g.cost)} points)" for g in mine)
            lines.append(f"  Ledger '{name}': the nearest reward is {_num(costs[name])} points away from an empty "
                         f"balance; progress towards it is the balance over {_num(costs[name])} ({how}).")
        elif name in goals.earned_ledgers(policy):
            lines.append(f"  Warning (unseen-reward): {goals.unseen_message(name)}.")
        else:
            lines.append(f"  Ledger '{name}': no rule gives its points and none turns them into a reward.")
    return lines


def _credit_lines(name: str, c: m.CreditLine) -> list[str]:
    lines = []
    if c.limit > 0:
        lines.append(f"  Credit line '{name}': every member is granted {_money(c.limit)} of credit on joining.")
    else:
        lines.append(f"  Credit line '{name}': no credit on joining; only rules that grant credit open the line.")
    lines.append(f"    Purchases can be put on the line up to the limit; a statement comes every "
                 f"{_num(c.statement_days)} days.")
    lines.append(f"    The minimum payment is {_percent(c.min_payment_percent)} of the balance or "
                 f"{_money(c.min_payment)}, "
                 "whichever is more (or the whole balance when that is smaller).")
    if c.apr > 0:
        lines.append(f"    Balances carried past a statement pay {_percent(c.apr)} a year in interest "
                     f"({_percent(c.apr * c.statement_days / 365)} per statement).")
    else:
        lines.append("    Carried balances pay no interest.")
    if c.late_fee > 0:
        lines.append(f"    A missed minimum payment costs a {_money(c.late_fee)} late fee.")
    missed = ("a missed minimum payment" if c.delinquent_after_missed == 1
              else f"{_num(c.delinquent_after_missed)} missed minimum payments in a row")
    lines.append(f"    After {missed} the account is delinquent (no new spending until a minimum is paid); "
                 f"after {_num(c.write_off_after_days)} days delinquent the balance is written off as bad debt and "
                 "the line is closed.")
    return lines


def _tier_lines(t: m.Tiers) -> list[str]:
    metric = {"spend": "dollars spent (after discounts)", "purchases": "purchases",
              "points": f"points earned in '{t.ledger}'"}[t.metric]
    lines = [f"  Customers qualify on {metric} over the last {_num(t.window_days)} days; tiers are reviewed every "
             f"{_num(t.review_days)} days."]
    for k, (name, lvl) in enumerate(t.levels.items()):
        if k == 0:
            bar = "where everyone starts"
        elif t.metric == "spend":
            bar = f"from {_money(lvl.qualify)} spent"
        else:
            bar = f"from {_num(lvl.qualify)} {'purchases' if t.metric == 'purchases' else 'points'}"
        perks = []
        if lvl.earn_multiplier != 1:
            perks.append(f"earns points x{_num(lvl.earn_multiplier)}")
        if lvl.discount_percent > 0:
            perks.append(f"{_num(lvl.discount_percent)}% off every purchase")
        lines.append(f"    '{name}': {bar}" + (f"; {', '.join(perks)}" if perks else "; no extra benefits") + ".")
    lines.append("  " + {
        "never": "Tiers are never lost: a customer below their tier's bar keeps it.",
        "one_level": "A customer below their tier's bar at a review drops one level.",
        "to_qualified": "At each review a customer moves to the tier their metric qualifies for, up or down.",
    }[t.downgrade])
    return lines


# --------------------------------------------------------------------------- rules
def _rule_lines(i: int, rule: m.Rule, policy: m.Policy) -> list[str]:
    head = f"  {i}. '{rule.id}'" + (f" -- {rule.description}" if rule.description else "")
    lines = [head,
             f"     {_trigger(rule.on)}" + ("" if _always(rule.when) else f", when {_condition(rule.when)}") + ":"]
    for act in rule.do:
        lines.append(f"       - {_action(act, policy)}")
    if rule.group:
        lines.append(f"     In group '{rule.group}' ({policy.stacking.get(rule.group, 'all')}: see Rule groups).")
    cap = rule.cap
    if cap is not None:
        per = "ever" if cap.per == "ever" else _PERIOD_WORDS[cap.per]
        if cap.times is not None:
            lines.append(f"     Cap: at most {_times(cap.times)} per customer {per}.")
        if cap.points is not None:
            lines.append(f"     Cap: at most {_num(cap.points)} points per customer {per}.")
        if cap.dollars is not None:
            lines.append(f"     Cap: at most {_money(cap.dollars)} given to each customer {per} (a firing that would "
                         "pass it does not happen).")
        if cap.times is None and cap.points is None and cap.dollars is None:
            lines.append("     Cap: declared without a limit (no effect).")
    if rule.budget is not None:
        lines.append(f"     Budget: the rule stops firing once it has cost {_money(rule.budget)} in all.")
    return lines


def _trigger(t: m.Trigger) -> str:
    if isinstance(t, m.OnPurchase):
        return "On every purchase"
    if isinstance(t, m.OnVisit):
        return "On every store visit (each purchase and each service contact)"
    if isinstance(t, m.OnEnrolment):
        return "When a customer joins the programme"
    if isinstance(t, m.OnSchedule):
        if t.every == "day":
            return "Every day, for every member"
        if t.every == "week":
            return f"Every week on {_DAY_NAMES[(t.day - 1) % 7]}, for every member"
        if t.every == "month":
            return f"Every month on day {t.day}, for every member"
        return f"Every year on day {t.day} of the year, for every member"
    if isinstance(t, m.OnInactivity):
        return f"When a member has gone {_num(t.days)} days without a purchase"
    if isinstance(t, m.OnBirthday):
        return "On the customer's birthday"
    if isinstance(t, m.OnAnniversary):
        return "On each anniversary of the customer's joining"
    if isinstance(t, m.OnServiceContact):
        return {"any": "When a customer contacts the store", "inquiry": "When a customer makes an inquiry",
                "complaint": "When a customer complains"}[t.kind]
    if isinstance(t, m.OnTierReview):
        return "After each tier review, for every member"
    if isinstance(t, m.OnReferral):
        return "When a customer this member referred joins (for the referrer)"
    return f"On '{t.tag}'"


def _action(a: m.Action, policy: m.Policy) -> str:
    """An action in words: its handler's words, told with this module's formats."""
    return handler_for(a).words(a, policy, _PHRASES)


def _category(cat: str) -> str:
    if cat == "favourite":
        return "the customer's favourite category (the one they buy most)"
    if cat == "new":
        return "the category the customer buys least (usually one they have never bought)"
    return f"'{cat}'"


# --------------------------------------------------------------------------- expressions in words
def _tree(text: str) -> ast.expr | None:
    """The syntax tree of an expression, or None when it should only be quoted."""
    if len(text) > MAX_TEXT_LENGTH or _depth(text) > MAX_DEPTH:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sloppy text is only quoted; the compiler reports it
            tree = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
        return None
    # a bounded tree keeps the recursive wording below far from Python's recursion limit
    return tree if sum(1 for _ in ast.walk(tree)) <= MAX_NODES else None


def _depth(text: str) -> int:
    d = deepest = 0
    for c in text:
        if c in "([{":
            d += 1
            deepest = max(deepest, d)
        elif c in ")]}":
            d -= 1
    return deepest


def _always(text: str) -> bool:
    return text.strip() == "true"


def _zero(text: str) -> bool:
    node = _tree(text)
    return _const(node) == 0 if node is not None else False


def _const(node: ast.AST | None) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _const(node.operand)
        return -v if v is not None else None
    return None


def _quote(text: str) -> str:
    return "`" + " ".join(text.split()) + "`"


def _condition(text: str) -> str:
    """A condition in words followed by its text, or just the text."""
    node = _tree(text)
    words = _words(node) if node is not None else None
    return f"{words} [{_quote(text)}]" if words else _quote(text)


def _amount(text: str, unit_name: str, *, unit: str = "", money: bool = False) -> str:
    """A numeric expression: a constant as a number, anything else quoted (with words when simple)."""
    node = _tree(text)
    c = _const(node)
    if c is not None:
        return _money(c) if money else f"{_num(c)}{unit}" if unit else f"{_num(c)} {unit_name}"
    words = _words(node) if node is not None else None
    return f"({words}) {unit_name} [{_quote(text)}]" if words else f"{_quote(text)} {unit_name}"


def _points_amount(text: str) -> str:
    """Points to award: the common per-dollar forms in words ("2 points per whole dollar")."""
    node = _tree(text)
    c = _const(node)
    if c is not None:
        return f"{_num(c)} point{'s' if c != 1 else ''}"
    if node is not None:
        rate, base = _per_dollar(node)
        if base is not None:
            unit = "whole dollar" if base == "floor" else "dollar"
            return f"{_num(rate)} point{'s' if rate != 1 else ''} per {unit} of the purchase [{_quote(text)}]"
    return _amount(text, "points")


def _per_dollar(node: ast.AST) -> tuple[float, str | None]:
    """(rate, 'floor'|'exact') when node is k * floor(purchase.amount) or k * purchase.amount."""
    def base(n: ast.AST) -> str | None:
        if _name(n) == "purchase.amount":
            return "exact"
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "floor"
                and len(n.args) == 1 and not n.keywords and _name(n.args[0]) == "purchase.amount"):
            return "floor"
        return None
    b = base(node)
    if b is not None:
        return 1.0, b
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for x, k in ((node.left, node.right), (node.right, node.left)):
            b, c = base(x), _const(k)
            if b is not None and c is not None:
                return c, b
    return 0.0, None


def _name(node: ast.AST) -> str | None:
    """The dotted field name a Name/Attribute node spells, if it is one."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _noun(name: str) -> str | None:
    if name in _NOUNS:
        return _NOUNS[name]
    doc = {**ENGINE_FIELDS, **RUNTIME_FIELDS}.get(name)
    return doc[1] if doc else None


def _words(node: ast.AST) -> str | None:
    """Simple expression forms in words; None when the form is not one of them (it is then only quoted)."""
    if isinstance(node, ast.BoolOp):
        parts = [_words(v) for v in node.values]
        if any(p is None for p in parts):
            return None
        return f" {'and' if isinstance(node.op, ast.And) else 'or'} ".join(parts)  # type: ignore[arg-type]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _words(node.operand)
        return f"not ({inner})" if inner else None
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = _term(node.left), _term(node.comparators[0])
        word = _COMPARE_WORDS.get(type(node.ops[0]))
        if left and right and word:
            return f"{left} {word} {right}"
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return "always" if node.value else "never"
    if isinstance(node, ast.Name) and node.id in ("true", "false"):
        return "always" if node.id == "true" else "never"
    name = _name(node)
    if name in _FLAGS:
        return _NOUNS[name]
    return _term(node)


def _term(node: ast.AST) -> str | None:
    """A value (field, number, text, map entry, simple call or arithmetic) as a noun phrase."""
    c = _const(node)
    if c is not None:
        return _num(c)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return f"'{node.value}'"
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_term(e) for e in node.elts]
        return "(" + ", ".join(items) + ")" if items and all(items) else None  # type: ignore[arg-type]
    if isinstance(node, ast.Subscript):
        name = _name(node.value)
        key = node.slice
        if name and isinstance(key, ast.Constant) and isinstance(key.value, str):
            noun = _noun(name)
            return f"{noun} '{key.value}'" if noun else None
        return None
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS
            and not node.keywords):
        if node.func.id == "if_else" and len(node.args) == 3:
            cond, yes, no = _words(node.args[0]), _term(node.args[1]), _term(node.args[2])
            return f"{yes} if {cond}, else {no}" if cond and yes and no else None
        args = [_term(a) for a in node.args]
        if not all(args):
            return None
        fn = node.func.id
        if fn == "days_since" and len(args) == 1:
            arg = args[0]
            if _name(node.args[0]) == "customer.last_purchase":
                return "days since the customer's last purchase"
            return f"days since {arg}"
        if fn in ("floor", "ceil", "round", "abs", "sqrt", "log") and len(args) == 1:
            return {"floor": f"{args[0]} rounded down", "ceil": f"{args[0]} rounded up", "round": f"{args[0]} rounded",
                    "abs": f"the size of {args[0]}", "sqrt": f"the square root of {args[0]}",
                    "log": f"the natural log of {args[0]}"}[fn]
        if fn in ("min", "max"):
            return f"the {'smaller' if fn == 'min' else 'larger'} of " + ", ".join(args)  # type: ignore[arg-type]
        if fn == "clip" and len(args) == 3:
            return f"{args[0]} kept between {args[1]} and {args[2]}"
        return None
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH_WORDS:
        left, right = _term(node.left), _term(node.right)
        return f"{left} {_ARITH_WORDS[type(node.op)]} {right}" if left and right else None
    name = _name(node)
    if name is not None:
        return _noun(name)
    return None


# --------------------------------------------------------------------------- numbers
def _num(v: float) -> str:
    """A number for prose: whole numbers without decimals, others with up to 4 significant digits."""
    if not math.isfinite(v):
        return str(v)
    if float(v) == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.4g}"


def _money(v: float) -> str:
    if v < 0:
        return "-" + _money(-v)
    if not math.isfinite(v):
        return f"${v}"
    if float(v) == int(v) and v < 1e15:
        return f"${int(v):,}"
    if v < 0.1 and v * 100 != int(v * 100):  # fractions of a cent, e.g. $0.005 a point
        return f"${v:.4g}"
    return f"${v:,.2f}"


def _percent(share: float) -> str:
    return f"{_num(round(share * 100, 4))}%"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{_num(n)} times")


# the formats lent to the action handlers for their words
_PHRASES = Phrases(num=_num, money=_money, percent=_percent, times=_times, amount=_amount, points_amount=_points_amount,
                   zero=_zero, category=_category)
