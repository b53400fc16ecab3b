"""The rules engine: a compiled policy applied to batches of customers at once.

The runtime owns the programme's state (points lots, credit lines, tiers,
caps, budgets, vouchers) as numpy arrays over every customer, and answers
events in batches: "these customers purchased these amounts at these times",
"today is a statement day", "these members have a birthday". It knows
nothing of the simulator: customer facts it does not own (segment, purchase
history, satisfaction) are asked of a `FieldSource` the caller supplies, and
what the programme does to customers (discounts, free items, trials, offers)
comes back as `Effects` for the caller to act on.

The runtime knows no particular action: each rule's actions are valued and
applied by their handlers (lab.policy.actions), found by tag.

Within one batch every customer appears at most once, so a batch of one gives
the same answer as the same customer inside a batch of 100k.

The module runs past 500 lines because it also holds the expression-field
tables and the compilation of a policy's expressions against them; the field
tables are due to move to one declared field table (lab/policy/fields.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from lab.errors import Diagnostic
from lab.policy import fields
from lab.policy import model as m
from lab.policy.actions import Firing, Valuation, handler_for, handlers
from lab.policy.actions.base import not_finite
from lab.policy.columns import Column, WorldRows, allocate, grow, share
from lab.policy.effects import COSTS, Effects
from lab.policy.expr import Compiled, ExprType, Field, compile_expression
from lab.policy.ledgers import CreditBook, PointsBook
from lab.policy.goals import goal_costs

__all__ = ["ACTIONS", "MAX_ACTIONS", "MAX_RULES", "TRIGGERS", "Accounts", "CompiledPolicy", "CompiledRule", "Effects",
           "FieldSource", "PolicyRuntime", "World", "compile_policy", "expression_schema"]

MAX_RULES = 64  # the `rules` bit mask of each transaction (uint64) has one bit per rule; also bounds a run's cost
MAX_ACTIONS = 32  # actions in one rule: with MAX_RULES and expr.MAX_NODES, bounds the work of one event
TRIGGERS: tuple[str, ...] = tuple(t.tag for t in m.Trigger.__args__)
ACTIONS: tuple[str, ...] = tuple(handlers())


@dataclass(frozen=True)
class World:
    """What a policy is compiled against: the store's categories and the scenario's segments."""

    categories: tuple[str, ...]
    prices: tuple[float, ...]
    unit_costs: tuple[float, ...]
    segments: tuple[str, ...]

    @staticmethod
    def permissive(policy: m.Policy) -> "World":
        """A world for checking a policy on its own: any category or segment the policy names exists."""
        names: set[str] = set()
        for rule in policy.rules:
            for text in _expressions_of(rule):
                names.update(re.findall(r"""["']([^"'\\]{1,64})["']""", text))
            for act in rule.do:
                names.update(handler_for(act).categories(act).values())
        names -= {"favourite", "new"}
        cats = tuple(sorted(names)) or ("any",)
        return World(cats, (1.0,) * len(cats), (0.5,) * len(cats), cats)


def _expressions_of(rule: m.Rule) -> Iterable[str]:
    yield rule.when
    for act in rule.do:
        for name in handler_for(act).expressions:
            yield getattr(act, name)


# --------------------------------------------------------------------------- the expression schema
# (declared once, with units and meanings, in lab.policy.fields)
ENGINE_FIELDS: dict[str, tuple[ExprType, str]] = fields.expression_fields("engine", "event")
RUNTIME_FIELDS: dict[str, tuple[ExprType, str]] = fields.expression_fields("runtime")
_RINGS = {"spend": "win_spend", "purchases": "win_purchases", "visits": "win_visits"}  # window kind -> its ring column


def expression_schema(policy: m.Policy, world: World) -> dict[str, Field]:
    """The fields a policy's expressions may read, typed for this world."""
    tiers = tuple(policy.tiers.levels) if policy.tiers else ("none",)
    values = {
        "customer.segment": world.segments,
        "customer.category_purchases": world.categories,
        "customer.category_spend": world.categories,
        "customer.favourite_category": world.categories,
        "purchase.category": world.categories,
        "customer.tier": tiers,
        "customer.points": tuple(policy.points),
        "customer.points_pending": tuple(policy.points),
        "customer.points_earned": tuple(policy.points),
        "customer.points_expired": tuple(policy.points),
        "customer.credit_limit": tuple(policy.credit),
        "customer.credit_owed": tuple(policy.credit),
        "customer.credit_available": tuple(policy.credit),
        "customer.days_delinquent": tuple(policy.credit),
    }
    why_values = {
        "customer.tier": "" if policy.tiers else (
            "this policy declares no tiers, so every customer's tier is 'none'; "
            "declare them in a 'tiers:' section, as policies/tiered_points.yaml does"
        ),
    }
    out: dict[str, Field] = {}
    for name, (typ, doc) in {**ENGINE_FIELDS, **RUNTIME_FIELDS}.items():
        if typ is ExprType.MAP and not values.get(name):
            continue  # a map over no ledgers cannot be read
        out[name] = Field(typ, tuple(values.get(name, ())), doc, why_values.get(name, ""))
    return out


