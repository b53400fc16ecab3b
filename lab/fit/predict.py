"""What a fitted purchase model predicts, for either model, by name.

BG/NBD predictions are those of :mod:`lab.population.btyd`. For Pareto/NBD, which that module
covers only with E[X(t)], the individual-level expressions are from Fader & Hardie (2005),
"A Note on Deriving the Pareto/NBD Model and Related Expressions":
P(alive | x, t_x, T) = 1 / (1 + s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A0)  (eq. 18), and
E[Y(t) | x, t_x, T] = (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive)  (eq. 21).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from lab.fit.likelihoods import paretonbd_log_dead_term
from lab.population import btyd

__all__ = ["MODELS", "expected_repeat", "p_alive", "conditional_expected", "conditional_spend"]

#: Parameter names of each purchase model, in the order of the published papers.
MODELS: dict[str, tuple[str, ...]] = {"bgnbd": ("r", "alpha", "a", "b"), "paretonbd": ("r", "alpha", "s", "beta")}


def _bg(params: dict[str, float]) -> tuple[float, float, float, float]:
    a = params["a"]
    if a == 1.0:  # eq. (7) and (10) are 0/0 at a == 1; the expressions are continuous there
        a = 1.0 + 1e-9
    return params["r"], params["alpha"], a, params["b"]


def expected_repeat(model: str, params: dict[str, float], t) -> np.ndarray:
    """E[X(t)]: expected repeat transactions of a customer in the first t time units after their first."""
    t = np.asarray(t, dtype=float)
    if model == "bgnbd":
        return np.asarray(btyd.bgnbd_expected_purchases(t, *_bg(params)))
    return np.asarray(btyd.paretonbd_expected_purchases(t, params["r"], params["alpha"], params["s"], params["beta"]))


def p_alive(model: str, params: dict[str, float], x, t_x, T) -> np.ndarray:
    """P(the customer is still active at T | x, t_x, T)."""
    if model == "bgnbd":
        return np.asarray(btyd.bgnbd_p_alive(x, t_x, T, *_bg(params)))
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    alive, dead = paretonbd_log_dead_term(x, t_x, T, params["r"], params["alpha"], params["s"], params["beta"])
    return expit(alive - dead)


def conditional_expected(model: str, params: dict[str, float], t, x, t_x, T) -> np.ndarray:
    """E[transactions in (T, T+t] | x, t_x, T]."""
    if model == "bgnbd":
        return np.asarray(btyd.bgnbd_conditional_expected(t, x, t_x, T, *_bg(params)))
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    t = np.asarray(t, dtype=float)
    log_ratio = np.log1p(t / (beta + T))
    if s == 1.0:
        horizon = log_ratio
    else:
        horizon = -np.expm1(-(s - 1.0) * log_ratio) / (s - 1.0)
    return (r + x) * (beta + T) / (alpha + T) * horizon * p_alive(model, params, x, t_x, T)


def conditional_spend(params: dict[str, float], x, mean_spend) -> np.ndarray:
    """Gamma-Gamma posterior mean spend per transaction; the population mean where x == 0."""
    x = np.asarray(x, dtype=float)
    m = np.where(x > 0, np.nan_to_num(np.asarray(mean_spend, dtype=float)), 0.0)
    return np.asarray(btyd.gamma_gamma_conditional_spend(m, x, params["p"], params["q"], params["gamma"]))
