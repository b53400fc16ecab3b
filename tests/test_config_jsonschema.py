"""JSON Schema generated from configuration dataclasses (lab.config.jsonschema)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.config import Expr, build, json_schema, option, parse_yaml, to_data
from lab.errors import LabError


@dataclass(frozen=True)
class Tier:
    """A customer tier.

    Further detail that stays out of the schema description.
    """

    threshold: float = option("Spend needed to reach the tier.", min=0)
    perks: tuple[str, ...] = option("Perks granted.", default=())


@dataclass(frozen=True)
class Earn:
    tag: ClassVar[str] = "earn"
    rate: float = option("Points per unit spent.", gt=0, examples=[1.0, 2.5])
    when: Expr = option("When it applies.", default=Expr("true"))


@dataclass(frozen=True)
class Expire:
    tag: ClassVar[str] = "expire"
    after_days: int = option("Days until expiry.", default=365, min=1)


@dataclass(frozen=True)
class Group:
    tag: ClassVar[str] = "group"
    name: str = option("Group name.")
    items: tuple[Earn | Expire | Group, ...] = option("Nested actions.", kind="action",
                                                       default=())


@dataclass(frozen=True)
class Scheme:
    """A loyalty scheme."""

    name: str = option("Scheme name.")
    currency: Literal["points", "miles"] = option("What customers collect.", default="points")
    tiers: dict[str, Tier] = option("Tiers by name.", kind="tier", default_factory=dict)
    actions: tuple[Earn | Expire | Group, ...] = option("Actions.", kind="action", default=())
    split: tuple[float, float] = option("Two shares.", default=(0.5, 0.5), min=0, max=1)
    in_: Literal["store", "online"] | None = option("Channel.", default=None)
    cap: int | None = option("Cap.", default=None, lt=1000)


@dataclass(frozen=True)
class Tree:
    label: str = option("Label.")
    children: tuple[Tree, ...] = option("Sub-trees.", default=())


SCHEMA = json_schema(Scheme, title="Loyalty scheme", id="https://example.org/scheme.json")
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

GOOD = """\
name: demo
currency: miles
tiers:
  gold: {threshold: 1000, perks: [lounge]}
  silver: {threshold: 0}
actions:
  - earn: {rate: 2, when: "channel == 'store'"}
  - earn: {rate: 1.5, when: 3}
  - expire
  - expire:
  - expire: {after_days: 30}
  - group:
      name: g
      items:
        - earn: {rate: 1}
        - group: {name: inner, items: [expire]}
