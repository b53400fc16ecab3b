"""Bad policy files: every class of mistake is one exact `FILE:LINE:COL: message`, never a traceback."""

from __future__ import annotations

import re
from tests.conftest import traced_work
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.errors import LabError
from lab.policy.explain import explain
from lab.policy.loader import load_policy
from lab.scenario.loader import load_scenario, world_of

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "policies").glob("*.yaml"))
DIAGNOSTIC = re.compile(r"^(?P<file>.+):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): (?P<msg>\S.*)$")


def problems(tmp_path: Path, text: str, world=None) -> list[str]:
    """Load `text` as a policy file; return its diagnostics (the load must fail with LabError)."""
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LabError) as info:
        load_policy(path, world)
    lines = str(info.value).splitlines()
    assert lines == [str(d) for d in info.value.diagnostics]
    prefix = str(path) + ":"
    assert all(line.startswith(prefix) for line in lines)
    return [line[len(prefix):] for line in lines]


def only(tmp_path: Path, text: str, world=None) -> str:
    found = problems(tmp_path, text, world)
    assert len(found) == 1, found
    return found[0]


def test_unknown_key_suggests_the_closest(tmp_path):
    text = "name: p\npoints:\n  pts:\n    expirey: 30\n"
    assert only(tmp_path, text) == (
        "4:5: unknown key 'expirey' in points ledger 'pts' (at points.pts); did you mean 'expiry_days'?")


def test_unknown_ledger(tmp_path):
    text = ("name: p\npoints:\n  points: {}\nrules:\n  - id: earn\n    on: purchase\n    do:\n"
            "      - award: {ledger: pionts, amount: 1}\n")
    assert only(tmp_path, text) == "8:25: unknown points ledger 'pionts'; did you mean 'points'?"


def test_unknown_ledger_when_none_is_declared(tmp_path):
    text = "name: p\nrules:\n  - id: earn\n    on: purchase\n    do:\n      - award: {ledger: points, amount: 1}\n"
    found = problems(tmp_path, text)
    assert "6:25: unknown points ledger 'points'; declare it under 'points:' first" in found


def test_unknown_tier(tmp_path):
    text = ("name: p\ntiers:\n  levels:\n    member: {}\n    gold: {qualify: 100}\nrules:\n  - id: up\n"
            "    on: purchase\n    do:\n      - set_tier: {tier: golf}\n")
    assert only(tmp_path, text) == "10:26: unknown tier 'golf'; did you mean 'gold'?"


def test_tier_read_in_a_policy_without_tiers(tmp_path):
    text = ("name: p\nrules:\n  - id: r\n    on: purchase\n    when: \"customer.tier == 'gold'\"\n"
            "    do: [discount: {percent: 5}]\n")
    assert only(tmp_path, text) == (
        "5:29: unknown value 'gold' for customer.tier; the only allowed value is 'none' (this policy declares no "
        "tiers, so every customer's tier is 'none'; declare them in a 'tiers:' section, as "
        "policies/tiered_points.yaml does)")


def test_unknown_action_tag(tmp_path):
    text = "name: p\nrules:\n  - id: r\n    on: purchase\n    do:\n      - discont: {percent: 10}\n"
    assert only(tmp_path, text) == "6:9: unknown action 'discont' (at rules[0].do[0]); did you mean 'discount'?"


def test_redeem_on_a_trigger_without_a_purchase(tmp_path):
    text = ("name: p\npoints:\n  points: {}\nrules:\n  - id: r\n    on: birthday\n    do:\n"
            "      - redeem: {ledger: points, cost: 100, discount: 1}\n")
    assert only(tmp_path, text) == (
        "8:17: 'redeem' changes the price of a purchase, so it only works on 'purchase' rules, not 'birthday'; "
        "use a voucher for a discount on the next purchase")


