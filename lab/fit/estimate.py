"""Maximum-likelihood estimation of the purchase and spend models, with standard errors.

The negative log-likelihood is minimised over the logs of the parameters (all are positive), from
a few starting points, within 1e-6 to 1e6 times the data's own scale (BFGS with the analytic
gradient for BG/NBD and Gamma-Gamma, on log-parameters squashed smoothly into the bounds; L-BFGS-B with
numerical gradients otherwise)
(spend is divided by the median mean spend while fitting, so that gamma is of order one). The
standard errors come from the observed information: a central-difference Hessian of the
log-likelihood in log-parameters at the optimum, inverted and mapped to the natural parameters
by the delta method (se(theta) = theta * se(log theta)). BIC = k ln(n) - 2 LL with n customers.
A fit warns when the optimiser reports no convergence, a parameter sits at a bound, the
Hessian is not negative definite (then the standard errors are unknown, None), or a standard
error exceeds its estimate (the data do not pin the parameter down: with no dropout in the data,
Pareto/NBD's s and beta can grow together without bound, and where the optimiser stops depends on
its version, not on the data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from lab.fit.likelihoods import Histories, gamma_gamma_loglik, gamma_gamma_loglik_grad
from lab.fit.predict import MODELS

__all__ = ["Fit", "fit_bgnbd", "fit_paretonbd", "fit_gamma_gamma", "fit_purchases", "choose_model"]

LOG_BOUND = math.log(1e6)
#: A standard error above this multiple of its estimate means the data cannot tell the parameter's value (its
#: 95% interval on the natural scale would reach below zero twice over): the fit warns.
WEAK_RELATIVE_SE = 1.0
#: Relative step of the numerical Hessian (in log-parameters).
HESSIAN_STEP = 1e-3
#: A BFGS run that stops on lost precision counts as converged when no log-likelihood slope (per unit of
#: log-parameter) exceeds this.
GRAD_TOL = 1e-2


@dataclass(frozen=True)
class Fit:
    """One fitted model."""

    model: str
    params: dict[str, float]
    se: dict[str, float | None]
    log_likelihood: float
    bic: float
    converged: bool
    n: int
    warnings: tuple[str, ...] = field(default=())

    def interval(self, name: str, z: float = 1.96) -> tuple[float, float] | None:
        """An approximate 95% interval, symmetric in log(theta) so that it stays positive."""
        se = self.se.get(name)
        if se is None:
            return None
        v = self.params[name]
        w = z * se / v
        return v * math.exp(-w), v * math.exp(w)


def _hessian(f: Callable[[np.ndarray], float], x0: np.ndarray, h: float = HESSIAN_STEP) -> np.ndarray:
    """Central-difference Hessian of f at x0."""
    k = x0.size
    H = np.zeros((k, k))
    f0 = f(x0)
    E = np.eye(k) * h
    for i in range(k):
        H[i, i] = (f(x0 + E[i]) - 2.0 * f0 + f(x0 - E[i])) / h**2
        for j in range(i + 1, k):
            H[i, j] = H[j, i] = (f(x0 + E[i] + E[j]) - f(x0 + E[i] - E[j]) - f(x0 - E[i] + E[j])
                                 + f(x0 - E[i] - E[j])) / (4.0 * h * h)
    return H


def _mle(model: str, names: tuple[str, ...], loglik: Callable[[np.ndarray], float], starts: list[np.ndarray],
         n: int, scale: np.ndarray | None = None,
         loglik_grad: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None, all_starts: bool = True) -> Fit:
    """Maximise ``loglik`` (a function of the natural parameters, divided by ``scale``) over log-parameters.

    ``loglik_grad``, when given, returns the log-likelihood and its gradient in the natural
    parameters (the chain rule makes it the gradient in logs). Without ``all_starts`` the later
    starting points are tried only when the earlier ones did not converge.
    """
    scale = np.ones(len(names)) if scale is None else scale

    def nll(theta: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            v = loglik(np.exp(theta))
        return -v if np.isfinite(v) else 1e300

    def nll_grad(phi: np.ndarray) -> tuple[float, np.ndarray]:
        # BFGS runs unbounded on phi; theta = B tanh(phi / B) keeps |log theta| < B smoothly
        assert loglik_grad is not None
        theta = LOG_BOUND * np.tanh(phi / LOG_BOUND)
        p = np.exp(theta)
        with np.errstate(all="ignore"):
            v, g = loglik_grad(p)
        if not (np.isfinite(v) and np.all(np.isfinite(g))):
            return 1e300, np.zeros_like(phi)
        return -v, -g * p * (1.0 - (theta / LOG_BOUND) ** 2)

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(names)
    best = None
    best_theta = None
    for s0 in starts:
        if loglik_grad is not None:
            # BFGS with the analytic gradient: L-BFGS-B's per-step overhead (BLAS calls) dominates at this size
            res = minimize(nll_grad, np.arctanh(np.clip(np.log(s0) / LOG_BOUND, -0.999, 0.999)) * LOG_BOUND, jac=True,
                           method="BFGS", options={"maxiter": 2000, "gtol": 1e-6})
            theta_s = LOG_BOUND * np.tanh(res.x / LOG_BOUND)
            ok = bool(res.success) or float(np.max(np.abs(res.jac))) < GRAD_TOL
        else:
            res = minimize(nll, np.log(s0), method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-7})
            theta_s = res.x
            ok = bool(res.success)
        if best is None or res.fun < best.fun:
            best, best_theta, best_ok = res, theta_s, ok
        if not all_starts and best_ok:
            break
    assert best is not None and best_theta is not None
    theta = best_theta
    warnings: list[str] = []
    converged = best_ok and bool(best.fun < 1e300)
    if not converged:
        warnings.append(f"{model}: the optimiser did not converge ({best.message}); treat the estimates as unreliable")
    at_bound = [nm for nm, t in zip(names, theta) if abs(t) > LOG_BOUND - 0.05]
    for nm in at_bound:
        warnings.append(f"{model}: parameter {nm} sits at the bound of the search "
                        f"({math.exp(theta[names.index(nm)]):.3g} "
                        "in fitting units); the model may not describe this data (try the other model)")
    params_scaled = np.exp(theta)
    H = _hessian(lambda th: -nll(th) if nll(th) < 1e300 else -np.inf, theta)
    se: dict[str, float | None] = {nm: None for nm in names}
    if np.all(np.isfinite(H)):
        try:
            cov = np.linalg.inv(-H)
            diag = np.diag(cov)
            if np.all(diag > 0) and np.all(np.linalg.eigvalsh(-(H + H.T) / 2) > 0):
                se = {nm: float(params_scaled[i] * scale[i] * math.sqrt(diag[i])) for i, nm in enumerate(names)}
            else:
                warnings.append(f"{model}: the Hessian is not negative definite at the optimum; "
                                "standard errors unknown")
        except np.linalg.LinAlgError:
            warnings.append(f"{model}: the Hessian is singular at the optimum; standard errors unknown")
    else:
        warnings.append(f"{model}: the Hessian could not be evaluated at the optimum; standard errors unknown")
    params = {nm: float(params_scaled[i] * scale[i]) for i, nm in enumerate(names)}
    for nm in names:
        err = se[nm]
        if err is not None and nm not in at_bound and err > WEAK_RELATIVE_SE * params[nm]:
            warnings.append(f"{model}: the data do not pin parameter {nm} down (standard error {err:.3g} "
                            f"against the estimate {params[nm]:.3g}); the model may not describe this data "
                            "(try the other model)")
    ll = -float(best.fun)
    return Fit(model, params, se, ll, len(names) * math.log(max(n, 1)) - 2.0 * ll, converged, n, tuple(warnings))


def _rate_start(x: np.ndarray, T: np.ndarray) -> float:
    """alpha for r = 1 matching the observed repeat rate, mean(x) / mean(T)."""
    rate = max(float(np.mean(x)), 1e-3) / max(float(np.mean(T)), 1e-9)
    return 1.0 / rate


def fit_bgnbd(x, t_x, T) -> Fit:
    """Fit BG/NBD to (x, t_x, T) arrays."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    a0 = _rate_start(x, T)
    h = Histories(x, t_x, T)
    starts = [np.array([1.0, a0, 0.8, 2.5]), np.array([0.3, a0 * 0.3, 0.5, 1.0]), np.array([2.0, a0 * 2.0, 1.5, 8.0])]
    return _mle("bgnbd", MODELS["bgnbd"], lambda p: h.bgnbd(*p)[0], starts, x.size, loglik_grad=lambda p: h.bgnbd(*p))


