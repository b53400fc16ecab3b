"""Honest experiment statistics: confidence intervals over replications, run-length
planning, concentration measures and discounting.

Policies are compared across independent simulation replications, so every headline
number is reported as a Student-t interval over replications rather than a bare mean.
When two policies are run with common random numbers (replication i of both uses the
same seed), the paired-difference interval exploits the positive correlation.

Sources
-------
* A. M. Law and W. D. Kelton, *Simulation Modeling and Analysis* (3rd ed. 2000;
  sec. 9.4.1 "Obtaining a specified precision", sec. 10.2 "Confidence intervals for
  the difference between two expected responses", paired-t approach).
* Gini coefficient as mean absolute difference over twice the mean:
  C. Gini (1912); discrete formula from sorted values, e.g. P. J. Lambert,
  *The Distribution and Redistribution of Income* (3rd ed. 2001), ch. 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import stdtrit

__all__ = [
    "Interval",
    "mean_ci",
    "paired_diff_ci",
    "relative_half_width",
    "replications_needed",
    "lorenz_curve",
    "top_share",
    "gini",
    "discounted_sum",
]


def _nan_to_none(v: float) -> float | None:
    """JSON-friendly float: NaN becomes None, everything else a Python float."""
    f = float(v)
    return None if math.isnan(f) else f


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval for a mean over ``n`` replications.

    ``ci_low``/``ci_high``/``half_width`` are NaN when n < 2 (no variance estimate);
    ``mean`` is NaN when n == 0.
    """

    mean: float
    ci_low: float
    ci_high: float
    n: int
    half_width: float

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies strictly on one side of zero (a significant difference)."""
        return bool(self.ci_low > 0.0 or self.ci_high < 0.0)

    def to_dict(self) -> dict[str, float | int | None]:
        """Serialisable summary {"mean", "ci_low", "ci_high", "n"} with NaN mapped to None."""
        return {
            "mean": _nan_to_none(self.mean),
            "ci_low": _nan_to_none(self.ci_low),
            "ci_high": _nan_to_none(self.ci_high),
            "n": int(self.n),
        }


def _level(level: float) -> float:
    """Validate a confidence level in (0, 1)."""
    try:
        lv = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"level must be a number in (0, 1), e.g. 0.95, got {level!r}") from None
    if not 0.0 < lv < 1.0:
        hint = f"; did you mean {lv / 100:g}?" if 1.0 < lv < 100.0 else ""
        raise ValueError(f"level must lie strictly between 0 and 1 (e.g. 0.95), got {level!r}{hint}")
    return lv


def _floats(value: ArrayLike, name: str, expected: str) -> np.ndarray:
    """Convert to a float array, naming the argument and what was expected if that fails."""
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {expected}; got {type(value).__name__} that is not numeric") from None


def _sample(x: ArrayLike, name: str = "x") -> np.ndarray:
    """Validate a one-dimensional sample of finite replication results."""
    arr = _floats(x, name, "a sequence of numbers (one result per replication)")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional sequence of replication results, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; drop or fix the failed replications first")
    return arr


def t_quantile(level: float, df: int | np.ndarray) -> np.ndarray | float:
    """Upper (1+level)/2 quantile of Student's t with ``df`` degrees of freedom.

    scipy.special.stdtrit is the function scipy.stats.t.ppf evaluates (the same bits for every df >= 1; NaN for
    df <= 0 like ppf), called directly because importing scipy.stats takes most of a second, which a run's
    worker and `lab run` would pay for one quantile."""
    return stdtrit(df, 0.5 + level / 2.0)


_t_quantile = t_quantile


def mean_ci(x: ArrayLike, level: float = 0.95) -> Interval:
    """Student-t confidence interval for the mean of independent replication results.

    ``mean +- t_{n-1, (1+level)/2} * s / sqrt(n)`` (Law & Kelton sec. 4.5 / 9.4).
    With fewer than two replications there is no variance estimate, so the bounds are NaN.
    """
    lv = _level(level)
    arr = _sample(x)
    n = int(arr.size)
    if n == 0:
        nan = float("nan")
        return Interval(mean=nan, ci_low=nan, ci_high=nan, n=0, half_width=nan)
    mean = float(arr.mean())
    if n < 2:
        nan = float("nan")
        return Interval(mean=mean, ci_low=nan, ci_high=nan, n=n, half_width=nan)
    half = float(_t_quantile(lv, n - 1) * arr.std(ddof=1) / math.sqrt(n))
    return Interval(mean=mean, ci_low=mean - half, ci_high=mean + half, n=n, half_width=half)


def paired_diff_ci(x: ArrayLike, y: ArrayLike, level: float = 0.95) -> Interval:
    """Paired-t confidence interval for E[x - y] where x[i] and y[i] share replication i's seed.

    With common random numbers the pairs are positively correlated, so the variance of
    the differences is smaller than the sum of the variances and the interval narrower
    than an unpaired one (Law & Kelton sec. 10.2.1).  It needs no equal-variance assumption.
    """
    xa = _sample(x, "x")
    ya = _sample(y, "y")
    if xa.shape != ya.shape:
        raise ValueError(
            f"x and y must pair up replication by replication, got {xa.size} and {ya.size} results; "
            "run both policies with the same list of seeds"
        )
    return mean_ci(xa - ya, level)


def relative_half_width(iv: Interval) -> float:
    """Half-width divided by |mean|: the relative precision achieved; inf when the mean is 0."""
    if iv.mean == 0.0:
        return math.inf
    return float(iv.half_width / abs(iv.mean))


def replications_needed(x: ArrayLike, precision: float, level: float = 0.95) -> int:
    """Estimated total number of replications for a relative error of at most ``precision``.

    Law & Kelton sec. 9.4.1: with the current n replications (mean Xbar, variance S^2),
    ``n_r = min{ i >= n : t_{i-1,(1+level)/2} * sqrt(S^2 / i) / |Xbar| <= gamma' }``
    where ``gamma' = precision / (1 + precision)`` is the adjusted relative precision
    that guarantees |Xbar - mu| / |mu| <= precision.  The result is never below len(x),
    so it reads "run this many in total".
    """
    lv = _level(level)
    arr = _sample(x)
    try:
        g = float(precision)
    except (TypeError, ValueError):
        raise ValueError(f"precision must be a positive relative error such as 0.05, got {precision!r}") from None
    if not math.isfinite(g) or g <= 0.0:
        raise ValueError(f"precision must be a positive relative error such as 0.05 (5 %), got {precision!r}")
    n = int(arr.size)
    if n < 2:
        raise ValueError(f"replications_needed needs at least 2 pilot replications to estimate the variance, got {n}")
    mean = abs(float(arr.mean()))
    sd = float(arr.std(ddof=1))
    if sd == 0.0:
        return n
    if mean == 0.0:
        raise ValueError(
            "the pilot mean is exactly 0, so a relative precision can never be reached; "
            "use an absolute half-width target or a response that is not centred on zero"
        )
    target = g / (1.0 + g)

    def ok(i: int) -> bool:
        return bool(_t_quantile(lv, i - 1) * sd / math.sqrt(i) / mean <= target)

    if ok(n):
        return n
    # The criterion is monotone in i (both t-quantile and 1/sqrt(i) fall), so bracket then bisect.
    lo, hi = n, max(n + 1, 2 * n)
    while not ok(hi):
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _values(values: ArrayLike) -> np.ndarray:
    """Validate a one-dimensional array of finite, non-negative per-customer values."""
    arr = _floats(values, "values", "a sequence of non-negative numbers (one per customer)")
    if arr.ndim != 1:
        raise ValueError(f"values must be one value per customer (1-D), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("values contains NaN or infinite entries; fill or drop them first")
    if np.any(arr < 0):
        raise ValueError(
            "concentration measures need non-negative values (e.g. spend, points); "
            "for signed quantities such as profit, clip at zero or shift them first"
        )
    return arr


def lorenz_curve(values: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve of a per-customer quantity: (cumulative customer share, cumulative value share).

    Customers are sorted ascending by value; both arrays start at 0 and have len(values)+1
    points, the last being (1, 1).  When all values are zero the value shares are all 0.
    """
    arr = np.sort(_values(values))
    n = arr.size
    if n == 0:
        return np.zeros(1), np.zeros(1)
    cust = np.arange(n + 1, dtype=float) / n
    if arr[-1] > 0:
        arr = arr / arr[-1]  # shares are scale-free; this keeps huge totals from overflowing
    cum = np.concatenate(([0.0], np.cumsum(arr)))
    total = cum[-1]
    share = cum / total if total > 0 else np.zeros_like(cum)
    return cust, share


def top_share(values: ArrayLike, fraction: float = 0.2) -> float:
    """Share of the total held by the top ``fraction`` of customers (e.g. "top 20 % hold 80 %").

    The number of top customers is ceil(fraction * n); ties do not matter because only
    the sum of the largest values is used.  Returns 0 when the total is 0.
    """
    try:
        f = float(fraction)
    except (TypeError, ValueError):
        raise ValueError(f"fraction must be a number in [0, 1], e.g. 0.2 for the top 20 %, got {fraction!r}") from None
    if not 0.0 <= f <= 1.0:
        hint = f"; did you mean {f / 100:g}?" if 1.0 < f <= 100.0 else ""
        raise ValueError(f"fraction must lie in [0, 1] (0.2 means the top 20 %), got {fraction!r}{hint}")
    arr = _values(values)
    n = arr.size
    if n == 0 or not np.any(arr > 0):
        return 0.0
    arr = arr / arr.max()  # shares are scale-free; this keeps huge totals from overflowing
    total = float(arr.sum())
    # Round first so that e.g. 0.2 * 100 = 20.000000000000004 does not become 21.
    k = math.ceil(round(f * n, 9))
    if k == 0:
        return 0.0
    top = np.partition(arr, n - k)[n - k:]
    return float(min(1.0, top.sum() / total))


def gini(values: ArrayLike) -> float:
    """Gini coefficient of a non-negative per-customer quantity (0 = equal, (n-1)/n = one holds all).

    Defined as the mean absolute difference over all ordered pairs divided by twice the
    mean, computed from the sorted values as ``2 * sum(i * v_(i)) / (n * sum v) - (n+1)/n``.
    Equals 1 - 2 * (trapezoidal area under ``lorenz_curve``).  Returns 0 for a zero total.
    """
    arr = np.sort(_values(values))
    n = arr.size
    if n == 0 or arr[-1] <= 0.0:
        return 0.0
    # Gini is scale-free; working in units of the largest value keeps tiny inputs out of underflow.
    arr = arr / arr[-1]
    ranks = np.arange(1, n + 1, dtype=float)
    g = 2.0 * float(np.dot(ranks, arr)) / (n * float(arr.sum())) - (n + 1.0) / n
    return float(min(max(g, 0.0), 1.0))


def discounted_sum(cash_by_day: ArrayLike, annual_rate: float) -> np.ndarray | float:
    """Present value of daily cash flows: sum_t cash[..., t] / (1 + annual_rate)**(t/365).

    Day index t starts at 0 (undiscounted) and runs along the last axis, so a
    (customers x days) matrix yields one value per customer.  Used for CLV.
    """
    try:
        rate = float(annual_rate)
    except (TypeError, ValueError):
        raise ValueError(f"annual_rate must be a number such as 0.1 for 10 % a year, got {annual_rate!r}") from None
    if not math.isfinite(rate) or rate <= -1.0:
        raise ValueError(f"annual_rate must be a finite number > -1 (0.1 means 10 % a year), got {annual_rate!r}")
    cash = _floats(cash_by_day, "cash_by_day", "an array of daily cash amounts (days along the last axis)")
    if cash.ndim == 0:
        raise ValueError("cash_by_day must have a day axis (last axis), e.g. shape (days,) or (customers, days)")
    days = np.arange(cash.shape[-1], dtype=float)
    factors = np.exp(-np.log1p(rate) * days / 365.0)
    out = cash @ factors
    return float(out) if np.ndim(out) == 0 else out
