"""A batch factor on a whole quantity takes whole numbers, inferred from what the parameter counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.batch import load_spec
from lab.errors import LabError
from tests.conftest import CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = CLASSROOM_DAY0  # a day-0 cohort: the specs run a few weeks, the shipped store launches on day 365


def _spec(tmp_path: Path, factors: str, design: str = "{lhs: {samples: 8}}") -> Path:
    f = tmp_path / "b.yaml"
    f.write_text(f"name: b\nscenario: {SCENARIO}\npolicies: [none, performance, points]\nreplications: 1\n"
                 f"factors:\n{factors}design: {design}\n")
    return f


STAMPS = ("  stamps:\n    path: policies.performance.rules.free_favourite.do.0.redeem.cost\n"
          "    low: {low}\n    high: 8\n{extra}")


def test_a_stamp_cards_length_is_sampled_as_whole_stamps(tmp_path):
    batch = load_spec(_spec(tmp_path, STAMPS.format(low=3, extra="")))
    (fac,) = batch.factors
    assert fac.axis.kind == "int" and fac.dtype == "int64"
    values = [p["stamps"] for p in batch.points]
    assert all(isinstance(v, int) for v in values) and len(set(values)) > 1


@pytest.mark.parametrize("template, why", [
    ("customer.points['stamps'] >= {value}", "whole points"),
    ("customer.purchases >= {value}", "a count"),
    ("{value} <= customer.categories_bought", "a count"),
])
def test_a_template_comparing_a_count_with_the_value_takes_whole_numbers(tmp_path, template, why):
    factors = (f"  t:\n    path: policies.performance.rules.free_favourite.when\n    template: \"{template}\"\n"
               "    low: 3\n    high: 8\n")
    batch = load_spec(_spec(tmp_path, factors))
    assert batch.factors[0].axis.kind == "int"
    assert all(isinstance(p["t"], int) for p in batch.points)
    with pytest.raises(LabError) as info:
        load_spec(_spec(tmp_path, factors.replace("low: 3", "low: 2.5")))
    assert why in str(info.value) and "takes whole numbers" in str(info.value)


def test_a_fractional_range_on_a_whole_quantity_is_refused_with_the_reason(tmp_path):
    with pytest.raises(LabError) as info:
        load_spec(_spec(tmp_path, STAMPS.format(low=2.5, extra="")))
    (d,) = info.value.diagnostics
    assert d.code == "type" and "'stamps' ledger only ever holds whole points" in d.message


def test_type_float_keeps_fractions_when_asked(tmp_path):
    batch = load_spec(_spec(tmp_path, STAMPS.format(low=3, extra="    type: float\n")))
    assert batch.factors[0].axis.kind == "float"


def test_a_ledger_with_fractional_awards_is_not_whole(tmp_path):
    factors = ("  earn:\n    path: policies.points.rules.earn.do.0.award.amount\n"
               "    template: \"purchase.amount * {value}\"\n    levels: [0.5, 1.5]\n"
               "  cost:\n    path: policies.points.rules.redeem.do.0.redeem.cost\n    low: 300\n    high: 800\n")
    batch = load_spec(_spec(tmp_path, factors))
    kinds = {f.name: f.axis.kind for f in batch.factors}
    assert kinds["cost"] == "int"  # judged on the policy as written (floor(purchase.amount) is whole)
    text = (ROOT / "policies" / "points.yaml").read_text().replace("floor(purchase.amount)", "purchase.amount * 1.5")
    (tmp_path / "points.yaml").write_text(text)
    (tmp_path / "s.yaml").write_text(SCENARIO.read_text())
    f = tmp_path / "b2.yaml"
    f.write_text("name: b2\nscenario: s.yaml\npolicies: [none, points]\nreplications: 1\nfactors:\n"
                 "  cost:\n    path: policies.points.rules.redeem.do.0.redeem.cost\n    low: 300\n    high: 800\n"
                 "design: {lhs: {samples: 4}}\n")
    assert load_spec(f).factors[0].axis.kind == "float"
