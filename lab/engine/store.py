"""The store and the flywheel, one explicit state per link of the loop.

Loyal customers -> repeat sales -> volume and market share -> unit cost
falling along the experience curve -> margin -> profit -> a profit-sharing
pool paid to staff -> staff satisfaction -> lower turnover -> experienced
staff -> service quality -> customer satisfaction -> loyalty. Every link is a
number updated once a day and recorded as a time series; with the loop cut,
service quality stays at its starting value so the share of an effect that
travels round the loop can be measured against an uncut run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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


@dataclass
class Store:
    """The store's evolving state."""

    sc: Scenario
    expected_daily_sales: float
    rng: np.random.Generator
    cum_volume: float = 0.0
    unit_cost_factor: float = 1.0
    service_quality: float = 0.0
    staff_satisfaction: float = 0.0
    experience: np.ndarray = field(default_factory=lambda: np.zeros(0))
    profit_since_payout: float = 0.0
    last_bonus_ratio: float = 0.0
    quits: int = 0
    hires_today: int = 0
    day: int = 0
    load: float = 0.0
    revenue_30: list[float] = field(default_factory=list)
    repeat_30: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        staff = self.sc.store.staff
        self.service_quality = self.sc.store.service_quality
        self.staff_satisfaction = staff.satisfaction
        # starting experience: exponential around the stated mean (tenure of a workforce with constant turnover)
        mean_exp = staff.initial_experience_days
        if mean_exp is None:
            mean_exp = 365.0 / staff.turnover_per_year if staff.turnover_per_year > 0 else 3650.0
        self.experience = self.rng.exponential(mean_exp, size=staff.count) if mean_exp > 0 else np.zeros(staff.count)
        # the reference is the expected competence of such a workforce, E[1 - exp(-X/tau)] = m/(m+tau) for
        # exponential experience X of mean m, so a lucky or unlucky starting draw shows in service quality
        tau = staff.experience_days
        self._competence0 = mean_exp / (mean_exp + tau) if mean_exp > 0 else self._competence()
        self.v0 = max(self.sc.store.prior_volume_days * self.expected_daily_sales, 1.0)
        self.b = math.log2(self.sc.store.learning_rate)

    def _competence(self) -> float:
        tau = self.sc.store.staff.experience_days
        return float(np.mean(1.0 - np.exp(-self.experience / tau)))  # staff.count >= 1

    # ------------------------------------------------------------------ daily update
    def end_of_day(self, book: DayBook, programme_running_cost: float, flywheel: bool) -> dict[str, float]:
        """Close the day's books and move every link of the loop one day on; returns the day's record."""
        sc = self.sc
        staff = sc.store.staff
        self.cum_volume += book.gross_sales
        self.unit_cost_factor = ((self.v0 + self.cum_volume) / self.v0) ** self.b
        wages = staff.count * staff.wage_per_year / 365.0
        fixed = sc.store.fixed_cost_per_year / 365.0
        marketing = sc.store.marketing.budget_per_year / 365.0
        gross_profit = book.revenue - book.cogs - book.reward_goods
        hiring = self.hires_today * staff.hiring_cost
        operating = (gross_profit - wages - fixed - marketing - hiring - book.offers_cost - programme_running_cost
                     - book.bad_debt + book.interest + book.fees)
        self.profit_since_payout += operating
        sharing = 0.0
        # profit sharing pool, paid every `every_days`
        ps = sc.store.profit_sharing
        self.day += 1
        if self.day % ps.every_days == 0:
            sharing = ps.share * max(self.profit_since_payout, 0.0)
            period_wage = staff.wage_per_year * ps.every_days / 365.0
            self.last_bonus_ratio = sharing / staff.count / period_wage if period_wage > 0 else 0.0
            self.profit_since_payout = 0.0
        net = operating - sharing
        # staff: satisfaction relaxes (90-day memory) to a target set by the last bonus and the load
        overload = max(self.load - 1.0, 0.0)
        target = staff.satisfaction + staff.bonus_effect * (self.last_bonus_ratio / 0.1) - 0.3 * overload
        target = min(max(target, 0.0), 1.0)
        self.staff_satisfaction += (target - self.staff_satisfaction) / 90.0
        # turnover: leavers are replaced at once by new hires with no experience
        hazard = staff.turnover_per_year / 365.0 * math.exp(staff.turnover_satisfaction_effect
                                                            * (staff.satisfaction - self.staff_satisfaction))
        leave = self.rng.random(staff.count) < -math.expm1(-hazard)
        n_quit = int(leave.sum())
        self.experience = np.where(leave, 0.0, self.experience + 1.0)
        self.hires_today = n_quit
        self.quits += n_quit
        # service quality: competence of the staff on hand, degraded by overload
        self.load = book.contacts / (staff.count * staff.contacts_per_day)
        if flywheel:
            comp = self._competence()
            ratio = comp / self._competence0 if self._competence0 > 0 else 1.0
            q = sc.store.service_quality * ratio / (1.0 + max(self.load - 1.0, 0.0))
            self.service_quality = min(max(q, 0.0), 1.0)
        self.revenue_30 = (self.revenue_30 + [book.revenue])[-30:]
        self.repeat_30 = (self.repeat_30 + [book.repeat_revenue])[-30:]
        rev30 = sum(self.revenue_30)
        market_30 = sc.market.spend_per_year * len(self.revenue_30) / 365.0
        margin = gross_profit / book.revenue if book.revenue > 0 else float("nan")
        return {
            "gross_sales": book.gross_sales, "discounts": book.discounts, "revenue": book.revenue,
            "cogs": book.cogs, "reward_goods_cost": book.reward_goods, "gross_profit": gross_profit,
            "offers_cost": book.offers_cost, "programme_running_cost": programme_running_cost,
            "wages": wages, "fixed_costs": fixed, "marketing": marketing, "hiring_cost": hiring,
            "bad_debt": book.bad_debt, "interest_income": book.interest, "fee_income": book.fees,
            "operating_profit": operating, "profit_sharing": sharing, "net_profit": net,
            "purchases": book.purchases, "repeat_purchases": book.repeat_purchases,
            "acquired": book.acquired, "acquired_referral": book.acquired_referral, "lost": book.lost,
            "contacts": book.contacts, "complaints": book.complaints, "contacts_resolved": book.resolved,
            "credit_charged": book.credit_charged, "credit_repaid": book.credit_repaid,
            "points_awarded": book.points_awarded, "points_redeemed": book.points_redeemed,
            "points_expired": book.points_expired,
            # the flywheel's links
            "repeat_sales_share": sum(self.repeat_30) / rev30 if rev30 > 0 else 0.0,
            "market_share": rev30 / market_30,  # market.spend_per_year > 0
            "unit_cost_factor": self.unit_cost_factor,
            "margin": margin,
            "staff_satisfaction": self.staff_satisfaction,
            "staff_quits": n_quit,
            "staff_experience_days": float(self.experience.mean()),
            "service_quality": self.service_quality,
            "service_load": self.load,
        }
