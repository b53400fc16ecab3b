"""One driver per batch store: the lock, a stale lock after kill -9, workers that die with their driver,
and read_dataset refusing (or repairing) a store that holds runs twice (issue 14, "Work lost or mixed")."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lab.batch import BatchError, read_dataset, run_batch
from lab.batch.lock import StoreLock
from tests.conftest import CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = CLASSROOM_DAY0  # a day-0 cohort: the specs run a few weeks, the shipped store launches on day 365

SPEC = f"""\
name: lock_test
scenario: {CLASSROOM}
customers: 150
days: 40
policies: [none, points]
replications: 2
seed: 11
factors:
  budget:
    path: store.marketing.budget_per_year
    low: 0
    high: 20000
design: {{lhs: {{samples: 6, seed: 5}}}}
"""


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def reference(spec, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "store"
    assert run_batch(spec, out, jobs=1, flush_runs=4, stream=open(os.devnull, "w")).completed == 24
    return out


def children(parent: int) -> list[int]:
    """Live processes whose parent is `parent`."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def lock_holder(out: Path) -> dict:
    try:
        return json.loads((out / ".lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_second_driver_refuses_and_a_killed_drivers_lock_and_workers_are_gone(spec, reference, tmp_path):
    out = tmp_path / "store"
    cmd = [sys.executable, "-m", "lab", "batch", str(spec), "--out", str(out), "--jobs", "2", "--flush-runs", "2"]
    slow = cmd + ["--customers", "3000", "--days", "365"]  # long enough to be raced and killed
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(slow, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not (lock_holder(out).get("pid") == first.pid and len(children(first.pid)) >= 2
                   and len(list((out / "runs").glob("part-*.parquet"))) >= 1):
            assert first.poll() is None, "the batch ended before the test could race it"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for extra in ([], ["--resume"]):
            second = subprocess.run(slow + extra, capture_output=True, text=True, timeout=120, env=env)
            assert second.returncode == 2, second.stderr
            assert f"is being written by process {first.pid}" in second.stderr
            assert "--resume" in second.stderr
        workers = children(first.pid)
        assert workers
    finally:
        first.send_signal(signal.SIGKILL)  # the driver only: its workers must follow it by themselves
        first.wait()
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [w for w in workers if alive(w)]
    for w in left:  # tidy up what this test started before failing
        os.kill(w, signal.SIGKILL)
    assert not left, f"workers {left} outlived their driver"
    # the killed driver's lock is released by the kernel: nothing stale is left in the way (a full resume after
    # kill -9 is tests/test_batch.py::test_resume_after_kill_9_ends_with_the_uninterrupted_dataset)
    assert (out / ".lock").is_file() and not StoreLock(out).held_elsewhere()
    with StoreLock(out):
        assert StoreLock(out).held_elsewhere()


def test_a_store_holding_runs_twice_is_refused_or_repaired(reference, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(reference, store)
    chunks = sorted((store / "runs").glob("part-*.parquet"))
    assert len(chunks) >= 2
    # what two drivers on one store left: a chunk written again under another number
    for part in ("runs", "series"):
        shutil.copy(store / part / chunks[0].name, store / part / "part-00090.parquet")
    with pytest.raises(BatchError, match=r"4 runs are stored more than once .*repair=True"):
        read_dataset(store)
    fixed = read_dataset(store, repair=True)
    ref = read_dataset(reference)
    pd.testing.assert_frame_equal(fixed.runs, ref.runs)
    pd.testing.assert_frame_equal(fixed.series, ref.series)
    assert len(fixed.repairs) == 1 and "4 runs" in fixed.repairs[0]
    assert fixed.runs.groupby("run_id").size().eq(len(ref.manifest["outcomes"])).all()


def test_a_chunk_that_is_not_whole_is_refused_and_a_missing_run_is_named(reference, tmp_path):
    import pyarrow.parquet as pq

    store = tmp_path / "store"
    shutil.copytree(reference, store)
    victim = sorted((store / "runs").glob("part-*.parquet"))[1]
    t = pq.read_table(victim)
    pq.write_table(t.slice(0, t.num_rows - 1), victim)  # one outcome row of one run lost
    with pytest.raises(BatchError, match=r"part-00001 are not whole"):
        read_dataset(store)
    fixed = read_dataset(store, repair=True)
    lost = set(t.column("run_id").to_pylist())
    assert set(fixed.missing) == lost and len(lost) == 4
    assert not lost & set(fixed.runs["run_id"])
    assert read_dataset(reference).missing == ()
