"""One dataset, one arithmetic: the machine's fingerprint (lab.experiment.numerics), and the batch and comparison
refusing to mix runs of machines that compute otherwise (a resume elsewhere, a Dask worker of another kind).

A machine without AVX-512 is played by numpy's own switch, NPY_DISABLE_CPU_FEATURES, read when numpy is
imported: numpy then uses its AVX2 or plain code for exp, log, log1p, power..., whose last bits differ. On a
machine without AVX-512 the switch changes nothing, and the tests that need two kinds of machine are skipped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lab.batch import BatchError, run_batch
from lab.batch.executors import DaskRunner
from lab.batch.load import load_spec
from lab.batch.tasks import stacks_of
from lab.experiment.numerics import SAME_BITS, differences, numerics
from tests.conftest import CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]
OTHER = {**os.environ, "PYTHONPATH": str(ROOT), "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}
SAME = {**os.environ, "PYTHONPATH": str(ROOT)}
FINGERPRINT = [sys.executable, "-c", "import json; from lab.experiment.numerics import numerics; "
               "print(json.dumps(numerics()))"]


def fingerprint(env: dict[str, str]) -> dict:
    done = subprocess.run(FINGERPRINT, capture_output=True, text=True, env=env, timeout=120, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def other_kind() -> dict:
    """The fingerprint of a process with numpy's AVX-512 code switched off; skips where that changes nothing."""
    fp = fingerprint(OTHER)
    if fp["probe"] == numerics()["probe"]:
        pytest.skip("this machine has no AVX-512 code for numpy to switch off: one kind of machine only")
    return fp


def write_spec(folder: Path) -> Path:
    path = folder / "spec.yaml"
    path.write_text(f"name: numerics\nscenario: {CLASSROOM_DAY0}\ncustomers: 60\ndays: 40\npolicies: [none, points]\n"
                    "replications: 3\nseed: 3\nfactors: {}\n")
    return path


def lab(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env, timeout=600)


def test_the_fingerprint_is_the_same_in_every_process_of_one_machine():
    here = numerics()
    assert fingerprint(SAME) == here
    assert set(SAME_BITS) <= set(here) and len(here["probe"]) == 16
    assert here == json.loads(json.dumps(here))  # a manifest's JSON holds it as it is
    assert differences(here, dict(here)) == []


def test_differences_name_each_field_and_numpy_function_that_moved():
    a = {"probe": "aa", "numpy": "2.4.6", "scipy": "1.17.1", "python": "3.11.7", "machine": "x86_64",
         "libc": "glibc 2.36", "numpy_cpu_code": {"exp": "X86_V4", "log": "X86_V4"}}
    b = {**a, "probe": "bb", "numpy_cpu_code": {"exp": "X86_V3", "log": "X86_V4"}}
    assert differences(a, b) == ["probe: aa then, bb now",
                                 "numpy's CPU code for float64 (then / now): exp X86_V4 / X86_V3"]
    assert differences(a, {**a, "scipy": "1.18.0"}, "here", "there") == ["scipy: 1.17.1 here, 1.18.0 there"]


def test_numpy_without_its_avx512_code_gives_another_probe(other_kind):
    here = numerics()
    assert other_kind["probe"] != here["probe"]
    assert other_kind["numpy_cpu_code"] != here["numpy_cpu_code"]  # and the fingerprint says why
    assert any(d.startswith("numpy's CPU code") for d in differences(here, other_kind))


def test_a_batch_started_on_another_kind_of_machine_is_not_resumed_here(tmp_path, other_kind):
    spec, out = write_spec(tmp_path), tmp_path / "store"
    first = lab(["batch", str(spec), "--out", str(out), "--jobs", "1"], OTHER)
    assert first.returncode == 0, first.stderr
    assert json.loads((out / "manifest.json").read_text())["numerics"] == other_kind
    again = lab(["batch", str(spec), "--out", str(out), "--jobs", "1", "--resume"], SAME)
    assert again.returncode == 2
    assert "compute floating-point functions otherwise" in again.stderr and "--allow-code-change" in again.stderr
    assert f"probe: {other_kind['probe']} then, {numerics()['probe']} now" in again.stderr
    allowed = lab(["batch", str(spec), "--out", str(out), "--jobs", "1", "--resume", "--allow-code-change"], SAME)
    assert allowed.returncode == 0, allowed.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["numerics"] == other_kind  # the batch's; each session records its own
    assert [s["numerics"]["probe"] for s in manifest["sessions"]] == [other_kind["probe"], numerics()["probe"]]


