"""Gamma and beta quantiles (lab.randomness.quantiles): as accurate as scipy's inversions, and batch-independent.

The engine draws every trait and every basket by inverting a distribution function at a
counter-based uniform, so two things matter: the inversion is exact to floating-point
accuracy (spend stays Gamma-Gamma, BG/NBD stays BG/NBD), and a draw depends only on its
parameters and its uniform -- never on what else is in the batch -- so common random
numbers hold to the last bit.

Tolerances: scipy's inversions are themselves accurate only to about 1e-14 relative (at
shape 1, where the exact answer is -log1p(-u), scipy is off by up to 7e-15), and the
tables are built from scipy's incomplete gamma/beta functions, so they inherit that and
the interpolation may add as much again: 3e-14 relative. For shapes below 1 the lower
tail behaves like u**(1/a), which multiplies any relative error in the distribution
function by 1/a, for scipy and the tables alike: 3e-14 / a there. A real defect (a wrong
node, slope or curvature; an interval off by one) costs 1e-9 or more.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from lab.randomness import beta_quantile, gamma_quantile

REL = 3e-14


def tol(*shapes: float) -> float:
    return REL / min(1.0, *shapes)
EDGES = np.array([2.0**-53, 2.0**-40, 1e-12, 1e-6, 0.1, 0.5, 0.5 + 2.0**-53, 0.9, 0.9 + 2.0**-52, 0.999999,
                  1 - 2.0**-40, 1 - 2.0**-53])


def uniforms(n: int, seed: int) -> np.ndarray:
    """n uniforms on the engine's 53-bit grid, plus the edges of (0, 1)."""
    u = np.floor(np.random.default_rng(seed).random(n) * 2.0**53) * 2.0**-53
    return np.concatenate([u[u > 0], EDGES])


def rel_err(x: np.ndarray, ref: np.ndarray) -> float:
    ok = ref != 0
    assert np.array_equal(x[~ok], ref[~ok])
    return float(np.max(np.abs(x[ok] / ref[ok] - 1.0)))


@pytest.mark.parametrize("shape", [0.1, 0.33, 0.5, 1.0, 1.2, 3.74, 6.25, 40.0, 500.0])
def test_gamma_quantile_matches_scipy(shape: float) -> None:
    u = uniforms(20_000, 1)
    assert rel_err(gamma_quantile(shape, u), special.gammaincinv(shape, u)) <= tol(shape)


def test_gamma_quantile_of_shape_one_is_the_exponential() -> None:
    u = uniforms(20_000, 2)
    assert rel_err(gamma_quantile(1.0, u), -np.log1p(-u)) <= tol(1.0)


def test_gamma_quantile_of_shape_half_is_half_a_squared_normal() -> None:
    u = uniforms(20_000, 3)
    assert rel_err(gamma_quantile(0.5, u), special.erfinv(u) ** 2) <= tol(0.5)


@pytest.mark.parametrize("a,b", [(0.8, 12.0), (2.0, 5.0), (5.0, 2.0), (0.3, 0.3), (40.0, 20.0), (1.0, 2.5)])
def test_beta_quantile_matches_scipy(a: float, b: float) -> None:
    u = uniforms(20_000, 4)
    x, ref = beta_quantile(a, b, u), special.betaincinv(a, b, u)
    assert rel_err(x, ref) <= tol(a, b)
    assert np.max(np.abs(x - ref)) <= 4e-15  # near 1, where 1 - x is only as good as x's last bits


def test_beta_quantiles_with_a_or_b_one_are_powers() -> None:
    u = uniforms(20_000, 5)
    assert rel_err(beta_quantile(2.5, 1.0, u), u ** (1 / 2.5)) <= tol(2.5, 1.0)
    assert rel_err(beta_quantile(1.0, 2.5, u), -np.expm1(np.log1p(-u) / 2.5)) <= tol(1.0, 2.5)


def test_shapes_by_code_equal_shapes_per_draw() -> None:
    u = uniforms(5_000, 6)
    code = np.random.default_rng(7).integers(0, 3, u.size)
    shapes = np.array([0.5, 1.2, 6.25])
    assert np.array_equal(gamma_quantile(shapes, u, code=code), gamma_quantile(shapes[code], u))
    a, b = np.array([0.8, 1.0, 3.0]), np.array([12.0, 2.5, 3.0])
    assert np.array_equal(beta_quantile(a, b, u, code=code), beta_quantile(a[code], b[code], u))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 9_000), pick=st.integers(0, 8_999))
def test_a_draw_does_not_depend_on_its_batch(seed: int, size: int, pick: int) -> None:
    """The same (parameters, uniform) gives the same bits alone, in a small batch or a large (threaded) one."""
    u = uniforms(size, seed)[:size]
    code = np.random.default_rng(seed).integers(0, 2, size)
    i = pick % size
    shapes, a, b = np.array([1.2, 6.25]), np.array([0.8, 2.0]), np.array([12.0, 5.0])
    batch = gamma_quantile(shapes, u, code=code)
    assert batch[i] == gamma_quantile(shapes[code[i]], u[i : i + 1])[0]
    batch = beta_quantile(a, b, u, code=code)
    assert batch[i] == beta_quantile(a[code[i]], b[code[i]], u[i : i + 1])[0]


def test_edges_and_bad_parameters_behave_like_scipy() -> None:
    u = np.array([0.0, 0.25, 0.75])
    assert gamma_quantile(2.0, u)[0] == 0.0 and beta_quantile(2.0, 3.0, u)[0] == 0.0
    with np.errstate(all="ignore"):
        for shape in (0.0, -1.0, np.nan):
            np.testing.assert_array_equal(gamma_quantile(shape, u), special.gammaincinv(shape, u))
        np.testing.assert_array_equal(beta_quantile(np.nan, 2.0, u), special.betaincinv(np.nan, 2.0, u))
    assert gamma_quantile(2.0, 0.3) == pytest.approx(special.gammaincinv(2.0, 0.3), rel=tol(2.0))
    assert np.shape(gamma_quantile(2.0, np.array(0.3))) == ()