TRIGGER_FIELDS: dict[str, tuple[str, ...]] = {
    "purchase": ("purchase.",),
    "service_contact": ("contact.",),
}


# --------------------------------------------------------------------------- compilation
@dataclass(frozen=True)
class CompiledRule:
    """A rule with its expressions compiled."""

    index: int
    rule: m.Rule
    when: Compiled
    amounts: tuple[dict[str, Compiled], ...]  # per action: field name -> compiled expression


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy checked and compiled against a world; what the runtime runs."""

    policy: m.Policy
    world: World
    rules: tuple[CompiledRule, ...]
    # what the checks found worth saying but not refusing (lab.policy.loader: a reward customers cannot see)
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(r.rule.id for r in self.rules)


class CompileProblem(Exception):
    """An expression of a policy does not compile; `path` locates it in the policy."""

    def __init__(self, path: tuple[str | int, ...], message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.offset = offset


def compile_policy(policy: m.Policy, world: World) -> tuple[CompiledPolicy, list[CompileProblem]]:
    """Compile every expression of a policy; problems are returned, not raised, so all are reported."""
    from lab.policy.expr import ExpressionError

    schema = expression_schema(policy, world)
    problems: list[CompileProblem] = []
    rules: list[CompiledRule] = []
    if len(policy.rules) > MAX_RULES:
        problems.append(CompileProblem(
            ("rules", MAX_RULES),
            f"a policy may have at most {MAX_RULES} rules (each transaction records the rules that fired as one bit "
            f"per rule), this one has {len(policy.rules)}; merge rules that share a trigger, e.g. with if_else(...) "
            "in an amount, or split the programme into several policies"))
    for i, rule in enumerate(policy.rules[:MAX_RULES]):
        trig = rule.on.tag
        allowed = {k: v for k, v in schema.items() if not _foreign_event_field(k, trig)}

        def comp(text: str, path: tuple[str | int, ...], expect: ExprType,
                 allowed: dict[str, Field] = allowed, trig: str = trig) -> Compiled:
            try:
                return compile_expression(str(text), allowed, expect=expect)
            except ExpressionError as exc:
                msg = exc.message
                hidden = [k for k in schema if k not in allowed and k in str(text)]
                if hidden:
                    msg = f"{hidden[0]} is only known on {_owner_trigger(hidden[0])} rules, not on '{trig}' rules"
                problems.append(CompileProblem(path, msg, exc.offset))
                return compile_expression("0" if expect is ExprType.NUMBER else "false", {}, expect=expect)

        if len(rule.do) > MAX_ACTIONS:
            problems.append(CompileProblem(
                ("rules", i, "do", MAX_ACTIONS),
                f"a rule may have at most {MAX_ACTIONS} actions, rule '{rule.id}' has {len(rule.do)}; "
                "split it into several rules on the same trigger"))
            continue
        when = comp(rule.when, ("rules", i, "when"), ExprType.BOOL)
        amounts: list[dict[str, Compiled]] = []
        for j, act in enumerate(rule.do):
            exprs: dict[str, Compiled] = {}
            for name in handler_for(act).expressions:
                exprs[name] = comp(getattr(act, name), ("rules", i, "do", j, act.tag, name), ExprType.NUMBER)
            amounts.append(exprs)
        rules.append(CompiledRule(i, rule, when, tuple(amounts)))
    return CompiledPolicy(policy, world, tuple(rules)), problems


def _foreign_event_field(name: str, trigger: str) -> bool:
    for trig, prefixes in TRIGGER_FIELDS.items():
        if trig != trigger and any(name.startswith(p) for p in prefixes):
            return True
    return False


def _owner_trigger(name: str) -> str:
    for trig, prefixes in TRIGGER_FIELDS.items():
        if any(name.startswith(p) for p in prefixes):
            return trig
    return "any"


# --------------------------------------------------------------------------- runtime
class FieldSource(Protocol):
    """Customer and store facts the simulator owns, fetched for a batch of customers."""

    def get(self, name: str, idx: np.ndarray) -> np.ndarray | float: ...


@dataclass
class Accounts:
    """Programme money and counts, accumulated over a run (dollars unless said).

    `spent` holds the programme's spending by declared kind (lab.policy.effects.COSTS);
    the rules' costs (`rule_cost`) add up to the kinds rules spend."""

    discounts: float = 0.0  # dollars off purchases given by rules, tiers and vouchers
    points_redeemed_value: float = 0.0
    free_item_retail: float = 0.0
    offers_cost: float = 0.0
    offers_sent: int = 0
    vouchers_issued: float = 0.0
    rule_fires: dict[str, int] = field(default_factory=dict)
    rule_cost: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COSTS, 0.0))