@pytest.mark.parametrize("field", SAME_BITS)
def test_a_store_whose_workers_computed_otherwise_is_refused_on_resume(tmp_path, field):
    spec, out = write_spec(tmp_path), tmp_path / "store"
    run_batch(spec, out, jobs=1, stream=open(os.devnull, "w"))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["numerics"][field] = "other"
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BatchError, match=f"{field}: other then"):
        run_batch(spec, out, jobs=1, resume=True)
    allowed = run_batch(spec, out, jobs=1, resume=True, allow_code_change=True, stream=open(os.devnull, "w"))
    assert allowed.skipped == 6 and allowed.completed == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["numerics"][field] == "other" and manifest["sessions"][-1]["numerics"] == numerics()
    for other in ("machine", "libc", "python"):  # what explains a difference does not by itself refuse
        manifest["numerics"] = {**numerics(), other: "elsewhere"}
        (out / "manifest.json").write_text(json.dumps(manifest))
        assert run_batch(spec, out, jobs=1, resume=True, stream=open(os.devnull, "w")).skipped == 6


def test_a_comparison_killed_on_another_kind_of_machine_is_not_resumed_here(tmp_path, other_kind):
    out = tmp_path / "cmp"
    args = ["compare", str(ROOT / "scenarios" / "classroom.yaml"), "--policies", "points,credit", "--replications",
            "8", "--customers", "1500", "--days", "730", "--jobs", "1", "--seed", "5", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "lab", *args, "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=OTHER)
    runs = out.parent / f".{out.name}.partial" / "runs"
    try:
        deadline = time.monotonic() + 300
        while len(list(runs.glob("*.json"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    again = lab([*args, "--resume"], SAME)
    assert again.returncode == 2 and "cannot be resumed" in again.stderr and "arithmetic" in again.stderr


@contextmanager
def worker_of_the_other_kind(address: str) -> Iterator[None]:
    """A Dask worker process, joined to the scheduler at `address`, with numpy's AVX-512 code switched off."""
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                               "--no-nanny", "--no-dashboard"], env=OTHER, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=60)


@pytest.fixture()
def cluster(other_kind):
    """A local Dask cluster of one worker of this machine's kind, and its client."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.WARNING) as cluster, distributed.Client(cluster) as client:
        yield cluster, client


def test_a_dask_cluster_of_two_kinds_of_worker_is_refused_before_anything_is_written(tmp_path, cluster):
    local, client = cluster
    spec, out = write_spec(tmp_path), tmp_path / "store"
    with worker_of_the_other_kind(local.scheduler_address):
        client.wait_for_workers(2, timeout=120)
        with pytest.raises(BatchError, match="compute floating-point functions differently") as refusal:
            run_batch(spec, out, executor="dask", client=client)
    assert "numpy's CPU code for float64" in str(refusal.value)
    assert not (out / "manifest.json").exists()


def test_the_results_of_a_worker_of_another_kind_that_joins_later_are_not_recorded(tmp_path, cluster):
    local, client = cluster
    batch = load_spec(write_spec(tmp_path))
    runner = DaskRunner(batch, None, client=client)
    assert runner.numerics()["probe"] == numerics()["probe"]  # the batch's workers: this machine's kind
    tasks = [(0, r) for r in range(batch.replications)]
    with worker_of_the_other_kind(local.scheduler_address):
        client.wait_for_workers(2, timeout=120)
        local.scale(0)  # this kind leaves, so every stack runs on the other kind
        deadline = time.monotonic() + 120
        while len(client.scheduler_info()["workers"]) > 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        results = [r for r in runner.results(stacks_of(batch, tasks, 1)) if r is not None]
    assert results == [] and sorted(runner.unfinished) == tasks
    assert runner.errors and all("computes floating-point functions otherwise" in e for e in runner.errors)


def test_an_unreachable_scheduler_writes_nothing(tmp_path):
    pytest.importorskip("dask.distributed")
    spec, out = write_spec(tmp_path), tmp_path / "store"
    with pytest.raises(BatchError, match="cannot reach the Dask scheduler"):
        run_batch(spec, out, executor="dask", address="tcp://127.0.0.1:9")
    assert not (out / "manifest.json").exists()
    shutil.rmtree(out, ignore_errors=True)


def test_a_comparison_records_the_arithmetic_it_ran_with(tmp_path):
    out = tmp_path / "cmp"
    done = lab(["compare", str(ROOT / "scenarios" / "classroom.yaml"), "--policies", "points", "--replications", "2",
                "--customers", "100", "--days", "400", "--jobs", "1", "--no-flywheel-split", "--quiet", "--out",
                str(out)], SAME)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "manifest.json").read_text())["numerics"] == numerics()
