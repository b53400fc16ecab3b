"""Whole-process timings of the workloads users run, side by side in one sitting.

Each case is a command line run as a fresh process (exactly what a user types), timed
from start to exit, repeated, and reported as the median, minimum and maximum wall
time with the largest peak memory (the child's maximum resident set, from wait4).
The machine's load average is printed before and after, so a reader can tell a quiet
sitting from a busy one. Cases are interleaved (every case once, then every case
again, ...), so a change in the machine's load spreads over all of them alike and the
ratios below compare measurements taken side by side.

    python benchmarks/bench_workloads.py [--repeats 3] [--only NAME,NAME] [--quick] [--before TREE]

The cases are the ones the many-worlds issue sets targets on: a batch of 200 small
classroom runs against one large classroom run of the same work, the README's
comparison (on today's classroom, and on the first wave's: the work the issue timed)
and its robust form over 256 plausible worlds (2,048 more runs), the million-customer
apparel run against a hand-written per-customer SimPy loop, the start-up of the
command line, and one run of every shipped scenario at its own size under the points
policy. `--quick` divides the large sizes by ten (the robust worlds by eight; for
trying the script, not for quoting). `--before TREE` runs the first wave's comparison
with another checkout's lab too, right after this tree's in every round, and prints
the speed-up and whether the two trees' outputs are byte-identical.
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
    tree: Path = ROOT  # the checkout whose lab runs it (`--before` adds cases run by another)


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
        Case("compare_first_wave", _lab("compare", str(ROOT / "benchmarks/specs/classroom_first_wave.yaml"), "--jobs",
                                        "2", "--out", str(out / "first_wave")),
             "the README's first command as the issue timed it: the first wave's classroom (2,000 starting "
             "customers on day 0, 365 days), 80 runs"),
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
    env = dict(os.environ, PYTHONPATH=str(case.tree)) if case.tree != ROOT else None
    # the output goes to files, not pipes: a child writing more than a pipe holds would wait for a reader
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(case.argv, stdout=stdout, stderr=stderr, cwd=case.tree, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        stdout.seek(0)
        stderr.seek(0)
        out, err = stdout.read(), stderr.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{case.name} failed with exit code {code}:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, out


def purchases_of(case: Case, stdout: str) -> tuple[float, float] | None:
    """(purchases simulated, purchases measured) by a run case, for purchases per second.

    Simulated: every purchase the run made, trial purchases and the warm-up's included (its daily series
    summed), the count the naive loop's JSON line gives for its own. Measured: the summary's `purchases`,
    which counts from the programme's launch only (a year into the apparel store's 730 days)."""
    if case.name.startswith("naive"):
        n = float(json.loads(stdout.strip().splitlines()[-1])["purchases"])
        return n, n
    if case.name.startswith("run_"):
        folder = Path(case.argv[case.argv.index("--out") + 1])
        # read by a child: pyarrow in this process would be counted in the peak memory of every later case (a
        # child's maximum resident set starts from its parent's)
        read = ("import sys, pyarrow.parquet as pq; "
                "print(pq.read_table(sys.argv[1], columns=['purchases']).column('purchases').to_numpy().sum())")
        simulated = float(subprocess.run([sys.executable, "-c", read, str(folder / "timeseries.parquet")],
                                         check=True, capture_output=True, text=True).stdout)
        summary = json.loads((folder / "summary.json").read_text())
        measured = summary.get("outcomes", summary).get("purchases")
        return simulated, (float(measured) if isinstance(measured, (int, float)) else float("nan"))
    return None


#: what the two trees' first-wave comparisons are compared on (manifest.json holds timings and the command line)
COMPARED = ("summary.json", "replications.parquet", "timeseries.parquet", "retention.parquet", "lorenz.parquet")


def _same_outputs(mine: Path, theirs: Path) -> str:
    """Whether two comparisons' outputs (COMPARED) are byte-identical, in words."""
    missing = [f for f in COMPARED for d in (mine, theirs) if not (d / f).exists()]
    if missing:
        return f"not comparable: {', '.join(sorted(set(missing)))} missing"
    differ = [f for f in COMPARED if (mine / f).read_bytes() != (theirs / f).read_bytes()]
    return f"DIFFERENT: {', '.join(differ)}" if differ else "byte-identical"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--quick", action="store_true", help="large sizes divided by ten (to try the script)")
    ap.add_argument("--before", type=Path, metavar="TREE",
                    help="another checkout (the tree before a change): the first wave's comparison is also run by "
                         "its lab, right after this tree's, and the speed-up printed")
    args = ap.parse_args()
    if args.before and not (args.before / "lab" / "__init__.py").is_file():
        raise SystemExit(f"--before {args.before}: not a checkout of the lab (no lab/__init__.py there)")
    out = Path(tempfile.mkdtemp(prefix="lab-bench-"))
    try:
        _run(args, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _run(args: argparse.Namespace, out: Path) -> None:
    chosen = cases(out, args.quick)
    if args.only:
        names = set(args.only.split(",")) | ({"compare_first_wave"} if args.before else set())
        chosen = [c for c in chosen if c.name in names]
    if args.before:  # right after this tree's, so that each pair is timed side by side
        at = next(i for i, c in enumerate(chosen) if c.name == "compare_first_wave")
        argv = tuple(str(out / "first_wave_before") if a == str(out / "first_wave") else a for a in chosen[at].argv)
        chosen.insert(at + 1, Case("compare_first_wave_before", argv, f"the same, by the lab of {args.before}",
                                   args.before.resolve()))
    load_before = os.getloadavg()
    walls: dict[str, list[float]] = {c.name: [] for c in chosen}
    peaks: dict[str, float] = {c.name: 0.0 for c in chosen}
    bought: dict[str, tuple[float, float] | None] = {}
    for rep in range(args.repeats):
        for c in chosen:
            shutil.rmtree(out / "batch", ignore_errors=True)  # a batch must start afresh, not resume
            wall, peak, stdout = measure(c)
            walls[c.name].append(wall)
            peaks[c.name] = max(peaks[c.name], peak)
            if rep == args.repeats - 1:  # (the same every time: the runs are deterministic)
                bought[c.name] = purchases_of(c, stdout)
            print(f"  [{rep + 1}/{args.repeats}] {c.name}: {wall:.2f} s", file=sys.stderr)
    load_after = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs; load average before {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; "
          f"{args.repeats} runs of each case, interleaved{' (--quick sizes)' if args.quick else ''}\n")
    print("| case | what | median s | min s | max s | peak MB | purchases simulated (measured) | purchases/s |")
    print("|---|---|---|---|---|---|---|---|")
    med = {k: statistics.median(v) for k, v in walls.items()}
    for c in chosen:
        n = bought.get(c.name)
        count = f"{n[0]:,.0f} ({n[1]:,.0f})" if n else ""
        rate = f"{n[0] / med[c.name]:,.0f}" if n else ""
        print(f"| {c.name} | {c.note} | {med[c.name]:.2f} | {min(walls[c.name]):.2f} | {max(walls[c.name]):.2f} "
              f"| {peaks[c.name]:.0f} | {count} | {rate} |")
    ratios = [("batch_200x500", "run_100k", "200 small runs / one run of the same work (target <= 2)"),
              ("compare_first_wave_before", "compare_first_wave",
               "the first wave's comparison, the tree before over this one (target >= 5)"),
              ("run_apparel_1m", "naive_simpy_100k", None)]
    print("\nratios of the unrounded medians:")
    for a, b, words in ratios:
        if a in med and b in med:
            if words:
                print(f"- {words}: {med[a] / med[b]:.2f}x")
            elif (na := bought.get(a)) and (nb := bought.get(b)):
                print(f"- apparel 1M purchases/s over the naive SimPy loop's (target >= 8): "
                      f"{(na[0] / med[a]) / (nb[0] / med[b]):.2f}x, every purchase simulated "
                      f"({(na[1] / med[a]) / (nb[0] / med[b]):.2f}x counting the measured year's alone)")
    if "compare_first_wave_before" in med:
        print(f"- the two trees' {', '.join(COMPARED)}: {_same_outputs(out / 'first_wave', out / 'first_wave_before')}")


if __name__ == "__main__":
    main()
