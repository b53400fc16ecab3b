"""A robust comparison on a world with a known answer (tests/data/robust_known.yaml).

Only two modelling choices vary: the customers' response to rewards (a multiplier of every
segment's reward sensitivity, uniform over 0 to 1) and their credit appetite (which cannot
matter: neither policy offers credit). At a response of 0 the points programme only costs, so
no programme wins; points' lead grows with the response, so points is best exactly in the worlds
above one threshold m*, and the probability of it being best is 1 - m* (the response is uniform
on [0, 1]). m* is read off the worlds by a straight-line fit of points' lead on the response; the
tolerances are three binomial standard errors over the worlds, and three null standard
deviations of a rank correlation for the parameter that cannot matter."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lab.experiment.robust import RobustOptions, robust_compare
from lab.report.text import outcome_name
from lab.scenario.loader import load_scenario

KNOWN = Path(__file__).resolve().parent / "data" / "robust_known.yaml"
RESPONSE = "population.segments.*.reward_sensitivity"
IRRELEVANT = "population.segments.*.credit_appetite"
WORLDS = 32
MORRIS_TRAJECTORIES = 6


@pytest.fixture(scope="module")
def study():
    return robust_compare(load_scenario(KNOWN), RobustOptions(worlds=WORLDS, replications=2, customers=200, days=365,
                                                              jobs=2, seed=1), progress=False)


def test_only_the_two_unfixed_parameters_vary(study):
    assert study.parameters == [RESPONSE, IRRELEVANT]
    assert study.design[:, 0].min() >= 0 and study.design[:, 0].max() <= 1


def test_points_is_best_in_the_share_of_worlds_above_the_threshold(study):
    from scipy.stats import spearmanr

    summary = study.summary()
    entry = summary["outcomes"]["net_profit"]
    means = study.world_means("net_profit")
    lead = means[1] - means[0]
    slope, intercept = np.polyfit(study.design[:, 0], lead, 1)
    assert slope > 0 and intercept < 0  # the programme only costs without a response, and pays with one
    threshold = -intercept / slope
    expected = 1 - threshold
    p = entry["p_best"]["points"]
    assert p + entry["p_best"]["none"] == pytest.approx(1.0)
    assert abs(p - expected) <= 3 * math.sqrt(expected * (1 - expected) / WORLDS)
    # the verdict is fragile and names the response, not the credit appetite
    v = summary["verdict"]["net_profit"]
    assert v["best"] == "points" and not v["robust"]
    assert v["driver"]["parameter"] == RESPONSE and v["driver"]["rank_correlation"] > 0.7
    rho = float(spearmanr(study.design[:, 1], lead).statistic)
    assert abs(rho) < 3 / math.sqrt(WORLDS - 1)


def test_regret_is_zero_for_the_winner_of_every_world(study):
    means = study.world_means("net_profit")
    reg = study.summary()["outcomes"]["net_profit"]["regret"]
    lead = means[1] - means[0]
    assert reg["points"]["mean"] == pytest.approx(np.mean(np.maximum(0, -lead)))
    assert reg["none"]["mean"] == pytest.approx(np.mean(np.maximum(0, lead)))


@pytest.fixture(scope="module")
def saltelli():
    # a Saltelli design of base 16 over the two parameters: 64 worlds sharing their customers
    return robust_compare(load_scenario(KNOWN), RobustOptions(worlds=16, replications=1, method="saltelli",
                                                              customers=200, days=365, jobs=2, seed=1),
                          progress=False)


@pytest.fixture(scope="module")
def morris():
    # six Morris trajectories over the two parameters on a 4-level grid: 18 worlds sharing their customers
    return robust_compare(load_scenario(KNOWN), RobustOptions(worlds=MORRIS_TRAJECTORIES, replications=1,
                                                              method="morris", customers=200, days=365, jobs=2,
                                                              seed=1), progress=False)


def test_sobol_indices_put_the_response_first_and_the_credit_appetite_near_zero(saltelli):
    rows = saltelli.summary()["outcomes"]["net_profit"]["sobol"]["points"]
    first, other = rows
    assert first["parameter"] == RESPONSE and first["ST_low"] > 0.5
    assert first["S1_low"] > 0.3
    assert other["parameter"] == IRRELEVANT
    assert other["S1_low"] <= 0 <= other["S1_high"] and other["ST"] < 0.1


def test_morris_effects_put_the_response_first_and_the_credit_appetite_at_noise(morris):
    # The credit appetite cannot change points' lead, but it moves the engine's thinning bound and so which
    # random candidates become purchases: its elementary effects are noise around zero. Their mean mu is then
    # within three standard errors (sigma / sqrt(r)) of zero, while the response's, whose effect on the lead is
    # positive by construction, is more than three above it; and the response's mu* (its mean absolute effect)
    # lies above the credit appetite's whole interval.
    section = morris.summary()
    assert morris.design.shape == (MORRIS_TRAJECTORIES * 3, 2) and section["morris_trajectories"] == 6
    assert "Morris design" in section["design_note"]
    first, other = section["outcomes"]["net_profit"]["morris"]["points"]
    assert first["parameter"] == RESPONSE and other["parameter"] == IRRELEVANT
    assert first["trajectories"] == other["trajectories"] == MORRIS_TRAJECTORIES
    se = math.sqrt(MORRIS_TRAJECTORIES)
    assert first["mu"] > 3 * first["sigma"] / se and first["mu_star"] == pytest.approx(first["mu"])
    assert abs(other["mu"]) <= 3 * other["sigma"] / se
    assert first["mu_star_low"] > other["mu_star_high"]


def test_the_prim_box_of_the_reversals_lies_around_the_known_threshold(study):
    # the reversals are the worlds where no programme beats points, the worlds below the threshold m*; the box
    # must restrict only the response, from above, at m*. Its edge lies between design points (a Latin hypercube
    # puts one world in every 1/W of the response), and worlds within the threshold's noise blur (the residual sd
    # of the lead around its straight line, over the slope) fall either side by chance: the tolerance is three of
    # each.
    summary = study.summary()
    found = summary["discovery"]["net_profit"]
    means = study.world_means("net_profit")
    lead = means[1] - means[0]
    response = study.design[:, 0]
    slope, intercept = np.polyfit(response, lead, 1)
    threshold = -intercept / slope
    blur = float(np.sqrt(np.mean((lead - (slope * response + intercept)) ** 2))) / slope
    assert found["leader"] == "points" and found["reversals"] == int(np.sum(lead < 0))
    box = found["box"]
    assert [r["parameter"] for r in box["restricted"]] == [RESPONSE]
    (only,) = box["restricted"]
    assert only["low"] is None
    assert abs(only["high"] - threshold) <= 3 / WORLDS + 3 * blur
    assert box["rival"] == "none" and box["coverage"] >= 0.8 and box["density"] >= 0.6
    # coverage, density and mass are the box's own counts
    inside = response <= only["high"]
    rev = lead < 0
    assert box["coverage"] == pytest.approx((inside & rev).sum() / rev.sum())
    assert box["density"] == pytest.approx((inside & rev).sum() / inside.sum())
    assert box["mass"] == pytest.approx(inside.mean())
    assert box["text"].startswith("no programme beats points on net profit when reward sensitivity")
    assert f"{100 * box['mass']:.0f}% of the worlds, {100 * box['coverage']:.0f}% of the reversals" in box["text"]


def test_the_tornado_ranks_the_response_first(study):
    drivers = study.summary()["outcomes"]["net_profit"]["drivers"]
    assert drivers[0]["parameter"] == RESPONSE and drivers[0]["rank_correlation"] > 0.7
    assert abs(drivers[1]["rank_correlation"]) < 3 / math.sqrt(WORLDS - 1)  # the null sd of a rank correlation


# --------------------------------------------------------------------------- the "How sure?" figures
@pytest.fixture(scope="module")
def comparison():
    from lab.experiment.compare import CompareOptions, compare

    return compare(load_scenario(KNOWN), CompareOptions(replications=2, customers=60, days=30, jobs=1,
                                                        flywheel_split=False), progress=False)


def _labelled(fig) -> None:
    axes = fig.get_axes()
    assert axes
    for ax in axes:
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip()
    assert fig._suptitle is not None or any(ax.get_title() for ax in axes)


@pytest.mark.parametrize("design", ["study", "saltelli", "morris"])
def test_every_how_sure_figure_draws_from_the_summary_with_labelled_axes(design, comparison, request):
    from lab.report.robust_figures import ROBUST_FIGURES

    comparison.robustness = request.getfixturevalue(design).summary()
    try:
        drawn = {}
        for spec in ROBUST_FIGURES:
            assert spec.applies is None or spec.applies(comparison), spec.name
            drawn[spec.name] = spec.draw(comparison)
            _labelled(drawn[spec.name])
        (ax,) = drawn["robust_drivers"].get_axes()
        kind = {"study": "rank correlation", "saltelli": "Sobol index", "morris": "elementary effect"}[design]
        assert kind in ax.get_xlabel()
        # the drivers are ranked: the response, the known driver, is the first bar
        assert ax.get_yticklabels()[0].get_text().startswith("reward sensitivity")
    finally:
        comparison.robustness = None


def test_the_prim_figure_draws_the_box_around_the_reversals(study, comparison):
    from matplotlib.patches import Rectangle

    from lab.report.robust_figures import ROBUST_FIGURES

    section = study.summary()
    found = section["discovery"]["net_profit"]
    comparison.robustness = section
    try:
        spec = {s.name: s for s in ROBUST_FIGURES}["robust_prim"]
        panels = spec.draw(comparison).get_axes()
        detail = spec.detail(comparison) if spec.detail else ""
    finally:
        comparison.robustness = None
    searched = [o for o in section["verdict"] if len(section["discovery"].get(o, {}).get("axes", [])) >= 1]
    assert [ax.get_title().split(" reverses")[0] for ax in panels] == [
        f"Where the verdict on {outcome_name(o)}" for o in searched]  # one panel per verdict searched, in order
    (ax,) = [a for a in panels if outcome_name("net_profit") in a.get_title()]
    assert found["axes"] == [RESPONSE, IRRELEVANT]
    assert found["points"]["values"][0] == pytest.approx(list(study.design[:, 0]))
    assert sum(found["points"]["reversed"]) == found["reversals"]
    (box,) = [p for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()]
    (only,) = found["box"]["restricted"]
    assert box.get_x() + box.get_width() == pytest.approx(only["high"])  # the box's upper edge on the response
    assert box.get_x() == pytest.approx(min(found["points"]["values"][0]))
    assert "reward sensitivity" in ax.get_xlabel() and "credit appetite" in ax.get_ylabel()
    assert f"Coverage {100 * found['box']['coverage']:.0f}%" in detail
    assert f"density {100 * found['box']['density']:.0f}%" in detail


def test_report_html_shows_the_four_how_sure_figures_first(study, comparison, tmp_path):
    from lab.report import write_report

    comparison.robustness = study.summary()
    try:
        page = write_report(comparison, tmp_path).read_text()
    finally:
        comparison.robustness = None
    how_sure = page.split('id="how-sure"')[1].split("</section>")[0]
    for n, name in enumerate(["robust_p_best", "robust_differences", "robust_drivers", "robust_prim"], start=1):
        assert f'id="fig-{name}"' in how_sure and (tmp_path / f"fig_{name}.png").stat().st_size > 0
        assert f"Figure {n}." in how_sure
    assert "Figure 5." in page.split('id="figures"')[1]  # the report's own figures are numbered after them