def test_duplicate_rule_id(tmp_path):
    text = ("name: p\nrules:\n  - id: r\n    on: purchase\n    do: [discount: {percent: 5}]\n"
            "  - id: r\n    on: purchase\n    do: [discount: {percent: 5}]\n")
    assert only(tmp_path, text) == ("6:9: rule id 'r' is used twice (first by the rule on line 3); rule ids must be "
                                    "unique")


def test_bad_expression_points_inside_the_expression(tmp_path):
    text = ('name: p\nrules:\n  - id: r\n    on: purchase\n'
            '    when: "purchase.amount >= 50 and customer.purchses > 2"\n    do: [discount: {percent: 5}]\n')
    # the quote opens at column 11, so the text starts at 12 and 'purchses' at 12 + 35
    assert only(tmp_path, text) == "5:47: unknown field 'customer.purchses'; did you mean 'customer.purchases'?"


def test_expression_field_of_another_trigger(tmp_path):
    text = ("name: p\nrules:\n  - id: r\n    on: birthday\n    when: purchase.amount > 5\n"
            "    do: [voucher: {value: 5}]\n")
    assert only(tmp_path, text) == "5:11: purchase.amount is only known on purchase rules, not on 'birthday' rules"


def test_unknown_category_only_against_a_world(tmp_path):
    world = world_of(load_scenario(ROOT / "scenarios" / "classroom.yaml").scenario)
    text = "name: p\nrules:\n  - id: r\n    on: purchase\n    do:\n      - free_item: {category: shrits}\n"
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    load_policy(tmp_path / "p.yaml")  # on its own, any category name is accepted
    assert only(tmp_path, text, world) == "6:31: unknown category 'shrits'; did you mean 'shirts'?"


def test_wrong_type(tmp_path):
    assert only(tmp_path, "name: p\nparticipation: lots\n") == \
        "2:16: expected a number for 'participation', got the text 'lots'"


def test_every_problem_is_reported_in_file_order(tmp_path):
    text = ("name: p\nparticipation: lots\nrules:\n  - id: r\n    on: purchase\n    do:\n"
            "      - award: {ledger: nope, amount: 1}\n")
    found = problems(tmp_path, text)
    assert found[0] == "2:16: expected a number for 'participation', got the text 'lots'"


def test_malformed_yaml(tmp_path):
    text = "name: p\nrules:\n  - id: r\n   on: purchase\n"
    assert only(tmp_path, text) == ("4:4: malformed YAML: did not find expected '-' indicator "
                                    "(while parsing a block collection started at line 3, column 3)")


def test_duplicate_keys(tmp_path):
    assert only(tmp_path, "name: p\nname: q\n") == "2:1: duplicate key 'name' (first defined at line 1)"


