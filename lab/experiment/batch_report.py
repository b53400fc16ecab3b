"""Analysis of a batch store: intervals per design point, where each policy wins, and what drives the differences.

* Per design point and policy, each outcome's mean over replications with a
  95% Student-t interval (the formula of lab.metrics.stats.mean_ci), and the
  paired difference against the baseline 'none' (paired_diff_ci: replication
  k of both policies shares its random streams, so the pairs are
  differenced first). Computed for all groups at once with the same formula;
  failed runs and undefined values (NaN) are left out, so n says how many
  replications a number rests on.
* Winner per point on net profit: the policy with the highest mean, marked
  clear when the paired interval of its lead over the runner-up excludes 0.
  With two numeric factors this becomes a map (heatmap for a grid, scatter
  otherwise); with one, a line of the difference against the factor.
* For sampled designs (lhs, sobol): global sensitivity of each policy's
  net-profit difference against the baseline to the factors. Always computed
  with numpy/scipy: standardized regression coefficients (SRC: the OLS slope
  on standardized variables; meaningful when the linear model's R^2 is
  high) and partial rank correlation coefficients (PRCC: the correlation of
  the rank residuals after regressing out the other factors; monotone
  effects, Marino et al. 2008, J. Theor. Biol. 254:178), each with
  percentile bootstrap intervals over design points. When SALib is
  installed (the optional extra `sensitivity`), its moment-independent delta
  index and first-order S1 (Borgonovo 2007; Plischke et al. 2013), which
  accept any sample, are added. The report names the methods it used.
"""

from __future__ import annotations

import argparse
import base64
import html
import importlib.util
import io
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from scipy.stats import t as student_t

from lab.experiment.batch import BatchData, BatchError, read_dataset
from lab.metrics.outcomes import HEADLINE, OUTCOMES
from lab.scenario.loader import BASELINE

