"""The policy language as frozen dataclasses.

A loyalty policy is data, not code: ledgers (points and store credit), tiers,
and rules that say *on* which trigger, *when* (a condition) and *do* what
(actions). The YAML keys are the field names below; docs/POLICIES.md and the
JSON Schema (`lab schema`) are generated from, or checked against, these
definitions, so the docstrings and `doc=` texts are the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from lab.config import Expr, option

Period = Literal["day", "week", "month", "year", "ever"]
StackMode = Literal["all", "first", "best"]

PERIOD_DAYS: dict[str, float] = {"day": 1, "week": 7, "month": 30, "year": 365, "ever": float("inf")}

# Bounds on the numbers a policy writes, so that none is infinite or absurd (no `.inf`, no 1e308): each is far
# beyond anything a store of this world can reach, and small enough that the books stay finite.
MAX_CUSTOMER_DOLLARS = 1e6  # dollars given to or asked of one customer at once: beyond any retail purchase or limit
MAX_POINT_VALUE = 100.0  # dollars one point is worth: loyalty points are worth cents
MAX_POINTS = 1e9  # points in one reward, award or cap: a billion points is no loyalty currency in use
MAX_PROGRAMME_DOLLARS = 1e12  # a programme's budget: more than the yearly revenue of the largest retailer
MAX_TIMES = 100_000  # fires of one rule per customer per period: more than one a day for centuries
_D = f" (at most {MAX_CUSTOMER_DOLLARS:.0e}: no retail purchase or credit line is larger)"
_P = f" (at most {MAX_POINTS:.0e} points: no loyalty currency needs more)"
_B = f" (at most {MAX_PROGRAMME_DOLLARS:.0e}: more than the yearly revenue of the largest retailer)"


# --------------------------------------------------------------------------- ledgers
@dataclass(frozen=True, kw_only=True)
class PointsLedger:
    """A points currency: earned in lots, redeemed first-in first-out, expiring by lot."""

    value: float = option(f"cash value of one point in dollars (prices the liability and the cost of rewards; "
                          f"at most {MAX_POINT_VALUE:g}: points are worth cents)",
                          default=0.01, min=0, max=MAX_POINT_VALUE)
    expiry_days: int | None = option("days after earning when a lot of points expires; omit for points that never "
                                     "expire", default=None, min=1, max=3650)
    lot_days: int = option("points earned within the same lot_days window form one lot (the granularity of expiry)",
                           default=30, min=1, max=365)
    pending_days: int = option("days before earned points mature and can be redeemed (returns window)",
                               default=0, min=0, max=365)


@dataclass(frozen=True, kw_only=True)
class CreditLine:
    """A store credit line: spend now, repay on a monthly statement, or fall delinquent and default."""

    limit: float = option("credit limit granted at enrolment in dollars (0: only grant_credit actions open a line)"
                          + _D,
                          default=0.0, min=0, max=MAX_CUSTOMER_DOLLARS)
    apr: float = option("annual interest rate on the balance carried past a statement (0.2 = 20%)",
                        default=0.0, min=0, max=1)
    statement_days: int = option("days between statements", default=30, min=7, max=365)
    min_payment_percent: float = option("minimum repayment as a share of the statement balance",
                                        default=0.05, min=0, max=1)
    min_payment: float = option("minimum repayment in dollars (or the whole balance when smaller)" + _D,
                                default=10.0, min=0, max=MAX_CUSTOMER_DOLLARS)
    late_fee: float = option("fee charged when a minimum payment is missed" + _D,
                             default=0.0, min=0, max=MAX_CUSTOMER_DOLLARS)
    delinquent_after_missed: int = option("missed minimum payments in a row after which the account is delinquent",
                                          default=1, min=1, max=24)
    write_off_after_days: int = option("days delinquent after which the balance is written off as bad debt and the "
                                       "line closed", default=180, min=1, max=3650)


# --------------------------------------------------------------------------- triggers
@dataclass(frozen=True, kw_only=True)
class OnPurchase:
    """Fires on every purchase."""

    tag: ClassVar[str] = "purchase"


@dataclass(frozen=True, kw_only=True)
class OnVisit:
    """Fires on every store trip: each purchase and each service contact."""

    tag: ClassVar[str] = "visit"


@dataclass(frozen=True, kw_only=True)
class OnEnrolment:
    """Fires once when a customer joins the programme (day 0 for the starting population)."""

    tag: ClassVar[str] = "enrolment"


@dataclass(frozen=True, kw_only=True)
class OnSchedule:
    """Fires for every member on a calendar schedule (campaigns, statements of account, seasonal offers)."""

    tag: ClassVar[str] = "schedule"
    every: Literal["day", "week", "month", "year"] = option("how often", default="month")
    day: int = option("which day of the week (1-7), month (1-28) or year (1-365) it fires on",
                      default=1, min=1, max=365)


@dataclass(frozen=True, kw_only=True)
class OnInactivity:
    """Fires once when a member has gone `days` days without a purchase (a win-back trigger)."""

    tag: ClassVar[str] = "inactivity"
    days: int = option("days without a purchase", default=60, min=1, max=3650)


@dataclass(frozen=True, kw_only=True)
class OnBirthday:
    """Fires on the customer's birthday each year."""

    tag: ClassVar[str] = "birthday"


