"""The customers' columns: each declared once (dtype, unit, meaning), seen by type checkers, grown from the
declaration."""

from __future__ import annotations

import copy
import typing

import numpy as np
import pytest

from lab.population.customers import CACHE_LINE, ROW_GROUPS, Column, Customers, SegmentTable
from lab.randomness import Streams


@pytest.fixture
def population(classroom):
    seg = SegmentTable.from_scenario(classroom.scenario)
    return Customers(seg, len(classroom.scenario.store.categories), capacity=10)


def test_every_column_is_declared_with_a_dtype_a_unit_and_a_meaning() -> None:
    assert len(Customers.COLUMNS) == 37
    for name, col in Customers.COLUMNS.items():
        assert isinstance(col, Column) and col.meaning, name
        assert np.dtype(col.dtype).kind in "fib", name
        if np.dtype(col.dtype).kind == "f":
            assert col.unit, f"{name}: a number needs a unit"
    assert {n for n, c in Customers.COLUMNS.items() if c.per_category} == {"cat_cum", "cat_n", "cat_spend"}


def test_type_checkers_see_every_column_as_an_array() -> None:
    hints = typing.get_type_hints(Customers)
    assert all(hints[name] is np.ndarray for name in Customers.COLUMNS)


def test_a_population_has_every_declared_column_and_no_other(population) -> None:
    c = population
    for name, col in Customers.COLUMNS.items():
        a = getattr(c, name)
        assert a.dtype == np.dtype(col.dtype), name
        assert a.shape == ((c.capacity, c.n_categories) if col.per_category else (c.capacity,)), name
    arrays = {k for k, v in vars(c).items() if isinstance(v, np.ndarray)}
    assert arrays == set(Customers.COLUMNS), "an array kept per customer must be declared, or it will not grow"


def test_growing_keeps_every_column_of_the_customers_already_there(population, classroom) -> None:
    c = population
    streams = Streams(9)
    c.add(8, np.linspace(0.0, 1.0, 8), streams)
    c.purchases[:8] = np.arange(8)
    c.cat_n[:8, 1] = 2.5
    c.heat[:8] = 0.25
    before = {name: getattr(c, name)[:8].copy() for name in Customers.COLUMNS}
    cap = c.capacity
    c.add(40, np.full(40, 2.0), streams, referred_by=np.arange(40) % 8)
    assert c.capacity > cap and c.n == 48
    for name, old in before.items():
        a = getattr(c, name)
        assert a.shape[0] == c.capacity, name
        np.testing.assert_array_equal(a[:8], old, err_msg=name)
    assert np.array_equal(c.referred_by[8:48], np.arange(40) % 8) and c.referred[8:48].all()
    assert c.alive[:48].all() and not c.alive[48:].any()


def test_growth_does_not_change_what_customers_are_drawn(classroom) -> None:
    """The same customers with room to spare and with growth on the way: the same traits, bit for bit."""
    seg = SegmentTable.from_scenario(classroom.scenario)
    cats = len(classroom.scenario.store.categories)
    roomy, tight = Customers(seg, cats, 500), Customers(seg, cats, 1)
    for c in (roomy, tight):
        streams = Streams(5)
        for k in range(5):
            c.add(60, np.full(60, float(k)), streams)
    for name in Customers.COLUMNS:
        np.testing.assert_array_equal(getattr(roomy, name)[:300], getattr(tight, name)[:300], err_msg=name)


def _assert_laid_out_as_declared(c: Customers) -> None:
    """Each row group's columns are fields of one record per customer, the records on cache-line boundaries;
    every other column is an array of its own."""
    for group, names in ROW_GROUPS.items():
        columns = [getattr(c, name) for name in names]
        size = columns[0].strides[0]
        assert all(col.strides == (size,) for col in columns), f"{group}: one record per customer"
        assert size <= CACHE_LINE and CACHE_LINE % size == 0, f"{group}: a record must sit within one cache line"
        assert len({id(col.base) for col in columns}) == 1 and columns[0].base is not None, f"{group}: one buffer"
        at = [col.__array_interface__["data"][0] for col in columns]
        first = min(at)
        assert first % CACHE_LINE == 0, f"{group}: the records start on a cache line"
        offsets = [a - first for a in at]
        assert len(set(offsets)) == len(names), f"{group}: each column a field of its own"
        assert all(o + col.itemsize <= size for o, col in zip(offsets, columns)), f"{group}: within the record"
    grouped = {name for names in ROW_GROUPS.values() for name in names}
    for name in set(Customers.COLUMNS) - grouped:
        assert getattr(c, name).flags.c_contiguous and getattr(c, name).base is None, name


def test_the_candidates_and_the_purchases_columns_each_share_a_cache_line_per_customer(population) -> None:
    """The engine reads these together for every purchase candidate and every purchase (benchmarks/README.md,
    'Columns read together, stored together')."""
    assert ROW_GROUPS == {
        "candidate": ("lam", "sat_ref", "acquired_at", "next_cand", "sat_at", "t_sat", "lam_mult", "offer_until"),
        "purchase": ("p_drop", "nu", "purchases", "revenue", "gross", "discounts", "last_purchase", "clv")}
    _assert_laid_out_as_declared(population)


def test_growth_keeps_the_layout_and_a_copy_keeps_the_values(population) -> None:
    c = population
    streams = Streams(3)
    c.add(8, np.linspace(0.0, 1.0, 8), streams)
    c.revenue[:8] = np.arange(8) * 1.5
    c.add(40, np.full(40, 2.0), streams)
    assert c.capacity >= 48
    _assert_laid_out_as_declared(c)
    twin = copy.deepcopy({"customers": c, "same lam": c.lam})
    assert twin["same lam"] is twin["customers"].lam, "whatever held a column holds the copy's column"
    for name in Customers.COLUMNS:
        np.testing.assert_array_equal(getattr(twin["customers"], name), getattr(c, name), err_msg=name)
        assert not np.shares_memory(getattr(twin["customers"], name), getattr(c, name)), name
    twin["customers"].revenue[0] = 99.0
    assert c.revenue[0] == 0.0 and twin["customers"].n == c.n == 48
    assert twin["customers"].capacity < 2048
    twin["customers"].add(2000, np.full(2000, 3.0), Streams(3))  # a copy takes the layout again when it grows
    _assert_laid_out_as_declared(twin["customers"])
    np.testing.assert_array_equal(twin["customers"].revenue[1:8], c.revenue[1:8])


def test_zeroed_hands_out_one_row_group_or_column_at_a_time(population) -> None:
    """Growth moves one block at a time (a row group, or one column), so a large population never has every column
    allocated twice while it grows."""
    c = population
    blocks = c.zeroed(1000)
    first = next(blocks)
    assert set(first) == set(ROW_GROUPS["candidate"])
    assert all(a.shape == (1000,) and not a.any() for a in first.values())
    every = [first] + list(blocks)
    names = [n for block in every for n in block]
    assert sorted(names) == sorted(Customers.COLUMNS) and len(every) == len(Customers.COLUMNS) - sum(
        len(g) - 1 for g in ROW_GROUPS.values())
