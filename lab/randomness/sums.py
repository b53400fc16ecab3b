"""Sums of many slices of a batch at once, each to the bit of numpy's own sum of that slice.

A stack books each world's share of a batch of purchases to that world's day book: the sum of the world's slice
of every money column, exactly as its run alone sums its whole batch (`ndarray.sum`), or the two would drift
apart in the last bit. One `.sum()` call per world and column costs more than the adding when a stack holds
many small worlds, each with a handful of purchases a day; `slice_sums` does the short slices together.

numpy adds fewer than eight numbers one after the other, from zero; from eight on it adds in blocks
(pairwise summation), which `slice_sums` leaves to numpy itself, slice by slice. tests/test_sums.py holds the
result equal to numpy's, bit for bit, for slices of every length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: numpy sums shorter runs than this one element after another (its pairwise summation's smallest block)
SEQUENTIAL_BELOW = 8


def slice_sums(values: np.ndarray, slices: Sequence[tuple[int, int]]) -> np.ndarray:
    """values[:, lo:hi].sum(axis=1) for each (lo, hi) of `slices`, as a (rows of values, slices) array, every
    entry bit-identical to numpy's sum of that row's slice (`values[r, lo:hi].sum()`, whatever its strides).
    `values` is two-dimensional (one row per column of money summed); the slices need not be ordered or
    disjoint."""
    m = values.shape[0]
    out = np.empty((m, len(slices)))
    if not slices:
        return out
    lo = np.fromiter((a for a, _ in slices), dtype=np.int64, count=len(slices))
    hi = np.fromiter((b for _, b in slices), dtype=np.int64, count=len(slices))
    length = hi - lo
    short = np.flatnonzero(length < SEQUENTIAL_BELOW)
    if short.size:
        width = int(length[short].max(initial=0))
        if width:
            # each short slice's elements in a row, padded with zeros (adding zero to a sum begun at zero
            # changes no bit), added column by column as numpy adds a short run
            offsets = np.arange(width)
            cols = lo[short, None] + offsets
            inside = offsets < length[short, None]
            padded = np.where(inside, values[:, np.where(inside, cols, 0)], 0.0)
            total = np.zeros((m, short.size))
            for j in range(width):
                total += padded[:, :, j]
            out[:, short] = total
        else:
            out[:, short] = 0.0
    for s in np.flatnonzero(length >= SEQUENTIAL_BELOW).tolist():
        for r in range(m):  # numpy's own sum of the slice, as the caller's would be
            out[r, s] = values[r, lo[s]:hi[s]].sum()
    return out
