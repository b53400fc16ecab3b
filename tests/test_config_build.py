"""Building frozen dataclasses from positioned YAML (lab.config.build) and its diagnostics."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import ClassVar, Literal

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.config import Expr, Node, SourceMap, build, diag_at, option, parse_yaml, to_data
from lab.errors import Diagnostic, LabError, suggest

# --- a tiny policy language to exercise the machinery ------------------------------------


@dataclass(frozen=True)
class Ledger:
    """A points ledger."""

    expiry_days: int | None = option("Days until points expire.", default=None, min=0)
    cap: float = option("Largest balance.", default=1e9, gt=0)
    rate: float = option("Share kept.", default=0.5, min=0, max=1)


@dataclass(frozen=True)
class Award:
    tag: ClassVar[str] = "award"
    ledger: str = option("Ledger to credit.")
    amount: Expr = option("Points to award.")


@dataclass(frozen=True)
class ResetTier:
    tag: ClassVar[str] = "reset_tier"
    note: str = option("Why.", default="")


@dataclass(frozen=True)
class Window:
    start: float = option("Start.", min=0)
    end: float = option("End.", lt=1000)

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("'end' must be after 'start'")


Action = Award | ResetTier


@dataclass(frozen=True)
class Rule:
    name: str = option("Rule name.")
    if_: Expr = option("Condition.", default=Expr("true"))
    do: tuple[Action, ...] = option("Actions.", kind="action", default=())
    mode: Literal["each", "once"] = option("How often.", default="each")


@dataclass(frozen=True)
class Policy:
    name: str = option("Policy name.")
    ledgers: dict[str, Ledger] = option("Ledgers.", kind="ledger", default_factory=dict)
    rules: tuple[Rule, ...] = option("Rules.", kind="rule", default=())
    enabled: bool = option("Switch.", default=True)
    limit: int = option("Limit.", default=10, min=0)
    weights: tuple[float, float] = option("Two weights.", default=(0.5, 0.5), min=0)
    window: Window | None = option("Optional window.", default=None)
    trigger: Action | None = option("One optional action.", kind="action", default=None)


VALID = """\
name: demo
ledgers:
  points: {expiry_days: 30}
  miles:
    cap: 500
rules:
  - name: r1
    if: "spend > 10"
    do:
      - award: {ledger: points, amount: 2}
      - reset_tier
      - reset_tier:
  - name: r2
    mode: once
    do:
      - award:
          ledger: miles
          amount: |
            spend * 2