@dataclass(frozen=True, kw_only=True)
class OnAnniversary:
    """Fires each year on the day the customer enrolled."""

    tag: ClassVar[str] = "anniversary"


@dataclass(frozen=True, kw_only=True)
class OnServiceContact:
    """Fires when a customer contacts the store (an inquiry or a complaint)."""

    tag: ClassVar[str] = "service_contact"
    kind: Literal["any", "inquiry", "complaint"] = option("which contacts", default="any")


@dataclass(frozen=True, kw_only=True)
class OnTierReview:
    """Fires for every member right after a tier review."""

    tag: ClassVar[str] = "tier_review"


@dataclass(frozen=True, kw_only=True)
class OnReferral:
    """Fires for a referrer when a customer they referred enrols."""

    tag: ClassVar[str] = "referral"


Trigger = (
    OnPurchase | OnVisit | OnEnrolment | OnSchedule | OnInactivity | OnBirthday | OnAnniversary
    | OnServiceContact | OnTierReview | OnReferral
)


# --------------------------------------------------------------------------- actions
@dataclass(frozen=True, kw_only=True)
class Award:
    """Add points to a points ledger (an expression, evaluated per customer; tier earn multipliers apply)."""

    tag: ClassVar[str] = "award"
    ledger: str = option("name of a points ledger")
    amount: Expr = option("points to add, e.g. 'floor(purchase.amount) * 2'", examples=["floor(purchase.amount) * 2"])


@dataclass(frozen=True, kw_only=True)
class Deduct:
    """Remove points from a points ledger, oldest lots first, never below zero."""

    tag: ClassVar[str] = "deduct"
    ledger: str = option("name of a points ledger")
    amount: Expr = option("points to remove")


@dataclass(frozen=True, kw_only=True)
class Redeem:
    """Exchange points for a reward on this purchase once the balance reaches `cost` (the threshold)."""

    tag: ClassVar[str] = "redeem"
    ledger: str = option("name of a points ledger")
    cost: float = option("points one reward costs (the threshold)" + _P, gt=0, max=MAX_POINTS)
    discount: float = option("dollars off this purchase per reward" + _D, default=0.0, min=0, max=MAX_CUSTOMER_DOLLARS)
    free_item: str | None = option("or: a free item from this category per reward", default=None)
    max_times: int = option("rewards redeemed at most in one purchase", default=1, min=1, max=100)


