"""`lab compare --jobs 2`: its pools' workers die with the driver, even after kill -9 (no orphan holds memory),
those of the comparison's runs and those of its robust study's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import day0_file

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


def worker_pids(driver: int) -> list[int]:
    """Pool worker processes started by `driver` (children whose command line is a spawned worker)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == driver and b"--multiprocessing-fork" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def alive(pid: int) -> bool:
    """Whether `pid` is still a live process (a zombie waiting to be reaped is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("stage", ["runs", "robust"])
def test_kill_9_of_the_driver_takes_its_workers_with_it(tmp_path, stage):
    out = tmp_path / "cmp"
    size = ["--replications", "200"] if stage == "runs" else ["--replications", "2", "--robust", "400"]
    cmd = [sys.executable, "-m", "lab", "compare", str(day0_file(tmp_path)), "--policies", "points", "--jobs", "2",
           *size, "--customers", "1500", "--days", "60", "--quiet", "--out", str(out)]
    kept = "runs/*.json" if stage == "runs" else "runs/w*.json"  # (a robust study's runs: lab.experiment.folder)
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        # mid-stage: both workers up and runs of the stage finished (kept in the comparison's workspace)
        while len(workers) < 2 or not list(out.parent.glob(f".{out.name}.partial/{kept}")):
            assert proc.poll() is None, "the comparison ended before it could be killed"
            assert time.monotonic() < deadline, "the comparison's workers never started"
            time.sleep(0.05)
            workers = worker_pids(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone: its workers must follow it
        proc.wait()
        gone = time.monotonic() + 10
        while any(alive(w) for w in workers) and time.monotonic() < gone:
            time.sleep(0.1)
        left = [w for w in workers if alive(w)]
        assert not left, f"workers {left} outlived their driver by 10 s"
    finally:
        for w in workers:  # never leave a process behind, whatever the outcome
            if alive(w):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
