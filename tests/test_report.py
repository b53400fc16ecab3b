"""The comparison report: figures, the self-contained HTML page, the terminal table, and the words they use."""

from __future__ import annotations

import base64
import json
import math
import re
from html import escape
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from lab.experiment.compare import CompareOptions, Comparison, compare
from lab.metrics.outcomes import HEADLINE, REGISTRY
from lab.metrics.stats import mean_ci
from lab.report import format_table, write_report
from lab.report.figures import FIGURES, ci_band, fig_credit, fig_forest, fig_points, fig_retention, policy_colours
from lab.report.text import (
    fmt_value,
    horizon_words,
    interval_decimals,
    is_good,
    outcome_name,
    span_words,
    verdict_sentences,
)
from lab.scenario.loader import load_scenario
from tests.conftest import day0_loaded

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"replications": 3, "customers": 200, "days": 90, "jobs": 1}
HOSTILE_SCENARIO = 'A <script>alert("x")</script> store & co'
HOSTILE_POLICY = "Points <b>for</b> everyone & more"
MANY = ["none", "points", "performance", "tiered_points"]


def _compare(path: Path, policies: list[str], **opts: object) -> Comparison:
    """A small comparison of the store at path as a day-0 cohort (SMALL's 90 days are below its launch day)."""
    return compare(day0_loaded(load_scenario(path, policies=policies)), CompareOptions(**{**SMALL, **opts}),
                   progress=False)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Comparison:
    """Four policies (small multiples), points but no credit, flywheel-cut twins; the scenario's and a
    policy's descriptions carry HTML that the report must escape."""
    folder = tmp_path_factory.mktemp("hostile")
    hostile = {"classroom.yaml": HOSTILE_SCENARIO, "points.yaml": HOSTILE_POLICY}
    sources = [ROOT / "scenarios" / "classroom.yaml"] + [ROOT / "policies" / f"{p}.yaml" for p in MANY]
    for src in sources:
        body = src.read_text()
        if src.name in hostile:  # a JSON string is a valid YAML double-quoted scalar
            line = f"description: {json.dumps(hostile[src.name])}"
            body = re.sub(r"(?m)^description:.*$", lambda _m, line=line: line, body)
        (folder / src.name).write_text(body)
    return _compare(folder / "classroom.yaml", MANY)


@pytest.fixture(scope="module")
def no_points() -> Comparison:
    """Two policies, credit but no points, and no flywheel-cut runs."""
    return _compare(ROOT / "scenarios" / "classroom.yaml", ["none", "credit"], flywheel_split=False)


