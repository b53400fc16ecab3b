"""The batch report: figures of a batch dataset and a self-contained HTML page, with CSV tables beside it.

With two numeric factors the winner per design point becomes a map (a
heatmap for a grid, a scatter otherwise) beside a map of each policy's
paired difference from the baseline; with one, a line of the difference
against the factor; for sampled designs, a PRCC chart. The numbers come from
lab.metrics.batch_summary and lab.metrics.sensitivity; the report names the
methods it used. `lab batch-report` (lab.cli) calls `write_batch_report`.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lab.batch.dataset import BatchData, read_dataset
from lab.metrics.batch_summary import TARGET, policy_overview, summary_table, winners
from lab.metrics.outcomes import HEADLINE
from lab.metrics.sensitivity import sensitivity
from lab.scenario.loader import BASELINE

__all__ = ["BatchReport", "format_overview", "write_batch_report"]

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


# --------------------------------------------------------------------------- the report
def _numeric_factors(data: BatchData) -> list[str]:
    return [f["name"] for f in data.manifest["factors"] if f["dtype"] in ("float64", "int64")]


def _table_html(frame: pd.DataFrame, floats: str = "{:,.4g}") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                text = "" if math.isnan(v) else floats.format(v)
                cells.append(f"<td class=num>{text}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}th,td{border:1px solid #ccc;padding:2px 6px}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f2f2f2}img{max-width:100%}
code{background:#f4f4f4;padding:0 3px}.note{color:#555;font-size:13px}"""



@dataclass(frozen=True)
class BatchReport:
    """What batch-report wrote, and the tables it printed from."""

    paths: dict[str, Path]
    overview: pd.DataFrame
    sensitivity: pd.DataFrame


def write_batch_report(store: str | Path, out: str | Path | None = None, *, boot: int = 1000) -> BatchReport:
    """Analyse a batch store; write the HTML report (figures embedded), the PNGs and the CSV tables."""
    store = Path(store)
    data = read_dataset(store)
    html_path = Path(out) if out is not None else store / "report.html"
    html_path.parent.mkdir(parents=True, exist_ok=True)
    stem = html_path.with_suffix("")
    summary = summary_table(data)
    win = winners(data)
    sens = sensitivity(data, summary, boot=boot)
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
    if not sens.empty:
        figures.append(("sensitivity", _png(fig_sensitivity(sens))))
    for i, (name, png) in enumerate(figures, 1):
        p = Path(f"{stem}-fig{i}.png")
        p.write_bytes(png)
        paths[f"figure {i}: {name}"] = p
    html_path.write_text(_render(data, summary, win, sens, figures, paths))
    return BatchReport(paths, policy_overview(data, summary, win), sens)


def _render(data: BatchData, summary: pd.DataFrame, win: pd.DataFrame, sens: pd.DataFrame,
            figures: list[tuple[str, bytes]], paths: dict[str, Path]) -> str:
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
        f"(sha256 {e(m['spec']['sha256'][:12])}...).</p>")
    if factors:
        parts.append("<h2>Factors</h2>" + _table_html(pd.DataFrame(
            [{"factor": f["name"], "path": f["path"], "type": f["type"],
              "values": ", ".join(map(str, f["levels"])) if "levels" in f else f"{f['low']:g} .. {f['high']:g}"}
             for f in m["factors"]])))
    parts.append("<h2>Policies at a glance (net profit)</h2>" + _table_html(policy_overview(data, summary, win))
                 + "<p class=note>Means are over design points of the per-point means; 'better/worse than none' counts "
                   "points whose paired 95% interval of the difference excludes 0; a clear win is a highest mean whose "
                   "lead over the runner-up has a paired 95% interval excluding 0.</p>")
    for name, png in figures:
        parts.append(f"<h3>{e(name)}</h3>" + _img(png, name))
    parts.append("<h2>Sensitivity</h2>")
    if m["design"]["type"] == "grid":
        parts.append("<p class=note>Sensitivity indices are computed for sampled designs (lhs, sobol); this batch is a grid: "
                     "read the effects from the maps and the table.</p>")
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
                     f"design point. Method: {method}</p>" + _table_html(sens, "{:.3g}"))
    head = summary[summary["outcome"].isin(HEADLINE)]
    shown = head[head["point"] < MAX_HTML_POINTS]
    parts.append(f"<h2>Outcomes by design point</h2><p class=note>Means over replications with 95% Student-t "
                 f"intervals; diff columns: paired difference vs {BASELINE}. Headline outcomes"
                 + (f" for the first {MAX_HTML_POINTS} points" if len(shown) < len(head) else "")
                 + f"; every outcome and point is in <code>{e(paths['summary'].name)}</code>.</p>" + _table_html(shown))
    if len(data.failures):
        f = data.failures[["run_id", "error"]].head(50)
        parts.append(f"<h2>Failed runs ({len(data.failures)})</h2>" + _table_html(f))
    parts.append("</body></html>")
    return "\n".join(parts)


def format_overview(overview: pd.DataFrame) -> str:
    """The short stdout table."""
    lines = [f"{'policy':<16}{'points':>7}{'net profit':>14}{'vs none':>12}{'better':>8}{'worse':>7}{'clear wins':>11}"]
    for r in overview.itertuples(index=False):
        diff = "" if math.isnan(r.mean_diff_vs_none) else f"{r.mean_diff_vs_none:+,.0f}"
        npf = "" if math.isnan(r.mean_net_profit) else f"{r.mean_net_profit:,.0f}"
        lines.append(f"{r.policy:<16}{r.points:>7}{npf:>14}{diff:>12}{r.better_than_none:>8}{r.worse_than_none:>7}"
                     f"{r.clear_wins:>11}")
    return "\n".join(lines)

