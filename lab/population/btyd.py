"""Buy-till-you-die (BTYD) closed forms: BG/NBD, Pareto/NBD and Gamma-Gamma spend.

These are the textbook customer-base models the lab uses both to generate
synthetic populations with known ground truth and to check that simulated
purchase counts agree with theory.  Every function works on whole numpy arrays.

Sources
-------
* BG/NBD: P. S. Fader, B. G. S. Hardie and K. L. Lee (2005), "'Counting Your
  Customers' the Easy Way: An Alternative to the Pareto/NBD Model",
  Marketing Science 24(2), 275-284.  Equations (6) likelihood, (7) E[X(t)],
  (10) conditional expectation; P(alive) from Fader, Hardie & Lee (2008),
  "Computing P(alive) using the BG/NBD model" (note).
* Pareto/NBD: D. C. Schmittlein, D. G. Morrison and R. Colombo (1987),
  "Counting Your Customers: Who Are They and What Will They Do Next?",
  Management Science 33(1), 1-24.
* Gamma-Gamma spend: P. S. Fader, B. G. S. Hardie and K. L. Lee (2005),
  "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
  Journal of Marketing Research 42(4), 415-430; and Fader & Hardie (2013),
  "The Gamma-Gamma Model of Monetary Value" (note).

Time is measured in whatever unit the rate parameters (alpha, beta) were
estimated in (e.g. weeks for the published CDNOW estimates).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, expit, gammaln, hyp2f1

__all__ = [
    "bgnbd_expected_purchases",
    "bgnbd_p_alive",
    "bgnbd_conditional_expected",
    "bgnbd_loglik",
    "bgnbd_sample",
    "paretonbd_expected_purchases",
    "gamma_gamma_mean_spend",
    "gamma_gamma_conditional_spend",
]


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _positive(name: str, value: float, hint: str = "") -> float:
    """Return ``value`` as a float, or raise a readable error if it is not a finite positive number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0.0:
        extra = f" {hint}" if hint else ""
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.{extra}")
    return v


def _floats(name: str, value: ArrayLike, expected: str) -> np.ndarray:
    """Convert to a float array, naming the argument and what was expected if that fails."""
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {expected}, got {value!r}") from None


def _times(name: str, value: ArrayLike) -> np.ndarray:
    """Return ``value`` as a float array of finite, non-negative times."""
    arr = _floats(name, value, "a number or array of times >= 0")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name} must contain finite times >= 0 (same unit as alpha), got {value!r}")
    return arr


