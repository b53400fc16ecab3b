"""Rolling-window fields: spend, purchases and visits over the last 30, 90 and 365 days (issue 13, item 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.policy import fields
from lab.policy.explain import explain
from lab.policy.loader import load_policy, read_policy
from lab.policy.runtime import PolicyRuntime
from lab.scenario.loader import load_scenario, world_of

ROOT = Path(__file__).resolve().parents[1]
WORLD = world_of(load_scenario(ROOT / "scenarios" / "classroom.yaml").scenario)
POLICY = """\
name: windows
points:
  spend30: {}
  spend365: {}
  buys90: {}
rules:
  - id: read
    on: purchase
    when: "customer.spend_365d > 500 or true"
    do:
      - award: {ledger: spend30, amount: "customer.spend_30d"}
      - award: {ledger: spend365, amount: "customer.spend_365d"}
      - award: {ledger: buys90, amount: "customer.purchases_90d"}
"""


class _Shop:
    def get(self, name: str, idx: np.ndarray) -> np.ndarray | float:
        raise KeyError(name)


def test_the_window_fields_sum_the_last_days_before_this_purchase(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(POLICY)
    rt = PolicyRuntime(load_policy(path, WORLD), 2)
    idx = np.arange(2)
    rt.enrol(idx)
    seen = []
    for day, amounts in [(0, [100.0, 1.0]), (0, [10.0, 1.0]), (29, [1.0, 1.0]), (30, [1.0, 1.0]),
                         (364, [1.0, 1.0]), (365, [1.0, 1.0]), (800, [1.0, 1.0])]:
        before = {k: b.earned.copy() for k, b in rt.points.items()}
        rt.purchase(idx, np.full(2, float(day)), np.array(amounts), np.zeros(2, dtype=np.int64), np.ones(2),
                    np.zeros(2), float(day), _Shop())
        seen.append({k: (b.earned - before[k])[0] for k, b in rt.points.items()})
    assert [s["spend30"] for s in seen] == [0.0, 100.0, 110.0, 1.0, 0.0, 1.0, 0.0]
    assert [s["spend365"] for s in seen] == [0.0, 100.0, 110.0, 111.0, 112.0, 3.0, 0.0]
    assert [s["buys90"] for s in seen] == [0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 0.0]


def test_a_policy_that_reads_no_window_keeps_no_ring(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nrules:\n  - id: r\n    on: purchase\n    when: 'customer.spend > 500'\n"
                    "    do: [{discount: {percent: 5}}]\n")
    rt = PolicyRuntime(load_policy(path, WORLD), 3)
    assert not hasattr(rt, "win_spend")


def test_the_window_fields_are_declared_and_explained(tmp_path):
    names = {f.name for f in fields.FIELDS if f.window}
    assert names == {f"customer.{m}_{n}d" for m in ("spend", "purchases", "visits") for n in (30, 90, 365)}
    doc = (ROOT / "docs" / "POLICIES.md").read_text()
    assert all(f"`{n}`" in doc for n in names)
    path = tmp_path / "w.yaml"
    path.write_text(POLICY)
    assert "dollars the customer has spent over the last 365 days" in explain(read_policy(path)[0])


VISITS = """\
name: visits
points:
  visits30: {}
  buys30: {}
rules:
  - id: read
    on: purchase
    do:
      - award: {ledger: visits30, amount: "customer.visits_30d"}
      - award: {ledger: buys30, amount: "customer.purchases_30d"}
"""


def test_a_visit_is_a_purchase_or_a_service_contact(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text(VISITS)
    rt = PolicyRuntime(load_policy(path, WORLD), 2)
    idx = np.arange(2)
    rt.enrol(idx)
    seen = []
    for day, what in [(0, "buy"), (3, "contact"), (3, "contact"), (10, "buy"), (31, "contact"), (32, "buy"),
                      (34, "buy")]:
        if what == "contact":
            rt.contact(idx[:1], float(day))  # only customer 0 calls the store
            continue
        before = {k: b.earned.copy() for k, b in rt.points.items()}
        rt.purchase(idx, np.full(2, float(day)), np.ones(2), np.zeros(2, dtype=np.int64), np.ones(2),
                    np.zeros(2), float(day), _Shop())
        seen.append({k: tuple(b.earned - before[k]) for k, b in rt.points.items()})
    assert [s["visits30"] for s in seen] == [(0.0, 0.0), (3.0, 1.0), (4.0, 1.0), (3.0, 2.0)]
    assert [s["buys30"] for s in seen] == [(0.0, 0.0), (1.0, 1.0), (1.0, 1.0), (2.0, 2.0)]
    assert hasattr(rt, "win_visits") and hasattr(rt, "win_purchases") and not hasattr(rt, "win_spend")
    text = explain(read_policy(path)[0])
    assert "the customer's visits (purchases and service contacts) over the last 30 days" in text


def test_contacts_are_not_kept_when_no_visit_field_is_read(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text(POLICY)
    rt = PolicyRuntime(load_policy(path, WORLD), 2)
    rt.enrol(np.arange(2))
    rt.contact(np.arange(2), 5.0)
    assert not hasattr(rt, "win_visits") and not np.isfinite(rt.win_last).any()
