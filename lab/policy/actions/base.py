"""What an action handler is, what it is handed, and the registry of handlers by tag.

An action of the policy language (a dataclass in lab.policy.model) is given
meaning by exactly one :class:`ActionHandler`, registered under the action's
tag. The handler says everything the lab needs to know about the action:

- `expressions`: the names of its expression fields (compiled by the runtime);
- `categories`: the category names it refers to (checked against the store);
- `only_on`: the one trigger it works on, if restricted (checked at validation);
- `check`: what is wrong with it in a policy (reported at validation);
- `goal`: the points threshold customers work towards, if it is a reward (the goal gradient);
- `value`: the dollars it would give each customer (for 'best' stacking and budgets);
- `apply`: what it does to the firing customers, on whole arrays at once;
- `words`: what it does, in plain English, for `lab explain`;
- `story`: its lines in a customer's trace, for the story events it causes;
- `discount_source`: whether a trace names its rule as the source of a discount.

The runtime, the loader, explain and the trace story only loop over the
registry; none of them knows any particular action.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from lab.errors import Diagnostic, LabError
from lab.policy import model as m
from lab.policy.effects import Effects

if TYPE_CHECKING:  # the runtime hands itself to handlers; handlers never import it at run time
    from lab.policy.expr import Compiled
    from lab.policy.runtime import CompiledRule, PolicyRuntime


@dataclass(frozen=True)
class CheckContext:
    """What a handler's check may look at: the policy, the rule's trigger, the store's categories (None: unknown)."""

    policy: m.Policy
    trigger: str
    categories: tuple[str, ...] | None


Problem = tuple[tuple[str | int, ...], str]  # (path below the action, message)


def not_finite(rule: "CompiledRule", act: Any, name: str | None, values: np.ndarray, customers: np.ndarray,
               day: float, what: str = "") -> LabError:
    """The error that stops a run when a rule produced a number that is not finite (it must never reach a book).

    It names the policy file and the position of the expression (or of the rule), the rule, the expression,
    the value and the first customer and day where it happened."""
    bad = np.flatnonzero(~np.isfinite(values))
    k = int(bad[0]) if bad.size else 0
    value = float(values[k]) if values.size else float("nan")
    customer = int(customers[k]) if customers.size > k else -1
    text = getattr(act, name, None) if (act is not None and name) else None
    where = text if text is not None and hasattr(text, "diagnostic") else rule.rule.when
    file = getattr(where, "file", "<policy>")
    line, col = where.position(0) if hasattr(where, "position") else (1, 1)
    subject = (f"the expression {str(text)!r} ({act.tag} {name})" if text is not None
               else what or "its actions")
    message = (f"rule {rule.rule.id!r}: {subject} gave {value!r} for customer {customer} on day "
               f"{int(np.floor(day))}; a policy's numbers must stay finite, so the run stops here "
               "(check the expression's inputs and divisions)")
    return LabError([Diagnostic(file, line, col, message, "not_finite")])


@dataclass
class Valuation:
    """A rule's actions about to be valued for a batch of customers (none has fired yet)."""

    rt: "PolicyRuntime"
    idx: np.ndarray
    env: Mapping[str, object]
    day: float
    amount: np.ndarray  # the purchase amount (zeros off purchases)
    exprs: Mapping[str, "Compiled"] = field(default_factory=dict)
    rule: "CompiledRule | None" = None
    act: Any = None  # the action being valued (for the message when a number is not finite)

    def number(self, name: str) -> np.ndarray:
        """An expression field of the action, evaluated for every customer of the batch (always finite)."""
        out = self.exprs[name].evaluate(self.env, len(self.idx))
        if self.rule is not None and not np.isfinite(out).all():
            raise not_finite(self.rule, self.act, name, out, self.rt.own_ids(self.idx), self.day)
        return out

    @property
    def earn_multiplier(self) -> np.ndarray | float:
        """The tier earn multiplier of each customer (1 without tiers)."""
        return self.rt.earn_multiplier(self.idx)


