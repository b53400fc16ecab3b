"""Plausible ranges (lab/scenario/ranges.py): the table, a scenario's `uncertainty:` section, designs, apply."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lab.errors import LabError
from lab.scenario.loader import check_scenario, read_scenario
from lab.scenario.model import Behaviour, Scenario
from lab.scenario.ranges import (SEGMENT_PREFIX, TABLE, Range, apply, field_meta, markdown_table, plausible_ranges,
                                 sample)

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"


def load(text: str, tmp_path: Path, name: str = "s.yaml") -> tuple[Scenario, list]:
    """A scenario from the classroom's text with `text` appended, and its check_scenario diagnostics."""
    p = tmp_path / name
    p.write_text(CLASSROOM.read_text() + text)
    sc, where = read_scenario(p)
    return sc, check_scenario(sc, where, str(p))


def base() -> Scenario:
    return read_scenario(CLASSROOM)[0]


def flat(obj, prefix: str = "") -> dict[str, object]:
    """Every leaf of a scenario by its dotted path."""
    if dataclasses.is_dataclass(obj):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: obj}


def cdf(r: Range, x: np.ndarray) -> np.ndarray:
    """The distribution function of a range, written independently of Range.ppf."""
    if r.shape == "uniform":
        return (x - r.low) / (r.high - r.low)
    if r.shape == "log-uniform":
        return np.log(x / r.low) / math.log(r.high / r.low)
    c = (r.mode - r.low) / (r.high - r.low)
    return stats.triang.cdf(x, c, loc=r.low, scale=r.high - r.low)


# --------------------------------------------------------------------------- the table
def test_every_range_lies_within_its_fields_declared_bounds():
    assert len({r.path for r in TABLE}) == len(TABLE)
    for r in TABLE:
        default, meta = field_meta(r.path)
        assert r.low < r.high, r.path
        assert r.shape in ("uniform", "log-uniform", "triangular"), r.path
        assert r.reason, r.path
        if r.shape == "log-uniform":
            assert r.low > 0, r.path
        if r.shape == "triangular":
            assert r.low <= r.mode <= r.high, r.path
        else:
            assert r.mode is None, r.path
        if r.multiplier:  # the multiplier times the field's default stays within the bounds
            assert r.low >= 0, r.path
            for v in (r.low, r.high):
                assert not meta.violates(v * default), (r.path, v)
        else:
            for v in (r.low, r.high):
                assert not meta.violates(v), (r.path, v, meta.bounds_text())
            assert r.low <= default <= r.high, (r.path, default)


def test_every_behaviour_parameter_has_a_range():
    numeric = {f"behaviour.{f.name}" for f in dataclasses.fields(Behaviour) if f.type in ("float", float)}
    assert numeric == {r.path for r in TABLE if r.path.startswith("behaviour.")}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_segments_stay_within_bounds_at_the_multipliers_extremes(path):
    sc = read_scenario(path)[0]
    for r in (r for r in TABLE if r.multiplier):
        _, meta = field_meta(r.path)
        name = r.path[len(SEGMENT_PREFIX):]
        for seg in sc.population.segments.values():
            for v in (r.low, r.high):
                assert not meta.violates(getattr(seg, name) * v), (path.stem, r.path)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_own_values_lie_inside_the_ranges(path):
    sc = read_scenario(path)[0]
    multipliers = [r for r in TABLE if r.multiplier]
    assert apply(sc, multipliers, [1.0] * len(multipliers)).population == sc.population  # 1 = as written
    for r in (r for r in TABLE if not r.multiplier):
        obj: object = sc
        for part in r.path.split("."):
            obj = getattr(obj, part)
        assert r.low <= obj <= r.high, (path.stem, r.path, obj)


