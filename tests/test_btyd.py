"""Buy-till-you-die closed forms checked against simulation, published numbers and theory.

Monte Carlo tolerances are 4 standard errors estimated from the simulated sample itself
(two-sided false-alarm probability about 6e-5 per comparison; the seeds are fixed anyway).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.special import gammaln
from scipy.stats import chi2

from lab.population.btyd import (
    bgnbd_conditional_expected,
    bgnbd_expected_purchases,
    bgnbd_loglik,
    bgnbd_p_alive,
    bgnbd_sample,
    gamma_gamma_conditional_spend,
    gamma_gamma_mean_spend,
    paretonbd_expected_purchases,
)

# Fader, Hardie & Lee (2005) BG/NBD estimates for the CDNOW cohort, time in weeks.
CDNOW = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)
Z = 4.0  # standard errors allowed in Monte Carlo comparisons


def _within(sample: np.ndarray, expected: float) -> tuple[bool, str]:
    """Is the sample mean within Z standard errors of ``expected``? Also return a diagnostic."""
    se = sample.std(ddof=1) / np.sqrt(sample.size)
    diff = sample.mean() - expected
    return bool(abs(diff) <= Z * se), f"mean={sample.mean():.5f} expected={expected:.5f} se={se:.5f}"


# --------------------------------------------------------------------------- #
# BG/NBD: E[X(t)]
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("t", [13.0, 26.0, 39.0, 78.0])
def test_expected_purchases_matches_simulation_cdnow(t: float) -> None:
    rng = np.random.default_rng(int(t))
    x, _ = bgnbd_sample(200_000, t, **CDNOW, rng=rng)
    ok, msg = _within(x.astype(float), bgnbd_expected_purchases(t, **CDNOW))
    assert ok, msg


@pytest.mark.parametrize(
    "params",
    [
        dict(r=1.5, alpha=10.0, a=2.5, b=4.0),  # a > 1
        dict(r=0.8, alpha=3.0, a=0.4, b=0.3),  # a + b - 1 < 0
        dict(r=0.5, alpha=2.0, a=1.3, b=0.2),  # b < 1
    ],
)
def test_expected_purchases_matches_simulation_other_regimes(params: dict[str, float]) -> None:
    rng = np.random.default_rng(7)
    for t in (5.0, 50.0):
        x, _ = bgnbd_sample(100_000, t, **params, rng=rng)
        ok, msg = _within(x.astype(float), bgnbd_expected_purchases(t, **params))
        assert ok, f"t={t}: {msg}"


def test_expected_purchases_vectorised_and_small_t_limit() -> None:
    ts = np.array([0.0, 1e-9, 13.0, 78.0])
    out = bgnbd_expected_purchases(ts, **CDNOW)
    assert out.shape == ts.shape
    assert out[0] == 0.0
    # For tiny t nobody has dropped out yet, so E[X(t)] ~ E[lambda] t = r t / alpha.
    assert out[1] == pytest.approx(CDNOW["r"] / CDNOW["alpha"] * 1e-9, rel=1e-6)
    assert out[3] == pytest.approx(bgnbd_expected_purchases(78.0, **CDNOW))


@settings(max_examples=60, deadline=None)
@given(
    r=st.floats(0.05, 5.0),
    alpha=st.floats(0.5, 50.0),
    a=st.floats(0.05, 8.0).filter(lambda v: abs(v - 1.0) > 0.05),
    b=st.floats(0.05, 8.0),
    t1=st.floats(0.0, 200.0),
    dt=st.floats(0.0, 200.0),
    tie=st.sampled_from([None, -1, 0, 1, 2]),
)
def test_expected_purchases_monotone_and_bounded(
    r: float, alpha: float, a: float, b: float, t1: float, dt: float, tie: int | None
) -> None:
    if abs(a + b - 1.0) < 0.05:
        return
    if tie is not None and a + tie > 0:
        r = a + tie  # exercise the degenerate r - a integer case
    e1, e2 = bgnbd_expected_purchases(np.array([t1, t1 + dt]), r, alpha, a, b)
    tol = 1e-9 * (1.0 + abs(e2))
    assert -tol <= e1 <= e2 + tol
    # Dropout can only remove purchases, so E[X(t)] <= E[lambda] t = r t / alpha.
    assert e2 <= r * (t1 + dt) / alpha * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("a, k", [(0.05, 0), (0.793, 1), (2.5, -1), (3.0, 2)])
def test_expected_purchases_where_r_minus_a_is_an_integer(a: float, k: int) -> None:
    # r - a integer is a degenerate case of the hypergeometric series (scipy returns NaN
    # there); E[X(t)] is still smooth and increasing in r, since lambda grows stochastically.
    r, alpha, b = a + k, 0.5, 6.0
    ts = np.array([1.0, 25.0, 225.0, 2000.0])
    mid = bgnbd_expected_purchases(ts, r, alpha, a, b)
    lo = bgnbd_expected_purchases(ts, r * (1 - 1e-3), alpha, a, b)
    hi = bgnbd_expected_purchases(ts, r * (1 + 1e-3), alpha, a, b)
    assert np.all(np.isfinite(mid)) and np.all(lo < mid) and np.all(mid < hi)
    np.testing.assert_allclose(mid, 0.5 * (lo + hi), rtol=1e-5)


# --------------------------------------------------------------------------- #
# BG/NBD: conditional expectation and P(alive)
# --------------------------------------------------------------------------- #
def test_conditional_expected_reproduces_published_example() -> None:
    # Fader, Hardie & Lee (2005): CDNOW customer with x=2, t_x=30.43, T=38.86 weeks
    # is expected to make 1.226 repeat purchases in the next 39 weeks.
    got = bgnbd_conditional_expected(39.0, 2, 30.43, 38.86, **CDNOW)
    assert got == pytest.approx(1.226, abs=5e-4)


def test_conditional_expected_tower_property() -> None:
    # E[X(T + t)] - E[X(T)] = E[ E[X(T, T+t] | x, t_x, T] ] over the population.
    T, t = 39.0, 39.0
    x, t_x = bgnbd_sample(200_000, T, **CDNOW, rng=np.random.default_rng(11))
    cond = bgnbd_conditional_expected(t, x, t_x, T, **CDNOW)
    expected = bgnbd_expected_purchases(T + t, **CDNOW) - bgnbd_expected_purchases(T, **CDNOW)
    ok, msg = _within(cond, expected)
    assert ok, msg


def _sample_with_alive_flag(n: int, T: float, r: float, alpha: float, a: float, b: float, rng: np.random.Generator):
    """Independent BG/NBD simulator via order statistics, also returning whether each customer is alive at T.

    K ~ Poisson(lambda T) events would occur without dropout; the dropout happens after
    purchase N ~ Geometric(p).  x = min(K, N), alive iff K < N, and the x-th of K uniform
    event times on (0, T] is T * Beta(x, K - x + 1).
    """
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    k = rng.poisson(lam * T)
    drop_after = rng.geometric(p)
    x = np.minimum(k, drop_after)
    alive = k < drop_after
    t_x = np.zeros(n)
    pos = x > 0
    t_x[pos] = T * rng.beta(x[pos], k[pos] - x[pos] + 1)
    return x, t_x, alive


def test_p_alive_is_calibrated_against_independent_simulation() -> None:
    T = 39.0
    x, t_x, alive = _sample_with_alive_flag(300_000, T, **CDNOW, rng=np.random.default_rng(2008))
    pa = bgnbd_p_alive(x, t_x, T, **CDNOW)
    assert np.all(pa[x == 0] == 1.0) and np.all(alive[x == 0])
    rep = x > 0
    resid = alive[rep].astype(float) - pa[rep]
    edges = np.quantile(pa[rep], [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    bins = np.clip(np.searchsorted(edges, pa[rep], side="right") - 1, 0, 4)
    for k in range(5):
        ok, msg = _within(resid[bins == k], 0.0)
        assert ok, f"bin {k}: {msg}"


def test_independent_simulator_agrees_with_bgnbd_sample() -> None:
    # Two different constructions of the same generative story must agree on (x, t_x) moments.
    T = 26.0
    x1, tx1 = bgnbd_sample(200_000, T, **CDNOW, rng=np.random.default_rng(1))
    x2, tx2, _ = _sample_with_alive_flag(200_000, T, **CDNOW, rng=np.random.default_rng(2))
    for a_, b_ in ((x1, x2), (tx1, tx2), ((x1 > 0).astype(float), (x2 > 0).astype(float))):
        se = np.sqrt(a_.var(ddof=1) / a_.size + b_.var(ddof=1) / b_.size)
        assert abs(a_.mean() - b_.mean()) <= Z * se


@settings(max_examples=60, deadline=None)
@given(
    x=st.integers(0, 5000),
    frac=st.floats(0.0, 1.0),
    T=st.floats(0.1, 500.0),
    extra=st.floats(0.0, 100.0),
    t=st.floats(0.0, 500.0),
)
def test_p_alive_and_conditional_are_well_behaved(x: int, frac: float, T: float, extra: float, t: float) -> None:
    t_x = frac * T if x > 0 else 0.0
    pa = bgnbd_p_alive(x, t_x, T, **CDNOW)
    pa_later = bgnbd_p_alive(x, t_x, T + extra, **CDNOW)
    assert 0.0 <= pa_later <= pa + 1e-12 <= 1.0 + 1e-12  # silence makes death more likely
    ce = bgnbd_conditional_expected(t, x, t_x, T, **CDNOW)
    assert np.isfinite(ce) and ce >= -1e-12


def test_p_alive_vectorised_shapes() -> None:
    x = np.array([0, 1, 5, 400])
    t_x = np.array([0.0, 10.0, 30.0, 38.0])
    pa = bgnbd_p_alive(x, t_x, 39.0, **CDNOW)
    assert pa.shape == (4,) and pa[0] == 1.0 and np.all(np.isfinite(pa))
    ce = bgnbd_conditional_expected(np.array([[13.0], [52.0]]), x, t_x, 39.0, **CDNOW)
    assert ce.shape == (2, 4) and np.all(ce[1] >= ce[0])


# --------------------------------------------------------------------------- #
# BG/NBD: likelihood
# --------------------------------------------------------------------------- #
def test_loglik_of_silent_customer_is_log_zero_purchase_probability() -> None:
    # With x = 0 eq. (6) reduces to P(X(T) = 0 | alive) = (alpha / (alpha + T))**r.
    T = np.array([10.0, 39.0])
    got = bgnbd_loglik([0, 0], [0.0, 0.0], T, **CDNOW)
    want = float(np.sum(CDNOW["r"] * np.log(CDNOW["alpha"] / (CDNOW["alpha"] + T))))
    assert got == pytest.approx(want, rel=1e-12)


def test_likelihood_is_a_normalised_density_over_frequency_and_recency() -> None:
    # Eq. (6) is the density of the full purchase times; integrating out the first x-1
    # times multiplies it by t_x**(x-1)/(x-1)!.  Summed over x and integrated over t_x in
    # (0, T] that must give exactly 1 (mass beyond x = 60 is below 1e-12 at T = 8 weeks).
    T = 8.0
    nodes, weights = np.polynomial.legendre.leggauss(60)
    t_nodes, w = 0.5 * T * (nodes + 1.0), 0.5 * T * weights
    total = float(np.exp(bgnbd_loglik([0], [0.0], [T], **CDNOW)))
    for x in range(1, 61):
        dens = np.array([np.exp(bgnbd_loglik([x], [t], [T], **CDNOW)) for t in t_nodes])
        total += float(np.sum(w * dens * np.exp((x - 1) * np.log(t_nodes) - gammaln(x))))
    assert total == pytest.approx(1.0, abs=1e-9)


def test_loglik_is_finite_for_extreme_frequencies() -> None:
    ll = bgnbd_loglik([10_000], [500.0], [520.0], **CDNOW)
    assert np.isfinite(ll)


@pytest.fixture(scope="module")
def cdnow_like_sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2005)
    n = 20_000
    T = rng.uniform(27.0, 39.0, n)  # staggered acquisition like the CDNOW cohort
    x, t_x = bgnbd_sample(n, T, **CDNOW, rng=rng)
    return x, t_x, T


@pytest.mark.parametrize("name", ["r", "alpha", "a", "b"])
@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_loglik_prefers_truth_to_perturbed_parameters(cdnow_like_sample, name: str, factor: float) -> None:
    x, t_x, T = cdnow_like_sample
    perturbed = dict(CDNOW, **{name: CDNOW[name] * factor})
    assert bgnbd_loglik(x, t_x, T, **CDNOW) > bgnbd_loglik(x, t_x, T, **perturbed)


def test_loglik_maximum_is_consistent_with_truth_by_wilks(cdnow_like_sample) -> None:
    # Wilks: 2 (max ll - ll(truth)) ~ chi^2_4 asymptotically.  A wrong likelihood would put
    # the maximum far from the data-generating parameters and blow this statistic up.
    x, t_x, T = cdnow_like_sample
    truth = np.array([CDNOW["r"], CDNOW["alpha"], CDNOW["a"], CDNOW["b"]])
    res = minimize(
        lambda th: -bgnbd_loglik(x, t_x, T, *np.exp(th)),
        np.log(truth),
        method="Nelder-Mead",
        options=dict(xatol=1e-6, fatol=1e-6, maxiter=4000),
    )
    lr = 2.0 * (-res.fun - bgnbd_loglik(x, t_x, T, *truth))
    assert -1e-6 <= lr <= chi2.ppf(0.999, df=4)


# --------------------------------------------------------------------------- #
# BG/NBD: input checking
# --------------------------------------------------------------------------- #
def test_bgnbd_rejects_bad_input_with_clear_messages() -> None:
    with pytest.raises(ValueError, match="a == 1"):
        bgnbd_expected_purchases(10.0, 0.5, 2.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="a \\+ b \\+ x - 1"):
        bgnbd_expected_purchases(10.0, 0.5, 2.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        bgnbd_expected_purchases(10.0, 0.5, -2.0, 0.7, 2.0)
    with pytest.raises(ValueError, match="t_x must not exceed T"):
        bgnbd_p_alive(2, 40.0, 39.0, **CDNOW)
    with pytest.raises(ValueError, match="whole numbers"):
        bgnbd_loglik([1.5], [3.0], [10.0], **CDNOW)
    with pytest.raises(ValueError, match="Generator"):
        bgnbd_sample(10, 5.0, **CDNOW, rng=42)
    with pytest.raises(ValueError, match="one entry per customer"):
        bgnbd_sample(10, np.ones(3), **CDNOW, rng=np.random.default_rng(0))


def test_bgnbd_sample_shapes_and_support() -> None:
    T = np.linspace(1.0, 52.0, 1000)
    x, t_x = bgnbd_sample(1000, T, **CDNOW, rng=np.random.default_rng(3))
    assert x.shape == t_x.shape == (1000,)
    assert np.all(x >= 0) and np.all(t_x <= T) and np.all(t_x >= 0)
    assert np.all((x == 0) == (t_x == 0))


# --------------------------------------------------------------------------- #
# Pareto/NBD
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "params",
    [
        dict(r=0.55, alpha=10.58, s=0.61, beta=11.67),  # CDNOW-scale values with s < 1
        dict(r=1.2, alpha=6.0, s=2.5, beta=30.0),
        dict(r=0.9, alpha=4.0, s=1.0, beta=20.0),  # the s == 1 limit
    ],
)
def test_paretonbd_expected_purchases_matches_simulation(params: dict[str, float]) -> None:
    rng = np.random.default_rng(1987)
    n = 200_000
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    mu = rng.gamma(params["s"], 1.0 / params["beta"], n)
    lifetime = rng.standard_exponential(n) / mu
    for t in (13.0, 52.0, 156.0):
        x = rng.poisson(lam * np.minimum(lifetime, t)).astype(float)
        ok, msg = _within(x, paretonbd_expected_purchases(t, **params))
        assert ok, f"t={t}: {msg}"


def test_paretonbd_is_continuous_through_s_equal_one() -> None:
    t = np.array([1.0, 52.0, 1000.0])
    at_one = paretonbd_expected_purchases(t, 0.9, 4.0, 1.0, 20.0)
    near = paretonbd_expected_purchases(t, 0.9, 4.0, 1.0 + 1e-7, 20.0)
    np.testing.assert_allclose(near, at_one, rtol=1e-6)
    with pytest.raises(ValueError, match="beta must be"):
        paretonbd_expected_purchases(t, 0.9, 4.0, 1.5, 0.0)


# --------------------------------------------------------------------------- #
# Gamma-Gamma spend
# --------------------------------------------------------------------------- #
GG = dict(p=6.25, q=3.74, gamma=15.44)


def _gg_customers(n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-customer spend rate nu ~ Gamma(shape q, scale 1/gamma)."""
    return rng.gamma(GG["q"], 1.0 / GG["gamma"], n)


