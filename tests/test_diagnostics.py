"""Diagnostics carry a stable code and the YAML path of the field, besides FILE:LINE:COL: message.

Tests here assert on codes and paths, not on prose: the words of a message may improve,
its code and path are the interface programs (editors, CI annotations) rely on.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from lab.batch import load_spec
from lab.config import build, parse_yaml, read_yaml
from lab.errors import CODES, Diagnostic, Diagnostics, LabError, suggest
from lab.policy.model import Policy
from lab.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"
POINTS = (ROOT / "policies" / "points.yaml").read_text()


def diagnostics(call, *args, **kw) -> tuple[Diagnostic, ...]:
    with pytest.raises(LabError) as e:
        call(*args, **kw)
    return e.value.diagnostics


def found(diags) -> list[tuple[str, tuple]]:
    return [(d.code, d.path) for d in diags]


def policy(text: str):
    return build(parse_yaml(text, "p.yaml"), Policy, "p.yaml")


# --------------------------------------------------------------------------- the record
def test_str_is_the_one_line_compiler_form_without_code_or_path():
    d = Diagnostic("p.yaml", 3, 7, "unknown key 'amout'", "unknown-key", ("rules", 0, "amout"))
    assert str(d) == "p.yaml:3:7: unknown key 'amout'"
    assert d == Diagnostic("p.yaml", 3, 7, "unknown key 'amout'")  # equality is about what the user sees


def test_codes_and_paths_survive_pickling_between_processes():
    err = LabError([Diagnostic("p.yaml", 1, 2, "m", "range", ("a", 0))])
    back = pickle.loads(pickle.dumps(err))
    assert found(back.diagnostics) == [("range", ("a", 0))]


def test_the_collector_refuses_an_undeclared_code_and_sorts_on_request():
    coll = Diagnostics("f.yaml")
    with pytest.raises(ValueError, match="unknown diagnostic code"):
        coll.add(1, 1, "no-such-code", "x")
    coll.add(5, 1, "type", "later")
    coll.add(2, 3, "range", "earlier", ("a",))
    coll.add(2, 3, "range", "earlier", ("a",))
    assert [d.line for d in coll.error().diagnostics] == [5, 2, 2]
    assert [(d.line, d.code, d.path) for d in coll.error(sort=True).diagnostics] == [(2, "range", ("a",)),
                                                                                     (5, "type", ())]
    assert all(code == code.lower() and " " not in code and meaning for code, meaning in CODES.items())


def test_the_suggestion_helper_offers_the_closest_name_or_lists_few_candidates():
    assert suggest("pionts", ["points", "stamps"]) == "; did you mean 'points'?"
    assert suggest("zzz", ["points", "stamps"]) == "; expected one of: points, stamps"
    assert suggest("zzz", ["points", "stamps"], list_all=False) == ""
    assert suggest("Award", ["award", "redeem"]) == "; did you mean 'award'?"


# --------------------------------------------------------------------------- the YAML reader
@pytest.mark.parametrize("text, code, path", [
    ("a: 1\nb:\n  c: 1\n  c: 2\n", "duplicate-key", ("b", "c")),
    ("rules:\n  - x: 1\n    x: 2\n", "duplicate-key", ("rules", 0, "x")),
    ("a:\n  - 1\n  - !!python/object 2\n", "yaml-tag", ("a", 1)),
    ("a: !!map 1\n", "yaml-tag", ("a",)),
    ("a:\n  1: x\n", "key-type", ("a",)),
    ("a:\n  <<: 3\n", "yaml-tag", ("a", "<<")),
    ("a: *nope\n", "yaml-alias", ("a",)),
    ("a: [1, 2\n", "yaml-syntax", ()),
    ("a: 1\n---\nb: 2\n", "yaml-syntax", ()),
    ("", "file", ()),
    ("a: \x07\n", "file", ()),
    ("a: " + "[" * 70 + "]" * 70 + "\n", "yaml-limit", ("a", 0, 0, 0)),
])
def test_the_yaml_reader_codes_and_locates_each_problem(text, code, path):
    d = diagnostics(parse_yaml, text, "f.yaml")
    assert (d[0].code, d[0].path[:len(path)]) == (code, path)
    assert len(d[0].path) == len(path) or code == "yaml-limit"
    assert str(d[0]).startswith(f"f.yaml:{d[0].line}:{d[0].col}: ")


def test_an_unreadable_file_is_a_file_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: \xff\n")
    assert found(diagnostics(read_yaml, bad)) == [("file", ())]
    assert found(diagnostics(read_yaml, tmp_path / "missing.yaml")) == [("file", ())]


# --------------------------------------------------------------------------- the builder
def test_builder_codes_name_the_kind_of_mistake_and_its_field():
    # a required key misspelt is one mistake, said once where it was made (not also as 'amount' missing)
    text = POINTS.replace("award: {ledger: points, amount:", "award: {ledger: points, amout:")
    assert found(diagnostics(policy, text)) == [("unknown-key", ("rules", 0, "do", 0, "award", "amout"))]
    # one left out is missing; a key unlike any required one is unknown, and the required one still missing
    text = POINTS.replace("award: {ledger: points, amount:", "award: {ledger: points, zzz:")
    assert set(found(diagnostics(policy, text))) == {("unknown-key", ("rules", 0, "do", 0, "award", "zzz")),
                                                    ("missing-key", ("rules", 0, "do", 0, "award", "amount"))}


@pytest.mark.parametrize("old, new, code, path", [
    ("value: 0.01", "value: cheap", "type", ("points", "points", "value")),
    ("value: 0.01", "value: -1", "range", ("points", "points", "value")),
    ("on: purchase\n    when", "on: purchse\n    when", "unknown-variant", ("rules", 1, "on", "purchse")),
    ("- redeem: {ledger", "- redeeem: {ledger", "unknown-variant", ("rules", 1, "do", 0, "redeeem")),
    ("- redeem: {ledger: points, cost: 500, discount: 5}",
     "- {redeem: {ledger: points}, award: {ledger: points}}", "variant-shape", ("rules", 1, "do", 0)),
    ("cost_per_member_per_year: 1.0", "cost_per_member_per_year: 1.0\nname: twice", "duplicate-key", ("name",)),
])
def test_builder_codes_for_types_bounds_choices_and_variants(old, new, code, path):
    assert old in POINTS
    d = diagnostics(policy, POINTS.replace(old, new, 1))
    assert (code, path) in found(d), found(d)


def test_a_top_level_list_is_a_type_problem_at_the_root():
    assert found(diagnostics(policy, "- 1\n")) == [("type", ())]


# --------------------------------------------------------------------------- the loaders
def test_scenario_references_are_unknown_names_at_their_path(tmp_path):
    text = CLASSROOM.read_text()
    anchor = "      reward_sensitivity: 1.0\n"
    assert text.count(anchor) == 1
    bad = tmp_path / "classroom.yaml"
    bad.write_text(text.replace(anchor, anchor + "      categories: {hats: 1.0}\n"))
    d = diagnostics(load_scenario, bad)
    assert found(d) == [("unknown-name", ("population", "segments", "regulars", "categories", "hats"))]


def test_a_word_outside_a_fields_choices_is_a_choice_problem(tmp_path):
    text = CLASSROOM.read_text()
    assert "time_unit: weeks}}" in text
    bad = tmp_path / "classroom.yaml"
    bad.write_text(text.replace("time_unit: weeks}}", "time_unit: wekks}}", 1))
    d = diagnostics(load_scenario, bad)
    assert found(d) == [("choice", ("population", "segments", "regulars", "purchases", "bgnbd", "time_unit"))]
    assert "did you mean 'weeks'?" in d[0].message


def test_a_missing_policy_is_an_unknown_name(tmp_path):
    d = diagnostics(load_scenario, CLASSROOM, ["no_such_policy"])
    assert found(d) == [("unknown-name", ())] and d[0].file == "<command line>"


def spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: t\nscenario: {CLASSROOM}\n" + body)
    return path


def test_batch_spec_problems_carry_spec_paths(tmp_path):
    d = diagnostics(load_spec, spec(tmp_path, """\
