"""The expression fields (lab.policy.fields): one declared table, read by the compiler, `lab explain` and both engines.

Checked here: the table is complete (type, unit, meaning, words); the
compiler's schema and `lab explain`'s words are the table's; every field the
table says the engine serves is served by both engines, with the same value
on the same state; and an engine that served a field not declared, or left
one out, would refuse to load.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from lab.engine.options import RunOptions
from lab.engine.reference import ReferenceSimulation
from lab.engine.simulate import Simulation
from lab.policy import fields
from lab.policy.expr import ExprType
from lab.policy.explain import explain
from lab.policy.runtime import ENGINE_FIELDS, RUNTIME_FIELDS, expression_schema
from lab.scenario.loader import world_of
from tests.conftest import day0

PROGRAMME = """
name: fields
description: Points, a tier and a card, so that every map field has a ledger to read.
participation: 0.9
points:
  points: {value: 0.01, expiry_days: 60, lot_days: 7}
tiers:
  metric: spend
  window_days: 90
  review_days: 30
  levels:
    basic: {}
    silver: {qualify: 150, discount_percent: 5}
credit:
  card: {limit: 300, apr: 0.24, statement_days: 30, min_payment: 10}
rules:
  - id: earn
    on: purchase
    when: "customer.tenure_days >= 0 and customer.satisfaction >= 0"
    do: [{award: {ledger: points, amount: "floor(purchase.amount)"}}]
  - id: widen
    on: purchase
    when: "purchase.number == 2"
    do: [{trial: {category: new}}]
"""


def test_every_field_is_declared_with_type_unit_meaning_and_words() -> None:
    names = [f.name for f in fields.FIELDS]
    assert len(names) == len(set(names))
    for f in fields.FIELDS:
        assert isinstance(f.type, ExprType) and f.served_by in ("engine", "event", "runtime"), f.name
        assert f.meaning and f.noun, f.name
        numeric = f.type in (ExprType.NUMBER, ExprType.MAP)
        assert bool(f.unit) == numeric, f"{f.name}: numbers have units, names and flags none"


def test_the_compiler_and_explain_read_the_table(classroom, policy_from_yaml) -> None:
    declared = {f.name: f for f in fields.FIELDS if f.expression}
    assert {**ENGINE_FIELDS, **RUNTIME_FIELDS} == {n: (f.type, f.meaning) for n, f in declared.items()}
    assert set(RUNTIME_FIELDS) == {n for n, f in declared.items() if f.served_by == "runtime"}
    cp = policy_from_yaml(PROGRAMME, classroom.scenario)
    schema = expression_schema(cp.policy, world_of(classroom.scenario))
    assert set(schema) == set(declared)  # with a points ledger and a credit line every map can be read
    assert all(schema[n].doc == f.meaning for n, f in declared.items())
    assert "customer.least_category" not in schema  # served to the rules engine, not to expressions
    text = explain(cp.policy)
    assert fields.BY_NAME["customer.tenure_days"].noun in text and fields.BY_NAME["customer.satisfaction"].noun in text


@pytest.fixture(scope="module")
def twins(classroom, policy_from_yaml):
    """A vectorised run stopped after 120 days, and the reference engine holding an exact copy of its state."""
    sc = day0(classroom.scenario)
    cp = policy_from_yaml(PROGRAMME, sc)
    vec = Simulation(sc, cp, RunOptions(seed=4, customers=300, days=120))
    vec.run()
    ref = ReferenceSimulation(sc, cp, RunOptions(seed=4, customers=300, days=120), follow=())
    ref.c, ref.runtime, ref.store = copy.deepcopy(vec.c), copy.deepcopy(vec.runtime), vec.store
    return vec, ref


@pytest.mark.parametrize("name", fields.ENGINE_SERVED)
def test_both_engines_serve_every_engine_field_with_the_same_value(name, twins) -> None:
    vec, ref = twins
    day = 119
    vec.now = float(day)
    idx = np.flatnonzero(vec.c.alive[: vec.c.n])
    a, b = vec.source.get(name, idx), ref.facts(day).get(name, idx)
    if np.ndim(a) == 0:
        assert np.ndim(b) == 0 and a == b
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape == (len(idx),) + a.shape[1:]
    if fields.BY_NAME[name].type in (ExprType.NUMBER, ExprType.MAP):
        np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-12)
    else:
        assert np.array_equal(a.astype(np.int64), b.astype(np.int64))
    assert len(np.unique(a)) > 1 or name in ("customer.referred", "customer.member")  # the state tells customers apart


def test_both_engines_refuse_a_field_that_is_not_declared(twins) -> None:
    vec, ref = twins
    idx = np.array([0, 1])
    with pytest.raises(KeyError):
        vec.source.get("customer.shoe_size", idx)
    with pytest.raises(KeyError):
        ref.facts(0).get("customer.shoe_size", idx)


def test_an_engine_serving_other_fields_than_declared_is_refused() -> None:
    fields.check_served(fields.ENGINE_SERVED, "an engine")
    with pytest.raises(LookupError, match=r"missing \['customer.segment'\]"):
        fields.check_served(fields.ENGINE_SERVED[1:], "an engine")
    with pytest.raises(LookupError, match=r"undeclared \['customer.shoe_size'\]"):
        fields.check_served((*fields.ENGINE_SERVED, "customer.shoe_size"), "an engine")


VISITS = """
name: visits
participation: 1.0
points:
  ones: {}
  tri: {}
rules:
  - id: count
    on: visit
    do:
      - award: {ledger: ones, amount: "1"}
      - award: {ledger: tri, amount: "customer.visits_365d"}
"""


@pytest.mark.parametrize("engine", [Simulation, ReferenceSimulation])
def test_both_engines_count_every_purchase_and_service_contact_as_a_visit(engine, classroom, policy_from_yaml) -> None:
    # At a visit rule the visits field counts this visit too, so the k-th visit awards k: a member's `tri` points
    # are 1 + 2 + ... + k for its k visits (`ones`) only if the engine counted every purchase and contact, in order.
    sc = day0(classroom.scenario)
    cp = policy_from_yaml(VISITS, sc)
    opts = RunOptions(seed=7, customers=150, days=120)
    run = (engine(sc, cp, opts) if engine is Simulation else engine(sc, cp, opts, follow=())).run()
    n = run.customers.n
    ones, tri = run.runtime.points["ones"].earned[:n], run.runtime.points["tri"].earned[:n]
    assert ones.sum() > 0
    np.testing.assert_array_equal(tri, ones * (ones + 1) / 2)
    bought = run.customers.purchases[:n]
    assert (ones > bought).any()  # service contacts were counted, not only purchases
