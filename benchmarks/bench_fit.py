"""How long `lab fit` takes on a large log: 100,000 customers, about 1,000,000 transactions.

The log is drawn from BG/NBD customers (r 2, alpha 8, a 0.5, b 5, in weeks) arriving evenly over a
year and watched for two, with Gamma-Gamma spend and three categories, dates in ISO form, written
once as CSV and once as Parquet under a temporary folder. The script then times each stage of the
fit (reading and summarising, each model's estimation, the holdout and the report) and prints a
table. It is a measurement, not a test.

    python benchmarks/bench_fit.py [--customers 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.fit.data import summarise  # noqa: E402
from lab.fit.estimate import fit_bgnbd, fit_gamma_gamma, fit_paretonbd  # noqa: E402
from lab.fit.holdout import holdout_check  # noqa: E402
from lab.fit.pipeline import FitOptions, fit_log  # noqa: E402
from lab.fit.report import write_report  # noqa: E402
from lab.fit.scenario_writer import write_scenario  # noqa: E402

TRUE = dict(r=2.0, alpha=8.0, a=0.5, b=5.0)


def make_log(n: int, seed: int) -> pd.DataFrame:
    """One row per purchase of n BG/NBD customers (vectorised over purchase index, like btyd.bgnbd_sample)."""
    rng = np.random.default_rng(seed)
    weeks = 104.0
    arrive = np.floor(rng.uniform(0, 52, n) * 7) / 7
    lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    p = rng.beta(TRUE["a"], TRUE["b"], n)
    nu = rng.gamma(3.74, 1 / 15.44, n)
    who = [np.arange(n)]
    when = [arrive.copy()]
    clock = arrive.copy()
    active = np.arange(n)
    while active.size:
        nxt = clock[active] + rng.standard_exponential(active.size) / lam[active]
        ok = nxt <= weeks
        active, nxt = active[ok], nxt[ok]
        who.append(active)
        when.append(nxt)
        clock[active] = nxt
        active = active[rng.random(active.size) >= p[active]]
    cust = np.concatenate(who)
    t = np.concatenate(when)
    amount = np.round(rng.gamma(6.25, 1.0, cust.size) / nu[cust], 2)
    day = np.floor(t * 7).astype(np.int64)
    date = (np.datetime64("2023-01-02") + day.astype("timedelta64[D]")).astype(str)
    cats = np.array(["food", "drink", "gifts"])[rng.choice(3, cust.size, p=[0.5, 0.35, 0.15])]
    return pd.DataFrame({"customer_id": cust + 100000, "date": date, "amount": amount, "category": cats})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    log = make_log(args.customers, args.seed)
    print(f"generated {len(log):,} rows from {args.customers:,} customers in {time.perf_counter() - t0:.1f} s")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("csv", "parquet"):
            path = Path(tmp) / f"log.{fmt}"
            log.to_csv(path, index=False) if fmt == "csv" else log.to_parquet(path, index=False)
            t = time.perf_counter()
            s = summarise(path, until="2024-06-30", holdout_until="2024-12-29")
            rows.append((fmt, "read + summarise", time.perf_counter() - t))
            c = s.customers
            x, tx, T = (c[k].to_numpy() for k in ("x", "t_x", "T"))
            t = time.perf_counter()
            bg = fit_bgnbd(x, tx, T)
            rows.append((fmt, "fit BG/NBD", time.perf_counter() - t))
            t = time.perf_counter()
            fit_paretonbd(x, tx, T, bg.params)
            rows.append((fmt, "fit Pareto/NBD", time.perf_counter() - t))
            m = x > 0
            t = time.perf_counter()
            fit_gamma_gamma(x[m], c["mean_repeat_spend"].to_numpy()[m])
            rows.append((fmt, "fit Gamma-Gamma", time.perf_counter() - t))
            t = time.perf_counter()
            holdout_check(s, "bgnbd", bg.params)
            rows.append((fmt, "holdout", time.perf_counter() - t))
            t = time.perf_counter()
            res = fit_log(path, FitOptions(until="2024-06-30", holdout_until="2024-12-29", model="auto"))
            rows.append((fmt, "whole fit, --model auto (summary, both models, spend, holdout)",
                         time.perf_counter() - t))
            t = time.perf_counter()
            out = Path(tmp) / f"out-{fmt}"
            out.mkdir()
            write_scenario(res, out, "bench")
            write_report(res, out)
            rows.append((fmt, "scenario.yaml + fit.html", time.perf_counter() - t))
        print(f"\n{s.rows:,} rows, {len(s.customers):,} customers in calibration, "
              f"{s.transactions:,} calibration transactions, "
              f"{s.merged_rows:,} same-day rows merged")
        print("BG/NBD fit: " + ", ".join(f"{k} {v:.4g} (se {bg.se[k]:.2g}; true {TRUE[k]})"
                                         for k, v in bg.params.items()))
        print("\n| format | stage | seconds |\n|---|---|---|")
        for fmt, stage, sec in rows:
            print(f"| {fmt} | {stage} | {sec:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
