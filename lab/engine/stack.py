"""A stack: many runs of one policy in one scenario simulated at once, each world bit-identical to its run alone.

A run of a few hundred customers pays the engine's fixed cost per simulated day (hundreds of small numpy
calls per day) for little work. A stack holds K worlds -- runs that share the scenario, the policy (the
same compiled rules), the horizon and the launch day, and differ in seed and address -- in one set of
customer columns, so that each micro-step of the day (purchase candidates, thinning, spend, dropout,
service contacts) is one batch over every world's customers.

Layout. World w owns the rows [base[w], base[w] + capacity[w]); its customer i (its id in the run alone)
is row base[w] + i, and its capacity grows as it would alone (when it fills up, the worlds' blocks are
laid out afresh). Each world keeps everything that is not a customer column: its own Streams keys, its
store and staff (with their sequential generators), its day book, its acquisition generator, its
programme runtime (ledgers, caps, budgets, accounts) indexed by the customer's own id, and its daily
records. Nothing couples two worlds: referrals stay within a world, budgets and caps are per world.

Why it gives the same bits. Every customer draw is counter-based (lab.randomness.WorldStreams keys a row
by its world and its own id); every per-customer formula is elementwise; each world's customers are in
each batch exactly when they would be alone (by induction over the day's micro-steps), in the same order
(rows of a world are ascending like its ids); and every sum into a world's books is taken over that
world's slice of the batch -- the same elements in the same order as alone (the slices are contiguous
because a batch's rows are sorted). Arrivals and the purchase rules run across worlds too: each world
draws its arrivals from its own generator, then all new customers are made in one batch; one runtime over
every world's rows (`PolicyRuntime.share_rows`) evaluates the purchase rules once, and what is not per
customer (accounts, budgets, caps, ledger totals) is kept and summed world by world. What stays world by
world -- the calendar, service-contact and visit rules, the store's close, and the purchases of a policy
whose actions do not stack -- makes the same calls the run alone makes (docs/MODEL.md §12b).

The stack reuses `Simulation`'s methods wherever they are elementwise over customers, overriding those
that touch a world's own state (books, runtime, store). The module runs past 500 lines because each of
those overrides is the stacked form of one step of the day, and the steps read best side by side.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import cast

import numpy as np
import simpy

from lab.engine import behaviour
from lab.engine.options import RunOptions
from lab.engine.record import RawRun, record_run
from lab.engine.simulate import CALENDAR, Simulation, _Agenda, _Source
from lab.engine.store import DayBook, Stores
from lab.randomness.sums import slice_sums
from lab.policy import model as pm
from lab.policy.effects import GIVEN, Effects, Given, book_given
from lab.policy.runtime import CompiledPolicy, PolicyRuntime
from lab.population.arrivals import arriving_on, starting_arrivals
from lab.population.customers import Customers, SegmentTable
from lab.randomness import WorldStreams, gamma_quantile
from lab.scenario.model import Behaviour, Scenario, Staff

# a world's state that the shared methods of Simulation read and assign as attributes of the engine
_CONTEXT = ("book", "referral_queue", "_points_seen", "alive", "members", "acq_rng", "store", "cp", "programme")


class _Members:
    """A world's membership flags, indexed by row (the runtime indexes them by the customer's own id)."""

    def __init__(self, view: "_WorldRuntime") -> None:
        self.view = view

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self.view.rt.member[rows - self.view.base]


class _WorldSource:
    """The customer facts of one world, for its runtime: the runtime's ids are the world's own."""

    def __init__(self, sim: "StackedSimulation", w: int) -> None:
        self.sim, self.w = sim, w

    def get(self, name: str, idx: np.ndarray) -> np.ndarray | float:
        return self.sim.source.get(name, idx + self.sim.bases[self.w])


class _WorldRuntime:
    """One world's programme runtime as the engine sees it: rows in, rows out (the runtime itself works on
    the world's own customer ids). Everything else is the runtime's own."""

    def __init__(self, sim: "StackedSimulation", w: int) -> None:
        self.sim, self.w = sim, w
        self.member = _Members(self)
        self._source = _WorldSource(sim, w)

    @property
    def rt(self) -> PolicyRuntime:
        return self.sim.worlds[self.w].runtime

    @property
    def base(self) -> int:
        return int(self.sim.bases[self.w])

    def __getattr__(self, name: str):
        if name.startswith("__"):  # (copy.deepcopy asks before the view has its attributes)
            raise AttributeError(name)
        return getattr(self.rt, name)

    def _rows(self, eff: Effects) -> Effects:
        b = self.base
        given = {k: [dataclasses.replace(g, who=g.who + b) for g in v] for k, v in eff.given.items()}
        return dataclasses.replace(eff, idx=eff.idx + b, given=given)

    def goal_progress(self, idx: np.ndarray, day: float) -> np.ndarray:
        return self.rt.goal_progress(idx - self.base, day)

    def credit_use(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.rt.credit_use(idx - self.base)

    def enrol(self, idx: np.ndarray) -> None:
        self.rt.enrol(idx - self.base)

    def contact(self, idx: np.ndarray, day: float) -> None:
        self.rt.contact(idx - self.base, day)

    def purchase(self, idx, times, amount, category, number, appetite, day, source) -> Effects:
        return self._rows(self.rt.purchase(idx - self.base, times, amount, category, number, appetite, day,
                                           self._source))

    def fire(self, tag, idx, day, source, event=None, partner=None, only=None) -> Effects:
        b = self.base
        return self._rows(self.rt.fire(tag, idx - b, day, self._source, event,
                                       partner=None if partner is None else partner - b, only=only))


_NONE = np.zeros(0)
_NONE.flags.writeable = False  # (shared by every world that acquires no one)
#: a programme without points: what summing its books' flows gives (shared by the worlds: read-only)
_NO_FLOWS: Mapping[str, float] = MappingProxyType({"earned": 0, "redeemed": 0})


@dataclasses.dataclass(frozen=True)
class _Arrival:
    """Customers a world welcomes in one call of Simulation._welcome: their arrival times, who referred each
    (None: no one), and whether they are the starting customers (not counted as acquisition)."""

    times: np.ndarray
    referred_by: np.ndarray | None
    starting: bool = False


class _StackSource(_Source):
    """The customer facts of every world's rows at once, for the stacked runtime: membership from its rows, the
    store's service quality each row's world's."""

    sim: "StackedSimulation"

    def get(self, name: str, idx: np.ndarray) -> np.ndarray | float:
        if name == "customer.member":
            assert self.sim.srt is not None
            return self.sim.srt.member[idx]
        if name == "store.service_quality":
            return self.sim._quality(idx)
        return super().get(name, idx)


