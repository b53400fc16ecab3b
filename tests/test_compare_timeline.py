"""benchmarks/compare_timeline.py times a comparison's phases in each worker and sets the CPU beside the wall."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "compare_timeline.py"


def _timeline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(CLASSROOM_DAY0), "--policies", "none,points",
                           "--replications", "2", "--customers", "200", "--days", "30", "--quiet", *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_the_timeline_has_every_workers_runs_and_figures_and_the_cpu_bound() -> None:
    done = _timeline()
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^\| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| (worker \d) \| (.+) \|$", done.stdout, re.M)
    for start, end, seconds, _, _ in rows:
        assert float(end) >= float(start)
        assert abs(float(end) - float(start) - float(seconds)) <= 0.011  # (each rounded to 0.01)
    runs = [int(m) for *_, phase in rows for m in re.findall(r"^_execute \((\d+) runs\)$", phase)]
    assert sum(runs) == 8  # two policies x two replications x the flywheel whole and cut, in groups on the workers
    drawn = {phase[len("draw "):] for *_, phase in rows if phase.startswith("draw ")}
    assert {"flywheel", "retention", "forest"} <= drawn
    assert sum(phase == "warm_up" for *_, phase in rows) == 2  # one for each job, on whichever worker is free
    found = re.search(r"wall ([\d.]+) s; CPU ([\d.]+) s in the parent and ([\d.]+) s in its workers, ([\d.]+) s in "
                      r"all: at least ([\d.]+) s of wall on (\d+) cores", done.stdout)
    assert found, done.stdout
    wall, parent, workers, total, least, cores = map(float, found.groups())
    assert workers > parent > 0  # the runs and the figures are the workers'
    assert abs(parent + workers - total) <= 0.011
    assert abs(least - total / cores) <= 0.011
    assert wall > max(float(end) for _, end, *_ in rows)


def test_one_job_is_refused_before_any_run_with_what_to_give(tmp_path: Path) -> None:
    for k, given in enumerate((["--jobs", "1"], ["--jobs=1"], ["--job", "1"])):
        out = tmp_path / f"comparison{k}"
        done = _timeline(*given, "--out", str(out))
        assert done.returncode == 2, given
        assert "give --jobs 2 or more" in done.stderr
        assert not out.exists()  # refused before the comparison, not after it
