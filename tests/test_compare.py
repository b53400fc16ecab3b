"""The comparison: the summary.json contract, common random numbers, determinism, and honest intervals."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as t_dist

from lab.experiment.compare import Comparison, CompareOptions, Task, TaskResult, compare, write_comparison
from lab.metrics.outcomes import HEADLINE, OUTCOMES, REGISTRY
from lab.metrics.stats import mean_ci, relative_half_width, replications_needed
from lab.population.btyd import bgnbd_expected_purchases
from lab.scenario.loader import load_scenario
from tests.conftest import day0_loaded

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"

# a world whose answer is known in closed form: one BG/NBD segment, no programme responses,
# no acquisition, no seasonality -- expected purchases per customer = 1 (trial) + E[X(T)]
KNOWN = """
name: known
days: {days}
policies: [none]
behaviour: {{enabled: false}}
store:
  categories: {{goods: {{price: 20, margin: 0.4}}}}
  staff: {{count: 2}}
market: {{spend_per_year: 1000000}}
population:
  customers: {customers}
  segments:
    only:
      share: 1
      purchases: {{bgnbd: {{r: {r}, alpha: {alpha}, a: {a}, b: {b}, time_unit: weeks}}}}
      spend: {{p: 6.25, q: 3.74, gamma: 15.44}}
      referral_propensity: 0
