"""Where a comparison's wall time goes: when each process starts and ends each phase, and the CPU it spent.

`lab compare` is run in this process, as the command line runs it, on worker processes (--jobs 2 or more).
Each worker is spawned, so it imports this script first, and the script then times the calls the worker
makes where they start and end: the runs (`lab.experiment.compare._execute`, one call a group of runs), the
warm-up for drawing (`lab.report.drawing.warm_up`) and each figure (`lab.report.drawing.draw`). The parent's
own calls are not wrapped: wrapping them would mean importing the comparison before its workers start, which
the command line does not do. What the parent does after the last run (stacking the runs' frames, writing
the files and the page) is the wall time after the workers' last run. Then the CPU seconds of the parent and
of its workers (once they have exited) are printed beside the wall time.

    python benchmarks/compare_timeline.py benchmarks/specs/classroom_first_wave.yaml
    python benchmarks/compare_timeline.py scenarios/classroom.yaml --jobs 2

Arguments after the scenario are `lab compare`'s own (the default is --jobs 2, as the benchmark runs it);
--out is a temporary folder unless given. The sum of CPU seconds over the cores the machine has bounds the
wall time from below whatever the order of the work: it is the measure of how much a faster schedule could
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

#: the parent's clock at its start, handed to its workers (spawned: they import this script afresh)
START = float(os.environ.setdefault("LAB_TIMELINE_START", repr(time.time())))
#: where every process appends its lines: (seconds since START, pid, phase, start|end)
LOG = Path(os.environ.setdefault("LAB_TIMELINE_LOG",
                                  str(Path(tempfile.gettempdir()) / f"lab-timeline-{os.getpid()}.tsv")))


def _mark(phase: str, edge: str) -> None:
    with LOG.open("a") as f:
        f.write(f"{time.time() - START:.4f}\t{os.getpid()}\t{phase}\t{edge}\n")


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


if __name__ == "__mp_main__":  # a spawned worker importing this script: it times its own calls
    import lab.experiment.compare as compare_module
    import lab.report.drawing as drawing

    _timed(compare_module, "_execute", lambda a: f"({len(a[1])} runs)")
    _timed(drawing, "warm_up")
    _timed(drawing, "draw", lambda a: a[1])


def _table(wall: float) -> None:
    rows = [line.split("\t") for line in LOG.read_text().splitlines()]
    parent = str(os.getpid())
    names = {parent: "parent"}
    for _, pid, _, _ in rows:
        names.setdefault(pid, f"worker {len(names)}")
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
    cores = os.cpu_count() or 1
    print()
    if runs:
        print(f"- until the first run started: {min(a for a, _ in runs):.2f} s; the runs: "
              f"{min(a for a, _ in runs):.2f} to {max(b for _, b in runs):.2f} s; "
              f"after them: {wall - max(b for _, b in runs):.2f} s")
    if figures:
        print(f"- warm-up and figures, summed over the workers: {sum(b - a for a, b in figures):.2f} s")
    print(f"- wall {wall:.2f} s; CPU {cpu_parent:.2f} s in the parent and {cpu_workers:.2f} s in its workers, "
          f"{cpu_parent + cpu_workers:.2f} s in all: at least {(cpu_parent + cpu_workers) / cores:.2f} s of wall "
          f"on {cores} cores; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> int:
    from lab.cli import main as lab_main

    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(f"usage: python {sys.argv[0]} SCENARIO [lab compare options]")
    made = None
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        made = tempfile.mkdtemp(prefix="lab-timeline-out-")
        args += ["--out", str(Path(made) / "comparison")]
    if not any(a == "--jobs" or a.startswith("--jobs=") for a in args):
        args += ["--jobs", "2"]
    LOG.unlink(missing_ok=True)
    try:
        code = lab_main(["compare", *args])
        wall = time.time() - START
        if code == 0 and not LOG.exists():
            print("no worker process made a run: give --jobs 2 or more", file=sys.stderr)
            return 2
        if code == 0:
            _table(wall)
        return code
    finally:
        LOG.unlink(missing_ok=True)
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