def test_goal_gradient_range_is_kivetz_et_als_10_to_30_percent_acceleration():
    r = next(r for r in TABLE if r.path == "behaviour.goal_gradient")

    def shorter(g: float) -> float:  # last vs first interpurchase time of a 10-stamp card, power 2
        return 1 - (1 + g * 0.1 ** 2) / (1 + g * 0.9 ** 2)

    assert shorter(r.low) == pytest.approx(0.10, abs=0.005)
    assert shorter(r.mode) == pytest.approx(0.20, abs=0.005)
    assert shorter(r.high) == pytest.approx(0.30, abs=0.005)


# --------------------------------------------------------------------------- shapes
def test_shapes_map_quantiles_correctly():
    u = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    uni = Range("x", 2.0, 6.0, "uniform")
    assert uni.ppf(u).tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    log = Range("x", 0.25, 4.0, "log-uniform")
    assert log.ppf(0.5) == pytest.approx(math.sqrt(0.25 * 4.0))  # the median is the geometric mean
    assert log.ppf(u) == pytest.approx([0.25, 0.5, 1.0, 2.0, 4.0])
    tri = Range("x", 0.14, 0.54, "triangular", 0.31)
    c = (0.31 - 0.14) / 0.40
    assert tri.ppf(c) == pytest.approx(0.31)  # the mode sits at quantile (mode - low) / (high - low)
    grid = np.linspace(0, 1, 101)
    assert tri.ppf(grid) == pytest.approx(stats.triang.ppf(grid, c, loc=0.14, scale=0.40), abs=1e-12)
    fixed = Range("x", 0.3, 0.3, "fixed")
    assert fixed.fixed and fixed.ppf(u).tolist() == [0.3] * 5


# --------------------------------------------------------------------------- designs
@pytest.mark.parametrize("method", ["lhs", "sobol"])
def test_samples_lie_within_bounds_and_repeat_bit_for_bit(method):
    ranges = plausible_ranges(base())
    x = sample(ranges, 64, seed=7, method=method)
    assert x.shape == (64, len(ranges))
    for j, r in enumerate(ranges):
        assert np.all((x[:, j] >= r.low) & (x[:, j] <= r.high)), r.path
        assert np.unique(x[:, j]).size == 64, r.path
    assert sample(ranges, 64, seed=7, method=method).tobytes() == x.tobytes()
    assert sample(ranges, 64, seed=8, method=method).tobytes() != x.tobytes()


def test_latin_hypercube_puts_one_world_in_each_stratum_of_every_parameter():
    ranges = TABLE
    n = 50
    x = sample(ranges, n, seed=20261123, method="lhs")
    for j, r in enumerate(ranges):
        strata = np.floor(cdf(r, x[:, j]) * n).astype(int)
        assert sorted(strata.tolist()) == list(range(n)), r.path


def test_sobol_needs_a_power_of_two_and_methods_are_checked():
    with pytest.raises(ValueError, match="power of two"):
        sample(TABLE, 100, seed=1, method="sobol")
    with pytest.raises(ValueError, match="unknown method"):
        sample(TABLE, 8, seed=1, method="grid")


def test_fixed_ranges_are_constant_columns_and_take_no_dimension():
    varying = TABLE[:3]
    fixed = Range("behaviour.points_hope", 0.7, 0.7, "fixed")
    mixed = (varying[0], fixed, varying[1], varying[2])
    x = sample(mixed, 16, seed=3, method="sobol")
    assert np.all(x[:, 1] == 0.7)
    assert x[:, [0, 2, 3]].tobytes() == sample(varying, 16, seed=3, method="sobol").tobytes()


# --------------------------------------------------------------------------- apply
def test_apply_changes_exactly_the_named_fields_and_leaves_the_scenario_alone():
    sc = base()
    before = flat(sc)
    ranges = [r for r in TABLE if r.path in ("behaviour.goal_gradient", "store.staff.experience_days",
                                             "market.competitor_pull")]
    new = apply(sc, ranges, [0.2, 90.0, 0.01])
    assert flat(sc) == before  # nothing mutated
    after = flat(new)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"behaviour.goal_gradient", "store.staff.experience_days", "market.competitor_pull"}
    assert (new.behaviour.goal_gradient, new.store.staff.experience_days, new.market.competitor_pull) == \
        (0.2, 90.0, 0.01)
    assert isinstance(new, Scenario)