def test_gamma_gamma_mean_matches_sampling() -> None:
    rng = np.random.default_rng(42)
    nu = _gg_customers(400_000, rng)
    z = rng.gamma(GG["p"], 1.0 / nu)
    mean = gamma_gamma_mean_spend(**GG)
    assert mean == pytest.approx(6.25 * 15.44 / 2.74)
    ok, msg = _within(z, mean)
    assert ok, msg


def test_gamma_gamma_conditional_is_the_posterior_mean() -> None:
    # The posterior mean leaves a residual (true mean spend - prediction) with zero mean
    # given the data, so it must average to zero within every bin of the prediction.
    rng = np.random.default_rng(43)
    n = 300_000
    nu = _gg_customers(n, rng)
    x = rng.choice([1, 2, 3, 5, 10], size=n)
    # Sum of x iid Gamma(p, rate nu) draws is Gamma(p x, rate nu).
    mean_x = rng.gamma(GG["p"] * x, 1.0 / nu) / x
    pred = gamma_gamma_conditional_spend(mean_x, x, **GG)
    resid = GG["p"] / nu - pred
    edges = np.quantile(pred, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    bins = np.clip(np.searchsorted(edges, pred, side="right") - 1, 0, 4)
    for k in range(5):
        ok, msg = _within(resid[bins == k], 0.0)
        assert ok, f"bin {k}: {msg}"


def test_gamma_gamma_conditional_edge_cases() -> None:
    assert gamma_gamma_conditional_spend(0.0, 0, **GG) == pytest.approx(gamma_gamma_mean_spend(**GG))
    # Many transactions: the customer's own average dominates.
    assert gamma_gamma_conditional_spend(80.0, 10**7, **GG) == pytest.approx(80.0, rel=1e-5)
    out = gamma_gamma_conditional_spend(np.array([10.0, 50.0]), np.array([3, 3]), **GG)
    assert out.shape == (2,) and out[0] < out[1]
    with pytest.raises(ValueError, match="q > 1"):
        gamma_gamma_mean_spend(6.25, 0.9, 15.44)
    with pytest.raises(ValueError, match="p\\*x \\+ q > 1"):
        gamma_gamma_conditional_spend([10.0], [0], 6.25, 0.9, 15.44)
    with pytest.raises(ValueError, match="whole numbers"):
        gamma_gamma_conditional_spend([10.0], [1.5], **GG)
