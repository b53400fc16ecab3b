"""Self-selection: who joins (lab.engine.behaviour, both engines), the naive member gap and the causal effect
(lab.metrics.outcomes, lab.metrics.selection), on hand-computed cases and small runs with fixed seeds."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.engine import behaviour as bh
from lab.engine.options import RunOptions
from lab.engine.reference import ReferenceSimulation
from lab.engine.simulate import Simulation
from lab.metrics.outcomes import REGISTRY
from lab.metrics.selection import fieller, naive_vs_causal
from lab.population.customers import SegmentTable
from lab.scenario.loader import load_scenario
from lab.scenario.model import Behaviour
from tests.conftest import day0
from tests.test_outcomes import DAILY as _DAILY
from tests.test_outcomes import customers, record

ROOT = Path(__file__).resolve().parents[1]
DAILY = {k: np.zeros(730) for k in _DAILY}  # the books do not matter here, only the customers
TILT = Behaviour(enrol_rate_tilt=1.0, enrol_spend_tilt=0.5)


# --------------------------------------------------------------------------- the joining chance
def test_without_a_tilt_everyone_joins_with_the_policys_participation() -> None:
    lam, basket = np.array([0.01, 0.1, 1.0]), np.array([5.0, 50.0, 500.0])
    assert not bh.self_selects(Behaviour(), 0.5)  # the default: no tilt
    assert np.array_equal(bh.enrol_probability(Behaviour(), 0.5, lam, basket, 0.0), [0.5, 0.5, 0.5])
    assert not bh.self_selects(TILT, 1.0) and not bh.self_selects(TILT, 0.0)  # all or nobody: nothing to tilt
    assert not bh.self_selects(dataclasses.replace(TILT, enabled=False), 0.5)
    assert np.array_equal(bh.launch_enrol_probability(TILT, 1.0, lam, basket), [1.0, 1.0, 1.0])


def test_the_score_is_log_odds_in_log_rate_and_log_basket() -> None:
    # 1.0 x log(0.2) + 0.5 x log(40)
    assert bh.enrol_score(TILT, 0.2, 40.0) == pytest.approx(math.log(0.2) + 0.5 * math.log(40.0), rel=1e-14)
    p = bh.enrol_probability(TILT, 0.5, np.array([0.2]), np.array([40.0]), 1.5)
    assert p[0] == pytest.approx(1 / (1 + math.exp(-(1.5 + math.log(0.2) + 0.5 * math.log(40.0)))), rel=1e-14)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.02, 0.98), st.lists(st.floats(-8, 8), min_size=1, max_size=40))
def test_the_intercept_keeps_the_mean_chance_at_the_participation(part: float, scores: list[float]) -> None:
    z = np.array(scores)
    c = bh.enrol_intercept(part, z)
    assert float(np.mean(bh._sigmoid(c + z))) == pytest.approx(part, abs=1e-9)


def test_heavier_and_bigger_spending_customers_are_likelier_to_join() -> None:
    p = bh.launch_enrol_probability(TILT, 0.5, np.array([0.01, 0.1, 0.1]), np.array([30.0, 30.0, 90.0]))
    assert p[0] < p[1] < p[2]
    assert float(p.mean()) == pytest.approx(0.5, abs=1e-12)


def test_arrivals_join_with_the_participation_on_average() -> None:
    """The population intercept is set on a quantile grid; drawn customers must average `participation` to
    within sampling error: 40,000 apparel customers, binomial sd sqrt(0.25 / 40,000) = 0.0025, so 4 sd = 0.01
    (the grid's own error is far smaller)."""
    ls = load_scenario(ROOT / "scenarios" / "apparel.yaml", ["none"])
    seg = SegmentTable.from_scenario(ls.scenario)
    sim = Simulation(day0(ls.scenario), ls.policies["none"], RunOptions(seed=5, customers=40_000, days=1))
    sim.run()
    n = sim.c.n
    lam, basket = sim.c.lam[:n], seg.spend_p[sim.c.seg[:n]] / sim.c.nu[:n]
    c = bh.population_enrol_intercept(TILT, 0.4, seg)
    assert float(np.mean(bh.enrol_probability(TILT, 0.4, lam, basket, c))) == pytest.approx(0.4, abs=0.01)


def test_both_engines_enrol_the_same_customers() -> None:
    """Joining depends on traits and the customer's enrol draw only, so a cohort run of the vectorised and the
    reference engine, tilted, must make exactly the same customers members."""
    ls = load_scenario(ROOT / "scenarios" / "apparel.yaml", ["points"])
    sc = dataclasses.replace(day0(ls.scenario), behaviour=dataclasses.replace(ls.scenario.behaviour,
                                                                            enrol_rate_tilt=1.0, enrol_spend_tilt=0.5))
    cp = ls.policies["points"]
    cp = dataclasses.replace(cp, policy=dataclasses.replace(cp.policy, participation=0.3))
    opts = RunOptions(seed=3, customers=400, days=3)
    a = Simulation(sc, cp, opts).run().record.customers.member
    b = ReferenceSimulation(sc, cp, opts, follow=()).run().record.customers.member
    assert np.array_equal(a[:400], b[:400])
    assert 0.2 < a[:400].mean() < 0.4  # 0.3 on average; 400 draws, sd 0.023


# --------------------------------------------------------------------------- the outcomes
def test_the_naive_gap_compares_members_with_non_members_present_at_the_launch() -> None:
    # four customers, three present at the launch on day 365 of 730 (one year measured); customer 3 arrived after
    custs = customers(revenue=[300.0, 120.0, 50.0, 999.0], member=[True, True, False, True],
                      acquired_at=[0.0, 0.0, 0.0, 400.0])
    r = dataclasses.replace(record(days=730, daily=DAILY, custs=custs), launch_day=365,
                            launch_revenue=np.array([100.0, 20.0, 10.0, np.nan]))
    out = {k: REGISTRY[k](r) for k in ("naive_member_gap", "launch_customer_revenue", "launch_member_share")}
    # since the launch: 200, 100, 40 -> members 150, non-members 40
    assert out["naive_member_gap"] == pytest.approx(110.0)
    assert out["launch_customer_revenue"] == pytest.approx(340.0 / 3)
    assert out["launch_member_share"] == pytest.approx(2 / 3)
    everyone = dataclasses.replace(r, customers=customers(revenue=[1.0, 1.0, 1.0, 1.0], member=[True] * 4))
    assert math.isnan(REGISTRY["naive_member_gap"](everyone))


def test_without_a_launch_the_starting_customers_are_compared_over_the_run() -> None:
    custs = customers(revenue=[40.0, 10.0, 500.0], member=[True, False, True])
    r = dataclasses.replace(record(days=730, daily=DAILY, custs=custs),
                            initial_customers=2)
    out = {k: REGISTRY[k](r) for k in ("naive_member_gap", "launch_member_share")}
    assert out["naive_member_gap"] == pytest.approx((40.0 - 10.0) / 2)  # two years
    assert out["launch_member_share"] == 0.5


# --------------------------------------------------------------------------- naive / causal
def test_fieller_on_a_hand_case() -> None:
    num, den = np.array([10.0, 12.0, 14.0]), np.array([2.0, 2.0, 2.0])  # den without variance: num's t interval / 2
    r = fieller(num, den)
    t = 4.302652729911275  # t_{0.975, 2}
    assert r.value == 6.0
    assert (r.ci_low, r.ci_high) == pytest.approx((6.0 - t * 2 / math.sqrt(3) / 2, 6.0 + t * 2 / math.sqrt(3) / 2))
    wide = fieller(np.array([5.0, 6.0, 7.0]), np.array([-1.0, 0.5, 1.5]))  # the denominator's interval covers 0
    assert not wide.bounded and wide.ci_low == -math.inf


def test_the_causal_effect_per_member_is_the_paired_difference_over_the_member_share() -> None:
    est = naive_vs_causal(naive=[70.0, 80.0, np.nan], policy_revenue=[110.0, 112.0, 1.0],
                          baseline_revenue=[100.0, 100.0, 1.0], member_share=[0.5, 0.5, 0.5])
    assert est.causal.mean == pytest.approx(22.0)  # (10 / 0.5 + 12 / 0.5) / 2; the third replication has no gap
    assert est.naive.mean == 75.0
    assert est.ratio.value == pytest.approx(75.0 / 22.0)
    assert est.ratio.n == 2


def test_the_report_fragments_say_naive_causal_and_the_ratio() -> None:
    from lab.experiment.compare import CompareOptions, compare
    from lab.report.selection import selection_html, selection_lines

    ls = load_scenario(ROOT / "scenarios" / "apparel.yaml", ["points"])
    sc = dataclasses.replace(day0(ls.scenario), launch_day=60, behaviour=dataclasses.replace(
        ls.scenario.behaviour, enrol_rate_tilt=1.0, enrol_spend_tilt=0.5))
    cp = ls.policies["points"]
    pols = {**ls.policies, "points": dataclasses.replace(cp, policy=dataclasses.replace(cp.policy, participation=0.5))}
    loaded = dataclasses.replace(ls, scenario=sc, policies=pols)
    comp = compare(loaded, CompareOptions(replications=2, customers=400, days=150, flywheel_split=False),
                   progress=False)
    lines = selection_lines(comp)
    assert lines and max(len(line) for line in lines) <= 120  # the terminal table's width
    points = next(i for i, line in enumerate(lines) if line.startswith("  points: "))
    sentence = " ".join(line.strip() for line in lines[points:])
    assert "points: members out-spend non-members by " in sentence and "x [" in sentence and "$-" not in sentence
    assert all(line.startswith("    ") for line in lines[points + 1:])  # continued, indented under its policy
    html = selection_html(comp)
    assert html.startswith("<section") and "naive" in html
    everyone = dataclasses.replace(loaded, policies=ls.policies)  # participation 1: nobody to compare with
    comp1 = compare(everyone, CompareOptions(replications=1, customers=300, days=90, flywheel_split=False),
                    progress=False)
    assert selection_lines(comp1) == [] and selection_html(comp1) == ""  # no section when no policy has one
    from lab.report.terminal import format_table
    assert lines[0] in format_table(comp)  # the terminal table carries the section
