"""What the programme did to a batch of customers, as typed records, and which book each kind of money goes to.

The programme's own books (the runtime's `Accounts`) hold its spending by
kind, each kind declared once in :data:`COSTS`: the value of points awarded,
dollars off purchases by source, goods, offers, vouchers. Every dollar a rule
costs is spent into one of them (see `Firing.spend`), so the rules' costs add
up to the declared kinds -- an identity the property tests check for every
registered action.

The runtime answers every event with an :class:`Effects`: dollars off the
purchase, reward value received (for delight), the part put on credit, the
rules that fired, and :class:`Given` records -- goods and contacts handed to
customers (free items, trials, offers). Each kind of record is declared once in
:data:`GIVEN`: what it costs the store per unit and which of the engine's day
books that cost goes to. Both engines book every record through
:func:`book_given`, so a new kind of cost is declared here and in the action
that produces it, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from lab.policy import model as m


@dataclass(frozen=True)
class Cost:
    """A kind of money the programme spends: its meaning, and whether rules spend it (else: tiers or vouchers)."""

    name: str
    meaning: str
    by_rules: bool = True
    discount: bool = False  # dollars off a purchase (part of Effects.discount)


COSTS: dict[str, Cost] = {c.name: c for c in (
    Cost("points_awarded", "value of the points rules award, at each ledger's value per point"),
    Cost("rule_discounts", "dollars off purchases given by discount actions", discount=True),
    Cost("points_discounts", "dollars off purchases paid for with points (redeem actions)", discount=True),
    Cost("reward_goods", "the store's unit cost of goods rules give away (free items, trials), at the world's costs"),
    Cost("offers", "the cost of contacting customers with offers"),
    Cost("vouchers", "face value of the vouchers rules issue (priced when issued)"),
    Cost("tier_discounts", "dollars off purchases for the customer's tier", by_rules=False, discount=True),
    Cost("voucher_discounts", "dollars off purchases paid for with vouchers", by_rules=False, discount=True),
)}


@dataclass(frozen=True)
class Given:
    """Goods or contacts one action gave to customers `who` (each customer may appear once per unit).

    `codes` are the category codes of goods; `offer` the offer sent."""

    kind: str
    who: np.ndarray
    codes: np.ndarray | None = None
    offer: m.Offer | None = None

    def unit_costs(self, unit_cost: np.ndarray) -> np.ndarray:
        """The store's cost of each unit, in dollars (`unit_cost`: the store's cost of one item of each category)."""
        return GIVEN[self.kind].unit_costs(self, unit_cost)

    def total(self, unit_cost: np.ndarray) -> float:
        """The store's cost of the whole record, in dollars."""
        return GIVEN[self.kind].total(self, unit_cost)


@dataclass(frozen=True)
class GivenKind:
    """A kind of thing the programme hands out: its meaning, its cost, and the day book the cost goes to.

    `goods` says whether the cost is goods given to the customer (it then counts
    against that customer's lifetime value as well as the store's profit)."""

    name: str
    meaning: str
    book: str
    goods: bool
    unit_costs: Callable[[Given, np.ndarray], np.ndarray]
    total: Callable[[Given, np.ndarray], float]


def _goods_units(g: Given, unit_cost: np.ndarray) -> np.ndarray:
    assert g.codes is not None
    return unit_cost[g.codes]


def _goods_total(g: Given, unit_cost: np.ndarray) -> float:
    return float(_goods_units(g, unit_cost).sum())


def _offer_units(g: Given, unit_cost: np.ndarray) -> np.ndarray:
    assert g.offer is not None
    return np.full(len(g.who), g.offer.cost_per_contact)


def _offer_total(g: Given, unit_cost: np.ndarray) -> float:
    assert g.offer is not None
    return g.offer.cost_per_contact * len(g.who)


# Declared in booking order: both engines book records kind by kind in this order, each kind in the order given.
GIVEN: dict[str, GivenKind] = {
    "free_item": GivenKind("free_item", "a free item of a category (a reward)", "reward_goods", True,
                           _goods_units, _goods_total),
    "trial": GivenKind("trial", "a free trial of a category bundled with the purchase", "reward_goods", True,
                       _goods_units, _goods_total),
    "offer": GivenKind("offer", "a targeted offer sent to a customer (a cost per contact)", "offers_cost", False,
                       _offer_units, _offer_total),
}


def book_given(day_book: object, g: Given, amount: float) -> None:
    """Add `amount` dollars of record `g` to the day book its kind declares."""
    name = GIVEN[g.kind].book
    setattr(day_book, name, getattr(day_book, name) + amount)


@dataclass
class Effects:
    """What the programme did to a batch of customers; the caller acts on it.

    Money per customer (aligned with `idx`): `discount` (dollars off this purchase,
    all sources), `points_discount` (of which paid for with points), `delight`
    (dollars of reward value received), `credit` (dollars put on credit), and
    `rules` (bit i set when rule i fired). Goods and contacts are :class:`Given`
    records, kept per kind in the order they were given."""

    idx: np.ndarray
    discount: np.ndarray
    points_discount: np.ndarray
    delight: np.ndarray
    rules: np.ndarray
    credit: np.ndarray
    given: dict[str, list[Given]] = field(default_factory=dict)

    @staticmethod
    def empty(idx: np.ndarray) -> "Effects":
        n = len(idx)
        z = np.zeros(n)
        return Effects(idx, z, z.copy(), z.copy(), np.zeros(n, dtype=np.uint64), z.copy())

    def give(self, kind: str, who: np.ndarray, codes: np.ndarray | None = None, offer: m.Offer | None = None) -> None:
        """Record goods or contacts given (kind: a key of GIVEN)."""
        if kind not in GIVEN:
            raise KeyError(f"'{kind}' is not a declared kind of thing given; declare it in lab.policy.effects.GIVEN")
        self.given.setdefault(kind, []).append(Given(kind, who, codes, offer))

    def records(self) -> Iterator[Given]:
        """Every record, kind by kind in GIVEN's order (the order the books add them up in)."""
        for kind in GIVEN:
            yield from self.given.get(kind, ())

    def of(self, kind: str) -> list[Given]:
        return self.given.get(kind, [])

    @property
    def free_items(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(customers, category codes) of each free-item record."""
        return [(g.who, g.codes) for g in self.of("free_item")]  # type: ignore[misc]

    @property
    def trials(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(customers, category codes) of each trial record."""
        return [(g.who, g.codes) for g in self.of("trial")]  # type: ignore[misc]

    @property
    def offers(self) -> list[tuple[np.ndarray, m.Offer]]:
        """(customers, offer) of each offer record."""
        return [(g.who, g.offer) for g in self.of("offer")]  # type: ignore[misc]