split: [0.25, 0.75]
in: online
cap: 999
"""


def data(text: str) -> Any:
    return parse_yaml(text, "s.yaml").to_python()


def test_schema_is_valid_draft_2020_12_and_json():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert json.loads(json.dumps(SCHEMA)) == SCHEMA
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == "https://example.org/scheme.json"
    assert SCHEMA["title"] == "Loyalty scheme" and SCHEMA["description"] == "A loyalty scheme."


def test_schema_structure():
    props = SCHEMA["properties"]
    assert list(props) == ["name", "currency", "tiers", "actions", "split", "in", "cap"]
    assert SCHEMA["required"] == ["name"] and SCHEMA["additionalProperties"] is False
    assert props["currency"] == {"enum": ["points", "miles"], "description":
                                 "What customers collect.", "default": "points"}
    assert props["tiers"]["additionalProperties"] == {"$ref": "#/$defs/Tier"}
    assert props["split"]["prefixItems"] == [{"type": "number", "minimum": 0, "maximum": 1}] * 2
    assert props["split"]["default"] == [0.5, 0.5]
    assert props["cap"]["anyOf"] == [{"type": "integer", "exclusiveMaximum": 1000},
                                     {"type": "null"}]
    assert set(SCHEMA["$defs"]) == {"Tier", "Earn", "Expire", "Group"}
    tier = SCHEMA["$defs"]["Tier"]
    assert tier["description"] == "A customer tier." and tier["required"] == ["threshold"]
    earn = SCHEMA["$defs"]["Earn"]["properties"]
    assert earn["rate"] == {"type": "number", "exclusiveMinimum": 0, "description":
                            "Points per unit spent.", "examples": [1.0, 2.5]}
    assert earn["when"]["type"] == ["string", "number", "boolean"]
    assert earn["when"]["description"] == "When it applies. (an expression)"
    variants = props["actions"]["items"]["oneOf"]
    assert {"const": "expire"} in variants and {"const": "earn"} not in variants
    assert {"type": "object", "properties": {"earn": {"$ref": "#/$defs/Earn"}},
            "required": ["earn"], "additionalProperties": False} in variants
    # recursion goes through $defs, so the output stays small
    assert len(json.dumps(SCHEMA)) < 6000


def test_valid_documents_validate():
    VALIDATOR.validate(data(GOOD))
    VALIDATOR.validate(data("name: minimal\n"))
    assert build(parse_yaml(GOOD, "s.yaml"), Scheme, "s.yaml")[0].currency == "miles"


@pytest.mark.parametrize("old, new", [
    ("name: demo\n", ""),                                       # required key missing
    ("currency: miles", "currency: mils"),                      # not in the enum
    ("currency: miles", "currencyy: miles"),                    # unknown key
    ("{threshold: 1000, perks: [lounge]}", "{threshold: -1}"),   # below minimum
    ("{threshold: 0}", "{threshold: 0, extra: 1}"),              # unknown nested key
    ("perks: [lounge]", "perks: lounge"),                       # not a list
    ("rate: 2,", "rate: 0,"),                                   # exclusive minimum
    ("- expire\n", "- expir\n"),                                # unknown variant
    ("- earn: {rate: 1}", "- earn"),                            # bare tag, required settings
    ("- earn: {rate: 1}", "- {earn: {rate: 1}, expire: {}}"),   # two keys in a variant
    ("{name: inner, items: [expire]}", "{items: [expire]}"),    # recursive part broken
    ("split: [0.25, 0.75]", "split: [0.25, 0.75, 0]"),          # fixed length
    ("split: [0.25, 0.75]", "split: [0.25, 1.75]"),             # maximum inside a tuple
    ("in: online", "in: web"),
    ("cap: 999", "cap: 1000"),                                  # exclusive maximum
    ("cap: 999", "cap: 9.5"),                                   # not an integer
    ("when: 3}", "when: [3]}"),                                 # expression must be scalar
])
def test_broken_documents_are_rejected_by_schema_and_builder(old, new):
    assert old in GOOD
    broken = GOOD.replace(old, new, 1)
    assert not VALIDATOR.is_valid(data(broken))
    with pytest.raises(LabError):
        build(parse_yaml(broken, "s.yaml"), Scheme, "s.yaml")


def test_recursive_root_uses_a_self_reference():
    schema = json_schema(Tree, title="Tree")
    assert schema["properties"]["children"]["items"] == {"$ref": "#"}
    assert "$defs" not in schema
    v = jsonschema.Draft202012Validator(schema)
    assert v.is_valid({"label": "a", "children": [{"label": "b", "children": [{"label": "c"}]}]})
    assert not v.is_valid({"label": "a", "children": [{"children": []}]})


# --- the schema and the builder agree --------------------------------------------------------

NAME = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=6)
FRACTION = st.floats(0, 1)
earns = st.builds(Earn, rate=st.floats(0.01, 100),
                  when=st.one_of(NAME, st.sampled_from(["1", "true"])).map(Expr))
expires = st.builds(Expire, after_days=st.integers(1, 10_000))
actions = st.recursive(
    st.one_of(earns, expires),
    lambda inner: st.builds(Group, name=NAME, items=st.lists(inner, max_size=2).map(tuple)),
    max_leaves=4)
schemes = st.builds(
    Scheme, name=NAME, currency=st.sampled_from(["points", "miles"]),
    tiers=st.dictionaries(NAME, st.builds(Tier, threshold=st.floats(0, 1e6),
                                          perks=st.lists(NAME, max_size=2).map(tuple)),
                          max_size=2),
    actions=st.lists(actions, max_size=3).map(tuple),
    split=st.tuples(FRACTION, FRACTION), in_=st.sampled_from([None, "store", "online"]),
    cap=st.none() | st.integers(-5, 999))

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 2000), st.floats(-10, 10),
    st.sampled_from(["points", "miles", "store", "earn", "expire", "group", "x", "", "1e3"]),
    st.just([]), st.just({}), st.just([1, 2]), st.just({"earn": {"rate": 1}}),
    st.just({"expire": None}), st.just({"group": {"name": "g"}}))


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, prefix + (i,))
    return out


def mutate(doc: dict, path: tuple, how: str, junk: Any) -> None:
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if how == "delete" and isinstance(parent, dict):
        del parent[last]
    elif how == "add" and isinstance(parent[last], dict):
        parent[last]["unknown_key"] = junk
    else:
        parent[last] = junk


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemes, st.integers(0, 10_000), st.sampled_from(["replace", "delete", "add"]), JUNK)
def test_schema_and_builder_accept_the_same_documents(scheme, where, how, junk):
    doc = to_data(scheme)
    assert VALIDATOR.is_valid(doc)
    candidates = paths(doc)[1:]
    if candidates:
        mutate(doc, candidates[where % len(candidates)], how, junk)
    text = yaml.safe_dump(doc, sort_keys=False)
    try:
        build(parse_yaml(text, "m.yaml"), Scheme, "m.yaml")
        built = True
    except LabError:
        built = False
    assert VALIDATOR.is_valid(data(text)) == built, text
