"""How one run is carried out: its seed, its address in an experiment, and size overrides."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RunOptions:
    """How one run is carried out (not what world it models)."""

    seed: int
    address: tuple[int, ...] = ()
    customers: int | None = None
    days: int | None = None
    transactions: bool = False
