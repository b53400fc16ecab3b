"""A points book's redeemable balance is the sum of the customer's mature lots, however it is worked out.

While every point is a whole number in a mature lot, PointsBook answers balance() from a
running total instead of reading the lots (see lab.policy.ledgers); whole numbers add
exactly in any order, so that must give the very same bits as summing the lots. Once a
fraction appears, or points are earned into a lot that is not yet current, or points must
mature first, the book goes back to summing lots -- and must still agree with them.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.policy.ledgers import PointsBook
from lab.policy.model import PointsLedger

N = 6

amounts = st.one_of(st.integers(0, 900).map(float), st.floats(0, 900, allow_nan=False).map(lambda x: round(x, 2)))
events = st.lists(st.tuples(
    st.sampled_from(["award", "award_repeat", "take", "advance"]),
    st.integers(0, 40),  # days forward
    st.lists(st.integers(0, N - 1), min_size=1, max_size=N, unique=True),
    st.lists(amounts, min_size=N, max_size=N),
), max_size=40)


def mature_sum(book: PointsBook, idx: np.ndarray, day: float) -> np.ndarray:
    """What a customer may redeem, straight from the lots: every lot whose window closed pending_days ago."""
    out = np.zeros(len(idx))
    for j in range(book.k):
        lot = book.current_lot - book.k + 1 + j
        if lot >= 0 and ((lot + 1) * book.w + book.spec.pending_days <= day or book.spec.pending_days == 0):
            out += book.lots[idx, lot % book.k]
    return out


def play(book: PointsBook, script) -> None:
    day = 0.0
    everyone = np.arange(N)
    for kind, forward, who, amount in script:
        day += forward
        idx = np.array(sorted(who))
        amt = np.array(amount[: len(idx)])
        if kind == "advance":
            book.advance(day)
        elif kind == "award":
            book.award(idx, amt, day)
        elif kind == "award_repeat":  # the same customer twice in one call (referral rewards can do this)
            book.award(np.concatenate([idx, idx[:1]]), np.concatenate([amt, amt[:1]]), day)
        else:
            book.take(idx, amt, day, how="redeemed")
        got = book.balance(everyone, day)
        want = mature_sum(book, everyone, day)
        if np.all(np.floor(book.lots) == book.lots):
            np.testing.assert_array_equal(got, want)  # whole numbers: exact, whatever the order of sums
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(book.outstanding, book.lots.sum(), rtol=1e-12, atol=1e-6)


@settings(max_examples=120, deadline=None)
@given(script=events, expiry=st.sampled_from([None, 30, 90]), lot_days=st.sampled_from([1, 7, 30]))
def test_balance_is_the_sum_of_mature_lots(script, expiry, lot_days) -> None:
    play(PointsBook(PointsLedger(value=0.01, expiry_days=expiry, lot_days=lot_days), N), script)


@settings(max_examples=60, deadline=None)
@given(script=events, pending=st.sampled_from([7, 30]))
def test_balance_with_pending_points(script, pending) -> None:
    play(PointsBook(PointsLedger(value=0.01, expiry_days=60, lot_days=7, pending_days=pending), N), script)


def test_whole_points_give_the_running_total_bit_for_bit() -> None:
    """A long run of whole-point awards and redemptions: balance equals the lot sums exactly throughout."""
    rng = np.random.default_rng(3)
    book = PointsBook(PointsLedger(value=0.01, expiry_days=365, lot_days=30), 500)
    everyone = np.arange(500)
    for day in range(0, 900, 3):
        book.advance(float(day))
        idx = np.sort(rng.choice(500, 120, replace=False))
        book.award(idx, np.floor(rng.gamma(6.0, 6.0, idx.size)), float(day))
        rich = everyone[(book.balance(everyone, float(day)) >= 500) & (everyone % 2 == 0)]  # odd ones let points expire
        book.take(rich, np.full(rich.size, 500.0), float(day), how="redeemed")
        np.testing.assert_array_equal(book.balance(everyone, float(day)), mature_sum(book, everyone, float(day)))
    assert book.flows["expired"] > 0 and book.flows["redeemed"] > 0
