"""A dollar cap per customer and period: "at most $50 of cashback per customer per year" (issue 13, item 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.cli import main
from lab.policy.explain import explain
from lab.policy.loader import load_policy, read_policy
from lab.policy.runtime import PolicyRuntime
from lab.scenario.loader import load_scenario, world_of

ROOT = Path(__file__).resolve().parents[1]
WORLD = world_of(load_scenario(ROOT / "scenarios" / "classroom.yaml").scenario)
CASHBACK = """\
name: capped_cashback
rules:
  - id: cashback
    on: purchase
    do:
      - discount: {percent: 10}
    cap: {per: year, dollars: 50}
"""


class _Shop:
    def get(self, name: str, idx: np.ndarray) -> np.ndarray | float:
        raise KeyError(name)


def _runtime(tmp_path: Path, text: str, n: int) -> PolicyRuntime:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    rt = PolicyRuntime(load_policy(path, WORLD), n)
    rt.enrol(np.arange(n))
    return rt


def _buy(rt: PolicyRuntime, amount: list[float], day: float) -> np.ndarray:
    n = len(amount)
    idx = np.arange(n)
    eff = rt.purchase(idx, np.full(n, day), np.array(amount), np.zeros(n, dtype=np.int64), np.ones(n), np.zeros(n),
                      day, _Shop())
    return eff.discount


def test_a_customer_never_gets_more_than_the_dollar_cap_in_a_period(tmp_path):
    rt = _runtime(tmp_path, CASHBACK, 2)
    got = [_buy(rt, [200.0, 100.0], day) for day in (1.0, 2.0, 3.0, 4.0)]
    # customer 0: $20, $20, then $20 more would pass $50: no more this year; customer 1: $10 a time, five fit
    assert [g.tolist() for g in got] == [[20.0, 10.0], [20.0, 10.0], [0.0, 10.0], [0.0, 10.0]]
    assert _buy(rt, [200.0, 100.0], 5.0).tolist() == [0.0, 10.0]  # customer 1's fifth $10 reaches $50 exactly
    assert _buy(rt, [50.0, 50.0], 6.0).tolist() == [5.0, 0.0]  # customer 0 has $10 of room: a $5 discount fits
    assert _buy(rt, [200.0, 200.0], 366.0).tolist() == [20.0, 20.0]  # a new year: the cap resets
    assert rt.accounts.rule_fires["cashback"] == 2 + 2 + 1 + 1 + 1 + 1 + 2


def test_a_dollar_cap_counts_vouchers_at_face_value(tmp_path):
    text = ("name: v\nrules:\n  - id: back\n    on: purchase\n    do:\n"
            "      - voucher: {value: 'purchase.amount * 0.1'}\n    cap: {per: month, dollars: 5}\n")
    rt = _runtime(tmp_path, text, 1)
    for day in (0.0, 1.0, 2.0):
        _buy(rt, [20.0], day)
    assert rt.accounts.vouchers_issued == 4.0  # $2 and $2; the third $2 would make $6


def test_the_dollar_cap_is_explained_and_bounded(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(CASHBACK)
    text = explain(read_policy(path)[0])
    assert "Cap: at most $50 given to each customer per year (365 days)" in text
    path.write_text(CASHBACK.replace("dollars: 50", "dollars: .inf"))
    assert main(["validate", str(path)]) == 2
    assert "expected a number" in capsys.readouterr().err
