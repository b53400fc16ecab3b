"""The world a policy is tested in, as frozen dataclasses.

A scenario names the store (categories, costs, staff, profit sharing,
marketing), the market, the customer segments and how they respond to a
programme, and which policies to compare. Every number has a default with a
source or a stated reason in docs/MODEL.md; YAML keys are the field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from lab.config import option

TIME_UNIT_DAYS: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
TimeUnit = Literal["days", "weeks", "months", "years"]


# --------------------------------------------------------------------------- bounds across fields
#: The most purchases a day a segment's mean customer may make (r / alpha), and the largest scale of the gamma
#: mixing of purchase rates (1 / alpha), both in purchases per day. No store's customers average ten purchases a
#: day; a larger scale puts customers buying hundreds of times a day in the tail (a tiny alpha gave rates so large
#: the engine could not draw them). The shipped stores' largest mean is 0.29 a day (a cafe's regulars).
MAX_PURCHASES_PER_DAY = 10.0
#: The largest mean dropout rate of a Pareto/NBD segment (s / beta), per day: an average customer who is gone
#: within the hour is not a customer of this world.
MAX_DROPOUT_PER_DAY = 1.0
#: The largest mean spend per transaction of a segment, p x gamma / (q - 1), in dollars: the bound of an item's
#: price and of gamma. A q just above 1 makes this mean as large as it likes (infinite at q = 1).
MAX_MEAN_SPEND = 1e6


def purchase_bounds(pu: BGNBD | ParetoNBD) -> list[tuple[str, str]]:
    """(field, why) for each cross-field bound a segment's purchase model breaks (empty if none)."""
    unit = TIME_UNIT_DAYS[pu.time_unit]
    out: list[tuple[str, str]] = []
    mean, scale = pu.r / pu.alpha / unit, 1.0 / pu.alpha / unit
    if mean > MAX_PURCHASES_PER_DAY:
        out.append(("alpha", f"r / alpha = {mean:.4g} purchases a day for the mean customer (r {pu.r:g}, alpha "
                              f"{pu.alpha:g} {pu.time_unit}); the most a store's mean customer can make is "
                              f"{MAX_PURCHASES_PER_DAY:g} a day: raise alpha or lower r"))
    elif scale > MAX_PURCHASES_PER_DAY:
        out.append(("alpha", f"1 / alpha = {scale:.4g} purchases a day is the scale of the purchase rates (alpha "
                              f"{pu.alpha:g} {pu.time_unit}); above {MAX_PURCHASES_PER_DAY:g} a day some customers "
                              "buy hundreds of times a day: raise alpha"))
    if isinstance(pu, ParetoNBD) and pu.s / pu.beta / unit > MAX_DROPOUT_PER_DAY:
        out.append(("beta", f"s / beta = {pu.s / pu.beta / unit:.4g} dropouts a day for the mean customer (s {pu.s:g}, "
                             f"beta {pu.beta:g} {pu.time_unit}); at most {MAX_DROPOUT_PER_DAY:g} a day (a customer "
                             "stays a day or more on average): raise beta or lower s"))
    return out


def spend_bound(sp: GammaGamma) -> str | None:
    """Why a segment's Gamma-Gamma spend breaks its cross-field bound, or None."""
    mean = sp.p * sp.gamma / (sp.q - 1.0)
    if mean <= MAX_MEAN_SPEND:
        return None
    return (f"mean spend per transaction p x gamma / (q - 1) = {mean:.4g} dollars (p {sp.p:g}, q {sp.q:.10g}, gamma "
            f"{sp.gamma:g}); at most {MAX_MEAN_SPEND:g}: raise q or lower p or gamma")


# --------------------------------------------------------------------------- customers
@dataclass(frozen=True, kw_only=True)
class BGNBD:
    """Purchase timing and dropout of the BG/NBD model (Fader, Hardie & Lee 2005)."""

    tag: ClassVar[str] = "bgnbd"
    r: float = option("shape of the gamma mixing of purchase rates", gt=0)
    alpha: float = option("scale of the gamma mixing of purchase rates, in time units", gt=0)
    a: float = option("beta mixing of the dropout probability after each purchase", gt=0)
    b: float = option("beta mixing of the dropout probability after each purchase", gt=0)
    time_unit: TimeUnit = option("the time unit the parameters were estimated in", default="weeks")


