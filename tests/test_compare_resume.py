"""A comparison's folder appears whole or not at all, a killed comparison resumes to the uninterrupted result,
and every output-folder problem is a clear error before the runs or, for a full disk, with nothing half
written (issue 14: "Work lost or mixed", the output-folder bullet; issue 13's crash-safety)."""

from __future__ import annotations

import errno
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest

from lab.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = str(ROOT / "scenarios" / "classroom.yaml")
SMALL = ["--policies", "points", "--replications", "3", "--customers", "150", "--days", "425", "--jobs", "1",
         "--no-flywheel-split"]
SLOW = ["--policies", "points,credit", "--replications", "8", "--customers", "1500", "--days", "730", "--jobs", "1",
        "--seed", "5"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
RESULTS = ("summary.json", "replications.parquet", "timeseries.parquet", "retention.parquet", "lorenz.parquet")


def lab(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", "compare", CLASSROOM, *args], capture_output=True, text=True,
                          env=ENV, timeout=600, **kw)


def partial(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def kept_runs(out: Path) -> int:
    return len(list((partial(out) / "runs").glob("*.json")))


def stop_after(args: list[str], out: Path, runs: int, sig: int) -> tuple[int, str]:
    """Start `lab compare ARGS --out OUT`, send it `sig` once `runs` runs are kept (0: once its workspace is
    made, so it is under way); its exit code and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "lab", "compare", CLASSROOM, *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 300
        while kept_runs(out) < runs or not (partial(out) / "identity.json").is_file():
            assert proc.poll() is None, "the comparison ended before it could be stopped"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def kill_after(args: list[str], out: Path, runs: int) -> None:
    """Start `lab compare ARGS --out OUT` and kill -9 it once `runs` runs are kept."""
    stop_after([*args, "--quiet"], out, runs, signal.SIGKILL)


def same_results(a: Path, b: Path) -> None:
    assert (a / "summary.json").read_text() == (b / "summary.json").read_text()
    for name in RESULTS[1:]:
        pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name), check_exact=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "cmp"
    done = lab([*SLOW, "--out", str(out)])
    assert done.returncode == 0, done.stderr
    assert "runs to do, about" in done.stderr  # the time it will take, said once the first run is timed
    return out


def test_a_comparison_killed_during_its_runs_resumes_to_the_uninterrupted_result(reference, tmp_path):
    out = tmp_path / "cmp"
    kill_after(SLOW, out, 5)
    assert not out.exists()  # nothing half written where the results go
    done = kept_runs(out)
    assert 5 <= done < 48
    again = lab([*SLOW, "--out", str(out)])
    assert again.returncode == 2 and "--resume" in again.stderr and not out.exists()
    again = lab([*SLOW, "--out", str(out), "--resume"])
    assert again.returncode == 0, again.stderr
    assert f"resuming: {done} runs already done" in again.stderr
    same_results(reference, out)
    assert not partial(out).exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["cmp"]


def test_ctrl_c_keeps_the_finished_runs_and_prints_the_command_that_continues(reference, tmp_path):
    """Ctrl-C exits 130 and says how many runs are kept, where, and the command (with --out and --resume) that
    continues; that command counts only the runs left in its progress, says how many were kept, and ends with
    the uninterrupted result."""
    out = tmp_path / "cmp"
    code, err = stop_after(SLOW, out, 3, signal.SIGINT)
    done = kept_runs(out)
    assert code == 130, err
    assert "Traceback" not in err and not out.exists()
    assert f"lab compare: interrupted; the {done} runs it finished are kept in {partial(out)}. Continue with: " in err
    command = shlex.split(err.split("Continue with: ")[1].strip())
    assert command[:2] == ["lab", "compare"] and command[-3:] == ["--out", str(out), "--resume"]
    again = subprocess.run([sys.executable, "-m", "lab", *command[1:]], capture_output=True, text=True, env=ENV,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    left = 48 - done
    assert f"compare classroom: {left}/{left} runs," in again.stderr  # the kept runs are not in its rate
    assert f"48 runs ({done} of them kept from the interrupted comparison) in " in again.stdout
    same_results(reference, out)


def test_ctrl_c_before_any_run_finished_says_nothing_was_kept_and_its_command_starts_again(reference, tmp_path):
    out = tmp_path / "cmp"
    code, err = stop_after(SLOW, out, 0, signal.SIGINT)
    assert code == 130, err
    assert "lab compare: interrupted before any run finished; nothing was kept. Start again with: lab compare " in err
    assert "Traceback" not in err and not out.exists() and not partial(out).exists()
    command = shlex.split(err.split("Start again with: ")[1].strip())
    again = subprocess.run([sys.executable, "-m", "lab", *command[1:]], capture_output=True, text=True, env=ENV,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    same_results(reference, out)


@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_a_workspace_stopped_before_any_run_is_started_afresh(tmp_path, resume, capsys):
    """A comparison stopped before its first run ended (even before its identity.json was written) kept nothing:
    the next one, with --resume or without, starts afresh instead of refusing."""
    out = tmp_path / "cmp"
    (partial(out) / "runs").mkdir(parents=True)
    assert main(["compare", CLASSROOM, *SMALL, "--out", str(out), "--quiet", *resume]) == 0, capsys.readouterr().err
    assert (out / "summary.json").is_file() and not partial(out).exists()


def test_a_resume_with_other_options_is_refused(tmp_path):
    out = tmp_path / "cmp"
    kill_after(SLOW, out, 2)
    other = lab([*SLOW[:-2], "--seed", "6", "--out", str(out), "--resume"])
    assert other.returncode == 2 and "cannot be resumed" in other.stderr
    assert "with other inputs or options (seed: 5 then, 6 now)" in other.stderr  # what differs, by name


def test_an_earlier_result_is_never_mixed_with_a_new_one(tmp_path):
    out = tmp_path / "cmp"
    first = lab([*SMALL, "--seed", "1", "--out", str(out)])
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    kill_after([*SLOW[:-2], "--seed", "2"], out, 3)  # overwriting it with seed 2, killed
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    import shutil

    shutil.rmtree(partial(out))  # start afresh, as the refusal to start over an interrupted one says
    second = lab([*SMALL, "--seed", "2", "--out", str(out)])
    assert second.returncode == 0, second.stderr
    assert json.loads((out / "summary.json").read_text())["seed"] == 2
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]


def test_output_folder_problems_are_found_before_any_run(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    for out, says in ((blocker, "is a file, not a folder"), (blocker / "sub", "is a file, not a folder"),
                      (other, "holds other files")):
        assert main(["compare", CLASSROOM, *SMALL, "--quiet", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert says in err and "internal error" not in err, err
    assert (other / "notes.txt").read_text() == "keep me" and sorted(p.name for p in other.iterdir()) == ["notes.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_folder_is_found_before_any_run(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["compare", CLASSROOM, *SMALL, "--quiet", "--out", str(ro / "cmp")]) == 2
    finally:
        ro.chmod(0o755)
    assert "you may not write there" in capsys.readouterr().err


def test_a_full_disk_while_writing_is_a_clear_error_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    out = tmp_path / "cmp"
    real = pd.DataFrame.to_parquet

    def full(self, path, *a, **k):
        if ".staging-" in str(path):  # the disk fills up while the results are written
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *a, **k)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    assert main(["compare", CLASSROOM, *SMALL, "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the disk is full" in err and "--resume" in err and "internal error" not in err, err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [".cmp.partial"]  # the runs are kept for --resume
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    assert main(["compare", CLASSROOM, *SMALL, "--quiet", "--out", str(out), "--resume"]) == 0
    assert "resuming: 6 runs already done" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp"]


def test_the_room_asked_for_shrinks_as_the_groups_write_their_runs(tmp_path, monkeypatch):
    """A comparison whose runs come in several groups (a budget of 1M holds three runs of 600 customers) checks
    the disk after each group's first run, for the runs still to come and the published copy of all six: the
    first group asks for 5 + 6 runs' room, the second, three runs later, for 2 + 6."""
    import lab.experiment.compare as compare_module

    asked: list[tuple[int, int]] = []  # (bytes asked for, runs kept when asked)
    real = compare_module.check_free_space
    out = tmp_path / "cmp"

    def recorded(where: Path, needed: int) -> None:
        asked.append((needed, kept_runs(out)))
        real(where, needed)

    monkeypatch.setattr(compare_module, "check_free_space", recorded)
    args = ["--policies", "points", "--replications", "3", "--customers", "600", "--days", "425", "--jobs", "1",
            "--no-flywheel-split", "--memory", "1M", "--quiet", "--out", str(out)]
    assert main(["compare", CLASSROOM, *args]) == 0
    assert [k for _, k in asked] == [1, 4]
    (first, _), (second, _) = asked
    assert second / first == pytest.approx((2 + 6) / (5 + 6), rel=0.05)  # (the two runs' files differ a little)


def test_too_little_free_space_is_refused_after_the_first_run(tmp_path, capsys, monkeypatch):
    import shutil

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    assert main(["compare", CLASSROOM, *SMALL, "--quiet", "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert "free; free some space" in err and "1,000 bytes" in err, err
    assert kept_runs(tmp_path / "cmp") == 1
