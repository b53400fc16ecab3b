"""Experiment statistics: interval coverage, pairing, run-length planning, concentration, discounting."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import t as student_t

from lab.metrics.stats import (
    Interval,
    discounted_sum,
    gini,
    lorenz_curve,
    mean_ci,
    paired_diff_ci,
    relative_half_width,
    replications_needed,
    top_share,
)

nonneg_values = arrays(
    np.float64,
    st.integers(0, 60),
    elements=st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False),
)
samples = arrays(
    np.float64,
    st.integers(2, 40),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


# --------------------------------------------------------------------------- #
# confidence intervals
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("level", [0.95, 0.8])
def test_t_interval_covers_the_true_mean_at_the_nominal_rate(level: float) -> None:
    reps, n, mu = 2000, 10, 3.0
    data = np.random.default_rng(int(level * 100)).normal(mu, 2.0, size=(reps, n))
    hits = sum(iv.ci_low <= mu <= iv.ci_high for iv in (mean_ci(row, level) for row in data))
    tol = 3.0 * math.sqrt(level * (1 - level) / reps)
    assert abs(hits / reps - level) <= tol


def test_mean_ci_matches_the_textbook_formula() -> None:
    x = np.array([2.0, 4.0, 4.0, 5.0, 7.0, 9.0])
    iv = mean_ci(x, 0.9)
    half = student_t.ppf(0.95, 5) * x.std(ddof=1) / math.sqrt(6)
    assert iv.mean == pytest.approx(31.0 / 6)
    assert iv.half_width == pytest.approx(half)
    assert (iv.ci_low, iv.ci_high) == pytest.approx((31.0 / 6 - half, 31.0 / 6 + half))
    assert iv.n == 6


def test_small_samples_give_nan_bounds_and_json_friendly_dict() -> None:
    one = mean_ci([4.2])
    assert one.mean == 4.2 and math.isnan(one.ci_low) and math.isnan(one.half_width)
    assert one.to_dict() == {"mean": 4.2, "ci_low": None, "ci_high": None, "n": 1}
    assert not one.excludes_zero
    empty = mean_ci([])
    assert empty.to_dict() == {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    d = mean_ci(np.array([1, 2, 3], dtype=np.int32)).to_dict()
    assert all(type(d[k]) is float for k in ("mean", "ci_low", "ci_high")) and type(d["n"]) is int


def test_interval_is_frozen() -> None:
    iv = mean_ci([1.0, 2.0, 3.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        iv.mean = 0.0  # type: ignore[misc]


def test_excludes_zero() -> None:
    assert Interval(1.0, 0.5, 1.5, 5, 0.5).excludes_zero
    assert Interval(-1.0, -1.5, -0.5, 5, 0.5).excludes_zero
    assert not Interval(0.2, -0.3, 0.7, 5, 0.5).excludes_zero
    assert not Interval(0.5, 0.0, 1.0, 5, 0.5).excludes_zero


def test_paired_interval_is_narrower_than_unpaired_under_common_random_numbers() -> None:
    rng = np.random.default_rng(12)
    n = 20
    shared = rng.normal(100.0, 10.0, n)  # the replication's common random numbers
    x = shared + 2.0 + rng.normal(0.0, 1.0, n)  # true difference 2 = 6.3 paired standard errors
    y = shared + rng.normal(0.0, 1.0, n)
    paired = paired_diff_ci(x, y)
    # Unpaired (Welch) interval for the same difference, ignoring the pairing.
    vx, vy = x.var(ddof=1) / n, y.var(ddof=1) / n
    df = (vx + vy) ** 2 / (vx**2 / (n - 1) + vy**2 / (n - 1))
    unpaired_half = student_t.ppf(0.975, df) * math.sqrt(vx + vy)
    assert paired.mean == pytest.approx(x.mean() - y.mean())
    assert paired.half_width < unpaired_half / 3
    assert paired.excludes_zero


def test_paired_interval_covers_the_true_difference_at_the_nominal_rate() -> None:
    reps, n, delta = 2000, 8, 0.5
    rng = np.random.default_rng(99)
    shared = rng.exponential(5.0, size=(reps, n))
    x = shared + delta + rng.normal(0, 1, (reps, n))
    y = shared + rng.normal(0, 1, (reps, n))
    hits = sum(iv.ci_low <= delta <= iv.ci_high for iv in (paired_diff_ci(a, b) for a, b in zip(x, y)))
    assert abs(hits / reps - 0.95) <= 3.0 * math.sqrt(0.95 * 0.05 / reps)


def test_relative_half_width() -> None:
    assert relative_half_width(Interval(-4.0, -5.0, -3.0, 10, 1.0)) == 0.25
    assert relative_half_width(Interval(0.0, -1.0, 1.0, 10, 1.0)) == math.inf
    assert math.isnan(relative_half_width(mean_ci([3.0])))


# --------------------------------------------------------------------------- #
# number of replications (Law & Kelton sec. 9.4.1)
# --------------------------------------------------------------------------- #
def _brute_force_replications(x: np.ndarray, precision: float, level: float) -> int:
    """Linear scan of Law & Kelton's criterion, as an independent reference."""
    n, mean, sd = x.size, abs(x.mean()), x.std(ddof=1)
    target = precision / (1 + precision)
    i = n
    while student_t.ppf(0.5 + level / 2, i - 1) * sd / math.sqrt(i) / mean > target:
        i += 1
    return i


