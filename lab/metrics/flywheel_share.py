"""The flywheel share of a policy's effect, and the one rule for when it means something.

Every policy of a comparison can also run with the flywheel cut (service quality frozen), so its
effect on an outcome splits into the part that needs the loop and the part that does not. The
share is `1 - effect(cut) / effect(whole)`, estimated as a ratio of means: the mean paired
difference (whole - cut) over the mean effect with the loop whole, with the interval of the
numerator divided by that mean (Law & Kelton's paired-t on the replication-by-replication
differences of the two effects).

A ratio is only meaningful when its denominator is clearly away from zero: when the effect itself
is not distinguishable from zero, "the share of it" can be any number (-72% with an interval of
-200% to 56% is what it looks like). So the share is reported only when the whole effect's
paired interval excludes zero; otherwise it is not meaningful, and `reason` says why. The table,
summary.json, the HTML report and the figure all call `flywheel_share`, so they agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from lab.metrics.stats import Interval, mean_ci

__all__ = ["FlywheelShare", "flywheel_share"]

NO_CUT_RUNS = "the comparison did not run the policies with the flywheel cut"


@dataclass(frozen=True)
class FlywheelShare:
    """The share (an interval over replications) when it is meaningful, else None and the reason."""

    interval: Interval | None
    reason: str | None = None

    @property
    def meaningful(self) -> bool:
        return self.interval is not None


def _fmt(v: float) -> str:
    return f"{'-' if v < 0 else ''}${abs(v):,.0f}"


def flywheel_share(d_whole: ArrayLike | None, d_cut: ArrayLike | None) -> FlywheelShare:
    """The flywheel share from per-replication effects (policy - baseline) with the loop whole and cut.

    `d_whole[k]` and `d_cut[k]` belong to replication k (common random numbers); pass None for
    `d_cut` when the comparison ran no cut runs. The effects are in dollars (net profit) for the
    reasons' wording."""
    if d_whole is None or d_cut is None:
        return FlywheelShare(None, NO_CUT_RUNS)
    w = np.asarray(d_whole, dtype=float)
    c = np.asarray(d_cut, dtype=float)
    finite_w = w[np.isfinite(w)]
    if finite_w.size < 2:
        return FlywheelShare(None, f"the effect rests on {finite_w.size} replication(s): with fewer than 2 there is "
                                   "no interval to tell it from zero")
    effect = mean_ci(finite_w)
    mean_whole = float(np.nanmean(w))
    if not math.isfinite(mean_whole) or mean_whole == 0 or not effect.excludes_zero:
        return FlywheelShare(None, f"the effect itself ({_fmt(effect.mean)}, 95% interval {_fmt(effect.ci_low)} to "
                                   f"{_fmt(effect.ci_high)}) is not clearly different from zero, so a share of it "
                                   "is not meaningful")
    through_all = w - c
    through = mean_ci(through_all[np.isfinite(through_all)])
    if mean_whole > 0:
        low, high = through.ci_low / mean_whole, through.ci_high / mean_whole
    else:
        low, high = through.ci_high / mean_whole, through.ci_low / mean_whole
    half = through.half_width / abs(mean_whole)
    return FlywheelShare(Interval(through.mean / mean_whole, low, high, through.n, half))
