"""The fit's likelihoods against a direct numerical evaluation of each model, on small cases.

Each closed form is compared with the model's individual-level likelihood integrated numerically
(scipy.integrate.quad) over a latent quantity, the others integrated exactly: BG/NBD over the
dropout probability p ~ Beta(a, b) and, separately, over the purchase rate lambda ~ Gamma(r, alpha);
Pareto/NBD over the customer's lifetime (tau ~ Exp(mu), mu ~ Gamma(s, beta)), which involves no
hypergeometric function at all; Gamma-Gamma over nu ~ Gamma(q, gamma). The fast paths the optimiser uses (distinct
histories, analytic gradients) must
give the same numbers as the plain per-customer sums and central differences.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import betaln, gammaln

from lab.fit.likelihoods import (Histories, bgnbd_loglik, bgnbd_loglik_grad, gamma_gamma_loglik,
                                 gamma_gamma_loglik_grad, paretonbd_loglik)

HISTORIES = [(0, 0.0, 10.0), (2, 3.0, 10.0), (5, 9.5, 10.0), (1, 10.0, 10.0), (12, 30.0, 52.0)]
PARETO = [(0.5, 5.0, 0.7, 8.0), (1.2, 3.0, 0.5, 2.0), (2.0, 10.0, 1.5, 20.0)]
BG = [(0.243, 4.414, 0.793, 2.426), (1.5, 6.0, 0.7, 9.0), (0.6, 8.0, 1.2, 4.0)]


def _quad(f, lo, hi, points=None) -> float:
    return integrate.quad(f, lo, hi, epsabs=0, epsrel=1e-12, limit=400, points=points)[0]


def _rate_mixed(u, x, r, alpha):
    """E[lambda^x exp(-lambda u)] over lambda ~ Gamma(r, rate alpha): the one part done analytically."""
    return np.exp(gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + u))


def _pareto_numeric(x, t_x, T, r, alpha, s, beta) -> float:
    """Integrate over the lifetime tau ~ Exp(mu), mu ~ Gamma(s, beta): alive through T, or dying at tau in (t_x, T]."""
    alive = _rate_mixed(T, x, r, alpha) * (beta / (beta + T)) ** s
    dying = lambda tau: _rate_mixed(tau, x, r, alpha) * s * beta**s / (beta + tau) ** (s + 1)  # noqa: E731
    return float(np.log(alive + (_quad(dying, t_x, T) if T > t_x else 0.0)))


def _bg_numeric_over_p(x, t_x, T, r, alpha, a, b) -> float:
    """Integrate the dropout probability p ~ Beta(a, b) numerically (the rate analytically)."""
    def f(p):
        L = (1 - p) ** x * _rate_mixed(T, x, r, alpha)
        if x > 0:
            L += p * (1 - p) ** (x - 1) * _rate_mixed(t_x, x, r, alpha)
        return L * stats.beta.pdf(p, a, b)
    return float(np.log(_quad(f, 0, 0.5) + _quad(f, 0.5, 1)))


def _bg_numeric_over_lambda(x, t_x, T, r, alpha, a, b) -> float:
    """Integrate the purchase rate lambda ~ Gamma(r, alpha) numerically (the dropout's Beta moments exactly)."""
    stay = np.exp(betaln(a, b + x) - betaln(a, b))
    drop = np.exp(betaln(a + 1, b + x - 1) - betaln(a, b)) if x > 0 else 0.0
    def f(lam):
        return ((stay * lam**x * np.exp(-lam * T) + drop * lam**x * np.exp(-lam * t_x))
                * stats.gamma.pdf(lam, r, scale=1 / alpha))
    mode = (r + x) / (alpha + t_x)
    return float(np.log(_quad(f, 0, mode) + _quad(f, mode, 20 * mode + 10) + _quad(f, 20 * mode + 10, np.inf)))


@pytest.mark.parametrize("params", PARETO)
@pytest.mark.parametrize("hist", HISTORIES)
def test_paretonbd_matches_numerical_integration(hist, params) -> None:
    assert paretonbd_loglik(*hist, *params) == pytest.approx(_pareto_numeric(*hist, *params), abs=1e-7)


@pytest.mark.parametrize("params", BG)
@pytest.mark.parametrize("hist", HISTORIES)
def test_bgnbd_matches_numerical_integration(hist, params) -> None:
    ll = bgnbd_loglik(*hist, *params)
    assert ll == pytest.approx(_bg_numeric_over_p(*hist, *params), abs=1e-8)
    assert ll == pytest.approx(_bg_numeric_over_lambda(*hist, *params), abs=1e-8)


@pytest.mark.parametrize("x, m, p, q, g",
                         [(1, 35.0, 6.25, 3.74, 15.44), (3, 20.0, 6.0, 4.0, 15.0), (10, 5.0, 2.0, 1.5, 3.0)])
def test_gamma_gamma_matches_numerical_integration(x, m, p, q, g) -> None:
    # the mean of x spends, each Gamma(p, rate nu), has density x * Gamma(px, nu) at x*m
    f = lambda nu: stats.gamma.pdf(x * m, p * x, scale=1 / nu) * x * stats.gamma.pdf(nu, q, scale=1 / g)  # noqa: E731
    v, _ = integrate.quad(f, 0, np.inf, epsabs=1e-15, epsrel=1e-11, limit=200)
    assert gamma_gamma_loglik(x, m, p, q, g) == pytest.approx(np.log(v), abs=1e-7)


@pytest.fixture(scope="module")
def base():
    rng = np.random.default_rng(7)
    n = 3000
    T = np.floor(rng.uniform(10, 60, n) * 7) / 7
    x = rng.poisson(3.0, n).astype(float)
    t_x = np.where(x > 0, np.floor(T * rng.random(n) * 7) / 7, 0.0)
    return x, t_x, T


@pytest.mark.parametrize("params", BG)
def test_histories_bgnbd_equals_sum_and_gradient_equals_differences(base, params) -> None:
    x, t_x, T = base
    h = Histories(x, t_x, T)
    assert h.x.size < x.size  # the data do repeat, so the fast path is exercised
    ll, grad = h.bgnbd(*params)
    assert ll == pytest.approx(bgnbd_loglik(x, t_x, T, *params), rel=1e-12)
    eps = 1e-6
    num = [(bgnbd_loglik(x, t_x, T, *(np.array(params) + eps * e))
            - bgnbd_loglik(x, t_x, T, *(np.array(params) - eps * e)))
           / (2 * eps) for e in np.eye(4)]
    assert grad == pytest.approx(num, rel=1e-5, abs=1e-4)
    ll2, grad2 = bgnbd_loglik_grad(x, t_x, T, *params)
    assert ll2 == pytest.approx(ll, rel=1e-12) and grad2 == pytest.approx(grad, rel=1e-10)


@pytest.mark.parametrize("params", PARETO)
def test_histories_paretonbd_equals_sum(base, params) -> None:
    x, t_x, T = base
    assert Histories(x, t_x, T).paretonbd(*params) == pytest.approx(paretonbd_loglik(x, t_x, T, *params), rel=1e-12)


def test_gamma_gamma_gradient_equals_differences() -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(1, 8, 500).astype(float)
    m = rng.gamma(5.0, 8.0, 500)
    p0 = np.array([4.0, 3.0, 20.0])
    _, g = gamma_gamma_loglik_grad(x, m, *p0)
    eps = 1e-6
    num = [(gamma_gamma_loglik(x, m, *(p0 + eps * e)) - gamma_gamma_loglik(x, m, *(p0 - eps * e))) / (2 * eps)
           for e in np.eye(3)]
    assert g == pytest.approx(num, rel=1e-5, abs=1e-4)