@pytest.mark.parametrize("precision", [0.5, 0.1, 0.05, 0.02])
def test_replications_needed_matches_the_defining_criterion(precision: float) -> None:
    x = np.random.default_rng(5).normal(10.0, 4.0, 10)
    assert replications_needed(x, precision) == _brute_force_replications(x, precision, 0.95)


@settings(max_examples=80, deadline=None)
@given(x=samples, p1=st.floats(0.005, 2.0), p2=st.floats(0.005, 2.0))
def test_replications_needed_is_monotone_in_precision(x: np.ndarray, p1: float, p2: float) -> None:
    if x.mean() == 0.0 and x.std() > 0:
        return
    lo, hi = sorted((p1, p2))
    n_strict, n_loose = replications_needed(x, lo), replications_needed(x, hi)
    assert n_strict >= n_loose >= len(x)


def test_replications_needed_edge_cases() -> None:
    assert replications_needed([5.0, 5.0, 5.0], 0.01) == 3
    with pytest.raises(ValueError, match="at least 2"):
        replications_needed([5.0], 0.1)
    with pytest.raises(ValueError, match="mean is exactly 0"):
        replications_needed([-1.0, 1.0], 0.1)
    with pytest.raises(ValueError, match="positive relative error"):
        replications_needed([1.0, 2.0], 0.0)


