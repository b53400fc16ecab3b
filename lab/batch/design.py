"""Experimental designs: which combinations of factor values a batch runs.

Three designs, declared in a batch spec under ``design:``:

* ``grid`` -- the full factorial: every combination of every factor's levels
  (a numeric range is cut into ``steps`` evenly spaced levels);
* ``lhs`` -- a Latin hypercube (McKay, Beckman & Conover 1979): ``samples``
  points such that each factor's range, cut into ``samples`` equal strata,
  has exactly one point in each stratum;
* ``sobol`` -- a scrambled Sobol' sequence (Sobol' 1967; Owen scrambling),
  a low-discrepancy set that fills the factor space more evenly than random
  points; its balance holds for powers of two, so ``samples`` must be one.

* ``saltelli`` -- Saltelli's extension of a Sobol' sequence (Saltelli 2002;
  Saltelli et al. 2010) from SALib: ``samples`` base points (a power of two)
  give ``samples (k + 2)`` design points, in the order SALib's Sobol' index
  estimator expects (first-order and total indices, no second order);
* ``morris`` -- Morris (1991) elementary-effects trajectories from SALib:
  ``trajectories`` one-at-a-time paths over a ``levels``-level grid,
  ``trajectories (k + 1)`` design points.

The sampled designs come from ``scipy.stats.qmc`` with the design's seed, so
a design is a pure function of the spec. Unit-cube coordinates map onto each
factor: ``low + u (high - low)`` for a number, ``low + floor(u (high - low + 1))``
for a whole number, and the ``floor(u k)``-th of ``k`` levels otherwise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from lab.config import option
from lab.randomness.designs import morris_unit, saltelli_unit

MAX_POINTS = 1_000_000


@dataclass(frozen=True, kw_only=True)
class Grid:
    """Full factorial: every combination of the factors' levels (numeric ranges need `steps`, or `levels`)."""

    tag: ClassVar[str] = "grid"

    def extra(self) -> dict[str, Any]:
        """What the manifest records of the design beyond its type, samples and seed."""
        return {}


@dataclass(frozen=True, kw_only=True)
class LatinHypercube:
    """A Latin hypercube: `samples` points, one in each of `samples` equal strata of every factor."""

    tag: ClassVar[str] = "lhs"
    samples: int = option("number of design points", min=1, max=MAX_POINTS)
    seed: int | None = option("seed of the design (default: the batch seed)", default=None, min=0)

    def extra(self) -> dict[str, Any]:
        """What the manifest records of the design beyond its type, samples and seed."""
        return {}


@dataclass(frozen=True, kw_only=True)
class Sobol:
    """A scrambled Sobol' sequence of `samples` points (a power of two: 8, 16, 32, ...)."""

    tag: ClassVar[str] = "sobol"
    samples: int = option("number of design points, a power of two", min=1, max=MAX_POINTS)
    seed: int | None = option("seed of the scrambling (default: the batch seed)", default=None, min=0)

    def extra(self) -> dict[str, Any]:
        """What the manifest records of the design beyond its type, samples and seed."""
        return {}


@dataclass(frozen=True, kw_only=True)
class Saltelli:
    """Saltelli's sample for Sobol' indices: `samples` base points (a power of two), samples x (factors + 2) runs."""

    tag: ClassVar[str] = "saltelli"
    samples: int = option("base samples N, a power of two (design points: N x (factors + 2))", min=2, max=MAX_POINTS)
    seed: int | None = option("seed of the scrambling (default: the batch seed)", default=None, min=0)

    def extra(self) -> dict[str, Any]:
        return {"second_order": False}


@dataclass(frozen=True, kw_only=True)
class Morris:
    ("""Morris elementary effects: `trajectories` one-at-a-time paths on a `levels`-level grid, """
     """r x (factors + 1) runs.""")

    tag: ClassVar[str] = "morris"
    trajectories: int = option("number of trajectories r (design points: r x (factors + 1))", min=2, max=MAX_POINTS)
    levels: int = option("grid levels p of each factor (even; 4 is usual)", default=4, min=2, max=1000)
    seed: int | None = option("seed of the trajectories (default: the batch seed)", default=None, min=0)

    def extra(self) -> dict[str, Any]:
        return {"trajectories": self.trajectories, "levels": self.levels}

