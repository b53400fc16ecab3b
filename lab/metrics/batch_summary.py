"""Summary statistics of a batch dataset: intervals per design point and policy, and where each policy wins.

* Per design point and policy, each outcome's mean over replications with a
  95% Student-t interval (the formula of lab.metrics.stats.mean_ci), and the
  paired difference against the baseline 'none' (paired_diff_ci: replication
  k of both policies shares its random streams, so the pairs are
  differenced first). Computed for all groups at once with the same formula;
  failed runs and undefined values (NaN) are left out, so n says how many
  replications a number rests on.
* Winner per point on net profit: the policy with the highest mean, marked
  clear when the paired interval of its lead over the runner-up excludes 0.
* Per policy, an overview over the design points (mean net profit, its
  difference from the baseline, points better, worse, clearly won).

The figures and the HTML report drawn from these tables are in lab.report.batch.
"""

from __future__ import annotations

import warnings
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from lab.metrics.outcomes import OUTCOMES
from lab.scenario.loader import BASELINE

__all__ = ["LEVEL", "TARGET", "BatchTables", "interval", "policy_overview", "summary_table", "winners"]

LEVEL = 0.95
TARGET = "net_profit"


class BatchTables(Protocol):
    """What the batch statistics read from a dataset (lab.batch.BatchData has it): long tables and the manifest."""

    @property
    def runs(self) -> pd.DataFrame: ...

    @property
    def failures(self) -> pd.DataFrame: ...

    @property
    def manifest(self) -> dict[str, Any]: ...


def interval(n: np.ndarray, mean: np.ndarray, sd: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
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
    lo, hi = interval(out["n"].to_numpy(), out["mean"].to_numpy(), out["sd"].to_numpy(), level)
    out["ci_low"], out["ci_high"] = lo, hi
    return out.drop(columns="sd")


def _wide(runs: pd.DataFrame) -> pd.DataFrame:
    """Values indexed by (point, replication, outcome), one column per policy."""
    return runs.pivot_table(index=["point", "replication", "outcome"], columns="policy", values="value",
                            aggfunc="first", dropna=False)


def summary_table(data: BatchTables, level: float = LEVEL) -> pd.DataFrame:
    """Per design point, policy and outcome: n, mean and interval over replications, and the paired difference vs
    'none'."""
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
        d = (pd.concat(diffs) if diffs
             else pd.DataFrame(columns=["point", "policy", "outcome", "n", "mean", "ci_low", "ci_high"]))
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


def winners(data: BatchTables, outcome: str = TARGET, level: float = LEVEL) -> pd.DataFrame:
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
        means = (np.nanmean(np.where(np.isfinite(arr), arr, np.nan), axis=1) if arr.size
                 else np.empty((0, len(policies))))
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
    lo, hi = interval(n, lead, np.sqrt(var), level)
    names = np.array(policies, dtype=object)
    out = pd.DataFrame({"point": points.to_numpy(), "winner": names[best], "runner_up": names[second], "n": n,
                        "lead": lead, "lead_low": lo, "lead_high": hi})
    out["clear"] = (out["lead_low"] > 0).fillna(False).astype(bool) if len(policies) > 1 else False
    return out[cols]



def policy_overview(data: BatchTables, summary: pd.DataFrame, win: pd.DataFrame) -> pd.DataFrame:
    """Per policy: mean net profit over points, its mean difference vs 'none', and in how many points it wins or loses
    clearly."""
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