def test_apply_multiplies_every_segment_and_clips_to_the_fields_bounds():
    sc = base()
    r = next(r for r in TABLE if r.path == "population.segments.*.reward_sensitivity")
    new = apply(sc, [r], [1.2])
    for name, seg in sc.population.segments.items():
        assert new.population.segments[name].reward_sensitivity == seg.reward_sensitivity * 1.2
    changed = {k for k, v in flat(sc).items() if flat(new)[k] != v}
    assert changed == {f"population.segments.{s}.reward_sensitivity" for s in sc.population.segments}
    wide = Range(r.path, 0.0, 10.0)
    assert all(s.reward_sensitivity == 5.0 for s in apply(sc, [wide], [10.0]).population.segments.values())
    with pytest.raises(ValueError):
        apply(sc, [r], [1.0, 2.0])


def test_apply_of_a_sampled_row_gives_a_scenario_that_checks(tmp_path):
    sc, _ = load("", tmp_path)
    ranges = plausible_ranges(sc)
    for row in sample(ranges, 4, seed=11):
        new = apply(sc, ranges, row)
        j = [r.path for r in ranges].index("store.learning_rate")
        assert [new.behaviour.goal_gradient, new.store.learning_rate] == [row[0], row[j]]
        _, where = read_scenario(tmp_path / "s.yaml")
        assert check_scenario(new, where, "s.yaml") == []


# --------------------------------------------------------------------------- the uncertainty section
def test_a_scenario_narrows_widens_and_fixes_ranges(tmp_path):
    sc, diags = load("""
uncertainty:
  behaviour.goal_gradient: {low: 0.2, high: 0.45}
  behaviour.habituation: {low: 0.1, high: 8}
  behaviour.points_hope: {fixed: 0.5}
  behaviour.debt_stress: {shape: triangular, mode: 0.001}
  population.segments.*.reward_sensitivity: {high: 2}
""", tmp_path)
    assert diags == []
    got = {r.path: r for r in plausible_ranges(sc)}
    assert [r.path for r in plausible_ranges(sc)] == [r.path for r in TABLE]
    assert got["behaviour.goal_gradient"] == dataclasses.replace(got["behaviour.goal_gradient"], low=0.2, high=0.45,
                                                                 shape="triangular", mode=0.31)
    assert (got["behaviour.habituation"].low, got["behaviour.habituation"].high,
            got["behaviour.habituation"].shape) == (0.1, 8.0, "log-uniform")
    assert got["behaviour.points_hope"].fixed and got["behaviour.points_hope"].low == 0.5
    assert (got["behaviour.debt_stress"].shape, got["behaviour.debt_stress"].mode) == ("triangular", 0.001)
    assert got["population.segments.*.reward_sensitivity"].high == 2.0
    untouched = {r.path: r for r in TABLE}
    assert got["behaviour.reward_delight"] == untouched["behaviour.reward_delight"]
    assert plausible_ranges(base()) == TABLE


def test_the_docs_example_checks_on_every_shipped_scenario(tmp_path):
    text = (ROOT / "docs" / "MODEL.md").read_text()
    block = re.search(r"```yaml\n(uncertainty:\n.*?)```", text, re.S).group(1)
    for path in SCENARIOS:
        p = tmp_path / path.name
        p.write_text(path.read_text() + "\n" + block)
        sc, where = read_scenario(p)
        assert check_scenario(sc, where, str(p)) == [], path.stem


