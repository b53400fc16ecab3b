"""How a fitted model tracks the data: repeat transactions over time, and the holdout by frequency.

The standard diagnostics of Fader, Hardie & Lee (2005): the model's expected cumulative repeat
transactions of the whole base, sum over customers of E[X(d - first day)], against the actual
count, day by day through calibration and holdout; and the conditional expectation of holdout
transactions E[X(T, T + t*) | x, t_x, T] averaged by calibration frequency x, against the actual
mean. Both use the day convention of :mod:`lab.fit.data` (a purchase on day d is at d - first day).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lab.fit.data import LogSummary
from lab.fit.predict import conditional_expected, expected_repeat

__all__ = ["Holdout", "holdout_check", "tracking", "FREQUENCY_CAP"]

#: Calibration frequencies at or above this are pooled in the by-frequency table (as in the papers' "7+").
FREQUENCY_CAP = 7


@dataclass(frozen=True)
class Holdout:
    """Actual against predicted repeat transactions in the holdout period."""

    length: float                     # in the time unit
    actual: float
    predicted: float
    per_customer: np.ndarray          # predicted holdout transactions of each customer
    by_frequency: pd.DataFrame        # x (0..7+), customers, actual_mean, predicted_mean


def holdout_check(summary: LogSummary, model: str, params: dict[str, float],
                  customers: pd.DataFrame | None = None) -> Holdout | None:
    """Predicted and actual holdout transactions, or None when the log has no holdout period."""
    if summary.holdout_end_day is None:
        return None
    c = summary.customers if customers is None else customers
    t = summary.holdout_length
    pred = conditional_expected(model, params, t, c["x"].to_numpy(), c["t_x"].to_numpy(), c["T"].to_numpy())
    pred = np.broadcast_to(pred, (len(c),)).astype(float)
    actual = c["x_holdout"].to_numpy(dtype=float)
    band = np.minimum(c["x"].to_numpy(), FREQUENCY_CAP).astype(int)
    frame = pd.DataFrame({"x": band, "actual": actual, "predicted": pred})
    table = frame.groupby("x").agg(customers=("actual", "size"), actual_mean=("actual", "mean"),
                                   predicted_mean=("predicted", "mean")).reset_index()
    table["x"] = [f"{v}+" if v == FREQUENCY_CAP else str(v) for v in table["x"]]
    return Holdout(t, float(actual.sum()), float(pred.sum()), pred, table)


def tracking(summary: LogSummary, model: str, params: dict[str, float], customers: pd.DataFrame | None = None,
             daily_repeat: np.ndarray | None = None, step_days: int = 7) -> pd.DataFrame:
    """Cumulative and per-period repeat transactions, actual against the model, every ``step_days``.

    The model's expected cumulative count at day e is sum over first days f of
    n_f * E[X((e - f) / unit)], a convolution of the customers' first days with E[X] evaluated once
    per elapsed day.
    """
    c = summary.customers if customers is None else customers
    daily = summary.daily_repeat if daily_repeat is None else daily_repeat
    start = summary.start_day
    span = daily.size
    first = (c["first_day"].to_numpy() - start).astype(np.int64)
    n_first = np.bincount(first, minlength=span)[:span].astype(float)
    ex = np.asarray(expected_repeat(model, params, np.arange(span, dtype=float) / summary.unit_days), dtype=float)
    model_cum = np.convolve(n_first, ex)[:span]
    actual_cum = np.cumsum(daily)
    ends = np.arange(step_days - 1, span, step_days)
    if ends.size == 0 or ends[-1] != span - 1:
        ends = np.r_[ends, span - 1]
    out = pd.DataFrame({"day": start + ends, "actual_cumulative": actual_cum[ends],
                        "model_cumulative": model_cum[ends]})
    out["actual"] = np.diff(np.r_[0.0, out["actual_cumulative"].to_numpy()])
    out["model"] = np.diff(np.r_[0.0, out["model_cumulative"].to_numpy()])
    out["holdout"] = out["day"] > summary.calibration_end_day
    return out
