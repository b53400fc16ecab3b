"""Predictions of the fitted models: Pareto/NBD P(alive) and conditional expectations, and the holdout sum.

Averaged over the customers a model generates, the posterior quantities must give back the prior
ones (the law of total expectation): mean P(alive | x, t_x, T) = P(lifetime > T) = (beta/(beta+T))^s,
and mean E[X(T, T+t) | x, t_x, T] = E[X(T+t)] - E[X(T)]. Tolerances are 4 standard errors of the
sample mean (fixed seed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lab.fit.data import summarise
from lab.fit.holdout import holdout_check, tracking
from lab.fit.predict import conditional_expected, expected_repeat, p_alive
from lab.fit.simulate import paretonbd_sample
from lab.population.btyd import bgnbd_conditional_expected, paretonbd_expected_purchases

PARAMS = [dict(r=0.55, alpha=10.5, s=0.6, beta=12.0), dict(r=1.5, alpha=6.0, s=1.2, beta=30.0),
          dict(r=0.8, alpha=4.0, s=2.0, beta=2.0)]


@pytest.mark.parametrize("params", PARAMS)
def test_paretonbd_posteriors_average_to_the_prior(params) -> None:
    rng = np.random.default_rng(42)
    n, T, t = 200_000, 40.0, 26.0
    x, t_x = paretonbd_sample(n, T, **params, rng=rng)
    pa = p_alive("paretonbd", params, x, t_x, np.full(n, T))
    prior_alive = (params["beta"] / (params["beta"] + T)) ** params["s"]
    assert abs(pa.mean() - prior_alive) <= 4 * pa.std() / np.sqrt(n)
    ce = conditional_expected("paretonbd", params, t, x, t_x, np.full(n, T))
    prior = paretonbd_expected_purchases(T + t, **params) - paretonbd_expected_purchases(T, **params)
    assert abs(ce.mean() - prior) <= 4 * ce.std() / np.sqrt(n)
    assert np.all(pa[x == 0] >= pa[x == 0].min()) and np.all((pa >= 0) & (pa <= 1))


def test_expected_repeat_dispatches_to_the_closed_forms() -> None:
    p = dict(r=0.9, alpha=5.0, s=0.8, beta=20.0)
    assert expected_repeat("paretonbd", p, 10.0) == pytest.approx(paretonbd_expected_purchases(10.0, **p))


def test_holdout_prediction_is_the_sum_of_conditional_expectations(tmp_path) -> None:
    rng = np.random.default_rng(5)
    rows = []
    for cid in range(300):
        first = int(rng.integers(0, 60))
        days = np.unique(np.r_[first, first + np.cumsum(rng.integers(1, 40, 8))])
        rows += [(cid, (np.datetime64("2024-01-01") + int(d)).astype(str), 10.0) for d in days if d < 200]
    path = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["customer_id", "date", "amount"]).to_csv(path, index=False)
    s = summarise(path, until="2024-04-09", holdout_until="2024-07-18", time_unit="weeks")  # days 99 and 199
    params = dict(r=1.0, alpha=5.0, a=0.8, b=3.0)
    h = holdout_check(s, "bgnbd", params)
    assert h is not None and h.length == pytest.approx(100 / 7)
    # independent bookkeeping from the raw rows
    log = pd.DataFrame(rows, columns=["c", "date", "amount"])
    log["day"] = (pd.to_datetime(log["date"]) - pd.Timestamp("2024-01-01")).dt.days
    cal = log[log["day"] <= 99].groupby("c")["day"].agg(["min", "max", "size"])
    hold = log[(log["day"] > 99) & (log["day"] <= 199) & log["c"].isin(cal.index)]
    assert h.actual == len(hold)
    expected = bgnbd_conditional_expected(100 / 7, cal["size"] - 1, (cal["max"] - cal["min"]) / 7,
                                          (99 - cal["min"]) / 7, **params)
    assert h.predicted == pytest.approx(float(np.sum(expected)), rel=1e-12)
    assert h.by_frequency["customers"].sum() == len(cal)
    tr = tracking(s, "bgnbd", params)
    assert tr["actual_cumulative"].iloc[-1] == (log["day"] <= 199).sum() - log["c"].nunique()
