"""A store at another size (issue 13, item 2): `lab.scenario.scale` scales the whole store with its customers,
and the run's output and the report say when a store runs at a size it was not written for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.cli import main
from lab.engine.options import RunOptions
from lab.engine.simulate import Simulation
from lab.metrics.outcomes import outcomes
from lab.scenario.loader import load_scenario
from lab.scenario.scale import scale_store, scaled_from, size_note

ROOT = Path(__file__).resolve().parents[1]
APPAREL = ROOT / "scenarios" / "apparel.yaml"
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"


@pytest.fixture(scope="module")
def apparel():
    return load_scenario(APPAREL)


def test_scaling_multiplies_the_stores_size_and_keeps_staff_totals_exactly_proportional(apparel) -> None:
    sc = apparel.scenario  # 20,000 customers, 14 staff
    small = scale_store(sc, 5000)
    st, st0 = small.store, sc.store
    assert small.population.customers == 5000 and scaled_from(small) == 20000
    assert st.fixed_cost_per_year == pytest.approx(st0.fixed_cost_per_year / 4)
    assert st.marketing.budget_per_year == pytest.approx(st0.marketing.budget_per_year / 4)
    assert st.marketing.cost_per_acquisition == st0.marketing.cost_per_acquisition
    assert small.market.spend_per_year == pytest.approx(sc.market.spend_per_year / 4)
    # 14 / 4 = 3.5 people: 4 whole people (round half to even), each doing 3.5 / 4 of a job
    assert st.staff.count == 4
    for f in ("wage_per_year", "hiring_cost", "contacts_per_day"):
        assert st.staff.count * getattr(st.staff, f) == pytest.approx(st0.staff.count * getattr(st0.staff, f) / 4)
    assert st.staff.turnover_per_year == st0.staff.turnover_per_year
    assert small.population.segments == sc.population.segments and st.categories == st0.categories
    assert scale_store(sc, sc.population.customers) is sc
    assert scale_store(small, 20000).description == sc.description + " [store scaled from 20000 customers]"


def test_the_size_note_names_what_stays_as_written_or_that_the_store_was_scaled(apparel) -> None:
    sc = apparel.scenario
    assert size_note(sc, None) is None and size_note(sc, 20000) is None
    raw = size_note(sc, 5000)
    assert "written for 20,000 customers but runs with 5,000" in raw and "--scale-store" in raw
    scaled = size_note(scale_store(sc, 5000), None)
    assert "written for 20,000" in scaled and "scaled" in scaled and "x 0.25" in scaled


def _profit_per_customer(sc, policy, customers=None) -> float:
    vals = [outcomes(Simulation(sc, policy, RunOptions(seed=s, customers=customers)).run().record)["net_profit"]
            for s in (1, 2)]
    return float(np.mean(vals)) / (customers or sc.population.customers)


def test_a_scaled_quarter_size_apparel_store_earns_about_what_the_full_store_earns_per_customer(apparel) -> None:
    sc, none = apparel.scenario, apparel.policies["none"]
    full = _profit_per_customer(sc, none)
    scaled = _profit_per_customer(scale_store(sc, 5000), none)
    unscaled = _profit_per_customer(sc, none, customers=5000)
    assert full > 0 and unscaled < -10 * full  # the trap: the full store's costs on a quarter of the customers
    assert abs(scaled - full) < 0.35 * full  # two seeds each: the runs' own noise is about 15% of the mean


def test_run_says_on_stderr_when_the_store_is_not_at_its_written_size(tmp_path, capsys) -> None:
    argv = ["run", str(CLASSROOM), "--policy", "none", "--customers", "300", "--days", "395"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "was written for" in err and "--scale-store" in err
    assert main([*argv, "--scale-store", "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "scaled as a whole" in err


def test_the_comparison_report_says_the_store_runs_at_another_size(tmp_path, capsys) -> None:
    base = ["compare", str(CLASSROOM), "--policies", "none,points", "--replications", "2", "--customers", "300",
            "--days", "395", "--no-flywheel-split", "--quiet", "--jobs", "1"]
    assert main([*base, "--out", str(tmp_path / "raw")]) == 0
    assert "--scale-store" in capsys.readouterr().err
    assert "stay as written" in (tmp_path / "raw" / "report.html").read_text()
    assert main([*base, "--scale-store", "--out", str(tmp_path / "scaled")]) == 0
    assert "scaled as a whole" in (tmp_path / "scaled" / "report.html").read_text()