def test_alias_bomb_is_refused_with_bounded_work(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")  # 10**9 nodes when expanded
    message, events = traced_work(lambda: only(tmp_path, "\n".join(lines) + "\nname: p\n"))
    assert events < 200_000  # about 3,700 here: counted, not timed (tests.conftest.traced_work)
    assert message.endswith("too many YAML nodes after expanding aliases "
                            "(billion-laughs protection; the limit is 100,000)")


@pytest.mark.parametrize("when, expected", [
    ("(" * 5000, "5:2012: expression is too long (5000 characters, the limit is 2000); split it into smaller rules"),
    ("(" * 1000, "5:44: expression is nested too deeply (more than 32 levels of brackets); simplify it"),
    ("not " * 400 + "true", None),
    ("1" + " + 1" * 400 + " > 0", None),
])
def test_hostile_expressions_are_refused_with_bounded_work(tmp_path, when, expected):
    text = f'name: p\nrules:\n  - id: r\n    on: purchase\n    when: "{when}"\n    do: [discount: {{percent: 5}}]\n'
    message, events = traced_work(lambda: only(tmp_path, text))
    assert events < 200_000  # 5,600 to 32,000 for these cases: counted, not timed
    if expected is not None:
        assert message == expected
    else:
        assert re.match(r"5:\d+: expression is (nested too deeply|too large)", message), message


def test_a_good_policy_loads_and_explains(tmp_path):
    text = ("name: p\npoints:\n  points: {expiry_days: 30}\nrules:\n  - id: earn\n    on: purchase\n"
            "    do: [award: {ledger: points, amount: 'floor(purchase.amount)'}]\n")
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    assert "'earn'" in explain(load_policy(tmp_path / "p.yaml").policy)


# --------------------------------------------------------------------------- random damage to real files
def _mutate(text: str, ops: list[tuple[int, int, int, str]]) -> str:
    """Apply (kind, i, j, char) edits: delete a line, duplicate a line, flip a character, swap two values."""
    for kind, i, j, ch in ops:
        lines = text.splitlines(keepends=True)
        if not lines:
            break
        a, b = i % len(lines), j % len(lines)
        if kind == 0:
            del lines[a]
        elif kind == 1:
            lines.insert(a, lines[a])
        elif kind == 2:
            pos = (i * 7919 + j) % max(len(text), 1)
            text = text[:pos] + ch + text[pos + 1:]
            continue
        else:
            va, vb = lines[a].partition(": ")[2], lines[b].partition(": ")[2]
            if va and vb:
                lines[a] = lines[a].partition(": ")[0] + ": " + vb
                lines[b] = lines[b].partition(": ")[0] + ": " + va
        text = "".join(lines)
    return text


EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 10_000),
                           st.sampled_from(list(" :-[]{}'\"#&*!|>\t\nxq0.9_,@%\\"))), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def damage_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("damaged")


@pytest.fixture(scope="module")
def world():
    return world_of(load_scenario(ROOT / "scenarios" / "classroom.yaml").scenario)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.sampled_from(SHIPPED), edits=EDITS, with_world=st.booleans())
def test_damaged_policies_load_or_fail_with_positioned_diagnostics(damage_dir, world, source, edits, with_world):
    path = damage_dir / source.name
    path.write_text(_mutate(source.read_text(encoding="utf-8"), edits), encoding="utf-8")
    try:
        compiled = load_policy(path, world if with_world else None)
    except LabError as err:
        assert err.diagnostics
        for d in err.diagnostics:
            match = DIAGNOSTIC.match(str(d))
            assert match is not None, str(d)
            assert match["file"] == str(path) and d.line >= 1 and d.col >= 1
    else:
        assert isinstance(explain(compiled.policy), str)


# --------------------------------------------------------------------------- every rule's problems at once
TWO_KINDS = """\
name: p
points:
  points: {value: 0.01}
stacking: {once: first, never: first}
rules:
  - id: a
    on: purchas
    group: once
    do:
      - award: {ledger: points, amount: 1}
  - id: b
    on: purchase
    when: "purchase.amount > "
    do:
      - award: {ledger: points, amount: 1}
  - id: c
    on: purchase
    do:
      - award: {ledger: pionts, amount: 1}
      - awrd: {ledger: points, amount: 1}
  - id: b
    on: purchase
    do:
      - award: {ledger: pionts, amount: 1}
      - free_item: {category: hats}
"""


