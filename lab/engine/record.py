"""What a run hands to the metrics: the record of one run of one policy in one scenario."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lab.policy.runtime import PolicyRuntime
from lab.population.customers import Customers
from lab.scenario.model import Scenario


@dataclass
class RawRun:
    """Everything a run produced, before metrics turn it into outcomes."""

    scenario: Scenario
    policy_name: str
    days: int
    daily: dict[str, np.ndarray]
    customers: Customers
    runtime: PolicyRuntime
    transactions: dict[str, np.ndarray] | None
    rule_ids: tuple[str, ...]
    initial_customers: int
    member: np.ndarray
    m_bound: float