BAD = [
    ("behaviour.goal_gradient: {low: 0.3, high: 0.2}", "low", "conflict", "low 0.3 is above high 0.2"),
    ("behaviour.goal_gradient: {low: 0.6}", "low", "conflict", "the table's range is 0.14 to 0.54"),
    ("behavior.goal_gradient: {low: 0.2}", "key", "unknown-path", "did you mean 'behaviour.goal_gradient'?"),
    ("population.segments.regulars.reward_sensitivity: {low: 1}", "key", "unknown-path",
     "write 'population.segments.*.reward_sensitivity'"),
    ("behaviour.reward_delight: {low: -0.1}", "low", "range", "outside the field's bounds (>= 0 and <= 1)"),
    ("store.learning_rate: {high: 1.2}", "high", "range", "high 1.2 is outside the field's bounds"),
    ("behaviour.points_hope: {fixed: 11}", "fixed", "range", "fixed value 11 is outside the field's bounds"),
    ("population.segments.*.reward_sensitivity: {high: 4}", "high", "range",
     "takes segment 'bargain_hunters' to 6"),
    ("population.segments.*.credit_appetite: {fixed: -1}", "fixed", "range", "must be >= 0"),
    ("behaviour.goal_gradient_power: {fixed: 2, low: 1}", "low", "conflict", "drop 'low'"),
    ("behaviour.habituation: {low: 0}", "low", "invalid", "log-uniform range needs low above 0"),
    ("behaviour.goal_gradient: {low: 0.35}", "low", "invalid", "the mode 0.31 is outside 0.35 to 0.54"),
    ("behaviour.debt_stress: {shape: triangular}", "key", "required", "needs a mode"),
    ("behaviour.debt_stress: {mode: 0.001}", "mode", "conflict", "a mode is for a triangular shape"),
    ("behaviour.debt_stress: {low: 0.004, high: 0.004}", "key", "invalid", "write fixed: 0.004"),
]


@pytest.mark.parametrize("entry,at,code,words", BAD, ids=[b[2] + ":" + b[0].split(":")[0] for b in BAD])
def test_bad_ranges_are_reported_at_their_position(tmp_path, entry, at, code, words):
    text = "\nuncertainty:\n  " + entry + "\n"
    sc, diags = load(text, tmp_path)
    assert len(diags) == 1, diags
    d = diags[0]
    line = CLASSROOM.read_text().count("\n") + 3
    assert (d.code, d.line) == (code, line)
    assert words in d.message
    line_text = (tmp_path / "s.yaml").read_text().splitlines()[line - 1]
    if at == "key":
        assert d.col > 2  # the entry (its value), not the section
    else:
        assert line_text[d.col - 1:].startswith(line_text[line_text.index(at + ":") + len(at) + 2:]), (d, line_text)
    assert str(d).startswith(f"{tmp_path / 's.yaml'}:{line}:{d.col}: ")


def test_bad_shape_is_refused_by_the_schema(tmp_path):
    with pytest.raises(LabError) as e:
        load("\nuncertainty:\n  behaviour.goal_gradient: {shape: normal}\n", tmp_path)
    assert "normal" in str(e.value)


# --------------------------------------------------------------------------- docs
def test_docs_table_lists_exactly_the_ranges_in_the_code():
    text = (ROOT / "docs" / "MODEL.md").read_text()
    section = text.split("\n## 17. Plausible ranges\n", 1)[1].split("\n## ", 1)[0]
    start = section.index("| parameter |")
    table = section[start:].split("\n\n", 1)[0].rstrip("\n") + "\n"
    assert table == markdown_table(), "regenerate the table with: python -m lab.scenario.ranges"
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    assert [row[0].strip("| `") for row in rows] == [r.path for r in TABLE]
    for row, r in zip(rows, TABLE):
        assert (float(row[2]), float(row[3])) == (r.low, r.high), r.path
        shape = row[4]
        assert shape.split(" ")[0] == r.shape, r.path
        if r.mode is not None:
            assert float(re.search(r"mode ([0-9.]+)", shape).group(1)) == r.mode
        default, _ = field_meta(r.path)
        if not r.multiplier:
            assert float(row[1]) == default, r.path
