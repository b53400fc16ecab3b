"""The store and the flywheel, one explicit state per link of the loop.

Loyal customers -> repeat sales -> volume and market share -> unit cost
falling along the experience curve -> margin -> profit -> a profit-sharing
pool paid to staff -> staff satisfaction -> lower turnover -> experienced
staff -> service quality -> customer satisfaction -> loyalty. Every link is a
number updated once a day and recorded as a time series; with the loop cut,
service quality stays at its starting value so the share of an effect that
travels round the loop can be measured against an uncut run.

`Stores` holds the store of each world of a stack as arrays over the worlds and
closes every world's day in one pass; `Store` is one world's store, a view of its
row (a run alone has a `Stores` of one). Each formula is written once, over arrays.
"""

from __future__ import annotations

import math
from operator import attrgetter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from lab.scenario.model import Scenario


CALENDAR_FIELDS = ("store.day_of_week", "store.day_of_month", "store.month", "store.day_of_year", "now")


def calendar_field(name: str, day: int) -> float:
    """The store's calendar as policy expressions see it: 7-day weeks, 30-day months, 365-day years."""
    if name == "store.day_of_week":
        return float(day % 7 + 1)
    if name == "store.day_of_month":
        return float(day % 30 + 1)
    if name == "store.month":
        return float((day % 365) // 30.42 + 1)
    if name == "store.day_of_year":
        return float(day % 365 + 1)
    if name == "now":
        return float(day)
    raise KeyError(name)


@dataclass
class DayBook:
    """Money and counts of the current day (reset every day)."""

    gross_sales: float = 0.0
    discounts: float = 0.0
    revenue: float = 0.0
    repeat_revenue: float = 0.0
    cogs: float = 0.0
    reward_goods: float = 0.0  # unit cost of free items and trials
    offers_cost: float = 0.0
    purchases: int = 0
    repeat_purchases: int = 0
    acquired: int = 0
    acquired_referral: int = 0
    lost: int = 0
    contacts: int = 0
    complaints: int = 0
    resolved: int = 0
    credit_charged: float = 0.0
    credit_repaid: float = 0.0
    interest: float = 0.0
    fees: float = 0.0
    bad_debt: float = 0.0
    points_awarded: float = 0.0
    points_redeemed: float = 0.0
    points_expired: float = 0.0


class _StateField:
    """One world's value of a state array of `Stores`, read and set as a plain number."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, store: "Store", owner: type | None = None) -> Any:
        return getattr(store.all, self.name)[store.w].item()

    def __set__(self, store: "Store", value: float) -> None:
        getattr(store.all, self.name)[store.w] = value


class Store:
    """One world's store: its place in a `Stores` (its own, for a run alone; a stack's, once joined), read and
    set through attributes, as the engines read its service quality, load and unit cost."""

    cum_volume = _StateField()
    unit_cost_factor = _StateField()
    service_quality = _StateField()
    staff_satisfaction = _StateField()
    profit_since_payout = _StateField()
    last_bonus_ratio = _StateField()
    quits = _StateField()
    hires_today = _StateField()
    load = _StateField()

    def __init__(self, sc: Scenario, expected_daily_sales: float, rng: np.random.Generator) -> None:
        self.sc = sc
        self.all = Stores(sc, expected_daily_sales, rng)
        self.w = 0

    @property
    def day(self) -> int:
        return self.all.day

    @property
    def experience(self) -> np.ndarray:
        """Each member of staff's days of experience (a view of the world's row)."""
        return self.all.experience[self.w]

    def end_of_day(self, book: DayBook, programme_running_cost: float, flywheel: bool) -> dict[str, float]:
        """Close the day's books and move every link of the loop one day on; returns the day's record (a run
        alone: its store is the only one of its `Stores`)."""
        if self.all.K != 1:
            raise TypeError("a store joined to others closes its day with theirs: Stores.end_of_day")
        return {k: v[0].item() for k, v in self.all.end_of_day([book], np.array([programme_running_cost]),
                                                                np.array([flywheel])).items()}


def _at_least(x: np.ndarray, floor: float | np.ndarray) -> np.ndarray:
    """Python's max(x, floor), element by element (x unless floor > x: the same zero's sign)."""
    return np.where(floor > x, floor, x)


def _at_most(x: np.ndarray, ceiling: float | np.ndarray) -> np.ndarray:
    """Python's min(x, ceiling), element by element."""
    return np.where(ceiling < x, ceiling, x)


