"""Batches with common random numbers across the design, and the Sobol' and Morris designs (issue 12, "Batches").

The known answer: the points policy's difference from no programme cannot depend on a factor of the
performance policy (its stamp card's length), and does depend on the points policy's own earn rate. With the
design points sharing their customers (the default), the stamp card's Sobol' indices and Morris effects for the
points policy are exactly zero, the earn rate's are clearly not, and the report never names the stamp card as a
driver of the points policy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lab.batch import BatchError, load_spec, read_dataset, run_batch
from lab.cli import main
from lab.errors import LabError
from lab.metrics.batch_summary import summary_table
from lab.metrics.sensitivity import (applicable, morris_effects, morris_indices, morris_table, policy_of,
                                     sobol_indices, sobol_table)
from lab.report.batch import driver_lines, write_batch_report
from tests.conftest import CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = CLASSROOM_DAY0  # a day-0 cohort: the specs run a few weeks, the shipped store launches on day 365

FACTORS = """\
factors:
  earn:
    path: policies.points.rules.earn.do.0.award.amount
    template: "floor(purchase.amount * {value})"
    low: 0
    high: 4
  card:
    path: policies.performance.rules.free_favourite.do.0.redeem.cost
    low: 3
    high: 12
"""


def write(folder: Path, design: str, *, replications: int = 1, extra: str = "") -> Path:
    path = folder / "spec.yaml"
    path.write_text(f"name: crn\nscenario: {CLASSROOM}\ncustomers: 100\ndays: 45\nseed: 5\n"
                    f"policies: [none, points, performance]\nreplications: {replications}\n{extra}{FACTORS}"
                    f"design:\n{design}\n")
    return path


def run(folder: Path, design: str, **kw) -> Path:
    spec = write(folder, design, **kw)
    run_batch(spec, folder / "store", jobs=1)
    return folder / "store"


def points_response(store: Path) -> tuple[dict, np.ndarray]:
    data = read_dataset(store)
    s = summary_table(data)
    g = s[(s.policy == "points") & (s.outcome == "net_profit")].sort_values("point")
    return data.manifest, g["diff_mean"].to_numpy(dtype=float)


@pytest.fixture(scope="module")
def saltelli(tmp_path_factory) -> Path:
    return run(tmp_path_factory.mktemp("saltelli"), "  saltelli: {samples: 16}")


@pytest.fixture(scope="module")
def morris(tmp_path_factory) -> Path:
    return run(tmp_path_factory.mktemp("morris"), "  morris: {trajectories: 8, levels: 4}")


def test_design_points_share_their_customers_by_default(saltelli):
    runs = read_dataset(saltelli).runs
    man = json.loads((saltelli / "manifest.json").read_text())
    assert man["streams"] == "shared" and man["format"] == 2
    points = {p["point"]: p for p in man["points"]}
    profit = runs[(runs.outcome == "net_profit") & (runs.policy == "points")].set_index("point")["value"]
    none = runs[(runs.outcome == "net_profit") & (runs.policy == "none")]["value"]
    # the baseline has no factor: the same customers give it the same result at every point
    assert none.nunique() == 1
    # two points with the same earn rate (the card changes only the performance policy) give the points policy
    # the same run; points with different earn rates differ
    by_earn: dict[float, set[float]] = {}
    for i, v in profit.items():
        by_earn.setdefault(points[i]["earn"], set()).add(v)
    assert all(len(v) == 1 for v in by_earn.values())
    assert len({next(iter(v)) for v in by_earn.values()}) > 1


def test_the_stamp_card_cannot_drive_the_points_policy_and_the_earn_rate_does(saltelli):
    man, y = points_response(saltelli)
    names = [f["name"] for f in man["factors"]]
    t = sobol_table(y, names, boot=500, seed=1).set_index("factor")
    assert t.loc["card", "s1"] == pytest.approx(0, abs=1e-12) and t.loc["card", "st"] == pytest.approx(0, abs=1e-12)
    assert t.loc["card", "st_low"] <= 0 <= t.loc["card", "st_high"]
    assert t.loc["earn", "st"] > 0.8 and t.loc["earn", "st_low"] > 0.3
    assert t.loc["earn", "s1"] > 0.5 and t.loc["earn", "s1_low"] > 0


def test_sobol_indices_cover_every_outcome_and_leave_out_other_policies_factors(saltelli):
    data = read_dataset(saltelli)
    table = sobol_indices(data, summary_table(data), boot=100)
    assert set(table[table.policy == "points"]["factor"]) == {"earn"}
    assert set(table[table.policy == "performance"]["factor"]) == {"card"}
    assert {"net_profit", "revenue"} <= set(table["outcome"])
    assert {"s1", "s1_low", "s1_high", "st", "st_low", "st_high"} <= set(table.columns)


def test_every_printed_driver_carries_its_interval_and_verdict(saltelli, capsys):
    assert main(["batch-report", str(saltelli), "--bootstrap", "200"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if " vs none, net profit:" in ln]
    assert len(lines) == 2
    points = next(ln for ln in lines if ln.startswith("points"))
    assert "card" not in points and "earn (S1" in points and "excludes 0" in points
    for ln in lines:
        for part in ln.split(": ", 1)[1].split("; "):
            assert "[" in part and ("excludes 0" in part or "includes 0" in part), part
    html = (saltelli / "report.html").read_text()
    assert "Sobol" in html and "Random streams: shared" in html and "excludes 0" in html


def test_morris_effects_of_the_stamp_card_on_points_are_zero(morris):
    man, y = points_response(morris)
    factors = man["factors"]
    names = [f["name"] for f in factors]
    X = np.array([[p[n] for n in names] for p in sorted(man["points"], key=lambda p: p["point"])], dtype=float)
    ee = morris_effects(X, y, [f["high"] - f["low"] for f in factors])
    t = morris_table(ee, names, boot=500, seed=1).set_index("factor")
    assert t.loc["card", "mu_star"] == 0 and t.loc["card", "sigma"] == 0
    assert t.loc["earn", "mu_star_low"] > 0 and t.loc["earn", "r"] == 8
    data = read_dataset(morris)
    table = morris_indices(data, summary_table(data), boot=100)
    assert set(table[table.policy == "points"]["factor"]) == {"earn"}
    lines = driver_lines("morris", table)
    assert any(ln.startswith("points vs none") and "mu*" in ln and "excludes 0" in ln for ln in lines)
    assert write_batch_report(morris, boot=100).method == "morris"


def test_morris_effects_are_the_textbook_ones():
    # one trajectory over two factors: y = 3 a (per unit of a's range 0..2, so 6 per unit range) and nothing of b
    X = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 1.0]])
    y = 3 * X[:, 0]
    ee = morris_effects(X, y, [2.0, 1.0])
    assert ee.tolist() == [[6.0, 0.0]]


def test_independent_streams_keep_fresh_customers_per_point(tmp_path):
    store = run(tmp_path, "  lhs: {samples: 4}", extra="streams: independent\n")
    runs = read_dataset(store).runs
    none = runs[(runs.outcome == "net_profit") & (runs.policy == "none")]["value"]
    assert none.nunique() == 4  # the same baseline, four different sets of customers
    assert json.loads((store / "manifest.json").read_text())["streams"] == "independent"


def test_a_store_of_the_old_addressing_is_not_resumed(tmp_path):
    store = run(tmp_path, "  lhs: {samples: 3}")
    mpath = store / "manifest.json"
    man = json.loads(mpath.read_text())
    man["format"] = 1
    del man["streams"]
    mpath.write_text(json.dumps(man))
    with pytest.raises(BatchError, match="dataset format 1"):
        run_batch(tmp_path / "spec.yaml", store, jobs=1, resume=True)


def test_lab_run_reproduces_a_row_of_a_shared_stream_batch(saltelli, tmp_path, capsys):
    runs = read_dataset(saltelli).runs
    profit = runs[runs.outcome == "net_profit"].set_index(["point", "replication", "policy"])["value"]
    spec = saltelli.parent / "spec.yaml"
    out = tmp_path / "p5"
    assert main(["run", str(spec), "--policy", "points", "--point", "5", "--replication", "0", "--out", str(out)]) == 0
    assert "design point 5, replication 0" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outcomes"]["net_profit"] == profit[(5, 0, "points")] and summary["address"] == [0]


def test_a_factor_belongs_to_the_policy_its_path_names():
    facs = [{"name": "a", "path": "population.segments.x.reward_sensitivity"},
            {"name": "b", "path": "policies.points.rules.earn.do.0.award.amount"},
            {"name": "c", "path": "policies.credit.lines.store.limit"}]
    assert [policy_of(f["path"]) for f in facs] == [None, "points", "credit"]
    assert [f["name"] for f in applicable(facs, "points")] == ["a", "b"]


@pytest.mark.parametrize("design, code_at, words", [
    ("  saltelli: {samples: 12}", (None, 23), "use samples: 8 or 16"),
    ("  morris: {trajectories: 4, levels: 5}", (None, 37), "even number of levels"),
])
def test_bad_saltelli_and_morris_designs_are_refused_where_written(tmp_path, design, code_at, words):
    spec = write(tmp_path, design)
    with pytest.raises(LabError) as e:
        load_spec(spec)
    (d,) = e.value.diagnostics
    line = spec.read_text().splitlines().index(design) + 1
    assert (d.file, d.line, d.col, d.code) == (str(spec), line, code_at[1], "design") and words in d.message


def test_a_saltelli_design_needs_numeric_factors(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: crn\nscenario: {CLASSROOM}\npolicies: [none, points]\nfactors:\n"
                    "  s:\n    path: population.segments.bargain_hunters.reward_sensitivity\n    levels: [0.5, 1.5]\n"
                    "design:\n  saltelli: {samples: 4}\n")
    with pytest.raises(LabError) as e:
        load_spec(spec)
    (d,) = e.value.diagnostics
    assert d.code == "design" and d.line == 6 and "numeric ranges" in d.message


def test_saltelli_and_morris_sizes():
    from lab.batch.design import Morris, Saltelli, unit_points

    u = unit_points(Saltelli(samples=8), 3, seed=1)
    assert u.shape == (8 * 5, 3) and (u >= 0).all() and (u <= 1).all()
    m = unit_points(Morris(trajectories=5, levels=4), 3, seed=1)
    assert m.shape == (5 * 4, 3)
    assert np.array_equal(unit_points(Morris(trajectories=5, levels=4), 3, seed=1), m)
