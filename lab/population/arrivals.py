"""When the starting customers arrive.

With `arrival_days: 0` the starting population is one cohort that makes its
first purchase at time 0 (the BG/NBD set-up, where the closed forms hold).
A store that already has customers is better approximated by spreading their
arrivals evenly over the first `arrival_days` days, which avoids a day-0
spike of first purchases in every series.
"""

from __future__ import annotations

import numpy as np


def starting_arrivals(customers: int, arrival_days: int) -> np.ndarray:
    """Arrival times (days, ascending) of the starting customers, in customer-id order."""
    if arrival_days <= 0:
        return np.zeros(customers)
    return (np.arange(customers) + 0.5) * (arrival_days / customers)


def arriving_on(times: np.ndarray, day: int) -> slice:
    """The slice of (sorted) arrival times that fall in [day, day + 1)."""
    lo = int(np.searchsorted(times, day, side="left"))
    hi = int(np.searchsorted(times, day + 1, side="left"))
    return slice(lo, hi)
