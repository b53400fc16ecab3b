"""Where a comparison's wall time goes: when each worker starts and ends each phase, and the CPU beside the wall.

`lab compare` is run in this process, as the command line runs it, on worker processes (--jobs 2 or more).
Each worker is spawned, so it imports this script first, and the script then times the calls the worker
makes where they start and end: its groups of runs (`lab.experiment.compare._execute`: the simulations, each
run's frames and its files in the comparison's workspace), its warm-up for drawing
(`lab.report.drawing.warm_up`) and each figure (`lab.report.drawing.draw`). The parent's own calls are not
wrapped: wrapping them would mean importing the comparison before its workers start, which the command line
does not do. Its work after the runs (stacking the runs' frames, writing the files and the page) overlaps the
workers' figures. The clock starts when this script starts (the interpreter's own start-up is before it) and
stops when the comparison has returned. Then the CPU seconds of the parent and of its workers (once they have
exited) are printed beside that wall time.

    python benchmarks/compare_timeline.py benchmarks/specs/classroom_first_wave.yaml
    python benchmarks/compare_timeline.py scenarios/classroom.yaml --quiet

Arguments after the scenario are `lab compare`'s own (the default is --jobs 2, as the benchmark runs it);
--out is a temporary folder unless given. The CPU seconds shared over the cores this process may use bound
the wall time from below whatever the order of the work: the measure of how much a better schedule could
still gain, against how much only less work could. The timing wrappers add a few microseconds a call.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: set by the parent for its workers (spawned, they import this script afresh): its clock at its start, and
#: the file where each worker appends its lines (seconds since the start, pid, phase, start|end)
START_VARIABLE, LOG_VARIABLE = "LAB_TIMELINE_START", "LAB_TIMELINE_LOG"
CLOCK_START = time.time()


def _mark(phase: str, edge: str) -> None:
    start, log = float(os.environ[START_VARIABLE]), os.environ[LOG_VARIABLE]
    with open(log, "a") as f:
        f.write(f"{time.time() - start:.4f}\t{os.getpid()}\t{phase}\t{edge}\n")


def _timed(module: Any, name: str, label: Any = None) -> None:
    """Replace `module.name` by a wrapper that marks its start and end; `label(args)` names the phase."""
    inner = getattr(module, name)

    @functools.wraps(inner)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        phase = name if label is None else f"{name} {label(args)}"
        _mark(phase, "start")
        try:
            return inner(*args, **kwargs)
        finally:
            _mark(phase, "end")

    setattr(module, name, wrapper)


if __name__ == "__mp_main__" and LOG_VARIABLE in os.environ:  # a worker of main(): it times its own calls
    import lab.experiment.compare as compare_module
    import lab.report.drawing as drawing

    _timed(compare_module, "_execute", lambda a: f"({len(a[1])} runs)")
    _timed(drawing, "warm_up")
    _timed(drawing, "draw", lambda a: a[1])


def _table(log: Path, wall: float) -> None:
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    names: dict[str, str] = {}  # each worker's pid, numbered as they first appear
    for _, pid, _, _ in rows:
        names.setdefault(pid, f"worker {len(names) + 1}")
    opened: dict[tuple[str, str], float] = {}
    spans: list[tuple[float, float, str, str]] = []
    for t, pid, phase, edge in rows:
        if edge == "start":
            opened[(pid, phase)] = float(t)
        else:
            spans.append((opened.pop((pid, phase)), float(t), names[pid], phase))
    print("| from s | to s | seconds | process | phase |")
    print("|---|---|---|---|---|")
    for a, b, who, phase in sorted(spans):
        print(f"| {a:.2f} | {b:.2f} | {b - a:.2f} | {who} | {phase} |")
    runs = [(a, b) for a, b, _, p in spans if p.startswith("_execute")]
    figures = [(a, b) for a, b, _, p in spans if p.startswith(("draw", "warm_up"))]
    mine = resource.getrusage(resource.RUSAGE_SELF)
    theirs = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_parent, cpu_workers = mine.ru_utime + mine.ru_stime, theirs.ru_utime + theirs.ru_stime
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    print()
    if runs:
        print(f"- from this script's start to the first run: {min(a for a, _ in runs):.2f} s; the runs: "
              f"{min(a for a, _ in runs):.2f} to {max(b for _, b in runs):.2f} s; "
              f"from the last run's end to the end: {wall - max(b for _, b in runs):.2f} s")
    if figures:
        print(f"- warm-up and figures, summed over the workers: {sum(b - a for a, b in figures):.2f} s")
    print(f"- wall {wall:.2f} s; CPU {cpu_parent:.2f} s in the parent and {cpu_workers:.2f} s in its workers, "
          f"{cpu_parent + cpu_workers:.2f} s in all: at least {(cpu_parent + cpu_workers) / cores:.2f} s of wall "
          f"on {cores} cores; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _given(args: list[str], option: str) -> tuple[int, str | None] | None:
    """Where `option` (or a prefix of it, as argparse accepts) is among `args`, and its value; None if absent."""
    for i, a in enumerate(args):
        name, eq, value = a.partition("=")
        if len(name) > 2 and option.startswith(name):
            return i, (value if eq else (args[i + 1] if i + 1 < len(args) else None))
    return None


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(f"usage: python {sys.argv[0]} SCENARIO [lab compare options]")
    jobs = _given(args, "--jobs")
    if jobs is None:
        args += ["--jobs", "2"]
    elif not (value := jobs[1] or "").isdigit() or int(value) < 2:
        print(f"--jobs {jobs[1]}: the timeline is of a comparison on worker processes; give --jobs 2 or more",
              file=sys.stderr)
        return 2
    from lab.cli import main as lab_main

    scratch = Path(tempfile.mkdtemp(prefix="lab-timeline-"))
    if _given(args, "--out") is None:
        args += ["--out", str(scratch / "comparison")]
    log = scratch / "timeline.tsv"
    os.environ[START_VARIABLE], os.environ[LOG_VARIABLE] = repr(CLOCK_START), str(log)
    try:
        code = lab_main(["compare", *args])
        wall = time.time() - CLOCK_START
        if code == 0 and not log.exists():
            print("no worker made a run (was everything already done in the --out given with --resume?)",
                  file=sys.stderr)
            return 2
        if code == 0:
            _table(log, wall)
        return code
    finally:
        del os.environ[START_VARIABLE], os.environ[LOG_VARIABLE]
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
