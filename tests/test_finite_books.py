"""Finite books: policy arithmetic that cannot leave the finite numbers, money bounded in the schema, a guard that
stops a run on a non-finite number, bounded scenario values, at most 64 rules (issue 14, silent corruption)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from lab.cli import main
from lab.errors import LabError
from lab.policy.expr import MAX_MAGNITUDE, compile_expression
from lab.policy.loader import load_policy
from lab.policy.runtime import MAX_RULES, PolicyRuntime
from lab.scenario.loader import load_scenario, world_of
from tests.conftest import day0_file

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"
WORLD = world_of(load_scenario(CLASSROOM).scenario)
DIAG = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+$")


# --------------------------------------------------------------------------- arithmetic total and finite
@pytest.mark.parametrize("text, expected", [
    ("1 / 5e-324", MAX_MAGNITUDE),
    ("0 * (1 / 5e-324)", 0.0),
    ("-1 / 5e-324", -MAX_MAGNITUDE),
    ("((1e12 ** 4) ** 4) ** 4", MAX_MAGNITUDE),
    ("(1e12 ** 4) % 7", MAX_MAGNITUDE % 7),
    ("round(((1e12 ** 4) ** 4) ** 4) - floor(((1e12 ** 4) ** 4) ** 4)", 0.0),
    ("(1e12 * 1e12) - (1e12 * 1e12)", 0.0),
    ("(1 / 5e-324) * (1 / 5e-324) - (1 / 5e-324) * (1 / 5e-324)", 0.0),
    ("(1e12 ** 4) // 1e-300", MAX_MAGNITUDE),
    ("log(1e12 ** 4)", math.log(MAX_MAGNITUDE)),
    ("sqrt(1e12 ** 3) ** 4", MAX_MAGNITUDE),
    ("1e12 + 1e12", 2e12),  # inside the range: untouched
    ("1 / 3", 1 / 3),
])
def test_every_operation_stays_within_the_documented_magnitude(text, expected):
    out = compile_expression(text, {}).evaluate({}, 3)
    assert np.all(np.isfinite(out))
    assert out.tolist() == [expected] * 3


def test_a_huge_field_value_is_read_within_the_magnitude():
    from lab.policy.expr import ExprType, Field
    schema = {"x": Field(ExprType.NUMBER)}
    out = compile_expression("x * 0 + x - x", schema).evaluate({"x": np.array([np.inf, -np.inf, 5.0])}, 3)
    assert out.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("field, value", [
    ("cost_per_member_per_year", ".inf"), ("cost_per_member_per_year", "1.0e+308"),
    ("participation", ".nan"),
])
def test_money_fields_of_a_policy_refuse_infinite_and_absurd_values(tmp_path, capsys, field, value):
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\n{field}: {value}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(DIAG.match(line) for line in err), err
    assert f"{path}:2:" in err[0] and field in err[0]


@pytest.mark.parametrize("yaml_value", [
    "points: {points: {value: .inf}}",
    "points: {points: {value: 1.0e+308}}",
    "budget: {amount: .inf}",
    "credit: {card: {limit: 1.0e+308}}",
    "rules: [{id: r, on: purchase, budget: .inf, do: [{discount: {percent: 1}}]}]",
    "points: {p: {}}\nrules: [{id: r, on: purchase, do: [{redeem: {ledger: p, cost: 1.0e+300, discount: 5}}]}]",
    "points: {p: {}}\nrules: [{id: r, on: purchase, do: [{redeem: {ledger: p, cost: 500, discount: .inf}}]}]",
])
def test_money_and_points_are_bounded_in_the_schema(tmp_path, capsys, yaml_value):
    path = tmp_path / "p.yaml"
    path.write_text(f"name: p\n{yaml_value}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(DIAG.match(line) for line in err), err
    assert "expected a number" in err[0]


def test_the_json_schema_states_the_money_bounds():
    schema = json.loads((ROOT / "docs" / "policy.schema.json").read_text())
    text = json.dumps(schema)
    assert '"maximum": 1000000.0' in text or '"maximum": 1000000' in text
    assert "no retail purchase or credit line is larger" in text


# --------------------------------------------------------------------------- the reproducer
NAN_AWARD_REDEEM = """\
name: nan_award_redeem
points:
  points: {value: 0.01}
rules:
  - id: earn
    on: purchase
    do:
      - award: {ledger: points, amount: "0 * (1 / 5e-324)"}
  - id: redeem
    on: purchase
    when: "customer.points['points'] >= 500"
    do:
      - redeem: {ledger: points, cost: 500, discount: 5}
