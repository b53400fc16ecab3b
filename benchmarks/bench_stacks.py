"""What a stack of runs costs by its shape: how many policies, how many worlds.

`lab compare` groups its runs into stacks (`lab.experiment.compare.stacks_of`): each group is some policies x
some worlds (a replication with the flywheel whole or cut), each policy's runs of the group's worlds one stack,
the group's policies sharing their warm-up (`lab.engine.stack.policy_runs`). This script times
`policy_runs` for the shapes given, each in a fresh process (median of --repeats), so that the grouping can be
chosen, and checked, by measurement:

    python benchmarks/bench_stacks.py scenarios/classroom.yaml \\
        --shape none,points,credit,performance:10 --shape none,performance:20 --shape points,credit:20

A shape is POLICIES:WORLDS; the worlds are the comparison's first ones (replication k // 2, the flywheel cut
in every second), with the scenario's seed. Only the simulation is timed, not importing the lab or reading
the files. The table also gives the purchases the stacks simulated (the days before a launch, which the
policies share, counted once) and the time per purchase, so that shapes of one policy over 1, 4, 16, 64 worlds
show whether the cost of a purchase grows with the worlds in a stack; with one policy, also the thinning
candidates drawn for each purchase made (docs/MODEL.md, section 3):

    python benchmarks/bench_stacks.py scenarios/apparel.yaml --shape points:1 --shape points:4 --shape points:16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(scenario: str, policies: list[str], worlds: int) -> tuple[float, int, int | None, float]:
    """Seconds `policy_runs` takes for these policies over the first `worlds` worlds of a comparison, the
    purchases it simulated (every day of the first policy's runs, the days from the launch of the others', as
    `policy_runs` shares the days before it), and with one policy the purchase candidates it drew (thinning:
    each customer's candidate counter), None with several (their counters hold the shared days too); and the
    thinning bound M of the scenario (the first world's)."""
    from lab.engine.options import RunOptions
    from lab.engine.simulate import Simulation
    from lab.engine.stack import policy_runs
    from lab.scenario.loader import load_scenario

    loaded = load_scenario(scenario, policies=policies)
    whole, cut = loaded.scenario, replace(loaded.scenario, flywheel=False)
    scenarios = [cut if k % 2 else whole for k in range(worlds)]
    options = [RunOptions(seed=whole.seed, address=(k // 2,)) for k in range(worlds)]
    t0 = time.perf_counter()
    runs = policy_runs(scenarios, [loaded.policies[p] for p in policies], options)
    seconds = time.perf_counter() - t0
    shared = len(policies) > 1 and whole.population.from_fit is None  # (runs on a fitted base run alone)
    launch = whole.launch_day if shared else 0
    purchases = sum(int(r.daily["purchases"].sum()) for r in runs[0])
    purchases += sum(int(r.daily["purchases"][launch:].sum()) for rs in runs[1:] for r in rs)
    candidates = sum(int(r.customers.cand_n.sum()) for r in runs[0]) if len(policies) == 1 else None
    bound = Simulation(whole, loaded.policies[policies[0]], options[0]).m_bound  # (not timed)
    return seconds, purchases, candidates, bound


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario")
    ap.add_argument("--shape", action="append", required=True, metavar="POLICIES:WORLDS")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        policies, worlds = args.child
        print(json.dumps(child(args.scenario, policies.split(","), int(worlds))))
        return
    scenario = str(Path(args.scenario).resolve())
    shapes = []
    for text in args.shape:
        policies, _, worlds = text.rpartition(":")
        if not policies or not worlds.isdigit() or int(worlds) < 1:
            ap.error(f"--shape {text!r}: expected POLICIES:WORLDS, e.g. none,points:20")
        shapes.append((policies, int(worlds)))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    times: dict[tuple[str, int], list[float]] = {s: [] for s in shapes}
    bought: dict[tuple[str, int], int] = {}
    drawn: dict[tuple[str, int], int | None] = {}
    bound = float("nan")
    for _ in range(args.repeats):  # interleaved, so that a drift of the machine's speed touches every shape
        for policies, worlds in shapes:
            out = subprocess.run([sys.executable, __file__, scenario, "--shape", "x:1", "--child", policies,
                                  str(worlds)], capture_output=True, text=True, cwd=ROOT, check=True)
            seconds, purchases, candidates, bound = json.loads(out.stdout.strip().splitlines()[-1])
            times[(policies, worlds)].append(float(seconds))
            bought[(policies, worlds)] = int(purchases)  # (the same every time: the runs are deterministic)
            drawn[(policies, worlds)] = candidates
    print(f"# {args.scenario}, policy_runs timed in a fresh process, median of {args.repeats}, "
          f"load average {load:.2f} at start; thinning bound M = {bound:.2f}")
    print("| policies | worlds | runs | median s | min s | max s | s per run | purchases | us per purchase "
          "| candidates a purchase |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (policies, worlds), ts in times.items():
        runs = worlds * len(policies.split(","))
        med, n = statistics.median(ts), bought[(policies, worlds)]
        per = f"{med / n * 1e6:.2f}" if n else "-"
        cand = drawn[(policies, worlds)]
        ratio = f"{cand / n:.2f}" if cand is not None and n else "-"
        print(f"| {policies} | {worlds} | {runs} | {med:.3f} | {min(ts):.3f} | {max(ts):.3f} | {med / runs:.4f} "
              f"| {n:,} | {per} | {ratio} |")


if __name__ == "__main__":
    main()