def test_a_rule_of_the_wrong_shape_does_not_hide_the_other_rules_problems(tmp_path):
    """One reading names the broken rules' problems of shape and the other rules' problems of meaning (an
    expression, a duplicated id, a ledger, a category of the world) at their places, the paths those of the
    whole file. Mended, the file says the same of those rules, and what the broken rules hid: rule c's own
    ledger, and the empty group 'never' (which the first reading cannot tell from a group of a broken rule)."""
    world = world_of(load_scenario(ROOT / "scenarios" / "classroom.yaml").scenario)
    path = tmp_path / "p.yaml"
    path.write_text(TWO_KINDS)
    with pytest.raises(LabError) as info:
        load_policy(path, world)
    found = [(d.line, d.col, d.path[:2], d.message) for d in info.value.diagnostics]
    assert [f[:3] for f in found] == [
        (7, 9, ("rules", 0)),
        (13, 30, ("rules", 1)),
        (20, 9, ("rules", 2)),
        (21, 9, ("rules", 3)),
        (24, 25, ("rules", 3)),
        (25, 31, ("rules", 3))], found
    said = [f[3] for f in found]
    assert said[0].startswith("unknown trigger 'purchas'")
    assert said[1].startswith("invalid syntax")
    assert said[2].startswith("unknown action 'awrd'")
    assert said[3] == "rule id 'b' is used twice (first by the rule on line 11); rule ids must be unique"
    assert said[4] == "unknown points ledger 'pionts'; did you mean 'points'?"
    assert "'hats'" in said[5]
    fixed = TWO_KINDS.replace("on: purchas\n", "on: purchase\n").replace("awrd:", "award:")
    meaning = [f"{line}:{col}: {msg}" for (line, col, _, msg) in found if msg not in (said[0], said[2])]
    assert problems(tmp_path, fixed, world) == [
        "4:32: no rule is in group 'never'; expected one of: once", meaning[0],
        "19:25: unknown points ledger 'pionts'; did you mean 'points'?", *meaning[1:]]


@pytest.mark.parametrize("broken", [
    "  - id: a\n    on: purchas\n    gruop: once\n    do: [discount: {percent: 5}]\n",  # its group misspelt
    "  - 'id: a, group: once'\n",  # a rule that is no mapping
    "  - id: a\n    on: purchase\n    group: {once: 1}\n    do: [discount: {percent: 5}]\n",  # a group no name
])
def test_what_a_broken_rule_may_hold_is_not_said_to_be_missing(tmp_path, broken):
    """A group may be a broken rule's, though its key or its shape hides it: the first reading does not say the
    group is empty. An id used twice by rules kept is said when every broken rule's id reads otherwise."""
    text = ("name: p\nstacking: {once: first}\nrules:\n" + broken
            + "  - id: b\n    on: purchase\n    do: [discount: {percent: 5}]\n" * 2)
    found = problems(tmp_path, text)
    assert not any("group" in f and "no rule" in f for f in found), found
    assert any("rule id 'b' is used twice" in f for f in found) == broken.startswith("  - id: a"), found


