"""`lab trace` as a user meets it (issue 13, item 15): progress on stderr for a long run, customers picked by
fate and segment from the run itself, and one customer under two policies side by side."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from lab import cli
from lab.cli import main
from lab.engine.options import RunOptions
from lab.report.story import format_story
from lab.report.tracing import FATES, fate_masks, pick, traced_run
from lab.scenario.loader import load_scenario
from tests.conftest import day0_loaded

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = str(ROOT / "scenarios" / "classroom.yaml")
SMALL = ["--customers", "300", "--days", "565"]  # the classroom's launch on day 365 + 200 days


@pytest.fixture(scope="module")
def classroom():
    return day0_loaded(load_scenario(CLASSROOM))  # 200 days, below the launch day: the day-0 cohort


@pytest.fixture(scope="module")
def points_run(classroom):
    return traced_run(classroom.scenario, classroom.policies["points"], RunOptions(seed=5, customers=300, days=200),
                      None, label="points", stream=io.StringIO())


def test_the_command_line_knows_every_fate() -> None:
    assert tuple(FATES) == cli.FATE_NAMES


def test_pick_takes_the_first_customer_with_the_fate_and_segment_from_the_runs_record(points_run) -> None:
    rec = points_run.record
    masks = fate_masks(rec)
    churned = pick(rec, "churned")
    assert churned.customer == int(np.flatnonzero(~rec.customers.alive)[0])
    assert list(churned.matches) == list(np.flatnonzero(masks["churned"]))
    redeemed = pick(rec, "redeemed")
    assert redeemed.customer is not None and rec.points["points"].redeemed[redeemed.customer] > 0
    seg = rec.segments[1]
    both = pick(rec, "stayed", seg)
    assert rec.customers.alive[both.customer] and rec.customers.segment[both.customer] == 1
    assert set(both.matches) == set(np.flatnonzero(masks["stayed"] & (rec.customers.segment == 1)))
    assert pick(rec, "written_off").customer is None  # the points policy has no credit line
    with pytest.raises(ValueError, match="unknown fate"):
        pick(rec, "happy")


def test_a_picked_customers_story_is_the_one_traced_by_id(points_run, classroom) -> None:
    cid = pick(points_run.record, "churned").customer
    alone = traced_run(classroom.scenario, classroom.policies["points"], RunOptions(seed=5, customers=300, days=200),
                       [cid], label="points", stream=io.StringIO())
    assert alone.trace(cid) == points_run.trace(cid)
    assert any(e["kind"] == "dropout" for e in alone.trace(cid))


def test_trace_pick_churned_tells_the_story_of_a_customer_who_dropped_out(capsys) -> None:
    assert main(["trace", CLASSROOM, "--policy", "points", "--pick", "churned", "--seed", "5", *SMALL]) == 0
    out = capsys.readouterr()
    assert "Fate: dropped out" in out.out
    assert "the first of the" in out.err and "who dropped out before the end" in out.err


def test_trace_of_two_policies_shows_the_customer_side_by_side(capsys, classroom) -> None:
    assert main(["trace", CLASSROOM, "--policy", "none,points", "--customer", "4", "--seed", "5", *SMALL]) == 0
    out = capsys.readouterr().out
    head, columns = out.splitlines()[:2]
    assert "under 'none' and 'points'" in head and "none" in columns and "| points" in columns
    assert "none: Fate:" in out and "points: Fate:" in out
    # the shared first purchase sits on one row, in both columns
    first = next(line for line in out.splitlines() if "purchase #1" in line)
    assert first.count("purchase #1") == 2
    # each column is the story `lab trace --policy P` tells alone
    assert main(["trace", CLASSROOM, "--policy", "points", "--customer", "4", "--seed", "5", *SMALL]) == 0
    alone = capsys.readouterr().out
    assert alone.splitlines()[-1] in out.replace("points: Fate:", "Fate:")


def test_a_programme_fate_is_picked_under_the_policy_that_has_it(capsys) -> None:
    assert main(["trace", CLASSROOM, "--policy", "points", "--pick", "redeemed", "--seed", "5", *SMALL]) == 0
    alone = capsys.readouterr()
    assert main(["trace", CLASSROOM, "--policy", "none,points", "--pick", "redeemed", "--seed", "5", *SMALL]) == 0
    both = capsys.readouterr()
    cid = alone.err.split("customer ")[1].split(",")[0]
    assert f"customer {cid}, the first of the" in both.err and "under 'points'; none under 'none'" in both.err
    assert "under 'none' and 'points'" in both.out


def test_trace_names_what_is_missing_or_wrong(capsys) -> None:
    assert main(["trace", CLASSROOM, "--policy", "points", *SMALL]) == 2
    assert "--pick churned" in capsys.readouterr().err
    assert main(["trace", CLASSROOM, "--policy", "points", "--customer", "1", "--pick", "churned", *SMALL]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["trace", CLASSROOM, "--policy", "points", "--segment", "bargain", *SMALL]) == 2
    assert "no such segment" in capsys.readouterr().err
    assert main(["trace", CLASSROOM, "--policy", "a,b,c", "--customer", "1", *SMALL]) == 2
    assert main(["trace", CLASSROOM, "--policy", "points", "--pick", "written_off", *SMALL]) == 2
    assert "no customer who had a credit balance written off under 'points' in" in capsys.readouterr().err
    assert main(["trace", CLASSROOM, "--policy", "none,points", "--pick", "written_off", *SMALL]) == 2
    assert "no customer who had a credit balance written off under 'none' or 'points' in" in capsys.readouterr().err


def test_a_long_trace_reports_its_progress_and_a_short_one_stays_silent(classroom) -> None:
    loud, quiet = io.StringIO(), io.StringIO()
    opts = RunOptions(seed=5, customers=300, days=200)
    run = traced_run(classroom.scenario, classroom.policies["points"], opts, [1], label="points", stream=loud,
                     quiet_for=0.0, every=0.0)
    lines = loud.getvalue().splitlines()
    assert lines[0].startswith("lab trace: points: day 1 of 200") and "day 200 of 200" in lines[-1]
    assert len(lines) == 200
    traced_run(classroom.scenario, classroom.policies["points"], opts, [1], label="points", stream=quiet,
               quiet_for=3600.0)
    assert quiet.getvalue() == ""
    assert "Customer 1" in format_story(run.trace(1), 1, classroom.scenario, classroom.policies["points"])


def test_a_customer_who_arrives_in_the_warm_up_meets_the_programme_at_its_launch(capsys) -> None:
    """Arriving before the launch there is no programme to join yet; on the launch day the story says whether the
    customer joined, as the engine drew it for everyone then present."""
    assert main(["trace", CLASSROOM, "--policy", "points", "--customer", "3", "--customers", "40"]) == 0
    lines = capsys.readouterr().out.splitlines()
    events = [line for line in lines if line[:9].strip().replace(".", "").isdigit()]  # (the day column)
    arrived = next(line for line in events if line.split()[1] == "acquired")
    launch = [line for line in events if line.split()[1] == "launch"]
    assert "arrived: a new customer" in arrived and arrived.rstrip().split("; ")[1].startswith(
        "before the programme's launch")
    assert len(launch) == 1 and launch[0].split()[0] == "365.00"
    assert "the programme launches: joined it" in launch[0] or "the programme launches: did not join it" in launch[0]
    assert lines.index(arrived) < lines.index(launch[0])
