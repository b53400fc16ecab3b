"""Why a retailer's dashboard flatters its programme: the naive member gap against the causal effect.

A retailer who compares members with non-members in its own data (outcome `naive_member_gap`) measures the
programme's effect plus the difference between the customers who chose to join and those who did not. The
lab also knows what the same customers would have spent without the programme (the baseline run, common
random numbers), so it can give the causal effect and the ratio of the two:

* causal effect per member, replication k: (launch_customer_revenue under the policy - under the baseline) /
  launch_member_share under the policy. The paired difference is the effect per launch customer (an
  intention-to-treat effect, every launch customer counted); dividing by the share who joined gives the
  effect per member, on the assumption that the programme moves non-members by nothing (Bloom's estimator).
  Under this model non-members are touched only through the store (service quality, the flywheel), so the
  assumption holds up to that small spill-over, which would make the effect per member slightly too large
  and the ratio slightly too small.
* naive / causal: the ratio of the replications' mean naive gap to their mean causal effect, with Fieller's
  interval for a ratio of two paired means (t with k - 1 degrees of freedom). When the causal effect's
  own interval covers 0 the ratio's interval is unbounded, and is reported so.

Leenheer et al. (2007) found the naive estimate of membership's effect on share of wallet about seven times
the one corrected for self-selection (docs/EVIDENCE.md, section 1): docs/VALIDATION.md compares with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from lab.metrics.stats import Interval, mean_ci, t_quantile


@dataclass(frozen=True)
class Ratio:
    """A ratio of two means with its confidence interval (Fieller); bounds are +-inf when unbounded and NaN
    when there is no variance estimate (fewer than two replications)."""

    value: float
    ci_low: float
    ci_high: float
    n: int

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.ci_low) and math.isfinite(self.ci_high)


@dataclass(frozen=True)
class SelectionEstimate:
    """The naive member gap, the causal effect per member and their ratio, over a comparison's replications
    (dollars of revenue per launch customer-year)."""

    naive: Interval
    causal: Interval
    ratio: Ratio
    member_share: float


def fieller(num: ArrayLike, den: ArrayLike, level: float = 0.95) -> Ratio:
    """Fieller's interval for mean(num) / mean(den) from paired replications: the set of rho with
    (mean_n - rho mean_d)^2 <= t^2 (s_nn - 2 rho s_nd + rho^2 s_dd) / k."""
    x, y = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    k = int(x.size)
    nan = float("nan")
    if k == 0 or y.size != k:
        return Ratio(nan, nan, nan, k)
    mx, my = float(x.mean()), float(y.mean())
    value = mx / my if my != 0 else nan
    if k < 2:
        return Ratio(value, nan, nan, k)
    cov = np.cov(x, y, ddof=1) / k
    t2 = float(t_quantile(level, k - 1)) ** 2  # (scipy.stats' t.ppf, without importing scipy.stats)
    a = my * my - t2 * cov[1, 1]
    b = mx * my - t2 * cov[0, 1]
    c = mx * mx - t2 * cov[0, 0]
    disc = b * b - a * c
    if a <= 0 or disc < 0:  # the denominator's interval covers 0: the ratio is not bounded
        return Ratio(value, -math.inf, math.inf, k)
    root = math.sqrt(disc)
    return Ratio(value, (b - root) / a, (b + root) / a, k)


def naive_vs_causal(naive: ArrayLike, policy_revenue: ArrayLike, baseline_revenue: ArrayLike,
                    member_share: ArrayLike, level: float = 0.95) -> SelectionEstimate:
    """The estimate from replication-wise outcomes of a policy and its baseline: `naive` = naive_member_gap,
    `policy_revenue` / `baseline_revenue` = launch_customer_revenue, `member_share` = launch_member_share.
    Replications where any of them is not a number (no members, or no non-members) are left out."""
    n, p, b, s = (np.asarray(v, dtype=float) for v in (naive, policy_revenue, baseline_revenue, member_share))
    ok = np.isfinite(n) & np.isfinite(p) & np.isfinite(b) & np.isfinite(s) & (s > 0)
    causal = (p[ok] - b[ok]) / s[ok]
    return SelectionEstimate(naive=mean_ci(n[ok], level), causal=mean_ci(causal, level),
                             ratio=fieller(n[ok], causal, level), member_share=float(s[ok].mean()) if ok.any()
                             else float("nan"))
