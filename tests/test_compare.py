"""The comparison: the summary.json contract, common random numbers, determinism, and honest intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lab.experiment.compare import CompareOptions, compare, write_comparison
from lab.metrics.outcomes import OUTCOMES
from lab.population.btyd import bgnbd_expected_purchases
from lab.scenario.loader import load_scenario

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
    ls = load_scenario(CLASSROOM)
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
    ls = load_scenario(CLASSROOM)
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
    ls = load_scenario(CLASSROOM)
    opts = dict(replications=2, customers=200, days=90, flywheel_split=False)
    one = compare(ls, CompareOptions(jobs=1, **opts), progress=False)
    two = compare(ls, CompareOptions(jobs=2, **opts), progress=False)
    assert one.replications.equals(two.replications)
    assert one.timeseries.equals(two.timeseries)


def test_precision_adds_replications_until_the_target_is_met():
    ls = load_scenario(CLASSROOM)
    comp = compare(ls, CompareOptions(replications=3, precision=0.02, max_replications=12, customers=200, days=120,
                                      flywheel_split=False), progress=False)
    n = comp.summary()["replications"]
    assert 3 <= n <= 12
    if n < 12:
        for p in comp.policies:
            for o in ("net_profit", "revenue", "active_customers"):
                iv = comp.interval(p, o)
                assert iv.half_width <= 0.02 * abs(iv.mean) * 1.0001 or iv.half_width == 0


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
