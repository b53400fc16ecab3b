"""The vectorised engine: a whole population through a policy, day by day, on SimPy's calendar.

SimPy keeps the calendar: statements, expiry sweeps, tier reviews, scheduled
campaigns, birthdays, profit-sharing payouts, staff turnover and the store's
end-of-day update are SimPy processes. Within a day, calendar events come
first, then the customers' events (acquisitions, purchases, service
contacts), then the store closes its books. Customer events are handled in
vectorised batches: each micro-step takes every customer's next event in the
day at once, so each customer's own events stay in time order.

Purchase times come from thinning (Lewis & Shedler 1979): candidates arrive
at the customer's base rate times a scenario-wide bound M, and each is kept
with probability m(t)/M, where m(t) is the product of the programme and
flywheel effects at that moment. With behaviour switched off m = M = 1 and
every candidate is a purchase, so a BG/NBD segment is exactly BG/NBD.

The behavioural formulas (m(t), dropout, satisfaction, rewards, ...) are
`lab.engine.behaviour`'s, shared with the reference engine; this module is
the batching and the calendar around them.

The module runs past 500 lines because one day of the store is one story told in
order -- the calendar, arrivals, purchases by thinning, dropouts, service
contacts, the close -- and the event order is what makes results reproducible;
the formulas themselves live in lab.engine.behaviour.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy
from lab.randomness import Streams, gamma_quantile, in_parallel
from lab.engine import behaviour
from lab.engine.store import CALENDAR_FIELDS, calendar_field, DayBook, Store
from lab.policy import model as pm
from lab.policy.effects import GIVEN, book_given
from lab.policy.fields import check_served
from lab.policy.runtime import CompiledPolicy, Effects, PolicyRuntime
from lab.population.arrivals import arriving_on, starting_arrivals
from lab.population.customers import Customers, SegmentTable
from lab.engine.launch import plan_launch
from lab.engine.options import RunOptions
from lab.engine.record import RawRun, record_run
from lab.scenario.model import Behaviour, Scenario

CALENDAR, CUSTOMERS, CLOSE = 0.0, 0.25, 0.75  # phases within a day on SimPy's clock
AGENDA_BLOCK_DAYS = 32  # how often the agendas scan the whole population (see _Agenda)
AGENDA_MIN_CUSTOMERS = 150_000  # below this a plain daily scan is cheaper than keeping an agenda


class _Source:
    """Customer facts the engine owns, served to the rules engine (the fields lab.policy.fields declares)."""

    def __init__(self, sim: "Simulation") -> None:
        self.sim = sim

    def get(self, name: str, idx: np.ndarray) -> np.ndarray | float:
        serve = _SERVE.get(name)
        if serve is None:
            raise KeyError(f"no customer field {name}")
        return serve(self.sim, idx)


def _add_to_cells(table: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray | float) -> None:
    """table[rows, cols] += values for distinct (row, col) pairs, through the flat view (much cheaper)."""
    if table.flags.c_contiguous:
        flat = table.reshape(-1)
        flat[rows * table.shape[1] + cols] += values
    else:
        table[rows, cols] += values


class _Agenda:
    """Which customers' next event of one kind (one column of times) falls on each day, without scanning everyone daily.

    Once per block of AGENDA_BLOCK_DAYS days the whole population is scanned for
    the customers whose time falls before the block ends, and each is filed under
    its day; a customer whose time is later moved into the block is noted and
    filed too. `due(day)` then returns exactly what a full scan would -- the
    sorted ids of live customers whose time is before the day's end -- at a cost
    set by the day's events rather than by the population's size. Entries left
    behind by a time that moved again are recognised by their time and dropped.
    """

    def __init__(self, customers: Customers, column: str, *, may_repeat: bool = False) -> None:
        self.c = customers
        self.column = column
        self.may_repeat = may_repeat  # whether a customer's time can move twice between two calls of due()
        self.start = 0
        self.stop = -1  # first day after the block; nothing is held before the first scan
        self.buckets: list[list[np.ndarray]] = []
        self.noted: list[tuple[np.ndarray, np.ndarray]] = []

    def note(self, ids: np.ndarray, times: np.ndarray, after: float = -math.inf) -> None:
        """Customers whose time has just been set to `times`; those in this block and not before `after` are filed."""
        if ids.size and self.stop >= 0:
            keep = (times < self.stop) & (times >= after)
            if keep.any():
                self.noted.append((ids[keep], times[keep]))

    def _file(self, ids: np.ndarray, times: np.ndarray, day: int) -> None:
        # a time already past is due on the first day still to come
        offset = (np.clip(np.floor(times), day, self.stop - 1) - self.start).astype(np.int16)
        order = np.argsort(offset, kind="stable")  # a radix sort for 16-bit keys
        ids = ids[order]
        bounds = np.searchsorted(offset[order], np.arange(AGENDA_BLOCK_DAYS + 1, dtype=np.int16)).tolist()
        for off in range(day - self.start, AGENDA_BLOCK_DAYS):
            lo, hi = bounds[off], bounds[off + 1]
            if hi > lo:
                self.buckets[off].append(ids[lo:hi])

    def due(self, day: int) -> np.ndarray:
        """Live customers whose time is before the end of `day` (sorted, each once); they leave the agenda."""
        c = self.c
        times = getattr(c, self.column)
        if c.n < AGENDA_MIN_CUSTOMERS:
            self.stop = -1  # nothing to keep; if the population grows past the bar, the next call scans
            n = c.n
            return np.flatnonzero(c.alive[:n] & (times[:n] < day + 1.0))
        if day >= self.stop:
            self.start, self.stop = day, day + AGENDA_BLOCK_DAYS
            self.buckets = [[] for _ in range(AGENDA_BLOCK_DAYS)]
            self.noted = []  # the scan sees them
            n = c.n
            held = np.flatnonzero(c.alive[:n] & (times[:n] < self.stop))
            self._file(held, times[held], day)
        elif self.noted:
            noted, self.noted = self.noted, []
            if len(noted) == 1:
                self._file(noted[0][0], noted[0][1], day)
            else:
                self._file(np.concatenate([i for i, _ in noted]), np.concatenate([t for _, t in noted]), day)
        today = self.buckets[day - self.start]
        if not today:
            return np.zeros(0, dtype=np.int64)
        ids = np.concatenate(today) if len(today) > 1 else today[0]
        self.buckets[day - self.start] = []
        ids = ids[c.alive[ids] & (times[ids] < day + 1.0)]
        return np.unique(ids) if self.may_repeat else np.sort(ids, kind="stable")  # merges the sorted runs


class Simulation:
    """One run of one policy in one scenario."""

    def __init__(self, scenario: Scenario, policy: CompiledPolicy, opts: RunOptions) -> None:
        self.sc = scenario
        self.cp = policy
        self.opts = opts
        self.days = opts.days or scenario.days
        self.streams = Streams(opts.seed, opts.address)
        # a launch (lab.engine.launch): the policy starts on launch_day for everyone then present
        launch = plan_launch(scenario, self.streams, opts, self.days)
        self.launch_day, self.base, self.launched, self.n0 = launch.day, launch.base, launch.launched, launch.customers
        self.seg = SegmentTable.from_scenario(scenario)
        self.cats = tuple(scenario.store.categories)
        self.price = np.array([scenario.store.categories[c].price for c in self.cats])
        self.cost0 = np.array([scenario.store.categories[c].price * (1 - scenario.store.categories[c].margin)
                               for c in self.cats])
        self.unit_margin = np.array([scenario.store.categories[c].margin for c in self.cats])
        self.beh = scenario.behaviour
        self.on = scenario.behaviour.enabled
        self.capacity0 = int(self.n0 * 1.1) + 1024
        self.c = Customers(self.seg, len(self.cats), self.capacity0)
        self._take_policy(policy)
        self.launch_revenue: np.ndarray | None = None  # revenue of each customer present at the launch
        if self.programme is not None:  # the warm-up runs no programme
            self.cp = CompiledPolicy(pm.Policy(name=policy.policy.name), policy.world, ())
            self.runtime = PolicyRuntime(self.cp, self.capacity0)
        self.source = _Source(self)
        mean_lam = float(np.sum(self.seg.share * self.seg.r / self.seg.alpha_days))
        mean_spend = float(np.sum(self.seg.share * self.seg.spend_p * self.seg.spend_gamma / (self.seg.spend_q - 1)))
        self.mean_basket = np.maximum(self.seg.spend_p * self.seg.spend_gamma / (self.seg.spend_q - 1), 1e-9)
        self.store = Store(scenario, expected_daily_sales=self.n0 * mean_lam * mean_spend,
                           rng=self.streams.generator("staff"))
        self.q0 = scenario.store.service_quality
        self.m_bound = behaviour.rate_bound(self.beh, scenario.store.seasonality, self.seg)
        self.now = 0.0
        self.book = DayBook()
        self.daily: list[dict[str, float]] = []
        self.referral_queue: list[np.ndarray] = []
        self.tx: dict[str, list[np.ndarray]] | None = (
            {k: [] for k in ("customer_id", "time", "amount", "category", "discount", "credit", "rules")}
            if opts.transactions else None)
        self.acq_rng = self.streams.generator("acquisition")
        self._points_seen = {"earned": 0.0, "redeemed": 0.0}
        self.alive = 0  # running counts, so the daily record costs nothing per customer
        self.members = 0
        self.day_end = 0.0  # end of the day whose customer events are being handled
        self.any_pareto = bool(self.seg.pareto.any())
        self.offers_made = False  # until a customer takes up an offer, offer columns need not be read
        self.cand_agenda = _Agenda(self.c, "next_cand")
        self.contact_agenda = _Agenda(self.c, "next_contact")
        self.death_agenda = _Agenda(self.c, "death_time", may_repeat=True)

    def _take_policy(self, policy: CompiledPolicy) -> None:
        """The policy's part of the run's state: its rules and their runtime (held aside as `programme` until a
        launch after day 0) and the chance of joining it. Everything else is the scenario's, so a copy of another
        policy's run paused before its launch may take this policy for the rest of the run (the warm-up runs no
        programme, the same under every policy: `lab.engine.stack.policy_runs`)."""
        runtime = PolicyRuntime(policy, self.capacity0)
        self.programme: tuple[CompiledPolicy, PolicyRuntime] | None = None
        if self.launch_day > 0:
            self.programme = (policy, runtime)
        else:
            self.cp, self.runtime = policy, runtime
        self.enrol_c = (behaviour.population_enrol_intercept(self.beh, policy.policy.participation, self.seg)
                        if behaviour.self_selects(self.beh, policy.policy.participation) else 0.0)

    # ------------------------------------------------------------------ behaviour
    def sat_target(self, idx: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
        """Where each customer's satisfaction drifts: the segment's level, moved by service quality and debt.

        `ref`: the customers' reference satisfaction, when the caller already has it."""
        if ref is None:
            ref = self.c.sat_ref[idx]
        used = self._credit_use(idx)[1] if self.runtime.credit else None
        return behaviour.satisfaction_target(self._b(idx), ref, self._quality(idx), self.q0, used)  # type: ignore[arg-type]  # per row in a stack (elementwise)

    # the scenario's values for a batch of customers: the run's own; a stack of worlds whose scenarios differ in
    # parameter values gives each row its world's (lab.engine.stack), so every formula stays elementwise
    def _b(self, idx: np.ndarray) -> Behaviour:
        """The behaviour parameters these customers live under."""
        return self.beh

    def _seg_at(self, name: str, idx: np.ndarray, seg: np.ndarray | None = None) -> np.ndarray:
        """A segment parameter (a SegmentTable column) of each customer (`seg`: their segments, if at hand)."""
        return getattr(self.seg, name)[self.c.seg[idx] if seg is None else seg]

    def _bound(self, idx: np.ndarray) -> float | np.ndarray:
        """The thinning bound M these customers' candidates are drawn at."""
        return self.m_bound

    def _enrol_at(self, idx: np.ndarray) -> float | np.ndarray:
        """The joining chance's intercept for these arriving customers."""
        return self.enrol_c

    def _pull(self, idx: np.ndarray) -> float:
        """The competitors' pull on these customers after a purchase (market.competitor_pull)."""
        return self.sc.market.competitor_pull

    # the programme's and the store's state for a batch of customers (a stack of worlds asks each world's own)
    def _quality(self, idx: np.ndarray) -> float | np.ndarray:
        """The store's service quality as these customers meet it."""
        return self.store.service_quality

    def _goal_progress(self, idx: np.ndarray) -> np.ndarray:
        """Each customer's progress to their next points reward."""
        return self.runtime.goal_progress(idx, self.now)

    def _credit_use(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each customer's available credit and the share of their line in use."""
        return self.runtime.credit_use(idx)

    def _is_member(self, idx: np.ndarray) -> np.ndarray:
        """Whether each customer is a member of the programme."""
        return self.runtime.member[idx]

    def satisfaction(self, idx: np.ndarray, t: np.ndarray | float, ref: np.ndarray | None = None) -> np.ndarray:
        """Each customer's satisfaction at time t (`ref`: their reference satisfaction, if already at hand)."""
        if not self.on:
            return self.c.sat_ref[idx]
        c = self.c
        return behaviour.satisfaction_at(c.sat_at[idx], c.t_sat[idx], t, self.sat_target(idx, ref),
                                         self._b(idx).satisfaction_memory_days)

    def _everyone_satisfaction(self, n: int, t: float) -> np.ndarray:
        """satisfaction(customers 0..n-1, t) with no credit lines: the arithmetic of behaviour.satisfaction_target
        and behaviour.satisfaction_at, bit for bit, worked in place over whole columns (tests/test_behaviour.py
        holds them equal)."""
        c = self.c
        if not self.on:
            return c.sat_ref[:n]
        shift = self.beh.service_quality_weight * (self.store.service_quality - self.q0)
        memory = self.beh.satisfaction_memory_days
        out = np.empty(n)

        def part(lo: int, hi: int) -> None:
            target = c.sat_ref[lo:hi] + shift
            np.clip(target, 0.0, 1.0, out=target)
            w = np.subtract(c.t_sat[lo:hi], t)  # -(t - t_sat), exactly
            np.minimum(w, 0.0, out=w)
            w /= memory
            np.exp(w, out=w)
            s = out[lo:hi]
            np.subtract(c.sat_at[lo:hi], target, out=s)
            s *= w
            s += target

        in_parallel(part, n)
        return out

    def bump_satisfaction(self, idx: np.ndarray, t: np.ndarray | float, delta: np.ndarray) -> None:
        """Shift satisfaction by delta now (rewards, service, expiry, debt)."""
        if not self.on or len(idx) == 0:
            return
        s = self.satisfaction(idx, t)
        self.c.sat_at[idx] = behaviour.bumped(s, delta)
        self.c.t_sat[idx] = t

    def rate_multiplier(self, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        """m(t): how much faster than its base rate each customer buys right now."""
        if not self.on:
            return np.ones(len(idx))
        c, b = self.c, self._b(idx)
        seg = c.seg[idx]
        ref = c.sat_ref[idx]
        s = self.satisfaction(idx, t, ref)
        goal = None
        if b.goal_gradient > 0 and self.runtime.points:
            goal = (self._seg_at("reward_sensitivity", idx, seg), self._goal_progress(idx))
        offer = None
        if self.offers_made:
            live = c.offer_until[idx] > t
            if live.any():
                offer = np.where(live, c.offer_freq[idx], 0.0)
        credit = None
        if self.runtime.credit and b.credit_spend_ahead > 0:
            avail, used = self._credit_use(idx)
            credit = (self._seg_at("credit_appetite", idx, seg), avail > 0, used)
        member = None
        if b.membership_effect > 0 and self.runtime.points:
            member = (self._seg_at("reward_sensitivity", idx, seg), self._is_member(idx))
        return behaviour.rate_multiplier(b, c.lam_mult[idx], t, s, ref,  # (fancy indexing copies: multiplied in place)
                                         seasonality=self.sc.store.seasonality, peak_day=self.sc.store.peak_day,
                                         bound=self._bound(idx),  # type: ignore[arg-type]  # (per row in a stack)
                                         goal=goal, offer_uplift=offer, credit=credit,
                                         headroom=behaviour.response_share(b, self.seg, c.lam, c.acquired_at, idx,
                                                                           self.launch_day, t), member=member)

    def dropout_multiplier(self, idx: np.ndarray, t: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
        """How much more likely than usual each customer is to drop out now (`s`: their satisfaction, if known)."""
        if not self.on:
            return np.ones(len(idx))
        if s is None:
            s = self.satisfaction(idx, t)
        b = self._b(idx)
        if b.points_hope > 0 and self.runtime.points:
            # customers part-way to a reward stay for it (and leave when it is redeemed or expires)
            sens = self._seg_at("reward_sensitivity", idx)
            return behaviour.dropout_multiplier(b, s, self.c.sat_ref[idx], sens, self._goal_progress(idx),
                                                behaviour.response_share(b, self.seg, self.c.lam,
                                                                         self.c.acquired_at, idx, self.launch_day, t))
        return behaviour.dropout_multiplier(b, s, self.c.sat_ref[idx])

    # ------------------------------------------------------------------ helpers
    def _next_candidate(self, idx: np.ndarray, t: np.ndarray, after: float = -math.inf,
                        n: np.ndarray | None = None, u: np.ndarray | None = None) -> np.ndarray:
        """Draw each customer's next purchase candidate and return its time.

        `after`: times from then on go on the agenda (earlier ones the caller handles);
        `n`, `u`: the customers' candidate counters and their "gap" uniforms, when the caller has them."""
        c = self.c
        if n is None:
            n = c.cand_n[idx]
        if u is None:
            u = self.streams.uniform("gap", idx, n)
        gap = -np.log1p(-u) / (c.lam[idx] * self._bound(idx))  # a unit exponential, as Streams.exponential draws it
        new = t + gap
        c.next_cand[idx] = new
        c.cand_n[idx] = n + 1
        self.cand_agenda.note(idx, new, after)
        return new

    def _next_contact(self, idx: np.ndarray, t: np.ndarray) -> None:
        c = self.c
        rate = self.seg.contact_rate_day[c.seg[idx]]
        n = c.contact_n[idx]
        gap = self.streams.exponential("contact_gap", idx, n) / np.maximum(rate, 1e-300)
        new = np.where(rate > 0, t + gap, np.inf)
        c.next_contact[idx] = new
        c.contact_n[idx] = n + 1
        self.contact_agenda.note(idx, new)

    def _drop(self, idx: np.ndarray, t: np.ndarray | float) -> None:
        if len(idx) == 0:
            return
        self.c.alive[idx] = False
        self.c.dropped_at[idx] = t
        self.book.lost += int(len(idx))
        self.alive -= int(len(idx))

    # ------------------------------------------------------------------ acquisition
    def acquire(self, count: int, times: np.ndarray, referred_by: np.ndarray | None) -> None:
        """New customers arrive and make their first (trial) purchase; some join the programme."""
        if count == 0:
            return
        self._welcome(self.c.add(count, times, self.streams, referred_by), times, referred_by)

    def _acquire_both(self, n_paid: int, paid_times: np.ndarray, referrers: np.ndarray,
                      referred_times: np.ndarray) -> None:
        """acquire() for the day's paid arrivals, then its referred ones: the same ids and draws, one call to add."""
        if n_paid == 0 or referrers.size == 0:
            self.acquire(n_paid, paid_times, None)
            self.acquire(referrers.size, referred_times, referrers)
            return
        ids = self.c.add(n_paid + referrers.size, np.concatenate([paid_times, referred_times]), self.streams,
                         np.concatenate([np.full(n_paid, -1, dtype=np.int64), referrers]))
        self._welcome(ids[:n_paid], paid_times, None)
        self._welcome(ids[n_paid:], referred_times, referrers)

    def _basket(self, ids: np.ndarray) -> np.ndarray:
        """Each customer's mean basket, p / nu (Gamma-Gamma), in dollars."""
        return self.seg.spend_p[self.c.seg[ids]] / self.c.nu[ids]

    def _grow_runtime(self) -> None:
        """Give the programme's books room for every customer row (a stack grows its current world's)."""
        if self.c.capacity > self.runtime.capacity:
            self.runtime.grow(self.c.capacity)

    def _referrer_rows(self, referred_by: np.ndarray) -> np.ndarray:
        """The rows of the referrers named by their customer ids: the ids themselves in a run alone."""
        return referred_by

    def _welcome(self, ids: np.ndarray, times: np.ndarray, referred_by: np.ndarray | None) -> None:
        joins = self._welcome_clocks(ids, times)
        self._welcome_books(ids, times, referred_by, joins)
        self._purchase(ids, times, repeat=False)

    def _welcome_clocks(self, ids: np.ndarray, times: np.ndarray) -> np.ndarray | None:
        """What a welcome does to the new customers' own columns alone (elementwise): their clocks start and
        each decides whether to join; returns who joins (None with no programme)."""
        if self.any_pareto:
            self.death_agenda.note(ids, self.c.death_time[ids])
        self._next_candidate(ids, times)
        self._next_contact(ids, times)
        if self.cp.policy.is_baseline:
            return None
        return self.streams.uniform("enrol", ids, 0) < behaviour.enrol_probability(
            self._b(ids), self.cp.policy.participation, self.c.lam[ids], self._basket(ids),
            self._enrol_at(ids))  # type: ignore[arg-type]  # per row in a stack (elementwise)

    def _welcome_books(self, ids: np.ndarray, times: np.ndarray, referred_by: np.ndarray | None,
                       joins: np.ndarray | None, *, starting: bool = False) -> None:
        """What a welcome does to the run's own state: its counts, the programme's books and the enrolment and
        referral rules (`starting`: the starting customers, not counted as acquisition)."""
        count = ids.size
        self._grow_runtime()
        if not starting:
            self.book.acquired += count
        self.alive += count
        if referred_by is not None:
            self.book.acquired_referral += count
        if joins is not None:
            members = ids[joins]
            self.runtime.enrol(members)
            self.members += int(members.size)
            if self.runtime.has_trigger("enrolment"):
                self._apply_effects(self.runtime.fire("enrolment", members, self.now, self.source), times[joins])
            if referred_by is not None and self.runtime.has_trigger("referral"):
                by = self._referrer_rows(referred_by)
                ok = self.runtime.member[by[joins]]
                referrers, refd, when = by[joins][ok], members[ok], times[joins][ok]
                # a batch must not repeat a customer: one referral per referrer per pass
                while referrers.size:
                    _, first = np.unique(referrers, return_index=True)
                    self._apply_effects(self.runtime.fire("referral", referrers[first], self.now, self.source,
                                                          partner=refd[first]), when[first])
                    rest = np.ones(referrers.size, dtype=bool)
                    rest[first] = False
                    referrers, refd, when = referrers[rest], refd[rest], when[rest]

    # ------------------------------------------------------------------ purchases
    def _purchase(self, idx: np.ndarray, t: np.ndarray, repeat: bool) -> np.ndarray | None:
        """A batch of purchases (no customer twice); returns the buyers' satisfaction afterwards (None with behaviour
        off)."""
        c, st = self.c, self.seg
        if len(idx) == 0:
            return None
        seg = c.seg[idx]
        k = c.purchases[idx]
        u_spend, u_cat, u_refer = self.streams.uniforms(("spend", "category", "referral"), idx, k)
        amount = gamma_quantile(st.spend_p, u_spend, code=seg) / c.nu[idx]
        if self.offers_made:
            live_offer = c.offer_until[idx] > t
            amount = amount * (1 + np.where(live_offer, c.offer_basket[idx], 0.0))
        cum = c.cat_cum[idx]
        # categories whose cumulative share is below u, counted column by column
        cat = (cum[:, 0] < u_cat).astype(np.int64)
        for j in range(1, cum.shape[1]):
            cat += cum[:, j] < u_cat
        np.minimum(cat, len(self.cats) - 1, out=cat)
        number = (k + 1).astype(np.float64)
        if self.cp.policy.is_baseline:
            eff = Effects.empty(idx)
        else:
            appetite = self._seg_at("credit_appetite", idx, seg)
            eff = self.runtime.purchase(idx, t, amount, cat, number, appetite, self.now, self.source)
        revenue = amount - eff.discount
        ucf = self.store.unit_cost_factor
        cogs = amount * (1 - self.unit_margin[cat]) * ucf
        c.purchases[idx] = k + 1
        c.revenue[idx] += revenue
        c.gross[idx] += amount
        c.discounts[idx] += eff.discount
        c.last_purchase[idx] = t
        # a batch never holds a customer twice, so plain fancy-index updates are exact
        _add_to_cells(c.cat_n, idx, cat, 1.0)
        _add_to_cells(c.cat_spend, idx, cat, revenue)
        b = self.book
        b.gross_sales += float(amount.sum())
        b.discounts += float(eff.discount.sum())
        b.revenue += float(revenue.sum())
        b.cogs += float(cogs.sum())
        b.purchases += int(len(idx))
        b.credit_charged += float(eff.credit.sum())
        margin = revenue - cogs
        if repeat:
            b.repeat_revenue += float(revenue.sum())
            b.repeat_purchases += int(len(idx))
        goods = self._apply_effects(eff, t)
        disc = (1 + self.sc.discount_rate) ** (-(t - c.acquired_at[idx]) / 365.0)
        c.clv[idx] += (margin - goods) * disc
        if self.tx is not None:
            self.tx["customer_id"].append(idx.copy())
            self.tx["time"].append(np.asarray(t, dtype=np.float64).copy())
            self.tx["amount"].append(amount)
            self.tx["category"].append(cat.astype(np.int16))
            self.tx["discount"].append(eff.discount.copy())
            self.tx["credit"].append(eff.credit.copy())
            self.tx["rules"].append(eff.rules.copy())
        if self.runtime.has_trigger("visit"):
            self._apply_effects(self.runtime.fire("visit", idx, self.now, self.source), t)
        if not self.on:
            return None
        # word of mouth: satisfied customers refer others, who arrive the next day
        s = self.satisfaction(idx, t)
        refer = behaviour.refers(u_refer, self._seg_at("referral_propensity", idx, seg), s)
        if refer.any():
            who = idx[refer]
            c.referrals[who] += 1
            self.referral_queue.append(who)
        return s

    def _apply_effects(self, eff: Effects, t: np.ndarray | float) -> np.ndarray:
        """Act on what the programme did: goods given, trials, offers, satisfaction. Returns goods cost per customer."""
        idx = eff.idx
        goods = np.zeros(len(idx))
        if len(idx) == 0:
            return goods
        pos = {int(i): j for j, i in enumerate(idx)} if (eff.free_items or eff.trials) and len(idx) < 64 else None
        unit_cost = self.cost0 * self.store.unit_cost_factor
        for g in eff.records():  # the programme's money: each record to the book its kind declares
            book_given(self.book, g, g.total(unit_cost))
            if GIVEN[g.kind].goods:
                np.add.at(goods, self._positions(idx, g.who, pos), g.unit_costs(unit_cost))
        if self.on:
            self._respond(eff, t, pos, slice(None) if eff.delight.any() else None)
        return goods

    def _respond(self, eff: Effects, t: np.ndarray | float, pos: dict[int, int] | None,
                 delighted: slice | np.ndarray | None) -> None:
        """How customers respond to what the programme did: free items and rewards delight them (worn by recent
        ones), trials may win them over, offers may be taken up. `delighted`: the customers (positions in
        eff.idx) whose rewards are weighed -- all of them when any has reward value, else none (a stack of
        worlds weighs each world's as its run alone does)."""
        c = self.c
        idx = eff.idx
        t_arr = np.broadcast_to(np.asarray(t, dtype=float), (len(idx),))
        wear: np.ndarray | None = None
        if delighted is not None:
            sel = idx[delighted]
            if sel.size:
                wear = np.ones(len(idx))
                wear[delighted] = self._wear(sel, t_arr[delighted])
        for who, codes in eff.free_items:
            j = self._positions(idx, who, pos)
            fav = c.favourite(who) == codes
            worn = wear[j] if wear is not None else 1.0
            self.bump_satisfaction(who, t_arr[j], behaviour.free_item_gain(
                self._b(who), fav, self._seg_at("reward_sensitivity", who), worn))
        trial_keys = self._event_keys()
        for who, codes in eff.trials:
            new = c.cat_n[who, codes] == 0
            adopt = behaviour.adopts_trial(new, self.streams.uniform("trial", who, trial_keys(who)),
                                           self._seg_at("variety_seeking", who))
            w_idx, w_codes = who[adopt], codes[adopt]
            if w_idx.size:
                c.cat_cum[w_idx] = behaviour.tastes_after_trial(c.preferences(w_idx), w_codes, len(self.cats))
                c.lam_mult[w_idx] *= behaviour.trial_rate_factor(self._b(w_idx))
        offer_keys = self._event_keys()
        for who, offer in eff.offers:
            key = offer_keys(who)
            if len(who):
                p = behaviour.offer_take_up(offer.response, self._seg_at("reward_sensitivity", who))
                resp = self.streams.uniform("offer", who, key) < p
                r = who[resp]
                self.offers_made = self.offers_made or bool(r.size)
                c.offer_until[r] = self.now + offer.days
                c.offer_freq[r] = offer.frequency_uplift
                c.offer_basket[r] = offer.basket_uplift
        if wear is not None and delighted is not None:
            sel, d, worn = idx[delighted], eff.delight[delighted], wear[delighted]
            gain = behaviour.reward_gain(self._b(sel), d, self.mean_basket[c.seg[sel]],
                                         self._seg_at("reward_sensitivity", sel), worn)
            hit = gain > 0
            self.bump_satisfaction(sel[hit], t_arr[delighted][hit], gain[hit])
            c.heat[sel[hit]] += 1.0  # this reward will dull the next ones

    def _event_keys(self) -> Callable[[np.ndarray], np.ndarray | int]:
        """The counters of one kind of programme event (trials, offers) for its records of a batch, in order: the
        j-th record's customers get _event_key(j) (in a stack, j counts the records of each customer's world)."""
        j = -1

        def key(who: np.ndarray) -> np.ndarray | int:
            nonlocal j
            j += 1
            return self._event_key(j)
        return key

    def _wear(self, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        """How much a reward still delights: 1 / (1 + habituation x recent rewards), recent rewards decaying with
        the satisfaction memory, times the response share (headroom x wear-out, when on). Brings each customer's
        reward count up to time t."""
        c = self.c
        b = self._b(idx)
        c.heat[idx] = behaviour.decayed_heat(c.heat[idx], c.t_heat[idx], t, b.satisfaction_memory_days)
        c.t_heat[idx] = t
        share = behaviour.response_share(b, self.seg, c.lam, c.acquired_at, idx, self.launch_day, t)
        return behaviour.wear(c.heat[idx], b.habituation, share)

    def _event_key(self, j: int) -> int:
        """Counter for a customer's j-th programme event of a kind today (offers, trials): never reused on another
        day."""
        return int(self.now) * 64 + j

    @staticmethod
    def _positions(idx: np.ndarray, who: np.ndarray, pos: dict[int, int] | None) -> np.ndarray:
        if pos is not None:
            return np.array([pos[int(w)] for w in who], dtype=np.intp)
        order = np.argsort(idx, kind="stable")
        return order[np.searchsorted(idx, who, sorter=order)]

    def customers_day(self, day: int) -> None:
        """Everything customers do in [day, day + 1): arrivals, purchases, dropouts, service contacts."""
        self._arrivals(day)
        self._customer_events(day)

    def _arrivals(self, day: int) -> None:
        """The day's arrivals: the starting customers due today, paid marketing, then yesterday's referrals."""
        # arrivals: paid marketing, then yesterday's referrals
        mk = self.sc.store.marketing
        referrers = np.concatenate(self.referral_queue) if self.referral_queue else None
        self.referral_queue = []  # today's referrals arrive tomorrow, whoever makes them
        if self.sc.population.arrival_days > 0:
            today = arriving_on(self.start_times, day)
            before = self.book.acquired
            self.acquire(today.stop - today.start, self.start_times[today], None)
            self.book.acquired = before  # the starting customers are not counted as acquisition
        n_new, paid_times = 0, np.zeros(0)
        if mk.budget_per_year > 0:
            lam = mk.budget_per_year / 365.0 / mk.cost_per_acquisition
            n_new = int(self.acq_rng.poisson(lam))
            paid_times = day + np.sort(self.acq_rng.random(n_new))
        if referrers is None:
            self.acquire(n_new, paid_times, None)
        else:
            self._acquire_both(n_new, paid_times, referrers, day + np.sort(self.acq_rng.random(len(referrers))))

    def _customer_events(self, day: int) -> None:
        """The day's purchases (by thinning), dropouts and service contacts."""
        c = self.c
        end = day + 1.0
        # purchases, by thinning; each micro-step handles every customer's next candidate of the day
        self.day_end = end
        idx = self.cand_agenda.due(day)
        while idx.size:
            t = c.next_cand[idx]
            if self.any_pareto:
                dead = t >= c.death_time[idx]
                if dead.any():
                    self._drop(idx[dead], c.death_time[idx[dead]])
                    idx, t = idx[~dead], t[~dead]
            n_cand = c.cand_n[idx]
            if self.m_bound > 1.0:
                m = self.rate_multiplier(idx, t)
                u_accept, u_gap = self.streams.uniforms(("accept", "gap"), idx, n_cand)
                keep = u_accept * self._bound(idx) < m
            else:
                m = np.ones(len(idx))
                keep = np.ones(len(idx), dtype=bool)
                u_gap = None
            buyers, bt = idx[keep], t[keep]
            following = self._next_candidate(idx, t, after=end, n=n_cand, u=u_gap)
            if buyers.size:
                s = self._purchase(buyers, bt, repeat=True)
                self._dropout_after(buyers, bt, m[keep], s)
            idx = idx[c.alive[idx] & (following < end)]
        # Pareto/NBD deaths with no purchase candidate in the day
        if self.any_pareto:
            dying = self.death_agenda.due(day)
            self._drop(dying, c.death_time[dying])
        self._service_contacts(end)

    def _dropout_after(self, idx: np.ndarray, t: np.ndarray, rate_mult: np.ndarray,
                       s: np.ndarray | None = None) -> None:
        """BG/NBD: after each repeat purchase a customer drops out with probability p, moved by satisfaction and
        competitors.

        A customer the programme makes buy m times faster gets m times the dropout
        opportunities, so p is spread over them: p' = 1 - (1 - p)^(d / m), keeping the
        dropout hazard per day what satisfaction `d` says, not what the pace of buying says."""
        c = self.c
        dm = self.dropout_multiplier(idx, t, s)
        pull = self._pull(idx)
        bg = ~c.pareto[idx]
        p_eff = behaviour.dropout_probability(c.p_drop[idx], dm, rate_mult, pull)
        u = self.streams.uniform("dropout", idx, c.purchases[idx])
        out = bg & (u < p_eff)
        if pull > 0:
            out |= ~bg & (u < pull)
        self._drop(idx[out], t[out])
        # Pareto/NBD: rescale the remaining lifetime to the new dropout multiplier (memoryless)
        par = np.flatnonzero(~bg & ~out)
        if par.size and self.on:
            w = idx[par]
            old = c.d_mult[w]
            c.death_time[w] = behaviour.rescaled_death(t[par], c.death_time[w], old, dm[par])
            c.d_mult[w] = dm[par]
            self.death_agenda.note(w, c.death_time[w])

    def _service_contacts(self, end: float) -> None:
        c = self.c
        idx = self.contact_agenda.due(int(end) - 1)
        if idx.size == 0:
            return
        t = c.next_contact[idx]
        self._next_contact(idx, t)
        seg = c.seg[idx]
        k = c.contact_n[idx]
        complaint = self.streams.uniform("complaint", idx, k) < self.seg.complaint_share[seg]
        q = behaviour.handling_quality(self.store.service_quality, self.store.load)
        resolved = self.streams.uniform("resolved", idx, k) < q
        self.book.contacts += int(idx.size)
        self.book.complaints += int(complaint.sum())
        self.book.resolved += int(resolved.sum())
        self.bump_satisfaction(idx, t, behaviour.contact_shift(self._b(idx), resolved, complaint))
        if self.runtime.has_trigger("service_contact"):
            for r in self.runtime.triggers("service_contact"):
                assert isinstance(r.rule.on, pm.OnServiceContact)  # triggers("service_contact") yields only these
                kind = r.rule.on.kind
                sel = (np.ones(len(idx), dtype=bool) if kind == "any"
                       else (complaint if kind == "complaint" else ~complaint))
                ev = {"contact.complaint": complaint[sel], "contact.resolved": resolved[sel]}
                self._apply_effects(self.runtime.fire("service_contact", idx[sel], self.now, self.source, ev, only=[r]),
                                    t[sel])
        self.runtime.contact(idx, self.now)  # a visit, for the rolling-window visit fields
        if self.runtime.has_trigger("visit"):
            self._apply_effects(self.runtime.fire("visit", idx, self.now, self.source), t)

    # ------------------------------------------------------------------ calendar
    def _members_alive(self) -> np.ndarray:
        n = self.c.n
        return np.flatnonzero(self.c.alive[:n] & self.runtime.member[:n])

    def expiry_sweep(self, day: int) -> None:
        """Expire points lots whose time has come; expiry annoys the customers who lose points."""
        rt, c = self.runtime, self.c
        for name, book in rt.points.items():
            who, lost = book.advance(day)
            if who.size:
                self.book.points_expired += float(lost.sum())
                value = lost * rt.policy.points[name].value
                keep = c.alive[who]
                frus = behaviour.expiry_frustration(self._b(who), value, self.mean_basket[c.seg[who]])
                self.bump_satisfaction(who[keep], float(day), frus[keep])

    def tier_review(self, day: int) -> None:
        """Move members between tiers, then run the tier-review rules."""
        self.runtime.tier_review(day)
        if self.runtime.has_trigger("tier_review"):
            self._apply_effects(self.runtime.fire("tier_review", self._members_alive(), day, self.source), float(day))

    def scheduled(self, rule, day: int) -> None:
        """A scheduled campaign fires for every member."""
        self._apply_effects(self.runtime.fire("schedule", self._members_alive(), day, self.source, only=[rule]),
                            float(day))

    def personal_dates(self, day: int) -> None:
        """Birthdays, enrolment anniversaries and inactivity spells that fall today."""
        rt, c = self.runtime, self.c
        if rt.has_trigger("birthday"):
            who = self._members_alive()
            who = who[c.birthday[who] == day % 365 + 1]
            self._apply_effects(rt.fire("birthday", who, day, self.source), float(day))
        if rt.has_trigger("anniversary"):
            who = self._members_alive()
            age = day - np.floor(c.acquired_at[who])
            who = who[(age > 0) & (age % 365 == 0)]
            self._apply_effects(rt.fire("anniversary", who, day, self.source), float(day))
        for r in rt.triggers("inactivity"):
            D = r.rule.on.days  # type: ignore[union-attr]
            who = self._members_alive()
            gap = day - c.last_purchase[who]
            who = who[(gap >= D) & (gap - 1 < D)]
            self._apply_effects(rt.fire("inactivity", who, day, self.source, only=[r]), float(day))

    def _statement(self, line, day: int) -> None:
        c = self.c
        idx, minimum = line.due()
        if idx.size == 0:
            return
        seg = c.seg[idx]
        k = np.full(len(idx), day, dtype=np.int64)
        miss = self.streams.uniform("credit_miss", idx, k) < self._seg_at("default_risk", idx, seg)
        miss |= ~c.alive[idx]  # a customer who has left the store stops paying: the debt goes bad
        owed = line.owed[idx]
        paid = np.where(miss, 0.0, minimum + self._seg_at("repay_share", idx, seg) * (owed - minimum))
        before_interest, before_fees = line.collected_interest.sum(), line.collected_fees.sum()
        repaid_before = line.repaid.sum()
        out, amounts = line.settle(idx, paid, minimum, float(day))
        self.book.credit_repaid += float(line.repaid.sum() - repaid_before)
        self.book.interest += float(line.collected_interest.sum() - before_interest)
        self.book.fees += float(line.collected_fees.sum() - before_fees)
        self.book.bad_debt += float(amounts.sum())
        missed = idx[miss & c.alive[idx]]
        self.bump_satisfaction(missed, float(day), np.full(len(missed), behaviour.missed_payment_hit(self._b(missed))))
        # a written-off customer is lost to the store: both sides lose
        gone = out[c.alive[out]]
        self._drop(gone, float(day))

    # ------------------------------------------------------------------ store
    def close_day(self, day: int) -> None:
        rt = self.runtime
        members = self.members
        running = members * self.cp.policy.cost_per_member_per_year / 365.0
        flows = {k: sum(b.flows[k] for b in rt.points.values()) for k in ("earned", "redeemed")}
        self.book.points_awarded = flows["earned"] - self._points_seen["earned"]
        self.book.points_redeemed = flows["redeemed"] - self._points_seen["redeemed"]
        self._points_seen = flows
        rec = self.store.end_of_day(self.book, running, self.sc.flywheel)
        n = self.c.n
        rec["day"] = day
        rec["alive"] = self.alive
        rec["customers"] = n
        rec["members"] = members
        rec["points_outstanding"] = float(sum(b.outstanding for b in rt.points.values()))
        rec["points_liability"] = rt.liability()
        rec["credit_outstanding"] = float(sum(b.owed_total for b in rt.credit.values()))
        if day % self.sc.period_days == 0 or day == self.days - 1:
            alive = np.flatnonzero(self.c.alive[:n])  # (far cheaper than indexing with the boolean mask)
            if not alive.size:
                rec["customer_satisfaction"] = float("nan")
            elif rt.credit:
                rec["customer_satisfaction"] = float(self.satisfaction(alive, day + 1.0).mean())
            else:  # everyone at once through slices (no gathers), then the live ones
                rec["customer_satisfaction"] = float(self._everyone_satisfaction(n, day + 1.0).take(alive).mean())
        else:
            rec["customer_satisfaction"] = float("nan")
        self.daily.append(rec)
        self.book = DayBook()

    # ------------------------------------------------------------------ launch
    def launch(self, day: int) -> None:
        """The programme starts: its runtime replaces the warm-up's, and everyone present may join."""
        n = self.c.n  # who is present, and what they had spent: the naive member comparison's customers
        self.launch_revenue = np.where(self.c.alive[:n], self.c.revenue[:n], np.nan)
        if self.programme is not None:
            self.cp, self.runtime = self.programme
            self.programme = None
            if self.c.capacity > self.runtime.capacity:
                self.runtime.grow(self.c.capacity)
        if self.cp.policy.is_baseline:
            return
        n = self.c.n
        present = np.flatnonzero(self.c.alive[:n])
        joins = self.streams.uniform("enrol", present, 0) < behaviour.launch_enrol_probability(
            self._b(present), self.cp.policy.participation, self.c.lam[present], self._basket(present))
        members = present[joins]
        self.runtime.enrol(members)
        self.members += int(members.size)
        if self.runtime.has_trigger("enrolment"):
            self._apply_effects(self.runtime.fire("enrolment", members, self.now, self.source), float(day))

    def _welcome_base(self) -> None:
        """The existing base is in the store at time 0: the live ones' clocks start (no trial purchase)."""
        ids = self.c.add_existing(self.base, self.streams)
        if self.c.capacity > self.runtime.capacity:
            self.runtime.grow(self.c.capacity)
        live = ids[self.c.alive[ids]]
        self.alive += int(live.size)
        t0 = np.zeros(live.size)
        self._next_candidate(live, t0)
        self._next_contact(live, t0)

    # ------------------------------------------------------------------ run
    def run(self) -> RawRun:
        """Run the whole horizon and return the raw results."""
        env = simpy.Environment()
        self._start()
        self._schedule(env)
        env.run(until=self.days)
        return self._record()

    def _start(self) -> None:
        """The starting population, before the first day."""
        n0 = self.n0
        # the starting population: a cohort at time 0 (the BG/NBD set-up), or spread over the first days
        self.start_times = starting_arrivals(0 if self.base is not None else n0, self.sc.population.arrival_days)
        if self.base is not None:
            self._welcome_base()
        elif self.sc.population.arrival_days == 0:
            self.acquire(n0, self.start_times, None)
            self.book.acquired = 0  # the starting customers are not counted as acquisition

    def _schedule(self, env: simpy.Environment, resume: int = 0) -> None:
        """Every calendar event of the run, as SimPy processes; the days before `resume` pass without acting (a
        run continuing a copy of another's state keeps the clock of the run made whole, to the bit)."""
        def every(period: int, phase: float, fn, start: int = 0) -> None:
            def proc():
                yield env.timeout(start + phase)
                while True:
                    day = int(round(env.now - phase))
                    if day >= resume:
                        self.now = float(day)
                        fn(day)
                    yield env.timeout(period)
            env.process(proc())

        rt = self.programme[1] if self.programme is not None else self.runtime
        L = self.launch_day
        if self.launched:  # first on the launch day, before the programme's calendar
            def start():
                yield env.timeout(L + CALENDAR)
                self.now = float(L)
                self.launch(L)
            env.process(start())
        # start of day: the programme's calendar (from the launch day)
        if rt.points:
            every(1, CALENDAR, self.expiry_sweep, start=L)
        for line in rt.credit.values():
            every(line.spec.statement_days, CALENDAR, lambda d, line=line: self._statement(line, d),
                  start=L + line.spec.statement_days)
        if rt.policy.tiers is not None:
            every(rt.policy.tiers.review_days, CALENDAR, self.tier_review, start=L + rt.policy.tiers.review_days)
        for r in rt.triggers("schedule"):
            on: pm.OnSchedule = r.rule.on  # type: ignore[assignment]
            period = {"day": 1, "week": 7, "month": 30, "year": 365}[on.every]
            every(period, CALENDAR, lambda d, r=r: self.scheduled(r, d), start=L + (on.day - 1 - L) % period)
        if any(rt.has_trigger(t) for t in ("birthday", "anniversary", "inactivity")):
            every(1, CALENDAR, self.personal_dates, start=L)
        # the day's customer events, then the store closes its books
        every(1, CUSTOMERS, self.customers_day)
        every(1, CLOSE, self.close_day)

    def _record(self) -> RawRun:
        """The run's record, at the end of the horizon."""
        daily = {k: np.array([r[k] for r in self.daily]) for k in self.daily[0]}
        tx = None
        if self.tx is not None:
            tx = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in self.tx.items()}
        return record_run(self.sc, self.cp.policy.name, self.days, daily, self.c, self.runtime, tx, self.cp.rule_ids,
                          self.n0,
                          launch_day=self.launch_day if self.launched else None,
                          launch_revenue=self.launch_revenue if self.launched else None)


# --------------------------------------------------------------------------- the fields this engine serves
_Served = Callable[["Simulation", np.ndarray], "np.ndarray | float"]


def _calendar(name: str) -> _Served:
    def serve(sim: Simulation, idx: np.ndarray) -> float:
        return calendar_field(name, int(sim.now))
    return serve


# Every engine-served field of lab.policy.fields, for a batch of customers (the reference engine has its own copy,
# one customer at a time: tests/test_fields.py checks that both serve the same values).
_SERVE: dict[str, _Served] = {
    "customer.segment": lambda sim, idx: sim.c.seg[idx],
    "customer.member": lambda sim, idx: sim.runtime.member[idx],
    "customer.tenure_days": lambda sim, idx: sim.now - sim.c.acquired_at[idx],
    "customer.purchases": lambda sim, idx: sim.c.purchases[idx].astype(np.float64),
    "customer.spend": lambda sim, idx: sim.c.revenue[idx],
    "customer.last_purchase": lambda sim, idx: sim.c.last_purchase[idx],
    "customer.satisfaction": lambda sim, idx: sim.satisfaction(idx, sim.now),
    "customer.category_purchases": lambda sim, idx: sim.c.cat_n[idx].astype(np.float64),
    "customer.category_spend": lambda sim, idx: sim.c.cat_spend[idx],
    "customer.favourite_category": lambda sim, idx: sim.c.favourite(idx),
    "customer.least_category": lambda sim, idx: sim.c.least(idx),
    "customer.categories_bought": lambda sim, idx: (sim.c.cat_n[idx] > 0).sum(axis=1).astype(np.float64),
    "customer.referred": lambda sim, idx: sim.c.referred[idx],
    "customer.referrals": lambda sim, idx: sim.c.referrals[idx].astype(np.float64),
    "store.service_quality": lambda sim, idx: sim.store.service_quality,
    **{name: _calendar(name) for name in CALENDAR_FIELDS},
}
check_served(_SERVE, "the vectorised engine")
