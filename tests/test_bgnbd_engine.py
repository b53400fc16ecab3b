"""With everything but BG/NBD switched off, the engine's customers are exactly BG/NBD customers.

No programme, no behavioural responses, no marketing, no referrals, no seasonality, no competitors:
a single segment with Fader, Hardie & Lee's (2005) CDNOW estimates (weeks). The mean number of repeat
purchases by t must then match their closed form E[X(t)] (eq. 7) within 4 standard errors of the
simulated mean (two-sided false-alarm probability about 6e-5 per comparison; the seed is fixed).
"""

from __future__ import annotations

import numpy as np
import pytest

from lab.engine.options import RunOptions
from lab.engine.simulate import Simulation
from lab.population.btyd import bgnbd_expected_purchases
from lab.scenario.model import BGNBD, GammaGamma, Segment

CDNOW = dict(r=0.243, alpha=4.414, a=0.793, b=2.426)
N = 30_000
WEEKS = (13, 26, 39, 52, 78)
Z = 4.0


@pytest.fixture(scope="module")
def repeat_purchases(small_scenario, classroom) -> dict[int, np.ndarray]:
    """Each customer's repeat purchases in (0, t] for every t in WEEKS, from one 78-week run."""
    segment = Segment(share=1.0, purchases=BGNBD(**CDNOW, time_unit="weeks"),
                      spend=GammaGamma(p=6.25, q=3.74, gamma=15.44), referral_propensity=0.0)
    sc = small_scenario(population__customers=N, population__segments={"cdnow": segment}, days=78 * 7,
                        behaviour__enabled=False, store__marketing__budget_per_year=0.0,
                        store__seasonality=0.0, market__competitor_pull=0.0)
    raw = Simulation(sc, classroom.policies["none"], RunOptions(seed=2005, transactions=True)).run()
    tx = raw.transactions
    assert tx is not None
    assert raw.customers.n == N and np.all(raw.customers.acquired_at[:N] == 0.0)
    repeat = tx["time"] > 0.0  # the trial purchase at time 0 is not a repeat purchase
    who, when = tx["customer_id"][repeat], tx["time"][repeat]
    assert np.all(np.bincount(tx["customer_id"][~repeat], minlength=N) == 1)
    return {w: np.bincount(who[when <= 7.0 * w], minlength=N).astype(float) for w in WEEKS}


@pytest.mark.parametrize("weeks", WEEKS)
def test_mean_repeat_purchases_match_bgnbd(weeks, repeat_purchases) -> None:
    x = repeat_purchases[weeks]
    expected = float(bgnbd_expected_purchases(weeks, **CDNOW))
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert abs(x.mean() - expected) <= Z * se, f"mean {x.mean():.5f}, E[X({weeks})] = {expected:.5f}, se {se:.5f}"