Design = Grid | LatinHypercube | Sobol | Saltelli | Morris


@dataclass(frozen=True)
class Axis:
    """One factor's domain: a numeric range (`low`..`high`), or a list of `levels`."""

    name: str
    kind: Literal["float", "int", "choice"]
    low: float | None = None
    high: float | None = None
    steps: int | None = None
    levels: tuple[Any, ...] | None = None

    def grid_levels(self) -> tuple[Any, ...]:
        """The values a grid design takes: the levels, or `steps` evenly spaced values over the range."""
        if self.levels is not None:
            return self.levels
        if self.steps is None or self.low is None or self.high is None:
            raise ValueError(f"factor '{self.name}' needs 'levels' or 'steps' in a grid design")
        values = np.linspace(self.low, self.high, self.steps)
        if self.kind == "int":
            ints = tuple(dict.fromkeys(int(v) for v in np.rint(values)))
            if len(ints) < self.steps:
                raise ValueError(f"factor '{self.name}': {self.steps} steps over {self.low:g}..{self.high:g} give only "
                                 f"{len(ints)} distinct whole numbers; use steps: {len(ints)} or fewer")
            return ints
        return tuple(float(v) for v in values)

    def from_unit(self, u: np.ndarray) -> list[Any]:
        """Map unit-interval coordinates onto this factor's values."""
        u = np.asarray(u, dtype=float)
        if self.levels is not None:
            k = len(self.levels)
            idx = np.minimum(np.floor(u * k).astype(np.int64), k - 1)
            return [self.levels[i] for i in idx]
        if self.low is None or self.high is None:
            raise ValueError(f"factor '{self.name}' needs low and high, or levels")
        if self.kind == "int":
            lo, hi = int(self.low), int(self.high)
            vals = np.minimum(lo + np.floor(u * (hi - lo + 1)).astype(np.int64), hi)
            return [int(v) for v in vals]
        return [float(v) for v in self.low + u * (self.high - self.low)]


def grid_size(axes: Sequence[Axis]) -> int:
    """How many points a full factorial over `axes` has."""
    return math.prod(len(a.grid_levels()) for a in axes)


def unit_points(design: LatinHypercube | Sobol | Saltelli | Morris, dims: int, seed: int) -> np.ndarray:
    """A (points x dims) array of design points in the unit cube, fixed by the seed."""
    if dims < 1:
        raise ValueError(f"a {design.tag} design needs at least one factor")
    if isinstance(design, (Saltelli, Morris)):
        return salib_unit_points(design, dims, seed)
    from scipy.stats import qmc  # here, not at the top: a batch's workers import this module and never sample

    if isinstance(design, LatinHypercube):
        return qmc.LatinHypercube(d=dims, rng=seed).random(design.samples)
    if design.samples & (design.samples - 1):
        raise ValueError(f"a Sobol' design needs a power of two samples, got {design.samples}")
    return qmc.Sobol(d=dims, scramble=True, rng=seed).random(design.samples)


def design_points(axes: Sequence[Axis], design: Design, seed: int) -> list[dict[str, Any]]:
    """The design table: one {factor name: value} per point, in point order.

    Grid points are in lexicographic order of the factors as listed (the last
    factor varies fastest); `seed` is used by sampled designs only."""
    if isinstance(design, Grid):
        n = grid_size(axes)
        if n > MAX_POINTS:
            raise ValueError(f"the grid has {n} points, more than {MAX_POINTS}; use fewer levels or an lhs design")
        names = [a.name for a in axes]
        return [dict(zip(names, combo)) for combo in itertools.product(*(a.grid_levels() for a in axes))]
    u = unit_points(design, len(axes), seed)
    columns = [a.from_unit(u[:, j]) for j, a in enumerate(axes)]
    return [{a.name: columns[j][i] for j, a in enumerate(axes)} for i in range(u.shape[0])]


def salib_unit_points(design: Saltelli | Morris, dims: int, seed: int) -> np.ndarray:
    """SALib's Saltelli or Morris sample over the unit cube (`lab.randomness.designs`)."""
    if isinstance(design, Saltelli):
        return saltelli_unit(dims, design.samples, seed)
    return morris_unit(dims, design.trajectories, design.levels, seed)