def _part_of(eff: Effects, lo: int, hi: int) -> Effects:
    """The effects on the customers eff.idx[lo:hi] (one world's, ascending rows), as that world's own call gives
    them: its entries of every record, records it has none of left out."""
    rows = eff.idx[lo:hi]
    given: dict[str, list[Given]] = {}
    if eff.given and hi > lo:
        first, last = int(rows[0]), int(rows[-1])
        for kind, records in eff.given.items():
            for g in records:
                a, b = np.searchsorted(g.who, [first, last + 1]).tolist()
                if b > a:
                    given.setdefault(kind, []).append(dataclasses.replace(
                        g, who=g.who[a:b], codes=None if g.codes is None else g.codes[a:b]))
    return Effects(rows, eff.discount[lo:hi], eff.points_discount[lo:hi], eff.delight[lo:hi], eff.rules[lo:hi],
                   eff.credit[lo:hi], given)


class _WorldRows:
    """One world's customer columns (its own rows, in its own order), for record_run."""

    def __init__(self, c: Customers, base: int, n: int) -> None:
        self._c, self._base, self.n = c, base, n

    def __getattr__(self, name: str) -> np.ndarray:
        return getattr(self._c, name)[self._base:self._base + self.n]


#: The scenario parameters each world of a stack may hold at its own value, by the part of the scenario they sit
#: in (every path of lab.scenario.ranges.TABLE is here). Each is read either by an elementwise formula, which a
#: stack gives each row's world's value (`Simulation._b`, `_seg_at`, `_bound`, `_enrol_at`, `_pull`), or only by
#: a world's own state (its Store, its rate bound, its enrolment intercept). Everything else is structure.
PER_WORLD: dict[str, tuple[str, ...]] = {
    "behaviour": tuple(f.name for f in dataclasses.fields(Behaviour) if f.name != "enabled"),
    "store.staff": tuple(f.name for f in dataclasses.fields(Staff) if f.name != "count"),
    "store": ("fixed_cost_per_year", "learning_rate", "prior_volume_days"),
    "store.profit_sharing": ("share",),
    "market": ("spend_per_year", "competitor_pull"),
    "population.segments.*": ("reward_sensitivity", "referral_propensity", "variety_seeking", "credit_appetite",
                              "default_risk", "repay_share"),
}
# numpy computes x ** p with p one of these scalars by a shortcut (square, sqrt, reciprocal) whose last bit may
# differ from the general power an array of exponents takes: worlds with such an exponent keep it as structure
_SCALAR_POWERS = (-1.0, 0.0, 0.5, 1.0, 2.0)
#: Scenario switches each world of a stack may set its own way because only the world's own state reads them: the
#: flywheel (whole or cut) is read by the world's store when it closes its day, and by nothing per customer, so a
#: comparison's runs with the loop whole and cut share one stack.
PER_WORLD_SWITCHES = ("flywheel",)
_EXPONENTS = ("goal_gradient_power",)


def _canonical(name: str, value: object) -> object:
    """What of a per-world value is structure: its sign (the formulas branch only on whether a parameter is
    positive, zero or negative: `if b.wear_out <= 0`), and an exponent numpy treats apart."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value  # (None: an unset initial_experience_days, structure)
    if name in _EXPONENTS and float(value) in _SCALAR_POWERS:
        return ("power", float(value))
    return float(np.sign(value))


def stack_structure(scenario: Scenario) -> str:
    """The scenario's structure: everything but the values of the PER_WORLD parameters (kept only as their
    signs, and an exponent numpy computes apart). Runs whose scenarios have the same structure may share a stack
    whatever those values; a run's record does not depend on the other worlds (tests/test_stack_worlds.py)."""
    d = dataclasses.asdict(scenario)
    for name in PER_WORLD_SWITCHES:
        d[name] = "per world"
    for part, names in PER_WORLD.items():
        holders = (list(d["population"]["segments"].values()) if part == "population.segments.*"
                   else [_dig(d, part)])
        for h in holders:
            for n in names:
                h[n] = _canonical(n, h[n])
    return repr(d)


def _dig(d: dict, path: str) -> dict:
    for k in path.split("."):
        d = d[k]
    return d


def stack_key(scenario: Scenario, policy: CompiledPolicy, opts: RunOptions) -> tuple:
    """What runs must share to go in one stack: the scenario's structure (`stack_structure`: every parameter but
    the per-world ones' values), the compiled policy (the same object: its rules compile once), the horizon, the
    size and whether transactions are kept. Runs on an existing customer base (`population.from_fit`) are not
    stacked."""
    if scenario.population.from_fit is not None:
        return ("alone", id(opts))
    return (stack_structure(scenario), id(policy), opts.days, opts.customers, opts.transactions)