"""


def _known(tmp_path: Path, *, days=182, customers=400, r=1.0, alpha=4.0, a=1.5, b=4.0) -> Path:
    path = tmp_path / "known.yaml"
    path.write_text(KNOWN.format(days=days, customers=customers, r=r, alpha=alpha, a=a, b=b))
    # the baseline policy must be findable beside the scenario
    (tmp_path / "none.yaml").write_text((ROOT / "policies" / "none.yaml").read_text())
    return path


@pytest.fixture(scope="module")
def classroom_comparison():
    ls = day0_loaded(load_scenario(CLASSROOM))  # a short horizon: the day-0 cohort
    return compare(ls, CompareOptions(replications=4, customers=400, days=200, jobs=1), progress=False)


def test_summary_contract(classroom_comparison, tmp_path):
    comp = classroom_comparison
    files = write_comparison(comp, tmp_path / "out", argv=["lab", "compare"])
    for f in files.values():
        assert f.is_file(), f
    data = json.loads(files["summary"].read_text())
    assert data["baseline"] == "none"
    assert data["replications"] == 4
    assert set(data["policies"]) == set(comp.policies)
    for name, entry in data["policies"].items():
        assert set(entry["outcomes"]) == set(OUTCOMES)
        for outcome, iv in entry["outcomes"].items():
            assert set(iv) == {"mean", "ci_low", "ci_high", "n"}
            if iv["mean"] is not None and iv["ci_low"] is not None:
                assert iv["ci_low"] <= iv["mean"] <= iv["ci_high"], (name, outcome)
        if name == "none":
            assert "vs_baseline" not in entry
        else:
            assert set(entry["vs_baseline"]) == set(OUTCOMES)
            for iv in entry["vs_baseline"].values():
                assert {"mean", "ci_low", "ci_high", "n", "excludes_zero"} <= set(iv)
    manifest = json.loads(files["manifest"].read_text())
    assert manifest["inputs"]["scenario"]["sha256"]
    assert manifest["seed"] == comp.seed


def test_nan_is_written_as_null(tmp_path):
    # a horizon shorter than a year has no 12-month cohort: retention is unknown, not zero
    ls = day0_loaded(load_scenario(CLASSROOM))  # a short horizon: the day-0 cohort
    comp = compare(ls, CompareOptions(replications=2, customers=100, days=60, flywheel_split=False), progress=False)
    files = write_comparison(comp, tmp_path)
    text = files["summary"].read_text()
    assert "NaN" not in text
    data = json.loads(text)
    assert data["policies"]["none"]["outcomes"]["retention_12m"]["mean"] is None


def test_common_random_numbers_make_paired_differences_tight(classroom_comparison):
    comp = classroom_comparison
    mat = comp.matrix("revenue")
    n = len(mat)
    paired = comp.difference("points", "revenue")
    unpaired_se = math.sqrt(mat["points"].var(ddof=1) / n + mat["none"].var(ddof=1) / n)
    # replication k of both policies shares its streams, so revenues move together and the
    # paired interval is far narrower than one that ignores the pairing
    assert np.corrcoef(mat["points"], mat["none"])[0, 1] > 0.5
    assert paired.half_width < 0.5 * student_t(n) * unpaired_se


def student_t(n: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1))


def test_results_do_not_depend_on_the_number_of_processes():
    ls = day0_loaded(load_scenario(CLASSROOM))  # a short horizon: the day-0 cohort
    opts = dict(replications=2, customers=200, days=90, flywheel_split=False)
    one = compare(ls, CompareOptions(jobs=1, **opts), progress=False)
    two = compare(ls, CompareOptions(jobs=2, **opts), progress=False)
    assert one.replications.equals(two.replications)
    assert one.timeseries.equals(two.timeseries)


def _headline_precision(comp, policy: str, outcome: str) -> float:
    x = comp.matrix(outcome)[policy].to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return math.nan  # not measurable (retention in a run shorter than a year): no target to meet
    return relative_half_width(mean_ci(x))


def test_precision_adds_replications_until_the_target_is_met():
    """A 5% target on the headline outcomes is not met by 3 replications of this small store but is within
    reach: the comparison adds waves of replications and stops, below its cap, as soon as every headline
    outcome of every policy has a 95% interval within 5% of its mean."""
    ls = day0_loaded(load_scenario(CLASSROOM))  # a short horizon: the day-0 cohort
    target, cap = 0.05, 40
    comp = compare(ls, CompareOptions(replications=3, precision=target, max_replications=cap, customers=200, days=120,
                                      flywheel_split=False, precision_of="level"), progress=False)
    n = comp.summary()["replications"]
    assert 3 < n < cap
    achieved = [_headline_precision(comp, p, o) for p in comp.policies for o in HEADLINE]
    assert all(a <= target for a in achieved if math.isfinite(a)), achieved
    assert sum(math.isfinite(a) for a in achieved) >= 3 * len(comp.policies)
    # the first 3 replications (the same runs: replication k's streams do not depend on how many are run)
    # fell short of the target, so the replications were added for it
    pilot = comp.matrix("revenue").loc[:2]
    assert any(relative_half_width(mean_ci(pilot[p].to_numpy())) > target for p in comp.policies)
    # the waves follow Law & Kelton: after each wave, run up to the largest estimated total need
    done = 3
    while True:
        need = 0
        for p in comp.policies:
            for o in HEADLINE:
                x = comp.matrix(o)[p].to_numpy(dtype=float)[:done]
                x = x[np.isfinite(x)]
                if len(x) >= 2 and np.ptp(x) > 0 and relative_half_width(mean_ci(x)) > target:
                    need = max(need, replications_needed(x, target))
        if min(need, cap) <= done:
            break
        done = min(need, cap)
    assert n == done


def test_precision_that_cannot_be_met_stops_at_the_cap():
    ls = day0_loaded(load_scenario(CLASSROOM))  # a short horizon: the day-0 cohort
    comp = compare(ls, CompareOptions(replications=2, precision=1e-6, max_replications=4, customers=100, days=60,
                                      flywheel_split=False, precision_of="level"), progress=False)
    assert comp.summary()["replications"] == 4
    assert all(_headline_precision(comp, p, "revenue") > 1e-6 for p in comp.policies)


def test_without_a_precision_target_the_replications_asked_for_are_run():
    ls = day0_loaded(load_scenario(CLASSROOM))  # a short horizon: the day-0 cohort
    comp = compare(ls, CompareOptions(replications=3, customers=100, days=60, flywheel_split=False), progress=False)
    assert comp.summary()["replications"] == 3


# --------------------------------------------------------------------------- hand-made replications
def _hand_comparison(whole: dict[str, list[float]], cut: dict[str, list[float]] | None,
                     cost: list[float] | None = None) -> Comparison:
    """A comparison of `none` and `points` whose net profits per replication are given (every other outcome 0)."""
    ls = day0_loaded(load_scenario(CLASSROOM))  # a short horizon: the day-0 cohort
    two = replace(ls, policies={k: ls.policies[k] for k in ("none", "points")})
    comp = Comparison(two, CompareOptions(replications=len(whole["none"])), seed=1)
    empty = pd.DataFrame()
    for is_cut, table in ((False, whole), (True, cut or {})):
        for policy, values in table.items():
            for k, v in enumerate(values):
                out = {o: 0.0 for o in REGISTRY}
                out["net_profit"] = v
                if policy == "points" and cost is not None:
                    out["programme_cost"] = cost[k]
                comp.results.append(TaskResult(Task(policy, k, is_cut), out, empty, empty, empty, {}, 0.0))
    return comp


def test_flywheel_share_is_the_part_of_the_effect_lost_when_the_loop_is_cut():
    # effects on net profit: whole 30, 40, 30 (mean 100/3); cut 25, 20, 10; whole - cut = 5, 20, 20 (mean 15)
    comp = _hand_comparison({"none": [100, 110, 120], "points": [130, 150, 150]},
                            {"none": [100, 108, 121], "points": [125, 128, 131]})
    share = comp.flywheel_share("points")
    hw = float(t_dist.ppf(0.975, 2)) * math.sqrt(75.0) / math.sqrt(3)  # sd of 5, 20, 20 is sqrt(75)
    assert share.mean == pytest.approx(0.45)
    assert share.ci_low == pytest.approx((15 - hw) / (100 / 3))
    assert share.ci_high == pytest.approx((15 + hw) / (100 / 3))
    assert share.half_width == pytest.approx(hw / (100 / 3))
    assert share.n == 3
    entry = comp.summary()["policies"]["points"]["flywheel_share_net_profit"]
    assert entry == share.to_dict()


def test_flywheel_share_of_a_negative_effect_keeps_its_bounds_in_order():
    comp = _hand_comparison({"none": [100, 110, 120], "points": [70, 70, 90]},
                            {"none": [100, 108, 121], "points": [75, 88, 111]})
    share = comp.flywheel_share("points")
    hw = float(t_dist.ppf(0.975, 2)) * math.sqrt(75.0) / math.sqrt(3)  # whole - cut = -5, -20, -20
    assert share.mean == pytest.approx(0.45)
    assert share.ci_low == pytest.approx((-15 + hw) / (-100 / 3))
    assert share.ci_high == pytest.approx((-15 - hw) / (-100 / 3))
    assert share.half_width == pytest.approx(hw / (100 / 3))
    assert share.ci_low < share.mean < share.ci_high


def test_flywheel_share_needs_the_cut_runs_and_an_effect():
    assert _hand_comparison({"none": [1, 2], "points": [3, 4]}, None).flywheel_share("points") is None
    no_effect = _hand_comparison({"none": [1, 2], "points": [1, 2]}, {"none": [1, 2], "points": [0, 2]})
    assert no_effect.flywheel_share("points") is None
    assert no_effect.summary()["policies"]["points"]["flywheel_share_net_profit"] is None


def test_programme_return_is_extra_net_profit_per_dollar_of_programme_cost():
    # gains 30, 40, 30 on costs 60, 40, 0 (no cost: left out) -> 0.5 and 1.0
    comp = _hand_comparison({"none": [100, 110, 120], "points": [130, 150, 150]}, None, cost=[60.0, 40.0, 0.0])
    roi = comp.programme_return("points")
    assert roi.n == 2
    assert roi.mean == pytest.approx(0.75)


def test_intervals_cover_the_closed_form_value_at_the_nominal_rate(tmp_path):
    """95% intervals of mean purchases per customer cover 1 + E[X(T)] in about 95% of experiments.

    40 independent experiments of 5 replications each; the count of covering intervals is
    Binomial(40, 0.95) under a correct procedure, so fewer than 34 (3 standard deviations
    below 38) would reject it."""
    days, customers = 182, 400
    path = _known(tmp_path, days=days, customers=customers)
    ls = load_scenario(path)
    truth = 1.0 + float(bgnbd_expected_purchases(days / 7.0, 1.0, 4.0, 1.5, 4.0))
    covered = 0
    experiments = 40
    for e in range(experiments):
        comp = compare(ls, CompareOptions(replications=5, seed=1000 + e, flywheel_split=False), progress=False)
        iv = comp.interval("none", "purchases")
        lo, hi = iv.ci_low / customers, iv.ci_high / customers
        covered += lo <= truth <= hi
    assert covered >= 34, f"{covered}/{experiments} intervals covered the true value {truth:.4f}"


def test_progress_counts_a_group_of_runs_when_it_ends(capsys) -> None:
    """A group's runs end together, so the progress lines count them at once (4/8, then 8/8) rather than one
    of them with a rate and an ETA that the next line, a moment later, belies."""
    from lab.experiment.memory import bytes_per_customer

    ls = day0_loaded(load_scenario(CLASSROOM, policies=["points"]))
    per_world = 100 * max(bytes_per_customer(ls.scenario, p) for p in ls.policies.values())
    comp = compare(ls, CompareOptions(replications=2, customers=100, days=30, jobs=1, seed=3, memory=4 * per_world))
    assert len(comp.results) == 8  # none and points, 2 replications, whole and cut
    counts = [line.split(": ")[1].split(" runs")[0] for line in capsys.readouterr().err.splitlines()
              if " runs, " in line]
    assert counts == ["4/8", "8/8"]  # two groups of one policy x 4 worlds (the budget holds 4 runs)
