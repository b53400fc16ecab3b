"""The batch report formatted like the comparison report (issue 13, item 12): money, shares and counts in the
registry's units with the comparison report's formatting, no scientific notation, a table per outcome with a row
per design point and intervals, and a figure of each outcome against each factor."""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest

from lab.batch.driver import run_batch
from lab.metrics.outcomes import HEADLINE
from lab.metrics.stats import Interval
from lab.report.batch import horizon_sentence, redrawing_factors
from lab.report.text import fmt_bounds, fmt_value, interval_decimals, outcome_name
from tests.test_batch import GRID, LONG, main_batch_report, write_spec


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch_report")
    store = folder / "store"
    with open(os.devnull, "w") as sink:
        assert run_batch(write_spec(folder, LONG), store, jobs=1, stream=sink).failed == 0
    out = folder / "rep" / "report.html"
    assert main_batch_report([str(store), "--out", str(out), "--bootstrap", "50"]) == 0
    text = re.sub(r'src="data:image/png;base64,[^"]+"', "", out.read_text())
    return text, pd.read_csv(folder / "rep" / "report-summary.csv"), folder / "rep"


def _section(text: str, start: str, end: str | None = None) -> str:
    i = text.index(start)
    return text[i: text.index(end, i) if end else len(text)]


def test_the_report_says_which_days_its_outcomes_cover(report) -> None:
    text, _, _ = report
    assert "Outcomes cover the whole run of 30 days.</p>" in text  # a day-0 cohort's 30-day runs


@pytest.mark.parametrize("horizon, factor, words", [
    ({"days": 730, "launch_day": 365}, "store.marketing.budget_per_year",
     "Outcomes cover days 365 to 730 of each run, from the launch: the first 365 days, a warm-up under no "
     "programme, the same under every policy, are left out."),
    ({"days": 90, "launch_day": 0}, "store.marketing.budget_per_year", "Outcomes cover the whole run of 90 days."),
    ({"days": 730, "launch_day": 365}, "days", "Outcomes cover each run from its launch day (day 0 without one) to "
     "its end, which a factor moves from one design point to the next."),
    ({"days": 730, "launch_day": 365}, "launch_day", "Outcomes cover each run from its launch day (day 0 without "
     "one) to its end, which a factor moves from one design point to the next."),
    (None, "days", ""),  # a store written before its manifest said: nothing guessed
])
def test_horizon_sentence_follows_the_manifest(horizon, factor, words) -> None:
    manifest = {"factors": [{"name": "f", "path": factor}], **({"horizon": horizon} if horizon else {})}
    assert horizon_sentence(manifest) == words


def test_shared_streams_are_said_to_pair_the_points_only_where_no_factor_moves_the_thinning_bound(tmp_path):
    """A factor on a segment's reward sensitivity moves the thinning bound (lab.engine.behaviour.rate_bound), so
    shared streams draw other purchase candidates at each of its levels: the report must not call the
    differences along it pure effects."""
    store = tmp_path / "store"
    with open(os.devnull, "w") as sink:
        assert run_batch(write_spec(tmp_path, GRID.replace("streams: independent", "streams: shared")), store, jobs=1,
                         stream=sink).failed == 0
    out = tmp_path / "rep" / "report.html"
    assert main_batch_report([str(store), "--out", str(out), "--bootstrap", "20"]) == 0
    text = " ".join(out.read_text().split())
    assert ("every design point of a replication sees the same customers, but sens moves the purchase-rate bound of "
            "thinning (docs/MODEL.md, section 3), which re-draws the purchase candidates") in text
    assert "not fresh noise" not in text
    manifest = {"factors": [{"name": "budget", "path": "store.marketing.budget_per_year"},
                            {"name": "sens", "path": "population.segments.regulars.reward_sensitivity"},
                            {"name": "season", "path": "store.seasonality"}]}
    assert redrawing_factors(manifest) == ["sens", "season"]


def test_no_number_in_the_report_is_in_scientific_notation(report) -> None:
    text, _, _ = report
    assert not re.search(r"\d\.?\d*e[+-]\d", text)


def test_each_headline_outcome_has_a_table_with_a_row_per_design_point(report) -> None:
    text, summary, _ = report
    part = _section(text, "<h2>Outcomes by design point</h2>")
    points = summary["point"].nunique()
    for outcome in HEADLINE:
        assert f"<h3>{outcome_name(outcome)}" in part
    tables = re.findall(r"<table>.*?</table>", part)
    measured = [o for o in HEADLINE if (summary["outcome"] == o).any()]
    assert "retention_12m" not in measured and "Not measurable in this batch" in part  # 30-day runs
    assert "it needs days of at least the scenario's launch_day + 365" in part
    assert len(tables) == len(measured) == len(HEADLINE) - 1
    assert all(t.count("<tr>") == points + 1 for t in tables)  # a header and one row per point, not one per outcome


def test_the_cells_are_the_comparison_reports_formatting_of_the_summarys_intervals(report) -> None:
    text, summary, _ = report
    part = _section(text, "<h3>net profit", "<h3>revenue")
    pick = (summary["point"] == 0) & (summary["policy"] == "points") & (summary["outcome"] == "net_profit")
    row = summary[pick].iloc[0]
    level = Interval(row["mean"], row["ci_low"], row["ci_high"], int(row["n"]), (row["ci_high"] - row["ci_low"]) / 2)
    d = interval_decimals(level, "$")
    # a level's interval is two amounts ("$124,913 to $289,668"), a difference's two signed ones
    low, high = (fmt_value(v, "$", decimals=d) for v in (level.ci_low, level.ci_high))
    assert f'{fmt_value(level.mean, "$", decimals=d)}<small>{low} to {high}</small>' in part
    diff = Interval(row["diff_mean"], row["diff_low"], row["diff_high"], int(row["diff_n"]),
                    (row["diff_high"] - row["diff_low"]) / 2)
    d = interval_decimals(diff, "$")
    mark = "*" if diff.excludes_zero else ""
    assert f'{fmt_value(diff.mean, "$", signed=True, decimals=d)}{mark}<small>{fmt_bounds(diff, "$")}</small>' in part
    assert "(percentage points)" not in part and "net profit ($)" in part


def test_the_report_draws_each_outcome_against_each_factor(report) -> None:
    text, _, rep = report
    assert "<h3>each outcome against each factor</h3>" in text
    assert (rep / "report-fig2.png").exists()


def test_the_overview_writes_money_as_money(report) -> None:
    text, _, _ = report
    part = _section(text, "<h2>Policies at a glance", "</table>")
    assert re.search(r"<td class=num>-?\$[\d,]+</td>", part)


def test_a_store_without_a_finished_run_is_refused_with_the_way_on(tmp_path, capsys):
    import json
    import shutil

    from lab.cli import EXIT_BAD_INPUT, main

    store = tmp_path / "store"
    with open(os.devnull, "w") as sink:
        done = run_batch(write_spec(tmp_path, GRID), store, jobs=1, stream=sink)
    for part in ("runs", "series", "failures"):  # as a batch stopped before its first run: its manifest alone
        shutil.rmtree(store / part, ignore_errors=True)
    m = json.loads((store / "manifest.json").read_text())
    assert main(["batch-report", str(store)]) == EXIT_BAD_INPUT
    # run_batch from Python: the command line that continues it, with the batch's own size
    again = f"lab batch {m['spec']['path']} --out {store} --customers {m['customers']} --days {m['days']} --resume"
    assert (f"{store} holds no finished run of its {done.total:,} yet, so there is nothing to report; run it first: "
            f"{again}") in capsys.readouterr().err
    assert not (store / "report.html").exists()
