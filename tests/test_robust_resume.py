"""A robust comparison killed with kill -9 during its worlds' runs resumes to the uninterrupted result: its runs'
outcomes are kept in the comparison's workspace as they come (issue 12, through issue 14's --resume)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = str(ROOT / "scenarios" / "classroom.yaml")
# the least memory budget, 1M, holds fewer runs of 150 customers than the 16 runs of the robust study, so its
# runs come in more than one group (lab.experiment.grouping) and a kill can fall between two
ARGS = ["--policies", "points", "--replications", "2", "--customers", "150", "--days", "425", "--jobs", "1",
        "--no-flywheel-split", "--seed", "4", "--robust", "8", "--robust-replications", "1", "--memory", "1M",
        "--quiet"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _lab(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", "compare", CLASSROOM, *args], capture_output=True, text=True,
                          env=ENV, timeout=600)


def _world_runs(out: Path) -> int:
    return len(list((out.parent / f".{out.name}.partial" / "runs").glob("w*.json")))


def test_a_robust_comparison_killed_during_its_worlds_resumes_to_the_uninterrupted_result(tmp_path):
    ref = tmp_path / "ref"
    done = _lab([*ARGS, "--out", str(ref)])
    assert done.returncode == 0, done.stderr
    out = tmp_path / "cmp"
    proc = subprocess.Popen([sys.executable, "-m", "lab", "compare", CLASSROOM, *ARGS, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.monotonic() + 300
        while _world_runs(out) < 5:
            assert proc.poll() is None, "the comparison ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not out.exists()
    kept = _world_runs(out)
    assert 5 <= kept < 16  # 2 policies x 8 worlds x 1 replication
    again = _lab([*ARGS, "--out", str(out), "--resume"])
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    a, b = json.loads((ref / "summary.json").read_text()), json.loads((out / "summary.json").read_text())
    assert a["robustness"] == b["robustness"] and a == b


def test_a_resume_with_other_robust_options_is_refused(tmp_path):
    out = tmp_path / "cmp"
    part = out.parent / f".{out.name}.partial"
    proc = subprocess.Popen([sys.executable, "-m", "lab", "compare", CLASSROOM, *ARGS, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.monotonic() + 300
        while _world_runs(out) < 1:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert part.is_dir()
    other = [("16" if a == "8" else a) for a in ARGS]
    again = _lab([*other, "--out", str(out), "--resume"])
    assert again.returncode == 2 and "cannot be resumed" in again.stderr