@dataclass
class Firing:
    """A rule's actions being applied to the customers idx[sub] of a batch.

    Handlers charge what each action costs the programme with `spend` (in the order
    they spend it: the rule's cost is a sum in that order) and record what
    customers got in `eff`."""

    rt: "PolicyRuntime"
    rule: "CompiledRule"
    idx: np.ndarray
    sub: np.ndarray
    env: Mapping[str, object]
    sub_env: Mapping[str, object]
    day: float
    amount: np.ndarray  # the purchase amount of the whole batch (zeros off purchases)
    eff: Effects
    partner: np.ndarray | None
    exprs: Mapping[str, "Compiled"] = field(default_factory=dict)
    act: Any = None  # the action being applied (for the message when a number is not finite)
    cost: float = 0.0
    who: np.ndarray = field(init=False)  # the firing customers, idx[sub]
    # over a stack of worlds (lab.policy.runtime.WorldRows): each firing world's cost, in the order of `firing`
    costs: list[float] = field(init=False)
    firing: list[int] = field(init=False)  # the worlds with firing customers
    firing_parts: list[tuple[int, int, int]] = field(init=False)  # (world, lo, hi) of `who`

    def __post_init__(self) -> None:
        self.who = self.idx[self.sub]
        stack = self.rt.stack
        self.firing_parts = [] if stack is None else stack.parts(self.who)
        self.firing = [w for w, _, _ in self.firing_parts]
        self.costs = [0.0] * len(self.firing)

    def spend(self, kind: str, dollars: float | np.ndarray, rows: np.ndarray | None = None,
              scale: float = 1.0) -> None:
        """Charge the rule dollars of one declared kind of cost (a key of lab.policy.effects.COSTS): a number,
        or the float sum of an array (times `scale`) whose entries belong to `rows` (the firing customers by
        default) -- summed world by world over a stack of worlds, each world's entries in its own order."""
        stack = self.rt.stack
        if stack is None:
            d = float(dollars.sum()) * scale if isinstance(dollars, np.ndarray) else dollars
            self.cost += d
            self.rt.accounts.spent[kind] += d
            return
        if not isinstance(dollars, np.ndarray):
            raise TypeError("over a stack of worlds a cost is charged as an array over customers (see `stacks`)")
        for j, (w, lo, hi) in enumerate(stack.parts(self.who if rows is None else rows, self.firing)):
            d = float(dollars[lo:hi].sum()) * scale
            self.costs[j] += d
            stack.worlds[w].accounts.spent[kind] += d

    def count(self, name: str, values: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Add the float sum of `values` (entries of `rows`, the firing customers by default) to one of the
        programme's Accounts, world by world over a stack."""
        stack = self.rt.stack
        if stack is None:
            setattr(self.rt.accounts, name, getattr(self.rt.accounts, name) + float(values.sum()))
            return
        for w, lo, hi in stack.parts(self.who if rows is None else rows, self.firing):
            acc = stack.worlds[w].accounts
            setattr(acc, name, getattr(acc, name) + float(values[lo:hi].sum()))

    def number(self, name: str) -> np.ndarray:
        """An expression field of the action, evaluated for the firing customers (always finite: else the run stops)."""
        out = self.exprs[name].evaluate(self.sub_env, len(self.sub))
        if not np.isfinite(out).all():
            raise not_finite(self.rule, self.act, name, out, self.rt.own_ids(self.who), self.day)
        return out

    def room(self) -> np.ndarray:
        """Dollars of this purchase still left to discount, per firing customer."""
        return np.maximum(self.amount[self.sub] - self.eff.discount[self.sub], 0.0)


class Phrases:
    """Wording helpers lent to handlers by the text that quotes them (`lab explain`: numbers, money, expressions,
    categories; the trace story: money and points), so the formats live with that text and nowhere else."""

    def __init__(self, **helpers: Callable[..., str | bool]) -> None:
        self._helpers = helpers

    def __getattr__(self, name: str) -> Callable[..., Any]:
        try:
            return self._helpers[name]
        except KeyError:
            raise AttributeError(name) from None


class ActionHandler:
    """The meaning of one action. Subclasses set `model` (the action's dataclass) and override what applies."""

    model: ClassVar[type]
    expressions: ClassVar[tuple[str, ...]] = ()
    category_fields: ClassVar[tuple[str, ...]] = ()
    only_on: ClassVar[str | None] = None  # the one trigger the action works on, if it is restricted
    only_on_reason: ClassVar[str] = ""
    discount_source: ClassVar[bool] = False  # its dollars off are told as a discount by rule in a trace
    # whether `apply` works over a stack of worlds' rows at once (lab.policy.runtime.WorldRows): it charges only
    # through Firing.spend and Firing.count and keeps state only in per-customer columns and the ledgers
    stacks: ClassVar[bool] = False
    story_events: ClassVar[tuple[str, ...]] = ()  # the 'reward' events of a trace whose words this handler gives

    @property
    def tag(self) -> str:
        return self.model.tag  # type: ignore[attr-defined]

    # -- at validation
    def categories(self, act: Any) -> dict[str, str]:
        """The category names the action refers to, by field ('favourite' and 'new' included)."""
        out = {}
        for name in self.category_fields:
            v = getattr(act, name)
            if isinstance(v, str):
                out[name] = v
        return out

    def check(self, act: Any, ctx: CheckContext) -> list[Problem]:
        """What is wrong with the action in this policy, as (path below the action, message)."""
        return []

    def goal(self, act: Any) -> tuple[str, float] | None:
        """(points ledger, points a reward costs) when the action is a reward customers work towards."""
        return None

    # -- at run time
    def value(self, act: Any, v: Valuation) -> np.ndarray | float | None:
        """Dollars the action would give each customer of the batch now (None: nothing of value)."""
        return None

    def apply(self, act: Any, f: Firing) -> None:
        """Do the action for the firing customers; charge its cost with `f.spend`."""
        raise NotImplementedError

    # -- in words
    def words(self, act: Any, policy: m.Policy, say: Phrases) -> str:
        """What the action does, as the end of a sentence starting 'the rule will ...'."""
        raise NotImplementedError

    def story(self, event: Mapping[str, Any], say: Phrases) -> str:
        """The words of one of this handler's `story_events` in a customer's trace (`say`: the story's formats)."""
        raise NotImplementedError


# --------------------------------------------------------------------------- the registry
_REGISTRY: dict[str, ActionHandler] = {}


def register(handler: ActionHandler) -> ActionHandler:
    """Register a handler under its action's tag (one handler per tag)."""
    tag = handler.tag
    if tag in _REGISTRY and type(_REGISTRY[tag]) is not type(handler):
        raise ValueError(f"action '{tag}' already has a handler ({type(_REGISTRY[tag]).__name__})")
    _REGISTRY[tag] = handler
    return handler


@contextmanager
def registered(handler: ActionHandler) -> Iterator[ActionHandler]:
    """Register a handler for the duration of a `with` block (for tests of what a new action must provide)."""
    if handler.tag in _REGISTRY:
        raise ValueError(f"action '{handler.tag}' is already registered")
    _REGISTRY[handler.tag] = handler
    try:
        yield handler
    finally:
        del _REGISTRY[handler.tag]


def handlers() -> dict[str, ActionHandler]:
    """Every registered handler, by tag, in registration order."""
    return dict(_REGISTRY)


def handler_for(act: object) -> ActionHandler:
    """The handler of an action (by its tag)."""
    tag = getattr(act, "tag", None)
    try:
        return _REGISTRY[tag]  # type: ignore[index]
    except KeyError:
        raise KeyError(f"no handler is registered for action '{tag}'; add one in lab/policy/actions/") from None


def story_handler(what: str) -> ActionHandler | None:
    """The handler whose words tell a trace's 'reward' event `what`, if any."""
    for h in _REGISTRY.values():
        if what in h.story_events:
            return h
    return None
