"""Would compiling the thinning multiplier pay, with numpy's bits kept? A measured prototype of one step.

    pip install -e '.[test]'   # numba is a test dependency, not one of the lab's: the lab never imports it
    python benchmarks/compiled_multiplier.py                                  # apparel, points, 1,000,000 x 730
    python benchmarks/compiled_multiplier.py --scenario scenarios/classroom.yaml --customers 100000

The purchase path's largest step after a purchase itself is m(t), the purchase-rate multiplier of every
candidate the thinning loop draws (`Simulation.rate_multiplier`, with `lab.engine.behaviour.rate_multiplier`;
12-19% of the 1M-customer apparel run, by this script and by `benchmarks/ufunc_share.py`). In numpy it is one
pass over the day's candidates for every gather from a customer column and every operation, each with its
temporary. Compiled, the gathers and the arithmetic fuse into three loops. The transcendental functions stay
numpy's (np.exp up to three times, np.cos once and the goal gradient's power), called on whole arrays between
the loops: numba's exp and powers round differently from numpy's SIMD code (`benchmarks/numba_bits.py`), and
every product keeps numpy's order, so the bits can be the same.

The run is the real one. At every call the engine makes, the script computes m both ways on the same
candidates, alternating which goes first, checks the two are the same bits, and times each. It prints the
calls, the candidates, both times, their ratio, how many values differ (the prototype is worthless unless none
do) and what the saving would be as a share of the run. The engine's own result is the numpy one, so the run
is the lab's.

The prototype covers what the shipped scenarios' points policy uses: satisfaction without credit lines,
seasonality, points with their goal gradient and membership effect, offers, headroom and wear-out. A run
outside that (credit, a points ledger with pending days, more than one ledger) is refused with the reason, not
timed. tests/test_compiled_multiplier.py holds the loops to the engine's bits: if the engine's multiplier
changes, that test fails, and the loops must follow it or this script and the section of benchmarks/README.md
that quotes it ("Columns read together, stored together, and a compiled thinning multiplier") must go.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

import numpy as np

from probe_run import load_or_exit, run_arguments

from lab.engine.behaviour import mean_base_rate

try:
    import numba
except ImportError:  # the prototype is about numba: without it there is nothing to measure
    sys.exit("benchmarks/compiled_multiplier.py needs numba: pip install -e '.[test]' (a test dependency, not one "
             "of the lab's)")


@numba.njit(cache=True)
def _arguments(idx: np.ndarray, t: np.ndarray, t_sat: np.ndarray, acquired_at: np.ndarray, memory: float,
               wear_out: float, launch_day: float, seasonal: bool, peak_shift: float, a_sat: np.ndarray,
               a_wear: np.ndarray, a_cos: np.ndarray) -> None:
    """The arguments of numpy's three transcendental calls: satisfaction's decay exp(-dt / memory), the
    wear-out's exp(-wear_out x tenure / 365) and the season's cos(2 pi (day of year - (peak - 1)) / 365), the
    last two only when on."""
    two_pi = 2 * np.pi
    for j in range(idx.size):
        i = idx[j]
        tj = t[j]
        dt = tj - t_sat[i]
        if dt < 0.0:
            dt = 0.0
        a_sat[j] = -dt / memory
        if wear_out > 0:
            since = acquired_at[i]
            if since < launch_day:
                since = launch_day
            tenure = tj - since
            if tenure < 0.0:
                tenure = 0.0
            a_wear[j] = -wear_out * tenure / 365.0
        if seasonal:
            a_cos[j] = two_pi * ((tj % 365.0) - peak_shift) / 365.0


@numba.njit(cache=True)
def _satisfaction(idx: np.ndarray, e_sat: np.ndarray, cos: np.ndarray, sat_ref: np.ndarray, sat_at: np.ndarray,
                  lam_mult: np.ndarray, held: np.ndarray, member: np.ndarray, shift: float, rate_effect: float,
                  seasonality: float, goal_cost: float, a_rate: np.ndarray, partial: np.ndarray,
                  progress: np.ndarray) -> None:
    """Satisfaction now and its rate factor's argument, the base rate times the season, and the progress to the
    next reward (`goal_cost` 0: no goal)."""
    for j in range(idx.size):
        i = idx[j]
        ref = sat_ref[i]
        target = ref + shift
        target = 0.0 if target < 0.0 else (1.0 if target > 1.0 else target)
        s = target + (sat_at[i] - target) * e_sat[j]
        a_rate[j] = rate_effect * (s - ref)
        m = lam_mult[i]
        if seasonality > 0:
            m = m * (1 + seasonality * cos[j])
        partial[j] = m
        if goal_cost > 0:
            p = held[i] / goal_cost
            p = 1.0 if p > 1.0 else p
            p = 0.0 if p < 0.0 else p  # np.maximum(zeros, ...) of the engine
            progress[j] = p * (1.0 if member[i] else 0.0)


@numba.njit(cache=True)
def _product(idx: np.ndarray, t: np.ndarray, seg: np.ndarray, partial: np.ndarray, e_rate: np.ndarray,
             powered: np.ndarray, e_wear: np.ndarray, lam: np.ndarray, member: np.ndarray, offer_until: np.ndarray,
             offer_freq: np.ndarray, sensitivity: np.ndarray, goal_gradient: float, membership: float,
             headroom: float, lam_ref: float, wear_out: float, offers: bool, bound: float, out: np.ndarray) -> None:
    """m = base x season x satisfaction x goal x offer x membership, capped at the bound, in the engine's order."""
    for j in range(idx.size):
        i = idx[j]
        h = 1.0
        if headroom > 0:
            h = 1.0 / (1.0 + headroom * (lam[i] / lam_ref))
        if wear_out > 0:
            h = h * e_wear[j]
        m = partial[j] * e_rate[j]
        rs = sensitivity[seg[i]]
        if goal_gradient > 0:
            m = m * (1 + goal_gradient * (rs * h) * powered[j])
        if offers:
            m = m * (1 + h * (offer_freq[i] if offer_until[i] > t[j] else 0.0))
        if membership > 0:
            m = m * (1 + membership * (rs * h) * (1.0 if member[i] else 0.0))
        out[j] = bound if m > bound else m  # np.minimum's answer, NaN included


