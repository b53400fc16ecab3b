"""The batch report: figures of a batch dataset and a self-contained HTML page, with CSV tables beside it.

With two numeric factors the winner per design point becomes a map (a
heatmap for a grid, a scatter otherwise) beside a map of each policy's
paired difference from the baseline; with one, a line of the difference
against the factor; for any numeric factor, each headline outcome against each
factor with intervals; for lhs and sobol designs a PRCC chart, for saltelli
designs first-order and total Sobol' indices, for morris designs mu* against
sigma, each for every outcome's policy differences, with intervals; every
driver named carries its interval and whether it excludes zero
(`driver_lines`). The tables read like
the comparison report's: numbers in the outcome registry's units, formatted by
lab.report.text (no scientific notation), a table per outcome with a row per
design point and each mean and difference over its 95% interval. The numbers
come from lab.metrics.batch_summary and lab.metrics.sensitivity; the report
names the methods it used. `lab batch-report` (lab.cli) calls
`write_batch_report`.

The module runs past 500 lines because it is the whole batch report -- its figures, tables and page --
sharing one set of formatters and colours, as lab.report.figures does for comparisons.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import html
import io
import math
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lab.batch.dataset import BatchData, read_dataset
from lab.batch.spec import BatchError
from lab.engine.behaviour import RATE_BOUND_PATHS
from lab.metrics.batch_summary import TARGET, policy_overview, summary_table, winners
from lab.metrics.outcomes import HEADLINE, RETENTION_DAYS
from lab.metrics.sensitivity import INDEX, indices
from lab.metrics.stats import Interval
from lab.report.text import fmt_bounds, fmt_value, interval_decimals, outcome_name, outcome_unit, unit_label
from lab.scenario.loader import BASELINE

__all__ = ["BatchReport", "driver_lines", "format_overview", "write_batch_report"]

MAX_HTML_POINTS = 200
_PALETTE = ("#3a3a3a", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#999933")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _colours(policies: Sequence[str]) -> dict[str, str]:
    others = [p for p in policies if p != BASELINE]
    out = {BASELINE: _PALETTE[0]}
    out.update({p: _PALETTE[1 + i % (len(_PALETTE) - 1)] for i, p in enumerate(others)})
    return out


def fig_winner_map(data: BatchData, win: pd.DataFrame, fx: str, fy: str) -> Any:
    """Which policy has the highest mean net profit at each design point (two factors)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    policies = list(data.manifest["policies"])
    colours = _colours(policies)
    pts = pd.DataFrame(data.manifest["points"]).merge(win, on="point")
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    code = {p: i for i, p in enumerate(policies)}
    if data.manifest["design"]["type"] == "grid":
        xs, ys = sorted(pts[fx].unique()), sorted(pts[fy].unique())
        grid = np.full((len(ys), len(xs)), np.nan)
        clear = np.zeros_like(grid, dtype=bool)
        for _, r in pts.iterrows():
            i, j = ys.index(r[fy]), xs.index(r[fx])
            grid[i, j] = code[r["winner"]]
            clear[i, j] = bool(r["clear"])
        cmap = ListedColormap([colours[p] for p in policies])
        ax.imshow(grid, origin="lower", cmap=cmap, vmin=-0.5, vmax=len(policies) - 0.5, aspect="auto")
        for i in range(len(ys)):
            for j in range(len(xs)):
                if not np.isnan(grid[i, j]) and not clear[i, j]:
                    ax.text(j, i, "tie", ha="center", va="center", color="white", fontsize=8)
        ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
        ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
    else:
        for p in policies:
            s = pts[pts["winner"] == p]
            ax.scatter(s[fx], s[fy], s=40, c=[colours[p]] * len(s) if len(s) else None,
                       edgecolors=colours[p], linewidths=1.2, alpha=np.where(s["clear"], 1.0, 0.35) if len(s) else 1)
    ax.set_xlabel(fx)
    ax.set_ylabel(fy)
    ax.set_title("Highest mean net profit at each design point\n"
                 "(tie / faded: the lead over the runner-up is within its 95% interval)", fontsize=9)
    ax.legend(handles=[Patch(color=colours[p], label=p) for p in policies], fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    return fig


def fig_difference_map(data: BatchData, summary: pd.DataFrame, policy: str, fx: str, fy: str) -> Any:
    """Mean paired net-profit difference of `policy` vs the baseline over two factors."""
    from matplotlib.colors import TwoSlopeNorm

    s = summary[(summary["policy"] == policy) & (summary["outcome"] == TARGET)]
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    vals = s["diff_mean"].to_numpy(dtype=float)
    span = float(np.nanmax(np.abs(vals))) if np.isfinite(vals).any() else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-span or -1.0, vmax=span or 1.0)
    if data.manifest["design"]["type"] == "grid":
        xs, ys = sorted(s[fx].unique()), sorted(s[fy].unique())
        grid = np.full((len(ys), len(xs)), np.nan)
        for _, r in s.iterrows():
            grid[ys.index(r[fy]), xs.index(r[fx])] = r["diff_mean"]
        im = ax.imshow(grid, origin="lower", cmap="RdBu", norm=norm, aspect="auto")
        ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
        ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
        for _, r in s.iterrows():
            sig = r["diff_low"] > 0 or r["diff_high"] < 0
            dark = abs(r["diff_mean"]) > 0.6 * span
            ax.text(xs.index(r[fx]), ys.index(r[fy]), f"{r['diff_mean']:,.0f}" + ("" if sig else "\n(n.s.)"),
                    ha="center", va="center", fontsize=7, color="white" if dark else "black")
    else:
        im = ax.scatter(s[fx], s[fy], c=vals, cmap="RdBu", norm=norm, s=40, edgecolors="k", linewidths=0.3)
    fig.colorbar(im, ax=ax, label=f"net profit, {policy} - {BASELINE} ($)")
    ax.set_xlabel(fx)
    ax.set_ylabel(fy)
    ax.set_title(f"{policy} vs {BASELINE}: mean paired difference in net profit", fontsize=9)
    return fig


