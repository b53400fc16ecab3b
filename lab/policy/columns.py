"""Declared per-customer columns of the programme's books.

Every array the policy runtime and its ledgers keep per customer is declared
once, as a :class:`Column` (name, dtype, starting value, meaning, unit), in the
class that owns it. Allocating the arrays and growing them when customers
arrive are derived from the declaration (:func:`allocate`, :func:`grow`), so a
column cannot be left out of `grow`, and the meaning of each column is there
for a reader (and for docs) next to its name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Column:
    """One per-customer array: its attribute name, dtype, value for a new customer, meaning and unit.

    `axis` is the customer axis (1 for per-rule tables stored rule-major); `width`
    names an attribute of the owner giving the size of the other axis, for 2-D columns.
    `flow` places a column in its book's conservation identity: "in" (what ever
    entered), "out" (what ever left) or "balance" (what is held now, summed over the
    other axis); the identity is sum(in) = sum(out) + balance, per customer (see
    :func:`identity`)."""

    name: str
    dtype: type
    meaning: str
    unit: str = ""
    fill: float = 0.0
    axis: int = 0
    width: str | None = None
    flow: str | None = None


def _shape(owner: object, col: Column, capacity: int) -> tuple[int, ...]:
    if col.width is None:
        return (capacity,)
    other = int(getattr(owner, col.width))
    return (capacity, other) if col.axis == 0 else (other, capacity)


def _filled(shape: tuple[int, ...], fill: float, dtype: type | np.dtype) -> np.ndarray:
    """A new array of `shape` at `fill`. A zero fill (the usual one) is np.zeros: a large one is mapped as zero
    pages that the system provides as they are first written, so the pages of rows no customer has reached yet
    are neither filled up front nor held in memory (a written page is still zeroed, on its first write)."""
    if fill == 0 and not np.signbit(fill):
        return np.zeros(shape, dtype=dtype)
    return np.full(shape, fill, dtype=dtype)


def allocate(owner: object, columns: Iterable[Column], capacity: int) -> None:
    """Create every declared column on `owner` for `capacity` customers, each at its starting value."""
    for col in columns:
        setattr(owner, col.name, _filled(_shape(owner, col, capacity), col.fill, col.dtype))


def grow(owner: object, columns: Iterable[Column], capacity: int) -> None:
    """Make room for `capacity` customers in every declared column; new customers start at the column's fill."""
    for col in columns:
        old = getattr(owner, col.name)
        shape = list(old.shape)
        have = shape[col.axis]
        if capacity <= have:
            continue
        shape[col.axis] = capacity
        new = _filled(tuple(shape), col.fill, old.dtype)
        if col.axis == 0:
            new[:have] = old
        else:
            new[:, :have] = old
        setattr(owner, col.name, new)


def identity(owner: object, columns: Iterable[Column]) -> tuple[np.ndarray, np.ndarray]:
    """(what entered, what left plus what is held) per customer, from the columns' declared flows.

    The two are equal (up to rounding) in a book that conserves what it holds."""
    cols = list(columns)
    if not any(c.flow == "balance" for c in cols):
        raise ValueError("a book's identity needs a column with flow='balance'")
    entered = left = None
    for c in cols:
        if c.flow is None:
            continue
        a = np.asarray(getattr(owner, c.name), dtype=np.float64)
        if a.ndim == 2:
            a = a.sum(axis=1 - c.axis)
        if c.flow == "in":
            entered = a if entered is None else entered + a
        else:
            left = a if left is None else left + a
    assert entered is not None and left is not None
    return entered, left


class WorldRows:
    """The rows of a stack of worlds (lab.engine.stack) as a book over all of them sees them.

    World w owns the rows [bounds[w], bounds[w + 1]) -- its customer i is row bounds[w] + i -- and `worlds[w]`
    is its own counterpart of the book (holding what is not per customer: totals, flags, accounts), whose
    columns are views of the stacked book's rows (:func:`share`). `bounds` is updated in place when the
    worlds' blocks move."""

    def __init__(self, bounds: np.ndarray, worlds: list) -> None:
        self.bounds = bounds
        self.worlds = worlds

    def parts(self, rows: np.ndarray, worlds: list[int] | None = None) -> list[tuple[int, int, int]]:
        """(world, lo, hi): each world's entries rows[lo:hi] of ascending `rows`; of the worlds that have some,
        or of exactly `worlds` (empty parts included) when given."""
        cut = np.searchsorted(rows, self.bounds).tolist()
        if worlds is None:
            return [(w, cut[w], cut[w + 1]) for w in range(len(self.worlds)) if cut[w + 1] > cut[w]]
        return [(w, cut[w], cut[w + 1]) for w in worlds]


def share(stacked: object, worlds: Iterable[object], columns: Iterable[Column], bounds: np.ndarray) -> None:
    """Lay the worlds' columns out as blocks of the stacked owner's columns, and make each world's columns
    views of its block (so both see one array): world w's block is rows bounds[w] to bounds[w + 1], its
    current values copied in and new rows at the column's fill."""
    cols = list(columns)
    total = int(bounds[-1])
    worlds = list(worlds)
    for col in cols:
        first = getattr(worlds[0], col.name)
        shape = list(first.shape)
        shape[col.axis] = total
        big = _filled(tuple(shape), col.fill, first.dtype)
        for w, owner in enumerate(worlds):
            old = getattr(owner, col.name)
            lo, hi = int(bounds[w]), int(bounds[w + 1])
            have = min(old.shape[col.axis], hi - lo)
            if col.axis == 0:
                big[lo:lo + have] = old[:have]
            else:
                big[:, lo:lo + have] = old[:, :have]
        setattr(stacked, col.name, big)
        for w, owner in enumerate(worlds):
            lo, hi = int(bounds[w]), int(bounds[w + 1])
            setattr(owner, col.name, big[lo:hi] if col.axis == 0 else big[:, lo:hi])
