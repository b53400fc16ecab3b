"""Where a run's time goes: numpy's functions a compiled kernel could not reproduce bit for bit, and the steps.

On a machine where numpy computes exp, log and their kin with its own AVX-512 code, a compiled kernel
(numba) that computed them would round differently in a few percent of values (`benchmarks/numba_bits.py`).
A compiled path could still keep the pure-numpy path's bits by leaving those calls to numpy and compiling
the rest around them. How much is "the rest" is what this script measures: each of numpy's transcendental
functions the engine calls by name (np.exp, np.log, ...) is timed around every call during one run. So are
the engine's steps on the purchase path (`STEPS`: inclusive times, so nested steps overlap), to show where a
compiled path would have to gain.

    python benchmarks/ufunc_share.py                                   # apparel, points, 1,000,000 x 730 days
    python benchmarks/ufunc_share.py --scenario scenarios/grocer.yaml --customers 100000

Not counted: powers written `x ** y` (the goal gradient's progress ** power, the CLV's discount factor),
which numpy computes without a name to time, and what scipy computes inside its own functions. The share
printed is therefore a lower bound. The timing wrapper adds a little to every call it times.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from probe_run import load_or_exit, run_arguments

#: numpy's functions of float64 that it may compute with its own SIMD code, as the engine calls them by name
NAMES = ("exp", "expm1", "log", "log1p", "power", "sqrt", "tanh", "cos")
#: the engine's steps timed, each with what it does
STEPS = {"_purchase": "a purchase: spend, category, the programme, the books",
         "rate_multiplier": "m(t) of each candidate, for thinning",
         "satisfaction": "satisfaction now (inside the two above, and elsewhere)",
         "_next_candidate": "the next candidate's gap",
         "_dropout_after": "the dropout draw after a purchase",
         "_respond": "customers' response to what the programme did (delight, trials, offers)"}


def _timed(f: Any, name: str, spent: dict[str, float]) -> Any:
    """`f` (a numpy function or a method of the engine), adding the time of each call to `spent[name]`. The lab
    calls these numpy functions only as functions (never their ufunc methods such as .reduce), so a plain
    wrapper stands in for them."""
    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return f(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t
    return timed


def main() -> None:
    a = run_arguments(__doc__).parse_args()
    loaded = load_or_exit(a.scenario, a.policy)
    from lab.engine.options import RunOptions
    from lab.engine.simulate import Simulation
    spent = dict.fromkeys(NAMES, 0.0)
    for name in NAMES:
        setattr(np, name, _timed(getattr(np, name), name, spent))
    steps = dict.fromkeys(STEPS, 0.0)
    for name in STEPS:
        setattr(Simulation, name, _timed(getattr(Simulation, name), name, steps))
    load = os.getloadavg()[0]
    t = time.perf_counter()
    Simulation(loaded.scenario, loaded.policies[a.policy],
               RunOptions(seed=1, customers=a.customers, days=a.days)).run()
    wall = time.perf_counter() - t
    total = sum(spent.values())
    print(f"{a.scenario}, {a.policy}, {a.customers:,} customers x {a.days} days, seed 1; load average at the "
          f"start {load:.2f}, at the end {os.getloadavg()[0]:.2f}")
    print("\n| function | s | share of the run |")
    print("|---|---:|---:|")
    for name in NAMES:
        if spent[name]:
            print(f"| np.{name} | {spent[name]:.2f} | {spent[name] / wall:.1%} |")
    print(f"| all of them | {total:.2f} | {total / wall:.1%} |")
    print(f"\nthe run: {wall:.2f} s; outside these functions: {wall - total:.2f} s ({1 - total / wall:.1%})")
    print("\n| the engine's step (inclusive) | what it does | s | share of the run |")
    print("|---|---|---:|---:|")
    for name, what in STEPS.items():
        print(f"| {name} | {what} | {steps[name]:.2f} | {steps[name] / wall:.1%} |")


if __name__ == "__main__":
    main()
