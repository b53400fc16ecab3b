"""Regenerate tests/data/fit_example.csv: the lab's own transaction log of a known store.

Runs tests/data/fit_example_scenario.yaml under the `none` policy with behaviour off (seed 2005),
keeps the purchase log (`lab run --transactions`), and writes it as a retailer would export it:
one row per purchase with customer_id, an ISO date (day 0 is 2024-01-01, the time of day
dropped), the amount in dollars (2 decimals), the category and the customer's segment.

    python tests/data/make_fit_example.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.experiment.run import run_policy
from lab.scenario.loader import load_scenario

HERE = Path(__file__).resolve().parent
SEED = 2005
ORIGIN = np.datetime64("2024-01-01")


def main() -> None:
    ls = load_scenario(HERE / "fit_example_scenario.yaml")
    res = run_policy(ls.scenario, ls.policies["none"], SEED, transactions=True)
    tx = res.transactions
    assert tx is not None
    seg = res.customers.set_index("customer_id")["segment"].astype(str)
    out = tx[["customer_id", "time", "amount", "category"]].copy()
    out["date"] = (ORIGIN + np.floor(out["time"].to_numpy()).astype("timedelta64[D]")).astype(str)
    out["amount"] = out["amount"].round(2)
    out["segment"] = seg.reindex(out["customer_id"]).to_numpy()
    out = out[["customer_id", "date", "amount", "category", "segment"]]
    path = HERE / "fit_example.csv"
    out.to_csv(path, index=False)
    print(f"wrote {path}: {len(out):,} rows, {out['customer_id'].nunique():,} customers")


if __name__ == "__main__":
    main()