policies: [none, points, pionts]
design: {sobol: {samples: 12}}
factors:
  sens:
    path: population.segments.nobody.reward_sensitivity
    low: 0
    high: 1
  value:
    path: policies.points.points.points.value
    low: 0.5
    high: 0.1
"""))
    assert ("unknown-name", ("policies", 2)) in found(d)
    d = diagnostics(load_spec, spec(tmp_path, """\
policies: [none, points]
design: {sobol: {samples: 12}}
factors:
  sens:
    path: population.segments.nobody.reward_sensitivity
    low: 0
    high: 1
  worth:
    path: policies.points.points.points.value
    low: 0.5
    high: 0.1
  run_id:
    path: days
    low: 10
    high: 20
  size:
    path: population.customers
    levels: [10, 10]
"""))
    assert set(found(d)) == {("unknown-path", ("factors", "sens", "path")),
                             ("range", ("factors", "worth", "high")),
                             ("conflict", ("factors", "run_id")),
                             ("duplicate-value", ("factors", "size", "levels")),
                             ("design", ("design", "sobol", "samples"))}


def test_closest_matches_dotted_names_on_their_last_part_when_asked():
    from lab.errors import closest

    fields = ["customer.visits", "customer.spend", "purchase.amount"]
    assert closest("customer.visit", fields) == "customer.visits"
    assert closest("visits", fields) is None
    assert closest("visits", fields, fold_case=False, tail_cutoff=0.75) == "customer.visits"
    assert closest("AMOUNT", ["amount"]) == "amount" and closest("AMOUNT", ["amount"], fold_case=False) is None