@pytest.fixture(scope="module")
def report(many: Comparison, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = write_report(many, tmp_path_factory.mktemp("report"))
    return path, path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- #
# figures
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("which", ["many", "no_points"])
def test_every_figure_is_a_figure_with_labelled_axes(which: str, request: pytest.FixtureRequest) -> None:
    comp = request.getfixturevalue(which)
    for spec in FIGURES:
        fig = spec.draw(comp)
        assert isinstance(fig, Figure), spec.name
        axes = fig.get_axes()
        assert axes, f"{spec.name} has no axes"
        for ax in axes:
            assert ax.get_xlabel().strip(), f"{spec.name}: an axis without an x label"
            assert ax.get_ylabel().strip(), f"{spec.name}: an axis without a y label"
        assert fig._suptitle is not None or any(ax.get_title() for ax in axes), f"{spec.name} has no title"


def test_points_and_credit_figures_say_why_they_are_empty(no_points: Comparison, many: Comparison) -> None:
    texts = [t.get_text() for ax in fig_points(no_points).get_axes() for t in ax.texts]
    assert any("No policy" in t and "points" in t for t in texts)
    texts = [t.get_text() for ax in fig_credit(many).get_axes() for t in ax.texts]
    assert any("No policy" in t and "credit" in t for t in texts)


def test_each_policy_keeps_its_colour_and_the_baseline_is_grey(many: Comparison) -> None:
    colours = policy_colours(many)
    assert len(set(colours.values())) == len(many.policies)
    r, g, b = to_rgb(colours[many.baseline])
    assert max(r, g, b) - min(r, g, b) < 0.05 and max(r, g, b) < 0.5
    seen = 0
    for ax in fig_retention(many).get_axes():
        for line in ax.get_lines():
            if line.get_label() in colours:
                assert to_rgb(line.get_color()) == to_rgb(colours[line.get_label()])
                seen += 1
    assert seen >= len(many.policies)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 12), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_bands_are_the_student_t_interval_of_each_column(n: int, cols: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(10.0, 3.0, size=(n, cols))
    mean, lo, hi = ci_band(x)
    for j in range(cols):
        iv = mean_ci(x[:, j])
        assert mean[j] == pytest.approx(iv.mean)
        assert (lo[j], hi[j]) == pytest.approx((iv.ci_low, iv.ci_high))


def test_bands_ignore_missing_replications() -> None:
    x = np.array([[1.0, np.nan], [2.0, 5.0], [3.0, np.nan]])
    mean, lo, hi = ci_band(x)
    assert mean.tolist() == pytest.approx([2.0, 5.0])
    assert math.isnan(lo[1]) and math.isnan(hi[1])  # one replication: no interval


# --------------------------------------------------------------------------- #
# the HTML report
# --------------------------------------------------------------------------- #
def test_report_is_self_contained_with_embedded_figures(report: tuple[Path, str], many: Comparison) -> None:
    path, html = report
    assert path.name == "report.html" and path.is_file()
    refs = re.findall(r'\b(?:src|href)\s*=\s*["\']([^"\']*)', html, flags=re.I)
    assert refs, "expected embedded images"
    assert all(r.startswith("data:") or r.startswith("#") for r in refs), refs[:3]
    assert not re.search(r"<(?:link|script)\b", html, flags=re.I)
    shown = [s for s in FIGURES if s.applies is None or s.applies(many)]
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(shown)
    assert base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    for spec in shown:
        png = path.parent / f"fig_{spec.name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", spec.name


def test_report_gives_the_verdict_first_then_every_policy_and_outcome(report: tuple[Path, str],
                                                                      many: Comparison) -> None:
    _, html = report
    sentences = verdict_sentences(many)
    assert sentences
    for s in sentences:
        assert escape(s) in html
    assert (html.index('id="verdict"') < html.index('id="outcomes"') < html.index('id="figures"')
            < html.index('id="method"'))
    for p in many.policies:
        assert f">{escape(p)}<" in html
    for o in HEADLINE:
        assert escape(outcome_name(o)) in html
    assert "Law and W. D. Kelton" in html and "common random numbers" in html
    assert "1 − effect with the loop cut / effect with the loop whole" in html


def test_report_marks_clear_differences_and_colours_them_by_direction(report: tuple[Path, str],
                                                                    many: Comparison) -> None:
    _, html = report
    marked = set(re.findall(r'<td class="sig ?(good|bad|)">([^<]*) \*', html))
    expected = set()
    for p in many.policies[1:]:
        for o, unit in ((o.name, o.unit) for o in REGISTRY.values()):
            d = many.difference(p, o)
            if not d.excludes_zero:
                continue
            good = is_good(o, d.mean)
            text = fmt_value(d.mean, unit, signed=True, difference=unit == "share", decimals=interval_decimals(d, unit))
            expected.add(("good" if good else "bad" if good is False else "", escape(text)))
    assert expected, "the fixture should contain clear differences"
    assert marked == expected


def test_report_escapes_user_text_and_skips_what_does_not_apply(report: tuple[Path, str], many: Comparison,
                                                                no_points: Comparison) -> None:
    path, html = report
    assert "<script>" not in html and escape(HOSTILE_SCENARIO) in html
    assert "<b>for</b>" not in html and escape(HOSTILE_POLICY) in html
    assert not (path.parent / "fig_credit.png").exists()
    assert "lends store credit" in html
    skipped = {s.name for s in FIGURES if s.applies is not None and not s.applies(no_points)}
    assert skipped == {"points", "flywheel_share"}


def test_verdict_calls_a_win_only_when_the_interval_excludes_zero(many: Comparison) -> None:
    sentences = verdict_sentences(many)
    v = many.verdict()
    best = v["net_profit"]["best"]
    line = next(s for s in sentences if s.startswith("On net profit"))
    clear_win = best != many.baseline and many.difference(best, "net_profit").excludes_zero
    assert (f"{best} wins" in line) == clear_win
    assert ("wins" in line) == clear_win
    # 90 days is too short for 12-month retention: the verdict says so instead of inventing a number
    assert "retention_12m" not in v
    assert ("12-month retention cannot be measured in this run: it follows each customer for 365 days, and the "
            "run lasts 90 days; give --days 365 (days: 365 in the scenario) or more to see it.") in sentences


def test_a_launched_store_needs_a_year_from_its_launch_for_retention() -> None:
    """The classroom launches on day 365: a 400-day run has 35 days of programme, and 12-month retention needs
    the year from the launch, day 730, which the table and the verdict both name."""
    comp = compare(load_scenario(ROOT / "scenarios" / "classroom.yaml", policies=["none"]),
                   CompareOptions(replications=1, customers=60, days=400, jobs=1), progress=False)
    why = ("it follows each customer for 365 days from the launch on day 365, and the run lasts 400 days; give "
           "--days 730 (days: 730 in the scenario) or more to see it")
    assert f"12-month retention cannot be measured in this run: {why}." in verdict_sentences(comp)
    assert f"({why})." in " ".join(format_table(comp, width=400).split())


def test_a_launched_store_says_its_totals_cover_the_days_from_the_launch(tmp_path: Path) -> None:
    """The totals of a launched store are measured from its launch (day 365 of the classroom), not over the whole
    run: the verdict, the table's title, the report's notes and the revolving door's title say which days."""
    comp = compare(load_scenario(ROOT / "scenarios" / "classroom.yaml", policies=["none", "points"]),
                   CompareOptions(replications=2, customers=60, days=400, jobs=1), progress=False)
    line = next(s for s in verdict_sentences(comp) if s.startswith("On net profit"))
    assert " over the 35 days from the launch on day 365 vs no programme " in line
    assert "400 days (outcomes from the launch on day 365), seed" in format_table(comp, width=400)
    html = write_report(comp, tmp_path).read_text(encoding="utf-8")
    assert "whole run" not in html
    assert html.count("Totals cover the 35 days from the launch on day 365 to the end of the 400-day run;") == 1
    assert ("cover the 35 days from the launch on day 365 to the end of the 400-day run (the first 365 days, before "
            "the launch, run under no programme") in html
    assert "acquired after it" in html
    fig = next(f for f in FIGURES if f.name == "revolving_door").draw(comp)
    assert "totals over the 35 days from the launch on day 365" in fig.get_suptitle()
    # the warm-up's last period is the one day 364 (a period starts on the launch day): a flow summed over it
    # would dip, so the flywheel's per-period profit sharing leaves it out; a stock keeps it
    wheel = next(f for f in FIGURES if f.name == "flywheel").draw(comp)
    ends = {ax.get_title(): set(ax.lines[0].get_xdata()) for ax in wheel.axes if ax.lines}
    assert 365 not in ends["5. profit sharing"] and {364, 372} <= ends["5. profit sharing"]
    assert {364, 365, 372} <= ends["6. staff satisfaction"]


def test_a_single_measured_day_is_one_day() -> None:
    comp = compare(load_scenario(ROOT / "scenarios" / "classroom.yaml", policies=["none", "points"]),
                   CompareOptions(replications=2, customers=60, days=366, jobs=1), progress=False)
    assert span_words(comp) == "the 1 day from the launch on day 365 to the end of the 366-day run"
    assert horizon_words(comp) == "over the 1 day from the launch on day 365"


def test_the_settings_and_captions_say_things_once_and_in_words(report: tuple[Path, str]) -> None:
    _, html = report
    assert ">None<" not in html and "max replications" not in html  # no sequential precision was asked
    assert '<td class="name">precision</td><td class="name">none asked (a fixed number of replications)</td>' in html
    assert "The revolving door.</b> Marketing pours" in html  # the title once, then the caption


def test_a_day0_cohort_says_its_totals_cover_the_whole_run(report: tuple[Path, str], many: Comparison) -> None:
    _, html = report
    assert "Totals cover the whole run of 90 days;" in html and "from the launch" not in html
    line = next(s for s in verdict_sentences(many) if s.startswith("On net profit"))
    assert " over the 90-day run vs no programme" in line
    assert "90 days, seed" in format_table(many)


# --------------------------------------------------------------------------- #
# the terminal table
# --------------------------------------------------------------------------- #
def test_table_has_a_row_per_policy_and_stars_exactly_the_clear_differences(many: Comparison) -> None:
    table = format_table(many)
    lines = table.splitlines()
    assert "\x1b" not in table
    assert max(len(line) for line in lines) <= 120
    blocks = table.count("\npolicy ")
    significant = 0
    for p in many.policies:
        rows = [line for line in lines if line.split("  ")[0].strip() in (p, f"{p} (baseline)")]
        assert len(rows) == blocks, p  # one row per policy in each block of columns
        expected = 0 if p == many.baseline else sum(many.difference(p, o).excludes_zero for o in HEADLINE)
        assert sum(r.count("*") for r in rows) == expected, (p, rows)
        significant += expected
    assert significant > 0, "fixture should contain at least one clear difference"
    assert "* = the interval excludes zero" in table
    assert "Not measurable in this run: 12-month retention" in table  # 90 days: no column of n/a


def test_table_fits_the_headline_outcomes_in_one_block_at_120_columns(no_points: Comparison) -> None:
    table = format_table(no_points)
    assert table.count("\npolicy ") == 1
    assert max(len(line) for line in table.splitlines()) <= 120


def test_table_colours_only_when_asked(many: Comparison) -> None:
    plain, coloured = format_table(many), format_table(many, color=True)
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured).replace(" Green: better for the retailer, red: worse.", "") \
        .split("mean ± 95%:")[0] == plain.split("mean ± 95%:")[0]


