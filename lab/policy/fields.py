"""The facts a policy's expressions may read: one declared table, read by the compiler, `lab explain` and both engines.

Each field has a name (as written in an expression), a type, a unit, a
one-line meaning (the schema's doc, shown in errors and the docs) and the
noun phrase `lab explain` uses for it. `served_by` says who supplies it:

- ``engine``: a customer or store fact the simulator owns, asked of the
  engine's `FieldSource` (both engines serve exactly these, see
  `ENGINE_SERVED`; tests/test_fields.py checks both serve the same values);
- ``event``: a fact of the triggering event (the purchase, the service
  contact), passed in with it;
- ``runtime``: programme state the rules engine owns (tiers, ledgers, vouchers).

A field with ``expression=False`` is served to the rules engine for its own
use but may not be written in an expression (`customer.least_category` picks
the category a trial of a "new" category gives).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from lab.policy.expr import ExprType

__all__ = ["FieldSpec", "FIELDS", "ENGINE_SERVED", "expression_fields", "nouns", "check_served", "window_kind"]

Server = Literal["engine", "event", "runtime"]


@dataclass(frozen=True)
class FieldSpec:
    """One declared field: its name, type, unit, meaning, words in `lab explain`, and who serves it."""

    name: str
    type: ExprType
    unit: str  # "" when the field has none (flags, names)
    meaning: str
    noun: str
    served_by: Server
    expression: bool = True  # whether policy expressions may read it
    window: int = 0  # for a rolling-window field: the days it looks back over (today and the window - 1 before)


_N, _B, _E, _M = ExprType.NUMBER, ExprType.BOOL, ExprType.ENUM, ExprType.MAP

FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("customer.segment", _E, "", "the customer's segment", "the customer's segment", "engine"),
    FieldSpec("customer.member", _B, "", "whether the customer has joined the programme",
              "the customer is a member", "engine"),
    FieldSpec("customer.tenure_days", _N, "days", "days since the customer was acquired",
              "days since the customer was acquired", "engine"),
    FieldSpec("customer.purchases", _N, "purchases", "purchases so far (before this one)",
              "the customer's purchases so far", "engine"),
    FieldSpec("customer.spend", _N, "dollars", "dollars spent so far, after discounts",
              "dollars the customer has spent so far", "engine"),
    FieldSpec("customer.last_purchase", _N, "day", "day of the last purchase (use days_since)",
              "the day of the customer's last purchase", "engine"),
    FieldSpec("customer.satisfaction", _N, "0 to 1", "satisfaction, 0 to 1",
              "the customer's satisfaction (0 to 1)", "engine"),
    FieldSpec("customer.category_purchases", _M, "purchases", "purchases so far in each category",
              "the customer's purchases in", "engine"),
    FieldSpec("customer.category_spend", _M, "dollars", "dollars spent so far in each category",
              "dollars the customer has spent in", "engine"),
    FieldSpec("customer.favourite_category", _E, "", "the category the customer has bought most",
              "the customer's favourite category", "engine"),
    FieldSpec("customer.least_category", _E, "", "the category the customer has bought least",
              "the customer's least-bought category", "engine", expression=False),
    FieldSpec("customer.categories_bought", _N, "categories", "how many different categories the customer has bought",
              "the number of categories the customer has bought", "engine"),
    FieldSpec("customer.referred", _B, "", "whether the customer came by referral",
              "the customer came by referral", "engine"),
    FieldSpec("customer.referrals", _N, "customers", "customers this customer has referred",
              "customers this customer has referred", "engine"),
    FieldSpec("purchase.amount", _N, "dollars", "dollars of this purchase before discounts",
              "the purchase amount in dollars", "event"),
    FieldSpec("purchase.category", _E, "", "the category of this purchase", "the purchase's category", "event"),
    FieldSpec("purchase.number", _N, "purchases", "1 for the first purchase, 2 for the second, ...",
              "the purchase's number (1 for the first)", "event"),
    FieldSpec("contact.complaint", _B, "", "on service contacts: whether it is a complaint",
              "the contact is a complaint", "event"),
    FieldSpec("contact.resolved", _B, "", "on service contacts: whether staff handled it well",
              "staff handled the contact well", "event"),
    FieldSpec("store.service_quality", _N, "0 to 1", "service quality, 0 to 1",
              "the store's service quality (0 to 1)", "engine"),
    FieldSpec("store.day_of_week", _N, "day", "1 (Monday) to 7", "the day of the week (1 = Monday)", "engine"),
    FieldSpec("store.day_of_month", _N, "day", "1 to 30 (months are 30 days)", "the day of the month", "engine"),
    FieldSpec("store.month", _N, "month", "1 to 12", "the month (1 to 12)", "engine"),
    FieldSpec("store.day_of_year", _N, "day", "1 to 365", "the day of the year", "engine"),
    FieldSpec("now", _N, "days", "today, in days from the start", "today (days from the start)", "engine"),
    FieldSpec("customer.tier", _E, "", "the customer's tier", "the customer's tier", "runtime"),
    FieldSpec("customer.tier_level", _N, "level", "0 for the lowest tier, 1 for the next, ...",
              "the customer's tier level (0 = lowest)", "runtime"),
    FieldSpec("customer.qualifying", _N, "tier metric", "the tier metric over the tier window so far",
              "the customer's tier metric so far this window", "runtime"),
    FieldSpec("customer.points", _M, "points", "redeemable points in each points ledger",
              "the customer's redeemable points in", "runtime"),
    FieldSpec("customer.points_pending", _M, "points", "points not yet mature in each ledger",
              "the customer's pending points in", "runtime"),
    FieldSpec("customer.points_earned", _M, "points", "points ever earned in each ledger",
              "points the customer has ever earned in", "runtime"),
    FieldSpec("customer.points_expired", _M, "points", "points ever expired in each ledger",
              "points the customer has ever lost to expiry in", "runtime"),
    FieldSpec("customer.credit_limit", _M, "dollars", "credit limit of each credit line",
              "the customer's credit limit on", "runtime"),
    FieldSpec("customer.credit_owed", _M, "dollars", "balance owed on each credit line", "what the customer owes on",
              "runtime"),
    FieldSpec("customer.credit_available", _M, "dollars", "credit that can still be drawn on each line",
              "the customer's available credit on", "runtime"),
    FieldSpec("customer.days_delinquent", _M, "days", "days each credit line has been delinquent (0 if not)",
              "days the customer has been delinquent on", "runtime"),
    FieldSpec("customer.voucher", _N, "dollars", "value of the customer's unused voucher",
              "the value of the customer's unused voucher", "runtime"),
    FieldSpec("customer.rewards", _N, "rewards", "rewards redeemed so far", "rewards the customer has redeemed so far",
              "runtime"),
    *(FieldSpec(f"customer.spend_{n}d", _N, "dollars",
                f"dollars spent, after discounts, over the last {n} days (today included, this purchase not)",
                f"dollars the customer has spent over the last {n} days", "runtime", window=n) for n in (30, 90, 365)),
    *(FieldSpec(f"customer.purchases_{n}d", _N, "purchases",
                f"purchases over the last {n} days (today included, this purchase not)",
                f"the customer's purchases over the last {n} days", "runtime", window=n) for n in (30, 90, 365)),
    *(FieldSpec(f"customer.visits_{n}d", _N, "visits",
                f"visits (purchases and service contacts) over the last {n} days (today included, this event not)",
                f"the customer's visits (purchases and service contacts) over the last {n} days", "runtime",
                window=n) for n in (30, 90, 365)),
)

BY_NAME: dict[str, FieldSpec] = {f.name: f for f in FIELDS}
ENGINE_SERVED: tuple[str, ...] = tuple(f.name for f in FIELDS if f.served_by == "engine")


def window_kind(name: str) -> str:
    """What a rolling-window field counts: 'spend', 'purchases' or 'visits' (customer.visits_30d -> 'visits')."""
    spec = BY_NAME[name]
    if not spec.window:
        raise KeyError(f"{name} is not a rolling-window field")
    return name.split(".", 1)[1].rsplit("_", 1)[0]


def expression_fields(*served_by: Server) -> dict[str, tuple[ExprType, str]]:
    """The fields expressions may read that these servers supply, as name -> (type, meaning), in table order."""
    return {f.name: (f.type, f.meaning) for f in FIELDS if f.expression and f.served_by in served_by}


def nouns() -> dict[str, str]:
    """The noun phrase `lab explain` uses for each field an expression may read."""
    return {f.name: f.noun for f in FIELDS if f.expression}


def check_served(served: Iterable[str], engine: str) -> None:
    """Raise if an engine's table of served fields is not exactly the declared engine-served fields."""
    have = set(served)
    missing = [n for n in ENGINE_SERVED if n not in have]
    extra = sorted(have - set(ENGINE_SERVED))
    if missing or extra:
        raise LookupError(f"{engine} must serve exactly the fields lab.policy.fields declares as served by the "
                          f"engine; missing {missing}, undeclared {extra}: declare a new field in FIELDS and serve it "
                          f"in both engines")
