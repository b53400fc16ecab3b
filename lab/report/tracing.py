"""What `lab trace` runs before it tells a story: the reference engine with progress, and the customers to follow.

The reference engine runs one SimPy process per customer, so a trace of a large store takes a while:
`traced_run` reports the day it has reached on a stream (stderr) once a run has lasted longer than a
second, so short runs stay silent. A customer can be named by id or picked by what became of them in
the run (`FATES`: churned, stayed, redeemed, written off, ...) and by segment: `pick` reads the run's
plain record, so the picked customer's story comes from the same run (following every customer costs
the reference engine almost nothing beyond the run itself).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from lab.engine.options import RunOptions
from lab.engine.record import RunRecord
from lab.engine.reference import ReferenceSimulation
from lab.policy.runtime import CompiledPolicy
from lab.scenario.model import Scenario

__all__ = ["FATES", "Pick", "TracedRun", "fate_masks", "pick", "traced_run"]


def _churned(r: RunRecord) -> np.ndarray:
    return ~np.asarray(r.customers.alive, dtype=bool)


def _stayed(r: RunRecord) -> np.ndarray:
    return np.asarray(r.customers.alive, dtype=bool)


def _redeemed(r: RunRecord) -> np.ndarray:
    out = np.zeros(r.customers.n, dtype=bool)
    for book in r.points.values():
        out[: len(book.redeemed)] |= np.asarray(book.redeemed[: r.customers.n]) > 0
    return out


def _expired(r: RunRecord) -> np.ndarray:
    out = np.zeros(r.customers.n, dtype=bool)
    for book in r.points.values():
        out[: len(book.expired)] |= np.asarray(book.expired[: r.customers.n]) > 0
    return out


def _lapsed_with_points(r: RunRecord) -> np.ndarray:
    held = np.zeros(r.customers.n, dtype=bool)
    for book in r.points.values():
        held[: len(book.outstanding)] |= np.asarray(book.outstanding[: r.customers.n]) > 0
    return held & _churned(r)


def _written_off(r: RunRecord) -> np.ndarray:
    out = np.zeros(r.customers.n, dtype=bool)
    for line in r.credit.values():
        out[: len(line.written_off)] |= np.asarray(line.written_off[: r.customers.n]) > 0
    return out


def _referred(r: RunRecord) -> np.ndarray:
    return np.asarray(r.customers.referred, dtype=bool)


def _one_purchase(r: RunRecord) -> np.ndarray:
    return np.asarray(r.customers.purchases) == 1


# what became of a customer in a run, by name: (meaning, mask over customers)
FATES: dict[str, tuple[str, Callable[[RunRecord], np.ndarray]]] = {
    "churned": ("dropped out before the end", _churned),
    "stayed": ("still a customer at the end", _stayed),
    "redeemed": ("redeemed points at least once", _redeemed),
    "expired": ("had points expire", _expired),
    "stranded": ("dropped out holding unused points", _lapsed_with_points),
    "written_off": ("had a credit balance written off", _written_off),
    "referred": ("came by referral", _referred),
    "one_purchase": ("bought once only", _one_purchase),
}


def fate_masks(record: RunRecord) -> dict[str, np.ndarray]:
    """For every fate, which customers of the run it describes."""
    return {name: fn(record) for name, (_, fn) in FATES.items()}


@dataclass(frozen=True)
class Pick:
    """The customer picked, and every id that matched (in id order)."""

    customer: int | None
    matches: np.ndarray
    described: str

    def summary(self, shown: int = 10) -> str:
        ids = ", ".join(str(int(i)) for i in self.matches[:shown])
        more = f", ... ({len(self.matches):,} in all)" if len(self.matches) > shown else ""
        return f"{len(self.matches):,} customers {self.described}: {ids}{more}"


def pick(record: RunRecord, fate: str | None = None, segment: str | None = None) -> Pick:
    """The lowest-numbered customer of the run with the fate and in the segment asked for (either may be None)."""
    n = record.customers.n
    mask = np.ones(n, dtype=bool)
    words = []
    if fate is not None:
        if fate not in FATES:
            raise ValueError(f"unknown fate '{fate}': expected one of {', '.join(FATES)}")
        mask &= FATES[fate][1](record)
        words.append(f"who {FATES[fate][0]}")
    if segment is not None:
        if segment not in record.segments:
            raise ValueError(f"unknown segment '{segment}': expected one of {', '.join(record.segments)}")
        mask &= np.asarray(record.customers.segment) == record.segments.index(segment)
        words.insert(0, f"in segment '{segment}'")
    ids = np.flatnonzero(mask)
    return Pick(int(ids[0]) if len(ids) else None, ids, " ".join(words) or "in the run")


class _Reported(ReferenceSimulation):
    """The reference engine, saying after each day how far it has got (to `report`)."""

    def __init__(self, *args, report: Callable[[int], None], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._report = report

    def _close(self, day: int) -> None:
        super()._close(day)
        self._report(day + 1)


@dataclass(frozen=True)
class TracedRun:
    """A finished reference run: its plain record (for `pick`) and the stories of the customers it followed."""

    record: RunRecord
    simulation: ReferenceSimulation

    def trace(self, customer_id: int) -> list[dict]:
        return self.simulation.trace(customer_id)


def traced_run(scenario: Scenario, policy: CompiledPolicy, opts: RunOptions, follow: Iterable[int] | None, *,
               label: str, stream: TextIO | None = None, quiet_for: float = 1.0,
               every: float | None = None) -> TracedRun:
    """Run the reference engine, following `follow` (None: everyone), and return the finished run.

    Once the run has taken `quiet_for` seconds, a line "lab trace: LABEL: day D of DAYS" goes to `stream`
    (stderr by default) every `every` seconds (default: 2 on a terminal, where one line is rewritten in
    place; 10 in a log)."""
    out = sys.stderr if stream is None else stream
    days = opts.days or scenario.days
    start = time.perf_counter()
    state = {"last": start, "shown": False}
    tty = bool(getattr(out, "isatty", lambda: False)())
    step = every if every is not None else (2.0 if tty else 10.0)

    def report(day: int) -> None:
        now = time.perf_counter()
        if now - start < quiet_for or (now - state["last"] < step and day < days):
            return
        if day >= days and not state["shown"]:
            return
        state["last"], state["shown"] = now, True
        text = f"lab trace: {label}: day {day:,} of {days:,} ({now - start:.0f} s)"
        print(f"\r{text}" if tty else text, end="" if tty and day < days else "\n", file=out, flush=True)

    sim = _Reported(scenario, policy, opts, follow=follow, report=report)
    raw = sim.run()
    return TracedRun(raw.record, sim)