def test_bad_input_messages() -> None:
    with pytest.raises(ValueError, match="did you mean 0.95"):
        mean_ci([1.0, 2.0], level=95)
    with pytest.raises(ValueError, match="NaN"):
        mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="same list of seeds"):
        paired_diff_ci([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        mean_ci(np.ones((2, 2)))


# --------------------------------------------------------------------------- #
# concentration
# --------------------------------------------------------------------------- #
def test_top_share_of_a_known_distribution() -> None:
    values = [1.0] * 80 + [16.0] * 20
    assert top_share(values, 0.2) == pytest.approx(320.0 / 400.0)
    assert top_share(values[::-1], 0.2) == pytest.approx(0.8)  # order does not matter
    assert top_share(values, 0.21) == pytest.approx(321.0 / 400.0)  # ceil(21.0) = 21 customers
    assert top_share(values, 0.205) == pytest.approx(321.0 / 400.0)  # ceil(20.5) = 21
    assert top_share(values, 0.0) == 0.0 and top_share(values, 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="did you mean 0.2"):
        top_share(values, 20)


def test_lorenz_endpoints_and_known_points() -> None:
    cust, share = lorenz_curve([3.0, 1.0, 0.0, 4.0])
    np.testing.assert_allclose(cust, [0.0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(share, [0.0, 0.0, 0.125, 0.5, 1.0])


def test_gini_known_values() -> None:
    assert gini([7.0] * 50) == pytest.approx(0.0, abs=1e-12)
    assert gini([0.0] * 9 + [5.0]) == pytest.approx(0.9)  # (n-1)/n when one holds everything
    assert gini([1.0, 2.0, 3.0]) == pytest.approx(2.0 / 9.0)


def test_zero_totals_give_zero_shares_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cust, share = lorenz_curve(np.zeros(5))
        assert np.all(share == 0.0) and cust[-1] == 1.0
        assert top_share(np.zeros(5)) == 0.0 and gini(np.zeros(5)) == 0.0
        assert top_share([]) == 0.0 and gini([]) == 0.0
        assert lorenz_curve([])[0].tolist() == [0.0]


def test_negative_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        gini([1.0, -2.0])


@settings(max_examples=150, deadline=None)
@given(values=nonneg_values, fraction=st.floats(0.0, 1.0))
def test_concentration_properties(values: np.ndarray, fraction: float) -> None:
    share = top_share(values, fraction)
    assert 0.0 <= share <= 1.0
    cust, cum = lorenz_curve(values)
    assert cust[0] == 0.0 and cum[0] == 0.0
    assert np.all(np.diff(cust) > 0) and np.all(np.diff(cum) >= 0)
    assert np.all((cum >= 0) & (cum <= 1))
    g = gini(values)
    assert 0.0 <= g <= 1.0
    if values.size and values.sum() > 0:
        assert cum[-1] == 1.0
        # The top fraction holds at least its population share (Lorenz curve below the diagonal).
        k = math.ceil(round(fraction * values.size, 9))
        assert share >= k / values.size - 1e-9
        # Lorenz curve lies on or below the diagonal.
        assert np.all(cum <= cust + 1e-12)


@settings(max_examples=150, deadline=None)
@given(values=nonneg_values)
def test_gini_agrees_with_pairwise_definition_and_lorenz_area(values: np.ndarray) -> None:
    if values.size == 0 or values.sum() == 0:
        return
    n = values.size
    v = values / values.max()  # the Gini coefficient is scale-free
    pairwise = np.abs(v[:, None] - v[None, :]).sum() / (2.0 * n * v.sum())
    assert gini(values) == pytest.approx(pairwise, abs=1e-9)
    cust, cum = lorenz_curve(values)
    area = float(np.sum(np.diff(cust) * (cum[1:] + cum[:-1]) / 2.0))
    assert gini(values) == pytest.approx(1.0 - 2.0 * area, abs=1e-9)


# --------------------------------------------------------------------------- #
# discounting
# --------------------------------------------------------------------------- #
def test_discounted_sum_matches_geometric_series() -> None:
    days = 730
    q = 1.1 ** (-1.0 / 365.0)
    expected = (1.0 - q**days) / (1.0 - q)
    assert discounted_sum(np.ones(days), 0.1) == pytest.approx(expected, rel=1e-12)
    # A single cash flow one year out is divided by exactly 1 + rate.
    flow = np.zeros(366)
    flow[365] = 110.0
    assert discounted_sum(flow, 0.1) == pytest.approx(100.0, rel=1e-12)


def test_discounted_sum_is_per_row_along_last_axis() -> None:
    cash = np.arange(12.0).reshape(3, 4)
    out = discounted_sum(cash, 0.0)
    np.testing.assert_allclose(out, cash.sum(axis=1))
    assert np.all(discounted_sum(cash, 0.2) <= out)
    with pytest.raises(ValueError, match="> -1"):
        discounted_sum(cash, -1.0)


# --------------------------------------------------------------------------- #
# exact values and messages (each pins a number or a word a user reads)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("n, precision, level", [(2, 0.1, 0.95), (3, 0.05, 0.95), (4, 0.2, 0.8), (2, 0.3, 0.9),
                                                 (5, 0.01, 0.95), (3, 0.15, 0.99)])
def test_replications_needed_is_the_smallest_total_meeting_the_criterion(n: int, precision: float,
                                                                         level: float) -> None:
    for seed in range(6):
        x = np.random.default_rng(seed).normal(10.0, 3.0, n)
        assert replications_needed(x, precision, level) == _brute_force_replications(x, precision, level), seed


def test_two_replications_give_an_interval() -> None:
    iv = mean_ci([1.0, 3.0])
    half = student_t.ppf(0.975, 1) * math.sqrt(2.0) / math.sqrt(2.0)
    assert (iv.mean, iv.n) == (2.0, 2)
    assert iv.half_width == pytest.approx(half) and iv.ci_low == pytest.approx(2.0 - half)
    empty = mean_ci([])
    assert empty.n == 0 and all(math.isnan(v) for v in (empty.mean, empty.ci_low, empty.ci_high, empty.half_width))


def test_paired_interval_at_another_level() -> None:
    x, y = np.array([3.0, 5.0, 4.0, 8.0]), np.array([1.0, 2.0, 2.0, 3.0])
    d = x - y
    iv = paired_diff_ci(x, y, level=0.8)
    assert iv.half_width == pytest.approx(student_t.ppf(0.9, 3) * d.std(ddof=1) / 2.0)
    assert iv.mean == pytest.approx(d.mean())


def test_concentration_edge_values() -> None:
    assert top_share([5.0]) == 1.0  # one customer holds everything
    assert top_share([1e300, 1e300, 1e300, 1e300, 1e300]) == pytest.approx(0.2)  # no overflow
    cust, share = lorenz_curve([])
    np.testing.assert_array_equal(cust, [0.0])
    np.testing.assert_array_equal(share, [0.0])


def test_discounted_sum_of_one_series_is_a_float() -> None:
    v = discounted_sum([1.0, 1.0], 0.1)
    assert type(v) is float
    assert v == pytest.approx(1.0 + 1.1 ** (-1 / 365))


@pytest.mark.parametrize("call, message", [
    (lambda: mean_ci([1.0, 2.0], level="high"), r"^level must be a number in \(0, 1\), e\.g\. 0\.95, got 'high'$"),
    (lambda: mean_ci([1.0, 2.0], level=95),
     r"^level must lie strictly between 0 and 1 \(e\.g\. 0\.95\), got 95; did you mean 0\.95\?$"),
    (lambda: mean_ci([1.0, 2.0], level=1.5), r"got 1\.5; did you mean 0\.015\?$"),
    (lambda: mean_ci([1.0, 2.0], level=1.0), r"got 1\.0$"),
    (lambda: mean_ci([1.0, 2.0], level=100.0), r"got 100\.0$"),
    (lambda: mean_ci([1.0, 2.0], level=0.0), r"got 0\.0$"),
    (lambda: mean_ci([1.0, 2.0], level=-3), r"got -3$"),
    (lambda: mean_ci(["a", "b"]),
     r"^x must be a sequence of numbers \(one result per replication\); got list that is not numeric$"),
    (lambda: paired_diff_ci(["a"], [1.0]), r"^x must be a sequence of numbers"),
    (lambda: paired_diff_ci([1.0, 2.0], ["a", "b"]), r"^y must be a sequence of numbers"),
    (lambda: paired_diff_ci([1.0, np.inf], [1.0, 2.0]), r"^x contains NaN or infinite values"),
    (lambda: paired_diff_ci([1.0, 2.0], [[1.0, 2.0]]), r"^y must be a one-dimensional sequence"),
    (lambda: paired_diff_ci([1.0, 2.0], [1.0]),
     r"^x and y must pair up replication by replication, got 2 and 1 results; "
     r"run both policies with the same list of seeds$"),
    (lambda: replications_needed([1.0, 2.0], "tight"),
     r"^precision must be a positive relative error such as 0\.05, got 'tight'$"),
    (lambda: replications_needed([-1.0, 1.0], 0.1),
     r"^the pilot mean is exactly 0, so a relative precision can never be reached; use an absolute half-width "
     r"target or a response that is not centred on zero$"),
    (lambda: top_share(["a"]),
     r"^values must be a sequence of non-negative numbers \(one per customer\); got list that is not numeric$"),
    (lambda: top_share([[1.0]]), r"^values must be one value per customer \(1-D\), got shape \(1, 1\)$"),
    (lambda: top_share([np.nan]), r"^values contains NaN or infinite entries; fill or drop them first$"),
    (lambda: gini([-1.0]),
     r"^concentration measures need non-negative values \(e\.g\. spend, points\); for signed quantities such as "
     r"profit, clip at zero or shift them first$"),
    (lambda: top_share([1.0], "most"),
     r"^fraction must be a number in \[0, 1\], e\.g\. 0\.2 for the top 20 %, got 'most'$"),
    (lambda: top_share([1.0], 20),
     r"^fraction must lie in \[0, 1\] \(0\.2 means the top 20 %\), got 20; did you mean 0\.2\?$"),
    (lambda: top_share([1.0], 100), r"got 100; did you mean 1\?$"),
    (lambda: top_share([1.0], 1.5), r"got 1\.5; did you mean 0\.015\?$"),
    (lambda: top_share([1.0], 2.0), r"got 2\.0; did you mean 0\.02\?$"),
    (lambda: top_share([1.0], 100.5), r"got 100\.5$"),
    (lambda: top_share([1.0], -0.5), r"got -0\.5$"),
    (lambda: discounted_sum([1.0], "ten"), r"^annual_rate must be a number such as 0\.1 for 10 % a year, got 'ten'$"),
    (lambda: discounted_sum([1.0], -1.0),
     r"^annual_rate must be a finite number > -1 \(0\.1 means 10 % a year\), got -1\.0$"),
    (lambda: discounted_sum(["a"], 0.1),
     r"^cash_by_day must be an array of daily cash amounts \(days along the last axis\); "
     r"got list that is not numeric$"),
    (lambda: discounted_sum(5.0, 0.1),
     r"^cash_by_day must have a day axis \(last axis\), e\.g\. shape \(days,\) or \(customers, days\)$"),
])
def test_error_messages_name_the_argument_and_the_fix(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()
