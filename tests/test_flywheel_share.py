"""The flywheel share: one rule for when it is meaningful, applied by summary.json, the report's sentences,
its HTML table and figure 10 alike (issue 13, item 4)."""

from __future__ import annotations

import pytest

from lab.metrics.flywheel_share import NO_CUT_RUNS, flywheel_share
from tests.test_compare import _hand_comparison

# an effect on net profit that is clearly negative in one replication and positive in others: not different from 0
NOISY = ({"none": [100, 110, 120], "points": [60, 175, 100]}, {"none": [100, 108, 121], "points": [75, 150, 111]})
CLEAR = ({"none": [100, 110, 120], "points": [130, 150, 150]}, {"none": [100, 108, 121], "points": [125, 128, 131]})


def test_a_share_of_an_effect_not_different_from_zero_is_not_meaningful_and_says_why() -> None:
    s = flywheel_share([-40.0, 60.0, -20.0], [-25.0, 42.0, -10.0])
    assert s.interval is None and not s.meaningful
    assert "not clearly different from zero" in s.reason and "-$0" not in s.reason


def test_a_clear_effect_has_a_share_with_its_interval() -> None:
    s = flywheel_share([30.0, 40.0, 30.0], [25.0, 20.0, 10.0])
    assert s.meaningful and s.reason is None
    assert s.interval.mean == pytest.approx(15 / (100 / 3))


def test_the_share_needs_cut_runs_and_two_replications() -> None:
    assert flywheel_share([1.0, 2.0], None).reason == NO_CUT_RUNS
    one = flywheel_share([5.0], [3.0])
    assert one.interval is None and "fewer than 2" in one.reason


def test_summary_json_gives_no_share_and_the_reason_when_the_effect_is_not_clear() -> None:
    comp = _hand_comparison(*NOISY)
    entry = comp.summary()["policies"]["points"]
    assert not comp.summary()["policies"]["points"]["vs_baseline"]["net_profit"]["excludes_zero"]
    assert entry["flywheel_share_net_profit"] is None
    assert "not clearly different from zero" in entry["flywheel_share_note"]
    clear = _hand_comparison(*CLEAR).summary()["policies"]["points"]
    assert clear["flywheel_share_net_profit"]["mean"] == pytest.approx(0.45) and clear["flywheel_share_note"] is None


def test_the_html_table_and_the_sentences_agree_with_summary_json() -> None:
    from lab.report.html import _economics
    from lab.report.text import _programme_notes

    comp = _hand_comparison(*NOISY, cost=[10.0, 10.0, 10.0])
    table = _economics(comp, ["points"])
    assert "not meaningful" in table and "%<small>" not in table.split("flywheel share</b>")[1]
    assert "not clearly different from zero" in table
    notes = " ".join(_programme_notes(comp, "points"))
    assert "not meaningful" in notes and "travels round the flywheel (service" not in notes
    clear = _hand_comparison(*CLEAR, cost=[10.0, 10.0, 10.0])
    assert "45%" in _economics(clear, ["points"]) and "45%" in " ".join(_programme_notes(clear, "points"))


def test_figure_10_marks_the_same_share_not_meaningful() -> None:
    from lab.report.figures import fig_flywheel_share

    fig = fig_flywheel_share(_hand_comparison(*NOISY))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "n/a*" in texts and any("not meaningful" in t for t in texts)
    assert not any(t.endswith("%") for t in texts)  # no bar label: the share is not drawn
