"""What a thinning bound per segment would buy: a measurement of a design the lab does not use.

Every purchase is the one kept candidate of several: candidates come at the bound M times a customer's base
rate and each is kept with chance m / M (docs/MODEL.md). M is one number for the whole scenario, the largest
multiplier any customer could reach (`lab.engine.behaviour.rate_bound`), so every policy thins the same
candidates. A bound per segment, the same formula on each segment's own parameters, would draw fewer
candidates where a segment cannot reach the scenario's largest multiplier (the apparel store's two segments of
reward sensitivity 1), but it thins other candidates: the same distributions, different sample paths, so every
existing result would move. This script measures how much faster that would be, to show what giving up the
results as they are would buy on this route.

    python benchmarks/segment_bound.py                     # apparel, points, 1,000,000 x 730 days, 3 rounds
    python benchmarks/segment_bound.py --customers 100000 --repeats 5

Each run is a fresh process timing `Simulation(...).run()` (not the imports or the YAML), the two designs
alternating; it prints the medians, the purchases and candidates each drew, and the ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from probe_run import load_or_exit, run_arguments

DESIGNS = ("shipped", "per-segment")


def segment_bounds(sim) -> np.ndarray:
    """M for each segment of `sim`'s scenario: `rate_bound` itself, given one segment at a time."""
    from lab.engine.behaviour import rate_bound

    seg = sim.seg
    arrays = [f.name for f in dataclasses.fields(seg) if isinstance(getattr(seg, f.name), np.ndarray)]
    return np.array([rate_bound(sim.beh, sim.sc.store.seasonality,
                                dataclasses.replace(seg, **{name: getattr(seg, name)[[i]] for name in arrays}))
                     for i in range(len(seg.share))])


def child(design: str, scenario: str, policy: str, customers: int, days: int) -> dict[str, object]:
    """One run under `design`; what was measured."""
    from lab.engine.options import RunOptions
    from lab.engine.simulate import Simulation

    class PerSegment(Simulation):
        """The engine with each customer's candidates drawn at the bound of the customer's segment."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.by_segment = segment_bounds(self)

        def _bound(self, idx: np.ndarray) -> np.ndarray:
            return self.by_segment[self.c.seg[idx]]

    loaded = load_or_exit(scenario, policy)
    engine = Simulation if design == "shipped" else PerSegment
    t0 = time.perf_counter()
    sim = engine(loaded.scenario, loaded.policies[policy], RunOptions(seed=1, customers=customers, days=days))
    raw = sim.run()
    seconds = time.perf_counter() - t0
    bounds = sim.by_segment if isinstance(sim, PerSegment) else [sim.m_bound]
    return {"seconds": seconds, "purchases": int(raw.daily["purchases"].sum()),
            "candidates": int(raw.customers.cand_n[: raw.customers.n].sum()),
            "bounds": [round(float(x), 2) for x in bounds]}


def main() -> None:
    ap = run_arguments(__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=DESIGNS, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        from lab.errors import LabError

        try:
            print(json.dumps(child(a.child, a.scenario, a.policy, a.customers, a.days)))
        except LabError as e:
            sys.exit(str(e))
        return
    print(f"{a.scenario}, {a.policy}, {a.customers:,} customers x {a.days} days, seed 1; {a.repeats} rounds, "
          f"the designs alternating; load average at the start {os.getloadavg()[0]:.2f}")
    got: dict[str, list[dict]] = {d: [] for d in DESIGNS}
    for _ in range(a.repeats):
        for d in DESIGNS:
            out = subprocess.run([sys.executable, __file__, "--child", d, "--scenario", a.scenario, "--policy",
                                  a.policy, "--customers", str(a.customers), "--days", str(a.days)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"segment_bound.py: the {d} run of {a.scenario} failed:\n{out.stderr.strip()}")
            got[d].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("\n| design | M | median s | min s | max s | purchases | candidates | candidates a purchase |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    med = {}
    for d in DESIGNS:
        runs = got[d]
        secs = [r["seconds"] for r in runs]
        med[d] = statistics.median(secs)
        r = runs[0]
        print(f"| {d} | {', '.join(map(str, r['bounds']))} | {med[d]:.2f} | {min(secs):.2f} | {max(secs):.2f} | "
              f"{r['purchases']:,} | {r['candidates']:,} | {r['candidates'] / r['purchases']:.2f} |")
    print(f"\nshipped / per-segment, medians: {med['shipped'] / med['per-segment']:.2f}x; "
          f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
