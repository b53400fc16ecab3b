"""Benchmark the vectorised engine against the issue's targets, and against the reference engine.

Every measurement runs in a fresh Python process, so that its peak memory
(the kernel's high-water mark of resident memory, VmHWM) belongs to that one
run and no run warms another's caches. The timed part is the simulation
itself: `Simulation(...)` plus `.run()`, which includes creating the
starting population but not importing the package or reading the YAML.

    python benchmarks/bench_engine.py [--sizes 10000,100000,1000000] [--repeats 3] [--days 730]

Targets (from the issue, on a 2-core machine): 1M customers x 730 days under
the points policy in at most 10 s and 1.5 GB peak memory; at least 20x the
reference engine's purchases per second; time growing linearly with purchases.

    python benchmarks/bench_engine.py --stack 20 [--stack-sizes 500,2000] [--policy points] [--days 730]

measures a stack of worlds instead (lab.engine.stack): at each size, K runs of the
policy (seed 1, addresses 0..K-1) made one after another in one process, against
the same K runs simulated as one stack; the timed part is constructing and running
the simulations (K of them, or the one stack). Every world of the stack is
bit-identical to its run alone (tests/test_stack.py), so both sides simulate the same
purchases; the script checks that they agree.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 10.0
TARGET_PEAK_MB = 1536.0
TARGET_SIZE = 1_000_000
TARGET_RATIO = 20.0


# --------------------------------------------------------------------------- the child: one measured run
def _peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def child(engine: str, scenario: str, policy: str, customers: int, days: int, seed: int,
          worlds: int = 0) -> dict[str, object]:
    """Run one simulation and return what was measured (printed as one JSON line by --child).

    engine "alone" or "stacked": `worlds` runs (addresses 0..worlds-1) one after another, or as one stack."""
    from lab.engine.options import RunOptions
    from lab.engine.simulate import Simulation
    from lab.scenario.loader import load_scenario

    loaded = load_scenario(ROOT / scenario, [policy])
    compiled = loaded.policies[policy]
    opts = RunOptions(seed=seed, customers=customers, days=days)
    if engine in ("alone", "stacked"):
        from lab.engine.stack import StackedSimulation

        many = [RunOptions(seed=seed, address=(k,), customers=customers, days=days) for k in range(worlds)]
        cpu0, t0 = time.process_time(), time.perf_counter()
        if engine == "stacked":
            raws = StackedSimulation(loaded.scenario, compiled, many).runs()
        else:
            raws = [Simulation(loaded.scenario, compiled, o).run() for o in many]
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        return {"engine": engine, "customers": customers, "days": days, "seconds": wall, "cpu_seconds": cpu,
                "purchases": sum(int(r.daily["purchases"].sum()) for r in raws), "peak_mb": _peak_rss_mb()}
    kwargs: dict[str, object] = {}
    if engine == "reference":
        from lab.engine.reference import ReferenceSimulation as Engine  # type: ignore[attr-defined]

        if "follow" in inspect.signature(Engine).parameters:
            kwargs["follow"] = ()  # keep no customer stories: the reference engine's fastest mode
    else:
        Engine = Simulation  # type: ignore[assignment,misc]
    cpu0, t0 = time.process_time(), time.perf_counter()
    raw = Engine(loaded.scenario, compiled, opts, **kwargs).run()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    return {"engine": engine, "customers": customers, "days": days, "seconds": wall, "cpu_seconds": cpu,
            "purchases": int(raw.daily["purchases"].sum()), "peak_mb": _peak_rss_mb()}


# --------------------------------------------------------------------------- the parent: orchestration
@dataclass(frozen=True)
class Measure:
    """The median of several runs of one engine at one size (or why there is none)."""

    engine: str
    customers: int
    seconds: float
    cpu_seconds: float
    purchases: int
    peak_mb: float
    runs: int
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.purchases / self.seconds if self.seconds > 0 else math.nan

    @property
    def us_per_purchase(self) -> float:
        return 1e6 * self.seconds / self.purchases if self.purchases else math.nan


def run_child(engine: str, args: argparse.Namespace, customers: int, timeout: float | None) -> dict[str, object] | str:
    """One measurement in a fresh process: its JSON result, or a note saying why there is none."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", engine, "--scenario", args.scenario,
           "--policy", args.policy, "--days", str(args.days), "--seed", str(args.seed), "--sizes", str(customers),
           "--stack", str(args.stack)]
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"stopped after {timeout:.0f} s (--reference-cap)"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"failed: {tail}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(engine: str, args: argparse.Namespace, customers: int, repeats: int, timeout: float | None) -> Measure:
    """Median wall time (and the rest) over `repeats` fresh-process runs."""
    results: list[dict[str, object]] = []
    for _ in range(repeats):
        r = run_child(engine, args, customers, timeout)
        if isinstance(r, str):
            return Measure(engine, customers, math.nan, math.nan, 0, math.nan, len(results), r)
        results.append(r)
        print(f"  {engine:10s} {customers:>9,d} customers: {r['seconds']:8.2f} s, {r['purchases']:>10,d} purchases,"
              f" peak {r['peak_mb']:7.0f} MB", file=sys.stderr, flush=True)
    purchases = {int(r["purchases"]) for r in results}
    note = "" if len(purchases) == 1 else "runs disagree on purchases: the engine is not deterministic!"
    return Measure(engine, customers, statistics.median(float(r["seconds"]) for r in results),
                   statistics.median(float(r["cpu_seconds"]) for r in results), int(results[0]["purchases"]),
                   max(float(r["peak_mb"]) for r in results), len(results), note)