def test_an_id_a_broken_rule_may_share_is_not_said_to_be_used_twice(tmp_path):
    """The first use of an id may be a broken rule's (then the line named would be wrong): while a broken rule
    has the id, or an id that cannot be read, an id used twice by the rules kept waits for the mended file."""
    twice = "  - id: r\n    on: purchase\n    do: [discount: {percent: 5}]\n" * 2
    for broken in ("  - id: r\n    on: purchas\n    do: [discount: {percent: 5}]\n",
                   "  - idd: r\n    on: purchase\n    do: [discount: {percent: 5}]\n"):
        found = problems(tmp_path, "name: p\nrules:\n" + broken + twice)
        assert len(found) >= 1 and not any("used twice" in f for f in found), found
    mended = problems(tmp_path, "name: p\nrules:\n" + twice + twice[:len(twice) // 2])  # the broken one mended
    assert [f for f in mended if "used twice" in f] == [
        "6:9: rule id 'r' is used twice (first by the rule on line 3); rule ids must be unique",
        "9:9: rule id 'r' is used twice (first by the rule on line 3); rule ids must be unique"], mended


def test_a_problem_of_shape_outside_the_rules_is_reported_alone(tmp_path):
    """A broken ledger or tier would make the rules' references to it look wrong: only the shape is reported."""
    text = TWO_KINDS.replace("points: {value: 0.01}", "points: {value: cheap}")
    found = problems(tmp_path, text)
    assert [f.split(": ")[0] for f in found] == ["3:19", "7:9", "20:9"], found


def test_every_rule_broken_reports_the_shape_only(tmp_path):
    text = "name: p\nrules:\n  - id: a\n    on: purchas\n    do: [discount: {percent: 5}]\n"
    assert only(tmp_path, text).startswith("4:9: unknown trigger 'purchas'")


def test_the_other_rules_problems_stop_at_the_cap_on_diagnostics(tmp_path):
    """Past MAX_DIAGNOSTICS in all, the first MAX_DIAGNOSTICS in file order are said, then that the list
    stopped, as any reading that finds too many."""
    from lab.errors import MAX_DIAGNOSTICS

    broken = "".join(f"  - id: s{i}\n    on: purchas\n    do: [discount: {{percent: 5}}]\n" for i in range(40))
    wrong = "".join(f"  - id: m{i}\n    on: purchase\n    when: \"purchase.amont > 1\"\n"
                    f"    do: [discount: {{percent: \"x +\"}}, discount: {{percent: \"y +\"}}]\n" for i in range(24))
    found = problems(tmp_path, "name: p\nrules:\n" + broken + wrong)
    assert len(found) == MAX_DIAGNOSTICS + 1, len(found)
    assert all("unknown trigger 'purchas'" in f for f in found[:40]), found[:3]
    assert found[-1].endswith(f"stopped after {MAX_DIAGNOSTICS} problems; fix these and run again")
    at = [tuple(int(x) for x in f.split(": ")[0].split(":")) for f in found[:-1]]
    assert at == sorted(at) and at[-1][0] < 2 + 40 * 3 + 24 * 4  # (the last rules' problems are the ones left)
    fewer = problems(tmp_path, "name: p\nrules:\n" + broken + wrong.split("  - id: m12\n")[0])
    assert len(fewer) == 40 + 12 * 3  # (12 rules' problems of meaning fit: every one is said)


def test_a_scenario_checks_the_other_rules_against_its_store(tmp_path):
    """Through a scenario, the rules kept are checked against the store's categories as the whole file would be."""
    (tmp_path / "p.yaml").write_text(
        "name: p\nrules:\n  - id: a\n    on: purchas\n    do: [discount: {percent: 5}]\n"
        "  - id: b\n    on: purchase\n    do: [free_item: {category: hats}]\n")
    store = tmp_path / "store.yaml"
    store.write_text((ROOT / "scenarios" / "classroom.yaml").read_text().replace(
        "policies: [none, points, credit, performance]", "policies: [none, p]"))
    with pytest.raises(LabError) as info:
        load_scenario(store)
    said = [(d.line, d.message) for d in info.value.diagnostics]
    assert said[0][0] == 4 and said[0][1].startswith("unknown trigger 'purchas'"), said
    assert said[1][0] == 8 and "'hats'" in said[1][1] and "shirts" in said[1][1], said
    assert len(said) == 2, said


def test_a_shape_check_that_stopped_leaves_the_other_rules_unchecked(tmp_path):
    """When the problems of shape pass MAX_DIAGNOSTICS, the reading stopped before it knew every broken rule, so
    the rest cannot be checked: its list is the answer. With exactly MAX_DIAGNOSTICS of them every broken rule is
    known, and the first MAX_DIAGNOSTICS problems in file order are said, the other rules' first among them."""
    from lab.errors import MAX_DIAGNOSTICS

    wrong = "".join(f"  - id: m{i}\n    on: purchase\n    when: \"x +\"\n    do: [discount: {{percent: 5}}]\n"
                    for i in range(10))
    for rules, wanted in ((30, ["unknown-key"] * MAX_DIAGNOSTICS),
                          (MAX_DIAGNOSTICS // 4, ["expression"] * 10 + ["unknown-key"] * (MAX_DIAGNOSTICS - 10))):
        broken = "".join(f"  - id: s{i}\n    on: purchase\n    wen: 1\n    wehn: 2\n    whn: 3\n    hwen: 4\n"
                         "    do: [discount: {percent: 5}]\n" for i in range(rules))
        path = tmp_path / "p.yaml"
        path.write_text("name: p\nrules:\n" + wrong + broken)
        with pytest.raises(LabError) as info:
            load_policy(path)
        assert [d.code for d in info.value.diagnostics] == wanted + ["too-many"]
