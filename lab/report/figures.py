"""The figures of a comparison report, one function per figure, each returning a matplotlib Figure.

Every figure is built on its own `matplotlib.figure.Figure` with an Agg canvas (no pyplot global
state), so figures can be drawn in parallel and the importer's backend is left alone. Conventions
shared by all figures, so a reader learns them once:

* each policy keeps one colour everywhere; the baseline is dark grey;
* lines are means over replications, translucent bands their pointwise 95% Student-t intervals
  (mean ± t(n-1) * sd / sqrt(n)); differences vs the baseline are paired replication by replication;
* when there are more policies than fit in one panel readably, each policy gets its own panel
  (small multiples, shared axes) with the baseline drawn in grey for reference.

The module runs past 500 lines because it holds every figure of the comparison
report, each a short function sharing one set of colours, formatters and panel
layouts; `FIGURES` lists them with their captions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter, PercentFormatter

from lab.metrics.outcomes import FOREST, REGISTRY
from lab.metrics.stats import t_quantile
from lab.metrics.tables import aggregation
from lab.report.text import (
    check_outcomes,
    display_scale,
    fmt_value,
    outcome_name,
    outcome_unit,
    span_words,
    unit_label,
)

if TYPE_CHECKING:
    from lab.experiment.compare import Comparison

__all__ = [
    "BASELINE_COLOUR", "FIGURES", "FOREST_OUTCOMES", "FigureSpec", "ci_band", "credit_policies", "format_axis",
    "has_cut_runs", "new_figure", "nothing_panel", "points_policies", "policy_colours",
    "fig_retention", "fig_customers_revenue", "fig_incremental_profit", "fig_points", "fig_credit", "fig_lorenz",
    "fig_revolving_door", "fig_flywheel", "fig_flywheel_share", "fig_forest",
]

BASELINE_COLOUR = "#3a3a3a"
# Okabe-Ito colour-blind-safe hues (yellow dropped: invisible in print), then Tol's muted extras
_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#999933", "#44AA99")
MAX_OVERLAY = 3  # policies drawn together in one panel; beyond this, small multiples
FOREST_OUTCOMES = FOREST  # the outcomes of the forest plot, named in lab.metrics.outcomes
_LEVEL = 0.95


# --------------------------------------------------------------------------- #
# shared pieces
# --------------------------------------------------------------------------- #
def policy_colours(comp: Comparison) -> dict[str, str]:
    """One colour per policy, the same in every figure: the baseline dark grey, the others in comparison order."""
    out = {comp.baseline: BASELINE_COLOUR}
    others = [p for p in comp.policies if p != comp.baseline]
    for i, p in enumerate(others):
        out[p] = _PALETTE[i % len(_PALETTE)]
    return out


def ci_band(values: np.ndarray, level: float = _LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise mean over replications (rows) and its Student-t interval, ignoring NaN.

    Returns (mean, low, high); the bounds are NaN where fewer than two replications are finite.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    ok = np.isfinite(x)
    n = ok.sum(axis=0)
    filled = np.where(ok, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, filled.sum(axis=0) / np.maximum(n, 1), np.nan)
        dev = np.where(ok, x - mean, 0.0)
        var = (dev ** 2).sum(axis=0) / np.maximum(n - 1, 1)
        t = t_quantile(level, np.maximum(n - 1, 1))
        half = np.where(n >= 2, t * np.sqrt(var / np.maximum(n, 1)), np.nan)
    return mean, mean - half, mean + half


def points_policies(comp: Comparison) -> list[str]:
    """Policies that keep a points (or stamps) ledger."""
    return [p for p in comp.policies if comp.loaded.policies[p].policy.points]


def credit_policies(comp: Comparison) -> list[str]:
    """Policies that lend store credit."""
    return [p for p in comp.policies if comp.loaded.policies[p].policy.credit]


def has_cut_runs(comp: Comparison) -> bool:
    """True when the comparison also ran every policy with the flywheel cut."""
    return any(r.task.cut for r in comp.results)


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained", dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _period_words(comp: Comparison) -> str:
    return f"per {comp.loaded.scenario.period_days}-day period"


def _step_decimals(locs: np.ndarray) -> int:
    """Fewest decimals (0-3) that write every tick exactly enough to tell them apart (2.5 needs one)."""
    locs = locs[np.isfinite(locs)]
    for d in range(4):
        scaled = locs * 10 ** d
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6 * max(1.0, float(np.abs(scaled).max(initial=0)))):
            return d
    return 3


class _MoneyFormatter(Formatter):
    """Dollar tick labels in one style per axis: $, $k or $M, with as many decimals as the tick step needs."""

    def __init__(self) -> None:
        self.div, self.suffix, self.decimals = 1.0, "", 0

    def set_locs(self, locs: list[float]) -> None:
        super().set_locs(locs)
        finite = [abs(v) for v in locs if math.isfinite(v)]
        top = max(finite, default=0.0)
        self.div, self.suffix = (1e6, "M") if top >= 1e6 else (1e3, "k") if top >= 1e3 else (1.0, "")
        self.decimals = _step_decimals(np.asarray(locs, dtype=float) / self.div)

    def __call__(self, v: float, pos: object = None) -> str:
        if v == 0:
            return "$0"
        sign = "-" if v < 0 else ""
        return f"{sign}${abs(v) / self.div:,.{self.decimals}f}{self.suffix}"


class _CountFormatter(Formatter):
    """Counts with thousands separators, and decimals only when the ticks are closer than 1 apart."""

    def __init__(self) -> None:
        self.decimals = 0

    def set_locs(self, locs: list[float]) -> None:
        super().set_locs(locs)
        self.decimals = _step_decimals(np.asarray(locs, dtype=float))

    def __call__(self, v: float, pos: object = None) -> str:
        return f"{v:,.{self.decimals}f}"


def format_axis(axis: Axis, unit: str) -> None:
    """Tick labels in the unit: dollars with separators, shares as percent, counts with separators."""
    if unit == "$":
        axis.set_major_formatter(_MoneyFormatter())
    elif unit == "%":
        axis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    elif unit == "count":
        axis.set_major_formatter(_CountFormatter())


def _grid(container: Figure | SubFigure, k: int, sharey: bool = True, sharex: bool = True,
          ncols: int | None = None, inner_labels: bool = True) -> list[Axes]:
    """k panels in a compact grid (up to four columns); unused cells are removed.

    Shared axes still get tick labels on every panel unless `inner_labels` is off (then only the first column).
    """
    if ncols is None:
        ncols = _columns(k)
    nrows = math.ceil(k / ncols)
    axes = container.subplots(nrows, ncols, sharey=sharey, sharex=sharex, squeeze=False).ravel()
    for ax in axes[k:]:
        container.delaxes(ax)
    for i, ax in enumerate(axes[:k]):
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.yaxis.set_tick_params(labelleft=inner_labels or i % ncols == 0)
    return list(axes[:k])


def _columns(k: int) -> int:
    return k if k <= 3 else (2 if k == 4 else (3 if k <= 6 else 4))


def _policy_panels(container: Figure | SubFigure, comp: Comparison, policies: Sequence[str],
                   reference: str | None) -> list[tuple[Axes, list[str]]]:
    """One panel with all `policies`, or, when there are too many, one panel each with `reference` beside it."""
    policies = list(policies)
    if len(policies) <= MAX_OVERLAY:
        (ax,) = _grid(container, 1)
        return [(ax, policies)]
    own = [p for p in policies if p != reference]
    axes = _grid(container, len(own))
    out = []
    for ax, p in zip(axes, own):
        drawn = [reference, p] if reference is not None and reference in comp.policies else [p]
        ax.set_title(p if len(drawn) == 1 else f"{p} vs {reference}", fontsize=10)
        out.append((ax, drawn))
    return out


def _draw(ax: Axes, x: np.ndarray, mat: np.ndarray, colour: str, label: str, band: bool = True,
          lw: float = 1.8) -> np.ndarray:
    """A mean line with its translucent 95% band; returns what was drawn (mean, low, high) as rows."""
    mean, lo, hi = ci_band(mat)
    keep = np.isfinite(mean)
    ax.plot(x[keep], mean[keep], color=colour, lw=lw, label=label)
    if band and mat.shape[0] >= 2:
        ok = keep & np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(x[ok], lo[ok], hi[ok], color=colour, alpha=0.18, lw=0)
    else:
        lo = hi = mean
    return np.vstack([mean, lo, hi])


def _tame_opening(ax: Axes, x: np.ndarray, drawn: Sequence[np.ndarray], fmt: Callable[[float], str]) -> None:
    """Keep a first period far off the scale of the rest (e.g. the opening customers' first purchases)
    from flattening every later difference: the axis is fitted to the rest and the first value is written on."""
    if not drawn or len(x) < 3:
        return
    first = np.array([d[0, 0] for d in drawn], dtype=float)
    rest = np.concatenate([d[:, 1:].ravel() for d in drawn])
    rest = rest[np.isfinite(rest)]
    first = first[np.isfinite(first)]
    if rest.size == 0 or first.size == 0:
        return
    lo, hi = float(rest.min()), float(rest.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    top, bottom = float(first.max()), float(first.min())
    if top <= hi + 3 * span and bottom >= lo - 3 * span:
        return
    ax.set_ylim(lo - 0.1 * span, hi + 0.35 * span)
    off = top if top > hi + 3 * span else bottom
    ax.annotate(f"first period off the scale: {fmt(off)}",
                xy=(x[0], hi + 0.33 * span if off > hi else lo - 0.08 * span),
                xytext=(6, -2 if off > hi else 2), textcoords="offset points", fontsize=8, color="#444444",
                va="top" if off > hi else "bottom", annotation_clip=False)


def _legend(fig: Figure, comp: Comparison, policies: Sequence[str], extra: Sequence[tuple[Artist, str]] = ()) -> None:
    """One legend for the whole figure, below the panels, in comparison order."""
    colours = policy_colours(comp)
    handles: list[Artist] = [Line2D([], [], color=colours[p], lw=2.2) for p in policies]
    labels = [p + (" (baseline)" if p == comp.baseline else "") for p in policies]
    for h, lab in extra:
        handles.append(h)
        labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 8), frameon=False, fontsize=9)


def nothing_panel(fig: Figure, title: str, message: str, xlabel: str, ylabel: str) -> Figure:
    """An honest empty panel: what would be here, and why it is not."""
    ax = fig.subplots()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=11, wrap=True,
            color="#555555")
    return fig


def _series(comp: Comparison, policy: str, column: str, complete: bool = False,
            period_days: int | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Day at each period's end and a replications x periods matrix of one column (flywheel whole).

    With `complete`, a period shorter than the others is left out (the last one, cut at the horizon, and the
    warm-up's last, cut at the launch: lab.metrics.tables.period_starts), since a flow summed over a partial
    period would look like a collapse.
    """
    f = comp.frames("timeseries", policy, columns=["period", "day_start", "day_end", column])
    if complete and period_days is not None:
        f = f[(f["day_end"] - f["day_start"]) >= period_days]
    mat = f.pivot_table(index="replication", columns="period", values=column, aggfunc="first", dropna=False)
    mat = mat.sort_index(axis=1)
    day_end = f.groupby("period")["day_end"].first().reindex(mat.columns).to_numpy(dtype=float)
    return day_end, mat


def _paired(mat_a: pd.DataFrame, mat_b: pd.DataFrame) -> np.ndarray:
    """Row-by-row difference a - b over the replications both have (common random numbers pair them)."""
    reps = mat_a.index.intersection(mat_b.index)
    cols = mat_a.columns.intersection(mat_b.columns)
    return mat_a.loc[reps, cols].to_numpy(dtype=float) - mat_b.loc[reps, cols].to_numpy(dtype=float)


def _time_axis(ax: Axes) -> None:
    ax.set_xlabel("day of the run (days)")
    ax.grid(True, alpha=0.3)


# --------------------------------------------------------------------------- #
# 1. retention
# --------------------------------------------------------------------------- #
def fig_retention(comp: Comparison) -> Figure:
    """Share of customers still active by tenure, per policy, with 95% bands (censored at the run's end)."""
    colours = policy_colours(comp)
    many = len(comp.policies) > MAX_OVERLAY
    fig = new_figure(11 if many else 8, 6.2 if many else 4.8)
    for ax, pols in _policy_panels(fig, comp, comp.policies, comp.baseline):
        for p in pols:
            f = comp.frames("retention", p)
            mat = f.pivot_table(index="replication", columns="tenure_days", values="retained", aggfunc="first")
            _draw(ax, mat.columns.to_numpy(dtype=float), mat.to_numpy(dtype=float), colours[p], p)
        ax.set_xlabel("tenure since acquisition (days)")
        ax.set_ylabel("customers still active (%)")
        format_axis(ax.yaxis, "%")
        ax.grid(True, alpha=0.3)
    fig.suptitle("Retention: share of customers still buying, by how long they have been customers")
    _legend(fig, comp, comp.policies)
    return fig


# --------------------------------------------------------------------------- #
# 2. active customers and revenue
# --------------------------------------------------------------------------- #
def fig_customers_revenue(comp: Comparison) -> Figure:
    """Active customers and revenue per period over time, per policy, with 95% bands."""
    colours = policy_colours(comp)
    many = len(comp.policies) > MAX_OVERLAY
    pd_ = comp.loaded.scenario.period_days
    fig = new_figure(12 if many else 11, 9.5 if many else 4.6)
    subs = fig.subfigures(2, 1, squeeze=False).ravel() if many else fig.subfigures(1, 2, squeeze=False).ravel()
    panels = (("alive", "active customers", "count", False, "Active customers (at each period's end)"),
              ("revenue", "revenue per period ($)", "$", True, f"Revenue {_period_words(comp)}"))
    for sub, (col, ylabel, unit, complete, title) in zip(subs, panels):
        for ax, pols in _policy_panels(sub, comp, comp.policies, comp.baseline):
            drawn = []
            for p in pols:
                x, mat = _series(comp, p, col, complete=complete, period_days=pd_)
                drawn.append(_draw(ax, x, mat.to_numpy(dtype=float), colours[p], p))
            if unit == "$":
                _tame_opening(ax, x, drawn, lambda v: fmt_value(v, "$"))
            _time_axis(ax)
            ax.set_ylabel(ylabel)
            format_axis(ax.yaxis, unit)
        sub.suptitle(title, fontsize=11)
    fig.suptitle("Customers and revenue over time", fontweight="bold")
    _legend(fig, comp, comp.policies)
    return fig


# --------------------------------------------------------------------------- #
# 3. cumulative incremental net profit
# --------------------------------------------------------------------------- #
def fig_incremental_profit(comp: Comparison) -> Figure:
    """Cumulative net profit of each policy minus the baseline's, paired by replication, with 95% bands."""
    colours = policy_colours(comp)
    others = [p for p in comp.policies if p != comp.baseline]
    many = len(others) > MAX_OVERLAY
    fig = new_figure(11 if many else 8, 6.4 if many else 4.8)
    x, base = _series(comp, comp.baseline, "net_profit")
    for ax, pols in _policy_panels(fig, comp, others, None):
        for p in pols:
            _, mat = _series(comp, p, "net_profit")
            diff = np.cumsum(np.nan_to_num(_paired(mat, base)), axis=1)
            _draw(ax, x[: diff.shape[1]], diff, colours[p], p)
        ax.axhline(0.0, color=BASELINE_COLOUR, lw=1.0, ls="--")
        _time_axis(ax)
        ax.set_ylabel(f"cumulative net profit vs {comp.baseline} ($)")
        format_axis(ax.yaxis, "$")
    fig.suptitle(f"Cumulative extra net profit compared with {comp.baseline} (paired replications)")
    _legend(fig, comp, others,
            extra=[(Line2D([], [], color=BASELINE_COLOUR, lw=1, ls="--"), f"{comp.baseline} (zero)")])
    return fig


# --------------------------------------------------------------------------- #
# 4. points liability and breakage
# --------------------------------------------------------------------------- #
def fig_points(comp: Comparison) -> Figure:
    """Points liability over time per points policy, and each one's breakage rate with its 95% interval."""
    pols = points_policies(comp)
    if not pols:
        fig = new_figure(8, 3.2)
        return nothing_panel(fig, "Points liability and breakage",
                        "No policy in this comparison keeps points,\nso there is no liability and no breakage to show.",
                        "day of the run (days)", "points liability ($)")
    colours = policy_colours(comp)
    many = len(pols) > MAX_OVERLAY
    fig = new_figure(12, 6.4 if many else 4.6)
    left, right = fig.subfigures(1, 2, width_ratios=[2.0, 1.0], squeeze=False).ravel()
    for ax, drawn in _policy_panels(left, comp, pols, None):
        for p in drawn:
            x, mat = _series(comp, p, "points_liability")
            _draw(ax, x, mat.to_numpy(dtype=float), colours[p], p)
            if all(led.value == 0 for led in comp.loaded.policies[p].policy.points.values()):
                ax.text(0.02, 0.96 - 0.07 * drawn.index(p), f"{p}: points valued at $0 (no liability)",
                        transform=ax.transAxes, fontsize=8, va="top", color=colours[p])
        _time_axis(ax)
        ax.set_ylabel("points liability ($)")
        format_axis(ax.yaxis, "$")
    left.suptitle("Liability: the value of points earned but not yet spent", fontsize=11)
    ax = right.subplots()
    pos = np.arange(len(pols))
    for i, p in enumerate(pols):
        iv = comp.interval(p, "breakage_rate")
        if not math.isfinite(iv.mean):
            ax.text(i, 0.01, "none expired\nor redeemed yet", ha="center", va="bottom", fontsize=8, rotation=90)
            continue
        err = None
        if math.isfinite(iv.half_width):
            err = [[iv.mean - max(iv.ci_low, 0.0)], [min(iv.ci_high, 1.0) - iv.mean]]
        ax.bar(i, iv.mean, color=colours[p], alpha=0.85, yerr=err, capsize=4, ecolor="#222222")
        ax.text(i, iv.mean, f" {iv.mean:.0%}", ha="center", va="bottom", fontsize=9)
    rates = [comp.interval(p, "breakage_rate").mean for p in pols]
    if all(not math.isfinite(r) or r == 0 for r in rates):
        ax.text(0.5, 0.5,
                "Breakage is 0% for every policy:\nno points expired during the run\n(expiry may lie beyond its end).",
                transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#555555")
    ax.set_xticks(pos, pols, rotation=30 if len(pols) > 2 else 0, ha="right" if len(pols) > 2 else "center")
    ax.set_ylim(0, 1.05)
    format_axis(ax.yaxis, "%")
    ax.set_xlabel("policy")
    ax.set_ylabel("breakage: expired / (expired + redeemed) (%)")
    ax.grid(True, axis="y", alpha=0.3)
    right.suptitle("Breakage: points that die unspent", fontsize=11)
    fig.suptitle("Points: a system of hope, and of breakage", fontweight="bold")
    _legend(fig, comp, pols)
    return fig


# --------------------------------------------------------------------------- #
# 5. credit
# --------------------------------------------------------------------------- #
def fig_credit(comp: Comparison) -> Figure:
    """Credit outstanding and cumulative bad debt over time per credit policy, with 95% bands."""
    pols = credit_policies(comp)
    if not pols:
        fig = new_figure(8, 3.2)
        return nothing_panel(fig, "Store credit and bad debt",
                        "No policy in this comparison lends store credit,\n"
                        "so there is no balance and no bad debt to show.",
                        "day of the run (days)", "credit outstanding ($)")
    colours = policy_colours(comp)
    many = len(pols) > MAX_OVERLAY
    fig = new_figure(12, 9.5 if many else 4.6)
    subs = fig.subfigures(2, 1, squeeze=False).ravel() if many else fig.subfigures(1, 2, squeeze=False).ravel()
    specs = (("credit_outstanding", False, "credit owed by customers ($)", "Credit outstanding"),
             ("bad_debt", True, "bad debt written off, cumulative ($)", "Cumulative bad debt"))
    for sub, (col, cumulative, ylabel, title) in zip(subs, specs):
        for ax, drawn in _policy_panels(sub, comp, pols, None):
            for p in drawn:
                x, mat = _series(comp, p, col)
                m = mat.to_numpy(dtype=float)
                if cumulative:
                    m = np.cumsum(np.nan_to_num(m), axis=1)
                _draw(ax, x, m, colours[p], p)
            _time_axis(ax)
            ax.set_ylabel(ylabel)
            format_axis(ax.yaxis, "$")
        sub.suptitle(title, fontsize=11)
    fig.suptitle("Store credit: balances grow, and some never come back", fontweight="bold")
    _legend(fig, comp, pols)
    return fig


# --------------------------------------------------------------------------- #
# 6. Lorenz curve
# --------------------------------------------------------------------------- #
def fig_lorenz(comp: Comparison) -> Figure:
    """Lorenz curves of revenue across customers per policy, and the top 20%'s share of revenue with its interval."""
    colours = policy_colours(comp)
    fig = new_figure(12, 5.2)
    ax, bx = fig.subplots(1, 2, width_ratios=[1.25, 1.0])
    ax.plot([0, 1], [0, 1], color="#888888", ls="--", lw=1, label="perfect equality")
    for p in comp.policies:
        f = comp.frames("lorenz", p)
        mat = f.pivot_table(index="replication", columns="customer_share", values="revenue_share", aggfunc="first")
        _draw(ax, mat.columns.to_numpy(dtype=float), mat.to_numpy(dtype=float), colours[p], p,
              lw=2.4 if p == comp.baseline else 1.5)
    ax.axvline(0.8, color="#888888", lw=0.8, ls=":")
    base_share = comp.interval(comp.baseline, "top20_revenue_share").mean
    if math.isfinite(base_share):
        ax.annotate(f"top 20% of customers\nbring {base_share:.0%} of revenue\n({comp.baseline})",
                    xy=(0.8, 1 - base_share), xytext=(0.12, 0.62), fontsize=9,
                    arrowprops={"arrowstyle": "->", "color": "#444444"})
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    format_axis(ax.xaxis, "%")
    format_axis(ax.yaxis, "%")
    ax.set_xlabel("customers, from lowest to highest spend (cumulative %)")
    ax.set_ylabel("revenue (cumulative %)")
    ax.set_title("Lorenz curve of revenue")
    ax.grid(True, alpha=0.3)
    pos = np.arange(len(comp.policies))
    for i, p in enumerate(comp.policies):
        iv = comp.interval(p, "top20_revenue_share")
        if not math.isfinite(iv.mean):
            continue
        err = [[iv.half_width], [iv.half_width]] if math.isfinite(iv.half_width) else None
        bx.barh(i, iv.mean, height=0.6, color=colours[p], alpha=0.85, xerr=err, capsize=4, ecolor="#222222")
        bx.text(min(iv.mean + (iv.half_width if math.isfinite(iv.half_width) else 0), 1.0) + 0.01, i,
                f"{iv.mean:.0%}", va="center", fontsize=9)
    bx.axvline(0.8, color="#888888", ls="--", lw=1)
    bx.text(0.8, 0.99, " the 80/20 rule", fontsize=8, color="#555555", va="top", transform=bx.get_xaxis_transform())
    bx.set_yticks(pos, comp.policies)
    bx.invert_yaxis()
    bx.set_xlim(0, 1.08)
    format_axis(bx.xaxis, "%")
    bx.set_xlabel("share of revenue from the top 20% of customers (%)")
    bx.set_ylabel("policy")
    bx.set_title("Top 20%'s share of revenue (95% CI)")
    bx.grid(True, axis="x", alpha=0.3)
    fig.suptitle("The 80/20 rule: a few customers bring most of the revenue", fontweight="bold")
    _legend(fig, comp, comp.policies, extra=[(Line2D([], [], color="#888888", ls="--", lw=1), "perfect equality")])
    return fig


# --------------------------------------------------------------------------- #
# 7. revolving door
# --------------------------------------------------------------------------- #
def fig_revolving_door(comp: Comparison) -> Figure:
    """Customers acquired (up) and lost (down) per period, and the net change, one panel per policy."""
    colours = policy_colours(comp)
    pd_ = comp.loaded.scenario.period_days
    k = len(comp.policies)
    ncols = _columns(k)
    fig = new_figure(min(max(4.2 * ncols, 10.0), 15), 3.4 * math.ceil(k / ncols) + 1.1)
    axes = _grid(fig, k)
    for ax, p in zip(axes, comp.policies):
        x, acq = _series(comp, p, "acquired", complete=True, period_days=pd_)
        _, lost = _series(comp, p, "lost", complete=True, period_days=pd_)
        a = ci_band(acq.to_numpy(dtype=float))[0]
        lo = ci_band(lost.to_numpy(dtype=float))[0]
        _bars(ax, x - pd_ / 2, a, pd_ * 0.85, colours[p], alpha=0.85)
        _bars(ax, x - pd_ / 2, -lo, pd_ * 0.85, colours[p], alpha=0.4)
        _draw(ax, x - pd_ / 2, acq.to_numpy(dtype=float) - lost.to_numpy(dtype=float), "#111111", "net change",
              lw=1.3)
        ax.axhline(0, color="#111111", lw=0.6)
        tot_a = comp.interval(p, "acquired").mean
        tot_l = comp.interval(p, "lost").mean
        ax.set_title(f"{p}{' (baseline)' if p == comp.baseline else ''}: +{tot_a:,.0f} in, -{tot_l:,.0f} out, "
                     f"net {tot_a - tot_l:+,.0f}", fontsize=9.5, color=colours[p])
        _time_axis(ax)
        ax.set_ylabel(f"customers {_period_words(comp)}")
    fig.suptitle(f"The revolving door: customers won (up) and lost (down) each period\n"
                 f"(panel titles: totals over {span_words(comp)})", fontweight="bold")
    fig.legend([Patch(color="#777777", alpha=0.85), Patch(facecolor="#777777", alpha=0.4),
                Line2D([], [], color="#111111", lw=1.3)],
               ["acquired (bars up)", "lost (bars down)", "net change (line, with 95% band)"],
               loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    return fig


def _bars(ax: Axes, x: np.ndarray, height: np.ndarray, width: float, colour: str, alpha: float) -> None:
    """Bars centred on `x` from 0 to `height`, drawn as one collection: the bars `ax.bar` draws (no edges, each
    corner where its rectangle has it), at a fraction of its cost for the hundreds of periods of a long run (one
    artist, not a patch per bar)."""
    if len(x):  # the width as Axes.bar converts it, measured from the first bar's position
        width = (x[0] + width) - x[0]
    height = height + 0.0  # (and the heights from 0: a height of -0.0 is 0.0 there)
    left = x - width / 2
    right = left + width  # (as Axes.bar's rectangle has it: its left edge, its width on)
    zero = np.zeros_like(height)
    verts = np.stack([np.stack(c, axis=1) for c in ((left, zero), (left, height), (right, height), (right, zero))],
                     axis=1)
    bars = PolyCollection(list(verts), facecolors=colour, edgecolors="none", alpha=alpha)
    bars.sticky_edges.y.append(0.0)  # as each bar of Axes.bar: no margin below bars that all start at 0
    ax.add_collection(bars, autolim=True)
    ax.autoscale_view()


# --------------------------------------------------------------------------- #
# 8. the flywheel
# --------------------------------------------------------------------------- #
_LINKS = (  # column, panel title, axis label, tick unit, cumulative
    ("repeat_sales_share", "1. repeat sales", "share of sales from repeat buyers (%)", "%", False),
    ("market_share", "2. market share", "share of the market's spend (%)", "%", False),
    ("unit_cost_factor", "3. unit cost (learning curve)", "unit cost (× starting cost)", "", False),
    ("margin", "4. gross margin", "gross profit / revenue (%)", "%", False),
    ("profit_sharing", "5. profit sharing", "paid to staff ($ per period)", "$", False),
    ("staff_satisfaction", "6. staff satisfaction", "staff satisfaction (0-1 scale)", "", False),
    ("staff_quits", "7. staff quits", "staff who quit, cumulative (people)", "count", True),
    ("service_quality", "8. service quality", "service quality (0-1 scale)", "", False),
    ("customer_satisfaction", "9. customer satisfaction", "customer satisfaction (0-1 scale)", "", False),
)


def fig_flywheel(comp: Comparison) -> Figure:
    """The flywheel, link by link: one panel per link of the loop, one line per policy."""
    colours = policy_colours(comp)
    band = len(comp.policies) <= MAX_OVERLAY
    fig = new_figure(13, 10.5)
    axes = _grid(fig, len(_LINKS), sharey=False, ncols=3)
    for ax, (col, title, ylabel, unit, cumulative) in zip(axes, _LINKS):
        flow = aggregation(col) == "sum" and not cumulative  # summed per period: a short period would dip
        for p in comp.policies:
            x, mat = _series(comp, p, col, complete=flow, period_days=comp.loaded.scenario.period_days)
            m = mat.to_numpy(dtype=float)
            if cumulative:
                m = np.cumsum(np.nan_to_num(m), axis=1)
            _draw(ax, x, m, colours[p], p, band=band, lw=2.2 if p == comp.baseline else 1.5)
        ax.set_title(title, fontsize=10)
        _time_axis(ax)
        ax.set_ylabel(ylabel, fontsize=9)
        format_axis(ax.yaxis, unit)
    fig.suptitle("The flywheel, link by link: repeat sales → market share → lower unit cost → margin → "
                 "profit sharing →\nstaff satisfaction → fewer quits → better service → customer satisfaction → "
                 "repeat sales",
                 fontsize=11, fontweight="bold")
    _legend(fig, comp, comp.policies)
    return fig


# --------------------------------------------------------------------------- #
# 9. flywheel share
# --------------------------------------------------------------------------- #
def fig_flywheel_share(comp: Comparison) -> Figure:
    """Share of each policy's net-profit effect that travels round the loop, and the effect with the loop whole vs
    cut."""
    others = [p for p in comp.policies if p != comp.baseline]
    if not has_cut_runs(comp):
        fig = new_figure(8, 3.2)
        return nothing_panel(fig, "The flywheel's share of each effect",
                        "This comparison did not run the policies with the flywheel cut\n"
                        "(run it with the flywheel split on to see this).", "policy",
                        "share of effect via the loop (%)")
    colours = policy_colours(comp)
    fig = new_figure(12, 5.0)
    ax, bx = fig.subplots(1, 2, width_ratios=[1.0, 1.4])
    pos = np.arange(len(others))
    lim_lo, lim_hi = -0.5, 1.0
    undefined = False
    for i, p in enumerate(others):
        share = comp.flywheel_share(p)  # None when not meaningful (lab.metrics.flywheel_share)
        if share is None or not math.isfinite(share.mean):
            undefined = True
            ax.text(i, 0.02, "n/a*", ha="center", va="bottom", fontsize=9, color="#555555")
            continue
        err = [[share.mean - share.ci_low], [share.ci_high - share.mean]] if math.isfinite(share.half_width) else None
        ax.bar(i, share.mean, width=0.6, color=colours[p], alpha=0.85, yerr=err, capsize=4, ecolor="#222222")
        top = share.ci_high if math.isfinite(share.ci_high) else share.mean
        ax.text(i, top, f"{share.mean:.0%}", va="bottom", ha="center", fontsize=9)
        lim_lo = min(lim_lo, share.ci_low if math.isfinite(share.ci_low) else share.mean)
        lim_hi = max(lim_hi, share.ci_high if math.isfinite(share.ci_high) else share.mean)
    ax.axhline(0, color="#111111", lw=0.8)
    ax.set_xlim(-0.5 - 0.3 * (len(others) < 3), len(others) - 0.5 + 0.3 * (len(others) < 3))
    ax.set_ylim(max(lim_lo, -3.0) - 0.1, min(lim_hi, 4.0) + 0.15)
    if undefined:
        ax.text(0.01, 0.01, "* n/a: not meaningful, as the effect on net profit is not clearly\n"
                "   different from $0 (the report's economics table says why)",
                transform=ax.transAxes, fontsize=8, color="#555555", va="bottom")
    ax.set_xticks(pos, others, rotation=30 if len(others) > 3 else 0, ha="right" if len(others) > 3 else "center")
    format_axis(ax.yaxis, "%")
    ax.set_xlabel("policy")
    ax.set_ylabel("share of net-profit effect via the loop (%)")
    ax.set_title("Share travelling round the flywheel (95% CI)", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    w = 0.3 if len(others) < 3 else 0.38
    bx.set_xlim(-0.5 - 0.3 * (len(others) < 3), len(others) - 0.5 + 0.3 * (len(others) < 3))
    for i, p in enumerate(others):
        for j, cut in enumerate((False, True)):
            d = comp.difference(p, "net_profit", cut=cut)
            if not math.isfinite(d.mean):
                continue
            err = [[d.half_width], [d.half_width]] if math.isfinite(d.half_width) else None
            bx.bar(i + (j - 0.5) * w, d.mean, width=w, color=colours[p], alpha=0.9 if not cut else 0.4,
                   hatch="///" if cut else None, edgecolor="white" if cut else None, yerr=err, capsize=3,
                   ecolor="#222222")
    bx.axhline(0, color="#111111", lw=0.8)
    bx.set_xticks(pos, others, rotation=30 if len(others) > 3 else 0, ha="right" if len(others) > 3 else "center")
    format_axis(bx.yaxis, "$")
    bx.set_xlabel("policy")
    bx.set_ylabel(f"net profit vs {comp.baseline} ($)")
    bx.set_title("Effect on net profit: loop whole (solid) vs loop cut (hatched)", fontsize=10)
    bx.grid(True, axis="y", alpha=0.3)
    fig.suptitle("How much of each effect travels round the flywheel", fontweight="bold")
    fig.legend([Patch(color="#777777", alpha=0.9),
                Patch(facecolor="#777777", alpha=0.4, hatch="///", edgecolor="white")],
               ["flywheel whole", "flywheel cut (service quality frozen)"], loc="outside lower center", ncols=2,
               frameon=False, fontsize=9)
    return fig


# --------------------------------------------------------------------------- #
# 10. forest plot
# --------------------------------------------------------------------------- #
def fig_forest(comp: Comparison, outcomes: Sequence[str] = FOREST_OUTCOMES) -> Figure:
    """Paired differences vs the baseline for the headline outcomes, with 95% intervals; filled where they exclude
    zero."""
    check_outcomes(outcomes)
    colours = policy_colours(comp)
    others = [p for p in comp.policies if p != comp.baseline]
    k = len(outcomes)
    ncols = 3 if k > 4 else min(k, 2)
    nrows = math.ceil(k / ncols)
    fig = new_figure(13, nrows * (0.42 * len(others) + 1.7) + 0.8)
    axes = _grid(fig, k, sharey=True, sharex=False, ncols=ncols)
    pos = np.arange(len(others))
    for ax, o in zip(axes, outcomes):
        unit = outcome_unit(o)
        scale = display_scale(unit)
        any_finite = False
        for i, p in enumerate(others):
            d = comp.difference(p, o)
            if not math.isfinite(d.mean):
                continue
            any_finite = True
            filled = d.excludes_zero
            err = [[d.half_width * scale], [d.half_width * scale]] if math.isfinite(d.half_width) else None
            ax.errorbar(d.mean * scale, i, xerr=err, fmt="o", color=colours[p], ms=7, capsize=4, lw=1.6,
                        mfc=colours[p] if filled else "white", mew=1.6)
        ax.axvline(0, color=BASELINE_COLOUR, lw=1, ls="--")
        hib = REGISTRY[o].higher_is_better if o in REGISTRY else None
        direction = " (higher is better)" if hib is True else " (lower is better)" if hib is False else ""
        ax.set_title(outcome_name(o) + direction, fontsize=10)
        ax.set_xlabel(f"difference vs {comp.baseline} ({unit_label(unit, difference=True)})")
        ax.set_ylabel("policy")
        if unit == "$":
            format_axis(ax.xaxis, "$")
        ax.grid(True, axis="x", alpha=0.3)
        if not any_finite:
            ax.text(0.5, 0.5, "not measurable in this run", transform=ax.transAxes, ha="center", va="center",
                    color="#555555")
    axes[0].set_yticks(pos, others)
    axes[0].set_ylim(len(others) - 0.5, -0.5)
    fig.suptitle(f"Differences vs {comp.baseline}, paired by replication (95% CI)", fontweight="bold")
    fig.legend([Line2D([], [], marker="o", color="#555555", ls="", ms=7),
                Line2D([], [], marker="o", color="#555555", mfc="white", ls="", ms=7)],
               ["interval excludes zero (a clear difference)", "interval includes zero"],
               loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    return fig


# --------------------------------------------------------------------------- #
# the list the report walks through
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report: its file stem, its title, how to draw it, what to look for, when it applies, and
    (``detail``) what this comparison's figure shows, in numbers, appended to the caption."""

    name: str
    title: str
    draw: Callable[[Comparison], Figure]
    caption: str
    applies: Callable[[Comparison], bool] | None = None
    skipped: str = ""
    detail: Callable[[Comparison], str] | None = None


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("forest", "Differences vs the baseline", fig_forest,
               "Filled dots are differences whose 95% interval excludes zero; a hollow dot is a difference the "
               "replications cannot tell from nothing, however large its mean."),
    FigureSpec("incremental_profit", "Cumulative extra net profit", fig_incremental_profit,
               "Programmes often cost money first and pay later: look for where each line crosses zero and "
               "whether its band has left zero by the end."),
    FigureSpec("customers_revenue", "Customers and revenue over time", fig_customers_revenue,
               "A programme that keeps customers shows as a slower decline in active customers; revenue per period "
               "shows whether the extra visits outweigh the discounts."),
    FigureSpec("retention", "Retention curves", fig_retention,
               "A programme that keeps customers lifts its curve above the grey baseline's; judge each gap against "
               "the width of the bands, which widen at long tenures because few customers have been observed "
               "that long."),
    FigureSpec("revolving_door", "The revolving door", fig_revolving_door,
               "Marketing pours customers in while others quietly leave; a loyalty programme "
               "earns its keep by shrinking the downward bars, not by adding to the upward ones."),
    FigureSpec("lorenz", "The 80/20 rule", fig_lorenz,
               "The 80/20 rule: the further a curve bows below the diagonal, the more revenue depends on a few "
               "customers -- the ones a programme most needs to keep."),
    FigureSpec("points", "Points liability and breakage", fig_points,
               "Points are a system of hope: liability is money promised but not yet paid, and breakage is the "
               "share of that promise customers never claim -- profit for the store, disappointment for them.",
               applies=lambda c: bool(points_policies(c)),
               skipped="No policy in this comparison keeps points, so there is no liability or breakage to show."),
    FigureSpec("credit", "Store credit and bad debt", fig_credit,
               "The credit trap: balances and interest look like revenue until customers stop paying; watch "
               "cumulative bad debt, which keeps rising after the balances level off.",
               applies=lambda c: bool(credit_policies(c)),
               skipped="No policy in this comparison lends store credit, so there are no balances or bad debt "
                       "to show."),
    FigureSpec("flywheel", "The flywheel, link by link", fig_flywheel,
               "The flywheel: follow an effect round the loop -- repeat sales raise volume, volume lowers unit cost, "
               "margin funds profit sharing, happier staff serve better, and better service brings customers back."),
    FigureSpec("flywheel_share", "How much travels round the flywheel", fig_flywheel_share,
               "Performance rewards and service work through the loop, discounts mostly do not: a large share means "
               "the policy pays through better service and staff, a small one that it pays directly.",
               applies=has_cut_runs,
               skipped="The policies were not also run with the flywheel cut, so the loop's share cannot be measured."),
)