def fig_difference_line(data: BatchData, summary: pd.DataFrame, fx: str) -> Any:
    """Paired net-profit difference vs the baseline against one factor, with 95% intervals."""
    policies = [p for p in data.manifest["policies"] if p != BASELINE]
    colours = _colours(data.manifest["policies"])
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot()
    for p in policies:
        s = summary[(summary["policy"] == p) & (summary["outcome"] == TARGET)].sort_values(fx)
        x = s[fx].to_numpy(dtype=float)
        m = s["diff_mean"].to_numpy(dtype=float)
        err = np.vstack([m - s["diff_low"].to_numpy(dtype=float), s["diff_high"].to_numpy(dtype=float) - m])
        ax.errorbar(x, m, yerr=np.nan_to_num(err), fmt="o-", color=colours[p], label=p, capsize=3, ms=4)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel(fx)
    ax.set_ylabel(f"net profit vs {BASELINE} ($)")
    ax.set_title("Mean paired difference in net profit (95% intervals)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def fig_sensitivity(sens: pd.DataFrame) -> Any:
    """PRCC of each factor with its bootstrap interval, per policy."""
    policies = list(dict.fromkeys(sens["policy"]))
    factors = list(dict.fromkeys(sens["factor"]))
    colours = _colours([BASELINE, *policies])
    fig = _figure(6.4, 1.2 + 0.45 * len(factors) * len(policies))
    ax = fig.add_subplot()
    h = 0.8 / max(len(policies), 1)
    for i, p in enumerate(policies):
        s = sens[sens["policy"] == p].set_index("factor").reindex(factors)
        y = np.arange(len(factors)) + i * h
        v = s["prcc"].to_numpy(dtype=float)
        err = np.vstack([v - s["prcc_low"].to_numpy(dtype=float), s["prcc_high"].to_numpy(dtype=float) - v])
        ax.barh(y, v, height=h, color=colours[p], label=p, xerr=np.nan_to_num(np.abs(err)), capsize=3)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(np.arange(len(factors)) + 0.4 - h / 2, factors)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel(f"PRCC with the net-profit difference vs {BASELINE} (95% bootstrap interval)")
    ax.legend(fontsize=8)
    return fig


def fig_indices(method: str, table: pd.DataFrame, outcome: str = TARGET) -> Any:
    """Sobol' S1 and ST (saltelli stores) or Morris mu* and sigma (morris stores) of each factor for each policy's
    difference vs the baseline in `outcome`, with their intervals."""
    t = table[table["outcome"] == outcome]
    policies = list(dict.fromkeys(t["policy"]))
    factors = list(dict.fromkeys(t["factor"]))
    colours = _colours([BASELINE, *policies])
    pairs = (("s1", "first-order S1"), ("st", "total ST")) if method == "sobol" else \
        (("mu_star", "mu* (mean |elementary effect|)"), ("sigma", "sigma (sd of the effects)"))
    fig = _figure(9.0, 1.4 + 0.45 * max(len(factors), 1) * max(len(policies), 1))
    axes = fig.subplots(1, 2, squeeze=False)[0]
    h = 0.8 / max(len(policies), 1)
    for ax, (col, label) in zip(axes, pairs):
        for i, p in enumerate(policies):
            s = t[t["policy"] == p].set_index("factor").reindex(factors)
            y = np.arange(len(factors)) + i * h
            v = s[col].to_numpy(dtype=float)
            err = np.vstack([v - s[f"{col}_low"].to_numpy(dtype=float), s[f"{col}_high"].to_numpy(dtype=float) - v])
            ax.barh(y, np.nan_to_num(v), height=h, color=colours[p], label=p, xerr=np.nan_to_num(np.abs(err)),
                    capsize=3)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(np.arange(len(factors)) + 0.4 - h / 2, factors)
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=8)
    what = "Sobol' indices (95% bootstrap intervals)" if method == "sobol" else \
        "Morris elementary effects per unit of each factor's range (95% bootstrap intervals)"
    fig.suptitle(f"{what} of the {outcome_name(outcome).lower()} difference vs {BASELINE}", fontsize=9)
    return fig