class OutOfScope(Exception):
    """The run needs what the prototype does not compute."""


def _scope(sim: Any) -> str | None:
    """Why this run is outside the prototype, or None."""
    if not sim.on or sim.m_bound <= 1.0:
        return "behaviour is off or the bound is 1: the engine computes no multiplier"
    if sim.runtime.credit or (sim.programme is not None and sim.programme[1].credit):
        return "the policy has a credit line: the prototype has no credit factor"
    books = sim.runtime.points if sim.programme is None else sim.programme[1].points
    if len(books) > 1:
        return "the policy has more than one points ledger: the prototype reads one"
    for book in books.values():
        if not book._whole:
            return "the points ledger has pending days: the prototype reads the running balance only"
    return None


def compiled(sim: Any, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    """m(t) of candidates `idx` at times `t`: three compiled loops around numpy's exp, cos and power."""
    c, b, rt = sim.c, sim.beh, sim.runtime
    n = idx.size
    a_sat, a_wear, a_cos = np.empty(n), np.empty(n), np.empty(n)
    seasonal = sim.sc.store.seasonality > 0
    _arguments(idx, t, c.t_sat, c.acquired_at, b.satisfaction_memory_days, b.wear_out, float(sim.launch_day),
               seasonal, float(sim.sc.store.peak_day - 1), a_sat, a_wear, a_cos)
    e_sat = np.exp(a_sat)
    e_wear = np.exp(a_wear) if b.wear_out > 0 else a_wear  # (unread when off, as the season's cos)
    cos = np.cos(a_cos) if seasonal else a_cos
    shift = b.service_quality_weight * (sim.store.service_quality - sim.q0)
    goal_cost, held = 0.0, np.zeros(1)  # (unread without a goal; a plain array, as a ledger's, so no new compile)
    points = bool(rt.points)
    if points and b.goal_gradient > 0:
        for name, book in rt.points.items():
            goal_cost, held = rt._goal_costs.get(name, 0.0), book.held
    a_rate, partial, progress = np.empty(n), np.empty(n), np.zeros(n)
    _satisfaction(idx, e_sat, cos, c.sat_ref, c.sat_at, c.lam_mult, held, rt.member, shift,
                  b.satisfaction_rate_effect, sim.sc.store.seasonality, goal_cost, a_rate, partial, progress)
    e_rate = np.exp(a_rate)
    powered = progress ** b.goal_gradient_power
    lam_ref = mean_base_rate(sim.seg)
    out = np.empty(n)
    _product(idx, t, c.seg, partial, e_rate, powered, e_wear, c.lam, rt.member, c.offer_until, c.offer_freq,
             sim.seg.reward_sensitivity, b.goal_gradient if points else 0.0,
             b.membership_effect if points else 0.0, b.response_headroom, lam_ref, b.wear_out,
             bool(sim.offers_made), float(sim.m_bound), out)
    return out


def main() -> None:
    a = run_arguments(__doc__).parse_args()
    loaded = load_or_exit(a.scenario, a.policy)
    from lab.engine.options import RunOptions
    from lab.engine.simulate import Simulation
    from lab.errors import LabError

    tally = {"calls": 0, "candidates": 0, "numpy": 0.0, "compiled": 0.0, "differ": 0}

    class Probed(Simulation):
        """The engine, computing m both ways at every call and keeping numpy's."""

        def rate_multiplier(self, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
            why = _scope(self)
            if why is not None:
                raise OutOfScope(f"day {int(self.now)}: {why}")
            if not tally["calls"]:  # compile (or load from numba's cache) for these columns' layouts, untimed
                compiled(self, idx[:1], t[:1])
            first = tally["calls"] % 2 == 0
            for turn in (0, 1):
                start = time.perf_counter()
                if (turn == 0) == first:
                    mine = super().rate_multiplier(idx, t)
                    tally["numpy"] += time.perf_counter() - start
                else:
                    other = compiled(self, idx, t)
                    tally["compiled"] += time.perf_counter() - start
            tally["calls"] += 1
            tally["candidates"] += int(idx.size)
            tally["differ"] += int(np.count_nonzero(mine.view(np.int64) != other.view(np.int64)))
            return mine

    load = os.getloadavg()[0]
    start = time.perf_counter()
    try:
        Probed(loaded.scenario, loaded.policies[a.policy],
               RunOptions(seed=1, customers=a.customers, days=a.days)).run()
    except LabError as e:
        sys.exit(str(e))
    except OutOfScope as e:
        sys.exit(f"outside the prototype's scope from {e}")
    wall = time.perf_counter() - start
    print(f"{a.scenario}, {a.policy}, {a.customers:,} customers x {a.days} days, seed 1; load average at the "
          f"start {load:.2f}, at the end {os.getloadavg()[0]:.2f}")
    calls, cands = tally["calls"], tally["candidates"]
    npy, comp = tally["numpy"], tally["compiled"]
    own = wall - comp  # the run as the engine made it, without the prototype's own calls
    print("\n| m(t), the thinning multiplier | calls | candidates | s | us a candidate | share of the run |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, spent in (("numpy (the engine)", npy), ("compiled loops around numpy's exp, cos, power", comp)):
        print(f"| {name} | {calls:,} | {cands:,} | {spent:.2f} | {spent / max(cands, 1) * 1e6:.3f} | "
              f"{spent / own:.1%} |")
    ratio = npy / comp if comp > 0 else math.nan
    print(f"\nnumpy / compiled: {ratio:.2f}x; values that differ: {tally['differ']:,} of {cands:,}")
    print(f"the run without the prototype's calls: {own:.2f} s; compiling m alone would save "
          f"{(npy - comp) / own:.1%} of it")
    if tally["differ"]:
        sys.exit("the compiled multiplier did not give numpy's bits")


if __name__ == "__main__":
    main()
