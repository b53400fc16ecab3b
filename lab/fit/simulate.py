"""Draws from the fitted models: customers' histories and revenue, for the report's model curves.

BG/NBD histories come from :func:`lab.population.btyd.bgnbd_sample`. Pareto/NBD (Schmittlein,
Morrison & Colombo 1987): purchase rate lambda ~ Gamma(r, rate alpha), dropout rate
mu ~ Gamma(s, rate beta), lifetime tau ~ Exp(mu); repeat purchases are a Poisson process of rate
lambda on (0, min(tau, T)], so x ~ Poisson(lambda min(tau, T)) and, given x, the last of x uniform
times on that interval is t_x = min(tau, T) * U^(1/x). Spend (Gamma-Gamma): nu ~ Gamma(q, rate
gamma) per customer, and the sum of n transactions ~ Gamma(n p, rate nu).
"""

from __future__ import annotations

import numpy as np

from lab.population.btyd import bgnbd_sample

__all__ = ["paretonbd_sample", "purchases_sample", "revenue_sample"]


def paretonbd_sample(n: int, T, r: float, alpha: float, s: float, beta: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``n`` Pareto/NBD customers observed for T after their first purchase; return (x, t_x)."""
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,))
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    mu = rng.gamma(s, 1.0 / beta, size=n)
    tau = rng.standard_exponential(n) / mu
    end = np.minimum(tau, T)
    x = rng.poisson(lam * end)
    u = rng.random(n)
    with np.errstate(divide="ignore"):
        t_x = np.where(x > 0, end * u ** (1.0 / np.maximum(x, 1)), 0.0)
    return x.astype(np.int64), t_x


def purchases_sample(model: str, params: dict[str, float], T, rng: np.random.Generator) -> np.ndarray:
    """Repeat transactions over each customer's T under the fitted purchase model."""
    T = np.asarray(T, dtype=float)
    if model == "bgnbd":
        x, _ = bgnbd_sample(int(T.size), T, params["r"], params["alpha"], params["a"], params["b"], rng)
    else:
        x, _ = paretonbd_sample(int(T.size), T, params["r"], params["alpha"], params["s"], params["beta"], rng)
    return x


def revenue_sample(transactions: np.ndarray, spend: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Total spend of customers making ``transactions`` transactions each, under the Gamma-Gamma model."""
    n = np.asarray(transactions, dtype=float)
    nu = rng.gamma(spend["q"], 1.0 / spend["gamma"], size=n.size)
    out = np.zeros(n.size)
    pos = n > 0
    out[pos] = rng.gamma(n[pos] * spend["p"], 1.0 / nu[pos])
    return out