def reference_available() -> str:
    """'' when lab.engine.reference.ReferenceSimulation can be imported, else why not."""
    try:
        from lab.engine.reference import ReferenceSimulation  # noqa: F401
    except ImportError as exc:
        return f"the reference engine is not available ({exc}); only the vectorised engine was measured"
    return ""


def _fmt(x: float, spec: str) -> str:
    return "-" if not math.isfinite(x) else format(x, spec)


def table(rows: list[Measure]) -> list[str]:
    """The results as a Markdown table."""
    out = ["| engine | customers | median s | cpu s | purchases | purchases/s | us/purchase | peak MB | runs |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in rows:
        out.append(f"| {m.engine} | {m.customers:,} | {_fmt(m.seconds, '.2f')} | {_fmt(m.cpu_seconds, '.2f')} | "
                   f"{m.purchases:,} | {_fmt(m.per_second, ',.0f')} | {_fmt(m.us_per_purchase, '.2f')} | "
                   f"{_fmt(m.peak_mb, ',.0f')} | {m.runs} |" + (f" {m.note}" if m.note else ""))
    return out


def linearity(rows: list[Measure]) -> list[str]:
    """Time per purchase across sizes, the marginal cost between sizes, and the fitted exponent of time in purchases."""
    ok = [m for m in rows if m.purchases and math.isfinite(m.seconds)]
    if len(ok) < 2:
        return ["linearity: needs at least two sizes"]
    out = ["linearity (vectorised): time = a + b * purchases is linear when the marginal cost b stays put as sizes "
           "grow"]
    for lo, hi in zip(ok, ok[1:]):
        marginal = 1e6 * (hi.seconds - lo.seconds) / max(hi.purchases - lo.purchases, 1)
        out.append(f"  {lo.customers:>9,d} -> {hi.customers:>9,d} customers: marginal {marginal:6.2f} us/purchase"
                   f" (average {lo.us_per_purchase:.2f} -> {hi.us_per_purchase:.2f})")
    big = ok[-2:]
    k = math.log(big[1].seconds / big[0].seconds) / math.log(big[1].purchases / big[0].purchases)
    out.append(f"  exponent of time in purchases between the two largest sizes: {k:.2f} (1 = linear)")
    return out


def stacks(args: argparse.Namespace) -> int:
    """K runs alone against one stack of K worlds, at each of --stack-sizes, alternating the two."""
    sys.path.insert(0, str(ROOT))
    try:
        sizes = [int(s) for s in args.stack_sizes.split(",") if s.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) <= 0 or args.stack < 1:
        print("--stack and --stack-sizes take positive whole numbers, e.g. --stack 20 --stack-sizes 500,2000",
              file=sys.stderr)
        return 2
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# {args.stack} runs of the {args.policy} policy, {args.scenario}, {args.days} days, seed {args.seed}: "
          f"alone (one after another) and as one stack; median of {args.repeats} fresh-process runs, {cores} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(f"# command: python benchmarks/bench_engine.py --stack {args.stack} --stack-sizes {args.stack_sizes} "
          f"--repeats {args.repeats} --days {args.days} --policy {args.policy}")
    rows: list[Measure] = []
    for n in sizes:
        alone: list[dict[str, object]] = []
        stacked: list[dict[str, object]] = []
        for _ in range(args.repeats):  # alternating, so a change in the machine's load falls on both
            for engine, into in (("alone", alone), ("stacked", stacked)):
                r = run_child(engine, args, n, None)
                if isinstance(r, str):
                    print(f"{engine} at {n:,} customers: {r}")
                    return 1
                into.append(r)
                print(f"  {engine:8s} {n:>9,d} customers x {args.stack}: {r['seconds']:8.2f} s, "
                      f"{r['purchases']:>10,d} purchases", file=sys.stderr, flush=True)
        for engine, got in (("alone", alone), ("stacked", stacked)):
            rows.append(Measure(f"{engine} x{args.stack}", n, statistics.median(float(r["seconds"]) for r in got),
                                statistics.median(float(r["cpu_seconds"]) for r in got), int(got[0]["purchases"]),
                                max(float(r["peak_mb"]) for r in got), len(got)))
        if alone[0]["purchases"] != stacked[0]["purchases"]:
            print(f"at {n:,} customers the stack simulated other purchases than the runs alone: a bug")
    print()
    print("\n".join(table(rows)))
    print()
    for a, b in zip(rows[::2], rows[1::2]):
        print(f"{a.customers:,} customers: the stack of {args.stack} takes {b.seconds:.2f} s against {a.seconds:.2f} s "
              f"alone, {a.seconds / b.seconds:.1f}x (cpu {a.cpu_seconds / b.cpu_seconds:.1f}x)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000,1000000", help="customer counts for the vectorised engine")
    p.add_argument("--repeats", type=int, default=3, help="runs per size; the median is reported")
    p.add_argument("--days", type=int, default=730)
    p.add_argument("--scenario", default="scenarios/classroom.yaml", help="relative to the repository root")
    p.add_argument("--policy", default="points")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--reference-sizes", default="1000,10000,30000",
                   help="customer counts for the reference engine, each also run by the vectorised engine "
                        "('' for none)")
    p.add_argument("--reference-repeats", type=int, default=None,
                   help="runs per size for the reference engine (default: --repeats)")
    p.add_argument("--reference-cap", type=float, default=600.0, help="seconds after which a reference run is stopped")
    p.add_argument("--stack", type=int, default=0,
                   help="measure K runs alone against one stack of K worlds instead (0: off)")
    p.add_argument("--stack-sizes", default="500,2000", help="customer counts for --stack")
    p.add_argument("--child", choices=("vectorised", "reference", "alone", "stacked"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        ref_sizes = [int(s) for s in args.reference_sizes.split(",") if s.strip()]
    except ValueError:
        p.error("--sizes and --reference-sizes take comma-separated whole numbers, e.g. --sizes 10000,100000")
    ref_repeats = args.repeats if args.reference_repeats is None else args.reference_repeats
    if not sizes or min(sizes + ref_sizes) <= 0 or min(args.repeats, ref_repeats, args.days) < 1:
        p.error("sizes, --repeats, --reference-repeats and --days must be positive")

    if args.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(child(args.child, args.scenario, args.policy, sizes[0], args.days, args.seed, args.stack)))
        return 0
    if args.stack:
        return stacks(args)

    sys.path.insert(0, str(ROOT))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# {args.policy} policy, {args.scenario}, {args.days} days, seed {args.seed}, median of {args.repeats} "
          f"fresh-process runs, {cores} cores, load average {os.getloadavg()[0]:.1f} at start")
    print(f"# command: python benchmarks/bench_engine.py --sizes {args.sizes} --repeats {args.repeats} "
          f"--days {args.days}"
          f" --reference-sizes {args.reference_sizes or repr('')} --reference-repeats {ref_repeats}")
    missing = reference_available()
    vec = [measure("vectorised", args, n, args.repeats, None) for n in sorted(sizes)]
    ref: list[Measure] = []
    side_by_side: list[tuple[Measure, Measure]] = []
    if not missing:
        for n in sorted(ref_sizes):
            r = measure("reference", args, n, ref_repeats, args.reference_cap)
            ref.append(r)
            if not math.isfinite(r.seconds):
                break  # a larger size would only take longer
            # the vectorised engine at the same size, measured in the same sitting
            side_by_side.append((measure("vectorised", args, n, args.repeats, None), r))
    print()
    print("\n".join(table(vec + ref)))
    print()
    print("\n".join(linearity(vec)))
    print()
    if missing:
        print(f"speed ratio: {missing}")
    for v, r in side_by_side:
        print(f"speed ratio at {v.customers:,} customers (measured side by side): vectorised {v.per_second:,.0f}"
              f" vs reference {r.per_second:,.0f} purchases/s = {v.per_second / r.per_second:.1f}x")
    for m in ref:
        if m.note:
            print(f"reference at {m.customers:,} customers: {m.note}")
    print()
    big = next((m for m in vec if m.customers == TARGET_SIZE), None)
    if big is not None and math.isfinite(big.seconds):
        print(f"target {TARGET_SIZE:,} customers x {args.days} days in <= {TARGET_SECONDS:.0f} s: {big.seconds:.2f} s"
              f" -> {'met' if big.seconds <= TARGET_SECONDS else 'NOT met'}")
        print(f"target peak memory <= {TARGET_PEAK_MB:,.0f} MB: {big.peak_mb:,.0f} MB"
              f" -> {'met' if big.peak_mb <= TARGET_PEAK_MB else 'NOT met'}")
    if side_by_side:
        v, r = side_by_side[-1]
        ratio = v.per_second / r.per_second
        print(f"target >= {TARGET_RATIO:.0f}x the reference engine: {ratio:.1f}x side by side at "
              f"{v.customers:,} customers,"
              f" the largest size both ran -> {'met' if ratio >= TARGET_RATIO else 'NOT met'}")
        top = max((m for m in vec if math.isfinite(m.seconds)), key=lambda m: m.customers, default=None)
        if top is not None and top.customers > v.customers:
            print(f"  (at scale: vectorised {top.per_second:,.0f} purchases/s at {top.customers:,} customers is"
                  f" {top.per_second / r.per_second:.0f}x the reference's {r.per_second:,.0f} at {r.customers:,})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