@dataclass(frozen=True, kw_only=True)
class ParetoNBD:
    """Purchase timing and dropout of the Pareto/NBD model (Schmittlein, Morrison & Colombo 1987)."""

    tag: ClassVar[str] = "paretonbd"
    r: float = option("shape of the gamma mixing of purchase rates", gt=0)
    alpha: float = option("scale of the gamma mixing of purchase rates, in time units", gt=0)
    s: float = option("shape of the gamma mixing of dropout rates", gt=0)
    beta: float = option("scale of the gamma mixing of dropout rates, in time units", gt=0)
    time_unit: TimeUnit = option("the time unit the parameters were estimated in", default="weeks")


@dataclass(frozen=True, kw_only=True)
class GammaGamma:
    """Spend per transaction (Fader, Hardie & Lee 2005, RFM and CLV): z ~ Gamma(p, nu), nu ~ Gamma(q, gamma)."""

    p: float = option("shape of spend per transaction (at most 1e4: beyond it spend no longer varies between baskets)",
                      gt=0, max=1e4)
    q: float = option("shape of the customer-level scale mixing", gt=1)
    gamma: float = option("scale of the customer-level mixing, in dollars (at most 1e6: mean spend is "
                          "p x gamma / (q - 1), and no store sells baskets of millions)", gt=0, max=1e6)


@dataclass(frozen=True, kw_only=True)
class Segment:
    """A group of customers with their own purchase, spend and response parameters."""

    share: float = option("share of the population (shares are normalised)", gt=0)
    purchases: BGNBD | ParetoNBD = option("purchase timing and latent dropout", kind="model")
    spend: GammaGamma = option("spend per transaction")
    categories: dict[str, float] = option("relative preference for each category (omitted ones: the store's shares)",
                                          default_factory=dict)
    category_concentration: float = option("Dirichlet concentration of individual preferences around the segment's "
                                           "(low: each customer favours few categories)", default=2.0, gt=0)
    reward_sensitivity: float = option("how strongly rewards move this segment (0: not at all)",
                                       default=1.0, min=0, max=5)
    credit_appetite: float = option("share of a purchase put on store credit when a line is open",
                                    default=0.3, min=0, max=1)
    default_risk: float = option("probability per statement of missing the minimum payment", default=0.03, min=0, max=1)
    repay_share: float = option("share of the balance above the minimum repaid at each statement",
                                default=0.5, min=0, max=1)
    referral_propensity: float = option("probability a fully satisfied customer refers someone per purchase",
                                        default=0.01, min=0, max=1)
    service_contact_rate: float = option("service contacts (inquiries, complaints) per customer per year",
                                         default=1.0, min=0, max=365)
    complaint_share: float = option("share of service contacts that are complaints", default=0.3, min=0, max=1)
    satisfaction: float = option("starting satisfaction (0-1); the reference at which BG/NBD parameters hold",
                                 default=0.7, min=0, max=1)
    variety_seeking: float = option("probability a bundled trial turns into a new category bought",
                                    default=0.3, min=0, max=1)


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    """How customers respond to a programme; each effect can be switched off by setting it to 0."""

    enabled: bool = option("master switch: false turns every programme response and the flywheel off", default=True)
    goal_gradient: float = option("purchase-rate rise as a customer nears a reward threshold (Kivetz, Urminsky & Zheng "
                                  "2006); 0 = off", default=0.4, min=0, max=5)
    goal_gradient_power: float = option("curvature of the goal gradient in progress towards the threshold",
                                        default=2.0, min=0.5, max=10)
    points_hope: float = option("the system of hope: dropout is divided by 1 + points_hope x reward sensitivity x "
                                "progress to the next reward", default=0.5, min=0, max=10)
    expiry_frustration: float = option("satisfaction lost when points worth one average basket expire",
                                       default=0.15, min=0, max=1)
    reward_delight: float = option("satisfaction gained from a reward worth one average basket",
                                   default=0.05, min=0, max=1)
    habituation: float = option("how fast rewards wear off: a reward's delight is divided by 1 + habituation x "
                                "(rewards in the last satisfaction_memory_days, decaying)", default=1.0, min=0, max=10)
    debt_stress: float = option("satisfaction lost per day at a fully used credit line", default=0.002, min=0, max=0.1)
    credit_spend_ahead: float = option("purchase-rate rise with unused credit (spending ahead of income)",
                                       default=0.3, min=0, max=5)
    satisfaction_rate_effect: float = option("log purchase-rate change per unit satisfaction above the reference",
                                             default=1.0, min=0, max=10)
    satisfaction_churn_effect: float = option("log dropout change per unit satisfaction below the reference",
                                              default=2.0, min=0, max=10)
    satisfaction_memory_days: float = option("days over which satisfaction drifts back to what "
                                             "service quality supports", default=60.0, gt=0)
    service_quality_weight: float = option("satisfaction target change per unit of service quality above its start",
                                           default=0.5, min=0, max=5)
    service_recovery: float = option("satisfaction gained by a well-handled contact (lost, doubled, by a "
                                     "badly handled complaint)", default=0.03, min=0, max=1)
    trial_uplift: float = option("purchase-rate rise per new category a customer adopts", default=0.15, min=0, max=5)
    free_item_delight: float = option("extra satisfaction from a free item in a category the customer buys "
                                      "(performance rewards)", default=0.05, min=0, max=1)
    enrol_rate_tilt: float = option("self-selection: log-odds of joining per unit log purchase rate (heavier buyers "
                                    "join more; Meyer-Waarden & Benavent 2009); the mean joining chance stays the "
                                    "policy's participation; 0 = everyone alike", default=0.0, min=0, max=5)
    enrol_spend_tilt: float = option("self-selection: log-odds of joining per unit log mean basket (bigger spenders "
                                     "join more); 0 = everyone alike", default=0.0, min=0, max=5)
    response_headroom: float = option("heterogeneous response: the reward-driven uplift (goal gradient, points "
                                      "hope, offer uplift) is scaled by h = 1 / (1 + response_headroom x base "
                                      "purchase rate / the population's mean rate), so heavy buyers mostly collect "
                                      "rewards and light buyers change (Liu 2007); 0 = everyone responds alike",
                                      default=0.0, min=0, max=20)
    wear_out: float = option("wear-out over tenure in the programme, per year of membership: the reward-driven "
                             "response (goal gradient, points hope, offer uplift) is multiplied by exp(-wear_out x "
                             "years since joining), so a member's change in behaviour erodes (Meyer-Waarden & "
                             "Benavent 2009: within 6-9 months of joining); 0 = no wear-out", default=0.0, min=0,
                             max=100)
    membership_effect: float = option("membership effect: under a programme with points, a member's purchase rate "
                                      "is multiplied by 1 + membership_effect x reward sensitivity x (headroom x "
                                      "wear-out), whatever their progress to a reward (Leenheer et al. 2007; Liu "
                                      "2007: light and moderate buyers bought more within three months of "
                                      "joining); 0 = off", default=0.0, min=0, max=5)


