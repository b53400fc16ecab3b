"""Whole-process timings of the workloads users run, side by side in one sitting.

Each case is a command line run as a fresh process (exactly what a user types), timed
from start to exit, repeated, and reported as the median, minimum and maximum wall
time with the largest peak memory (the child's maximum resident set, from wait4).
The machine's load average is printed before and after, so a reader can tell a quiet
sitting from a busy one. Cases are interleaved (every case once, then every case
again, ...), so a change in the machine's load spreads over all of them alike and the
ratios below compare measurements taken side by side.

    python benchmarks/bench_workloads.py [--repeats 3] [--only NAME,NAME] [--quick]

The cases are the ones the many-worlds issue sets targets on: a batch of 200 small
classroom runs against one large classroom run of the same work, the README's
comparison and its robust form over 256 plausible worlds (2,048 more runs), the
million-customer apparel run against a hand-written per-customer
SimPy loop, the start-up of the command line, and one run of every shipped scenario
at its own size under the points policy. `--quick` divides the large sizes by ten
(the robust worlds by eight; for trying the script, not for quoting).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted(p.stem for p in (ROOT / "scenarios").glob("*.yaml"))


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    note: str


def _lab(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "lab", *args)


def cases(out: Path, quick: bool) -> list[Case]:
    big = 10 if quick else 1
    c = [
        Case("batch_200x500", _lab("batch", str(ROOT / "benchmarks/specs/classroom_200.yaml"), "--out",
                                   str(out / "batch"), "--jobs", "2"),
             "200 runs of the classroom store, 500 customers x 730 days (none, points; 100 replications each)"),
        Case("run_100k", _lab("run", str(ROOT / "scenarios/classroom.yaml"), "--policy", "points", "--customers",
                              str(100_000 // big), "--days", "730", "--seed", "1", "--out", str(out / "run_100k")),
             "one run of the classroom store, 100,000 customers x 730 days, points"),
        Case("run_500", _lab("run", str(ROOT / "scenarios/classroom.yaml"), "--policy", "points", "--customers",
                             "500", "--days", "730", "--seed", "1", "--out", str(out / "run_500")),
             "one run of the classroom store, 500 customers x 730 days, points"),
        Case("compare_classroom", _lab("compare", str(ROOT / "scenarios/classroom.yaml"), "--jobs", "2", "--out",
                                       str(out / "compare")),
             "the README's first command: 4 policies x 10 replications x whole and cut loop"),
        Case("robust_classroom", _lab("compare", str(ROOT / "scenarios/classroom.yaml"), "--robust",
                                      str(256 // (8 if quick else 1)), "--jobs", "2", "--out", str(out / "robust")),
             "the robust comparison: the README's comparison plus 256 plausible worlds x 4 policies x 2 replications"),
        Case("run_apparel_1m", _lab("run", str(ROOT / "scenarios/apparel.yaml"), "--policy", "points",
                                    "--customers", str(1_000_000 // big), "--days", "730", "--seed", "1",
                                    "--out", str(out / "run_1m")),
             "the apparel store, 1,000,000 customers x 730 days, points"),
        Case("naive_simpy_100k", (sys.executable, str(ROOT / "benchmarks/naive_simpy_loop.py"), "--customers",
                                  str(100_000 // big), "--days", "730"),
             "a per-customer SimPy loop with no rules, apparel segments, 100,000 customers x 730 days"),
        Case("help", _lab("--help"), "lab --help"),
        Case("validate", _lab("validate", str(ROOT / "policies/points.yaml")), "lab validate policies/points.yaml"),
        Case("explain", _lab("explain", str(ROOT / "policies/points.yaml")), "lab explain policies/points.yaml"),
    ]
    for s in SCENARIOS:
        c.append(Case(f"run_{s}", _lab("run", str(ROOT / "scenarios" / f"{s}.yaml"), "--policy", "points",
                                       "--seed", "1", "--out", str(out / f"run_{s}")),
                      f"one run of the {s} store at its own size and horizon, points"))
    return c


def measure(case: Case) -> tuple[float, float, str]:
    """Wall seconds, peak resident MiB and standard output of one run of the case."""
    start = time.perf_counter()
    proc = subprocess.Popen(case.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{case.name} failed with exit code {code}:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, out


def purchases_of(case: Case, out: Path, stdout: str) -> float | None:
    """Purchases simulated by a run case (from its summary.json or its JSON line), for purchases per second."""
    if case.name.startswith("naive"):
        return float(json.loads(stdout.strip().splitlines()[-1])["purchases"])
    if case.name.startswith("run_"):
        folder = Path(case.argv[case.argv.index("--out") + 1])
        summary = json.loads((folder / "summary.json").read_text())
        outcomes = summary.get("outcomes", summary)
        value = outcomes.get("purchases")
        return float(value) if isinstance(value, (int, float)) else None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--quick", action="store_true", help="large sizes divided by ten (to try the script)")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="lab-bench-"))
    chosen = cases(out, args.quick)
    if args.only:
        names = set(args.only.split(","))
        chosen = [c for c in chosen if c.name in names]
    load_before = os.getloadavg()
    walls: dict[str, list[float]] = {c.name: [] for c in chosen}
    peaks: dict[str, float] = {c.name: 0.0 for c in chosen}
    bought: dict[str, float | None] = {}
    for rep in range(args.repeats):
        for c in chosen:
            shutil.rmtree(out / "batch", ignore_errors=True)  # a batch must start afresh, not resume
            wall, peak, stdout = measure(c)
            walls[c.name].append(wall)
            peaks[c.name] = max(peaks[c.name], peak)
            bought[c.name] = purchases_of(c, out, stdout)
            print(f"  [{rep + 1}/{args.repeats}] {c.name}: {wall:.2f} s", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs; load average before {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; "
          f"{args.repeats} runs of each case, interleaved{' (--quick sizes)' if args.quick else ''}\n")
    print("| case | what | median s | min s | max s | peak MB | purchases | purchases/s |")
    print("|---|---|---|---|---|---|---|---|")
    med = {k: statistics.median(v) for k, v in walls.items()}
    for c in chosen:
        n = bought.get(c.name)
        rate = f"{n / med[c.name]:,.0f}" if n else ""
        print(f"| {c.name} | {c.note} | {med[c.name]:.2f} | {min(walls[c.name]):.2f} | {max(walls[c.name]):.2f} "
              f"| {peaks[c.name]:.0f} | {f'{n:,.0f}' if n else ''} | {rate} |")
    ratios = [("batch_200x500", "run_100k", "200 small runs / one run of the same work (target <= 2)"),
              ("run_apparel_1m", "naive_simpy_100k", None)]
    print()
    for a, b, words in ratios:
        if a in med and b in med:
            if words:
                print(f"- {words}: {med[a] / med[b]:.2f}x")
            elif bought.get(a) and bought.get(b):
                ra, rb = bought[a] / med[a], bought[b] / med[b]  # type: ignore[operator]
                print(f"- apparel 1M purchases/s over the naive SimPy loop's (target >= 8): {ra / rb:.2f}x")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