class PolicyRuntime:
    """The state and rules of one policy over a growing population."""

    COLUMNS: tuple[Column, ...] = (
        Column("tier", np.int16, "the member's tier level (0 = lowest)", "level"),
        Column("voucher", np.float64, "value of the customer's voucher (a lapsed one lingers: see voucher_until)",
               "dollars"),
        Column("voucher_until", np.float64, "last day the voucher can be used", "day"),
        Column("rewards", np.float64, "points rewards redeemed so far", "rewards"),
        Column("member", np.bool_, "the customer has joined the programme"),
        Column("last_inactivity_fire", np.float64, "day an inactivity rule last fired for the customer", "day",
               fill=-np.inf),
        Column("cap_times", np.int32, "fires this period of each capped rule (one row per capped rule)", "fires",
               axis=1, width="_cap_rules"),
        Column("cap_points", np.float64, "points awarded this period by each capped rule", "points",
               axis=1, width="_cap_rules"),
        Column("cap_dollars", np.float64, "dollars given this period by each capped rule", "dollars",
               axis=1, width="_cap_rules"),
    )
    TIER_COLUMNS: tuple[Column, ...] = (
        Column("qual", np.float64, "the tier metric in each review period of the rolling window", "metric",
               width="_window_buckets"),
    )
    WINDOW_COLUMNS: tuple[Column, ...] = (  # kept only when an expression reads a rolling-window field
        Column("win_spend", np.float64, "dollars spent on each of the last days (a ring: column = day mod its width)",
               "dollars", width="_window_days"),
        Column("win_purchases", np.float64, "purchases on each of the last days (the same ring)", "purchases",
               width="_window_days"),
        Column("win_visits", np.float64,
               "visits (purchases and service contacts) on each of the last days (the same ring)", "visits",
               width="_window_days"),
        Column("win_last", np.float64, "the last day written to the rings (-inf: never)", "day", fill=-np.inf),
    )
    tier: np.ndarray
    voucher: np.ndarray
    voucher_until: np.ndarray
    rewards: np.ndarray
    member: np.ndarray
    last_inactivity_fire: np.ndarray
    cap_times: np.ndarray
    cap_points: np.ndarray
    cap_dollars: np.ndarray
    qual: np.ndarray
    win_spend: np.ndarray
    win_purchases: np.ndarray
    win_visits: np.ndarray
    win_last: np.ndarray

    def __init__(self, compiled: CompiledPolicy, capacity: int) -> None:
        self.cp = compiled
        self.policy = compiled.policy
        self.world = compiled.world
        p = self.policy
        self.points = {name: PointsBook(spec, capacity) for name, spec in p.points.items()}
        self.credit = {name: CreditBook(spec, capacity) for name, spec in p.credit.items()}
        self.tier_names = tuple(p.tiers.levels) if p.tiers else ("none",)
        if p.tiers:
            self._tier_bar = np.array([lvl.qualify for lvl in p.tiers.levels.values()])
            self._tier_mult = np.array([lvl.earn_multiplier for lvl in p.tiers.levels.values()])
            self._tier_disc = np.array([lvl.discount_percent for lvl in p.tiers.levels.values()]) / 100.0
            self._window_buckets = max(1, math.ceil(p.tiers.window_days / p.tiers.review_days))
            self._qual_col = 0
        caps = [r for r in compiled.rules if r.rule.cap is not None]
        self.cap_row = {r.index: k for k, r in enumerate(caps)}  # capped rule -> its row in cap_times, cap_points
        self._cap_rules = len(caps)
        read = set().union(*(r.when.fields.union(*(c.fields for e in r.amounts for c in e.values()))
                             for r in compiled.rules)) if compiled.rules else set()
        self._windows = {n: fields.BY_NAME[n].window for n in read if n in fields.BY_NAME and fields.BY_NAME[n].window}
        self._window_days = max(self._windows.values(), default=1)
        self._rings = {n: _RINGS[fields.window_kind(n)] for n in self._windows}  # field -> the ring it sums
        kept = set(self._rings.values()) | {"win_last"}
        self.columns = (self.COLUMNS + (self.TIER_COLUMNS if p.tiers else ())  # the columns this policy keeps
                        + (tuple(c for c in self.WINDOW_COLUMNS if c.name in kept) if self._windows else ()))
        allocate(self, self.columns, capacity)
        self._cap_period = [-1] * len(caps)
        self.rule_spent = np.zeros(len(compiled.rules))
        self.budget_spent = 0.0
        self._budget_period = -1
        self.accounts = Accounts(rule_fires={r: 0 for r in compiled.rule_ids},
                                 rule_cost={r: 0.0 for r in compiled.rule_ids})
        self._needed: dict[int, tuple[str, ...]] = {}  # per rule: the fields its expressions read
        self._personal_categories = {  # rules whose actions name 'favourite' or 'new': they read the customer's
            r.index for r in compiled.rules
            if any(c in ("favourite", "new") for a in r.rule.do for c in handler_for(a).categories(a).values())}
        self._by_trigger: dict[str, list[CompiledRule]] = {}
        for r in compiled.rules:
            self._by_trigger.setdefault(r.rule.on.tag, []).append(r)
        # the rewards customers can see, whatever actions deliver them (lab.policy.goals)
        self._goal_costs = goal_costs(p)
        self.capacity = capacity
        self._using: np.ndarray | None = None  # during a purchase: the customers whose held voucher it uses
        # over a stack of worlds (share_rows): each world's own runtime, whose columns are views of these rows
        self.stack: WorldRows | None = None

    @property
    def stacks_purchases(self) -> bool:
        """Whether this policy's purchases can be run over many worlds' rows at once (share_rows), every world
        getting the bits it gets alone: when every action of its purchase rules has a handler that works over a
        stack (ActionHandler.stacks)."""
        return all(handler_for(a).stacks for r in self.cp.rules if r.rule.on.tag == "purchase" for a in r.rule.do)

    def share_rows(self, worlds: list["PolicyRuntime"], bounds: np.ndarray) -> None:
        """Make this runtime the stacked book of many worlds' runtimes (of this policy): world w's customer i is
        row bounds[w] + i here, and every per-customer column of world w (its ledgers' too) becomes a view of
        its block of rows, so the world's own calls and calls over the stack see the same arrays. What is not
        per customer (accounts, budgets, caps' periods, ledger totals and flags) stays each world's own.
        Called again with new bounds when the worlds' blocks move."""
        share(self, worlds, self.columns, bounds)
        for name, book in self.points.items():
            share(book, [rt.points[name] for rt in worlds], PointsBook.COLUMNS, bounds)
            book.stack = WorldRows(bounds, [rt.points[name] for rt in worlds])
        for name, line in self.credit.items():
            share(line, [rt.credit[name] for rt in worlds], CreditBook.COLUMNS, bounds)
            line.stack = WorldRows(bounds, [rt.credit[name] for rt in worlds])
        for w, rt in enumerate(worlds):
            rt.capacity = int(bounds[w + 1] - bounds[w])
        self.capacity = int(bounds[-1])
        self.stack = WorldRows(bounds, worlds)

    def own_ids(self, rows: np.ndarray) -> np.ndarray:
        """The customers' ids in their own run (for messages): the rows themselves, or over a stack each row less
        its world's first row."""
        if self.stack is None:
            return rows
        b = self.stack.bounds
        return rows - b[np.searchsorted(b, rows, side="right") - 1]

    def voucher_kept(self, who: np.ndarray, day: float) -> np.ndarray:
        """The live voucher each customer keeps on top of a new one: none when the current purchase uses it."""
        keep = self.voucher_until[who] >= day
        if self._using is not None:
            keep &= ~np.isin(who, self._using)
        return np.where(keep, self.voucher[who], 0.0)

    # ------------------------------------------------------------------ housekeeping
    def grow(self, capacity: int) -> None:
        """Make room for more customers."""
        if capacity <= self.capacity:
            return
        books: list[PointsBook | CreditBook] = [*self.points.values(), *self.credit.values()]
        for book in books:
            book.grow(capacity)
        grow(self, self.columns, capacity)
        self.capacity = capacity

    def has_trigger(self, tag: str) -> bool:
        """Whether any rule listens to this trigger (lets the simulator skip work)."""
        return tag in self._by_trigger

    def triggers(self, tag: str) -> list[CompiledRule]:
        """The rules on one trigger, in file order."""
        return self._by_trigger.get(tag, [])

    # ------------------------------------------------------------------ fields
    def _runtime_field(self, name: str, idx: np.ndarray, day: float) -> np.ndarray:
        if name in self._windows:
            return self._window_sum(getattr(self, self._rings[name]), idx, day, self._windows[name])
        if name == "customer.tier":
            return self.tier[idx].astype(np.int64)
        if name == "customer.tier_level":
            return self.tier[idx].astype(np.float64)
        if name == "customer.qualifying":
            return self.qual[idx].sum(axis=1) if self.policy.tiers else np.zeros(len(idx))
        if name == "customer.voucher":
            return np.where(self.voucher_until[idx] >= day, self.voucher[idx], 0.0)
        if name == "customer.rewards":
            return self.rewards[idx]
        books = list(self.points.values())
        lines = list(self.credit.values())
        cols: list[np.ndarray]
        if name == "customer.points":
            cols = [b.balance(idx, day) for b in books]
        elif name == "customer.points_pending":
            cols = [b.pending(idx, day) for b in books]
        elif name == "customer.points_earned":
            cols = [b.earned[idx] for b in books]
        elif name == "customer.points_expired":
            cols = [b.expired[idx] for b in books]
        elif name == "customer.credit_limit":
            cols = [c.limit[idx] for c in lines]
        elif name == "customer.credit_owed":
            cols = [c.owed[idx] for c in lines]
        elif name == "customer.credit_available":
            cols = [c.available(idx) for c in lines]
        elif name == "customer.days_delinquent":
            cols = [c.days_delinquent(idx, day) for c in lines]
        else:
            raise KeyError(name)
        return np.stack(cols, axis=1) if cols else np.zeros((len(idx), 0))

    def _env(self, rule: CompiledRule, idx: np.ndarray, day: float, source: FieldSource,
             event: Mapping[str, object]) -> dict[str, object]:
        needed = self._needed.get(rule.index)
        if needed is None:  # the fields a rule reads never change: work them out once
            found = set(rule.when.fields)
            for exprs in rule.amounts:
                for c in exprs.values():
                    found |= c.fields
            needed = self._needed[rule.index] = tuple(sorted(found))
        env: dict[str, object] = {}
        for name in needed:
            if name in event:
                env[name] = event[name]
            elif name in RUNTIME_FIELDS:
                env[name] = self._runtime_field(name, idx, day)
            else:
                env[name] = source.get(name, idx)
        return env

    # ------------------------------------------------------------------ rolling windows
    def _ring_days(self, idx: np.ndarray) -> np.ndarray:
        """The day each ring column of these customers holds, counting back from the last day written."""
        w = self._window_days
        last = self.win_last[idx]
        last = np.where(np.isfinite(last), last, -2.0 * w - 1)  # never written: every column is far in the past
        back = np.mod(last[:, None] - np.arange(w)[None, :], w)
        return last[:, None] - back

    def _window_sum(self, ring: np.ndarray, idx: np.ndarray, day: float, days: int) -> np.ndarray:
        """Sum of a ring over days (d - days, d], d = today: the last `days` days, today included."""
        held = self._ring_days(idx)
        d = math.floor(day)
        return np.where(held > d - days, ring[idx], 0.0).sum(axis=1)

    def _window_add(self, idx: np.ndarray, day: float, spend: np.ndarray | None) -> None:
        """Count one visit today for each customer (each appears once in idx): a purchase of `spend` dollars, or a
        service contact when `spend` is None. Only the rings the policy reads are kept and written."""
        d = math.floor(day)
        w = self._window_days
        stale = self._ring_days(idx) <= d - w  # columns now due to hold days of this window, still holding old ones
        col = d % w
        writes = {"win_visits": 1.0} if spend is None else {"win_spend": spend, "win_purchases": 1.0, "win_visits": 1.0}
        for ring in sorted(set(self._rings.values())):
            r = getattr(self, ring)
            r[idx] = np.where(stale, 0.0, r[idx])
            if ring in writes:
                r[idx, col] += writes[ring]
        self.win_last[idx] = d

    @property
    def counts_contacts(self) -> bool:
        """Whether `contact` records anything: the policy reads a rolling-window visit field."""
        return "win_visits" in self._rings.values()

    def contact(self, idx: np.ndarray, day: float) -> None:
        """Service contacts today (after their service_contact rules, before the visit rules): counted as visits
        for the rolling-window visit fields. Does nothing unless the policy reads one."""
        if len(idx) and self.counts_contacts:
            self._window_add(idx, day, None)

    # ------------------------------------------------------------------ periods, caps, budgets
    @staticmethod
    def _period_index(per: str, day: float) -> int:
        span = m.PERIOD_DAYS[per]
        return 0 if math.isinf(span) else int(day // span)

    def _cap_allows(self, r: CompiledRule, idx: np.ndarray, day: float) -> np.ndarray:
        cap = r.rule.cap
        if cap is None:
            return np.ones(len(idx), dtype=bool)
        row = self.cap_row[r.index]
        period = self._period_index(cap.per, day)
        if self.stack is None:
            self._cap_reset(row, period)
        else:  # each world's caps start their period when that world next meets the rule, as alone
            for w, _, _ in self.stack.parts(idx):
                self.stack.worlds[w]._cap_reset(row, period)
        ok = np.ones(len(idx), dtype=bool)
        if cap.times is not None:
            ok &= self.cap_times[row, idx] < cap.times
        if cap.points is not None:
            ok &= self.cap_points[row, idx] < cap.points
        return ok

    def _cap_reset(self, row: int, period: int) -> None:
        if period != self._cap_period[row]:
            self.cap_times[row] = 0
            self.cap_points[row] = 0.0
            self.cap_dollars[row] = 0.0
            self._cap_period[row] = period

    def _budgets_left(self, r: CompiledRule, day: float, idx: np.ndarray,
                      fires: np.ndarray) -> list[tuple[int, int, float]]:
        """(lo, hi, dollars left) of the budgets over the batch idx: one, or each world's (with customers firing)
        over a stack, each rationed over its own customers in the order of their purchases as alone."""
        if self.stack is None:
            return [(0, len(idx), self._budget_left(r, day))]
        return [(lo, hi, self.stack.worlds[w]._budget_left(r, day)) for w, lo, hi in self.stack.parts(idx)
                if fires[lo:hi].any()]

    def _budget_left(self, r: CompiledRule, day: float) -> float:
        left = math.inf
        if r.rule.budget is not None:
            left = r.rule.budget - self.rule_spent[r.index]
        b = self.policy.budget
        if b is not None:
            period = self._period_index(b.per, day)
            if period != self._budget_period:
                self._budget_period = period
                self.budget_spent = 0.0
            left = min(left, b.amount - self.budget_spent)
        return left

    # ------------------------------------------------------------------ rule evaluation
    def _action_values(self, r: CompiledRule, idx: np.ndarray, env: Mapping[str, object], day: float,
                       event: Mapping[str, object]) -> np.ndarray:
        """Dollar value of a rule's actions to each customer, before applying them (for 'best' stacking and budgets).

        Each action's handler prices it with the same arithmetic it applies it with."""
        n = len(idx)
        total = np.zeros(n)
        v = Valuation(self, idx, env, day, np.asarray(event.get("purchase.amount", np.zeros(n)), dtype=float), rule=r)
        for act, exprs in zip(r.rule.do, r.amounts):
            v.exprs, v.act = exprs, act
            worth = handler_for(act).value(act, v)
            if worth is not None:
                total += worth
        return total

    def earn_multiplier(self, idx: np.ndarray) -> np.ndarray | float:
        """The tier earn multiplier of each customer (1 without tiers)."""
        return self._tier_mult[self.tier[idx]] if self.policy.tiers else 1.0

    def category_codes(self, category: str, idx: np.ndarray, env: Mapping[str, object]) -> np.ndarray:
        """Category codes an action names for each customer: 'favourite', 'new' (least bought) or one category."""
        if category == "favourite":
            return np.asarray(env["__favourite__"], dtype=np.int64)
        if category == "new":
            return np.asarray(env["__newest__"], dtype=np.int64)
        return np.full(len(idx), self.world.categories.index(category), dtype=np.int64)

    def price(self, category: str | None, idx: np.ndarray, env: Mapping[str, object]) -> np.ndarray:
        """Retail price of the category an action names, per customer."""
        codes = self.category_codes(category or "favourite", idx, env)
        return np.asarray(self.world.prices)[codes]

    def fire(self, tag: str, idx: np.ndarray, day: float, source: FieldSource,
             event: Mapping[str, object] | None = None,
             partner: np.ndarray | None = None, only: list[CompiledRule] | None = None) -> Effects:
        """Run every rule on `tag` for a batch of customers (members only) and return the effects.

        `event` holds the event's own fields (e.g. purchase.amount) as arrays aligned with idx;
        `partner` is the referred customer for referral events."""
        event = dict(event or {})
        eff = Effects.empty(idx)
        rules = only if only is not None else self._by_trigger.get(tag)
        if not rules or len(idx) == 0:
            return eff
        members = self.member[idx]
        amount = event.get("purchase.amount")
        amount = np.zeros(len(idx)) if amount is None else np.asarray(amount, dtype=float)
        group_done: dict[str, np.ndarray] = {}
        best_choice: dict[str, np.ndarray] = {}
        extra: dict[str, object] = {"__favourite__": None, "__newest__": None}
        for r in rules:
            env = self._env(r, idx, day, source, event)
            if r.index in self._personal_categories:
                fav, new = extra["__favourite__"], extra["__newest__"]
                env["__favourite__"] = fav if fav is not None else source.get("customer.favourite_category", idx)
                env["__newest__"] = new if new is not None else source.get("customer.least_category", idx)
                extra["__favourite__"], extra["__newest__"] = env["__favourite__"], env["__newest__"]
            fires = members & r.when.evaluate(env, len(idx))
            dollars: np.ndarray | None = None  # what each firing gives, when a dollar cap counts it
            if r.rule.cap is not None:
                fires &= self._cap_allows(r, idx, day)
                if r.rule.cap.dollars is not None and fires.any():
                    dollars = np.where(fires, self._action_values(r, idx, env, day, event), 0.0)
                    spent = self.cap_dollars[self.cap_row[r.index], idx]
                    fires &= spent + dollars <= r.rule.cap.dollars + 1e-9
            group = r.rule.group or ""  # mode is 'all' outside a group
            mode = self.policy.stacking.get(group, "all") if group else "all"
            if mode == "first":
                done = group_done.setdefault(group, np.zeros(len(idx), dtype=bool))
                fires &= ~done
            elif mode == "best":
                if group not in best_choice:
                    best_choice[group] = self._best_in_group(group, rules, idx, day, source, event, members)
                fires &= best_choice[group] == r.index
            if not fires.any():
                continue
            if r.rule.budget is not None or self.policy.budget is not None:  # values are only needed to ration
                values = np.where(fires, self._action_values(r, idx, env, day, event), 0.0)
                times = np.asarray(event.get("__time__", np.zeros(len(idx))))
                for lo, hi, left in self._budgets_left(r, day, idx, fires):
                    if not math.isfinite(left):
                        continue
                    order = np.argsort(times[lo:hi], kind="stable")
                    within = np.empty(hi - lo, dtype=bool)
                    within[order] = np.cumsum(values[lo:hi][order]) <= left + 1e-9
                    fires[lo:hi] &= within
                if not fires.any():
                    continue
            if mode == "first":
                group_done[group] |= fires
            sub = np.flatnonzero(fires)
            f = self._apply(r, idx, sub, env, day, amount, eff, partner)
            rid = r.rule.id
            if self.stack is None:
                self.rule_spent[r.index] += f.cost
                self.budget_spent += f.cost
                self.accounts.rule_fires[rid] += int(sub.size)
                self.accounts.rule_cost[rid] += f.cost
            else:  # each firing world's books, as its run alone keeps them
                for (w, lo, hi), cost in zip(f.firing_parts, f.costs, strict=True):
                    rt = self.stack.worlds[w]
                    rt.rule_spent[r.index] += cost
                    rt.budget_spent += cost
                    rt.accounts.rule_fires[rid] += hi - lo
                    rt.accounts.rule_cost[rid] += cost
            eff.rules[sub] |= np.uint64(1) << np.uint64(r.index)  # r.index < MAX_RULES: compile_policy refuses more
            if r.rule.cap is not None:
                row = self.cap_row[r.index]
                self.cap_times[row, idx[sub]] += 1
                if dollars is not None:
                    self.cap_dollars[row, idx[sub]] += dollars[sub]
        return eff

    def _best_in_group(self, group: str, rules: list[CompiledRule], idx: np.ndarray, day: float, source: FieldSource,
                       event: Mapping[str, object], members: np.ndarray) -> np.ndarray:
        best_value = np.full(len(idx), -np.inf)
        best = np.full(len(idx), -1, dtype=np.int64)
        for r in rules:
            if r.rule.group != group:
                continue
            env = self._env(r, idx, day, source, event)
            env["__favourite__"] = source.get("customer.favourite_category", idx)
            env["__newest__"] = source.get("customer.least_category", idx)
            ok = members & r.when.evaluate(env, len(idx)) & self._cap_allows(r, idx, day)
            v = np.where(ok, self._action_values(r, idx, env, day, event), -np.inf)
            cap = r.rule.cap
            if cap is not None and cap.dollars is not None:  # a rule its dollar cap stops is no choice
                v = np.where(self.cap_dollars[self.cap_row[r.index], idx] + v <= cap.dollars + 1e-9, v, -np.inf)
            better = v > best_value
            best = np.where(better, r.index, best)
            best_value = np.where(better, v, best_value)
        return best

    def _apply(self, r: CompiledRule, idx: np.ndarray, sub: np.ndarray, env: Mapping[str, object], day: float,
               amount: np.ndarray, eff: Effects, partner: np.ndarray | None) -> Firing:
        """Apply a rule's actions, in order, to the customers idx[sub]; returns the firing, with the rule's cost in
        dollars (`cost`; each firing world's in `costs` over a stack)."""
        n = len(idx)
        sub_env = {k: (v[sub] if isinstance(v, np.ndarray) and v.shape[:1] == (n,) else v) for k, v in env.items()}
        f = Firing(self, r, idx, sub, env, sub_env, day, amount, eff, partner)
        for act, exprs in zip(r.rule.do, r.amounts):
            f.exprs, f.act = exprs, act
            handler_for(act).apply(act, f)
        cost = f.cost if self.stack is None else (0.0 if all(math.isfinite(c) for c in f.costs) else math.nan)
        if not math.isfinite(cost) or not np.isfinite(eff.discount[sub]).all():
            bad = eff.discount[sub] if math.isfinite(cost) else np.full(len(sub), cost)
            raise not_finite(r, None, None, bad, self.own_ids(f.who), day, "its actions")
        return f

    # ------------------------------------------------------------------ tiers
    def qualify(self, idx: np.ndarray, amount: np.ndarray, metric: str, ledger: str | None = None) -> None:
        """Count `amount` of a tier metric (spend, purchases, points in a ledger) towards the customers' tiers."""
        t = self.policy.tiers
        if t is None or t.metric != metric or (metric == "points" and t.ledger != ledger):
            return
        if self.stack is not None:  # the review calendar is every world's: theirs move it
            self._qual_col = self.stack.worlds[0]._qual_col
        np.add.at(self.qual[:, self._qual_col], idx, amount)

    def tier_review(self, day: float) -> np.ndarray:
        """Review every member's tier against the window; returns the members reviewed."""
        t = self.policy.tiers
        if t is None:
            return np.zeros(0, dtype=np.intp)
        idx = np.flatnonzero(self.member)
        q = self.qual[idx].sum(axis=1)
        earned = (np.searchsorted(self._tier_bar, q, side="right") - 1).clip(0).astype(np.int16)
        cur = self.tier[idx]
        if t.downgrade == "never":
            new = np.maximum(cur, earned)
        elif t.downgrade == "one_level":
            new = np.where(earned >= cur, earned, cur - 1)
        else:
            new = earned
        self.tier[idx] = new
        self._qual_col = (self._qual_col + 1) % self._window_buckets
        self.qual[:, self._qual_col] = 0.0
        return idx

    # ------------------------------------------------------------------ the simulator's entry points
    def enrol(self, idx: np.ndarray) -> None:
        """Make these customers members: open their credit lines, start them on the lowest tier."""
        self.member[idx] = True
        self.tier[idx] = 0
        for book in self.credit.values():
            book.open(idx)

    def purchase(self, idx: np.ndarray, times: np.ndarray, amount: np.ndarray, category: np.ndarray, number: np.ndarray,
                 credit_share: np.ndarray, day: float, source: FieldSource) -> Effects:
        """A batch of purchases: tier discount, vouchers, rules, then the part paid on credit."""
        event = {"purchase.amount": amount, "purchase.category": category, "purchase.number": number, "__time__": times}
        # The voucher a customer holds when the purchase starts is the one it uses; a voucher a rule issues during
        # this purchase is for the next one ("dollars off the next purchase"), so it must not discount this one.
        held = self.voucher[idx]  # only this batch's vouchers matter: never scan the whole population per batch
        until = self.voucher_until[idx]
        live = (until >= day) & (held > 0)
        self._using = idx[live] if live.any() else None
        try:
            eff = self.fire("purchase", idx, day, source, event)
        finally:
            self._using = None
        if self.policy.tiers:
            pct = self._tier_disc[self.tier[idx]] * self.member[idx]
            d = np.minimum(np.maximum(amount - eff.discount, 0.0), amount * pct)
            eff.discount += d
            eff.delight += d
            for acc, a in self._accounts_of(idx, d):
                acc.discounts += float(a.sum())
                acc.spent["tier_discounts"] += float(a.sum())
        if live.any():
            d = np.where(live, np.minimum(held, np.maximum(amount - eff.discount, 0.0)), 0.0)
            eff.discount += d
            eff.delight += d
            for acc, a in self._accounts_of(idx, d, live):
                acc.discounts += float(a.sum())
                acc.spent["voucher_discounts"] += float(a.sum())
            issued = self.voucher_until[idx] != until  # a voucher action always sets a new end date
            self.voucher[idx[live & ~issued]] = 0.0
        net = amount - eff.discount
        if self._windows:
            self._window_add(idx, day, net)
        if self.policy.tiers is not None:
            self.qualify(idx, net, "spend")
            self.qualify(idx, np.ones(len(idx)), "purchases")
        remaining = net * credit_share * self.member[idx] if self.credit else net
        for book in self.credit.values():
            got = book.charge(idx, remaining)
            eff.credit += got
            remaining = remaining - got
        return eff

    def _accounts_of(self, idx: np.ndarray, values: np.ndarray,
                     some: np.ndarray | None = None) -> list[tuple[Accounts, np.ndarray]]:
        """(accounts, their entries of `values`) for a batch idx: these accounts and all of it alone; over a stack
        each world's accounts and its part (only the worlds with an entry of `some` set, when given)."""
        if self.stack is None:
            return [(self.accounts, values)]
        return [(self.stack.worlds[w].accounts, values[lo:hi]) for w, lo, hi in self.stack.parts(idx)
                if some is None or some[lo:hi].any()]

    def goal_progress(self, idx: np.ndarray, day: float) -> np.ndarray:
        """How close each customer is to their next points reward, 0 to 1 (for the goal gradient and points hope).

        A reward is one customers can see (lab.policy.goals): a `redeem`, or a threshold a rule spends with
        `deduct` while giving a voucher, discount or free item; a ledger with neither gives 0."""
        out = np.zeros(len(idx))
        for name, book in self.points.items():
            cost = self._goal_costs.get(name, 0.0)
            if cost > 0:
                out = np.maximum(out, np.minimum(book.balance(idx, day) / cost, 1.0))
        return out * self.member[idx]

    def credit_use(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(unused credit, share of the limit in use) per customer, over all credit lines."""
        avail = np.zeros(len(idx))
        limit = np.zeros(len(idx))
        owed = np.zeros(len(idx))
        for book in self.credit.values():
            avail += book.available(idx)
            limit += book.limit[idx]
            owed += book.owed[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            used = np.where(limit > 0, owed / np.maximum(limit, 1e-12), np.where(owed > 0, 1.0, 0.0))
        return avail, np.minimum(used, 1.0)

    def liability(self) -> float:
        """Dollar value of every point outstanding."""
        return float(sum(b.outstanding * self.policy.points[n].value for n, b in self.points.items()))
