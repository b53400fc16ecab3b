"""Scenario batches: spec checking, designs, factor paths, the store's determinism and resume guarantee, the report."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.errors import LabError
from lab.batch import BatchError, apply_point, load_spec, read_dataset, run_batch, run_task
from lab.batch.dataset import saved_runs
from lab.batch.design import Axis, Grid, LatinHypercube, Sobol, design_points
from lab.batch.overrides import PathError, apply, get, resolve
from lab.cli import main as lab_main
from lab.metrics.batch_summary import summary_table, winners
from lab.metrics.sensitivity import sensitivity_indices
from lab.experiment.processes import spawn_pool
from lab.experiment.run import run_policy
from lab.metrics.outcomes import OUTCOMES
from lab.metrics.stats import mean_ci, paired_diff_ci
from lab.policy.loader import compile_checked, read_policy
from lab.scenario.loader import load_scenario, read_scenario, world_of
from tests.conftest import CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]


def main_batch(argv: list[str]) -> int:
    """`lab batch ARGV`, through the command line's entry point."""
    return lab_main(["batch", *argv])


def main_batch_report(argv: list[str]) -> int:
    """`lab batch-report ARGV`, through the command line's entry point."""
    return lab_main(["batch-report", *argv])
CLASSROOM = CLASSROOM_DAY0  # a day-0 cohort: the specs run a few weeks, the shipped store launches on day 365
SMALL = {"customers": 100, "days": 30}


def write_spec(folder: Path, body: str, name: str = "spec.yaml") -> Path:
    """A spec file in `folder` whose base scenario is the classroom store."""
    text = f"name: test_batch\nscenario: {CLASSROOM}\ncustomers: {SMALL['customers']}\ndays: {SMALL['days']}\n" + body
    path = folder / name
    path.write_text(text)
    return path


GRID = """\
policies: [none, points]
replications: 2
seed: 7
streams: independent
factors:
  sens:
    path: population.segments.bargain_hunters.reward_sensitivity
    levels: [0.5, 2.5]
  earn:
    path: policies.points.rules.earn.do.0.award.amount
    template: "floor(purchase.amount * {value})"
    low: 1
    high: 2
    steps: 2
design: grid
"""

LONG = """\
policies: [none, points]
replications: 2
seed: 11
factors:
  budget:
    path: store.marketing.budget_per_year
    low: 0
    high: 20000
design: {lhs: {samples: 6, seed: 5}}
"""


def line_col(text: str, needle: str, occurrence: int = 0, start: int = 0) -> tuple[int, int]:
    """1-based line and column of the `occurrence`-th appearance of `needle` in `text` from offset `start`."""
    at = start - 1
    for _ in range(occurrence + 1):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return line, at - (text.rfind("\n", 0, at) + 1) + 1


# --------------------------------------------------------------------------- spec validation
BAD_SPECS = [
    ("typo in a dict key of the path", """\
factors:
  s: {path: population.segments.bargain_huntrs.reward_sensitivity, low: 0, high: 3, steps: 2}
""", "population.segments.bargain_huntrs", "did you mean 'bargain_hunters'?"),
    ("typo in a field of the path", """\
factors:
  s: {path: store.marketing.budget_per_yaer, low: 0, high: 3, steps: 2}
""", "store.marketing", "did you mean 'budget_per_year'?"),
    ("unknown rule id", """\
factors:
  s: {path: policies.points.rules.redem.do.0.redeem.discount, low: 1, high: 3, steps: 2}
""", "policies.points.rules.redem", "did you mean 'redeem'?"),
    ("action entered without its tag", """\
factors:
  s: {path: policies.points.rules.redeem.do.0.discount, low: 1, high: 3, steps: 2}
""", "policies.points.rules.redeem.do.0.discount",
     "did you mean 'policies.points.rules.redeem.do.0.redeem.discount'?"),
    ("policy not in the batch", """\
policies: [points]
factors:
  s: {path: policies.pionts.points.points.expiry_days, low: 30, high: 90, steps: 2}
""", "policies.pionts", "did you mean 'points'?"),
    ("misspelt spec key", """\
replicatons: 3
""", "replicatons", "did you mean 'replications'?"),
    ("range beyond the parameter's bounds", """\
factors:
  s: {path: population.segments.regulars.reward_sensitivity, low: 0, high: 7, steps: 2}
""", "7, steps", ">= 0 and <= 5"),
    ("a level of the wrong type", """\
factors:
  s: {path: flywheel, levels: [true, "off"]}
""", '"off"', "not true or false"),
    ("literal level misspelt", """\
factors:
  s: {path: population.segments.regulars.purchases.bgnbd.time_unit, levels: [weeks, dayz]}
""", "dayz", "did you mean 'days'?"),
    ("a path ending at a trigger", """\
policies: [points]
factors:
  s: {path: policies.points.rules.earn.on.purchase, levels: [x]}
""", "policies.points.rules.earn.on.purchase", "has no values a factor can set"),
    ("steps with a sampled design", """\
factors:
  s: {path: store.marketing.budget_per_year, low: 0, high: 100, steps: 3}
design: {lhs: {samples: 4}}
""", "3}", "steps only applies to grid designs"),
    ("grid range without steps", """\
factors:
  s: {path: store.marketing.budget_per_year, low: 0, high: 100}
""", "{path", "needs steps"),
    ("sobol samples not a power of two", """\
factors:
  s: {path: store.marketing.budget_per_year, low: 0, high: 100}
design: {sobol: {samples: 12}}
""", "12", "use samples: 8 or 16"),
    ("reserved column name", """\
factors:
  value: {path: store.marketing.budget_per_year, levels: [0, 100]}
""", "{path", "also a column of the dataset"),
    ("unknown policy", """\
policies: [none, piont]
""", "piont", "did you mean 'points'?"),
    ("factor fights the customers override", """\
factors:
  n: {path: population.customers, levels: [100, 200]}
""", "population.customers", "remove one of them"),
]