@dataclass(frozen=True, kw_only=True)
class Discount:
    """A discount on this purchase: a percentage, a fixed amount, or both (never more than the purchase)."""

    tag: ClassVar[str] = "discount"
    percent: Expr = option("percent off (10 = 10%)", default=Expr("0"))
    fixed: Expr = option("dollars off", default=Expr("0"))


@dataclass(frozen=True, kw_only=True)
class Voucher:
    """A voucher worth `value` dollars off the next purchase within `valid_days` (it also draws the customer back)."""

    tag: ClassVar[str] = "voucher"
    value: Expr = option("dollars off the next purchase")
    valid_days: int = option("days the voucher stays valid", default=30, min=1, max=3650)


@dataclass(frozen=True, kw_only=True)
class FreeItem:
    """Give a free item from a category (the performance system: a free shirt for the shirt buyer)."""

    tag: ClassVar[str] = "free_item"
    category: str = option("a category of the store, or 'favourite' for the customer's most bought category",
                           default="favourite")


@dataclass(frozen=True, kw_only=True)
class Trial:
    """Bundle a free trial of a category the customer has not bought, which may widen what they buy."""

    tag: ClassVar[str] = "trial"
    category: str = option("a category of the store, or 'new' for the customer's least bought category", default="new")


@dataclass(frozen=True, kw_only=True)
class Offer:
    """Send a targeted offer: a cost per contact, a response probability, and an uplift while it lasts."""

    tag: ClassVar[str] = "offer"
    cost_per_contact: float = option("dollars per customer contacted" + _D,
                                     default=0.5, min=0, max=MAX_CUSTOMER_DOLLARS)
    response: float = option("probability a contacted customer responds", default=0.1, min=0, max=1)
    frequency_uplift: float = option("relative rise in purchase rate for responders (0.3 = +30%)",
                                     default=0.3, min=0, max=10)
    basket_uplift: float = option("relative rise in basket size for responders", default=0.0, min=0, max=10)
    days: int = option("days the uplift lasts", default=30, min=1, max=365)


@dataclass(frozen=True, kw_only=True)
class SetTier:
    """Set the customer's tier, or move it up or down by a number of levels."""

    tag: ClassVar[str] = "set_tier"
    tier: str | None = option("the tier to set", default=None)
    by: int = option("or: levels to move (+1 up, -1 down)", default=0, min=-10, max=10)


@dataclass(frozen=True, kw_only=True)
class GrantCredit:
    """Open or raise a credit line: the limit becomes max(current limit, `limit`) + `raise_by`."""

    tag: ClassVar[str] = "grant_credit"
    line: str = option("name of a credit line")
    limit: Expr = option("new limit in dollars (never lowers an existing one)", default=Expr("0"))
    raise_by: Expr = option("dollars added to the limit", default=Expr("0"))


@dataclass(frozen=True, kw_only=True)
class ReferralReward:
    """On a referral: award points to the referrer and to the customer they brought."""

    tag: ClassVar[str] = "referral_reward"
    ledger: str = option("name of a points ledger")
    referrer: float = option("points for the referrer" + _P, default=0.0, min=0, max=MAX_POINTS)
    referred: float = option("points for the new customer" + _P, default=0.0, min=0, max=MAX_POINTS)