# --------------------------------------------------------------------------- the store
@dataclass(frozen=True, kw_only=True)
class Category:
    """A product category."""

    price: float = option("average item price in dollars (free items and trials cost its unit cost; at most 1e6: no "
                          "retail item costs more)", gt=0, max=1e6)
    margin: float = option("gross margin at the start (1 - unit cost / price)", min=0, max=0.95)
    share: float = option("share of purchases in this category across the market", default=1.0, gt=0)


@dataclass(frozen=True, kw_only=True)
class Staff:
    """The people who serve customers, and why they stay."""

    count: int = option("staff on the payroll (a leaver is replaced by a new hire)", min=1, max=100000)
    wage_per_year: float = option("cost of one member of staff per year (at most 1e7: no shop wage is higher)",
                                  default=30000.0, min=0, max=1e7)
    turnover_per_year: float = option("quit rate per year at the reference staff satisfaction",
                                      default=0.6, min=0, max=10)
    hiring_cost: float = option("cost of replacing a leaver (at most 1e7)", default=3000.0, min=0, max=1e7)
    contacts_per_day: float = option("service contacts one member of staff handles well per day", default=20.0, gt=0)
    experience_days: float = option("experience at which a member of staff reaches 63% of full competence",
                                    default=180.0, gt=0)
    initial_experience_days: float | None = option("mean experience of the starting staff (default: the steady state "
                                                   "of the turnover rate, 365 / turnover_per_year)",
                                                   default=None, min=0)
    satisfaction: float = option("starting (reference) staff satisfaction, 0-1", default=0.6, min=0, max=1)
    bonus_effect: float = option("staff satisfaction gained from a profit-sharing bonus equal to 10% of wage",
                                 default=0.15, min=0, max=2)
    turnover_satisfaction_effect: float = option("log quit-rate change per unit staff satisfaction below the reference",
                                                 default=3.0, min=0, max=20)


@dataclass(frozen=True, kw_only=True)
class ProfitSharing:
    """A share of profit paid to staff (the flywheel's 'profit sharing' link)."""

    share: float = option("share of positive operating profit paid to staff", default=0.1, min=0, max=1)
    every_days: int = option("days between payouts", default=91, min=1, max=365)


@dataclass(frozen=True, kw_only=True)
class Marketing:
    """Acquisition by paid marketing: the front of the revolving door."""

    budget_per_year: float = option("marketing spend per year (at most 1e10: more than the largest retailer "
                                    "spends on marketing)", default=0.0, min=0, max=1e10)
    cost_per_acquisition: float = option("marketing dollars per new customer (1 cent to 1e6: no customer is won for "
                                         "less than a cent)", default=50.0, min=0.01, max=1e6)


