"""A batch's replications run in stacks: the dataset is the same whatever the stacking, and kill -9 then --resume
in the middle of a stack ends with exactly the uninterrupted dataset."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.batch import load_spec, read_dataset, run_batch
from lab.batch.tasks import stacks_of
from lab.cliargs import memory_size
from lab.experiment.memory import machine_memory
from tests.conftest import CLASSROOM_DAY0
from tests.test_batch import assert_same_dataset

ROOT = Path(__file__).resolve().parents[1]

SPEC = f"""\
name: stacked
scenario: {CLASSROOM_DAY0}
customers: 120
days: 40
policies: [none, points]
replications: 8
seed: 3
factors:
  budget:
    path: store.marketing.budget_per_year
    levels: [0, 20000]
design: grid
"""


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stacked") / "spec.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def alone(spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The batch with every run alone: a budget of one byte leaves one world per stack."""
    out = tmp_path_factory.mktemp("alone") / "store"
    res = run_batch(spec, out, jobs=1, memory=1, stream=open(os.devnull, "w"))
    assert res.completed == res.total == 2 * 8 * 2 and res.failed == 0
    return out


def test_the_replications_of_a_design_point_share_stacks_sized_to_the_budget(spec: Path) -> None:
    batch = load_spec(spec)
    tasks = [(p, r) for p in range(2) for r in range(8)]
    # the marketing budget is structure (not a per-world parameter), so each point has stacks of its own
    assert stacks_of(batch, tasks, jobs=1) == [((0, (0, 1, 2, 3, 4, 5, 6, 7)),), ((1, (0, 1, 2, 3, 4, 5, 6, 7)),)]
    # three processes: stacks of at most ceil(16 / 3) = 6 worlds, enough for one per process
    assert stacks_of(batch, tasks, jobs=3) == [((p, reps),) for p in range(2) for reps in ((0, 1, 2, 3, 4, 5), (6, 7))]
    assert stacks_of(batch, tasks, jobs=1, memory=1) == [((p, (r,)),) for p in range(2) for r in range(8)]
    assert stacks_of(batch, [(1, 5), (1, 7), (0, 2)], jobs=1) == [((1, (5, 7)),), ((0, (2,)),)]


def test_a_stacked_batch_is_the_batch_of_runs_alone(spec: Path, alone: Path, tmp_path: Path) -> None:
    res = run_batch(spec, tmp_path / "stacked", jobs=1, stream=open(os.devnull, "w"))
    assert res.completed == 32
    assert_same_dataset(alone, tmp_path / "stacked")


def test_kill_9_in_the_middle_of_the_stacks_then_resume_gives_the_batch_of_runs_alone(spec: Path, alone: Path,
                                                                                    tmp_path: Path) -> None:
    out = tmp_path / "killed"
    done = kill_9_after_the_first_chunk_then_resume(spec, out)
    assert 0 < done < 32  # killed after the first stack's runs were written, before the second's
    assert_same_dataset(alone, out)  # the runs left were stacked afresh, and still give the same bits


def kill_9_after_the_first_chunk_then_resume(spec: Path, out: Path) -> int:
    """Run `lab batch spec` in one process, kill -9 it once its first chunk is on disk, resume it to the end;
    returns how many runs the killed batch had written."""
    cmd = [sys.executable, "-m", "lab", "batch", str(spec), "--out", str(out), "--jobs", "1", "--flush-runs", "1"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not list((out / "runs").glob("part-*.parquet")):
            assert proc.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = int(read_dataset(out).runs["run_id"].nunique())
    again = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{done} already done" in again.stderr
    return done


@pytest.mark.parametrize(("text", "expected"), [
    ("4G", 4 * 2**30), ("512M", 512 * 2**20), ("1.5GB", int(1.5 * 2**30)), ("2GiB", 2 * 2**30),
    ("300 MB", 300 * 2**20), ("2048k", 2 * 2**20),
])
def test_memory_sizes_read_as_bytes(text: str, expected: int) -> None:
    assert memory_size(text) == expected


def test_a_memory_share_is_of_this_machines_memory() -> None:
    total = machine_memory()
    assert total is not None
    assert memory_size("50%") == total // 2 or memory_size("50%") == int(total * 50 / 100)


@pytest.mark.parametrize(("text", "says"), [
    ("lots", "expected a size like 4G"), ("0%", "between 0% and 100%"), ("150%", "between 0% and 100%"),
    ("100", "at least 1M"), ("nanG", "at least 1M"), ("-2G", "at least 1M"),
])
def test_a_bad_memory_size_says_what_is_expected(text: str, says: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=says):
        memory_size(text)


def test_memory_on_the_command_line_is_checked_before_any_run(spec: Path, tmp_path: Path) -> None:
    got = subprocess.run([sys.executable, "-m", "lab", "batch", str(spec), "--out", str(tmp_path / "x"),
                          "--memory", "plenty"], capture_output=True, text=True, timeout=60)
    assert got.returncode == 2
    assert "--memory" in got.stderr and "expected a size like 4G" in got.stderr
    assert not (tmp_path / "x").exists()