LEVEL = 0.95
TARGET = "net_profit"
MAX_HTML_POINTS = 200
_PALETTE = ("#3a3a3a", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#999933")


# --------------------------------------------------------------------------- intervals
def _interval(n: np.ndarray, mean: np.ndarray, sd: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Student-t bounds mean -+ t_{n-1} sd / sqrt(n); NaN where n < 2 (as mean_ci)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = student_t.ppf(0.5 + level / 2, np.where(n >= 2, n - 1, np.nan))
        half = q * np.asarray(sd, dtype=float) / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    return mean - half, mean + half


def _stats(frame: pd.DataFrame, keys: list[str], column: str, level: float) -> pd.DataFrame:
    g = frame.groupby(keys, sort=True)[column]
    out = g.agg(n="count", mean="mean", sd="std").reset_index()
    lo, hi = _interval(out["n"].to_numpy(), out["mean"].to_numpy(), out["sd"].to_numpy(), level)
    out["ci_low"], out["ci_high"] = lo, hi
    return out.drop(columns="sd")


def _wide(runs: pd.DataFrame) -> pd.DataFrame:
    """Values indexed by (point, replication, outcome), one column per policy."""
    return runs.pivot_table(index=["point", "replication", "outcome"], columns="policy", values="value",
                            aggfunc="first", dropna=False)


def summary_table(data: BatchData, level: float = LEVEL) -> pd.DataFrame:
    """Per design point, policy and outcome: n, mean and interval over replications, and the paired difference vs 'none'."""
    runs = data.runs[np.isfinite(data.runs["value"].to_numpy(dtype=float))]
    factors = [f["name"] for f in data.manifest["factors"]]
    base = _stats(runs, ["point", "policy", "outcome"], "value", level)
    cols = ["point", "policy", "outcome", "n", "mean", "ci_low", "ci_high"]
    if runs.empty:
        table = pd.DataFrame(columns=cols + ["diff_n", "diff_mean", "diff_low", "diff_high"])
    else:
        wide = _wide(runs)
        diffs = []
        if BASELINE in wide.columns:
            for p in wide.columns:
                if p == BASELINE:
                    continue
                d = (wide[p] - wide[BASELINE]).rename("diff").reset_index()
                d = d[np.isfinite(d["diff"].to_numpy(dtype=float))]
                s = _stats(d, ["point", "outcome"], "diff", level)
                s.insert(1, "policy", p)
                diffs.append(s)
        d = pd.concat(diffs) if diffs else pd.DataFrame(columns=["point", "policy", "outcome", "n", "mean", "ci_low", "ci_high"])
        d = d.rename(columns={"n": "diff_n", "mean": "diff_mean", "ci_low": "diff_low", "ci_high": "diff_high"})
        table = base.merge(d, on=["point", "policy", "outcome"], how="left")
    design = pd.DataFrame(data.manifest["points"])
    if not design.empty:
        table = table.merge(design[["point", *factors]], on="point", how="left")
    order = {o: i for i, o in enumerate(OUTCOMES)}
    pol_order = {p: i for i, p in enumerate(data.manifest["policies"])}
    table = table.assign(_o=table["outcome"].map(order), _p=table["policy"].map(pol_order))
    table = table.sort_values(["point", "_p", "_o"], kind="stable").drop(columns=["_o", "_p"])
    return table[["point", *factors, "policy", "outcome", "n", "mean", "ci_low", "ci_high", "diff_n", "diff_mean",
                  "diff_low", "diff_high"]].reset_index(drop=True)


def winners(data: BatchData, outcome: str = TARGET, level: float = LEVEL) -> pd.DataFrame:
    """Per design point: the policy with the highest mean `outcome`, the runner-up, and the paired interval of the lead.

    `clear` is True when that interval excludes 0 (the ranking is not noise)."""
    runs = data.runs[(data.runs["outcome"] == outcome)]
    cols = ["point", "winner", "runner_up", "n", "lead", "lead_low", "lead_high", "clear"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    cube = runs.pivot_table(index=["point", "replication"], columns="policy", values="value", aggfunc="first",
                            dropna=False)
    policies = list(cube.columns)
    points = cube.index.get_level_values("point").unique().sort_values()
    reps = cube.index.get_level_values("replication").unique().sort_values()
    full = cube.reindex(pd.MultiIndex.from_product([points, reps], names=["point", "replication"]))
    arr = full.to_numpy(dtype=float).reshape(len(points), len(reps), len(policies))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a point where a policy failed in every replication
        means = np.nanmean(np.where(np.isfinite(arr), arr, np.nan), axis=1) if arr.size else np.empty((0, len(policies)))
    ranked = np.argsort(-np.where(np.isnan(means), -np.inf, means), axis=1, kind="stable")
    best = ranked[:, 0]
    second = ranked[:, 1] if len(policies) > 1 else ranked[:, 0]
    idx = np.arange(len(points))
    d = arr[idx, :, best] - arr[idx, :, second]
    ok = np.isfinite(d)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lead = np.where(n > 0, np.nansum(np.where(ok, d, 0.0), axis=1) / np.maximum(n, 1), np.nan)
        var = np.nansum(np.where(ok, (d - lead[:, None]) ** 2, 0.0), axis=1) / np.maximum(n - 1, 1)
    lo, hi = _interval(n, lead, np.sqrt(var), level)
    names = np.array(policies, dtype=object)
    out = pd.DataFrame({"point": points.to_numpy(), "winner": names[best], "runner_up": names[second], "n": n,
                        "lead": lead, "lead_low": lo, "lead_high": hi})
    out["clear"] = (out["lead_low"] > 0).fillna(False).astype(bool) if len(policies) > 1 else False
    return out[cols]


# --------------------------------------------------------------------------- sensitivity
def sensitivity_indices(X: np.ndarray, y: np.ndarray, names: Sequence[str], *, boot: int = 1000, seed: int = 0,
                        level: float = LEVEL) -> pd.DataFrame:
    """SRC and PRCC of `y` on the columns of `X`, with percentile bootstrap intervals over rows.

    Returns one row per factor: src, src_low, src_high, prcc, prcc_low,
    prcc_high, prcc_p (two-sided t test of PRCC = 0 with n - k - 1 degrees of
    freedom), and r2 (of the linear model behind SRC, the same on every row).
    Constant factors get NaN; fewer than k + 3 rows give an empty table."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    X, y = X[keep], y[keep]
    n, k = X.shape
    cols = ["factor", "src", "src_low", "src_high", "prcc", "prcc_low", "prcc_high", "prcc_p", "r2"]
    if k == 0 or n < k + 3:
        return pd.DataFrame(columns=cols)
    src, r2 = _src(X, y)
    prcc = _prcc(X, y)
    rng = np.random.default_rng(seed)
    bs_src = np.full((boot, k), np.nan)
    bs_prcc = np.full((boot, k), np.nan)
    for b in range(boot):
        rows = rng.integers(0, n, n)
        bs_src[b], _ = _src(X[rows], y[rows])
        bs_prcc[b] = _prcc(X[rows], y[rows])
    a = 100 * (1 - level) / 2
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where a factor is constant
        s_lo, s_hi = np.nanpercentile(bs_src, [a, 100 - a], axis=0)
        p_lo, p_hi = np.nanpercentile(bs_prcc, [a, 100 - a], axis=0)
        df = n - k - 1
        t = prcc * np.sqrt(df / np.maximum(1 - prcc ** 2, 1e-300))
        pval = 2 * student_t.sf(np.abs(t), df)
    return pd.DataFrame({"factor": list(names), "src": src, "src_low": s_lo, "src_high": s_hi, "prcc": prcc,
                         "prcc_low": p_lo, "prcc_high": p_hi, "prcc_p": pval, "r2": r2})[cols]


def _src(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    sx = X.std(axis=0, ddof=1)
    sy = y.std(ddof=1)
    live = sx > 0
    out = np.full(X.shape[1], np.nan)
    if sy == 0 or not live.any():
        return out, float("nan")
    Z = (X[:, live] - X[:, live].mean(axis=0)) / sx[live]
    yz = (y - y.mean()) / sy
    A = np.column_stack([np.ones(len(y)), Z])
    coef, *_ = np.linalg.lstsq(A, yz, rcond=None)
    out[live] = coef[1:]
    resid = yz - A @ coef
    return out, float(1 - (resid @ resid) / (yz @ yz))


def _prcc(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    R = np.column_stack([rankdata(X[:, j]) for j in range(X.shape[1])]) if X.shape[1] else X
    ry = rankdata(y)
    k = X.shape[1]
    out = np.full(k, np.nan)
    live = [j for j in range(k) if np.ptp(R[:, j]) > 0]
    for j in live:
        others = [i for i in live if i != j]
        A = np.column_stack([np.ones(len(y))] + [R[:, i] for i in others])
        ex = R[:, j] - A @ np.linalg.lstsq(A, R[:, j], rcond=None)[0]
        ey = ry - A @ np.linalg.lstsq(A, ry, rcond=None)[0]
        den = math.sqrt(float(ex @ ex) * float(ey @ ey))
        out[j] = float(ex @ ey) / den if den > 0 else np.nan
    return out


def salib_indices(X: np.ndarray, y: np.ndarray, names: Sequence[str], bounds: Sequence[tuple[float, float]],
                  seed: int = 0) -> pd.DataFrame | None:
    """SALib's delta and S1 indices from the given sample, or None when SALib is not installed."""
    if importlib.util.find_spec("SALib") is None:
        return None
    from SALib.analyze import delta

    keep = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    problem = {"num_vars": len(names), "names": list(names), "bounds": [list(b) for b in bounds]}
    res = delta.analyze(problem, np.asarray(X, dtype=float)[keep], np.asarray(y, dtype=float)[keep],
                        print_to_console=False, seed=seed)
    return pd.DataFrame({"factor": list(names), "delta": res["delta"], "delta_conf": res["delta_conf"],
                         "s1": res["S1"], "s1_conf": res["S1_conf"]})


def sensitivity(data: BatchData, summary: pd.DataFrame, outcome: str = TARGET, boot: int = 1000) -> pd.DataFrame:
    """For sampled designs: sensitivity of each policy's paired difference vs the baseline in `outcome` to the numeric factors."""
    man = data.manifest
    numeric = [f for f in man["factors"] if f["dtype"] in ("float64", "int64")]
    if man["design"]["type"] == "grid" or not numeric:
        return pd.DataFrame()
    rows = []
    sub = summary[(summary["outcome"] == outcome) & (summary["policy"] != BASELINE)]
    names = [f["name"] for f in numeric]
    for policy, g in sub.groupby("policy", sort=False):
        g = g.sort_values("point")
        X = g[names].to_numpy(dtype=float)
        y = g["diff_mean"].to_numpy(dtype=float)
        s = sensitivity_indices(X, y, names, boot=boot, seed=int(man["design"].get("seed") or 0))
        if s.empty:
            continue
        bounds = [(float(np.nanmin(X[:, j])), float(np.nanmax(X[:, j]))) for j in range(len(names))]
        extra = salib_indices(X, y, names, bounds, seed=int(man["design"].get("seed") or 0))
        if extra is not None:
            s = s.merge(extra, on="factor", how="left")
        s.insert(0, "policy", policy)
        s.insert(1, "outcome", f"{outcome} difference vs {BASELINE}")
        rows.append(s)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


# --------------------------------------------------------------------------- figures
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


def policy_overview(data: BatchData, summary: pd.DataFrame, win: pd.DataFrame) -> pd.DataFrame:
    """Per policy: mean net profit over points, its mean difference vs 'none', and in how many points it wins or loses clearly."""
    s = summary[summary["outcome"] == TARGET]
    rows = []
    for p in data.manifest["policies"]:
        g = s[s["policy"] == p]
        rows.append({
            "policy": p,
            "points": int(g["point"].nunique()),
            "mean_net_profit": float(g["mean"].mean()) if len(g) else float("nan"),
            "mean_diff_vs_none": float(g["diff_mean"].mean()) if p != BASELINE and len(g) else float("nan"),
            "better_than_none": int((g["diff_low"] > 0).sum()) if p != BASELINE else 0,
            "worse_than_none": int((g["diff_high"] < 0).sum()) if p != BASELINE else 0,
            "clear_wins": int(((win["winner"] == p) & win["clear"]).sum()),
        })
    return pd.DataFrame(rows)


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


def main_batch_report(argv: Sequence[str] | None = None) -> int:
    """`lab batch-report DIR [--out FILE.html]`: write the report and print a short table; returns the exit code."""
    p = argparse.ArgumentParser(prog="lab batch-report", description="Analyse a batch store: intervals per design point, "
                                "win maps, sensitivity; writes a self-contained HTML report and CSV tables.")
    p.add_argument("store", help="the --out folder of a 'lab batch' run")
    p.add_argument("--out", help="the HTML report to write (default: STORE/report.html)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for sensitivity intervals (default 1000)")
    try:
        args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as e:
        return int(e.code or 0)
    if args.bootstrap < 10:
        print("lab batch-report: --bootstrap needs at least 10 resamples, e.g. --bootstrap 1000", file=sys.stderr)
        return 2
    try:
        report = write_batch_report(args.store, args.out, boot=args.bootstrap)
    except BatchError as e:
        print(f"lab batch-report: {e}", file=sys.stderr)
        return 2
    print(format_overview(report.overview))
    sens = report.sensitivity
    if not sens.empty:
        for policy, g in sens.groupby("policy", sort=False):
            top = g.reindex(g["prcc"].abs().sort_values(ascending=False).index).head(3)
            text = ", ".join(f"{r.factor} (PRCC {r.prcc:+.2f} [{r.prcc_low:+.2f}, {r.prcc_high:+.2f}])"
                             for r in top.itertuples())
            print(f"{policy} vs {BASELINE}, net profit driven by: {text}")
    for name, path in report.paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main_batch_report(sys.argv[1:]))
