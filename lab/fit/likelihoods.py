"""Log-likelihoods of the buy-till-you-die models for a customer base summarised by (x, t_x, T).

* BG/NBD (Fader, Hardie & Lee 2005, eq. 6): :func:`lab.population.btyd.bgnbd_loglik`, reused here.
* Pareto/NBD (Schmittlein, Morrison & Colombo 1987), in the closed form of Fader & Hardie (2005),
  "A Note on Deriving the Pareto/NBD Model and Related Expressions", eq. (22):
  ``L = G(r+x) a^r b^s / G(r) * [ 1/((a+T)^(r+x) (b+T)^s) + s/(r+s+x) * A0 ]`` with alpha, beta for a, b and
  ``A0 = F(t_x) - F(T)``. Evaluated stably: in logs, the Gauss hypergeometric function through
  Euler's transformation (which turns it into 2F1(1, .; .; z), a series of positive terms that
  neither overflows nor cancels), the two terms combined with logaddexp and the difference A0 as
  ``F(t_x) * -expm1(log F(T) - log F(t_x))``.
* Gamma-Gamma spend (Fader, Hardie & Lee 2005b; Fader & Hardie 2013 note, eq. 5): the density of a
  customer's mean repeat spend m over x transactions,
  ``G(px+q) / (G(px) G(q)) * g^q m^(px-1) x^(px) / (g + m x)^(px+q)``.

All functions return the total log-likelihood (a float) or, with ``per_customer``, each customer's.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from lab.population.btyd import bgnbd_loglik

__all__ = ["bgnbd_loglik", "bgnbd_loglik_grad", "paretonbd_loglik", "paretonbd_log_dead_term", "gamma_gamma_loglik",
           "gamma_gamma_loglik_grad", "Histories"]


class Histories:
    """A customer base as its distinct histories, for evaluating a likelihood many times quickly.

    The likelihoods depend on a customer only through (x, t_x, T), and their costly parts
    (gamma functions, the hypergeometric function) only through x, (x, t_x) or (x, T); on a log
    of 100,000 customers in whole days there are some 40,000 distinct histories, 60 distinct x and
    8,000 distinct (x, time) pairs. The optimiser calls the methods here, which give exactly the
    sums of the per-customer functions (a test checks that).
    """

    def __init__(self, x, t_x, T):
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        rows, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
        self.n = int(x.size)
        self.x, self.t_x, self.T = rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy()
        self.w = counts.astype(float)
        self.ux, self.ix = np.unique(self.x, return_inverse=True)
        pairs, inv = np.unique(np.column_stack([np.r_[self.x, self.x], np.r_[self.t_x, self.T]]), axis=0,
                               return_inverse=True)
        self.px, self.pu = pairs[:, 0].copy(), pairs[:, 1].copy()
        m = self.x.size
        inv = inv.reshape(-1)
        self.i_tx, self.i_T = inv[:m], inv[m:]

    def bgnbd(self, r: float, alpha: float, a: float, b: float) -> tuple[float, np.ndarray]:
        """BG/NBD log-likelihood and gradient (see :func:`bgnbd_loglik_grad`)."""
        return bgnbd_loglik_grad(self.x, self.t_x, self.T, r, alpha, a, b, weights=self.w, x_index=(self.ux, self.ix))

    def paretonbd(self, r: float, alpha: float, s: float, beta: float) -> float:
        """Pareto/NBD log-likelihood (see :func:`paretonbd_loglik`)."""
        log_f = _paretonbd_log_F(self.pu, self.px, r, alpha, s, beta)
        f_tx, f_T = log_f[self.i_tx], log_f[self.i_T]
        x, T = self.x, self.T
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        with np.errstate(divide="ignore"):
            dead = np.log(s) - np.log(r + s + x) + f_tx + np.log(-np.expm1(np.minimum(f_T - f_tx, 0.0)))
        g = gammaln(r + self.ux) - gammaln(r)
        ll = g[self.ix] + r * np.log(alpha) + s * np.log(beta) + np.logaddexp(alive, dead)
        return float(np.dot(self.w, ll))


def bgnbd_loglik_grad(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float, a: float, b: float,
                      weights: np.ndarray | None = None,
                      x_index: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, np.ndarray]:
    """The BG/NBD log-likelihood of eq. (6) (as :func:`bgnbd_loglik`) and its gradient in (r, alpha, a, b).

    With the two terms of eq. (6) written A (alive at T) and D (dropped out after the last purchase)
    and w_A = A / (A + D), each partial derivative is that of the common factor plus w_A and
    1 - w_A times those of the terms, from d log G(z)/dz = digamma(z) and
    d log B(u, v)/du = digamma(u) - digamma(u + v). ``weights`` counts customers sharing a history.
    Used by the optimiser, which would otherwise difference the likelihood five times per step.
    ``x_index`` = (distinct x, index of each customer's x among them) lets the functions of x alone
    be evaluated once per distinct x.
    """
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    w = np.ones_like(x) if weights is None else weights
    ux, ix = np.unique(x, return_inverse=True) if x_index is None else x_index
    upos = ux > 0
    uxm1 = np.where(upos, ux - 1.0, 0.0)
    pos = upos[ix]
    log_at = np.log(alpha + T)
    log_atx = np.log(alpha + t_x)
    common = (gammaln(r + ux) - gammaln(r) - betaln(a, b))[ix] + r * np.log(alpha)
    A = betaln(a, b + ux)[ix] - (r + x) * log_at
    with np.errstate(invalid="ignore"):
        D = np.where(pos, betaln(a + 1.0, b + uxm1)[ix] - (r + x) * log_atx, -np.inf)
    lse = np.logaddexp(A, D)
    wA = np.exp(A - lse)
    wD = 1.0 - wA
    ll = float(np.sum(w * (common + lse)))
    psi_abx = digamma(a + b + ux)[ix]
    psi_ab = digamma(a + b)
    g_r = (digamma(r + ux) - digamma(r))[ix] + np.log(alpha) - wA * log_at - wD * log_atx
    g_alpha = r / alpha - (r + x) * (wA / (alpha + T) + wD / (alpha + t_x))
    g_a = -(digamma(a) - psi_ab) + wA * (digamma(a) - psi_abx) + wD * (digamma(a + 1.0) - psi_abx)
    g_b = -(digamma(b) - psi_ab) + wA * (digamma(b + ux)[ix] - psi_abx) + wD * (digamma(b + uxm1)[ix] - psi_abx)
    grad = np.array([np.sum(w * g_r), np.sum(w * g_alpha), np.sum(w * g_a), np.sum(w * g_b)])
    return ll, grad


def _log_hyp2f1_1(b: np.ndarray | float, c: np.ndarray | float, z: np.ndarray | float) -> np.ndarray:
    """log 2F1(1, b; c; z) for 0 <= z < 1 (all terms of the series are positive)."""
    return np.log(hyp2f1(1.0, b, c, z))


def _paretonbd_log_F(u: np.ndarray, x: np.ndarray, r: float, alpha: float, s: float, beta: float) -> np.ndarray:
    """log F(u), where A0 = F(t_x) - F(T) in Fader & Hardie's (2005) eq. (22)."""
    c = r + s + x + 1.0
    if alpha >= beta:
        z = (alpha - beta) / (alpha + u)
        return _log_hyp2f1_1(r + x, c, z) - (r + x) * np.log(alpha + u) - s * np.log(beta + u)
    z = (beta - alpha) / (beta + u)
    return _log_hyp2f1_1(s + 1.0, c, z) + (1.0 - r - x) * np.log(alpha + u) - (1.0 + s) * np.log(beta + u)


def paretonbd_log_dead_term(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float, s: float,
                            beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The logs of the two terms in the bracket of eq. (22): (alive at T, dropped out in (t_x, T]).

    Their difference, read against each other, gives P(alive) (see :mod:`lab.fit.predict`).
    """
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    f_tx = _paretonbd_log_F(t_x, x, r, alpha, s, beta)
    f_T = _paretonbd_log_F(T, x, r, alpha, s, beta)
    with np.errstate(divide="ignore"):
        log_a0 = f_tx + np.log(-np.expm1(np.minimum(f_T - f_tx, 0.0)))
    dead = np.log(s) - np.log(r + s + x) + log_a0
    return alive, dead


def paretonbd_loglik(x, t_x, T, r: float, alpha: float, s: float, beta: float, per_customer: bool = False,
                     weights=None):
    """Pareto/NBD log-likelihood of customers with x repeat purchases, the last at t_x, observed for T.

    ``weights`` counts customers sharing a history (x, t_x, T); the total is then weighted.
    """
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    alive, dead = paretonbd_log_dead_term(x, t_x, T, r, alpha, s, beta)
    ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + np.logaddexp(alive, dead)
    if per_customer:
        return ll
    return float(np.sum(ll)) if weights is None else float(np.dot(weights, ll))


def gamma_gamma_loglik(x, mean_spend, p: float, q: float, gamma: float, per_customer: bool = False):
    """Gamma-Gamma log-likelihood of customers' mean spend over x >= 1 transactions."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_spend, dtype=float)
    px = p * x
    ll = (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + (px - 1.0) * np.log(m)
          + px * np.log(x) - (px + q) * np.log(gamma + m * x))
    return ll if per_customer else float(np.sum(ll))


def gamma_gamma_loglik_grad(x, mean_spend, p: float, q: float, gamma: float) -> tuple[float, np.ndarray]:
    """The Gamma-Gamma log-likelihood and its gradient in (p, q, gamma), from d log G(z)/dz = digamma(z)."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_spend, dtype=float)
    px = p * x
    log_gmx = np.log(gamma + m * x)
    ll = gamma_gamma_loglik(x, m, p, q, gamma)
    psi = digamma(px + q)
    g_p = np.sum(x * (psi - digamma(px) + np.log(m) + np.log(x) - log_gmx))
    g_q = np.sum(psi - digamma(q) + np.log(gamma) - log_gmx)
    g_g = np.sum(q / gamma - (px + q) / (gamma + m * x))
    return ll, np.array([g_p, g_q, g_g])
