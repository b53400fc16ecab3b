"""The yardstick for the engine's speed: a hand-written per-customer SimPy loop with no rules at all.

One SimPy process per customer, BG/NBD purchase timing (gamma-distributed rates, a
beta-distributed dropout probability after each purchase) and a gamma-gamma basket,
with the apparel store's segments and their shares; no programme, no store, no
flywheel. It is what a modeller would write in an afternoon, and what the lab's engine
is measured against (purchases per second).

    python benchmarks/naive_simpy_loop.py [--customers 100000] [--days 730] [--seed 1]

Prints one JSON line: customers, days, purchases, seconds (the simulation alone).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import simpy
import yaml

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    scenario = yaml.safe_load((ROOT / "scenarios" / "apparel.yaml").read_text())
    segments = list(scenario["population"]["segments"].values())
    share = np.array([float(s["share"]) for s in segments])
    rng = np.random.default_rng(args.seed)
    n = args.customers
    which = rng.choice(len(segments), size=n, p=share / share.sum())
    lam, p_drop, nu, p_shape = (np.empty(n) for _ in range(4))
    for k, seg in enumerate(segments):  # BG/NBD and gamma-gamma heterogeneity, per segment, rates per day
        at = which == k
        m = int(at.sum())
        bg, sp = seg["purchases"]["bgnbd"], seg["spend"]
        per_day = 7.0 if bg.get("time_unit", "days") == "weeks" else 1.0
        lam[at] = rng.gamma(bg["r"], 1.0 / bg["alpha"], m) / per_day
        p_drop[at] = rng.beta(bg["a"], bg["b"], m)
        nu[at] = rng.gamma(sp["q"], 1.0 / sp["gamma"], m)
        p_shape[at] = sp["p"]
    env = simpy.Environment()
    purchases = 0
    revenue = 0.0

    def customer(i: int, gen: np.random.Generator):
        nonlocal purchases, revenue
        while True:
            yield env.timeout(gen.exponential(1.0 / lam[i]))
            purchases += 1
            revenue += gen.gamma(p_shape[i], 1.0 / nu[i])
            if gen.random() < p_drop[i]:
                return

    gen = np.random.default_rng(args.seed + 1)
    start = time.perf_counter()
    for i in range(n):
        env.process(customer(i, gen))
    env.run(until=args.days)
    seconds = time.perf_counter() - start
    print(json.dumps({"customers": n, "days": args.days, "purchases": purchases, "seconds": seconds}))


if __name__ == "__main__":
    main()
