"""lab.randomness.sums: many slices summed at once, each bit-identical to numpy's sum of the slice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lab.randomness.sums import LANES, slice_sums

money = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_subnormal=True) | st.sampled_from(
    [0.0, -0.0, 1e-300, 0.1, 1e16])


@st.composite
def rows_and_slices(draw):
    n = draw(st.integers(0, 300))
    values = draw(hnp.arrays(np.float64, (draw(st.integers(1, 5)), n), elements=money))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=12)))
    pairs = list(zip(cuts[::2], cuts[1::2]))
    pairs += draw(st.lists(st.tuples(st.integers(0, n), st.integers(0, 20)).map(lambda p: (p[0], min(p[0] + p[1], n))),
                           max_size=6))
    return values, pairs


@settings(max_examples=300, deadline=None)
@given(rows_and_slices())
def test_each_slice_sums_to_numpys_bits(case) -> None:
    values, slices = case
    got = slice_sums(values, slices)
    assert got.shape == (values.shape[0], len(slices))
    for j, (lo, hi) in enumerate(slices):
        for r in range(values.shape[0]):
            want = values[r, lo:hi].sum()
            assert got[r, j].tobytes() == want.tobytes(), (r, lo, hi)


def test_every_length_around_the_blocks_matches() -> None:
    """Lengths 0 to 300 (the sequential runs below eight, the eight running sums up to 128, halves above), values
    of mixed magnitude, whose sum depends on the order of adding."""
    rng = np.random.default_rng(3)
    values = rng.standard_normal((3, 2000)) * 10.0 ** rng.uniform(-3, 9, (3, 2000))
    slices = [(int(lo), int(lo) + k) for k in range(301) for lo in rng.integers(0, 1690, 25)]
    got = slice_sums(values, slices)
    want = np.array([[values[r, lo:hi].sum() for lo, hi in slices] for r in range(3)])
    assert got.tobytes() == want.tobytes()
    # the test would see a different order: adding the short slices pairwise differs from numpy in some of them
    short = [j for j, (lo, hi) in enumerate(slices) if 3 <= hi - lo < LANES]
    other = np.array([[values[r, lo] + values[r, lo + 1:hi].sum() for lo, hi in (slices[j] for j in short)]
                      for r in range(3)])
    assert (other != want[:, short]).any()


def test_no_slices_and_empty_slices() -> None:
    values = np.arange(10.0).reshape(2, 5)
    assert slice_sums(values, []).shape == (2, 0)
    np.testing.assert_array_equal(slice_sums(values, [(2, 2), (0, 5)]), [[0.0, 10.0], [0.0, 35.0]])


@pytest.mark.parametrize("special", [[-0.0], [np.inf], [-np.inf, 1.0], [np.inf, -np.inf], [np.nan], [-np.nan, 2.0],
                                     [np.inf, -np.inf, np.nan], [np.nan, -np.nan]])
def test_signed_zeros_infinities_and_nans_come_out_as_numpys(special) -> None:
    """Sums of -0.0 (numpy begins at +0.0), of infinities, and of batches holding a NaN (whose sign and payload
    follow numpy's order of adding), at every length up to 40, with the special values at both ends and inside."""
    rng = np.random.default_rng(8)
    for n in range(41):
        row = np.where(rng.random(n) < 0.5, -0.0, rng.standard_normal(n))
        for at in {0, (n - len(special)) // 2, n - len(special)} if n >= len(special) else ():
            values = row.copy()
            values[at:at + len(special)] = special
            values = np.stack([values, -values, np.full(n, -0.0)])
            with np.errstate(invalid="ignore"):  # inf - inf
                got = slice_sums(values, [(0, n), (0, n // 2), (n // 3, n)])
                want = np.array([[values[r, lo:hi].sum() for lo, hi in [(0, n), (0, n // 2), (n // 3, n)]]
                                 for r in range(3)])
            assert got.tobytes() == want.tobytes(), (special, n, at)
