"""Outcomes of a run, each defined once, here (docs/OUTPUTS.md gives the formulas).

A run's raw record (daily books, the customer table, the programme's ledgers)
becomes three things: scalar outcomes, a per-period time series of the store
and the flywheel, and a per-customer table. Comparisons, batches and reports
all read these and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lab.engine.record import RawRun
from lab.metrics.stats import top_share

# name -> (unit, higher is better?, description); the order is the order of tables
OUTCOMES: dict[str, tuple[str, bool | None, str]] = {
    "revenue": ("$", True, "money taken from customers: gross sales less every discount"),
    "gross_profit": ("$", True, "revenue less cost of goods sold and of free items and trials"),
    "net_profit": ("$", True, "gross profit less wages, hiring, fixed costs, marketing, offers, programme running costs, bad debt and profit sharing, plus credit interest and fees"),
    "programme_cost": ("$", False, "discounts given by the programme + cost of free items and trials + offers + running costs"),
    "points_liability": ("$", False, "value of points outstanding at the end"),
    "breakage_rate": ("share", None, "points expired / (points expired + points redeemed)"),
    "credit_outstanding": ("$", None, "credit balances owed at the end"),
    "bad_debt": ("$", False, "credit principal written off (unpaid interest and fees were never income)"),
    "active_customers": ("customers", True, "customers still alive (not dropped out) at the end"),
    "retention_12m": ("share", True, "of customers acquired at least 365 days before the end, the share still alive 365 days after acquisition"),
    "repeat_purchase_rate": ("share", True, "share of customers who bought at least twice"),
    "mean_clv": ("$", True, "mean discounted margin per customer since acquisition (revenue less cost of goods and rewards)"),
    "top20_revenue_share": ("share", None, "share of revenue from the top 20% of customers (the 80/20 rule)"),
    "acquired": ("customers", None, "customers acquired during the run (marketing and referrals)"),
    "lost": ("customers", False, "customers who dropped out during the run"),
    "customer_satisfaction": ("0-1", True, "mean satisfaction of alive customers at the end"),
    "staff_turnover": ("per year", False, "staff leavers per member of staff per year"),
    "service_quality": ("0-1", True, "mean service quality over the run"),
    "purchases": ("purchases", True, "purchases during the run"),
}
HEADLINE = ("net_profit", "revenue", "retention_12m", "active_customers")


def outcomes(raw: RawRun) -> dict[str, float]:
    """The scalar outcomes of one run."""
    d = raw.daily
    c = raw.customers
    n = c.n
    days = raw.days
    rt = raw.runtime
    acquired_at = c.acquired_at[:n]
    alive = c.alive[:n]
    dropped = c.dropped_at[:n]
    cohort = acquired_at <= days - 365
    if cohort.any():
        survived = alive[cohort] | (dropped[cohort] > acquired_at[cohort] + 365)
        retention = float(survived.mean())
    else:
        retention = float("nan")
    expired = float(sum(b.expired.sum() for b in rt.points.values()))
    redeemed = float(sum(b.redeemed.sum() for b in rt.points.values()))
    sat = d["customer_satisfaction"]
    sat_last = sat[~np.isnan(sat)][-1] if np.any(~np.isnan(sat)) else float("nan")
    staff = raw.scenario.store.staff.count
    programme_cost = float(d["discounts"].sum() + d["reward_goods_cost"].sum() + d["offers_cost"].sum()
                           + d["programme_running_cost"].sum())
    return {
        "revenue": float(d["revenue"].sum()),
        "gross_profit": float(d["gross_profit"].sum()),
        "net_profit": float(d["net_profit"].sum()),
        "programme_cost": programme_cost,
        "points_liability": float(d["points_liability"][-1]),
        "breakage_rate": expired / (expired + redeemed) if expired + redeemed > 0 else float("nan"),
        "credit_outstanding": float(d["credit_outstanding"][-1]),
        "bad_debt": float(d["bad_debt"].sum()),
        "active_customers": float(alive.sum()),
        "retention_12m": retention,
        "repeat_purchase_rate": float((c.purchases[:n] >= 2).mean()) if n else float("nan"),
        "mean_clv": float(c.clv[:n].mean()) if n else float("nan"),
        "top20_revenue_share": float(top_share(c.revenue[:n], 0.2)) if n else float("nan"),
        "acquired": float(d["acquired"].sum()),
        "lost": float(d["lost"].sum()),
        "customer_satisfaction": float(sat_last),
        "staff_turnover": float(d["staff_quits"].sum()) / staff / (days / 365.0),
        "service_quality": float(d["service_quality"].mean()),
        "purchases": float(d["purchases"].sum()),
    }


# how each daily column becomes a per-period value
_STOCKS = ("alive", "customers", "members", "points_outstanding", "points_liability", "credit_outstanding",
           "unit_cost_factor", "staff_satisfaction", "staff_experience_days", "repeat_sales_share", "market_share")
_MEANS = ("service_quality", "service_load", "customer_satisfaction")


def timeseries(raw: RawRun) -> pd.DataFrame:
    """One row per period: flows summed, stocks at the period's end, rates averaged. Time in days."""
    d = raw.daily
    p = raw.scenario.period_days
    day = d["day"].astype(int)
    period = day // p
    frame = pd.DataFrame({k: v for k, v in d.items() if k != "day"})
    frame["period"] = period
    agg: dict[str, str] = {}
    for k in frame.columns:
        if k == "period":
            continue
        agg[k] = "last" if k in _STOCKS else ("mean" if k in _MEANS else "sum")
    out = frame.groupby("period", sort=True).agg(agg).reset_index()
    out.insert(1, "day_start", out["period"] * p)
    out.insert(2, "day_end", np.minimum((out["period"] + 1) * p, raw.days))
    gp, rev = out["gross_profit"].to_numpy(), out["revenue"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["margin"] = np.where(rev > 0, gp / np.where(rev > 0, rev, 1.0), np.nan)
    out["net_customers"] = out["acquired"] - out["lost"]
    return out


def customer_table(raw: RawRun) -> pd.DataFrame:
    """One row per customer ever acquired."""
    c = raw.customers
    n = c.n
    rt = raw.runtime
    idx = np.arange(n)
    seg_names = np.array(raw.scenario.population.segments and list(raw.scenario.population.segments), dtype=object)
    frame = pd.DataFrame({
        "customer_id": idx,
        "segment": pd.Categorical.from_codes(c.seg[:n], categories=list(seg_names)),
        "acquired_at": c.acquired_at[:n],
        "referred": c.referred[:n],
        "member": raw.member[:n],
        "purchases": c.purchases[:n],
        "revenue": c.revenue[:n],
        "discounts": c.discounts[:n],
        "clv": c.clv[:n],
        "last_purchase": c.last_purchase[:n],
        "churned": ~c.alive[:n],
        "dropped_at": c.dropped_at[:n],
        "referrals": c.referrals[:n],
    })
    if rt.policy.tiers is not None:
        frame["tier"] = pd.Categorical.from_codes(rt.tier[:n], categories=list(rt.tier_names))
    for name, book in rt.points.items():
        frame[f"points_{name}"] = book.lots[:n].sum(axis=1)
    for name, book in rt.credit.items():
        frame[f"credit_owed_{name}"] = book.owed[:n]
        frame[f"credit_written_off_{name}"] = book.written_off[:n]
    return frame


def transaction_table(raw: RawRun) -> pd.DataFrame | None:
    """One row per purchase, when the run kept them."""
    tx = raw.transactions
    if tx is None:
        return None
    cats = list(raw.scenario.store.categories)
    ids = raw.rule_ids
    masks = tx["rules"].astype(np.uint64)
    labels = np.full(len(masks), "", dtype=object)
    uniq, inv = np.unique(masks, return_inverse=True)
    names = []
    for u in uniq:
        names.append(";".join(ids[i] for i in range(min(len(ids), 64)) if int(u) >> i & 1))
    labels = np.array(names, dtype=object)[inv] if len(uniq) else labels
    return pd.DataFrame({
        "customer_id": tx["customer_id"].astype(np.int64),
        "time": tx["time"],
        "amount": tx["amount"],
        "category": pd.Categorical.from_codes(tx["category"].astype(np.int64), categories=cats),
        "discount": tx["discount"],
        "credit": tx["credit"],
        "rules": labels,
    }).sort_values(["time", "customer_id"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class RunResult:
    """What one run gives its readers."""

    scenario: str
    policy: str
    seed: int
    address: tuple[int, ...]
    summary: dict[str, float]
    timeseries: pd.DataFrame
    customers: pd.DataFrame
    transactions: pd.DataFrame | None
    rule_fires: dict[str, int]
    rule_cost: dict[str, float]


def summarise(raw: RawRun, seed: int, address: tuple[int, ...]) -> RunResult:
    """Turn a raw run into its outcomes, series and tables."""
    acc = raw.runtime.accounts
    return RunResult(raw.scenario.name, raw.policy_name, seed, address, outcomes(raw), timeseries(raw),
                     customer_table(raw), transaction_table(raw), dict(acc.rule_fires), dict(acc.rule_cost))