class _PerRow(np.ndarray):
    """One parameter's value for each row of a batch (its world's), with every world's value at hand.

    Arithmetic gives plain arrays, each element the operation its world's run alone computes on the scalar
    (IEEE arithmetic is elementwise, so scalar and array operands give the same bits). A comparison with a
    number is a formula's branch (`if b.wear_out <= 0`): it gives the stack's one answer, which stack_key makes
    every world's (the sign of a per-world value is structure); worlds that disagree are an error, not a guess."""

    worlds: np.ndarray

    def __new__(cls, rows: np.ndarray, worlds: np.ndarray) -> "_PerRow":
        obj = np.asarray(rows, dtype=np.float64).view(cls)
        obj.worlds = worlds
        return obj

    def __array_finalize__(self, obj: object) -> None:
        self.worlds = getattr(obj, "worlds", np.zeros(0))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = tuple(x.view(np.ndarray) if isinstance(x, _PerRow) else x for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(x.view(np.ndarray) if isinstance(x, _PerRow) else x for x in kwargs["out"])
        return getattr(ufunc, method)(*plain, **kwargs)

    def _branch(self, op, other):
        if isinstance(other, (int, float)):
            r = op(self.worlds, other)
            if bool(r.all()):
                return True
            if not bool(r.any()):
                return False
            raise AssertionError("the worlds of a stack disagree on a branch of a formula (stack_key must keep "
                                 "them apart)")
        return op(self.view(np.ndarray), other)

    def __gt__(self, other):
        return self._branch(np.greater, other)

    def __ge__(self, other):
        return self._branch(np.greater_equal, other)

    def __lt__(self, other):
        return self._branch(np.less, other)

    def __le__(self, other):
        return self._branch(np.less_equal, other)

    def __eq__(self, other):
        return self._branch(np.equal, other)

    def __ne__(self, other):
        return self._branch(np.not_equal, other)

    __hash__ = None


class _RowBehaviour:
    """The behaviour parameters of a batch's rows: a parameter the worlds hold at different values is each row's
    world's (a _PerRow), the others the one value they share."""

    def __init__(self, shared: Behaviour, varying: dict[str, np.ndarray], world: np.ndarray) -> None:
        self._shared, self._varying, self._world = shared, varying, world

    def __getattr__(self, name: str):
        v = self._varying.get(name)
        if v is None:
            return getattr(self._shared, name)
        return _PerRow(v[self._world], v)


class _Unshared:
    """What a stack's engine holds as `beh` or `seg` when some of its values differ by world: the shared values,
    and for a per-world one, read without naming the rows it is for, an error (read it through Simulation._b or
    _seg_at, which give each row its world's value) rather than world 0's value for every world."""

    def __init__(self, real: object, varying: dict[str, np.ndarray], what: str) -> None:
        self._real, self._varying, self._what = real, varying, what

    def __getattr__(self, name: str):
        if name.startswith("__"):  # (copy.deepcopy asks before the wrapper has its attributes)
            raise AttributeError(name)
        if name in self._varying:
            raise AssertionError(f"{self._what}.{name} differs between the worlds of this stack: read it per row "
                                 "(Simulation._b, _seg_at)")
        return getattr(self._real, name)


def _differing(values: Sequence[float] | Sequence[np.ndarray]) -> np.ndarray | None:
    """The worlds' values of one parameter as an array (world first), or None when every world has the same."""
    a = np.array(values, dtype=np.float64)
    return None if bool((a == a[0]).all()) else a


class StackedSimulation(Simulation):
    """K runs of one policy (differing in seed and address, and in the values of the PER_WORLD parameters of
    their scenarios: one scenario, or one per world), simulated as one."""

    def __init__(self, scenario: Scenario | Sequence[Scenario], policy: CompiledPolicy,
                 worlds: Sequence[RunOptions]) -> None:
        if not worlds:
            raise ValueError("a stack needs at least one world")
        scenarios = [scenario] * len(worlds) if isinstance(scenario, Scenario) else list(scenario)
        if len(scenarios) != len(worlds):
            raise ValueError(f"{len(scenarios)} scenarios for {len(worlds)} worlds")
        keys = {stack_key(sc, policy, o) for sc, o in zip(scenarios, worlds)}
        if len(keys) != 1 or scenarios[0].population.from_fit is not None:
            raise ValueError("these runs cannot share a stack (see stack_key)")
        alone = [Simulation(sc, policy, o) for sc, o in zip(scenarios, worlds)]  # each world's state, as alone
        self.__dict__.update(alone[0].__dict__)  # what every world shares (structure, segments, prices, ...)
        # the per-world values the shared formulas read, world first (None: every world has the same)
        self._vary_b = {n: v for n in PER_WORLD["behaviour"]
                        if (v := _differing([getattr(ws.beh, n) for ws in alone])) is not None}
        self._vary_seg = {n: v for n in PER_WORLD["population.segments.*"]
                          if (v := _differing([getattr(ws.seg, n) for ws in alone])) is not None}
        self._m = _differing([ws.m_bound for ws in alone])
        self._pulls = _differing([ws.sc.market.competitor_pull for ws in alone])
        if len({ws.m_bound > 1.0 for ws in alone}) != 1:
            raise ValueError("these runs cannot share a stack: some thin their purchases and some do not")
        self._beh0, segments = self.beh, self.seg
        if self._vary_b:
            self.beh = cast(Behaviour, _Unshared(self.beh, self._vary_b, "behaviour"))
        if self._vary_seg:
            self.seg = cast(SegmentTable, _Unshared(self.seg, self._vary_seg, "segment table"))
        self.worlds = alone
        self.K = len(alone)
        self.stores = Stores.join([ws.store for ws in alone])  # every world's store, closed in one pass
        self._flywheels = np.array([ws.sc.flywheel for ws in alone])
        self._daily: dict[str, list[np.ndarray]] = {}  # each record column, one value per world a day
        self.caps = [ws.c.capacity for ws in alone]
        self.ns = [0] * self.K
        for ws in alone:
            ws.c = None  # type: ignore[assignment]  # the stack holds the customers
        self.rows = WorldStreams([ws.streams for ws in alone])  # the draws, keyed by world and own id
        self.streams = self.rows
        self.c = Customers(segments, len(self.cats), sum(self.caps))
        self.bounds = np.zeros(self.K + 1, dtype=np.int64)  # world w's rows: bounds[w] to bounds[w + 1]
        self._layout()
        self.source = _Source(self)
        self._stack_policy(policy)
        self.stack_source = _StackSource(self)
        self.views = [_WorldRuntime(self, w) for w in range(self.K)]
        self.cand_agenda = _Agenda(self.c, "next_cand")
        self.contact_agenda = _Agenda(self.c, "next_contact")
        self.death_agenda = _Agenda(self.c, "death_time", may_repeat=True)
        self.offers_made = False
        self._q: float | np.ndarray | None = None
        self.cur = -1
        self._enter(0)

    def _stack_policy(self, policy: CompiledPolicy) -> None:
        """The policy's part of the stack's own state, once each world has taken the policy
        (`Simulation._take_policy`): its runtime over every world's rows at once, when its purchases can be
        (PolicyRuntime.stacks_purchases; each world's runtime keeps its own totals, its columns views of this
        one's rows), and each world's chance of joining."""
        self.programmes = [ws.runtime if ws.programme is None else ws.programme[1] for ws in self.worlds]
        self.srt: PolicyRuntime | None = None
        if not policy.policy.is_baseline and self.programmes[0].stacks_purchases:
            self.srt = PolicyRuntime(policy, 0)
            self.srt.share_rows(self.programmes, self.bounds)
        self.srt_live = self.srt is not None and self.launch_day == 0  # (else from the launch)
        self.enrol_c, self._ec = self.worlds[0].enrol_c, _differing([ws.enrol_c for ws in self.worlds])

    # ------------------------------------------------------------------ layout and worlds
    def _layout(self) -> None:
        """Rows of each world from its base; spare rows are not alive, so every scan passes them by."""
        caps = np.array(self.caps, dtype=np.int64)
        self.bases = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.int64)
        self.rows.world = np.repeat(np.arange(self.K, dtype=np.int64), caps)
        self.rows.base = self.bases
        self.bounds[:-1] = self.bases
        self.bounds[-1] = int(caps.sum())
        self.c.n = self.c.capacity = int(caps.sum())

    def _grow(self, w: int, capacity: int) -> None:
        """World w needs `capacity` rows: every world's block moves to its new place."""
        self._regrow({w: capacity})

    def _regrow(self, capacities: dict[int, int]) -> None:
        """Worlds need more rows (world -> its new capacity): every world's block moves to its new place."""
        old, c = self.bases.copy(), self.c
        for w, capacity in capacities.items():
            self.caps[w] = capacity
        total = sum(self.caps)
        new = np.concatenate([[0], np.cumsum(self.caps)[:-1]])
        for block in c.zeroed(total):
            for name, b in block.items():
                a = getattr(c, name)
                for k in range(self.K):
                    b[new[k]:new[k] + self.ns[k]] = a[old[k]:old[k] + self.ns[k]]
                setattr(c, name, b)
        self._layout()
        if self.srt is not None:
            self.srt.share_rows(self.programmes, self.bounds)
        for ag in (self.cand_agenda, self.contact_agenda, self.death_agenda):
            ag.stop, ag.buckets, ag.noted = -1, [], []  # the next call scans afresh (rows have moved)

    def _enter(self, w: int) -> None:
        """Make world w's own state the engine's (the shared methods read it as attributes)."""
        if w == self.cur:
            return
        if self.cur >= 0:
            ws = self.worlds[self.cur]
            for a in _CONTEXT:
                setattr(ws, a, getattr(self, a))
        ws = self.worlds[w]
        for a in _CONTEXT:
            setattr(self, a, getattr(ws, a))
        self.runtime = self.views[w]  # type: ignore[assignment]
        self.cur = w

    def _leave(self) -> None:
        """Write the current world's state back to it (at the end of the run)."""
        if self.cur >= 0:
            ws = self.worlds[self.cur]
            for a in _CONTEXT:
                setattr(ws, a, getattr(self, a))
        self.cur = -1

    def _parts(self, idx: np.ndarray) -> list[tuple[int, int, int]]:
        """(world, lo, hi) of each world's rows in a batch (its rows are sorted, so each world's are a slice)."""
        if self.K == 1:
            return [(0, 0, len(idx))] if len(idx) else []
        w = self.rows.world[idx]
        if w.size > 1 and bool((w[1:] < w[:-1]).any()):
            raise AssertionError("a stacked batch must hold each world's rows together")
        bounds = np.searchsorted(w, np.arange(self.K + 1)).tolist()
        return [(k, bounds[k], bounds[k + 1]) for k in range(self.K) if bounds[k + 1] > bounds[k]]

    # ------------------------------------------------------------------ the worlds' values for a batch
    def _b(self, idx: np.ndarray) -> Behaviour:
        if not self._vary_b:
            return self.beh
        return cast(Behaviour, _RowBehaviour(self._beh0, self._vary_b, self.rows.world[idx]))

    def _seg_at(self, name: str, idx: np.ndarray, seg: np.ndarray | None = None) -> np.ndarray:
        table = self._vary_seg.get(name)
        if table is None:
            return super()._seg_at(name, idx, seg)
        return table[self.rows.world[idx], self.c.seg[idx] if seg is None else seg]

    def _bound(self, idx: np.ndarray) -> float | np.ndarray:
        return self.m_bound if self._m is None else self._m[self.rows.world[idx]]

    def _enrol_at(self, idx: np.ndarray) -> float | np.ndarray:
        return self.enrol_c if self._ec is None else self._ec[self.rows.world[idx]]

    def _pull(self, idx: np.ndarray) -> float:
        if self._pulls is None:
            return self.sc.market.competitor_pull
        return cast(float, _PerRow(self._pulls[self.rows.world[idx]], self._pulls))  # (branched on: `if pull > 0`)

    # ------------------------------------------------------------------ the world's state for a batch
    def _quality(self, idx: np.ndarray) -> float | np.ndarray:
        if self._q is None:
            q = self.stores.service_quality
            self._q = float(q[0]) if bool((q == q[0]).all()) else q
        return self._q if isinstance(self._q, float) else self._q[self.rows.world[idx]]

    def _goal_progress(self, idx: np.ndarray) -> np.ndarray:
        if self.srt_live:
            assert self.srt is not None
            return self.srt.goal_progress(idx, self.now)
        parts = [self.views[w].goal_progress(idx[lo:hi], self.now) for w, lo, hi in self._parts(idx)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _is_member(self, idx: np.ndarray) -> np.ndarray:
        if self.srt_live:
            assert self.srt is not None
            return self.srt.member[idx]
        parts = [self.views[w].member[idx[lo:hi]] for w, lo, hi in self._parts(idx)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)

    def _credit_use(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.srt_live:
            assert self.srt is not None
            return self.srt.credit_use(idx)
        parts = [self.views[w].credit_use(idx[lo:hi]) for w, lo, hi in self._parts(idx)]
        if not parts:
            return np.zeros(0), np.zeros(0)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _drop(self, idx: np.ndarray, t: np.ndarray | float) -> None:
        if len(idx) == 0:
            return
        self.c.alive[idx] = False
        self.c.dropped_at[idx] = t
        counts = np.bincount(self.rows.world[idx], minlength=self.K).tolist()
        for w, k in enumerate(counts):
            if k:
                self._world(w).book.lost += k
                self._world(w).alive -= k

    def _world(self, w: int):
        """World w's state holder (the engine itself while w is the current world)."""
        return self if w == self.cur else self.worlds[w]

    def _members_alive(self) -> np.ndarray:
        w = self.cur
        b, n = int(self.bases[w]), self.ns[w]
        return b + np.flatnonzero(self.c.alive[b:b + n] & self.worlds[w].runtime.member[:n])

    # ------------------------------------------------------------------ acquisition (world by world)
    def _add(self, count: int, times: np.ndarray, referred_by: np.ndarray | None) -> np.ndarray:
        w = self.cur
        if self.ns[w] + count > self.caps[w]:  # as Customers grows alone
            self._grow(w, max(self.ns[w] + count, int(self.caps[w] * 1.5) + 1024))
        first = int(self.bases[w]) + self.ns[w]
        self.ns[w] += count
        return self.c.add(count, times, self.streams, referred_by, first=first)

    def acquire(self, count: int, times: np.ndarray, referred_by: np.ndarray | None) -> None:
        if count == 0:
            return
        self._welcome(self._add(count, times, referred_by), times, referred_by)

    def _acquire_both(self, n_paid: int, paid_times: np.ndarray, referrers: np.ndarray,
                      referred_times: np.ndarray) -> None:
        if n_paid == 0 or referrers.size == 0:
            self.acquire(n_paid, paid_times, None)
            self.acquire(referrers.size, referred_times, referrers)
            return
        ids = self._add(n_paid + referrers.size, np.concatenate([paid_times, referred_times]),
                        np.concatenate([np.full(n_paid, -1, dtype=np.int64), referrers]))
        self._welcome(ids[:n_paid], paid_times, None)
        self._welcome(ids[n_paid:], referred_times, referrers)

    def _grow_runtime(self) -> None:
        """The current world's programme books get room for its own block of rows."""
        rt = self.worlds[self.cur].runtime
        if self.caps[self.cur] > rt.capacity:
            rt.grow(self.caps[self.cur])

    def _referrer_rows(self, referred_by: np.ndarray) -> np.ndarray:
        """The referrers' own ids in the current world, as rows of the stack."""
        return np.asarray(referred_by) + self.bases[self.cur]

    # ------------------------------------------------------------------ purchases (every world at once)
    def _purchase(self, idx: np.ndarray, t: np.ndarray, repeat: bool,
                  parts: list[tuple[int, int, int]] | None = None) -> np.ndarray | None:
        """Simulation._purchase over the rows of many worlds: the draws and columns at once, the programme,
        the books and the effects world by world (each world's slice of the batch; `parts`: the slices,
        (world, lo, hi), when a world's purchases are several of its run alone's batches, in its order)."""
        c, st = self.c, self.seg
        if len(idx) == 0:
            return None
        home = self.cur
        if parts is None:
            parts = self._parts(idx)
        seg = c.seg[idx]
        k = c.purchases[idx]
        u_spend, u_cat, u_refer = self.streams.uniforms(("spend", "category", "referral"), idx, k)
        amount = gamma_quantile(st.spend_p, u_spend, code=seg) / c.nu[idx]
        if self.offers_made:
            live_offer = c.offer_until[idx] > t
            amount = amount * (1 + np.where(live_offer, c.offer_basket[idx], 0.0))
        cum = c.cat_cum[idx]
        cat = (cum[:, 0] < u_cat).astype(np.int64)
        for j in range(1, cum.shape[1]):
            cat += cum[:, j] < u_cat
        np.minimum(cat, len(self.cats) - 1, out=cat)
        number = (k + 1).astype(np.float64)
        baseline = self.cp.policy.is_baseline
        effs: list[Effects] = []
        whole: Effects | None = None  # the stacked runtime's effects on the whole batch, when it gave one
        if baseline:
            discount = np.zeros(len(idx))
            credit = np.zeros(len(idx))
            rules = np.zeros(len(idx), dtype=np.uint64)
        elif self.srt_live:
            discount, credit, rules, effs, whole = self._programme_purchase(idx, t, amount, cat, number,
                                                                            self._seg_at("credit_appetite", idx,
                                                                                         seg), parts)
        else:
            appetite = self._seg_at("credit_appetite", idx, seg)
            for w, lo, hi in parts:
                self._enter(w)
                effs.append(self.runtime.purchase(idx[lo:hi], t[lo:hi], amount[lo:hi], cat[lo:hi], number[lo:hi],
                                                  appetite[lo:hi], self.now, self.source))
            discount = np.concatenate([e.discount for e in effs])
            credit = np.concatenate([e.credit for e in effs])
            rules = np.concatenate([e.rules for e in effs])
        revenue = amount - discount
        ucf = self.stores.unit_cost_factor if self.K > 1 else None
        unit = self.store.unit_cost_factor if ucf is None else ucf[self.rows.world[idx]]
        cogs = amount * (1 - self.unit_margin[cat]) * unit
        c.purchases[idx] = k + 1
        c.revenue[idx] += revenue
        c.gross[idx] += amount
        c.discounts[idx] += discount
        c.last_purchase[idx] = t
        from lab.engine.simulate import _add_to_cells
        _add_to_cells(c.cat_n, idx, cat, 1.0)
        _add_to_cells(c.cat_spend, idx, cat, revenue)
        margin = revenue - cogs
        goods_parts = []
        # each world's sums over its own slice, as its run alone sums its batch
        sums = slice_sums(np.stack([amount, discount, revenue, cogs, credit], dtype=np.float64),
                          [(lo, hi) for _, lo, hi in parts]).tolist()
        for j, (w, lo, hi) in enumerate(parts):
            b = self._world(w).book
            b.gross_sales += sums[0][j]
            b.discounts += sums[1][j]
            b.revenue += sums[2][j]
            b.cogs += sums[3][j]
            b.purchases += hi - lo
            b.credit_charged += sums[4][j]
            if repeat:
                b.repeat_revenue += sums[2][j]
                b.repeat_purchases += hi - lo
            if whole is None and not baseline:
                self._enter(w)
                goods_parts.append(self._apply_effects(effs[j], t[lo:hi]))
        if baseline:
            goods = np.zeros(len(idx))
        else:
            goods = np.concatenate(goods_parts) if whole is None else self._apply_parts(whole, effs, parts, t)
        disc = (1 + self.sc.discount_rate) ** (-(t - c.acquired_at[idx]) / 365.0)
        c.clv[idx] += (margin - goods) * disc
        if self.worlds[0].tx is not None:  # every world of a stack keeps its transactions, or none does
            for w, lo, hi in parts:
                tx = self.worlds[w].tx
                assert tx is not None
                tx["customer_id"].append(idx[lo:hi] - self.bases[w])
                tx["time"].append(np.asarray(t[lo:hi], dtype=np.float64).copy())
                tx["amount"].append(amount[lo:hi].copy())
                tx["category"].append(cat[lo:hi].astype(np.int16))
                tx["discount"].append(discount[lo:hi].copy())
                tx["credit"].append(credit[lo:hi].copy())
                tx["rules"].append(rules[lo:hi].copy())
        if self.runtime.has_trigger("visit"):
            for w, lo, hi in parts:
                self._enter(w)
                self._apply_effects(self.runtime.fire("visit", idx[lo:hi], self.now, self.source), t[lo:hi])
        if not self.on:
            self._enter(home)
            return None
        s = self.satisfaction(idx, t)
        refer = behaviour.refers(u_refer, self._seg_at("referral_propensity", idx, seg), s)
        if refer.any():
            for w, lo, hi in parts:
                who = idx[lo:hi][refer[lo:hi]]
                if who.size:
                    c.referrals[who] += 1
                    self._world(w).referral_queue.append(who - self.bases[w])
        self._enter(home)
        return s

    def _programme_purchase(self, idx: np.ndarray, t: np.ndarray, amount: np.ndarray, cat: np.ndarray,
                            number: np.ndarray, appetite: np.ndarray, parts: list[tuple[int, int, int]]
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Effects], Effects | None]:
        """The programme's answer to a batch of purchases over every world at once (the stacked runtime), and each
        part's effects as the world's own call would give them. A world with several parts (several batches of
        its run alone) has them in successive calls, its first part in the first, and so on, so each of its sums
        is over the batch it is over alone. Last: the effects on the whole batch, when one call gave them."""
        assert self.srt is not None
        layers: list[list[int]] = []
        seen: dict[int, int] = {}
        for j, (w, _, _) in enumerate(parts):
            k = seen.get(w, 0)
            seen[w] = k + 1
            if k == len(layers):
                layers.append([])
            layers[k].append(j)
        n = len(idx)
        discount, credit, rules = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.uint64)
        effs: list[Effects | None] = [None] * len(parts)
        for layer in layers:
            if len(layers) == 1:
                pos: np.ndarray | slice = slice(0, n)
            else:
                pos = np.concatenate([np.arange(parts[j][1], parts[j][2]) for j in layer])
            eff = self.srt.purchase(idx[pos], t[pos], amount[pos], cat[pos], number[pos], appetite[pos], self.now,
                                    self.stack_source)
            discount[pos], credit[pos], rules[pos] = eff.discount, eff.credit, eff.rules
            at = 0
            for j in layer:
                w, lo, hi = parts[j]
                effs[j] = _part_of(eff, at, at + hi - lo)
                at += hi - lo
        return discount, credit, rules, effs, eff if len(layers) == 1 else None  # type: ignore[return-value]

    def _apply_parts(self, eff: Effects, effs: list[Effects], parts: list[tuple[int, int, int]],
                     t: np.ndarray) -> np.ndarray:
        """Simulation._apply_effects over a batch of many worlds (`eff`; `effs`: each part's own, `parts`): each
        world's records booked to its own book at its own store's costs, in its order; the customers respond in
        one pass, each world's rewards weighed when that world has any (as alone). Returns goods cost per row."""
        idx = eff.idx
        goods = np.zeros(len(idx))
        if len(idx) == 0:
            return goods
        for (w, lo, hi), e in zip(parts, effs, strict=True):
            if not e.given:
                continue
            h = self._world(w)
            unit_cost = self.cost0 * h.store.unit_cost_factor
            mine = goods[lo:hi]
            for g in e.records():
                book_given(h.book, g, g.total(unit_cost))
                if GIVEN[g.kind].goods:
                    np.add.at(mine, self._positions(idx[lo:hi], g.who, None), g.unit_costs(unit_cost))
        if self.on:
            delighted: slice | np.ndarray | None = None
            before = np.concatenate(([0], np.cumsum(eff.delight != 0, dtype=np.int64)))  # delighted before each row
            some = [(lo, hi) for w, lo, hi in parts if before[hi] > before[lo]]
            if len(some) == len(parts):
                delighted = slice(None)
            elif some:
                delighted = np.concatenate([np.arange(lo, hi) for lo, hi in some])
            self._respond(eff, t, None, delighted)
        return goods

    def _event_keys(self):
        """Simulation._event_keys with each world's records counted apart (a batch may hold many worlds)."""
        seen = np.zeros(self.K, dtype=np.int64)

        def key(who: np.ndarray) -> np.ndarray:
            w = self.rows.world[who]
            k = int(self.now) * 64 + seen[w]
            seen[np.unique(w)] += 1  # (a record is never empty: it holds the customers an action fired for)
            return k
        return key

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
        qs = np.array([behaviour.handling_quality(q, load) for q, load in zip(self.stores.service_quality.tolist(),
                                                                               self.stores.load.tolist())])
        q = float(qs[0]) if bool((qs == qs[0]).all()) else qs[self.rows.world[idx]]
        resolved = self.streams.uniform("resolved", idx, k) < q
        parts = self._parts(idx)
        starts = [lo for _, lo, _ in parts]
        complaints = np.add.reduceat(complaint.astype(np.int64), starts).tolist()
        resolutions = np.add.reduceat(resolved.astype(np.int64), starts).tolist()
        for j, (w, lo, hi) in enumerate(parts):
            book = self._world(w).book
            book.contacts += hi - lo
            book.complaints += complaints[j]
            book.resolved += resolutions[j]
        self.bump_satisfaction(idx, t, behaviour.contact_shift(self._b(idx), resolved, complaint))
        rt = self.worlds[0].runtime  # (every world's programme has the same rules)
        if not any(rt.has_trigger(g) for g in ("service_contact", "visit")):
            if self.srt_live:
                assert self.srt is not None
                self.srt.contact(idx, self.now)  # (a visit for the rolling windows: per customer)
                return
            if not rt.counts_contacts:
                return
        for w, lo, hi in parts:
            self._enter(w)
            ix, tt, comp, res = idx[lo:hi], t[lo:hi], complaint[lo:hi], resolved[lo:hi]
            if self.runtime.has_trigger("service_contact"):
                for r in self.runtime.triggers("service_contact"):
                    assert isinstance(r.rule.on, pm.OnServiceContact)
                    kind = r.rule.on.kind
                    sel = (np.ones(len(ix), dtype=bool) if kind == "any" else (comp if kind == "complaint" else ~comp))
                    ev = {"contact.complaint": comp[sel], "contact.resolved": res[sel]}
                    self._apply_effects(self.runtime.fire("service_contact", ix[sel], self.now, self.source, ev,
                                                          only=[r]), tt[sel])
            self.runtime.contact(ix, self.now)
            if self.runtime.has_trigger("visit"):
                self._apply_effects(self.runtime.fire("visit", ix, self.now, self.source), tt)

    # ------------------------------------------------------------------ arrivals (every world at once)
    def _arrive(self, adds: list[list[list[_Arrival]]]) -> None:
        """Every world's new customers of one moment, in one batch.

        `adds[w]` is world w's calls of Customers.add in the order its run alone makes them, each a list of
        the welcomes it is split into (one, or the paid arrivals and then the referred ones). Each world's
        block grows call by call as its run alone grows; the new customers' columns, clocks and joining
        draws are elementwise, so they are drawn in one batch; each world's counts, enrolments and rules then
        run welcome by welcome in its own order, and the trial purchases are one stacked batch (world by
        world, welcome by welcome, inside it) unless a rule on enrolment, referral or visit makes a welcome's
        rules depend on the previous welcome's purchase (then each welcome buys before the next is booked)."""
        grown: dict[int, int] = {}
        for w in range(self.K):
            cap, n = self.caps[w], self.ns[w]
            for add in adds[w]:
                count = sum(len(a.times) for a in add)
                if n + count > cap:  # as Customers.add grows the run alone
                    cap = max(n + count, int(cap * 1.5) + 1024)
                n += count
            if cap != self.caps[w]:
                grown[w] = cap
        if grown:
            self._regrow(grown)
        welcomes: list[tuple[int, int, int, _Arrival]] = []  # (world, lo, hi, arrival) in the batch
        firsts, counts, times = [], [], []  # each welcome's first row and count; its arrival times
        pos = 0
        for w in range(self.K):
            first = int(self.bases[w]) + self.ns[w]
            for add in adds[w]:
                for a in add:
                    k = len(a.times)
                    firsts.append(first)
                    counts.append(k)
                    times.append(a.times)
                    welcomes.append((w, pos, pos + k, a))
                    first += k
                    pos += k
            self.ns[w] = first - int(self.bases[w])
        if pos == 0:
            return
        sizes = np.array(counts, dtype=np.int64)
        idx = (np.repeat(np.array(firsts, dtype=np.int64) - (np.cumsum(sizes) - sizes), sizes)
               + np.arange(pos, dtype=np.int64))
        t = np.concatenate(times) if len(times) > 1 else np.asarray(times[0], dtype=np.float64)
        by = np.full(pos, -1, dtype=np.int64)  # the referrer of each new customer (-1: none)
        for _, lo, hi, a in welcomes:
            if a.referred_by is not None:
                by[lo:hi] = a.referred_by
        self.c.add(pos, t, self.streams, by, rows=idx)
        joins = self._welcome_clocks(idx, t)
        home = self.cur
        rt = self.worlds[0].runtime  # the programme running now (the warm-up's before a launch): every world's
        in_order = any(rt.has_trigger(g) for g in ("enrolment", "referral", "visit"))
        if not in_order and (self.srt_live or joins is None):
            # Simulation._welcome_books for every welcome, its enrolments (if any) at once
            if not self.srt_live:  # each world's own books get room for its rows (the stacked runtime's have it)
                for w in dict.fromkeys(w for w, _, _, _ in welcomes):
                    if self.caps[w] > self.worlds[w].runtime.capacity:
                        self.worlds[w].runtime.grow(self.caps[w])
            for w, lo, hi, a in welcomes:
                h = self._world(w)
                if not a.starting:
                    h.book.acquired += hi - lo
                h.alive += hi - lo
                if a.referred_by is not None:
                    h.book.acquired_referral += hi - lo
                if joins is not None:
                    h.members += int(np.count_nonzero(joins[lo:hi]))
            if joins is not None:
                assert self.srt is not None
                self.srt.enrol(idx[joins])
        else:
            for w, lo, hi, a in welcomes:
                self._enter(w)
                self._welcome_books(idx[lo:hi], t[lo:hi], a.referred_by, None if joins is None else joins[lo:hi],
                                    starting=a.starting)
                if in_order:
                    self._purchase(idx[lo:hi], t[lo:hi], repeat=False, parts=[(w, 0, hi - lo)])
        if not in_order:
            self._purchase(idx, t, repeat=False, parts=[(w, lo, hi) for w, lo, hi, _ in welcomes])
        self._enter(home)

    # ------------------------------------------------------------------ the day
    def customers_day(self, day: int) -> None:
        """Each world's arrivals of the day drawn from its own generator as alone, then all created at once."""
        mk = self.sc.store.marketing
        spread = self.sc.population.arrival_days > 0
        today = arriving_on(self.start_times, day) if spread else slice(0, 0)
        starting = self.start_times[today] if today.stop > today.start else None  # (every world's the same)
        rate = mk.budget_per_year / 365.0 / mk.cost_per_acquisition if mk.budget_per_year > 0 else None
        adds: list[list[list[_Arrival]]] = []
        for w in range(self.K):
            h = self._world(w)
            queue = h.referral_queue
            referrers = (np.concatenate(queue) if len(queue) > 1 else queue[0]) if queue else None
            h.referral_queue = []  # today's referrals arrive tomorrow, whoever makes them
            calls: list[list[_Arrival]] = [] if starting is None else [[_Arrival(starting, None, True)]]
            n_new = 0 if rate is None else int(h.acq_rng.poisson(rate))
            paid = day + np.sort(h.acq_rng.random(n_new)) if n_new else _NONE  # (random(0) would draw nothing)
            if referrers is None:
                if n_new:
                    calls.append([_Arrival(paid, None)])
            else:
                referred = _Arrival(day + np.sort(h.acq_rng.random(len(referrers))), referrers)
                if n_new == 0 or referrers.size == 0:  # Simulation._acquire_both: two calls to add
                    calls += [[_Arrival(paid, None)]] if n_new else []
                    calls += [[referred]] if referrers.size else []
                else:
                    calls.append([_Arrival(paid, None), referred])
            adds.append(calls)
        self._arrive(adds)
        self._customer_events(day)

    def close_day(self, day: int) -> None:
        """Every world's store closes its own books, in one pass over the worlds' arrays (`Stores`); on a
        reporting day, every world's satisfaction in one pass (each world's after its own close, which moves only
        its service quality). The day's record is one column of values per field, world by world."""
        K = self.K
        books, running, members, alive = [], [], [], []
        outstanding, liability, owed = [], [], []
        for w in range(K):
            h = self._world(w)
            rt = self.worlds[w].runtime
            running.append(h.members * h.cp.policy.cost_per_member_per_year / 365.0)
            flows = ({k: sum(b.flows[k] for b in rt.points.values()) for k in ("earned", "redeemed")} if rt.points
                     else _NO_FLOWS)  # (the same sums of nothing)
            h.book.points_awarded = flows["earned"] - h._points_seen["earned"]
            h.book.points_redeemed = flows["redeemed"] - h._points_seen["redeemed"]
            h._points_seen = flows
            books.append(h.book)
            h.book = DayBook()
            members.append(h.members)
            alive.append(h.alive)
            outstanding.append(float(sum(pb.outstanding for pb in rt.points.values())) if rt.points else 0.0)
            liability.append(rt.liability() if rt.points else 0.0)
            owed.append(float(sum(cb.owed_total for cb in rt.credit.values())) if rt.credit else 0.0)
        rec = self.stores.end_of_day(books, np.array(running), self._flywheels)
        rec.update(day=np.full(K, day), alive=np.array(alive), customers=np.array(self.ns), members=np.array(members),
                   points_outstanding=np.array(outstanding), points_liability=np.array(liability),
                   credit_outstanding=np.array(owed), customer_satisfaction=np.full(K, np.nan))
        self._q = None  # service quality moved
        if day % self.sc.period_days == 0 or day == self.days - 1:
            rows = [int(self.bases[w]) + np.flatnonzero(self.c.alive[self.bases[w]:self.bases[w] + self.ns[w]])
                    for w in range(K)]
            # satisfaction() gives _everyone_satisfaction's bits (tests/test_behaviour.py holds them equal)
            s = self.satisfaction(np.concatenate(rows), day + 1.0)
            at = 0
            for w, a in enumerate(rows):
                if a.size:
                    rec["customer_satisfaction"][w] = float(s[at:at + a.size].mean())
                at += a.size
        for name, values in rec.items():
            self._daily.setdefault(name, []).append(values)

    # ------------------------------------------------------------------ the calendar (world by world)
    def expiry_sweep(self, day: int) -> None:
        c = self.c
        for w in range(self.K):
            h = self._world(w)
            rt = self.worlds[w].runtime
            for name, book in rt.points.items():
                who, lost = book.advance(day)
                if who.size:
                    h.book.points_expired += float(lost.sum())
                    value = lost * rt.policy.points[name].value
                    rows = who + self.bases[w]
                    keep = c.alive[rows]
                    frus = behaviour.expiry_frustration(self._b(rows), value, self.mean_basket[c.seg[rows]])
                    self.bump_satisfaction(rows[keep], float(day), frus[keep])

    def tier_review(self, day: int) -> None:
        for w in range(self.K):
            self._enter(w)
            super().tier_review(day)

    def scheduled(self, rule, day: int) -> None:
        for w in range(self.K):
            self._enter(w)
            super().scheduled(rule, day)

    def personal_dates(self, day: int) -> None:
        for w in range(self.K):
            self._enter(w)
            super().personal_dates(day)

    def _statement(self, line, day: int) -> None:
        c = self.c
        name = next(k for k, v in self._calendar_runtime.credit.items() if v is line)
        for w in range(self.K):
            self._enter(w)
            wl = self.worlds[w].runtime.credit[name]
            own, minimum = wl.due()
            if own.size == 0:
                continue
            idx = own + self.bases[w]
            seg = c.seg[idx]
            k = np.full(len(idx), day, dtype=np.int64)
            miss = self.streams.uniform("credit_miss", idx, k) < self._seg_at("default_risk", idx, seg)
            miss |= ~c.alive[idx]
            owed = wl.owed[own]
            paid = np.where(miss, 0.0, minimum + self._seg_at("repay_share", idx, seg) * (owed - minimum))
            before_interest, before_fees = wl.collected_interest.sum(), wl.collected_fees.sum()
            repaid_before = wl.repaid.sum()
            out, amounts = wl.settle(own, paid, minimum, float(day))
            self.book.credit_repaid += float(wl.repaid.sum() - repaid_before)
            self.book.interest += float(wl.collected_interest.sum() - before_interest)
            self.book.fees += float(wl.collected_fees.sum() - before_fees)
            self.book.bad_debt += float(amounts.sum())
            missed = idx[miss & c.alive[idx]]
            self.bump_satisfaction(missed, float(day), np.full(len(missed),
                                                               behaviour.missed_payment_hit(self._b(missed))))
            gone = out + self.bases[w]
            self._drop(gone[c.alive[gone]], float(day))

    def launch(self, day: int) -> None:
        self._launch(day)
        self.srt_live = self.srt is not None  # every world runs its programme now

    def _launch(self, day: int) -> None:
        for w in range(self.K):
            self._enter(w)
            ws = self.worlds[w]
            b, n = int(self.bases[w]), self.ns[w]
            ws.launch_revenue = np.where(self.c.alive[b:b + n], self.c.revenue[b:b + n], np.nan)
            if self.programme is not None:
                self.cp, ws.runtime = self.programme[0], self.programme[1]
                self.programme = None
                if self.caps[w] > ws.runtime.capacity:
                    ws.runtime.grow(self.caps[w])
            if self.cp.policy.is_baseline:
                continue
            present = b + np.flatnonzero(self.c.alive[b:b + n])
            joins = self.streams.uniform("enrol", present, 0) < behaviour.launch_enrol_probability(
                self._b(present), self.cp.policy.participation, self.c.lam[present], self._basket(present))
            members = present[joins]
            self.runtime.enrol(members)
            self.members += int(members.size)
            if self.runtime.has_trigger("enrolment"):
                self._apply_effects(self.runtime.fire("enrolment", members, self.now, self.source), float(day))

    # ------------------------------------------------------------------ run
    def _start(self) -> None:
        """Simulation._start for every world at once (a stack never starts from an existing base)."""
        self.start_times = starting_arrivals(self.n0, self.sc.population.arrival_days)
        if self.sc.population.arrival_days == 0 and self.n0 > 0:
            self._arrive([[[_Arrival(self.start_times, None, True)]] for _ in range(self.K)])

    def runs(self) -> list[RawRun]:
        """Run the whole horizon; each world's raw results, in the order the worlds were given."""
        env = self._begin()
        env.run(until=self.days)
        return self._records()

    def _begin(self, resume: int = 0) -> simpy.Environment:
        """The run's calendar, from day 0 or (a copy of a stack paused before the launch, `policy_runs`) from
        the day `resume`."""
        env = simpy.Environment()
        if resume == 0:
            self._start()
        self._enter(0)
        ws0 = self.worlds[0]
        self._calendar_runtime = ws0.programme[1] if ws0.programme is not None else ws0.runtime
        self._schedule(env, resume)
        return env

    def _copy_as(self, policy: CompiledPolicy) -> "StackedSimulation":
        """A copy of this stack, paused before its launch (between calendar steps), to run `policy` from the launch
        on: the warm-up so far is the same under every policy; what the policy sets is set afresh for it."""
        self._leave()
        if any(ws.programme is None for ws in self.worlds):
            raise ValueError("only a stack paused before its launch may take another policy")
        # not copied: what is never changed, and the old policy's parts (replaced below)
        shared = [self.sc, *(ws.sc for ws in self.worlds), *(ws.cp for ws in self.worlds),
                  *(ws.programme[0] for ws in self.worlds if ws.programme), *self.programmes, self.srt,
                  _NONE, _NO_FLOWS]
        twin = copy.deepcopy(self, {id(x): x for x in shared})
        for ws in twin.worlds:
            ws._take_policy(policy)
        twin._stack_policy(policy)
        self._enter(0)
        return twin

    def _records(self) -> list[RawRun]:
        """Each world's raw results at the end of the horizon, in the order the worlds were given."""
        self._leave()
        out = []
        columns = {k: np.array(v) for k, v in self._daily.items()}  # (days, worlds); each column's type as alone
        for w, ws in enumerate(self.worlds):
            daily = {k: np.ascontiguousarray(v[:, w]) for k, v in columns.items()}
            tx = None
            if ws.tx is not None:
                tx = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in ws.tx.items()}
            cp = ws.cp
            out.append(record_run(ws.sc, cp.policy.name, self.days, daily,
                                  _WorldRows(self.c, int(self.bases[w]), self.ns[w]),  # type: ignore[arg-type]
                                  ws.runtime, tx, cp.rule_ids, self.n0,
                                  launch_day=self.launch_day if self.launched else None,
                                  launch_revenue=ws.launch_revenue if self.launched else None))
        return out

    def run(self) -> RawRun:
        if self.K != 1:
            raise TypeError("a stack of several worlds gives several runs: call runs()")
        return self.runs()[0]


