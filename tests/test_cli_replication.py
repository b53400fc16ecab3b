"""Any row of a comparison or a batch can be rerun: `lab run/trace --replication K [--point P]` use its random
streams."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lab.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = str(ROOT / "scenarios" / "classroom.yaml")
SEED = "20261123"
SMALL = ["--customers", "200", "--days", "425"]  # the classroom's launch on day 365 + 60 days
BATCH = f"""\
name: cli_rerun
scenario: {CLASSROOM}
customers: 120
days: 410
policies: [none, points]
replications: 2
seed: 7
streams: independent
factors:
  sens:
    path: population.segments.bargain_hunters.reward_sensitivity
    levels: [0.5, 2.5]
design: grid
"""


def _net_profit(out: Path) -> float:
    return json.loads((out / "summary.json").read_text())["outcomes"]["net_profit"]


def test_run_with_replication_k_is_replication_k_of_compare(tmp_path):
    assert main(["compare", CLASSROOM, "--seed", SEED, "--replications", "2", "--policies", "points", "--jobs", "1",
                 "--no-flywheel-split", "--quiet", "--out", str(tmp_path / "cmp"), *SMALL]) == 0
    reps = pd.read_parquet(tmp_path / "cmp" / "replications.parquet")
    profit = (reps[(reps.policy == "points") & (reps.outcome == "net_profit") & reps.flywheel]
              .set_index("replication")["value"])
    for k in (0, 1):
        assert main(["run", CLASSROOM, "--policy", "points", "--seed", SEED, "--replication", str(k),
                     "--out", str(tmp_path / f"r{k}"), *SMALL]) == 0
        assert _net_profit(tmp_path / f"r{k}") == profit[k]
        assert json.loads((tmp_path / f"r{k}" / "summary.json").read_text())["address"] == [k]
    assert profit[0] != profit[1]  # the two replications are different worlds, so the check above can fail


def test_a_lone_run_keeps_its_own_streams(tmp_path):
    assert main(["run", CLASSROOM, "--policy", "points", "--seed", SEED, "--out", str(tmp_path / "lone"), *SMALL]) == 0
    assert main(["run", CLASSROOM, "--policy", "points", "--seed", SEED, "--replication", "0",
                 "--out", str(tmp_path / "r0"), *SMALL]) == 0
    assert json.loads((tmp_path / "lone" / "summary.json").read_text())["address"] == []
    assert _net_profit(tmp_path / "lone") != _net_profit(tmp_path / "r0")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A small batch spec and its store, run through `lab batch`."""
    folder = tmp_path_factory.mktemp("batch")
    spec = folder / "spec.yaml"
    spec.write_text(BATCH)
    assert main(["batch", str(spec), "--out", str(folder / "store"), "--jobs", "1"]) == 0
    return spec, folder / "store"


def test_run_with_point_and_replication_is_that_row_of_the_batch(batch, tmp_path):
    from lab.batch import read_dataset

    spec, store = batch
    runs = read_dataset(store).runs
    profit = runs[runs.outcome == "net_profit"].set_index(["point", "replication", "policy"])["value"]
    for point, rep in ((0, 1), (1, 0), (1, 1)):
        out = tmp_path / f"p{point}r{rep}"
        assert main(["run", str(spec), "--policy", "points", "--point", str(point), "--replication", str(rep),
                     "--out", str(out)]) == 0
        assert _net_profit(out) == profit[(point, rep, "points")]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["address"] == [point, rep] and summary["seed"] == 7
    assert profit[(1, 0, "points")] != profit[(1, 1, "points")] != profit[(0, 1, "points")]


def test_trace_follows_the_replication_asked_for(batch, capsys):
    spec, _ = batch
    stories = []
    for rep in ("0", "1"):
        assert main(["trace", str(spec), "--policy", "points", "--point", "1", "--replication", rep,
                     "--customer", "3"]) == 0
        stories.append(capsys.readouterr().out)
    assert stories[0] != stories[1] and "Customer 3" in stories[0]
    assert main(["trace", CLASSROOM, "--policy", "points", "--customer", "3", "--replication", "1", *SMALL]) == 0
    assert "Customer 3" in capsys.readouterr().out


def test_trace_says_when_it_follows_a_smaller_run_than_the_scenario(capsys):
    apparel = str(ROOT / "scenarios" / "apparel.yaml")
    assert main(["trace", apparel, "--policy", "points", "--customer", "1", "--days", "368"]) == 0  # launch + 3
    err = capsys.readouterr().err
    assert "following a run of 2000 of the scenario's" in err and "pass --customers" in err
    assert main(["trace", apparel, "--policy", "points", "--customer", "1", "--days", "368", "--customers", "50"]) == 0
    assert "following a run of" not in capsys.readouterr().err  # (a long trace may report its progress)


@pytest.mark.parametrize(("argv", "message"), [
    (["--point", "0"], "is a scenario; pass the batch spec"),
])
def test_point_needs_a_batch_spec(argv, message, capsys):
    assert main(["run", CLASSROOM, "--policy", "points", "--out", "unused", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--policy", "points"], "has 2 design points; pick one with --point P (0 to 1)"),
    (["--policy", "points", "--point", "2"], "--point 2 is out of range"),
    (["--policy", "pionts", "--point", "0"], "did you mean 'points'"),
])
def test_a_batch_spec_needs_a_point_in_range_and_one_of_its_policies(batch, argv, message, capsys):
    spec, _ = batch
    assert main(["run", str(spec), "--out", "unused", *argv]) == 2
    assert message in capsys.readouterr().err