limit: 3.0
window: {start: 0, end: 7.5}
trigger: {reset_tier: {note: hi}}
"""


def load(text: str, cls: type = Policy, file: str = "p.yaml"):
    return build(parse_yaml(text, file), cls, file)


def problems(text: str, cls: type = Policy) -> list[tuple[int, int, str]]:
    with pytest.raises(LabError) as info:
        load(text, cls)
    return [(d.line, d.col, d.message) for d in info.value.diagnostics]


def one_problem(text: str, cls: type = Policy) -> tuple[int, int, str]:
    found = problems(text, cls)
    assert len(found) == 1, found
    return found[0]


# --- successful builds ---------------------------------------------------------------------


def test_valid_document_builds_the_expected_instance():
    policy, _ = load(VALID)
    assert policy == Policy(
        name="demo",
        ledgers={"points": Ledger(expiry_days=30), "miles": Ledger(cap=500.0)},
        rules=(
            Rule("r1", Expr("spend > 10"), (Award("points", Expr("2")), ResetTier(),
                                            ResetTier())),
            Rule("r2", Expr("true"), (Award("miles", Expr("spend * 2\n")),), "once"),
        ),
        limit=3, window=Window(0.0, 7.5), trigger=ResetTier("hi"))
    assert list(policy.ledgers) == ["points", "miles"]
    assert type(policy.limit) is int and type(policy.ledgers["miles"].cap) is float
    assert type(policy.window.start) is float


def test_expressions_remember_where_they_came_from():
    policy, _ = load(VALID)
    cond = policy.rules[0].if_
    assert isinstance(cond, Expr) and (cond.file, cond.line, cond.col) == ("p.yaml", 8, 9)
    assert cond.position(cond.index("10")) == (8, 18)  # inside the quotes
    block = policy.rules[1].do[0].amount
    assert block.position(block.index("*")) == (19, 19)
    assert block.diagnostic("bad operator", block.index("*")) == Diagnostic(
        "p.yaml", 19, 19, "bad operator")
    number = policy.rules[0].do[0].amount
    assert number == "2" and (number.line, number.col) == (10, 41)


def test_numbers_and_booleans_become_expression_text():
    text = "name: x\nrules:\n  - {name: a, if: true, do: [{award: {ledger: p, amount: 2.5}}]}\n"
    policy, _ = load(text)
    assert policy.rules[0].if_ == "true" and policy.rules[0].do[0].amount == "2.5"


def test_source_map_paths_and_fallback():
    _, where = load(VALID)
    assert isinstance(where, SourceMap)
    assert where.at(("rules", 0, "do", 0, "award", "ledger")) == (10, 25)
    assert where.at(("rules", 0, "do", 1, "reset_tier")) == (11, 9)
    assert where.at(("rules", 0, "if")) == where.at(("rules", 0, "if_")) == (8, 9)
    assert where.at(("ledgers", "miles", "cap")) == (5, 10)
    assert where.at(("ledgers", "miles", "expiry_days")) == (5, 5)  # default: the ledger
    assert where.at(("rules", 7, "name")) == (7, 3)  # no rule 7: the rules list
    assert where.at(()) == (1, 1)
    assert ("rules", 1, "mode") in where and ("rules", 1, "if") not in where
    assert diag_at("p.yaml", where, ("rules", 1, "mode"), "unknown mode") == Diagnostic(
        "p.yaml", 14, 11, "unknown mode")
    assert where.diag(("name",), "m") == Diagnostic("p.yaml", 1, 7, "m")


def test_to_data_round_trips():
    policy, _ = load(VALID)
    again, _ = load(yaml.safe_dump(to_data(policy), sort_keys=False))
    assert again == policy


# --- diagnostics -----------------------------------------------------------------------------


def test_unknown_keys_suggest_a_field():
    text = "name: x\nrulez: []\nledgers:\n  points:\n    expirey: 3\n    zzz: 1\n"
    assert problems(text) == [
        (2, 1, "unknown key 'rulez' in policy; did you mean 'rules'?"),
        (5, 5, "unknown key 'expirey' in ledger 'points' (at ledgers.points); did you mean "
               "'expiry_days'?"),
        (6, 5, "unknown key 'zzz' in ledger 'points' (at ledgers.points); expected one of: "
               "expiry_days, cap, rate"),
    ]


def test_a_misspelt_required_key_is_one_problem():
    # said at the misspelling, not also as the required key missing; a second misspelling of it is not told
    # again that the key is missing
    text = ("name: x\nrules:\n  - name: r\n    do:\n      - award: {ledger: p, amout: 1}\n"
            "      - award: {ledger: p, amout: 1, amont: 2}\n")
    assert problems(text) == [
        (5, 28, "unknown key 'amout' in award action (at rules[0].do[0]); did you mean 'amount'? (a required key, "
                "missing here)"),
        (6, 28, "unknown key 'amout' in award action (at rules[0].do[1]); did you mean 'amount'? (a required key, "
                "missing here)"),
        (6, 38, "unknown key 'amont' in award action (at rules[0].do[1]); did you mean 'amount'?"),
    ]


def test_missing_required_keys():
    text = "rules:\n  - name: r\n    do:\n      - award: {amount: 1}\n      - award\n"
    assert problems(text) == [
        (1, 1, "missing required key 'name' in policy"),
        (4, 16, "missing required key 'ledger' in award action (at rules[0].do[0])"),
        (5, 9, "missing required key 'amount' in award action (at rules[0].do[1])"),
        (5, 9, "missing required key 'ledger' in award action (at rules[0].do[1])"),
    ]


def test_wrong_types():
    text = ("name: 2024\nlimit: abc\nrules: {a: 1}\nenabled: yes\nwindow: 3\n"
            "ledgers: [a]\nweights: 1e3\n")
    assert problems(text) == [
        (1, 7, 'expected text for \'name\', got 2024; put it in quotes ("2024") to use it '
               'as text'),
        (2, 8, "expected a number for 'limit', got the text 'abc'"),
        (3, 8, "expected a list for 'rules', got a mapping; write each item on its own line "
               "starting with '- '"),
        (4, 10, "expected true or false for 'enabled', got the text 'yes'; write true or "
                "false (yes/no/on/off are read as text)"),
        (5, 9, "expected a mapping for 'window', got 3"),
        (6, 10, "expected a mapping for 'ledgers', got a list"),
        (7, 10, "expected a list of 2 items for 'weights', got the text '1e3'"),
    ]


def test_wrong_types_deep_inside_name_the_path():
    text = "name: x\nrules:\n  - name: r\n    do:\n      - award: {ledger: p, amount: [1]}\n"
    assert one_problem(text) == (
        5, 36, "expected an expression (text or a number) for 'amount', got a list "
               "(at rules[0].do[0].award.amount)")
    text = "name: x\nrules:\n  - name: r\n    if: {a: b}\n"
    assert one_problem(text)[2].endswith("; if the expression contains ': ', put it in quotes")


def test_numbers_and_bounds():
    text = ("name: x\nlimit: 2.5\nweights: [0.5, -1]\nledgers:\n"
            "  p: {expiry_days: -5, cap: 0, rate: 1.5}\n  q: {cap: .nan, expiry_days: 1.0e+1}\n"
            "  r: {cap: 2e3, rate: '0.5'}\n")
    assert problems(text) == [
        (2, 8, "expected a whole number for 'limit', got 2.5"),
        (3, 16, "expected a number >= 0 for 'weights[1]', got -1"),
        (5, 20, "expected a number >= 0 for 'expiry_days', got -5 "
                "(at ledgers.p.expiry_days)"),
        (5, 29, "expected a number > 0 for 'cap', got 0 (at ledgers.p.cap)"),
        (5, 38, "expected a number >= 0 and <= 1 for 'rate', got 1.5 (at ledgers.p.rate)"),
        (6, 12, "expected a number for 'cap', got .nan (at ledgers.q.cap)"),
        (7, 12, "expected a number for 'cap', got the text '2e3' (at ledgers.r.cap); YAML "
                "reads this as text, write 2000.0 instead"),
        (7, 23, "expected a number for 'rate', got the text '0.5' "
                "(at ledgers.r.rate); remove the quotes to make it a number"),
    ]


def test_literal_choices():
    text = "name: x\nrules:\n  - {name: r, mode: onse}\n"
    assert one_problem(text) == (
        3, 21, "expected one of 'each', 'once' for 'mode', got the text 'onse' "
               "(at rules[0].mode); did you mean 'once'?")


def test_tagged_unions():
    text = ("name: x\nrules:\n  - name: r\n    do:\n"
            "      - awrd: {ledger: p, amount: 1}\n"         # 5: unknown tag
            "      - 3\n"                                    # 6: not an action at all
            "      - award: [1]\n"                           # 7: settings not a mapping
            "      - award:\n          ledger: p\n"           # 8: amount missing
            "      - {}\n"                                   # 10: empty mapping
            "      - reset_tier: {note: 1}\n")               # 11: wrong type in a variant
    assert problems(text) == [
        (5, 9, "unknown action 'awrd' (at rules[0].do[0]); did you mean 'award'?"),
        (6, 9, "expected an action (one of: award, reset_tier) for 'do[1]', got 3 "
               "(at rules[0].do[1])"),
        (7, 16, "expected the settings of the award action as a mapping for 'award', got a "
                "list (at rules[0].do[2].award)"),
        (9, 11, "missing required key 'amount' in award action (at rules[0].do[3])"),
        (10, 9, "expected an action (one of: award, reset_tier) for 'do[4]', got an empty "
                "mapping (at rules[0].do[4])"),
        (11, 28, 'expected text for \'note\', got 1 (at rules[0].do[5].reset_tier.note); '
                 'put it in quotes ("1") to use it as text'),
    ]
    many = "name: x\ntrigger:\n  award:\n  ledger: p\n  amount: 1\n"
    assert one_problem(many) == (
        3, 3, "an action must be a mapping with exactly one key naming it (one of: award, "
              "reset_tier), got 3 keys 'award', 'ledger', 'amount' (at trigger); indent the "
              "other keys under 'award:'")


def test_post_init_errors_become_diagnostics():
    assert one_problem("name: x\nwindow: {start: 5, end: 2}\n") == (
        2, 9, "invalid window (at window): 'end' must be after 'start'")


def test_top_level_must_be_a_mapping():
    assert one_problem("- a\n- b\n") == (
        1, 1, "expected a mapping at the top level of the file, got a list")


def test_all_problems_are_collected_and_sorted():
    text = ("limit: -1\nname: [x]\nrules:\n  - name: r\n    mode: x\n    do: [nope]\n"
            "enabled: 1\n")
    found = problems(text)
    assert [(line, col) for line, col, _ in found] == [(1, 8), (2, 7), (5, 11), (6, 10),
                                                        (7, 10)]
    assert found == sorted(found)


def test_hand_made_trees_with_bad_keys():
    key = Node("scalar", 1, 3, 2, "tag:yaml.org,2002:int")
    tree = Node("map", ((Node("scalar", "name", 1, 1), Node("scalar", "x", 1, 7)),
                        (key, Node("scalar", "v", 3, 5)),
                        (Node("scalar", "name", 4, 1), Node("scalar", "y", 4, 7))), 1, 1)
    with pytest.raises(LabError) as info:
        build(tree, Policy, "t.yaml")
    assert [str(d) for d in info.value.diagnostics] == [
        "t.yaml:3:2: keys must be strings",
        "t.yaml:4:1: duplicate key 'name' (first defined at line 1)",
    ]


# --- declarations, Expr, errors module -----------------------------------------------------


@dataclass(frozen=True)
class BadList:
    xs: list[int] = option("lists are mutable; use tuple")


@dataclass(frozen=True)
class NoTag:
    x: int = 0


@dataclass(frozen=True)
class BadUnion:
    a: Award | NoTag = option("NoTag has no tag")


@dataclass(frozen=True)
class Clash:
    if_: int = 0
    if__: int = 0  # both would be written 'if'... 'if_' -> 'if', 'if__' -> 'if_'
    in_: int = 0
    in__: int = 1


@dataclass(frozen=True)
class RealClash:
    x: int = 0
    x_: int = 1


@pytest.mark.parametrize("cls", [BadList, BadUnion, RealClash])
def test_unsupported_declarations_are_programming_errors(cls):
    with pytest.raises(TypeError):
        build(parse_yaml("a: 1\n", "f"), cls, "f")


def test_trailing_underscore_is_dropped_once():
    obj, _ = load("if: 1\nif_: 2\n", Clash)
    assert (obj.if_, obj.if__, obj.in_, obj.in__) == (1, 2, 0, 1)


def test_expr_is_an_immutable_picklable_string():
    e = load(VALID)[0].rules[0].if_
    assert e == "spend > 10" and hash(e) == hash("spend > 10") and repr(e) == "Expr('spend > 10')"
    with pytest.raises(AttributeError):
        e.line = 3  # type: ignore[misc]
    again = pickle.loads(pickle.dumps(e))
    assert isinstance(again, Expr) and again.position(6) == e.position(6) == (8, 16)
    plain = Expr("a + b", file="x.yaml", line=4, col=7)
    assert plain.position(4) == (4, 11)


def test_suggest_and_lab_error():
    assert suggest("expirey", ["expiry_days", "cap"]) == "; did you mean 'expiry_days'?"
    assert suggest("qqq", ["a", "b"]) == "; expected one of: a, b"
    assert suggest("qqq", [f"name{i}" for i in range(13)]) == ""
    assert suggest("x", []) == ""
    err = LabError([Diagnostic("f", 1, 2, "a"), Diagnostic("f", 3, 4, "b")])
    assert str(err) == "f:1:2: a\nf:3:4: b"
    again = pickle.loads(pickle.dumps(err))
    assert again.diagnostics == err.diagnostics and str(again) == str(err)


# --- properties ------------------------------------------------------------------------------


def check(text: str) -> None:
    """parse + build either succeed or fail with well-formed diagnostics only."""
    try:
        obj, where = build(parse_yaml(text, "fuzz.yaml"), Policy, "fuzz.yaml")
    except LabError as err:
        assert err.diagnostics
        for d in err.diagnostics:
            assert d.line >= 1 and d.col >= 1 and d.message
            assert str(d) == f"fuzz.yaml:{d.line}:{d.col}: {d.message}"
    else:
        assert isinstance(obj, Policy) and where.at(()) >= (1, 1)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=120))
def test_random_text_never_crashes(text):
    check(text)


MUTATION = st.tuples(st.sampled_from(["delete", "duplicate", "swap", "char", "insert"]),
                     st.integers(0, 10_000), st.integers(0, 10_000),
                     st.sampled_from(list(" :-[]{}'\"\n#&*!|>,ax0~\t")))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_documents_never_crash(ops):
    lines = VALID.splitlines(keepends=True)
    for op, i, j, ch in ops:
        if not lines:
            break
        i, j = i % len(lines), j % len(lines)
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        else:
            line = lines[i]
            k = j % (len(line) + 1)
            lines[i] = line[:k] + ch + line[k + (op == "char"):]
    check("".join(lines))


# PyYAML's emitter itself cannot round-trip a raw NEL (U+0085) when allow_unicode is set.
CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x85")
TEXT = st.text(CHARS, max_size=12)
NAME = st.text(CHARS, min_size=1, max_size=8)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
SHARE = st.floats(0, 1)
EXPR = st.one_of(TEXT, st.integers(-99, 99).map(str)).map(Expr)

ledgers = st.builds(Ledger, expiry_days=st.none() | st.integers(0, 10**9),
                    cap=st.floats(min_value=0, exclude_min=True, allow_infinity=False),
                    rate=SHARE)
actions = st.one_of(st.builds(Award, ledger=NAME, amount=EXPR), st.builds(ResetTier, note=TEXT))
rules = st.builds(Rule, name=NAME, if_=EXPR, do=st.lists(actions, max_size=3).map(tuple),
                  mode=st.sampled_from(["each", "once"]))
windows = st.tuples(st.floats(0, 100), st.floats(0.001, 800)).map(lambda t: Window(t[0],
                                                                                    t[0] + t[1]))
policies = st.builds(
    Policy, name=NAME, ledgers=st.dictionaries(NAME, ledgers, max_size=3),
    rules=st.lists(rules, max_size=3).map(tuple), enabled=st.booleans(),
    limit=st.integers(0, 2**40), weights=st.tuples(FINITE.map(abs), FINITE.map(abs)),
    window=st.none() | windows, trigger=st.none() | actions)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies, st.sampled_from([False, True, None]), st.sampled_from([False, True]))
def test_generated_policies_round_trip(policy, flow, unicode):
    text = yaml.safe_dump(to_data(policy), sort_keys=False, allow_unicode=unicode,
                          default_flow_style=flow, width=40)
    again, _ = build(parse_yaml(text, "rt.yaml"), Policy, "rt.yaml")
    assert again == policy
    assert list(again.ledgers) == list(policy.ledgers)