def test_table_wraps_rather_than_overflowing_a_narrow_terminal(no_points: Comparison) -> None:
    table = format_table(no_points, width=70)
    assert max(len(line) for line in table.splitlines()) <= 70
    blocks = table.count("\npolicy ")
    assert blocks >= 2
    assert len(re.findall(r"(?m)^credit ", table)) == blocks  # the policy's row repeats in every block


def test_table_rejects_an_unknown_outcome_with_a_suggestion(no_points: Comparison) -> None:
    with pytest.raises(ValueError, match="unknown outcome 'net_proft'; did you mean 'net_profit'"):
        format_table(no_points, outcomes=("net_proft",))
    with pytest.raises(ValueError, match="unknown outcome 'revnue'; did you mean 'revenue'"):
        fig_forest(no_points, outcomes=("revnue",))


# --------------------------------------------------------------------------- #
# numbers in words
# --------------------------------------------------------------------------- #
@settings(max_examples=200, deadline=None)
@given(st.floats(-1e10, 1e10, allow_nan=False))
@example(0.875)  # exactly half a cent: shown as $0.88
def test_money_has_thousands_separators_and_reads_back(x: float) -> None:
    s = fmt_value(x, "$")
    assert re.fullmatch(r"-?\$\d{1,3}(,\d{3})*(\.\d{2})?", s), s
    back = float(s.replace("$", "").replace(",", ""))
    half = 0.5 if "." not in s else 0.005  # rounding to the shown digit moves the value by at most half of it
    assert abs(back - x) <= half * (1 + 1e-12) + 1e-15 * abs(x)  # and x = 0.875 sits exactly on a half
    signed = fmt_value(x, "$", signed=True)
    assert signed.lstrip("+") == s


@settings(max_examples=100, deadline=None)
@given(st.floats(-1.0, 1.0, allow_nan=False))
def test_shares_are_percent_and_differences_percentage_points(x: float) -> None:
    assert fmt_value(x, "share").endswith("%")
    diff = fmt_value(x, "share", signed=True, difference=True)
    assert diff.endswith(" pp")
    assert float(diff.removesuffix(" pp")) == pytest.approx(100 * x, abs=0.051)


def test_missing_numbers_are_said_to_be_missing() -> None:
    assert fmt_value(float("nan"), "$") == "n/a"
    assert fmt_value(float("inf"), "share") == "n/a"
