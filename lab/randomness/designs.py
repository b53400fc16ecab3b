"""SALib's sensitivity designs over the unit cube, one definition for the batch's designs and the robust study.

A design's points are drawn in [0, 1]^dims and mapped onto parameters by their caller (a batch factor's
range, a plausible range's quantile function), so the sampling itself does not depend on what is sampled.
SALib (1.6: `SALib.sample.sobol`, `SALib.sample.morris`) is imported on first use; its notices about
sample sizes are silenced because the callers check the sizes and say what to use instead.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["morris_unit", "saltelli_unit"]


def _problem(dims: int) -> dict[str, Any]:
    return {"num_vars": dims, "names": [f"x{j}" for j in range(dims)], "bounds": [[0.0, 1.0]] * dims}


def saltelli_unit(dims: int, base: int, seed: int) -> np.ndarray:
    """Saltelli's design of `base` (a power of two) scrambled Sobol' points without second-order terms:
    `base * (dims + 2)` rows of `dims` unit coordinates."""
    if base < 1 or base & (base - 1):
        raise ValueError(f"a saltelli design needs a power of two base samples, got {base}")
    from SALib.sample import sobol

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = sobol.sample(_problem(dims), base, calc_second_order=False, scramble=True, seed=seed % 2**32)
    return np.asarray(u, dtype=float)


def morris_unit(dims: int, trajectories: int, levels: int, seed: int) -> np.ndarray:
    """Morris's `trajectories` one-at-a-time trajectories on a `levels`-level grid: `trajectories * (dims + 1)`
    rows of `dims` unit coordinates."""
    from SALib.sample import morris

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = morris.sample(_problem(dims), trajectories, num_levels=levels, seed=seed % 2**32)
    return np.asarray(u, dtype=float)