def fig_outcomes_by_factor(data: BatchData, summary: pd.DataFrame, factors: Sequence[str],
                           outcomes: Sequence[str] = HEADLINE) -> Any:
    """Each outcome against each factor: every policy's paired difference vs the baseline at each design point,
    with its 95% interval (one panel per outcome and factor; units from the outcome registry)."""
    policies = [p for p in data.manifest["policies"] if p != BASELINE]
    colours = _colours(data.manifest["policies"])
    fig = _figure(3.4 * len(factors) + 1.2, 2.6 * len(outcomes) + 0.6)
    fig.set_layout_engine("constrained")
    axes = fig.subplots(len(outcomes), len(factors), squeeze=False)
    width = len(policies)
    for i, outcome in enumerate(outcomes):
        unit = outcome_unit(outcome)
        scale = 100.0 if unit == "share" else 1.0
        for j, fx in enumerate(factors):
            ax = axes[i][j]
            values = np.sort(summary[fx].dropna().unique().astype(float)) if fx in summary else np.array([])
            step = float(np.min(np.diff(values))) if len(values) > 1 else 1.0
            cell = summary[(summary["outcome"] == outcome) & (summary["policy"] != BASELINE)]
            if not np.isfinite(cell["diff_mean"].to_numpy(dtype=float)).any():
                ax.text(0.5, 0.5, "not measurable in this batch", ha="center", va="center", transform=ax.transAxes,
                        fontsize=8, color="#555555")
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(f"{outcome_name(outcome)}", fontsize=8)
                if i == len(outcomes) - 1:
                    ax.set_xlabel(fx)
                continue
            for k, p in enumerate(policies):
                s = summary[(summary["policy"] == p) & (summary["outcome"] == outcome)].sort_values(fx)
                x = s[fx].to_numpy(dtype=float) + (k - (width - 1) / 2) * 0.08 * step  # policies side by side
                m = s["diff_mean"].to_numpy(dtype=float) * scale
                lo = s["diff_low"].to_numpy(dtype=float) * scale
                hi = s["diff_high"].to_numpy(dtype=float) * scale
                err = np.nan_to_num(np.vstack([m - lo, hi - m]))
                ax.errorbar(x, m, yerr=np.abs(err), fmt="o", color=colours[p], label=p, capsize=2, ms=3, lw=0.8)
            ax.axhline(0, color="grey", lw=0.8)
            if i == len(outcomes) - 1:
                ax.set_xlabel(fx)
            if j == 0:
                ax.set_ylabel(f"{outcome_name(outcome)}\nvs {BASELINE} ({unit_label(unit, difference=True)})",
                              fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Each outcome against each factor: paired difference vs {BASELINE} per design point (95% intervals)",
                 fontsize=9)
    return fig


# --------------------------------------------------------------------------- the report
def _numeric_factors(data: BatchData) -> list[str]:
    return [f["name"] for f in data.manifest["factors"] if f["dtype"] in ("float64", "int64")]


