"""The existing base's traits are draws from each customer's posterior given their history.

For BG/NBD, a customer alive at T with purchase rate lambda and dropout chance p makes
(1 - exp(-lambda p t)) / p purchases in (T, T + t] on average; a customer who has left makes none.
Averaged over the posterior draws of (alive, lambda, p) this must be the closed form
E[X(T, T + t) | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10), and the share drawn alive must be
P(alive | x, t_x, T). For Gamma-Gamma, the mean basket p / nu averaged over the draws of nu must be
the closed-form conditional mean spend. Each history is copied N times; the tolerance is 4 standard
errors of the mean of the copies (two-sided false-alarm chance about 6e-5 per comparison; seeds fixed).
"""

from __future__ import annotations

import numpy as np
import pytest

from lab.population import btyd
from lab.population.existing import History, posterior_traits
from lab.randomness import Streams
from lab.scenario.model import BGNBD, GammaGamma, Segment

PARAMS = dict(r=0.637, alpha=4.335, a=0.6408, b=4.324)  # weeks: the fit of tests/data/fit_example.csv
SPEND = dict(p=5.376, q=3.787, gamma=20.36)
# (x, t_x, T) in weeks: weekly until last month; silent for a year; one purchase; new; steady; light
HISTORIES = [(60, 74.0, 78.0), (12, 26.0, 78.0), (1, 3.0, 70.0), (0, 0.0, 10.0), (20, 50.0, 52.0), (3, 40.0, 60.0)]
MEAN_SPEND = [42.0, 18.0, 70.0, np.nan, 30.0, 25.0]
N = 40_000
Z = 4.0
HORIZON = 26.0


@pytest.fixture(scope="module")
def draws(small_scenario):
    seg = Segment(share=1.0, purchases=BGNBD(**PARAMS, time_unit="weeks"), spend=GammaGamma(**SPEND))
    sc = small_scenario(population__segments={"fitted": seg})
    k = len(HISTORIES)
    x, t_x, T = (np.repeat([h[i] for h in HISTORIES], N).astype(float) for i in range(3))
    h = History(segment=np.zeros(k * N, dtype=np.int64), x=x, recency_days=t_x * 7.0, age_days=T * 7.0,
                revenue=np.zeros(k * N), mean_repeat_spend=np.repeat(MEAN_SPEND, N),
                category_counts=np.zeros((k * N, len(sc.store.categories))))
    return posterior_traits(h, sc, Streams(7, ())), x, t_x, T


def _blocks(v: np.ndarray) -> np.ndarray:
    return v.reshape(len(HISTORIES), N)


def test_share_alive_is_p_alive(draws) -> None:
    base, x, t_x, T = draws
    expected = np.asarray(btyd.bgnbd_p_alive(x, t_x, T, **PARAMS))
    share = _blocks(base.alive.astype(float)).mean(axis=1)
    p = _blocks(expected)[:, 0]
    se = np.sqrt(p * (1 - p) / N)
    assert np.all(np.abs(share - p) <= Z * se + 1e-12), (share, p)
    # the weekly buyer is very likely still active; the one silent for a year probably gone
    assert p[0] > 0.8 and p[1] < 0.01


def test_future_purchases_are_the_conditional_expectation(draws) -> None:
    base, x, t_x, T = draws
    lam_weeks, p = base.lam * 7.0, base.p_drop
    per = np.where(base.alive, -np.expm1(-lam_weeks * p * HORIZON) / p, 0.0)
    mean, sd = _blocks(per).mean(axis=1), _blocks(per).std(axis=1, ddof=1)
    expected = _blocks(np.asarray(btyd.bgnbd_conditional_expected(HORIZON, x, t_x, T, **PARAMS)))[:, 0]
    assert np.all(np.abs(mean - expected) <= Z * sd / np.sqrt(N)), (mean, expected)


def test_alive_purchase_rate_is_the_gamma_posterior(draws) -> None:
    base, x, t_x, T = draws
    lam = _blocks(base.lam * 7.0)
    alive = _blocks(base.alive)
    for i, (xi, _, Ti) in enumerate(HISTORIES):
        a = lam[i][alive[i]]
        if a.size < 1000:
            continue
        expected = (PARAMS["r"] + xi) / (PARAMS["alpha"] + Ti)
        assert abs(a.mean() - expected) <= Z * a.std(ddof=1) / np.sqrt(a.size)


def test_mean_basket_is_the_gamma_gamma_conditional_mean(draws) -> None:
    base, x, _, _ = draws
    basket = _blocks(SPEND["p"] / base.nu)
    m = np.nan_to_num(np.asarray(MEAN_SPEND, dtype=float))
    expected = np.asarray(btyd.gamma_gamma_conditional_spend(m, np.array([h[0] for h in HISTORIES], dtype=float),
                                                             **SPEND))
    mean, sd = basket.mean(axis=1), basket.std(axis=1, ddof=1)
    assert np.all(np.abs(mean - expected) <= Z * sd / np.sqrt(N)), (mean, expected)


def test_the_same_seed_gives_the_same_customers(draws, small_scenario) -> None:
    base, *_ = draws
    seg = Segment(share=1.0, purchases=BGNBD(**PARAMS, time_unit="weeks"), spend=GammaGamma(**SPEND))
    sc = small_scenario(population__segments={"fitted": seg})
    h = base.history
    again = posterior_traits(h, sc, Streams(7, ()))
    assert np.array_equal(again.lam, base.lam) and np.array_equal(again.alive, base.alive)
    other = posterior_traits(h, sc, Streams(8, ()))
    assert not np.array_equal(other.lam, base.lam)
