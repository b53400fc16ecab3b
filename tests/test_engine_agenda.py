"""The engine finds each day's due customers the same way at any population size.

Small populations are scanned in full every day; large ones keep an agenda that is
rescanned once per block of days and told of every time that moves (see
lab.engine.simulate._Agenda). The agenda must change nothing: forcing it on for a small
population, with blocks from one day to a month, gives the same run to the last bit as
the daily scan -- purchases, dropouts (BG/NBD after purchases, Pareto/NBD deaths at any
time), service contacts, points and money.
"""

from __future__ import annotations

import numpy as np
import pytest

import lab.engine.simulate as engine
from lab.engine.options import RunOptions
from lab.engine.simulate import Simulation
from lab.scenario.model import BGNBD, GammaGamma, ParetoNBD, Segment

COLUMNS = ("purchases", "alive", "dropped_at", "next_cand", "next_contact", "death_time", "revenue", "clv",
           "sat_at", "t_sat", "cand_n", "contact_n")


@pytest.fixture(scope="module")
def scenario(small_scenario):
    """Both dropout models, frequent service contacts, referrals and marketing: every agenda has work."""
    segments = {
        "regulars": Segment(share=0.5, purchases=BGNBD(r=1.2, alpha=8.0, a=0.8, b=6.0),
                            spend=GammaGamma(p=6.25, q=3.74, gamma=15.44), service_contact_rate=12.0),
        "drifters": Segment(share=0.5, purchases=ParetoNBD(r=0.8, alpha=6.0, s=0.6, beta=20.0),
                            spend=GammaGamma(p=4.0, q=3.0, gamma=10.0), service_contact_rate=6.0),
    }
    return small_scenario(population__customers=1500, population__segments=segments, days=150)


def run(scenario, compiled, monkeypatch, block: int | None):
    with monkeypatch.context() as m:
        if block is not None:
            m.setattr(engine, "AGENDA_MIN_CUSTOMERS", 0)
            m.setattr(engine, "AGENDA_BLOCK_DAYS", block)
        return Simulation(scenario, compiled, RunOptions(seed=11, transactions=True)).run()


@pytest.mark.parametrize("block", [1, 5, 32])
def test_agenda_gives_the_same_run_as_a_daily_scan(scenario, classroom, monkeypatch, block: int) -> None:
    compiled = classroom.policies["points"]
    scan = run(scenario, compiled, monkeypatch, None)
    agenda = run(scenario, compiled, monkeypatch, block)
    assert (scan.daily["purchases"].sum() > 1000 and scan.daily["contacts"].sum() > 500
            and scan.daily["lost"].sum() > 100)
    for key, values in scan.daily.items():
        np.testing.assert_array_equal(agenda.daily[key], values, err_msg=key)
    n = scan.customers.n
    assert agenda.customers.n == n
    for col in COLUMNS:
        np.testing.assert_array_equal(getattr(agenda.customers, col)[:n], getattr(scan.customers, col)[:n], err_msg=col)
    for key, values in scan.transactions.items():
        np.testing.assert_array_equal(agenda.transactions[key], values, err_msg=key)
    np.testing.assert_array_equal(agenda.runtime.points["points"].lots[:n], scan.runtime.points["points"].lots[:n])
