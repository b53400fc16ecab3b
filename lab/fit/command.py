"""`lab fit TRANSACTIONS ...`: fit a scenario to a transaction log (docs/FIT.md).

:func:`add_arguments` declares the options on an argparse parser; :func:`main` runs the fit and
writes DIR/fit.json, DIR/scenario.yaml, DIR/customers.parquet and DIR/fit.html. Bad input raises
:class:`lab.errors.LabError` (the CLI prints it and exits with 2); warnings about rows that were
left out or merged are printed to stderr in the same FILE:LINE:COL form.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from lab.errors import LabError

__all__ = ["add_arguments", "main", "DESCRIPTION"]

DESCRIPTION = ("Fit BG/NBD or Pareto/NBD (purchase timing and dropout) and Gamma-Gamma (spend) to a transaction log "
               "by maximum likelihood, and write a scenario carrying the fitted parameters (DIR/scenario.yaml), "
               "the estimates (DIR/fit.json) and a report with the standard diagnostics (DIR/fit.html). Several "
               "purchases by one customer on one day count as one transaction.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare `lab fit`'s arguments on ``p``."""
    p.add_argument("transactions", metavar="TRANSACTIONS",
                   help="a CSV or Parquet log, one row per purchase (customer id, date or number of days, amount)")
    p.add_argument("--customer", metavar="COL", help="the customer id column (default: guessed, e.g. customer_id)")
    p.add_argument("--time", metavar="COL",
                   help="the date column: ISO dates, YYYYMMDD, or numbers of days (default: guessed, e.g. date, time)")
    p.add_argument("--amount", metavar="COL", help="the amount column (default: guessed, e.g. amount, sales)")
    p.add_argument("--category", metavar="COL",
                   help="a product category column: fits the category mix and mean prices "
                        "(default: 'category' if present)")
    p.add_argument("--segment", metavar="COL",
                   help="a segment column: each segment is also fitted separately and becomes a segment "
                        "of the scenario")
    p.add_argument("--until", metavar="DATE",
                   help="end of the calibration period, inclusive (default: the last date in the log)")
    p.add_argument("--holdout-until", metavar="DATE",
                   help="end of a holdout period after --until, to validate the fit against")
    p.add_argument("--time-unit", choices=("days", "weeks"), default="weeks",
                   help="time unit of the fitted rates (default: weeks)")
    p.add_argument("--model", choices=("bgnbd", "paretonbd", "auto"), default="auto",
                   help="purchase model; auto fits both and picks the lower BIC (default: auto)")
    p.add_argument("--out", metavar="DIR",
                   help="output folder (default: results/fit-NAME where NAME is the log's file name)")


def _name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", path.stem).strip("_") or "log"
    return f"fit_{stem}"


def main(args: argparse.Namespace) -> int:
    """Run `lab fit`; return the exit code (0). Bad input raises LabError."""
    from lab.fit.pipeline import FitOptions, fit_json, fit_log  # pandas and scipy: only when fitting
    from lab.fit.report import write_report
    from lab.fit.scenario_writer import write_base, write_scenario

    path = Path(args.transactions)
    opts = FitOptions(columns={"customer": args.customer, "time": args.time, "amount": args.amount,
                               "category": args.category, "segment": args.segment},
                      until=args.until, holdout_until=args.holdout_until, time_unit=args.time_unit, model=args.model)
    t0 = time.perf_counter()
    res = fit_log(path, opts)
    out = Path(args.out) if args.out else Path("results") / f"fit-{path.stem}"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LabError.at("<command line>", 1, 1, f"cannot create the output folder {out}: {e.strerror}") from None
    for w in res.warnings:
        print(str(w), file=sys.stderr)
    s = res.summary
    doc = fit_json(res)
    (out / "fit.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    base = write_base(res, out)
    scen = write_scenario(res, out, _name(path))
    report = write_report(res, out)
    g = res.base
    print(f"{path.name}: {s.rows:,} rows, {len(s.customers):,} customers, {s.transactions:,} transactions in "
          f"calibration ({s.day_label(s.start_day)} to {s.day_label(s.calibration_end_day)}); several purchases by "
          f"one customer on one "
          f"day count as one transaction ({s.merged_rows:,} rows merged)")
    for m, f in g.models.items():
        ps = ", ".join(f"{k} {v:.4g}" + (f" (se {f.se[k]:.2g})" if f.se[k] is not None else " (se unknown)")
                       for k, v in f.params.items())
        print(f"  {m}: {ps}; log-likelihood {f.log_likelihood:,.2f}, BIC {f.bic:,.1f}"
              f"{'' if f.converged else ', NOT CONVERGED'}")
    sp = g.spend
    ps = ", ".join(f"{k} {v:.4g}" + (f" (se {sp.se[k]:.2g})" if sp.se[k] is not None else " (se unknown)")
                   for k, v in sp.params.items())
    print(f"  spend (Gamma-Gamma, {g.spend_customers:,} customers): {ps}; log-likelihood {sp.log_likelihood:,.2f}")
    print(f"  chosen: {g.reason}")
    if g.holdout is not None:
        print(f"  holdout to {s.day_label(s.holdout_end_day)}: {g.holdout.actual:,.0f} repeat transactions, "
              f"predicted {g.holdout.predicted:,.1f}")
    for name, sg in res.segments.items():
        print(f"  segment {name}: {len(sg.customers):,} customers, {sg.chosen} "
              + ", ".join(f"{k} {v:.4g}" for k, v in sg.purchase.params.items()))
    print(f"({time.perf_counter() - t0:.1f} s)")
    for written in (out / "fit.json", scen, base, report):
        print(f"wrote {written}")
    return 0