@pytest.mark.parametrize("label,body,needle,message", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_specs_are_reported_at_file_line_col(tmp_path, label, body, needle, message):
    spec = write_spec(tmp_path, body)
    text = spec.read_text()
    with pytest.raises(LabError) as exc:
        load_spec(spec)
    line, col = line_col(text, needle, start=len(text) - len(body))  # not in the header's paths
    wanted = [d for d in exc.value.diagnostics if message in d.message]
    assert wanted, f"no diagnostic says {message!r}: {exc.value}"
    d = wanted[0]
    assert d.file == str(spec)
    assert d.line == line, str(d)
    assert d.col == col, str(d)
    assert str(d).startswith(f"{spec}:{line}:{col}: ")


def test_an_expression_factor_is_compiled_with_its_values_before_any_run(tmp_path):
    """A template that cannot parse, a level naming an unknown field: refused at the spec's own place, not found
    as every run of their points failing. The levels that compile say nothing."""
    body = """\
policies: [none, points]
factors:
  rate: {path: policies.points.rules.earn.do.0.award.amount, template: "floor(purchase.amount * {value}",
         levels: [1, 2]}
  when: {path: policies.points.rules.redeem.when,
         levels: ["customer.points['points'] >= 400", "customer.pionts['points'] > 1"]}
"""
    spec = write_spec(tmp_path, body)
    with pytest.raises(LabError) as exc:
        load_spec(spec)
    said = [(d.line, d.message) for d in exc.value.diagnostics]
    assert said == [
        (7, "factor 'rate': its template (with {value} = 1.0) makes an expression that does not compile: invalid "
            "syntax: '(' was never closed; expressions use 'and', 'or', 'not' and '==' as in Python"),
        (10, "factor 'when': its level \"customer.pionts['points'] > 1\" makes an expression that does not compile: "
            "unknown field 'customer.pionts'; did you mean 'customer.points'?")], said
    mended = body.replace("{value}\"", "{value})\"").replace("pionts", "points")
    assert load_spec(write_spec(tmp_path, mended)).factors


def test_a_bad_spec_is_a_clear_message_and_exit_2_on_the_command_line(tmp_path, capsys):
    spec = write_spec(tmp_path, BAD_SPECS[0][1])
    assert main_batch([str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:" in err and "did you mean 'bargain_hunters'?" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_shipped_example_spec_loads():
    batch = load_spec(ROOT / "scenarios" / "batches" / "reward_sensitivity.yaml")
    assert batch.policy_names[0] == "none" and "points" in batch.policy_names
    assert {f.name for f in batch.factors} == {"sensitivity", "earn_rate"}
    assert len(batch.points) >= 4


# --------------------------------------------------------------------------- designs
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), d=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       low=st.floats(-1e3, 1e3), width=st.floats(1e-3, 1e3))
def test_lhs_puts_one_point_in_each_stratum_of_every_factor(n, d, seed, low, width):
    axes = [Axis(f"x{j}", "float", low, low + width) for j in range(d)]
    pts = design_points(axes, LatinHypercube(samples=n, seed=seed), seed)
    assert len(pts) == n
    for a in axes:
        v = np.array([p[a.name] for p in pts])
        assert np.all((v >= a.low) & (v <= a.high))
        strata = np.minimum(np.floor((v - a.low) / width * n).astype(int), n - 1)
        assert sorted(strata) == list(range(n))
    assert design_points(axes, LatinHypercube(samples=n, seed=seed), seed) == pts


@settings(max_examples=25, deadline=None)
@given(k=st.integers(0, 7), seed=st.integers(0, 2**32 - 1))
def test_sobol_points_lie_in_bounds_and_depend_only_on_the_seed(k, seed):
    n = 2**k
    axes = [Axis("a", "float", 2.0, 5.0), Axis("b", "int", 1, 4), Axis("c", "choice", levels=("x", "y", "z"))]
    pts = design_points(axes, Sobol(samples=n, seed=seed), seed)
    assert len(pts) == n
    assert all(2.0 <= p["a"] <= 5.0 and p["b"] in (1, 2, 3, 4) and p["c"] in ("x", "y", "z") for p in pts)
    assert all(isinstance(p["b"], int) for p in pts)
    assert design_points(axes, Sobol(samples=n, seed=seed), seed) == pts
    if n >= 4:
        assert design_points(axes, Sobol(samples=n, seed=seed + 1), seed + 1) != pts


def test_lhs_of_a_whole_number_range_uses_each_value_once():
    pts = design_points([Axis("k", "int", 3, 12)], LatinHypercube(samples=10, seed=1), 1)
    assert sorted(p["k"] for p in pts) == list(range(3, 13))


def test_grid_is_the_full_factorial_in_order():
    axes = [Axis("a", "float", 0.0, 1.0, steps=3), Axis("b", "choice", levels=("u", "v")),
            Axis("c", "int", 1, 3, steps=3)]
    pts = design_points(axes, Grid(), 0)
    assert len(pts) == 3 * 2 * 3
    assert len({tuple(p.values()) for p in pts}) == len(pts)
    assert pts[0] == {"a": 0.0, "b": "u", "c": 1} and pts[1] == {"a": 0.0, "b": "u", "c": 2}
    assert pts[-1] == {"a": 1.0, "b": "v", "c": 3}
    assert design_points([], Grid(), 0) == [{}]


# --------------------------------------------------------------------------- factor paths
@pytest.fixture(scope="module")
def base():
    sc, _ = read_scenario(CLASSROOM)
    pols = {n: read_policy(ROOT / "policies" / f"{n}.yaml")[0] for n in ("none", "points")}
    return sc, pols


@settings(max_examples=30, deadline=None)
@given(v=st.floats(0, 5))
def test_setting_a_scenario_path_changes_that_value_only(base, v):
    sc, pols = base
    t = resolve("population.segments.bargain_hunters.reward_sensitivity", sc, pols)
    new = apply(sc, t.steps, v)
    assert get(new, t.steps) == v
    assert sc.population.segments["bargain_hunters"].reward_sensitivity == 1.5  # the base is untouched
    assert new.population.segments["regulars"] is sc.population.segments["regulars"]
    assert new.store is sc.store and new.market is sc.market


def test_policy_paths_address_rules_by_id_and_actions_through_their_tag(base):
    sc, pols = base
    t = resolve("policies.points.rules.redeem.do.0.redeem.discount", sc, pols)
    assert t.policy == "points" and t.leaf.kind == "float"
    new = apply(pols["points"], t.steps, 9.0)
    assert new.rules[1].do[0].discount == 9.0 and new.rules[1].id == "redeem"
    assert pols["points"].rules[1].do[0].discount == 5.0
    assert new.rules[0] is pols["points"].rules[0]
    t = resolve("policies.points.points.points.expiry_days", sc, pols)
    assert t.leaf.kind == "int" and t.leaf.optional
    with pytest.raises(PathError, match="'bgnbd' in the base files, not 'paretonbd'"):
        resolve("population.segments.regulars.purchases.paretonbd.s", sc, pols)
    with pytest.raises(PathError, match="not a single value"):
        resolve("population.segments.regulars", sc, pols)


WORDS = ["population", "segments", "regulars", "bargain_hunters", "purchases", "bgnbd", "paretonbd", "r", "store",
         "marketing", "categories", "shirts", "price", "policies", "points", "none", "rules", "earn", "redeem", "do",
         "0", "1", "redeem", "award", "amount", "on", "purchase", "when", "tiers", "levels", "flywheel", "x", "", "9"]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=9))