@dataclass(frozen=True, kw_only=True)
class Store:
    """The store's economics and its staff."""

    categories: dict[str, Category] = option("product categories")
    staff: Staff = option("staff")
    fixed_cost_per_year: float = option("rent, utilities and other costs that do not vary with sales (at most 1e11: "
                                        "more than the largest retailer's)", default=0.0, min=0, max=1e11)
    profit_sharing: ProfitSharing = option("profit sharing", default_factory=ProfitSharing)
    marketing: Marketing = option("marketing", default_factory=Marketing)
    learning_rate: float = option("unit cost multiplier per doubling of cumulative volume (experience curve; 1 = none)",
                                  default=0.95, min=0.5, max=1)
    prior_volume_days: float = option("days of the store's past volume at the starting cost (anchors "
                                      "the experience curve)", default=365.0, gt=0)
    service_quality: float = option("starting service quality, 0-1", default=0.7, min=0, max=1)
    seasonality: float = option("amplitude of yearly seasonality in purchase rates (0.2 = +-20%)",
                                default=0.0, min=0, max=0.95)
    peak_day: int = option("day of the year demand peaks", default=335, min=1, max=365)


@dataclass(frozen=True, kw_only=True)
class Market:
    """The market around the store."""

    spend_per_year: float = option("total spend per year in the store's categories in its market (for market share; at "
                                   "most 1e14: more than the world's retail sales)", gt=0, max=1e14)
    competitor_pull: float = option("extra probability of dropout after each purchase, pulled by competitors",
                                    default=0.0, min=0, max=1)


@dataclass(frozen=True, kw_only=True)
class Population:
    """Who the customers are."""

    customers: int = option("customers at the start", min=1, max=50_000_000)
    arrival_days: int = option("the starting customers arrive evenly over this many days (0: all on day 0, "
                               "a BG/NBD cohort)", default=0, min=0, max=3650)
    segments: dict[str, Segment] = option("segments by name")
    from_fit: str | None = option("a `lab fit` output folder: start from its customers (one simulated customer "
                                  "per real one, traits drawn from each one's posterior given their history) "
                                  "instead of a new cohort; "
                                  "the programme launches at the data's calibration end (docs/FIT.md)", default=None)


# --------------------------------------------------------------------------- uncertainty
Shape = Literal["uniform", "log-uniform", "triangular"]


@dataclass(frozen=True, kw_only=True)
class UncertainRange:
    """How a scenario changes one plausible range (lab/scenario/ranges.py): narrow or widen it, or fix the value.

    Keys left out keep the table's: `{low: 0.2}` raises only the lower bound."""

    low: float | None = option("lowest plausible value (default: the table's)", default=None)
    high: float | None = option("highest plausible value (default: the table's)", default=None)
    shape: Shape | None = option("distribution over [low, high] (default: the table's)", default=None)
    mode: float | None = option("most likely value, for a triangular shape (default: the table's)", default=None)
    fixed: float | None = option("hold the parameter at this value in every plausible world (no low, high, "
                                 "shape or mode)", default=None)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A world to test loyalty policies in."""

    name: str = option("the scenario's name")
    description: str = option("what the scenario is for", default="")
    days: int = option("simulated horizon in days", default=730, min=1, max=36500)
    launch_day: int = option("the day the policy starts, for every customer then present; until then the store runs "
                             "under "
                             "no programme (a warm-up, identical under every policy) and outcomes are measured from it "
                             "(0: the policy runs from day 0, as the BG/NBD checks need)", default=0, min=0, max=36499)
    period_days: int = option("days per period in time series", default=7, min=1, max=365)
    discount_rate: float = option("annual discount rate for customer lifetime value", default=0.1, min=0, max=1)
    store: Store = option("the store")
    market: Market = option("the market")
    population: Population = option("the customers")
    behaviour: Behaviour = option("customer responses", default_factory=Behaviour)
    flywheel: bool = option("false cuts the loop: service quality stays at its start", default=True)
    policies: tuple[str, ...] = option("policy files to compare (paths relative to this file, or names in policies/)",
                                       default=("none",))
    seed: int = option("default random seed", default=20261123, min=0)
    uncertainty: dict[str, UncertainRange] = option(
        "changes to the plausible ranges of behavioural, flywheel and store parameters, by parameter path "
        "(docs/MODEL.md, 'Plausible ranges'); e.g. behaviour.goal_gradient: {low: 0.2, high: 0.4}",
        default_factory=dict)