def fit_paretonbd(x, t_x, T, start: dict[str, float] | None = None) -> Fit:
    """Fit Pareto/NBD to (x, t_x, T) arrays (``start``: r and alpha to start from, e.g. a BG/NBD fit's)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    a0 = _rate_start(x, T)
    mt = max(float(np.mean(T)), 1e-9)
    h = Histories(x, t_x, T)
    starts = [np.array([1.0, a0, 1.0, mt]), np.array([0.3, a0 * 0.3, 0.5, mt * 0.5]),
              np.array([2.0, a0 * 2.0, 2.0, mt * 3.0])]
    if start is not None:
        starts.insert(0, np.array([start["r"], start["alpha"], 1.0, mt]))
    return _mle("paretonbd", MODELS["paretonbd"], lambda p: h.paretonbd(*p), starts,
                x.size, all_starts=False)


def fit_purchases(model: str, x, t_x, T, start: dict[str, float] | None = None) -> Fit:
    """Fit the purchase model named ``model`` (bgnbd or paretonbd)."""
    return fit_bgnbd(x, t_x, T) if model == "bgnbd" else fit_paretonbd(x, t_x, T, start)


def fit_gamma_gamma(x, mean_spend) -> Fit:
    """Fit Gamma-Gamma to customers with x >= 1 repeat transactions and a positive mean spend."""
    x = np.asarray(x, dtype=float)
    m = np.asarray(mean_spend, dtype=float)
    c = float(np.median(m))
    ms = m / c
    starts = [np.array([2.0, 3.0, 2.0]), np.array([6.0, 4.0, 0.6]), np.array([1.0, 2.0, 1.0])]
    scaled = _mle("gamma_gamma", ("p", "q", "gamma"), lambda p: gamma_gamma_loglik(x, ms, *p), starts, x.size,
                  scale=np.array([1.0, 1.0, c]), loglik_grad=lambda p: gamma_gamma_loglik_grad(x, ms, *p))
    # the likelihood of the mean spend in dollars differs from that in units of c by the Jacobian
    ll = gamma_gamma_loglik(x, m, scaled.params["p"], scaled.params["q"], scaled.params["gamma"])
    return Fit(scaled.model, scaled.params, scaled.se, ll, 3 * math.log(max(x.size, 1)) - 2.0 * ll,
               scaled.converged, scaled.n, scaled.warnings)


def choose_model(fits: dict[str, Fit]) -> tuple[str, str]:
    """Pick the purchase model with the lower BIC among those that converged, and say why."""
    ok = {k: f for k, f in fits.items() if f.converged and np.isfinite(f.log_likelihood)}
    pool = ok or fits
    best = min(pool, key=lambda k: pool[k].bic)
    if len(fits) == 1:
        return best, f"{best} was asked for"
    others = [k for k in fits if k != best]
    if not ok or len(ok) < len(fits):
        failed = [k for k in fits if k not in ok]
        if ok:
            return best, f"{best}: {', '.join(failed)} did not converge"
    o = others[0]
    d = fits[o].bic - fits[best].bic
    return best, (f"{best}: lower BIC ({fits[best].bic:,.1f} against {fits[o].bic:,.1f} for {o}, "
                  f"a difference of {d:,.1f}; "
                  f"both have 4 parameters, so this is twice the log-likelihood difference"
                  + ("; a difference under 2 is weak evidence, either model will do" if d < 2 else "") + ")")
