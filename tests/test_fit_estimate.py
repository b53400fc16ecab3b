"""Round trips: data drawn from known parameters are fitted back within 3 standard errors.

BG/NBD customers come from lab.population.btyd.bgnbd_sample, Pareto/NBD customers from numpy
directly (lambda, mu gamma-distributed, an exponential lifetime, Poisson purchases), spend from
the Gamma-Gamma story. Each customer's observation length T differs (staggered first purchases).
With fixed seeds, each estimate must lie within 3 of its own standard errors of the truth
(a two-sided 0.27% false-alarm chance per parameter if the errors are right; the seeds are fixed,
so the test is deterministic). A wrong likelihood, a wrong gradient or wrong standard errors
(too small by half) would fail it.
"""

from __future__ import annotations

import numpy as np
import pytest

from lab.fit.estimate import choose_model, fit_bgnbd, fit_gamma_gamma, fit_paretonbd
from lab.population.btyd import bgnbd_sample

Z = 3.0
N = 4000


def _within(fit, truth: dict[str, float]) -> None:
    assert fit.converged, fit.warnings
    assert not fit.warnings, fit.warnings  # a store the model generated is well identified: nothing to warn about
    for k, v in truth.items():
        se = fit.se[k]
        assert se is not None and se > 0
        assert abs(fit.params[k] - v) <= Z * se, f"{k}: {fit.params[k]:.4g} vs true {v} (se {se:.3g})"


def _pareto_sample(n, T, r, alpha, s, beta, rng):
    lam = rng.gamma(r, 1 / alpha, n)
    mu = rng.gamma(s, 1 / beta, n)
    end = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * end)
    t_x = np.where(x > 0, end * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)
    return x, t_x


@pytest.mark.parametrize("truth, seed", [(dict(r=0.243, alpha=4.414, a=0.793, b=2.426), 1),
                                         (dict(r=1.5, alpha=6.0, a=0.7, b=9.0), 2),
                                         (dict(r=0.6, alpha=8.0, a=1.2, b=4.0), 3)])
def test_bgnbd_round_trip(truth, seed) -> None:
    rng = np.random.default_rng(seed)
    T = rng.uniform(30, 78, N)
    x, t_x = bgnbd_sample(N, T, **truth, rng=rng)
    _within(fit_bgnbd(x, t_x, T), truth)


@pytest.mark.parametrize("truth, seed", [(dict(r=0.55, alpha=10.5, s=0.6, beta=12.0), 4),
                                         (dict(r=1.5, alpha=6.0, s=1.2, beta=30.0), 5)])
def test_paretonbd_round_trip(truth, seed) -> None:
    rng = np.random.default_rng(seed)
    T = rng.uniform(30, 78, N)
    x, t_x = _pareto_sample(N, T, **truth, rng=rng)
    _within(fit_paretonbd(x, t_x, T), truth)


def test_lab_pareto_sampler_matches_the_fit() -> None:
    from lab.fit.simulate import paretonbd_sample
    truth = dict(r=0.9, alpha=5.0, s=0.8, beta=20.0)
    rng = np.random.default_rng(6)
    T = rng.uniform(30, 78, N)
    x, t_x = paretonbd_sample(N, T, **truth, rng=rng)
    _within(fit_paretonbd(x, t_x, T), truth)


@pytest.mark.parametrize("truth, seed", [(dict(p=6.25, q=3.74, gamma=15.44), 7), (dict(p=2.0, q=5.0, gamma=40.0), 8)])
def test_gamma_gamma_round_trip(truth, seed) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 12, N)
    nu = rng.gamma(truth["q"], 1 / truth["gamma"], N)
    mean = rng.gamma(truth["p"] * x, 1 / nu) / x
    _within(fit_gamma_gamma(x, mean), truth)


def test_standard_errors_shrink_like_one_over_root_n() -> None:
    truth = dict(r=1.5, alpha=6.0, a=0.7, b=9.0)
    rng = np.random.default_rng(9)
    se = []
    for n in (2000, 8000):
        T = rng.uniform(30, 78, n)
        x, t_x = bgnbd_sample(n, T, **truth, rng=rng)
        se.append(fit_bgnbd(x, t_x, T).se["r"])
    assert se[0] / se[1] == pytest.approx(2.0, rel=0.2)


def test_auto_choice_prefers_the_generating_model_and_says_why() -> None:
    # frequent dropout right after purchases (mean p = 0.44): a pattern Pareto/NBD's exponential
    # lifetimes cannot mimic, so its BIC is worse by about a thousand at this size
    rng = np.random.default_rng(10)
    n = 5000
    T = np.floor(rng.uniform(30, 78, n) * 7) / 7
    x, t_x = bgnbd_sample(n, T, r=0.6, alpha=8.0, a=1.2, b=1.5, rng=rng)
    t_x = np.floor(t_x * 7) / 7
    bg = fit_bgnbd(x, t_x, T)
    fits = {"bgnbd": bg, "paretonbd": fit_paretonbd(x, t_x, T, bg.params)}
    chosen, reason = choose_model(fits)
    assert chosen == "bgnbd"
    assert fits["paretonbd"].bic - bg.bic > 100
    assert f"{bg.bic:,.1f}" in reason and f"{fits['paretonbd'].bic:,.1f}" in reason
    unconverged = {"bgnbd": bg.__class__(**{**bg.__dict__, "converged": False}), "paretonbd": fits["paretonbd"]}
    chosen, reason = choose_model(unconverged)
    assert chosen == "paretonbd" and "did not converge" in reason


def test_at_bound_and_unconverged_fits_are_flagged() -> None:
    # nobody ever drops out in Pareto/NBD terms here: constant rate, no lifetime, so s/beta -> 0
    rng = np.random.default_rng(11)
    T = np.full(3000, 52.0)
    x = rng.poisson(0.2 * T)
    t_x = np.where(x > 0, T * rng.random(3000) ** (1 / np.maximum(x, 1)), 0.0)
    fit = fit_paretonbd(x, t_x, T)
    assert any("bound" in w or "converge" in w or "Hessian" in w or "pin parameter" in w for w in fit.warnings)


def test_a_parameter_the_data_cannot_pin_down_is_flagged() -> None:
    # 40 customers, none of whom is seen to drop out: BG/NBD pins the purchase rate's r and alpha down (standard
    # errors about 0.3 of the estimates) but not the dropout's a and b (about 3.7 times); the likelihood is
    # smooth there, so the Hessian, and which parameters are weak, do not hang on the machine's last bits
    rng = np.random.default_rng(2)
    T = np.full(40, 52.0)
    x = rng.poisson(rng.gamma(2.0, 0.1, 40) * T)
    t_x = np.where(x > 0, T * rng.random(40) ** (1 / np.maximum(x, 1)), 0.0)
    fit = fit_bgnbd(x, t_x, T)
    assert all(e is not None for e in fit.se.values()), fit.warnings
    weak = [nm for nm, e in fit.se.items() if e is not None and e > fit.params[nm]]
    flagged = [nm for nm in fit.params if any(f"pin parameter {nm} " in w for w in fit.warnings)]
    assert weak == ["a", "b"] and flagged == weak