# Each action's meaning (check, value, how it applies, its words) is its handler's, in lab.policy.actions;
# tests/test_actions.py checks that this union and the registered handlers name the same actions.
Action = (Award | Deduct | Redeem | Discount | Voucher | FreeItem | Trial | Offer | SetTier | GrantCredit
          | ReferralReward)


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True, kw_only=True)
class Cap:
    """A per-customer limit on how often a rule fires, how many points it awards or how many dollars it gives,
    per period."""

    per: Period = option("the period the cap resets on", default="month")
    times: int | None = option(f"times the rule may fire per customer per period (at most {MAX_TIMES:,})",
                               default=None, min=1, max=MAX_TIMES)
    points: float | None = option("points the rule may award per customer per period" + _P,
                                  default=None, min=0, max=MAX_POINTS)
    dollars: float | None = option("dollars the rule may give each customer per period, valued as for budgets "
                                   "(discounts, vouchers at face value, points at their cash value, items at retail); "
                                   "a firing that would pass it does not happen" + _D,
                                   default=None, min=0, max=MAX_CUSTOMER_DOLLARS)


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One rule: on a trigger, when a condition holds, do the actions."""

    id: str = option("a unique name; it appears in every result the rule produces")
    on: Trigger = option("the trigger", kind="trigger")
    do: tuple[Action, ...] = option("the actions, applied in order", kind="action")
    when: Expr = option("condition over customer, purchase and store fields", default=Expr("true"))
    group: str | None = option("rules of one group compete as the policy's stacking says", default=None)
    cap: Cap | None = option("per-customer cap", default=None)
    budget: float | None = option("dollars this rule may cost in all; it stops firing when spent" + _B,
                                  default=None, min=0, max=MAX_PROGRAMME_DOLLARS)
    description: str = option("what the rule is for, in words", default="")


@dataclass(frozen=True, kw_only=True)
class TierLevel:
    """A tier and its benefits."""

    qualify: float = option("the metric a customer needs over the window to reach this tier "
                            "(dollars, purchases or points; at most 1e9)", default=0.0, min=0, max=MAX_POINTS)
    earn_multiplier: float = option("multiplies points awarded", default=1.0, min=0, max=100)
    discount_percent: float = option("percent off every purchase", default=0.0, min=0, max=100)


@dataclass(frozen=True, kw_only=True)
class Tiers:
    """Tiers, lowest first, with qualification over a rolling window and downgrade rules."""

    levels: dict[str, TierLevel] = option("tiers from lowest to highest; the first is where everyone starts")
    metric: Literal["spend", "purchases", "points"] = option("what qualifies: dollars spent, purchases, or points "
                                                             "earned",
                                                             default="spend")
    ledger: str | None = option("the points ledger when metric is points", default=None)
    window_days: int = option("the rolling window the metric is summed over", default=365, min=30, max=3650)
    review_days: int = option("days between tier reviews", default=30, min=1, max=365)
    downgrade: Literal["never", "one_level", "to_qualified"] = option("what happens to a customer below their "
                                                                      "tier's bar",
                                                                      default="one_level")


@dataclass(frozen=True, kw_only=True)
class Budget:
    """A global budget on the programme's reward cost."""

    amount: float = option("dollars" + _B, min=0, max=MAX_PROGRAMME_DOLLARS)
    per: Period = option("the period it resets on", default="year")


@dataclass(frozen=True, kw_only=True)
class Policy:
    """A loyalty policy: ledgers, tiers, rules. A policy with no rules is the no-programme baseline."""

    name: str = option("the policy's name, used in every result")
    description: str = option("what the policy is, in a sentence or two", default="")
    participation: float = option("share of customers who join the programme", default=1.0, min=0, max=1)
    cost_per_member_per_year: float = option("running cost of the programme per member (cards, systems, staff time)"
                                             + _D, default=0.0, min=0, max=MAX_CUSTOMER_DOLLARS)
    points: dict[str, PointsLedger] = option("points currencies by name", default_factory=dict)
    credit: dict[str, CreditLine] = option("store credit lines by name", default_factory=dict)
    tiers: Tiers | None = option("tiers", default=None)
    rules: tuple[Rule, ...] = option("the rules", default=())
    stacking: dict[str, StackMode] = option("for each rule group: all matching rules fire, the first, or the best for "
                                            "the customer", default_factory=dict)
    budget: Budget | None = option("global budget on reward cost", default=None)

    @property
    def is_baseline(self) -> bool:
        """True for the no-programme policy (nothing to join, nothing to earn)."""
        return not self.rules and not self.points and not self.credit and self.tiers is None
