"""Sums of many slices of a batch at once, each to the bit of numpy's own sum of that slice.

A stack books each world's share of a batch of purchases to that world's day book: the sum of the world's slice
of every money column, exactly as its run alone sums its whole batch (`ndarray.sum`), or the two would drift
apart in the last bit. One `.sum()` call per world and column costs more than the adding when a stack holds
many small worlds, each with a handful of purchases a day; `slice_sums` does the short slices together.

numpy begins a sum at zero. Fewer than eight numbers it adds one after the other. From eight to 128 it keeps
eight running sums (the k-th takes every eighth number from the k-th on, as far as the last whole row of eight),
adds them as ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)), and then the numbers left over one after the
other. `slice_sums` does this for all such slices at once, the shorter ones padded with -0.0 (adding -0.0
changes no bit of any sum; a slice shorter than eight has eight running sums of nothing). Longer slices numpy
splits in two halves, recursively (pairwise summation): those it sums itself, slice by slice, as it does every
slice of a batch holding a NaN (whose sign and payload depend on the order of adding).
tests/test_sums.py holds the result equal to numpy's, bit for bit, for slices of every length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: numpy's running sums of a run of LANES to BLOCK numbers (shorter runs it adds one after the other)
LANES = 8
#: numpy sums runs of up to this many elements with eight running sums, longer ones in halves (PW_BLOCKSIZE)
BLOCK = 128


def slice_sums(values: np.ndarray, slices: Sequence[tuple[int, int]]) -> np.ndarray:
    """values[:, lo:hi].sum(axis=1) for each (lo, hi) of `slices`, as a (rows of values, slices) array, every
    entry bit-identical to numpy's sum of that row's slice (`values[r, lo:hi].sum()`, whatever its strides).
    `values` is two-dimensional (one row per column of money summed); the slices need not be ordered or
    disjoint."""
    m = values.shape[0]
    out = np.empty((m, len(slices)))
    if not slices:
        return out
    bounds = np.array(slices, dtype=np.int64).reshape(len(slices), 2)
    lo, hi = bounds[:, 0], bounds[:, 1]
    length = hi - lo
    # a NaN's sign and payload come out of numpy's own order of adding: a batch holding one is summed by numpy
    block = np.flatnonzero(length <= BLOCK) if not np.isnan(values).any() else np.zeros(0, dtype=np.int64)
    if block.size == len(slices):
        out[:] = _eight_sums(values, lo, length)
        return out
    if block.size:
        out[:, block] = _eight_sums(values, lo[block], length[block])
    for s in np.setdiff1d(np.arange(len(slices)), block).tolist():
        for r in range(m):  # numpy's own sum of the slice, as the caller's would be
            out[r, s] = values[r, lo[s]:hi[s]].sum()
    return out


def _eight_sums(values: np.ndarray, lo: np.ndarray, length: np.ndarray) -> np.ndarray:
    """numpy's sum of values[:, lo:lo + length] for slices of up to BLOCK elements, as a (rows, slices) array:
    zero plus eight running sums over the whole rows of eight, combined in numpy's order, then the rest added in
    turn."""
    m, n = values.shape
    padded = np.empty((m, n + 1))  # column n holds the -0.0 that pads every slice
    padded[:, :n] = values
    padded[:, n] = -0.0
    whole = length // LANES
    rows = int(whole.max())
    s = np.full((m, lo.size, LANES), -0.0)
    if rows:
        offsets = np.arange(rows * LANES)
        at = np.where(offsets < LANES * whole[:, None], lo[:, None] + offsets, n)
        lanes = padded[:, at].reshape(m, lo.size, rows, LANES)
        for i in range(rows):
            s += lanes[:, :, i, :]
    total = ((s[..., 0] + s[..., 1]) + (s[..., 2] + s[..., 3])) + ((s[..., 4] + s[..., 5]) + (s[..., 6] + s[..., 7]))
    left = length - LANES * whole
    more = int(left.max())
    if more:
        offsets = np.arange(more)
        at = np.where(offsets < left[:, None], (lo + LANES * whole)[:, None] + offsets, n)
        rest = padded[:, at]
        for j in range(more):
            total += rest[:, :, j]
    return 0.0 + total  # numpy's sum begins at zero (so -0.0 and -0.0 sum to 0.0)
