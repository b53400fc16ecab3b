"""How much memory a run needs, known before it starts, and the refusal when the machine has less.

A run keeps one row per customer in every declared column: the population's
(`lab.population.customers.Customers`) and the programme's books
(`lab.policy.runtime.PolicyRuntime` and its ledgers). The bytes per customer
are measured from those declarations by allocating them at two small sizes
and taking the difference, so a column added to either class is counted
without a word here. That times the customers at the start is a lower bound
on what a run holds (the population grows with acquisitions, and the engine
keeps working arrays besides); `tests/test_memory_estimate.py` checks it
against the peak resident memory of real runs. A run whose lower bound,
times the runs held at once, exceeds the machine's memory cannot succeed,
so it is refused before it starts rather than killed by the kernel hours in.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import numpy as np

from lab.policy.runtime import CompiledPolicy, PolicyRuntime
from lab.population.customers import Customers, SegmentTable
from lab.scenario.model import Scenario

__all__ = ["STACK_MEMORY_SHARE", "STACK_WORLDS", "bytes_per_customer", "check_memory", "machine_memory",
           "runs_held", "stack_budget", "stack_size"]

STACK_WORLDS = 64  # at most this many runs simulated at once in one stack (lab.engine.stack)
STACK_MEMORY_SHARE = 0.25  # by default, the stacks running at once hold at most this share of the machine's memory

_SMALL, _LARGE = 1024, 2048


def _nbytes(obj: object, seen: set[int]) -> int:
    """The bytes of every numpy array reachable from obj's attributes (each array counted once)."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(x, seen) for x in obj)
    if isinstance(obj, dict):
        return sum(_nbytes(x, seen) for x in obj.values())
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return sum(_nbytes(x, seen) for x in vars(obj).values())
    return 0


def bytes_per_customer(scenario: Scenario, policy: CompiledPolicy) -> int:
    """Bytes one customer takes in the declared columns of the population and of the policy's books."""
    segments = SegmentTable.from_scenario(scenario)
    k = len(scenario.store.categories)

    def held(capacity: int) -> int:
        return _nbytes(Customers(segments, k, capacity), set()) + _nbytes(PolicyRuntime(policy, capacity), set())

    return int(np.ceil((held(_LARGE) - held(_SMALL)) / (_LARGE - _SMALL)))


def machine_memory() -> int | None:
    """The machine's physical memory in bytes (None where os.sysconf cannot say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 2**30:,.1f} GB"


def check_memory(scenario: Scenario, policies: Iterable[CompiledPolicy], customers: int, at_once: int,
                 memory: int | None = None) -> str | None:
    """None if `at_once` runs of `customers` customers can fit in memory; otherwise the refusal, in words."""
    memory = machine_memory() if memory is None else memory
    if memory is None:
        return None
    per = max(bytes_per_customer(scenario, p) for p in policies)
    need = per * customers * at_once
    if need <= memory:
        return None
    runs = f" x {at_once} runs at once" if at_once > 1 else ""
    fewer = max(1, memory // (per * at_once))
    return (f"{customers:,} customers need at least {_gb(need)} of memory ({per:,} bytes per customer in the "
            f"declared columns{runs}), and this machine has {_gb(memory)}; use at most about {fewer:,} customers"
            + (" or fewer --jobs" if at_once > 1 else "")
            + ", or split the study into a batch of smaller runs ('lab batch', on a cluster with --executor dask)")


def stack_budget(memory: int | None = None) -> int | None:
    """The bytes the stacks running at once may hold: `memory` if given (a user's --memory), else
    STACK_MEMORY_SHARE of the machine's memory (None where the machine cannot say: no limit but STACK_WORLDS)."""
    if memory is not None:
        return memory
    total = machine_memory()
    return None if total is None else int(total * STACK_MEMORY_SHARE)


def runs_held(per_world: int, jobs: int, budget: int | None) -> int | None:
    """How many runs each of `jobs` processes may hold at once for their stacks to fit in `budget` bytes (a run
    needs `per_world`: its customers times the bytes per customer); None without a budget. At least 1: a single
    run that does not fit is `check_memory`'s to refuse, not this function's."""
    return None if budget is None else max(1, int(budget // max(1, per_world * jobs)))


def stack_size(per_world: int, jobs: int, runs: int, budget: int | None) -> int:
    """How many worlds go in one stack: at most STACK_WORLDS; few enough that `jobs` stacks at once fit in
    `budget` bytes (`runs_held`); and enough stacks, one per process where there are `runs` for it, to keep
    every process busy (a stack's fixed cost per simulated day is paid once for all its worlds, so fewer,
    larger stacks are faster: 200 runs of 500 customers went from 17.5 s to 14.8 s with one stack per process
    instead of two). At least 1."""
    held = runs_held(per_world, jobs, budget)
    return max(1, min(STACK_WORLDS, STACK_WORLDS if held is None else held, math.ceil(runs / max(1, jobs))))
