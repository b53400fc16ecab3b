"""A voucher is dollars off the *next* purchase: one a purchase rule issues never discounts that purchase
(issue 13.1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.cli import main
from lab.policy.loader import load_policy
from lab.policy.runtime import PolicyRuntime
from lab.scenario.loader import load_scenario, world_of
from tests.conftest import day0_file

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"
WORLD = world_of(load_scenario(CLASSROOM).scenario)
TWO_PERCENT = """\
name: purchase_voucher
rules:
  - id: two_percent_back
    on: purchase
    do:
      - voucher: {value: "purchase.amount * 0.02", valid_days: 60}
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


def _buy(rt: PolicyRuntime, idx: np.ndarray, amount: np.ndarray, day: float):
    n = len(idx)
    return rt.purchase(idx, np.full(n, day), amount, np.zeros(n, dtype=np.int64), np.ones(n), np.zeros(n), day,
                       _Shop())


def test_a_voucher_issued_by_a_purchase_discounts_the_next_purchase_not_this_one(tmp_path):
    rt = _runtime(tmp_path, TWO_PERCENT, 3)
    idx = np.arange(3)
    first = _buy(rt, idx, np.array([40.0, 50.0, 100.0]), 1.0)
    assert first.discount.tolist() == [0.0, 0.0, 0.0]  # before: 2% off the very purchase that earned it
    assert rt.voucher.tolist() == [0.8, 1.0, 2.0]
    second = _buy(rt, idx, np.array([10.0, 10.0, 1.0]), 5.0)
    assert second.discount.tolist() == [0.8, 1.0, 1.0]  # the first voucher, never more than the purchase
    # the second purchase issued its own voucher, for the purchase after it, not merged with the one it used
    assert rt.voucher.tolist() == [0.2, 0.2, 0.02]
    assert rt.accounts.spent["voucher_discounts"] == 0.8 + 1.0 + 1.0
    assert rt.accounts.vouchers_issued == 0.8 + 1.0 + 2.0 + 0.2 + 0.2 + 0.02


def test_a_voucher_from_another_event_is_still_used_by_the_next_purchase(tmp_path):
    text = ("name: birthday_voucher\nrules:\n  - id: birthday\n    on: enrolment\n    do:\n"
            "      - voucher: {value: 5, valid_days: 30}\n")
    rt = _runtime(tmp_path, text, 2)
    idx = np.arange(2)
    rt.fire("enrolment", idx, 0.0, _Shop())
    eff = _buy(rt, idx, np.array([3.0, 20.0]), 10.0)
    assert eff.discount.tolist() == [3.0, 5.0]
    assert rt.voucher.tolist() == [0.0, 0.0]


def test_lab_trace_no_longer_prints_a_zero_voucher_after_a_discount(tmp_path, capsys):
    policy = tmp_path / "purchase_voucher.yaml"
    policy.write_text(TWO_PERCENT)
    assert main(["trace", str(day0_file(tmp_path)), "--policy", str(policy), "--customer", "3", "--days", "120"]) == 0
    text = capsys.readouterr().out
    assert "received a $0.00 voucher" not in text
    assert "off the purchase" not in text.split("received a")[0]  # the first purchase pays its full price
    assert "received a $0.35 voucher" in text
