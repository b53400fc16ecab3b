"""The fit of one transaction log, end to end, as plain data: summary, models, choice, spend, holdout.

:func:`fit_log` is what `lab fit` runs; :func:`fit_json` turns its result into the fit.json
contract (docs/FIT.md). With a segment column each segment is fitted on its own as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lab.errors import Diagnostic, LabError
from lab.fit.data import LogSummary, summarise
from lab.fit.estimate import Fit, choose_model, fit_gamma_gamma, fit_purchases
from lab.fit.holdout import Holdout, holdout_check

__all__ = ["FitOptions", "BaseFit", "FitResult", "fit_log", "fit_json", "MIN_CUSTOMERS"]

#: Fewer customers than this cannot pin down four parameters; the fit refuses rather than guess.
MIN_CUSTOMERS = 10
MIN_SPEND_CUSTOMERS = 5


@dataclass(frozen=True)
class FitOptions:
    """What `lab fit` was asked to do."""

    columns: dict[str, str | None] = field(default_factory=dict)
    until: str | None = None
    holdout_until: str | None = None
    time_unit: str = "weeks"
    model: str = "auto"


@dataclass(frozen=True)
class BaseFit:
    """The models fitted to one group of customers (the whole base, or one segment)."""

    name: str
    customers: pd.DataFrame
    models: dict[str, Fit]
    chosen: str
    reason: str
    spend: Fit
    spend_customers: int
    holdout: Holdout | None

    @property
    def purchase(self) -> Fit:
        return self.models[self.chosen]


@dataclass(frozen=True)
class FitResult:
    """Everything `lab fit` learnt from a log."""

    summary: LogSummary
    options: FitOptions
    base: BaseFit
    segments: dict[str, BaseFit]
    warnings: list[Diagnostic]


def _fit_group(name: str, c: pd.DataFrame, summary: LogSummary, options: FitOptions,
               warnings: list[Diagnostic]) -> BaseFit:
    where = f"segment '{name}'" if name != "all" else "the log"
    if len(c) < MIN_CUSTOMERS:
        raise LabError.at(summary.file, 1, 1, f"{where} has {len(c)} customer{'s' if len(c) != 1 else ''} in the "
                          "calibration "
                          f"period; at least {MIN_CUSTOMERS} are needed to fit the four parameters of a purchase model")
    x, t_x, T = (c[k].to_numpy(dtype=float) for k in ("x", "t_x", "T"))
    if not np.any(x > 0):
        if summary.calibration_end_day >= summary.last_day:  # a later --until would add nothing
            raise LabError.at(summary.file, 1, 1, f"no customer in {where} made a repeat purchase (each bought on "
                              f"one day only, up to the log's last date, {summary.day_label(summary.last_day)}), so "
                              "purchase rates and dropout cannot be told apart; a log to fit needs customers who "
                              "come back: give a log covering a longer period")
        raise LabError.at(summary.file, 1, 1, f"no customer in {where} made a repeat purchase in the calibration "
                          f"period (to {summary.day_label(summary.calibration_end_day)}), so purchase rates and "
                          "dropout cannot be told apart; give a later --until (the log runs to "
                          f"{summary.day_label(summary.last_day)})")
    names = ("bgnbd", "paretonbd") if options.model == "auto" else (options.model,)
    models: dict[str, Fit] = {}
    for m in names:
        models[m] = fit_purchases(m, x, t_x, T, start=models["bgnbd"].params if "bgnbd" in models else None)
    chosen, reason = choose_model(models)
    spenders = (x > 0) & (c["mean_repeat_spend"].to_numpy() > 0)
    if spenders.sum() < MIN_SPEND_CUSTOMERS:
        raise LabError.at(summary.file, 1, 1, f"only {int(spenders.sum())} customers in {where} have repeat "
                          "transactions with a "
                          f"positive amount; the spend model needs at least {MIN_SPEND_CUSTOMERS}")
    zero = int(((x > 0) & ~(c["mean_repeat_spend"].to_numpy() > 0)).sum())
    if zero:
        warnings.append(Diagnostic(summary.file, 1, 1, f"warning: {zero:,} customer{'s' if zero > 1 else ''} in "
                                   f"{where} spent nothing on "
                                   "their repeat transactions; left out of the spend model (Gamma-Gamma needs "
                                   "positive amounts)"))
    spend = fit_gamma_gamma(x[spenders], c["mean_repeat_spend"].to_numpy()[spenders])
    for f in (*models.values(), spend):
        for w in f.warnings:
            warnings.append(Diagnostic(summary.file, 1, 1, f"warning: {where}: {w}"))
    if spend.params["q"] <= 1.0:
        warnings.append(Diagnostic(summary.file, 1, 1, f"warning: {where}: the spend model's q = "
                                   f"{spend.params['q']:.3g} <= 1, "
                                   "so its mean spend is infinite (a few very large baskets?); scenario.yaml uses "
                                   "q = 1.01: review"))
    hold = holdout_check(summary, chosen, models[chosen].params, c)
    return BaseFit(name, c, models, chosen, reason, spend, int(spenders.sum()), hold)


def fit_log(path: str | Path, options: FitOptions) -> FitResult:
    """Summarise the log at ``path`` and fit the models to it (and to each segment, with a segment column)."""
    if options.model not in ("bgnbd", "paretonbd", "auto"):
        raise LabError.at("<command line>", 1, 1, f"--model must be bgnbd, paretonbd or auto, got '{options.model}'")
    summary = summarise(path, columns=options.columns, until=options.until, holdout_until=options.holdout_until,
                        time_unit=options.time_unit)
    warnings = list(summary.warnings)
    base = _fit_group("all", summary.customers, summary, options, warnings)
    segments: dict[str, BaseFit] = {}
    if summary.columns.get("segment") is not None:
        for name, group in summary.customers.groupby("segment", sort=True):
            segments[str(name)] = _fit_group(str(name), group, summary, options, warnings)
    return FitResult(summary, options, base, segments, warnings)


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _group_json(g: BaseFit) -> dict:
    return {
        "models": {m: {"params": {k: _num(v) for k, v in f.params.items()}, "se": {k: _num(v) for k, v in f.se.items()},
                       "log_likelihood": _num(f.log_likelihood), "bic": _num(f.bic), "converged": f.converged}
                   for m, f in g.models.items()},
        "chosen": g.chosen,
        "spend": {"params": {k: _num(v) for k, v in g.spend.params.items()},
                  "se": {k: _num(v) for k, v in g.spend.se.items()}, "log_likelihood": _num(g.spend.log_likelihood)},
        "holdout": {"actual_repeat_transactions": _num(g.holdout.actual) if g.holdout else None,
                    "predicted_repeat_transactions": _num(g.holdout.predicted) if g.holdout else None},
    }


def fit_json(res: FitResult) -> dict:
    """The fit.json document: the contract of docs/FIT.md (parameters in the stated time unit)."""
    s = res.summary
    out = {"data": {"sha256": s.sha256, "customers": int(len(s.customers)), "transactions": int(s.transactions),
                    "calibration_end": s.day_label(s.calibration_end_day),
                    "holdout_end": s.day_label(s.holdout_end_day),
                    "time_unit": s.time_unit}}
    out.update(_group_json(res.base))
    if res.segments:
        out["segments"] = {name: {"customers": int(len(g.customers)), **_group_json(g)}
                           for name, g in res.segments.items()}
    return out