"""


def test_the_nan_award_redeem_policy_keeps_finite_books(tmp_path, capsys):
    """Before: every ledger NaN, points_liability null, no repeat purchase (the population froze)."""
    policy = tmp_path / "nan_award_redeem.yaml"
    policy.write_text(NAN_AWARD_REDEEM)
    out = tmp_path / "out"
    assert main(["run", str(day0_file(tmp_path)), "--policy", str(policy), "--customers", "500", "--days", "120",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    outcomes = json.loads((out / "summary.json").read_text())["outcomes"]
    assert outcomes["points_liability"] == 0.0  # awards of 0 points: nothing owed
    assert outcomes["repeat_purchase_rate"] > 0
    for name, value in outcomes.items():
        if isinstance(value, float):
            assert math.isfinite(value), name


# --------------------------------------------------------------------------- the guard on the books
class _NanShop:
    """A field source that serves a non-finite customer fact (what a broken engine or input would do)."""

    def get(self, name: str, idx: np.ndarray) -> np.ndarray | float:
        if name == "customer.spend":
            return np.where(idx == 3, np.nan, 10.0)
        raise KeyError(name)


def test_a_non_finite_number_on_its_way_to_a_ledger_stops_the_run_with_its_place(tmp_path):
    path = tmp_path / "guarded.yaml"
    path.write_text("name: guarded\npoints:\n  points: {}\nrules:\n  - id: earn\n    on: purchase\n    do:\n"
                    "      - award: {ledger: points, amount: \"customer.spend * 2\"}\n")
    cp = load_policy(path, WORLD)
    rt = PolicyRuntime(cp, 5)
    idx = np.arange(5)
    rt.enrol(idx)
    with pytest.raises(LabError) as info:
        rt.purchase(idx, np.zeros(5), np.full(5, 20.0), np.zeros(5, dtype=np.int64), np.ones(5), np.zeros(5),
                    17.0, _NanShop())
    (d,) = info.value.diagnostics
    col = path.read_text().splitlines()[7].index("customer.spend") + 1  # the expression's first character
    assert (d.file, d.line, d.col) == (str(path), 8, col)
    assert "rule 'earn'" in d.message and "'customer.spend * 2'" in d.message
    assert "customer 3" in d.message and "day 17" in d.message and "nan" in d.message
    assert np.isfinite(rt.points["points"].earned).all()  # nothing reached the book


def test_a_finite_batch_passes_the_guard_untouched(tmp_path):
    path = tmp_path / "fine.yaml"
    path.write_text("name: fine\npoints:\n  points: {}\nrules:\n  - id: earn\n    on: purchase\n    do:\n"
                    "      - award: {ledger: points, amount: \"purchase.amount * 2\"}\n")
    rt = PolicyRuntime(load_policy(path, WORLD), 3)
    idx = np.arange(3)
    rt.enrol(idx)
    rt.purchase(idx, np.zeros(3), np.array([1.0, 2.0, 3.0]), np.zeros(3, dtype=np.int64), np.ones(3), np.zeros(3),
                0.0, _NanShop())
    assert rt.points["points"].earned.tolist() == [2.0, 4.0, 6.0]


# --------------------------------------------------------------------------- absurd scenario values
@pytest.mark.parametrize("old, new, key", [
    ("cost_per_acquisition: 40", "cost_per_acquisition: 1.0e-300", "cost_per_acquisition"),
    ("budget_per_year: 10000", "budget_per_year: .inf", "budget_per_year"),
    ("fixed_cost_per_year: 25000", "fixed_cost_per_year: .inf", "fixed_cost_per_year"),
    ("gamma: 15.44}", "gamma: 1.0e+300}", "gamma"),
])
def test_absurd_scenario_values_are_refused_where_they_are_written(tmp_path, capsys, old, new, key):
    text = CLASSROOM.read_text()
    assert old in text
    path = tmp_path / "absurd.yaml"
    path.write_text(text.replace(old, new, 1).replace("../docs", str(ROOT / "docs")))
    line = next(i for i, row in enumerate(path.read_text().splitlines(), 1) if new in row)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(DIAG.match(e) for e in err), err
    assert err[0].startswith(f"{path}:{line}:") and key in err[0] and "expected a number" in err[0]


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "scenarios").glob("*.yaml")))
def test_the_shipped_scenarios_stay_within_the_bounds(name):
    load_scenario(ROOT / "scenarios" / name)


# --------------------------------------------------------------------------- at most 64 rules
def _rules(n: int) -> str:
    body = "".join(f"  - id: r{i}\n    on: purchase\n    when: 'false'\n    do: [{{discount: {{percent: 1}}}}]\n"
                   for i in range(n))
    return "name: many\nrules:\n" + body


def test_more_rules_than_the_transaction_mask_holds_are_refused(tmp_path, capsys):
    """Before: 70 rules validated, and rule 64 (never true) was credited with rule 0's purchases (bit index % 64)."""
    path = tmp_path / "many.yaml"
    path.write_text(_rules(MAX_RULES + 1))
    assert main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{path}:{4 * MAX_RULES + 3}:")
    assert f"at most {MAX_RULES} rules" in line and f"has {MAX_RULES + 1}" in line


def test_sixty_four_rules_are_accepted_and_the_last_is_credited_alone(tmp_path):
    path = tmp_path / "full.yaml"
    path.write_text(_rules(MAX_RULES - 1) + "  - id: last\n    on: purchase\n    do: [{discount: {percent: 1}}]\n")
    rt = PolicyRuntime(load_policy(path, WORLD), 2)
    idx = np.arange(2)
    rt.enrol(idx)
    eff = rt.purchase(idx, np.zeros(2), np.full(2, 10.0), np.zeros(2, dtype=np.int64), np.ones(2), np.zeros(2),
                      0.0, _NanShop())
    assert eff.rules.tolist() == [1 << 63, 1 << 63]


def test_a_rule_with_more_actions_than_the_limit_is_refused(tmp_path, capsys):
    from lab.policy.runtime import MAX_ACTIONS
    path = tmp_path / "acts.yaml"
    acts = "".join("      - discount: {percent: 1}\n" for _ in range(MAX_ACTIONS + 1))
    path.write_text(f"name: a\nrules:\n  - id: big\n    on: purchase\n    do:\n{acts}")
    assert main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{path}:{6 + MAX_ACTIONS}:") and f"at most {MAX_ACTIONS} actions" in line