def test_any_path_resolves_or_says_what_is_wrong(base, parts):
    sc, pols = base
    try:
        t = resolve(".".join(parts), sc, pols)
    except PathError as e:
        assert str(e)
    else:
        assert t.leaf.kind in ("float", "int", "bool", "str", "expr", "literal")
        root = sc if t.policy is None else pols[t.policy]
        assert apply(root, t.steps, get(root, t.steps)) == root


# --------------------------------------------------------------------------- runs, determinism, resume
@pytest.fixture(scope="module")
def grid_spec(tmp_path_factory):
    return write_spec(tmp_path_factory.mktemp("grid"), GRID)


@pytest.fixture(scope="module")
def reference(grid_spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "store"
    res = run_batch(grid_spec, out, jobs=2, flush_runs=3, stream=open(os.devnull, "w"))
    assert res.completed == res.total == 4 * 2 * 2 and res.failed == 0 and res.unfinished == 0
    return out


def test_runs_are_named_by_address_and_use_the_streams_of_point_and_replication(grid_spec, reference):
    data = read_dataset(reference)
    batch = load_spec(grid_spec)
    assert set(data.runs["outcome"]) == set(OUTCOMES)
    assert sorted(data.runs["run_id"].unique())[:2] == ["p0000-r00-none", "p0000-r00-points"]
    assert not data.runs.duplicated(["run_id", "outcome"]).any()
    # one run recomputed by hand: the parameters of point 3, the streams of address (3, 1)
    sc, pols = apply_point(batch, batch.points[3])
    assert sc.population.segments["bargain_hunters"].reward_sensitivity == batch.points[3]["sens"]
    assert str(pols["points"].rules[0].do[0].amount) == f"floor(purchase.amount * {batch.points[3]['earn']!r})"
    _, pwhere = read_policy(ROOT / "policies" / "points.yaml")
    cp = compile_checked(pols["points"], pwhere, "points.yaml", world_of(sc))
    direct = run_policy(sc, cp, 7, address=(3, 1), **SMALL).summary
    stored = data.runs[data.runs["run_id"] == "p0003-r01-points"].set_index("outcome")["value"]
    for k, v in direct.items():
        assert stored[k] == v or (np.isnan(stored[k]) and np.isnan(v)), k
    row = data.runs[data.runs["run_id"] == "p0003-r01-points"].iloc[0]
    assert (row["sens"], row["earn"]) == (batch.points[3]["sens"], batch.points[3]["earn"])
    series = data.series[data.series["run_id"] == "p0003-r01-points"]
    assert set(series["variable"]) >= {"revenue", "net_profit", "alive", "market_share"}
    assert series["day_end"].max() == SMALL["days"]
    manifest = json.loads((reference / "manifest.json").read_text())
    assert manifest["spec"]["sha256"] and manifest["points"][3]["sens"] == batch.points[3]["sens"]
    assert {"numpy", "scipy", "pandas", "pyarrow", "simpy", "python"} <= set(manifest["versions"])


def assert_same_dataset(a: Path, b: Path) -> None:
    da, db = read_dataset(a), read_dataset(b)
    assert len(da.runs) > 0
    pd.testing.assert_frame_equal(da.runs, db.runs)
    pd.testing.assert_frame_equal(da.series, db.series)
    pd.testing.assert_frame_equal(da.failures, db.failures)


def test_one_worker_and_two_workers_give_the_same_dataset(grid_spec, reference, tmp_path):
    res = run_batch(grid_spec, tmp_path / "one", jobs=1, flush_runs=5, stream=open(os.devnull, "w"))
    assert res.completed == 16
    assert_same_dataset(reference, tmp_path / "one")


def test_a_pool_started_before_the_batch_is_read_gives_the_same_dataset(grid_spec, reference, tmp_path):
    """`lab batch` starts its workers first thing; run_batch runs on them, shuts them down, and the dataset is the
    one its own pool gives (a pool for the local executor only)."""
    pool = spawn_pool(2, ignore_interrupt=True)
    try:
        res = run_batch(grid_spec, tmp_path / "early", jobs=2, flush_runs=3, stream=open(os.devnull, "w"), pool=pool)
        assert res.completed == 16
        with pytest.raises(RuntimeError):  # the runs shut it down when they ended
            pool.submit(int)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    assert_same_dataset(reference, tmp_path / "early")
    with pytest.raises(ValueError, match="local workers"):
        run_batch(grid_spec, tmp_path / "dask", executor="dask", pool=spawn_pool(1))


@pytest.mark.parametrize("ignore", [True, False])
def test_a_batch_worker_leaves_ctrl_c_to_the_driver(ignore):
    """A Ctrl-C at the terminal reaches every process of the group; a batch's workers ignore it (the driver stops
    the batch and keeps what is written), a comparison's keep Python's own handler."""
    pool = spawn_pool(1, ignore_interrupt=ignore)
    try:
        handler = pool.submit(signal.getsignal, signal.SIGINT).result(timeout=60)
    finally:
        pool.shutdown()
    assert (handler == signal.SIG_IGN) is ignore


def test_an_in_process_dask_cluster_gives_the_same_dataset(grid_spec, reference, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        res = run_batch(grid_spec, tmp_path / "dask", executor="dask", client=client, flush_runs=100,
                        stream=open(os.devnull, "w"))
    assert res.completed == 16 and res.unfinished == 0
    assert_same_dataset(reference, tmp_path / "dask")


def test_a_non_empty_out_is_refused_without_resume(grid_spec, reference, capsys):
    assert main_batch([str(grid_spec), "--out", str(reference)]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "another --out" in err
    with pytest.raises(BatchError, match="--resume"):
        run_batch(grid_spec, reference, jobs=1)


def test_resume_refuses_a_store_of_a_different_batch(grid_spec, reference, tmp_path, capsys):
    other = tmp_path / "other.yaml"
    other.write_text(grid_spec.read_text().replace("seed: 7", "seed: 8"))
    assert main_batch([str(other), "--out", str(reference), "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_resume_refuses_changed_lab_code_unless_allowed(grid_spec, reference, tmp_path, monkeypatch):
    import shutil

    from lab.batch import identity as batch_module

    store = tmp_path / "store"
    shutil.copytree(reference, store)
    monkeypatch.setattr(batch_module, "code_hash", lambda: "0" * 64)
    with pytest.raises(BatchError, match="code changed"):
        run_batch(grid_spec, store, jobs=1, resume=True)
    res = run_batch(grid_spec, store, jobs=1, resume=True, allow_code_change=True, stream=open(os.devnull, "w"))
    assert res.completed == 0 and res.skipped == 16
    sessions = json.loads((store / "manifest.json").read_text())["sessions"]
    assert sessions[-1]["code_sha256"] == "0" * 64 and sessions[-1]["resumed"]


def test_resume_after_an_interrupted_flush_drops_the_orphans(grid_spec, reference, tmp_path):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(reference, store)
    chunks = sorted((store / "runs").glob("part-*.parquet"))
    assert len(chunks) >= 2
    # the last flush wrote its series and failures files but died before the runs file that commits it
    (store / "failures").mkdir(exist_ok=True)
    shutil.copyfile(chunks[-1], store / "failures" / chunks[-1].name)  # (its run ids: what saved_runs must not count)
    chunks[-1].unlink()
    (store / "runs" / ".part-00099.parquet.abc.tmp").write_bytes(b"half a file")
    kept = {i for c in chunks[:-1] for i in pd.read_parquet(c, columns=["run_id"])["run_id"]}
    assert saved_runs(store) == len(kept)  # what an interrupted batch says it saved: the committed chunks' runs
    (store / "failures" / chunks[-1].name).unlink()
    partial = read_dataset(store)
    assert partial.runs["run_id"].nunique() == len(kept) < 16
    res = run_batch(grid_spec, store, jobs=1, resume=True, stream=open(os.devnull, "w"))
    assert 0 < res.completed < 16 and res.skipped == 16 - res.completed
    assert not list((store / "runs").glob(".*.tmp"))
    assert_same_dataset(reference, store)


@pytest.fixture(scope="module")
def long_spec(tmp_path_factory):
    return write_spec(tmp_path_factory.mktemp("long"), LONG)


@pytest.fixture(scope="module")
def long_reference(long_spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("long_ref") / "store"
    assert run_batch(long_spec, out, jobs=2, stream=open(os.devnull, "w")).completed == 6 * 2 * 2
    return out


def store_chunks(out: Path) -> int:
    return len(list((out / "runs").glob("part-*.parquet")))


def worker_pids(driver: int) -> list[int]:
    """Pool worker processes started by the batch driver `driver` (children whose command line is a spawned worker)."""
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


def signal_when(cmd: list[str], ready: Callable[[], bool], sig: int) -> tuple[int, str]:
    """Start `cmd` in a session of its own and send its whole group (the driver and its workers, as a terminal's
    Ctrl-C or a kill of the job reaches them) `sig` once `ready()` holds; its exit code and stderr."""
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert proc.poll() is None, "the batch ended before the signal"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=300)
    if sig == signal.SIGINT:  # the driver ended its workers: the group is soon gone (its last exits being reaped)
        deadline = time.monotonic() + 20
        while _group_alive(proc.pid):
            assert time.monotonic() < deadline, "a process of the batch outlived its driver"
            time.sleep(0.1)
    return proc.returncode, err


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_resume_after_kill_9_ends_with_the_uninterrupted_dataset(long_spec, long_reference, tmp_path):
    total = 6 * 2 * 2
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "lab", "batch", str(long_spec), "--out", str(out), "--jobs", "1",
           "--flush-runs", "2"]
    code, _ = signal_when(cmd, lambda: store_chunks(out) >= 2, signal.SIGKILL)
    assert code == -signal.SIGKILL
    done = read_dataset(out).runs["run_id"].nunique()
    assert 0 < done < total
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # without --resume: told to add it
    assert refused.returncode == 2
    assert f"already holds a batch ({done} of {total} runs done); add --resume to continue it" in refused.stderr
    again = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{done} already done" in again.stderr
    assert_same_dataset(long_reference, out)
    sessions = json.loads((out / "manifest.json").read_text())["sessions"]
    assert [s["resumed"] for s in sessions] == [False, True]


def test_ctrl_c_says_how_many_runs_are_saved_and_the_command_that_continues(long_spec, long_reference, tmp_path):
    """Ctrl-C (SIGINT to the driver and its workers, as a terminal sends it) exits 130 with the number of runs the
    store holds and the command, with --resume, that continues to the uninterrupted dataset."""
    out = tmp_path / "stopped"
    cmd = [sys.executable, "-m", "lab", "batch", str(long_spec), "--out", str(out), "--jobs", "2",
           "--flush-runs", "2"]
    code, err = signal_when(cmd, lambda: store_chunks(out) >= 1, signal.SIGINT)
    assert code == 130, err
    done = read_dataset(out).runs["run_id"].nunique()
    assert 0 < done < 6 * 2 * 2 and "Traceback" not in err
    assert f"lab batch: interrupted; {done} finished runs are saved in {out}. Continue with: lab batch " in err
    command = shlex.split(err.split("Continue with: ")[1].strip())
    assert command[-1] == "--resume"
    again = subprocess.run([sys.executable, "-m", "lab", *command[1:]], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{done} already done" in again.stderr
    assert_same_dataset(long_reference, out)


def test_ctrl_c_before_any_run_is_saved_says_so(long_spec, tmp_path):
    out = tmp_path / "stopped"
    cmd = [sys.executable, "-m", "lab", "batch", str(long_spec), "--out", str(out), "--jobs", "1"]
    # under way (its manifest written), its first runs not yet flushed
    code, err = signal_when(cmd, (out / "manifest.json").is_file, signal.SIGINT)
    assert code == 130, err
    # the signal comes within a few milliseconds of the manifest; the first stack takes far longer
    assert store_chunks(out) == 0
    assert "lab batch: interrupted; no run had finished, so none is saved. Continue with: lab batch " in err


def test_a_worker_that_dies_has_its_runs_redone(long_spec, long_reference, tmp_path):
    out = tmp_path / "store"
    cmd = [sys.executable, "-m", "lab", "batch", str(long_spec), "--out", str(out), "--jobs", "2",
           "--flush-runs", "2"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while store_chunks(out) < 1 or not worker_pids(proc.pid):
            assert proc.poll() is None, "the batch ended before a worker could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(worker_pids(proc.pid)[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert "a worker process died; restarting the pool" in err
    assert_same_dataset(long_reference, out)


def test_a_failing_design_point_is_recorded_and_the_rest_completes(tmp_path):
    spec = write_spec(tmp_path, """\
policies: [none, points]
replications: 2
factors:
  ledger:
    path: policies.points.rules.redeem.do.0.redeem.ledger
    levels: [points, pionts]
""")
    res = run_batch(spec, tmp_path / "out", jobs=1, stream=open(os.devnull, "w"))
    assert res.completed == 8 and res.failed == 2 and res.unfinished == 0
    data = read_dataset(tmp_path / "out")
    assert list(data.failures["run_id"]) == ["p0001-r00-points", "p0001-r01-points"]
    assert (data.failures["ledger"] == "pionts").all()
    assert data.failures["error"].str.contains("unknown points ledger 'pionts'; did you mean 'points'?").all()
    assert data.failures["error"].str.contains("design point 1").all()
    assert sorted(data.runs["run_id"].unique()) == ["p0000-r00-none", "p0000-r00-points", "p0000-r01-none",
                                                   "p0000-r01-points", "p0001-r00-none", "p0001-r01-none"]


def test_run_task_records_an_invalid_scenario_for_every_policy(grid_spec):
    batch = load_spec(grid_spec)
    # a scenario check the factor bounds cannot see: a category missing from the store
    bad = batch.scenario.population.segments["regulars"]
    from dataclasses import replace

    broken = replace(batch, scenario=replace(batch.scenario, population=replace(
        batch.scenario.population, segments={**batch.scenario.population.segments,
                                             "regulars": replace(bad, categories={"hats": 1.0})})))
    res = run_task(broken, 0, 0, batch.points[0])
    assert [r.policy for r in res.records] == ["none", "points"]
    assert all(r.error and "unknown category 'hats'" in r.error for r in res.records)


# --------------------------------------------------------------------------- the report
def test_summary_matches_mean_ci_and_paired_diff_ci(reference):
    data = read_dataset(reference)
    table = summary_table(data)
    runs = data.runs
    for point in (0, 3):
        def sel(policy: str, point: int = point) -> np.ndarray:
            rows = runs[(runs["point"] == point) & (runs["policy"] == policy) & (runs["outcome"] == "net_profit")]
            return rows.sort_values("replication")["value"].to_numpy()

        row = table[(table["point"] == point) & (table["policy"] == "points")
                    & (table["outcome"] == "net_profit")].iloc[0]
        iv = mean_ci(sel("points"))
        dv = paired_diff_ci(sel("points"), sel("none"))
        assert row["n"] == iv.n == 2
        assert row["mean"] == pytest.approx(iv.mean, rel=1e-12)
        assert row["ci_low"] == pytest.approx(iv.ci_low, rel=1e-9)
        assert row["ci_high"] == pytest.approx(iv.ci_high, rel=1e-9)
        assert row["diff_mean"] == pytest.approx(dv.mean, rel=1e-9, abs=1e-9)
        assert row["diff_low"] == pytest.approx(dv.ci_low, rel=1e-9, abs=1e-9)
    win = winners(data)
    assert len(win) == 4 and set(win["winner"]) <= {"none", "points"}


def test_batch_report_writes_a_self_contained_html_and_tables(reference, tmp_path, capsys):
    out = tmp_path / "rep" / "report.html"
    assert main_batch_report([str(reference), "--out", str(out), "--bootstrap", "50"]) == 0
    printed = capsys.readouterr().out
    head = next(line for line in printed.splitlines() if line.startswith("policy"))
    assert head.split() == ["policy", "design", "points", "net", "profit", "vs", "none", "better", "worse", "clear",
                            "wins"]
    row = next(line for line in printed.splitlines() if line.startswith("points "))
    assert row.split()[1] == "4"  # the design points it ran in
    assert "better / worse: the design points where its paired 95% interval vs none" in printed
    text = out.read_text()
    assert "data:image/png;base64," in text and 'src="http' not in text
    assert "<h3>winner map</h3>" in text and "<h3>points vs none</h3>" in text
    summary = pd.read_csv(tmp_path / "rep" / "report-summary.csv")
    assert {"point", "sens", "earn", "policy", "outcome", "mean", "ci_low", "diff_mean"} <= set(summary.columns)
    assert list((tmp_path / "rep").glob("report-fig*.png"))


def test_sensitivity_indices_are_exact_for_a_linear_response():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (40, 3))
    y = 4 * X[:, 0] - 2 * X[:, 2]
    s = sensitivity_indices(X, y, ["a", "b", "c"], boot=50).set_index("factor")
    sd = X.std(axis=0, ddof=1)
    sy = y.std(ddof=1)
    assert s.loc["a", "src"] == pytest.approx(4 * sd[0] / sy, abs=1e-9)
    assert s.loc["b", "src"] == pytest.approx(0, abs=1e-9)
    assert s.loc["c", "src"] == pytest.approx(-2 * sd[2] / sy, abs=1e-9)
    assert s["r2"].iloc[0] == pytest.approx(1.0, abs=1e-12)
    assert s.loc["a", "prcc"] > 0.9 and s.loc["c", "prcc"] < -0.9


def test_sensitivity_tells_a_driving_factor_from_an_idle_one():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (60, 2))
    y = np.exp(3 * X[:, 0]) + rng.normal(0, 0.5, 60)  # monotone in the first factor, blind to the second
    s = sensitivity_indices(X, y, ["drives", "idle"], boot=400, seed=2).set_index("factor")
    assert s.loc["drives", "prcc_low"] > 0.5 and s.loc["drives", "prcc_p"] < 1e-6
    # the idle factor's PRCC is null: under H0 p is uniform, so with this fixed seed it lies above 0.05 (checked once)
    assert s.loc["idle", "prcc_low"] < 0 < s.loc["idle", "prcc_high"]
    assert s.loc["idle", "prcc_p"] > 0.05


def test_salib_indices_are_added_when_salib_is_installed(monkeypatch):
    from lab.metrics import sensitivity as batch_report

    calls = {}

    def analyze(problem, X, Y, print_to_console=False, seed=None):
        calls["problem"] = problem
        k = problem["num_vars"]
        return {"delta": [0.4] * k, "delta_conf": [0.1] * k, "S1": [0.3] * k, "S1_conf": [0.05] * k}

    pkg = types.ModuleType("SALib")
    pkg.__spec__ = importlib.machinery.ModuleSpec("SALib", None)
    sub = types.ModuleType("SALib.analyze")
    sub.delta = types.SimpleNamespace(analyze=analyze)
    monkeypatch.setitem(sys.modules, "SALib", pkg)
    monkeypatch.setitem(sys.modules, "SALib.analyze", sub)
    X = np.random.default_rng(0).uniform(0, 1, (12, 2))
    out = batch_report.salib_indices(X, X[:, 0], ["a", "b"], [(0, 1), (0, 1)])
    assert list(out.columns) == ["factor", "delta", "delta_conf", "s1", "s1_conf"]
    assert calls["problem"] == {"num_vars": 2, "names": ["a", "b"], "bounds": [[0, 1], [0, 1]]}


# --------------------------------------------------------------------------- structure
def test_a_design_point_goes_through_the_scenario_loaders_override_hook(grid_spec):
    from lab.scenario.loader import compile_sources

    batch = load_spec(grid_spec)
    seen = []

    def override(sc, pols):
        seen.append((sc, dict(pols)))
        return apply_point(batch, batch.points[3])

    loaded = compile_sources(batch.source, override)
    assert seen and seen[0][0] is batch.scenario and set(seen[0][1]) == {"none", "points"}
    assert loaded.scenario.population.segments["bargain_hunters"].reward_sensitivity == batch.points[3]["sens"]
    assert list(loaded.policies) == ["none", "points"] and not loaded.rejected
    # the base, unchanged, is what load_scenario gives for the same files
    base = compile_sources(batch.source)
    assert base.scenario == load_scenario(batch.scenario_path, ["points"]).scenario
    # a point whose scenario the checks refuse raises, one whose policy does not compile is rejected when asked
    with pytest.raises(LabError, match="unknown category 'hats'"):
        compile_sources(batch.source, lambda sc, pols: (_with_category(sc, "hats"), pols))


def _with_category(sc, name):
    from dataclasses import replace

    seg = sc.population.segments["regulars"]
    return replace(sc, population=replace(sc.population, segments={**sc.population.segments,
                                                                   "regulars": replace(seg, categories={name: 1.0})}))


def test_a_batch_that_ends_before_the_scenarios_launch_is_refused_at_its_days(tmp_path):
    """The shipped classroom launches on day 365: runs of 30 days would measure nothing, so the spec is refused
    where it says days (or at its scenario, for --days), not recorded as failed runs."""
    shipped = ROOT / "scenarios" / "classroom.yaml"
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: short\nscenario: {shipped}\ncustomers: 100\ndays: 30\npolicies: [none]\n")
    with pytest.raises(LabError) as exc:
        load_spec(spec)
    (d,) = exc.value.diagnostics
    assert (d.file, d.line, d.col) == (str(spec), 4, 7)
    assert "day 30 (days), before the launch of classroom.yaml on day 365" in d.message
    assert "give days above 365" in d.message
    with pytest.raises(LabError) as exc:
        load_spec(spec, days=365)
    (d,) = exc.value.diagnostics
    assert d.line == 2 and "day 365 (--days)" in d.message
    assert load_spec(spec, days=366).days == 366