def _table_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                text = "" if math.isnan(v) else _num(v)
                cells.append(f"<td class=num>{text}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell(mean: float, low: float, high: float, n: float, unit: str, difference: bool = False) -> str:
    """A mean with its 95% interval below it, formatted like the comparison report (units from the registry)."""
    iv = Interval(float(mean), float(low), float(high), int(n) if np.isfinite(n) else 0,
                  (float(high) - float(low)) / 2 if np.isfinite(high) and np.isfinite(low) else float("nan"))
    if not math.isfinite(iv.mean):
        return '<td class="num na">n/a</td>'
    d = interval_decimals(iv, unit)
    text = fmt_value(iv.mean, unit, signed=difference, difference=difference and unit == "share", decimals=d)
    clear = difference and iv.excludes_zero
    bounds = (fmt_bounds(iv, unit, difference=difference and unit == "share", signed=difference)
              if math.isfinite(iv.half_width) else "one replication")
    return (f'<td class="num">{html.escape(text)}{"*" if clear else ""}'
            f"<small>{html.escape(bounds)}</small></td>")


def _num(v: float) -> str:
    """A plain number without scientific notation: whole numbers and anything from 1,000 up with thousands
    separators, smaller ones to four significant digits ("8,656", "10,820", "2.5", "0.0125")."""
    v = float(v)
    if not math.isfinite(v):
        return "n/a"
    if abs(v) >= 1000 or v == round(v):
        return f"{v:,.0f}"
    return np.format_float_positional(v, precision=4, unique=False, fractional=False, trim="-")


def _factor_value(v: Any) -> str:
    if isinstance(v, (float, np.floating, int, np.integer)) and not isinstance(v, bool):
        return "" if isinstance(v, float) and math.isnan(v) else _num(float(v))
    return html.escape(str(v))


def outcome_tables(data: BatchData, summary: pd.DataFrame, outcomes: Sequence[str] = HEADLINE,
                   max_points: int = MAX_HTML_POINTS) -> str:
    """One table per outcome: a row per design point (its factor values), each policy's mean and each policy's
    paired difference vs the baseline, each with its 95% interval; '*' marks a difference whose interval
    excludes zero."""
    factors = [f["name"] for f in data.manifest["factors"]]
    policies = list(data.manifest["policies"])
    others = [p for p in policies if p != BASELINE]
    parts = []
    for outcome in outcomes:
        unit = outcome_unit(outcome)
        s = summary[summary["outcome"] == outcome]
        if s.empty:
            parts.append(f"<h3>{html.escape(outcome_name(outcome))}</h3><p class=note>Not measurable in this batch: "
                         f"no run gave it a value (12-month retention, for one, follows each customer for "
                         f"{RETENTION_DAYS} days from the launch: it needs days of at least the scenario's "
                         f"launch_day + {RETENTION_DAYS}).</p>")
            continue
        head = ("<tr><th>point</th>" + "".join(f"<th>{html.escape(f)}</th>" for f in factors)
                + "".join(f"<th>{html.escape(p)}</th>" for p in policies)
                + "".join(f"<th>{html.escape(p)} - {BASELINE}</th>" for p in others if BASELINE in policies) + "</tr>")
        rows = []
        for point, g in s.groupby("point", sort=True):
            if point >= max_points:
                break
            by = g.set_index("policy")
            first = g.iloc[0]
            cells = [f"<td class=num>{int(point)}</td>"] + [f"<td class=num>{_factor_value(first[f])}</td>"
                                                            for f in factors]
            for p in policies:
                cells.append(_cell(by.at[p, "mean"], by.at[p, "ci_low"], by.at[p, "ci_high"], by.at[p, "n"], unit)
                             if p in by.index else '<td class="num na">n/a</td>')
            if BASELINE in policies:
                for p in others:
                    cells.append(_cell(by.at[p, "diff_mean"], by.at[p, "diff_low"], by.at[p, "diff_high"],
                                       by.at[p, "diff_n"], unit, difference=True)
                                 if p in by.index else '<td class="num na">n/a</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        label = unit_label(unit)
        parts.append(f"<h3>{html.escape(outcome_name(outcome))}" + (f" ({html.escape(label)})" if label else "")
                     + f"</h3><table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")
    return "".join(parts)


def _sensitivity_html(sens: pd.DataFrame) -> str:
    """The sensitivity table with its indices to two decimals and their intervals, and SALib's notes below."""
    notes = sorted({str(n) for n in sens.get("salib_note", pd.Series(dtype=object)).dropna() if str(n)})
    show = sens.drop(columns=[c for c in ("salib_note",) if c in sens.columns])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in show.columns)
    body = []
    for row in show.itertuples(index=False):
        cells = []
        for col, v in zip(show.columns, row):
            if isinstance(v, (float, np.floating)):
                text = "n/a" if math.isnan(v) else (f"{v:.3f}" if col == "prcc_p" else f"{v:+.2f}")
                cells.append(f"<td class=num>{text}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return table + "".join(f"<p class=note>SALib: {html.escape(n)}.</p>" for n in notes)


def _indices_html(method: str, table: pd.DataFrame) -> str:
    """Per outcome, a row per policy and factor: the indices with their 95% intervals below them; * marks an index
    whose interval excludes zero."""
    cols = (("s1", "S1"), ("st", "ST")) if method == "sobol" else (("mu_star", "mu*"), ("mu", "mu"), ("sigma", "sigma"))
    parts = []
    for outcome, t in table.groupby("outcome", sort=False):
        unit = outcome_unit(str(outcome))
        head = ("<tr><th>policy</th><th>factor</th>" + "".join(f"<th>{html.escape(lbl)}</th>" for _, lbl in cols)
                + "</tr>")
        rows = []
        for r in t.itertuples(index=False):
            cells = []
            for col, _ in cols:
                v = float(getattr(r, col))
                lo = getattr(r, f"{col}_low", None)
                hi: Any = getattr(r, f"{col}_high", None)  # present whenever lo is: the columns come in pairs
                fmt: Callable[[float], str] = ((lambda x: f"{x:.2f}") if method == "sobol"
                                               else functools.partial(fmt_value, unit=unit))
                if math.isnan(v):
                    cells.append("<td class=na>n/a</td>")
                    continue
                star = "*" if lo is not None and _excludes_zero(float(lo), float(hi)) else ""
                sub = f"<small>[{html.escape(fmt(float(lo)))}, {html.escape(fmt(float(hi)))}]</small>" \
                    if lo is not None and not math.isnan(float(lo)) else ""
                cells.append(f"<td class=num>{html.escape(fmt(v))}{star}{sub}</td>")
            rows.append(f"<tr><td>{html.escape(str(r.policy))}</td><td>{html.escape(str(r.factor))}</td>"
                        + "".join(cells) + "</tr>")
        parts.append(f"<h3>{html.escape(outcome_name(str(outcome)))}</h3><table><thead>{head}</thead><tbody>"
                     + "".join(rows) + "</tbody></table>")
    return "".join(parts)


def _img(png: bytes, alt: str) -> str:
    return (f'<figure><img alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>')


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}th,td{border:1px solid #ccc;padding:2px 6px}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f2f2f2}img{max-width:100%}
code{background:#f4f4f4;padding:0 3px}.note{color:#555;font-size:13px}
td small{display:block;color:#666;font-size:10px}td.na{color:#999}"""



@dataclass(frozen=True)
class BatchReport:
    """What batch-report wrote, and the tables it printed from."""

    paths: dict[str, Path]
    overview: pd.DataFrame
    sensitivity: pd.DataFrame
    method: str = "prcc"  # what `sensitivity` holds: 'prcc' (SRC/PRCC), 'sobol' (S1/ST), 'morris' (mu*/sigma), ''
    horizon: str = ""  # the days the outcomes cover, as a sentence (`horizon_sentence`)

    def drivers(self, outcome: str = TARGET, top: int = 3) -> list[str]:
        """The printed driver lines (see `driver_lines`)."""
        return driver_lines(self.method, self.sensitivity, outcome, top)


def _excludes_zero(low: float, high: float) -> bool:
    return bool(low > 0 or high < 0)


def driver_lines(method: str, table: pd.DataFrame, outcome: str = TARGET, top: int = 3) -> list[str]:
    """One line per policy: its `top` candidate drivers of the `outcome` difference vs the baseline, ranked by the
    method's index (|PRCC|, ST, mu*), each with its 95% interval and whether that interval excludes zero. Only the
    factors that can affect the policy are candidates (lab.metrics.sensitivity.applicable)."""
    if not method or table.empty:
        return []
    label, col, lo, hi = INDEX[method]
    t = table[table["outcome"].astype(str).str.startswith(outcome)] if method == "prcc" else \
        table[table["outcome"] == outcome]
    lines = []
    for policy, g in t.groupby("policy", sort=False):
        key = g[col].abs() if method == "prcc" else g[col]
        g = g.reindex(key.fillna(-1).sort_values(ascending=False).index).head(top)
        parts = []
        for r in g.itertuples(index=False):
            v, a, b = float(getattr(r, col)), float(getattr(r, lo)), float(getattr(r, hi))
            if math.isnan(v):
                parts.append(f"{r.factor} ({label} n/a)")
                continue
            num = (lambda x: f"{x:+.2f}") if method == "prcc" else (lambda x: f"{x:.2f}") if method == "sobol" \
                else (lambda x: fmt_value(x, outcome_unit(outcome)))
            verdict = "excludes 0" if _excludes_zero(a, b) else "includes 0: not shown to matter"
            extra = ""
            if method == "sobol":
                extra = f"S1 {float(r.s1):.2f} [{float(r.s1_low):.2f}, {float(r.s1_high):.2f}], "
            parts.append(f"{r.factor} ({extra}{label} {num(v)} [{num(a)}, {num(b)}], {verdict})")
        what = outcome_name(outcome).lower()
        lines.append(f"{policy} vs {BASELINE}, {what}: " + ("; ".join(parts) if parts else "no factor applies"))
    return lines


def write_batch_report(store: str | Path, out: str | Path | None = None, *, boot: int = 1000) -> BatchReport:
    """Analyse a batch store; write the HTML report (figures embedded), the PNGs and the CSV tables."""
    store = Path(store)
    data = read_dataset(store)
    if data.runs.empty:
        total = data.manifest.get("total_runs")
        of = f" of its {total:,}" if isinstance(total, int) else ""
        command = list(data.manifest.get("command") or [])
        if command[:2] != ["lab", "batch"]:  # started from Python (run_batch): the command line that continues it
            spec = (data.manifest.get("spec") or {}).get("path") or "SPEC"
            m = data.manifest
            command = ["lab", "batch", str(spec), "--out", str(store),
                       *(["--customers", str(m["customers"])] if m.get("customers") else []),
                       *(["--days", str(m["days"])] if m.get("days") else []),
                       *(["--scale-store"] if m.get("store_scaled_from") else [])]
        again = shlex.join(command + ([] if "--resume" in command else ["--resume"]))
        raise BatchError(f"{store} holds no finished run{of} yet, so there is nothing to report; run it first: "
                         f"{again}")
    html_path = Path(out) if out is not None else store / "report.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    stem = html_path.with_suffix("")
    summary = summary_table(data)
    win = winners(data)
    method, sens = indices(data, summary, boot=boot)
    paths: dict[str, Path] = {"html": html_path, "summary": Path(f"{stem}-summary.csv")}
    summary.to_csv(paths["summary"], index=False)
    if not sens.empty:
        paths["sensitivity"] = Path(f"{stem}-sensitivity.csv")
        sens.to_csv(paths["sensitivity"], index=False)
    figures: list[tuple[str, bytes]] = []
    num = _numeric_factors(data)
    others = [p for p in data.manifest["policies"] if p != BASELINE]
    if len(num) == 2 and not win.empty:
        figures.append(("winner map", _png(fig_winner_map(data, win, num[0], num[1]))))
        for p in others:
            figures.append((f"{p} vs {BASELINE}", _png(fig_difference_map(data, summary, p, num[0], num[1]))))
    elif len(num) == 1 and others and not summary.empty:
        figures.append(("difference by factor", _png(fig_difference_line(data, summary, num[0]))))
    if num and others and not summary.empty:
        figures.append(("each outcome against each factor", _png(fig_outcomes_by_factor(data, summary, num))))
    if not sens.empty and method == "prcc":
        figures.append(("sensitivity", _png(fig_sensitivity(sens))))
    elif not sens.empty:
        for outcome in [o for o in HEADLINE if o in set(sens["outcome"])]:
            name = "Sobol' indices" if method == "sobol" else "Morris effects"
            figures.append((f"{name}: {outcome_name(outcome).lower()}", _png(fig_indices(method, sens, outcome))))
    for i, (name, png) in enumerate(figures, 1):
        p = Path(f"{stem}-fig{i}.png")
        p.write_bytes(png)
        paths[f"figure {i}: {name}"] = p
    html_path.write_text(_render(data, summary, win, sens, figures, paths, method))
    return BatchReport(paths, policy_overview(data, summary, win), sens, method, horizon_sentence(data.manifest))


def horizon_sentence(manifest: dict) -> str:
    """The days a batch's outcomes cover, as a sentence ('' for a store written before its manifest said); a
    comparison's are phrased by lab.report.text.span_words.

    With a launch, the outcomes are measured from it (docs/MODEL.md, "Launch day"); a factor on `days` or
    `launch_day` moves them from one design point to the next."""
    h = manifest.get("horizon")
    if not h:
        return ""
    if {f["path"] for f in manifest["factors"]} & {"days", "launch_day"}:
        return ("Outcomes cover each run from its launch day (day 0 without one) to its end, which a factor moves from "
                "one design point to the next.")
    days, launch = h["days"], h["launch_day"]
    if not launch:
        return f"Outcomes cover the whole run of {days:,} days."
    return (f"Outcomes cover days {launch:,} to {days:,} of each run, from the launch: the first {launch:,} days, a "
            "warm-up under no programme, the same under every policy, are left out.")


def redrawing_factors(manifest: dict) -> list[str]:
    """The factors that move the thinning bound M (lab.engine.behaviour.RATE_BOUND_PATHS): from one design point
    to the next they change which purchase candidates are drawn, so even shared streams do not pair the points."""
    return [f["name"] for f in manifest["factors"]
            if any(fnmatch.fnmatchcase(f["path"], pattern) for pattern in RATE_BOUND_PATHS)]


def _streams_words(manifest: dict) -> str:
    if manifest.get("streams", "independent") != "shared":
        return "each design point has fresh customers, so noise between points adds to the factors' effects"
    moved = redrawing_factors(manifest)
    if not moved:
        return ("every design point of a replication sees the same customers, so differences between points are the "
                "factors' effects, not fresh noise")
    return (f"every design point of a replication sees the same customers, but {', '.join(moved)} "
            f"{'moves' if len(moved) == 1 else 'move'} the purchase-rate bound of thinning (docs/MODEL.md, section 3), "
            "which re-draws the purchase candidates: differences between points along "
            f"{'it' if len(moved) == 1 else 'them'} carry fresh noise as well as the factors' effects, and even the "
            "no-programme baseline moves with them")


def _render(data: BatchData, summary: pd.DataFrame, win: pd.DataFrame, sens: pd.DataFrame,
            figures: list[tuple[str, bytes]], paths: dict[str, Path], method: str = "prcc") -> str:
    m = data.manifest
    e = html.escape
    factors = [f["name"] for f in m["factors"]]
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>Batch {e(m['name'])}</title>"
             f"<style>{_CSS}</style></head><body><h1>Batch {e(m['name'])}</h1>"]
    n_runs = data.runs["run_id"].nunique()
    parts.append(
        f"<p>{len(m['points'])} design points ({e(m['design']['type'])}) x {m['replications']} replications x "
        f"{len(m['policies'])} policies ({e(', '.join(m['policies']))}) = {m['total_runs']} runs; "
        f"{n_runs} completed, {len(data.failures)} failed. Seed {m['seed']}; spec <code>{e(m['spec']['path'])}</code> "
        f"(sha256 {e(m['spec']['sha256'][:12])}...). {e(horizon_sentence(m))}</p>")
    if factors:
        parts.append("<h2>Factors</h2>" + _table_html(pd.DataFrame(
            [{"factor": f["name"], "path": f["path"], "type": f["type"],
              "values": ", ".join(_factor_value(v) for v in f["levels"]) if "levels" in f
              else f"{_num(f['low'])} .. {_num(f['high'])}"}
             for f in m["factors"]])))
    parts.append("<h2>Policies at a glance (net profit)</h2>" + _overview_html(policy_overview(data, summary, win))
                 + "<p class=note>Means are over design points of the per-point means; 'better/worse than none' counts "
                   "points whose paired 95% interval of the difference excludes 0; a clear win is a highest mean whose "
                   "lead over the runner-up has a paired 95% interval excluding 0.</p>")
    for name, png in figures:
        parts.append(f"<h3>{e(name)}</h3>" + _img(png, name))
    parts.append("<h2>Sensitivity</h2>")
    streams = m.get("streams", "independent")
    parts.append(f"<p class=note>Random streams: {e(streams)} ({e(_streams_words(m))}). A factor on one policy's "
                 "parameters is not a candidate driver of another policy's outcomes.</p>")
    drivers = driver_lines(method, sens)
    if drivers:
        parts.append("<p>Drivers of net profit (95% intervals):</p><ul>"
                     + "".join(f"<li>{e(d)}</li>" for d in drivers) + "</ul>")
    if m["design"]["type"] == "grid":
        parts.append("<p class=note>Sensitivity indices are computed for sampled designs "
                     "(lhs, sobol, saltelli, morris); "
                     "this batch is a grid: read the effects from the maps and the table.</p>")
    elif method in ("sobol", "morris") and not sens.empty:
        if method == "sobol":
            note = ("First-order (S1: the share of the variance of the difference due to the factor alone) and total "
                    "(ST: including its interactions) Sobol' indices from SALib's estimator on the Saltelli sample, "
                    "with SALib's 95% bootstrap intervals")
        else:
            note = ("Morris elementary effects per unit of each factor's range: mu* (mean absolute effect: how much "
                    "the factor matters), mu (mean effect: its direction) and sigma (their spread: interactions or "
                    "non-linearity), with 95% percentile bootstrap intervals over trajectories")
        parts.append(f"<p class=note>Response: each policy's mean paired difference vs {BASELINE} per design point, "
                     f"for every outcome. Method: {note}. Every outcome is in "
                     f"<code>{e(paths['sensitivity'].name)}</code>.</p>" + _indices_html(method, sens))
    elif sens.empty:
        parts.append("<p class=note>Not enough design points with numeric factors for sensitivity indices "
                     "(needs at least the number of factors + 3).</p>")
    else:
        method = ("Standardized regression coefficients (SRC, with the linear model's R<sup>2</sup>) and partial rank "
                  "correlation coefficients (PRCC, with a t test of PRCC = 0), each with 95% percentile bootstrap "
                  "intervals over design points, computed with numpy/scipy")
        method += ("; plus SALib's delta and S1 indices." if "delta" in sens.columns
                   else ". SALib is not installed (optional extra 'sensitivity'), so its indices are not shown.")
        parts.append(f"<p class=note>Response: each policy's mean paired difference in net profit vs {BASELINE} per "
                     f"design point. Method: {method}</p>" + _sensitivity_html(sens))
    n_points = int(summary["point"].nunique()) if not summary.empty else 0
    parts.append(f"<h2>Outcomes by design point</h2><p class=note>Per outcome, a row per design point: each "
                 f"policy's mean over replications and its paired difference vs {BASELINE}, each with its 95% "
                 "Student-t interval below it; * marks a difference whose interval excludes zero. Headline outcomes"
                 + (f" for the first {MAX_HTML_POINTS} of {n_points} points" if n_points > MAX_HTML_POINTS else "")
                 + f"; every outcome and point is in <code>{e(paths['summary'].name)}</code>.</p>"
                 + outcome_tables(data, summary))
    if len(data.failures):
        f = data.failures[["run_id", "error"]].head(50)
        parts.append(f"<h2>Failed runs ({len(data.failures)})</h2>" + _table_html(f))
    parts.append("</body></html>")
    return "\n".join(parts)


def _overview_html(overview: pd.DataFrame) -> str:
    """The per-policy overview with its money in dollars, as the comparison report writes it."""
    head = ("<tr><th>policy</th><th>design points</th><th>mean net profit</th><th>mean difference vs "
            f"{BASELINE}</th><th>design points better than {BASELINE}</th><th>design points worse</th>"
            "<th>clear wins</th></tr>")
    rows = []
    for r in overview.itertuples(index=False):
        diff = "" if math.isnan(r.mean_diff_vs_none) else fmt_value(r.mean_diff_vs_none, "$", signed=True)
        rows.append(f"<tr><td>{html.escape(str(r.policy))}</td><td class=num>{r.points}</td>"
                    f"<td class=num>{html.escape(fmt_value(r.mean_net_profit, '$'))}</td>"
                    f"<td class=num>{html.escape(diff)}</td><td class=num>{r.better_than_none}</td>"
                    f"<td class=num>{r.worse_than_none}</td><td class=num>{r.clear_wins}</td></tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def format_overview(overview: pd.DataFrame) -> str:
    """The short stdout table, with a line saying what its counts count (design points, not a points ledger)."""
    lines = [f"{'policy':<16}{'design points':>14}{'net profit':>14}{'vs none':>12}{'better':>8}{'worse':>7}"
             f"{'clear wins':>11}"]
    for r in overview.itertuples(index=False):
        diff = "" if math.isnan(r.mean_diff_vs_none) else fmt_value(r.mean_diff_vs_none, "$", signed=True)
        npf = "" if math.isnan(r.mean_net_profit) else fmt_value(r.mean_net_profit, "$")
        lines.append(f"{r.policy:<16}{r.points:>14}{npf:>14}{diff:>12}{r.better_than_none:>8}{r.worse_than_none:>7}"
                     f"{r.clear_wins:>11}")
    lines.append(f"(net profit: the mean over the design points; better / worse: the design points where its paired "
                 f"95% interval vs {BASELINE} is above / below 0; clear wins: those where it has the highest mean "
                 "net profit and its paired 95% interval over the runner-up is above 0)")
    return "\n".join(lines)

