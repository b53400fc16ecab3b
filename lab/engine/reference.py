"""The reference engine: the same model as the vectorised engine, one SimPy process per customer.

This engine exists to be read and believed, not to be fast. Every customer is
a SimPy process living their own life in model time (the SimPy clock is the
model clock, in days): they arrive and make a trial purchase, then sleep until
whichever comes first of their next purchase candidate, their next service
contact or (Pareto/NBD) the end of their lifetime, act on it with plain
scalar Python, and go back to sleep, until they drop out or the horizon comes.
The store is one more process that owns the calendar: at each day boundary it
closes the previous day's books (the flywheel moves one day on), runs the
programme's calendar (expiry, statements, tier reviews, campaigns, personal
dates) and lets the day's new customers in (paid marketing, then the
referrals made before the day began).

The model is the one documented in `lab.engine.simulate`, and its formulas
are the vectorised engine's: both call `lab.engine.behaviour` (here with one
customer's numbers), so the model is written once; none of the vectorised
engine's code is used. This engine's own part is its control flow -- one
process per customer, every event at its own time -- which is what makes it
an oracle for the vectorised engine's batching. Also shared is what must be
shared for the two engines to be comparable draw by draw: the counter-based random streams
(`Streams`), the customers' stored traits (`Customers.add`, called with the
same batches), the store and its flywheel (`Store`), the programme's rules
and ledgers (`PolicyRuntime`, always asked about one customer at a time) and
the outcome definitions (`lab.metrics.outcomes`).

Where the two engines differ, it is in the order of events inside a day (the
vectorised engine takes every purchase of the day before any service contact;
here everything happens at its own time) and in referrals made by customers
who arrived by marketing that same day (they arrive the next day here, as
"referred customers arrive the next day" says). With behaviour switched off
neither matters and the two engines give the same history to every customer.

With `follow` the engine also keeps each followed customer's story -- every
acquisition, purchase, points movement, reward, discount, expiry, statement,
service contact and dropout -- for `lab trace` (see `lab.report.story`).

The module runs past 500 lines for the reason the vectorised engine does: one
customer's life is one process read top to bottom, with the trace that `lab trace`
tells beside the events it records; its formulas come from lab.engine.behaviour.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

import numpy as np
import simpy
from scipy import special

from lab.randomness import Streams
from lab.engine.launch import plan_launch
from lab.engine.options import RunOptions
from lab.engine.record import RawRun, record_run
from lab.engine import behaviour
from lab.engine.store import CALENDAR_FIELDS, calendar_field, DayBook, Store
from lab.errors import LabError
from lab.policy import model as pm
from lab.policy.actions import handler_for
from lab.policy.effects import GIVEN, book_given
from lab.policy.fields import check_served
from lab.policy.runtime import CompiledPolicy, Effects, PolicyRuntime
from lab.population.arrivals import arriving_on, starting_arrivals
from lab.population.customers import Customers, SegmentTable
from lab.scenario.model import Scenario

SCHEDULE_PERIOD_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
STORY_KINDS = ("acquired", "launch", "purchase", "points", "reward", "discount", "expiry", "statement", "contact",
               "tier", "dropout", "end")


def _one(i: int) -> np.ndarray:
    """A batch of one customer, as the rules engine takes it."""
    return np.array([i], dtype=np.int64)


class _Facts:
    """What the rules may ask about one customer, on one day (the engine's side of `FieldSource`).

    Rules see the day as `now` (an integer), as in the vectorised engine:
    tenure and satisfaction are read at the start of the day."""

    def __init__(self, sim: "ReferenceSimulation", day: int) -> None:
        self.sim = sim
        self.day = day

    def get(self, name: str, idx: np.ndarray) -> np.ndarray | float:
        store_fact = _STORE_FACTS.get(name)
        if store_fact is not None:
            return store_fact(self.sim, self.day)
        fact = _CUSTOMER_FACTS.get(name)
        if fact is None:
            raise KeyError(f"no customer field {name}")
        return np.array([fact(self.sim, int(i), self.day) for i in idx])


class ReferenceSimulation:
    """One run of one policy in one scenario, one SimPy process per customer (for small populations).

    Same inputs and output as `Simulation`; `follow` names the customers whose
    story to keep (None: everyone; an empty list: no one, the fastest)."""

    def __init__(self, scenario: Scenario, policy: CompiledPolicy, opts: RunOptions, *,
                 follow: Iterable[int] | None = None) -> None:
        self.sc = scenario
        self.cp = policy
        self.pol = policy.policy
        self.opts = opts
        self.days = opts.days or scenario.days
        self.streams = Streams(opts.seed, opts.address)
        # a launch (lab.engine.launch): the policy starts on launch_day for everyone then present
        launch = plan_launch(scenario, self.streams, opts, self.days)
        self.launch_day, self.base, self.launched, self.n0 = launch.day, launch.base, launch.launched, launch.customers
        self.seg = SegmentTable.from_scenario(scenario)
        self.cats = tuple(scenario.store.categories)
        cat = scenario.store.categories
        self.unit_cost = [cat[k].price * (1 - cat[k].margin) for k in self.cats]
        self.unit_margin = [cat[k].margin for k in self.cats]
        self.beh = scenario.behaviour
        self.on = scenario.behaviour.enabled
        capacity = int(self.n0 * 1.1) + 1024
        self.c = Customers(self.seg, len(self.cats), capacity)
        self.runtime = PolicyRuntime(policy, capacity)
        self.programme: tuple[CompiledPolicy, PolicyRuntime] | None = None  # held aside during a warm-up
        self.launch_revenue: np.ndarray | None = None  # revenue of each customer present at the launch
        if self.launch_day > 0:
            self.programme = (self.cp, self.runtime)
            self.cp = CompiledPolicy(pm.Policy(name=policy.policy.name), policy.world, ())
            self.pol = self.cp.policy
            self.runtime = PolicyRuntime(self.cp, capacity)
        st = self.seg
        self.mean_basket = np.maximum(st.spend_p * st.spend_gamma / (st.spend_q - 1), 1e-9)
        daily_rate = float(np.sum(st.share * st.r / st.alpha_days))
        mean_spend = float(np.sum(st.share * st.spend_p * st.spend_gamma / (st.spend_q - 1)))
        self.store = Store(scenario, expected_daily_sales=self.n0 * daily_rate * mean_spend,
                           rng=self.streams.generator("staff"))
        self.q0 = scenario.store.service_quality
        self.m_bound = behaviour.rate_bound(self.beh, scenario.store.seasonality, self.seg)
        self.enrol_c = (behaviour.population_enrol_intercept(self.beh, policy.policy.participation, self.seg)
                        if behaviour.self_selects(self.beh, policy.policy.participation) else 0.0)
        self.acq_rng = self.streams.generator("acquisition")
        self.book = DayBook()
        self.daily: list[dict[str, float]] = []
        self.referrals_waiting: list[int] = []  # referrers, in the order they referred
        self.tx: list[tuple[int, float, float, int, float, float, int]] | None = [] if opts.transactions else None
        self.follow_all = follow is None
        self.followed = set() if follow is None else {int(i) for i in follow}
        self.stories: dict[int, list[dict[str, Any]]] = {}
        self.env: simpy.Environment | None = None
        self._points_seen = {"awarded": 0.0, "redeemed": 0.0}
        self.finished = False

    def facts(self, day: int) -> "_Facts":
        """What the rules may ask about customers on `day` (this engine's `FieldSource`)."""
        return _Facts(self, day)

    # ------------------------------------------------------------------ draws
    def u(self, purpose: str, i: int, k: int) -> float:
        """Customer i's k-th uniform for a purpose (the same number the vectorised engine draws)."""
        return float(self.streams.uniform(purpose, np.asarray(i), k))

    def exp1(self, purpose: str, i: int, k: int) -> float:
        """Customer i's k-th unit exponential for a purpose."""
        return float(self.streams.exponential(purpose, np.asarray(i), k))

    # ------------------------------------------------------------------ the behavioural model, for one customer
    def _credit_use(self, i: int) -> tuple[float, float]:
        avail, used = self.runtime.credit_use(_one(i))
        return float(avail[0]), float(used[0])

    def satisfaction_target(self, i: int) -> float:
        """Where customer i's satisfaction drifts: their segment's level, moved by service quality and debt."""
        used = self._credit_use(i)[1] if self.runtime.credit else None
        return float(behaviour.satisfaction_target(self.beh, float(self.c.sat_ref[i]), self.store.service_quality,
                                                   self.q0, used))

    def satisfaction(self, i: int, t: float) -> float:
        """Customer i's satisfaction at time t: the last recorded level relaxing towards the target."""
        c = self.c
        if not self.on:
            return float(c.sat_ref[i])
        return float(behaviour.satisfaction_at(float(c.sat_at[i]), float(c.t_sat[i]), t, self.satisfaction_target(i),
                                               self.beh.satisfaction_memory_days))

    def bump(self, i: int, t: float, delta: float) -> None:
        """Move customer i's satisfaction by delta at time t (rewards, service, expiry, debt)."""
        if not self.on:
            return
        c = self.c
        c.sat_at[i] = behaviour.bumped(self.satisfaction(i, t), delta)
        c.t_sat[i] = t

    def rate_multiplier(self, i: int, t: float, day: int) -> float:
        """m(t): how much faster than their base rate customer i buys at time t."""
        if not self.on:
            return 1.0
        c, b, sc = self.c, self.beh, self.sc
        seg = int(c.seg[i])
        goal = None
        if b.goal_gradient > 0 and self.runtime.points:
            goal = (float(self.seg.reward_sensitivity[seg]), float(self.runtime.goal_progress(_one(i), float(day))[0]))
        offer = float(c.offer_freq[i]) if float(c.offer_until[i]) > t else None
        credit = None
        if self.runtime.credit and b.credit_spend_ahead > 0:
            avail, used = self._credit_use(i)
            credit = (float(self.seg.credit_appetite[seg]), avail > 0, used)
        member = None
        if b.membership_effect > 0 and self.runtime.points:
            member = (float(self.seg.reward_sensitivity[seg]), float(self.runtime.member[i]))
        return float(behaviour.rate_multiplier(b, float(c.lam_mult[i]), t, self.satisfaction(i, t), float(c.sat_ref[i]),
                                               seasonality=sc.store.seasonality, peak_day=sc.store.peak_day,
                                               bound=self.m_bound, goal=goal, offer_uplift=offer, credit=credit,
                                               headroom=behaviour.response_share(b, self.seg, c.lam, c.acquired_at, i,
                                                                                 self.launch_day, t), member=member))

    def dropout_multiplier(self, i: int, t: float) -> float:
        """How much more likely than at the reference satisfaction customer i is to drop out."""
        if not self.on:
            return 1.0
        s, ref = self.satisfaction(i, t), float(self.c.sat_ref[i])
        if self.beh.points_hope > 0 and self.runtime.points:
            progress = float(self.runtime.goal_progress(_one(i), float(int(t)))[0])
            sens = float(self.seg.reward_sensitivity[int(self.c.seg[i])])
            return float(behaviour.dropout_multiplier(self.beh, s, ref, sens, progress,
                                                      behaviour.response_share(
                                                          self.beh, self.seg, self.c.lam, self.c.acquired_at, i,
                                                          self.launch_day, t)))
        return float(behaviour.dropout_multiplier(self.beh, s, ref))

    def preferences(self, i: int) -> np.ndarray:
        """Customer i's category tastes (sum to 1)."""
        return np.diff(self.c.cat_cum[i], prepend=0.0)

    def favourite(self, i: int) -> int:
        """The category customer i has bought most (their strongest taste breaking ties)."""
        return int(self.c.favourite(_one(i))[0])

    def least_bought(self, i: int) -> int:
        """The category customer i has bought least (their weakest taste breaking ties)."""
        return int(self.c.least(_one(i))[0])

    # ------------------------------------------------------------------ a customer's clocks
    def _draw_next_candidate(self, i: int, t: float) -> None:
        c = self.c
        k = int(c.cand_n[i])
        c.next_cand[i] = t + self.exp1("gap", i, k) / (float(c.lam[i]) * self.m_bound)
        c.cand_n[i] = k + 1

    def _draw_next_contact(self, i: int, t: float) -> None:
        c = self.c
        k = int(c.contact_n[i])
        rate = float(self.seg.contact_rate_day[c.seg[i]])
        c.next_contact[i] = t + self.exp1("contact_gap", i, k) / rate if rate > 0 else math.inf
        c.contact_n[i] = k + 1

    def _drop(self, i: int, t: float, reason: str) -> None:
        self.c.alive[i] = False
        self.c.dropped_at[i] = t
        self.book.lost += 1
        self._note(i, t, "dropout", 0.0, reason=reason)

    # ------------------------------------------------------------------ a customer's life
    def _life(self, i: int, present: bool = False) -> Generator[simpy.Event, None, None]:
        """Customer i's process: arrive, then purchase candidates, contacts and (Pareto/NBD) the end of life, in time
        order.

        `present`: a customer of an existing base, already in the store at time 0 (their clocks are running)."""
        env, c = self.env, self.c
        assert env is not None
        if not present:
            arrival = float(c.acquired_at[i])
            if arrival > env.now:
                yield env.timeout(arrival - env.now)
            self._arrive(i, arrival)
        while c.alive[i]:
            t_cand, t_contact, t_death = float(c.next_cand[i]), float(c.next_contact[i]), float(c.death_time[i])
            t = min(t_cand, t_contact, t_death)
            if t >= self.days:
                return
            yield env.timeout(max(t - env.now, 0.0))
            if not c.alive[i]:
                return  # written off at a statement while asleep
            day = int(math.floor(t))
            if t_death <= t_cand and t_death <= t_contact:
                self._drop(i, t_death, "lifetime ended")
            elif t_cand <= t_contact:
                self._candidate(i, t, day)
            else:
                self._contact(i, t, day)

    def _basket(self, i: int) -> float:
        """Customer i's mean basket, p / nu (Gamma-Gamma), in dollars."""
        return float(self.seg.spend_p[int(self.c.seg[i])] / self.c.nu[i])

    def _arrive(self, i: int, t: float) -> None:
        """A new customer: their clocks start, they may join the programme, and they make a trial purchase."""
        c, rt = self.c, self.runtime
        day = int(math.floor(t))
        self._draw_next_candidate(i, t)
        self._draw_next_contact(i, t)
        referrer = int(c.referred_by[i]) if c.referred[i] else None
        joined = False
        if not self.pol.is_baseline:
            joined = self.u("enrol", i, 0) < float(behaviour.enrol_probability(
                self.beh, self.pol.participation, float(c.lam[i]), self._basket(i), self.enrol_c))
        self._note(i, t, "acquired", 0.0, segment=self.seg.names[int(c.seg[i])], referred_by=referrer, member=joined,
                   before_launch=self.programme is not None)
        if joined:
            rt.enrol(_one(i))
            if rt.has_trigger("enrolment"):
                self._fire("enrolment", i, t, day)
            if referrer is not None and rt.has_trigger("referral") and rt.member[referrer]:
                self._fire("referral", referrer, t, day, partner=i)
        self._purchase(i, t, day, repeat=False)

    def _candidate(self, i: int, t: float, day: int) -> None:
        """A purchase candidate (thinning): kept with probability m(t)/M; a kept one is a purchase, maybe followed by
        dropout."""
        m = 1.0
        keep = True
        if self.m_bound > 1.0:
            m = self.rate_multiplier(i, t, day)
            keep = self.u("accept", i, int(self.c.cand_n[i])) * self.m_bound < m
        self._draw_next_candidate(i, t)
        if keep:
            self._purchase(i, t, day, repeat=True)
            self._maybe_drop_out(i, t, m)

    def _maybe_drop_out(self, i: int, t: float, m: float) -> None:
        """After a repeat purchase: BG/NBD dropout with probability p spread over the pace of buying, moved by
        satisfaction and competitors; a Pareto/NBD customer's remaining lifetime rescales instead."""
        c = self.c
        d = self.dropout_multiplier(i, t)
        pull = self.sc.market.competitor_pull
        u = self.u("dropout", i, int(c.purchases[i]))
        if not c.pareto[i]:
            p = float(behaviour.dropout_probability(float(c.p_drop[i]), d, m, pull))
            if u < p:
                self._drop(i, t, "stopped buying after a purchase")
                return
        else:
            if pull > 0 and u < pull:
                self._drop(i, t, "lured away by a competitor")
                return
            if self.on:
                c.death_time[i] = behaviour.rescaled_death(t, float(c.death_time[i]), float(c.d_mult[i]), d)
                c.d_mult[i] = d

    def _purchase(self, i: int, t: float, day: int, repeat: bool) -> None:
        """One purchase: the basket and its category, the programme's answer, the books, word of mouth."""
        c, st, rt = self.c, self.seg, self.runtime
        seg = int(c.seg[i])
        k = int(c.purchases[i])
        amount = float(special.gammaincinv(st.spend_p[seg], self.u("spend", i, k))) / float(c.nu[i])
        if float(c.offer_until[i]) > t:
            amount *= 1 + float(c.offer_basket[i])
        u = self.u("category", i, k)
        cat = min(int(np.sum(c.cat_cum[i] < u)), len(self.cats) - 1)
        before = self._snapshot(i)
        if self.pol.is_baseline:
            eff = Effects.empty(_one(i))
        else:
            eff = rt.purchase(_one(i), np.array([t]), np.array([amount]), np.array([cat], dtype=np.int64),
                              np.array([k + 1.0]), np.array([st.credit_appetite[seg]]), float(day), _Facts(self, day))
        discount, credit = float(eff.discount[0]), float(eff.credit[0])
        revenue = amount - discount
        cogs = amount * (1 - self.unit_margin[cat]) * self.store.unit_cost_factor
        c.purchases[i] = k + 1
        c.revenue[i] += revenue
        c.gross[i] += amount
        c.discounts[i] += discount
        c.last_purchase[i] = t
        c.cat_n[i, cat] += 1.0
        c.cat_spend[i, cat] += revenue
        b = self.book
        b.gross_sales += amount
        b.discounts += discount
        b.revenue += revenue
        b.cogs += cogs
        b.purchases += 1
        b.credit_charged += credit
        if repeat:
            b.repeat_revenue += revenue
            b.repeat_purchases += 1
        rules = int(eff.rules[0])
        self._note(i, t, "purchase", amount, number=k + 1, category=self.cats[cat], discount=discount, paid=revenue,
                   credit=credit, rules=self._rule_names(rules))
        goods = self._act_on(i, eff, t, day, before, "purchase")
        age_years = (t - float(c.acquired_at[i])) / 365.0
        c.clv[i] += (revenue - cogs - goods) * (1 + self.sc.discount_rate) ** (-age_years)
        if self.tx is not None:
            self.tx.append((i, t, amount, cat, discount, credit, rules))
        if rt.has_trigger("visit"):
            self._fire("visit", i, t, day)
        if self.on:
            # word of mouth: a satisfied customer may bring someone, who arrives on a later day
            s = self.satisfaction(i, t)
            if behaviour.refers(self.u("referral", i, k), float(st.referral_propensity[seg]), s):
                c.referrals[i] += 1
                self.referrals_waiting.append(i)

    def _contact(self, i: int, t: float, day: int) -> None:
        """A service contact: an inquiry or a complaint, handled well or badly by today's staff."""
        c, st, rt = self.c, self.seg, self.runtime
        self._draw_next_contact(i, t)
        k = int(c.contact_n[i])
        seg = int(c.seg[i])
        complaint = self.u("complaint", i, k) < float(st.complaint_share[seg])
        quality = behaviour.handling_quality(self.store.service_quality, self.store.load)
        resolved = self.u("resolved", i, k) < quality
        self.book.contacts += 1
        self.book.complaints += int(complaint)
        self.book.resolved += int(resolved)
        self.bump(i, t, float(behaviour.contact_shift(self.beh, resolved, complaint)))
        self._note(i, t, "contact", 0.0, complaint=complaint, resolved=resolved)
        for r in rt.triggers("service_contact"):
            kind = r.rule.on.kind  # type: ignore[union-attr]
            if kind == "any" or (kind == "complaint") == complaint:
                event = {"contact.complaint": np.array([complaint]), "contact.resolved": np.array([resolved])}
                self._fire("service_contact", i, t, day, event=event, only=[r])
        rt.contact(_one(i), float(day))  # a visit, for the rolling-window visit fields
        if rt.has_trigger("visit"):
            self._fire("visit", i, t, day)

    # ------------------------------------------------------------------ the programme's effects on one customer
    def _fire(self, tag: str, i: int, t: float, day: int, *, event: Mapping[str, object] | None = None,
              partner: int | None = None, only: list | None = None) -> float:
        """Run the rules on one trigger for customer i and act on what they did; returns the goods' cost."""
        before = self._snapshot(i)
        partner_before = self._snapshot(partner) if partner is not None else None
        eff = self.runtime.fire(tag, _one(i), float(day), _Facts(self, day), event,
                                partner=_one(partner) if partner is not None else None, only=only)
        goods = self._act_on(i, eff, t, day, before, tag)
        if partner is not None:
            self._note_ledgers(partner, t, partner_before, tag)
        return goods

    def _act_on(self, i: int, eff: Effects, t: float, day: int, before: dict | None, reason: str) -> float:
        """Act on what the programme did to customer i: goods given, trials, offers, delight. Returns goods cost."""
        c, st, b = self.c, self.seg, self.beh
        seg = int(c.seg[i])
        sens = float(st.reward_sensitivity[seg])
        goods = 0.0
        unit_cost = np.asarray(self.unit_cost) * self.store.unit_cost_factor
        for g in eff.records():  # the programme's money, unit by unit, to the book each kind declares
            for cost in (float(x) for x in g.unit_costs(unit_cost)):
                book_given(self.book, g, cost)
                if GIVEN[g.kind].goods:
                    goods += cost
        self._note_ledgers(i, t, before, reason, eff)
        delight = float(eff.delight[0])
        wear = self.wear(i, t) if self.on and delight > 0 else 1.0
        for _, codes in eff.free_items:
            favourite = self.favourite(i)
            for code in codes:
                self.bump(i, t, behaviour.free_item_gain(b, favourite == int(code), sens, wear))
        for n_trial, (_, codes) in enumerate(eff.trials):
            for code in (int(x) for x in codes):
                self._note(i, t, "reward", self.sc.store.categories[self.cats[code]].price, what="trial",
                           category=self.cats[code])
                if self.on and behaviour.adopts_trial(c.cat_n[i, code] == 0, self.u("trial", i, day * 64 + n_trial),
                                                      float(st.variety_seeking[seg])):
                    c.cat_cum[i] = behaviour.tastes_after_trial(self.preferences(i)[None, :], np.array([code]),
                                                                len(self.cats))[0]
                    c.lam_mult[i] *= behaviour.trial_rate_factor(b)
        for n_offer, (_, offer) in enumerate(eff.offers):
            responded = False
            if self.on:
                p = float(behaviour.offer_take_up(offer.response, sens))
                if self.u("offer", i, day * 64 + n_offer) < p:
                    responded = True
                    c.offer_until[i] = day + offer.days
                    c.offer_freq[i] = offer.frequency_uplift
                    c.offer_basket[i] = offer.basket_uplift
            self._note(i, t, "reward", offer.cost_per_contact, what="offer", responded=responded, days=offer.days)
        if self.on and delight > 0:
            gain = float(behaviour.reward_gain(b, delight, float(self.mean_basket[seg]), sens, wear))
            if gain > 0:
                self.bump(i, t, gain)
                c.heat[i] += 1.0
        return goods

    def wear(self, i: int, t: float) -> float:
        """How much a reward still delights customer i: 1 / (1 + habituation x recent rewards)."""
        c = self.c
        c.heat[i] = behaviour.decayed_heat(float(c.heat[i]), float(c.t_heat[i]), t, self.beh.satisfaction_memory_days)
        c.t_heat[i] = t
        return float(behaviour.wear(float(c.heat[i]), self.beh.habituation,
                                    behaviour.response_share(self.beh, self.seg, c.lam, c.acquired_at, i,
                                                             self.launch_day, t)))

    # ------------------------------------------------------------------ the store's calendar
    def _members_alive(self) -> list[int]:
        n = self.c.n
        return [int(i) for i in np.flatnonzero(self.c.alive[:n] & self.runtime.member[:n])]

    def _expiry_sweep(self, day: int) -> None:
        """Expire the points lots whose time has come; losing points annoys a customer."""
        rt, c = self.runtime, self.c
        for name, book in rt.points.items():
            who, lost = book.advance(float(day))
            value = rt.policy.points[name].value
            for i, pts in zip((int(x) for x in who), (float(x) for x in lost)):
                self.book.points_expired += pts
                if c.alive[i]:
                    seg = int(c.seg[i])
                    frustration = behaviour.expiry_frustration(self.beh, pts * value, float(self.mean_basket[seg]))
                    self.bump(i, float(day), float(frustration))
                self._note(i, float(day), "expiry", pts, ledger=name)

    def _statement(self, line_name: str, day: int) -> None:
        """A credit statement: each customer who owes pays (or misses), interest and fees accrue, bad debts are written
        off."""
        c, st = self.c, self.seg
        line = self.runtime.credit[line_name]
        owing, minimums = line.due()
        for i, minimum in zip((int(x) for x in owing), (float(x) for x in minimums)):
            seg = int(c.seg[i])
            miss = self.u("credit_miss", i, day) < float(st.default_risk[seg])
            if not c.alive[i]:
                miss = True  # a customer who has left the store stops paying
            owed = float(line.owed[i])
            paid = 0.0 if miss else minimum + float(st.repay_share[seg]) * (owed - minimum)
            repaid0, interest0, fees0 = (float(line.repaid[i]), float(line.collected_interest[i]),
                                         float(line.collected_fees[i]))
            out, amounts = line.settle(_one(i), np.array([paid]), np.array([minimum]), float(day))
            paid_now = float(line.repaid[i]) - repaid0
            interest, fee = float(line.collected_interest[i]) - interest0, float(line.collected_fees[i]) - fees0
            written_off = float(amounts.sum())
            self.book.credit_repaid += paid_now
            self.book.interest += interest
            self.book.fees += fee
            self.book.bad_debt += written_off
            self._note(i, float(day), "statement", paid_now, line=line_name, missed=miss, interest=interest, fee=fee,
                       written_off=written_off)
            if miss and c.alive[i]:
                self.bump(i, float(day), behaviour.missed_payment_hit(self.beh))
            if out.size and c.alive[i]:
                self._drop(i, float(day), "credit written off")

    def _tier_review(self, day: int) -> None:
        """Move members between tiers, then run the tier-review rules for each living member."""
        rt = self.runtime
        n = self.c.n
        tiers_before = rt.tier[:n].copy()
        rt.tier_review(float(day))
        for i in np.flatnonzero(rt.tier[:n] != tiers_before):
            self._note(int(i), float(day), "tier", 0.0, tier=rt.tier_names[int(rt.tier[i])],
                       was=rt.tier_names[int(tiers_before[i])])
        if rt.has_trigger("tier_review"):
            for m in self._members_alive():
                self._fire("tier_review", m, float(day), day)

    def _personal_dates(self, day: int) -> None:
        """Birthdays, enrolment anniversaries and inactivity spells that fall today."""
        rt, c = self.runtime, self.c
        if rt.has_trigger("birthday"):
            for i in self._members_alive():
                if int(c.birthday[i]) == day % 365 + 1:
                    self._fire("birthday", i, float(day), day)
        if rt.has_trigger("anniversary"):
            for i in self._members_alive():
                age = day - math.floor(float(c.acquired_at[i]))
                if age > 0 and age % 365 == 0:
                    self._fire("anniversary", i, float(day), day)
        for r in rt.triggers("inactivity"):
            quiet = r.rule.on.days  # type: ignore[union-attr]
            for i in self._members_alive():
                gap = day - float(c.last_purchase[i])
                if quiet <= gap < quiet + 1:
                    self._fire("inactivity", i, float(day), day, only=[r])

    def _launch(self, day: int) -> None:
        """The programme starts: its runtime replaces the warm-up's, and everyone present may join."""
        n = self.c.n  # who is present, and what they had spent: the naive member comparison's customers
        self.launch_revenue = np.where(self.c.alive[:n], self.c.revenue[:n], np.nan)
        if self.programme is not None:
            self.cp, self.runtime = self.programme
            self.pol = self.cp.policy
            self.programme = None
            if self.c.capacity > self.runtime.capacity:
                self.runtime.grow(self.c.capacity)
        if self.pol.is_baseline:
            return
        rt = self.runtime
        present = np.flatnonzero(self.c.alive[: self.c.n])
        chance = behaviour.launch_enrol_probability(self.beh, self.pol.participation, self.c.lam[present],
                                                    np.array([self._basket(int(i)) for i in present]))
        for i, p in zip((int(k) for k in present), chance):
            joined = bool(self.u("enrol", i, 0) < p)
            self._note(i, float(day), "launch", 0.0, member=joined)
            if joined:
                rt.enrol(_one(i))
                if rt.has_trigger("enrolment"):
                    self._fire("enrolment", i, float(day), day)

    def _calendar(self, day: int) -> None:
        """The programme's calendar at the start of a day (from the launch day)."""
        L = self.launch_day
        if self.launched and day == L:
            self._launch(day)
        if day < L:
            return
        rt = self.runtime
        if rt.points:
            self._expiry_sweep(day)
        for name, line in rt.credit.items():
            if day > L and (day - L) % line.spec.statement_days == 0:
                self._statement(name, day)
        if rt.policy.tiers is not None and day > L and (day - L) % rt.policy.tiers.review_days == 0:
            self._tier_review(day)
        for r in rt.triggers("schedule"):
            on: pm.OnSchedule = r.rule.on  # type: ignore[assignment]
            period = SCHEDULE_PERIOD_DAYS[on.every]
            first = L + (on.day - 1 - L) % period
            if day >= first and (day - first) % period == 0:
                for i in self._members_alive():
                    self._fire("schedule", i, float(day), day, only=[r])
        if any(rt.has_trigger(t) for t in ("birthday", "anniversary", "inactivity")):
            self._personal_dates(day)

    def _acquire(self, count: int, times: np.ndarray, referred_by: np.ndarray | None) -> None:
        """Store new customers' traits (the same batches as the vectorised engine) and start their lives."""
        if count == 0:
            return
        ids = self.c.add(count, times, self.streams, referred_by)
        if self.c.capacity > self.runtime.capacity:
            self.runtime.grow(self.c.capacity)
        for i in ids:
            if self._follows(int(i)):
                self.stories.setdefault(int(i), [])
            assert self.env is not None
            self.env.process(self._life(int(i)))

    def _acquire_base(self) -> None:
        """The existing base is in the store at time 0: the live ones' clocks start (no trial purchase)."""
        ids = self.c.add_existing(self.base, self.streams)
        if self.c.capacity > self.runtime.capacity:
            self.runtime.grow(self.c.capacity)
        assert self.env is not None
        for i in (int(k) for k in ids):
            if self._follows(i):
                self.stories.setdefault(i, [])
            if self.c.alive[i]:
                self._draw_next_candidate(i, 0.0)
                self._draw_next_contact(i, 0.0)
                self.env.process(self._life(i, present=True))

    def _arrivals(self, day: int) -> None:
        """The day's new customers: paid marketing, then the referrals made before the day began."""
        if self.sc.population.arrival_days > 0:
            today = arriving_on(self.start_times, day)
            self._acquire(today.stop - today.start, self.start_times[today], None)
        mk = self.sc.store.marketing
        if mk.budget_per_year > 0:
            n_new = int(self.acq_rng.poisson(mk.budget_per_year / 365.0 / mk.cost_per_acquisition))
            times = day + np.sort(self.acq_rng.random(n_new))
            self._acquire(n_new, times, None)
            self.book.acquired += n_new
        if self.referrals_waiting:
            referrers = np.array(self.referrals_waiting, dtype=np.int64)
            self.referrals_waiting = []
            times = day + np.sort(self.acq_rng.random(len(referrers)))
            self._acquire(len(referrers), times, referrers)
            self.book.acquired += len(referrers)
            self.book.acquired_referral += len(referrers)

    def _close(self, day: int) -> None:
        """Close the day's books: the store and its flywheel move one day on; the day's record is kept."""
        rt, c = self.runtime, self.c
        n = c.n
        members = int(rt.member[:n].sum())
        self.book.points_awarded, self.book.points_redeemed = self._points_flows()
        rec = self.store.end_of_day(self.book, members * self.pol.cost_per_member_per_year / 365.0, self.sc.flywheel)
        rec["day"] = day
        rec["alive"] = int(c.alive[:n].sum())
        rec["customers"] = n
        rec["members"] = members
        rec["points_outstanding"] = float(sum(b.lots[:n].sum() for b in rt.points.values()))
        rec["points_liability"] = float(sum(b.lots[:n].sum() * rt.policy.points[name].value
                                            for name, b in rt.points.items()))
        rec["credit_outstanding"] = float(sum(b.owed[:n].sum() for b in rt.credit.values()))
        if day % self.sc.period_days == 0 or day == self.days - 1:
            alive = np.flatnonzero(c.alive[:n])
            levels = [self.satisfaction(int(i), day + 1.0) for i in alive]
            rec["customer_satisfaction"] = float(np.mean(levels)) if levels else float("nan")
        else:
            rec["customer_satisfaction"] = float("nan")
        self.daily.append(rec)
        self.book = DayBook()

    def _points_flows(self) -> tuple[float, float]:
        """Points awarded and redeemed since the last close, over all ledgers."""
        n = self.c.n
        awarded = float(sum(b.earned[:n].sum() for b in self.runtime.points.values()))
        redeemed = float(sum(b.redeemed[:n].sum() for b in self.runtime.points.values()))
        seen = self._points_seen
        flows = (awarded - seen["awarded"], redeemed - seen["redeemed"])
        seen["awarded"], seen["redeemed"] = awarded, redeemed
        return flows

    def _store_days(self) -> Generator[simpy.Event, None, None]:
        """The store's process: at each day boundary, yesterday's books close, then the calendar, then arrivals."""
        env = self.env
        assert env is not None
        for day in range(self.days):
            self._calendar(day)
            self._arrivals(day)
            yield env.timeout(1)
            self._close(day)

    # ------------------------------------------------------------------ run
    def run(self) -> RawRun:
        """Run the whole horizon and return the raw results (the same shape as the vectorised engine's)."""
        if self.finished:
            raise RuntimeError("a ReferenceSimulation runs once; make a new one for another run")
        self.env = simpy.Environment()
        # the starting cohort arrives at time 0; their processes are made first, so they buy before day 0's calendar
        self.start_times = starting_arrivals(0 if self.base is not None else self.n0, self.sc.population.arrival_days)
        if self.base is not None:
            self._acquire_base()
        elif self.sc.population.arrival_days == 0:
            self._acquire(self.n0, self.start_times, None)
        store = self.env.process(self._store_days())
        self.env.run(until=store)
        self.finished = True
        for i in list(self.stories):
            self._note(i, float(self.days), "end", float(self.c.revenue[i]), alive=bool(self.c.alive[i]),
                       purchases=int(self.c.purchases[i]))
        daily = {k: np.array([r[k] for r in self.daily]) for k in self.daily[0]}
        tx: dict[str, np.ndarray] | None = None
        if self.tx is not None:
            cols = list(zip(*self.tx)) if self.tx else [()] * 7
            tx = {
                "customer_id": np.array(cols[0], dtype=np.int64),
                "time": np.array(cols[1], dtype=np.float64),
                "amount": np.array(cols[2], dtype=np.float64),
                "category": np.array(cols[3], dtype=np.int16),
                "discount": np.array(cols[4], dtype=np.float64),
                "credit": np.array(cols[5], dtype=np.float64),
                "rules": np.array(cols[6], dtype=np.uint64),
            }
        return record_run(self.sc, self.pol.name, self.days, daily, self.c, self.runtime, tx, self.cp.rule_ids, self.n0,
                          launch_day=self.launch_day if self.launched else None,
                          launch_revenue=self.launch_revenue if self.launched else None)

    # ------------------------------------------------------------------ stories
    def trace(self, customer_id: int) -> list[dict[str, Any]]:
        """The story of one customer in this run: their events in time order, ending with an 'end' event.

        Each event has time (days), day, kind (one of STORY_KINDS), amount (dollars, or points for
        points and expiry events), balances ({'points': {ledger: points}, 'credit': {line: owed}}),
        satisfaction, and the kind's own details."""
        if not self.finished:
            raise RuntimeError("trace() tells the story of a finished run: call run() first")
        n = self.c.n
        if not 0 <= int(customer_id) < n:
            raise LabError.at("<command line>", 1, 1, f"no customer {customer_id} in this run: "
                              f"customers are numbered 0 to {n - 1}"
                              f" (the starting {self.n0} are 0 to {self.n0 - 1}); pick one in that range")
        cid = int(customer_id)
        if cid not in self.stories:
            raise LabError.at("<command line>", 1, 1, f"customer {cid} was not followed in this run; "
                              f"run again with follow=[{cid}] (or follow=None to follow everyone)")
        return [dict(e) for e in self.stories[cid]]

    def _follows(self, i: int) -> bool:
        return self.follow_all or i in self.followed

    def _snapshot(self, i: int | None) -> dict[str, Any] | None:
        """Customer i's programme state, to tell afterwards what a rule did (only for followed customers)."""
        if i is None or not self._follows(i):
            return None
        rt = self.runtime
        return {
            "points": {k: (float(b.earned[i]), float(b.redeemed[i]), float(b.deducted[i]))
                       for k, b in rt.points.items()},
            "voucher": (float(rt.voucher[i]), float(rt.voucher_until[i])),
            "tier": int(rt.tier[i]),
            "limit": {k: float(b.limit[i]) for k, b in rt.credit.items()},
        }

    def _note_ledgers(self, i: int, t: float, before: dict[str, Any] | None, reason: str,
                      eff: Effects | None = None) -> None:
        """Story events for what a rule firing changed for customer i: points, rewards, discounts, vouchers, tiers,
        credit."""
        if before is None:
            return
        rt = self.runtime
        after = self._snapshot(i)
        assert after is not None
        for name, (earned0, redeemed0, deducted0) in before["points"].items():
            earned1, redeemed1, deducted1 = after["points"][name]
            if earned1 > earned0:
                self._note(i, t, "points", earned1 - earned0, ledger=name, reason=reason)
            if deducted1 > deducted0:
                self._note(i, t, "points", -(deducted1 - deducted0), ledger=name, reason=reason)
            if redeemed1 > redeemed0:
                value = float(eff.points_discount[0]) if eff is not None else 0.0
                self._note(i, t, "reward", value, what="redeemed", ledger=name, points_spent=redeemed1 - redeemed0)
        if eff is not None:
            other = float(eff.discount[0]) - float(eff.points_discount[0])
            if other > 1e-12:
                self._note(i, t, "discount", other, sources=self._discount_sources(i, eff, before, after))
            for _, codes in eff.free_items:
                for code in (int(x) for x in codes):
                    self._note(i, t, "reward", self.sc.store.categories[self.cats[code]].price, what="free_item",
                               category=self.cats[code])
        if after["voucher"][1] != before["voucher"][1]:  # a voucher action always sets a new end date
            self._note(i, t, "reward", after["voucher"][0], what="voucher", until=after["voucher"][1])
        if after["tier"] != before["tier"]:
            self._note(i, t, "tier", 0.0, tier=rt.tier_names[after["tier"]], was=rt.tier_names[before["tier"]])
        for name, limit in after["limit"].items():
            if limit != before["limit"][name]:
                self._note(i, t, "reward", limit - before["limit"][name], what="credit_limit", line=name, limit=limit)

    def _discount_sources(self, i: int, eff: Effects, before: dict[str, Any], after: dict[str, Any]) -> tuple[str, ...]:
        """Where a purchase's discount came from: discount rules that fired, the customer's tier, a voucher."""
        rt = self.runtime
        fired = set(self._rule_names(int(eff.rules[0])))
        sources = [r.rule.id for r in self.cp.rules
                   if r.rule.id in fired and any(handler_for(a).discount_source for a in r.rule.do)]
        tiers = self.pol.tiers
        if tiers is not None and rt.member[i]:
            name = rt.tier_names[after["tier"]]
            if tiers.levels[name].discount_percent > 0:
                sources.append(f"{name} tier")
        if before["voucher"][0] > 0 and after["voucher"][0] == 0 and after["voucher"][1] == before["voucher"][1]:
            sources.append("voucher")
        return tuple(sources)

    def _note(self, i: int, t: float, kind: str, amount: float, **details: Any) -> None:
        """Add an event to customer i's story, with their balances and satisfaction at that moment."""
        if not self._follows(i):
            return
        rt = self.runtime
        event: dict[str, Any] = {
            "time": float(t), "day": int(math.floor(t)), "kind": kind, "amount": float(amount),
            "balances": {"points": {k: float(b.lots[i].sum()) for k, b in rt.points.items()},
                         "credit": {k: float(b.owed[i]) for k, b in rt.credit.items()}},
            "satisfaction": self.satisfaction(i, float(t)),
        }
        event.update(details)
        self.stories.setdefault(i, []).append(event)

    def _rule_names(self, mask: int) -> tuple[str, ...]:
        ids = self.cp.rule_ids
        return tuple(ids[k] for k in range(min(len(ids), 64)) if mask >> k & 1)


# --------------------------------------------------------------------------- the fields this engine serves
def _calendar(name: str) -> Callable[["ReferenceSimulation", int], float]:
    def serve(sim: ReferenceSimulation, day: int) -> float:
        return calendar_field(name, int(day))
    return serve


# Every engine-served field of lab.policy.fields, for one customer (the vectorised engine serves them for a batch).
_CUSTOMER_FACTS: dict[str, Callable[["ReferenceSimulation", int, int], Any]] = {
    "customer.segment": lambda sim, i, day: int(sim.c.seg[i]),
    "customer.member": lambda sim, i, day: bool(sim.runtime.member[i]),
    "customer.tenure_days": lambda sim, i, day: day - float(sim.c.acquired_at[i]),
    "customer.purchases": lambda sim, i, day: float(sim.c.purchases[i]),
    "customer.spend": lambda sim, i, day: float(sim.c.revenue[i]),
    "customer.last_purchase": lambda sim, i, day: float(sim.c.last_purchase[i]),
    "customer.satisfaction": lambda sim, i, day: sim.satisfaction(i, float(day)),
    "customer.category_purchases": lambda sim, i, day: sim.c.cat_n[i].astype(np.float64),
    "customer.category_spend": lambda sim, i, day: sim.c.cat_spend[i].copy(),
    "customer.favourite_category": lambda sim, i, day: sim.favourite(i),
    "customer.least_category": lambda sim, i, day: sim.least_bought(i),
    "customer.categories_bought": lambda sim, i, day: float((sim.c.cat_n[i] > 0).sum()),
    "customer.referred": lambda sim, i, day: bool(sim.c.referred[i]),
    "customer.referrals": lambda sim, i, day: float(sim.c.referrals[i]),
}
_STORE_FACTS: dict[str, Callable[["ReferenceSimulation", int], Any]] = {
    "store.service_quality": lambda sim, day: sim.store.service_quality,
    **{name: _calendar(name) for name in CALENDAR_FIELDS},
}
check_served({**_CUSTOMER_FACTS, **_STORE_FACTS}, "the reference engine")