def _each(f: Callable[..., float], *xs: np.ndarray) -> np.ndarray:
    """f of each world's values by Python's own arithmetic (numpy's exp and power may differ from libm's in the
    last bit, and a world's store must close its day to the same bits in a stack as alone, and as before)."""
    return np.array([f(*v) for v in zip(*(x.tolist() for x in xs))], dtype=np.float64)


_MONEY = tuple(f.name for f in fields(DayBook) if f.type in ("float", float))  # a day book's fields by type
_COUNTS = tuple(f.name for f in fields(DayBook) if f.type in ("int", int))
_read_money, _read_counts = attrgetter(*_MONEY), attrgetter(*_COUNTS)
if len(_MONEY) + len(_COUNTS) != len(fields(DayBook)):
    raise TypeError("every field of DayBook is money (float) or a count (int)")
WINDOW = 30  # days of the repeat-sales share and the market share


class Stores:
    """The stores of K worlds (one for a run alone, a stack's worlds once joined) as arrays over the worlds, so a
    stack closes every world's day in one pass with the formulas a run alone uses. Each world has its own
    parameters (the store parameters a stack holds per world: lab.engine.stack.PER_WORLD), its own staff and
    its own generator for their turnover."""

    # state, one value per world (experience and the 30-day windows: one row per world)
    experience: np.ndarray
    revenue_window: np.ndarray
    repeat_window: np.ndarray
    cum_volume: np.ndarray
    unit_cost_factor: np.ndarray
    service_quality: np.ndarray
    staff_satisfaction: np.ndarray
    profit_since_payout: np.ndarray
    last_bonus_ratio: np.ndarray
    load: np.ndarray
    quits: np.ndarray
    hires_today: np.ndarray
    # parameters, one value per world
    competence0: np.ndarray
    v0: np.ndarray
    b: np.ndarray
    wage_per_year: np.ndarray
    fixed_cost_per_year: np.ndarray
    hiring_cost: np.ndarray
    share: np.ndarray
    satisfaction0: np.ndarray
    bonus_effect: np.ndarray
    turnover_per_year: np.ndarray
    turnover_satisfaction_effect: np.ndarray
    contacts_per_day: np.ndarray
    experience_days: np.ndarray
    service_quality0: np.ndarray
    spend_per_year: np.ndarray

    def __init__(self, sc: Scenario, expected_daily_sales: float, rng: np.random.Generator) -> None:
        staff = sc.store.staff
        # starting experience: exponential around the stated mean (tenure of a workforce with constant turnover)
        mean_exp = staff.initial_experience_days
        if mean_exp is None:
            mean_exp = 365.0 / staff.turnover_per_year if staff.turnover_per_year > 0 else 3650.0
        experience = rng.exponential(mean_exp, size=staff.count) if mean_exp > 0 else np.zeros(staff.count)
        # the reference is the expected competence of such a workforce, E[1 - exp(-X/tau)] = m/(m+tau) for
        # exponential experience X of mean m, so a lucky or unlucky starting draw shows in service quality
        tau = staff.experience_days
        competence0 = (mean_exp / (mean_exp + tau) if mean_exp > 0
                       else float(np.mean(1.0 - np.exp(-experience / tau))))  # staff.count >= 1
        self.K = 1
        self.rngs = [rng]
        self.day = 0
        self.count = staff.count
        self.every_days = sc.store.profit_sharing.every_days
        self.marketing = sc.store.marketing.budget_per_year / 365.0
        self.experience = experience[None, :]
        self.revenue_window = np.zeros((1, WINDOW))
        self.repeat_window = np.zeros((1, WINDOW))
        one = {
            # state
            "cum_volume": 0.0, "unit_cost_factor": 1.0, "service_quality": sc.store.service_quality,
            "staff_satisfaction": staff.satisfaction, "profit_since_payout": 0.0, "last_bonus_ratio": 0.0,
            "load": 0.0,
            # parameters
            "competence0": competence0, "v0": max(sc.store.prior_volume_days * expected_daily_sales, 1.0),
            "b": math.log2(sc.store.learning_rate), "wage_per_year": staff.wage_per_year,
            "fixed_cost_per_year": sc.store.fixed_cost_per_year, "hiring_cost": staff.hiring_cost,
            "share": sc.store.profit_sharing.share, "satisfaction0": staff.satisfaction,
            "bonus_effect": staff.bonus_effect, "turnover_per_year": staff.turnover_per_year,
            "turnover_satisfaction_effect": staff.turnover_satisfaction_effect,
            "contacts_per_day": staff.contacts_per_day, "experience_days": tau,
            "service_quality0": sc.store.service_quality, "spend_per_year": sc.market.spend_per_year,
        }
        for name, value in one.items():
            setattr(self, name, np.array([value], dtype=np.float64))
        self.quits = np.zeros(1, dtype=np.int64)
        self.hires_today = np.zeros(1, dtype=np.int64)

    #: every array declared above: what joining stores concatenates, world after world
    _ROWS = tuple(n for n, kind in __annotations__.items() if kind in ("np.ndarray", np.ndarray))

    @classmethod
    def join(cls, stores: Sequence[Store]) -> "Stores":
        """One Stores for the worlds of a stack, world w's row its store's; each store then reads and sets its
        row of the joined arrays. The stores must not have closed a day yet, and share their structure (staff
        count, profit-sharing period, marketing budget)."""
        parts = [s.all for s in stores]
        first = parts[0]
        if any(p.K != 1 or p.day != 0 for p in parts):
            raise ValueError("only fresh stores of one world each can be joined")
        if len({(p.count, p.every_days, p.marketing) for p in parts}) != 1:
            raise ValueError("stores of different structure cannot be joined")
        joined = cls.__new__(cls)
        joined.K = len(parts)
        joined.rngs = [r for p in parts for r in p.rngs]
        joined.day = 0
        joined.count, joined.every_days, joined.marketing = first.count, first.every_days, first.marketing
        for name in cls._ROWS:
            setattr(joined, name, np.concatenate([getattr(p, name) for p in parts]))
        for w, s in enumerate(stores):
            s.all, s.w = joined, w
        return joined

    def end_of_day(self, books: Sequence[DayBook], programme_running_cost: np.ndarray,
                   flywheel: np.ndarray) -> dict[str, np.ndarray]:
        """Close each world's day (books[w], its programme's running cost, whether its loop is whole) and move
        every link of its loop one day on; returns the day's record, one value per world."""
        money = np.array([_read_money(b) for b in books], dtype=np.float64).T  # (fields, worlds)
        counts = np.array([_read_counts(b) for b in books], dtype=np.int64).T
        bk = dict(zip(_MONEY, money)) | dict(zip(_COUNTS, counts))
        self.cum_volume += bk["gross_sales"]
        self.unit_cost_factor = _each(pow, (self.v0 + self.cum_volume) / self.v0, self.b)
        wages = self.count * self.wage_per_year / 365.0
        fixed = self.fixed_cost_per_year / 365.0
        marketing = self.marketing
        gross_profit = bk["revenue"] - bk["cogs"] - bk["reward_goods"]
        hiring = self.hires_today * self.hiring_cost
        operating = (gross_profit - wages - fixed - marketing - hiring - bk["offers_cost"] - programme_running_cost
                     - bk["bad_debt"] + bk["interest"] + bk["fees"])
        self.profit_since_payout += operating
        sharing = np.zeros(self.K)
        # profit sharing pool, paid every `every_days`
        self.day += 1
        if self.day % self.every_days == 0:
            sharing = self.share * _at_least(self.profit_since_payout, 0.0)
            period_wage = self.wage_per_year * self.every_days / 365.0
            self.last_bonus_ratio = np.divide(sharing / self.count, period_wage, out=np.zeros(self.K),
                                              where=period_wage > 0)
            self.profit_since_payout = np.zeros(self.K)
        net = operating - sharing
        # staff: satisfaction relaxes (90-day memory) to a target set by the last bonus and the load
        overload = _at_least(self.load - 1.0, 0.0)
        target = self.satisfaction0 + self.bonus_effect * (self.last_bonus_ratio / 0.1) - 0.3 * overload
        target = _at_most(_at_least(target, 0.0), 1.0)
        self.staff_satisfaction = self.staff_satisfaction + (target - self.staff_satisfaction) / 90.0
        # turnover: leavers are replaced at once by new hires with no experience
        hazard = self.turnover_per_year / 365.0 * _each(
            math.exp, self.turnover_satisfaction_effect * (self.satisfaction0 - self.staff_satisfaction))
        threshold = -_each(math.expm1, -hazard)
        draws = np.stack([rng.random(self.count) for rng in self.rngs])
        leave = draws < threshold[:, None]
        n_quit = leave.sum(axis=1)
        self.experience = np.where(leave, 0.0, self.experience + 1.0)
        self.hires_today = n_quit
        self.quits += n_quit
        # service quality: competence of the staff on hand, degraded by overload
        self.load = bk["contacts"] / (self.count * self.contacts_per_day)
        if flywheel.any():
            comp = np.mean(1.0 - np.exp(-self.experience / self.experience_days[:, None]), axis=1)
            ratio = np.divide(comp, self.competence0, out=np.ones(self.K), where=self.competence0 > 0)
            q = self.service_quality0 * ratio / (1.0 + _at_least(self.load - 1.0, 0.0))
            self.service_quality = np.where(flywheel, _at_most(_at_least(q, 0.0), 1.0), self.service_quality)
        days = min(self.day, WINDOW)
        for window, today in ((self.revenue_window, bk["revenue"]), (self.repeat_window, bk["repeat_revenue"])):
            window[:, :-1] = window[:, 1:]
            window[:, -1] = today
        # the windows' sums oldest day first, as Python's sum of the days would be
        rev30 = np.add.accumulate(self.revenue_window[:, WINDOW - days:], axis=1)[:, -1]
        repeat30 = np.add.accumulate(self.repeat_window[:, WINDOW - days:], axis=1)[:, -1]
        market_30 = self.spend_per_year * days / 365.0
        margin = np.divide(gross_profit, bk["revenue"], out=np.full(self.K, np.nan), where=bk["revenue"] > 0)
        return {
            "gross_sales": bk["gross_sales"], "discounts": bk["discounts"], "revenue": bk["revenue"],
            "cogs": bk["cogs"], "reward_goods_cost": bk["reward_goods"], "gross_profit": gross_profit,
            "offers_cost": bk["offers_cost"], "programme_running_cost": programme_running_cost,
            "wages": wages, "fixed_costs": fixed, "marketing": np.full(self.K, marketing),
            "hiring_cost": hiring,
            "bad_debt": bk["bad_debt"], "interest_income": bk["interest"], "fee_income": bk["fees"],
            "operating_profit": operating, "profit_sharing": sharing, "net_profit": net,
            "purchases": bk["purchases"], "repeat_purchases": bk["repeat_purchases"],
            "acquired": bk["acquired"], "acquired_referral": bk["acquired_referral"], "lost": bk["lost"],
            "contacts": bk["contacts"], "complaints": bk["complaints"], "contacts_resolved": bk["resolved"],
            "credit_charged": bk["credit_charged"], "credit_repaid": bk["credit_repaid"],
            "points_awarded": bk["points_awarded"], "points_redeemed": bk["points_redeemed"],
            "points_expired": bk["points_expired"],
            # the flywheel's links
            "repeat_sales_share": np.divide(repeat30, rev30, out=np.zeros(self.K), where=rev30 > 0),
            "market_share": rev30 / market_30,  # market.spend_per_year > 0
            # (copies: a day's record keeps its values when the store moves on, or a Store's attribute is set)
            "unit_cost_factor": self.unit_cost_factor.copy(),
            "margin": margin,
            "staff_satisfaction": self.staff_satisfaction.copy(),
            "staff_quits": n_quit,
            "staff_experience_days": self.experience.mean(axis=1),
            "service_quality": self.service_quality.copy(),
            "service_load": self.load.copy(),
        }