def policy_runs(scenario: Scenario | Sequence[Scenario], policies: Sequence[CompiledPolicy],
                worlds: Sequence[RunOptions]) -> list[list[RawRun]]:
    """Each policy's runs of the same worlds (`scenario` and `worlds` as for StackedSimulation), in the order
    given: the same bits as one stack per policy, and as each run alone.

    When the worlds launch after day 0, the days before the launch run no programme under any policy (docs/MODEL.md,
    "Launch day"), so they are simulated once: the first policy's stack runs to the launch, and every other
    policy's stack continues from a copy of it, its own programme set as its run alone would hold it then. With
    four policies and a launch halfway through the horizon, five half-horizons are simulated instead of eight.
    Runs on an existing customer base (`population.from_fit`), which never share a stack (`stack_key`), run alone."""
    if not policies:
        return []
    scenarios = [scenario] * len(worlds) if isinstance(scenario, Scenario) else list(scenario)
    if any(sc.population.from_fit is not None for sc in scenarios):
        return [[Simulation(sc, p, o).run() for sc, o in zip(scenarios, worlds, strict=True)] for p in policies]
    first = StackedSimulation(scenario, policies[0], worlds)
    if len(policies) == 1 or first.launch_day == 0:
        return [first.runs()] + [StackedSimulation(scenario, p, worlds).runs() for p in policies[1:]]
    env = first._begin()
    env.run(until=first.launch_day + CALENDAR)  # every day before the launch (the launch comes first on its day)
    twins = [first._copy_as(p) for p in policies[1:]]
    env.run(until=first.days)
    out = [first._records()]
    for twin in twins:
        rest = twin._begin(resume=first.launch_day)
        rest.run(until=first.days)
        out.append(twin._records())
    return out