def _customer_data(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and broadcast the per-customer summary (frequency, recency, age)."""
    x_arr = _floats("x", x, "a whole number or array of repeat-purchase counts")
    if not np.all(np.isfinite(x_arr)) or np.any(x_arr < 0) or np.any(x_arr != np.round(x_arr)):
        raise ValueError(
            "x (number of repeat purchases) must contain whole numbers >= 0; "
            "did you pass the total number of purchases including the first? Use total - 1."
        )
    t_x_arr = _times("t_x (time of last repeat purchase)", t_x)
    T_arr = _times("T (length of the observation period)", T)
    try:
        x_arr, t_x_arr, T_arr = np.broadcast_arrays(x_arr, t_x_arr, T_arr)
    except ValueError:
        raise ValueError(
            f"x, t_x and T must have matching shapes, got {np.shape(x)}, {np.shape(t_x)}, {np.shape(T)}"
        ) from None
    if np.any(t_x_arr > T_arr):
        raise ValueError("t_x must not exceed T (the last purchase cannot lie after the end of observation)")
    return x_arr, t_x_arr, T_arr


def _bgnbd_params(r: float, alpha: float, a: float, b: float) -> tuple[float, float, float, float]:
    """Validate the four BG/NBD parameters (all must be > 0)."""
    return (
        _positive("r", r, "r is the shape of the gamma distribution of purchase rates."),
        _positive("alpha", alpha, "alpha is the scale (time unit) of the gamma distribution of purchase rates."),
        _positive("a", a, "a is the first shape of the beta distribution of dropout probabilities."),
        _positive("b", b, "b is the second shape of the beta distribution of dropout probabilities."),
    )


def _as_output(arr: np.ndarray) -> np.ndarray | float:
    """Return a Python float for 0-d results and an array otherwise."""
    return float(arr) if arr.ndim == 0 else arr


def _check_hyp2f1_c(c: np.ndarray | float, what: str) -> None:
    """Raise where the Gauss hypergeometric function is undefined (c a non-positive integer)."""
    c_arr = np.asarray(c, dtype=float)
    if np.any((c_arr <= 0) & (c_arr == np.round(c_arr))):
        raise ValueError(
            f"{what} is undefined when a + b + x - 1 is zero or a negative integer "
            "(the hypergeometric term has a pole); perturb a or b slightly, e.g. b + 1e-6."
        )


# --------------------------------------------------------------------------- #
# BG/NBD
# --------------------------------------------------------------------------- #
def _bgnbd_bracket(z: np.ndarray, x: np.ndarray, r: float, a: float, b: float) -> np.ndarray:
    """The bracket ``1 - (1-z)**(r+x) * 2F1(r+x, b+x; a+b+x-1; z)`` of eqs. (7) and (10).

    Evaluated through Euler's transformation 2F1(A,B;C;z) = (1-z)**(C-A-B) 2F1(C-A,C-B;C;z)
    (Abramowitz & Stegun 15.3.3), which gives ``1 - (1-z)**(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z)``.
    The direct form multiplies an underflowing power by an overflowing series for
    frequent buyers (NaN beyond x of a few hundred); the transformed one stays finite.

    When r - a is an integer, C - A - B = r - a + 1 + x is an integer too and scipy's
    hyp2f1 (which maps z near 1 through 1 - z) may return NaN or lose accuracy there.
    The bracket is analytic in r, so that case is evaluated as the mean of r +- 1e-5,
    whose error is second order (~1e-10 relative).
    """
    k = r - a
    if abs(k - round(k)) < 1e-7:
        h = 1e-5
        return 0.5 * (_bgnbd_bracket_euler(z, x, r + h, a, b) + _bgnbd_bracket_euler(z, x, r - h, a, b))
    return _bgnbd_bracket_euler(z, x, r, a, b)


def _bgnbd_bracket_euler(z: np.ndarray, x: np.ndarray, r: float, a: float, b: float) -> np.ndarray:
    """Euler-transformed bracket without the degenerate-parameter guard (see ``_bgnbd_bracket``)."""
    return 1.0 - np.power(1.0 - z, a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)


def bgnbd_expected_purchases(t: ArrayLike, r: float, alpha: float, a: float, b: float) -> np.ndarray | float:
    """Expected number of repeat purchases E[X(t)] of a new customer in (0, t] under BG/NBD.

    Fader, Hardie & Lee (2005), eq. (7):
    ``(a+b-1)/(a-1) * [1 - (alpha/(alpha+t))**r * 2F1(r, b; a+b-1; t/(alpha+t))]``.
    The expression is valid for any a != 1 (for a < 1 both factors are negative);
    at a == 1 it has a removable singularity and is rejected rather than guessed.
    Vectorised over ``t``.
    """
    r, alpha, a, b = _bgnbd_params(r, alpha, a, b)
    if a == 1.0:
        raise ValueError(
            "bgnbd_expected_purchases: eq. (7) is 0/0 at a == 1; use a value slightly away from 1 "
            "(e.g. a = 1 + 1e-6), which changes E[X(t)] negligibly."
        )
    _check_hyp2f1_c(a + b - 1.0, "bgnbd_expected_purchases")
    t_arr = _times("t", t)
    z = t_arr / (alpha + t_arr)
    bracket = _bgnbd_bracket(z, np.zeros_like(z), r, a, b)
    return _as_output((a + b - 1.0) / (a - 1.0) * bracket + 0.0)


def _log_odds_dead(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float, a: float,
                   b: float) -> np.ndarray:
    """log of [a/(b+x-1)] * ((alpha+T)/(alpha+t_x))**(r+x) for x > 0; -inf where x == 0.

    This is the posterior odds that the customer dropped out after the last purchase,
    kept in logs because the power overflows for frequent buyers.
    """
    out = np.full(x.shape, -np.inf)
    pos = x > 0
    xp = x[pos]
    out[pos] = (
        np.log(a)
        - np.log(b + xp - 1.0)
        + (r + xp) * (np.log(alpha + T[pos]) - np.log(alpha + t_x[pos]))
    )
    return out


def bgnbd_p_alive(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, a: float, b: float
) -> np.ndarray | float:
    """Probability that a customer with history (x, t_x, T) is still active at T under BG/NBD.

    ``1 / (1 + [x>0] * a/(b+x-1) * ((alpha+T)/(alpha+t_x))**(r+x))`` (Fader, Hardie &
    Lee 2005, the denominator of eq. 10; Fader, Hardie & Lee 2008 note).  A customer
    with no repeat purchase cannot have dropped out, so P(alive) = 1.
    """
    r, alpha, a, b = _bgnbd_params(r, alpha, a, b)
    x_arr, t_x_arr, T_arr = _customer_data(x, t_x, T)
    return _as_output(expit(-_log_odds_dead(x_arr, t_x_arr, T_arr, r, alpha, a, b)))


def bgnbd_conditional_expected(
    t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, a: float, b: float
) -> np.ndarray | float:
    """Expected repeat purchases in (T, T+t] given history (x, t_x, T) under BG/NBD.

    Fader, Hardie & Lee (2005), eq. (10):
    ``(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))**(r+x) * 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]``
    times P(alive).  Valid for a != 1.  All of t, x, t_x, T broadcast together.
    """
    r, alpha, a, b = _bgnbd_params(r, alpha, a, b)
    if a == 1.0:
        raise ValueError(
            "bgnbd_conditional_expected: eq. (10) is 0/0 at a == 1; use a value slightly away from 1 "
            "(e.g. a = 1 + 1e-6)."
        )
    x_arr, t_x_arr, T_arr = _customer_data(x, t_x, T)
    t_arr = _times("t", t)
    t_arr, x_arr, t_x_arr, T_arr = np.broadcast_arrays(t_arr, x_arr, t_x_arr, T_arr)
    c = a + b + x_arr - 1.0
    _check_hyp2f1_c(c, "bgnbd_conditional_expected")
    z = t_arr / (alpha + T_arr + t_arr)
    bracket = _bgnbd_bracket(z, x_arr, r, a, b)
    alive = expit(-_log_odds_dead(x_arr, t_x_arr, T_arr, r, alpha, a, b))
    return _as_output(c / (a - 1.0) * bracket * alive)


def bgnbd_loglik(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, r: float, alpha: float, a: float, b: float
) -> float:
    """Total BG/NBD log-likelihood of a customer base summarised by (x, t_x, T).

    Sum over customers of the log of Fader, Hardie & Lee (2005) eq. (6):
    ``L = B(a,b+x)/B(a,b) * G(r+x) alpha**r / (G(r) (alpha+T)**(r+x))
        + [x>0] B(a+1,b+x-1)/B(a,b) * G(r+x) alpha**r / (G(r) (alpha+t_x)**(r+x))``,
    evaluated entirely in logs (gammaln, betaln, logaddexp) so that it stays finite
    for large frequencies and long observation periods.
    """
    r, alpha, a, b = _bgnbd_params(r, alpha, a, b)
    x_arr, t_x_arr, T_arr = _customer_data(x, t_x, T)
    common = gammaln(r + x_arr) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    alive_term = betaln(a, b + x_arr) - (r + x_arr) * np.log(alpha + T_arr)
    dead_term = np.full(x_arr.shape, -np.inf)
    pos = x_arr > 0
    xp = x_arr[pos]
    dead_term[pos] = betaln(a + 1.0, b + xp - 1.0) - (r + xp) * np.log(alpha + t_x_arr[pos])
    return float(np.sum(common + np.logaddexp(alive_term, dead_term)))


def bgnbd_sample(
    n: int, T: ArrayLike, r: float, alpha: float, a: float, b: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``n`` customers from the BG/NBD generative story; return (x, t_x).

    Each customer makes a (uncounted) first purchase at time 0 and is then active.
    Purchase rate lambda ~ Gamma(r, scale 1/alpha); dropout probability p ~ Beta(a, b).
    While active, repeat purchases arrive as a Poisson process with rate lambda, and
    immediately after each repeat purchase the customer drops out with probability p
    (there is no dropout chance at time 0).  ``x`` counts repeat purchases in (0, T]
    and ``t_x`` is the time of the last one (0 when x == 0).  ``T`` may be a scalar or
    one observation length per customer.  Ground truth for tests of the closed forms.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a whole number of customers >= 0, got {n!r}")
    r, alpha, a, b = _bgnbd_params(r, alpha, a, b)
    if not isinstance(rng, np.random.Generator):
        raise ValueError("rng must be a numpy.random.Generator, e.g. numpy.random.default_rng(seed)")
    T_arr = _times("T", T)
    try:
        T_arr = np.broadcast_to(T_arr, (int(n),)).astype(float)
    except ValueError:
        raise ValueError(f"T must be a scalar or have one entry per customer (n={n}), "
                         f"got shape {T_arr.shape}") from None

    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    x = np.zeros(n, dtype=np.int64)
    t_x = np.zeros(n, dtype=float)
    clock = np.zeros(n, dtype=float)
    active = np.arange(n)
    # One pass per purchase index; only still-active customers are touched.
    while active.size:
        with np.errstate(divide="ignore"):
            nxt = clock[active] + rng.standard_exponential(active.size) / lam[active]
        bought = nxt <= T_arr[active]
        active = active[bought]
        nxt = nxt[bought]
        x[active] += 1
        t_x[active] = nxt
        clock[active] = nxt
        active = active[rng.random(active.size) >= p[active]]
    return x, t_x


# --------------------------------------------------------------------------- #
# Pareto/NBD
# --------------------------------------------------------------------------- #
def paretonbd_expected_purchases(t: ArrayLike, r: float, alpha: float, s: float, beta: float) -> np.ndarray | float:
    """Expected number of purchases E[X(t)] of a new customer in (0, t] under Pareto/NBD.

    Schmittlein, Morrison & Colombo (1987):
    ``r*beta / (alpha*(s-1)) * [1 - (beta/(beta+t))**(s-1)]``.
    The expression equals (r/alpha) * E[min(tau, t)] with tau ~ Exp(mu), mu ~ Gamma(s, beta),
    and is valid for every s > 0; at s == 1 its limit ``r*beta/alpha * log(1 + t/beta)``
    is returned.  Vectorised over ``t``.
    """
    r = _positive("r", r, "r is the shape of the gamma distribution of purchase rates.")
    alpha = _positive("alpha", alpha, "alpha is the scale of the gamma distribution of purchase rates.")
    s = _positive("s", s, "s is the shape of the gamma distribution of dropout rates.")
    beta = _positive("beta", beta, "beta is the scale of the gamma distribution of dropout rates.")
    t_arr = _times("t", t)
    log_ratio = np.log1p(t_arr / beta)  # log((beta+t)/beta)
    if s == 1.0:
        return _as_output(r * beta / alpha * log_ratio)
    # -expm1(-(s-1)*L)/(s-1) avoids cancellation when s is close to 1.
    return _as_output(r * beta / alpha * (-np.expm1(-(s - 1.0) * log_ratio)) / (s - 1.0))


# --------------------------------------------------------------------------- #
# Gamma-Gamma spend
# --------------------------------------------------------------------------- #
def _gg_params(p: float, q: float, gamma: float) -> tuple[float, float, float]:
    """Validate the Gamma-Gamma parameters (all must be > 0)."""
    return (
        _positive("p", p, "p is the shape of the per-transaction spend distribution."),
        _positive("q", q, "q is the shape of the gamma distribution of the spend rate nu."),
        _positive("gamma", gamma, "gamma is the scale of the gamma distribution of the spend rate nu."),
    )


def gamma_gamma_mean_spend(p: float, q: float, gamma: float) -> float:
    """Population mean spend per transaction under the Gamma-Gamma model, p*gamma/(q-1).

    Per-transaction spend z ~ Gamma(shape p, rate nu) with nu ~ Gamma(shape q, rate gamma),
    so E[z] = p * E[1/nu] = p*gamma/(q-1) (Fader, Hardie & Lee 2005, JMR 42(4)).
    The mean is infinite for q <= 1, which is rejected.
    """
    p, q, gamma = _gg_params(p, q, gamma)
    if q <= 1.0:
        raise ValueError(
            f"gamma_gamma_mean_spend needs q > 1 (the mean spend is infinite otherwise), got q={q}; "
            "refit the model or check that p and q were not swapped."
        )
    return p * gamma / (q - 1.0)


def gamma_gamma_conditional_spend(
    mean_x: ArrayLike, x: ArrayLike, p: float, q: float, gamma: float
) -> np.ndarray | float:
    """Posterior expected spend per transaction given x transactions averaging mean_x.

    ``p*(gamma + x*mean_x) / (p*x + q - 1)`` (Fader, Hardie & Lee 2005, JMR 42(4)):
    a weighted average of the population mean p*gamma/(q-1) and the customer's own
    average, with weight on the latter growing with x.  Customers with x == 0 get the
    population mean.  Defined wherever p*x + q > 1.
    """
    p, q, gamma = _gg_params(p, q, gamma)
    m = _floats("mean_x", mean_x, "a number or array of average spends")
    xs = _floats("x", x, "a whole number or array of transaction counts")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("mean_x (average spend per transaction) must contain finite values >= 0")
    if not np.all(np.isfinite(xs)) or np.any(xs < 0) or np.any(xs != np.round(xs)):
        raise ValueError("x (number of transactions behind mean_x) must contain whole numbers >= 0")
    try:
        m, xs = np.broadcast_arrays(m, xs)
    except ValueError:
        raise ValueError(f"mean_x and x must have matching shapes, got {np.shape(mean_x)} and {np.shape(x)}") from None
    denom = p * xs + q - 1.0
    if np.any(denom <= 0):
        raise ValueError(
            "gamma_gamma_conditional_spend needs p*x + q > 1 for every customer (otherwise the "
            "posterior mean is infinite); with q <= 1 drop customers with x == 0 or refit."
        )
    return _as_output(p * (gamma + xs * m) / denom)
