"""A store born on day 0 against a store in steady state: the day-0 cohort's artefacts, measured before and after.

    python benchmarks/warmup.py scenarios/apparel.yaml

Runs the scenario under 'none' and 'points' (replication 0 of `lab compare`'s streams) twice: as shipped (a
warm-up while the starting customers arrive, then the launch) and as a day-0 cohort (launch_day 0,
arrival_days 0, the same measured horizon), and prints for the measured periods: the first week's share of
revenue, the first period's market share, the staff-satisfaction range, and the largest week of expired
points under 'points' against the median week (the cliffs of lots synchronised by a common start). It also
prints each run's wall time (the cost of the warm-up). docs/MODEL.md ("Launch day") quotes its output.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab.engine.options import RunOptions  # noqa: E402
from lab.engine.simulate import Simulation  # noqa: E402
from lab.metrics.tables import timeseries  # noqa: E402
from lab.scenario.loader import load_scenario  # noqa: E402
from lab.scenario.model import Scenario  # noqa: E402


def day0(sc: Scenario) -> Scenario:
    """The same store and measured horizon, born on day 0 as one cohort with the policy from day 0."""
    return dataclasses.replace(sc, launch_day=0, days=sc.days - sc.launch_day,
                               population=dataclasses.replace(sc.population, arrival_days=0))


def warmed(sc: Scenario, days: int) -> Scenario:
    """The same store and measured horizon with a warm-up of `days` while the starting customers arrive."""
    measured = sc.days - sc.launch_day
    return dataclasses.replace(sc, launch_day=days, days=days + measured,
                               population=dataclasses.replace(sc.population, arrival_days=days))


def measure(path: str, warm_up: int | None = None) -> list[str]:
    ls = load_scenario(path, ["none", "points"])
    out = []
    shipped = ls.scenario if warm_up is None else warmed(ls.scenario, warm_up)
    for label, sc in (("day-0 cohort", day0(ls.scenario)), ("as shipped" if warm_up is None else "warmed", shipped)):
        for pol in ("none", "points"):
            t0 = time.perf_counter()
            raw = Simulation(sc, ls.policies[pol], RunOptions(seed=sc.seed, address=(0,))).run()
            dt = time.perf_counter() - t0
            ts = timeseries(raw.record)
            m = ts[ts.day_start >= sc.launch_day].reset_index(drop=True)
            rev = m["revenue"].to_numpy(dtype=float)
            line = (f"{label} ({sc.launch_day} days warm-up, {sc.days - sc.launch_day} measured), {pol}: "
                    f"{dt:.1f} s")
            if pol == "none":
                ss = m["staff_satisfaction"].to_numpy(dtype=float)
                line += (f"; week 1 = {100 * rev[0] / rev.sum():.1f}% of revenue ({rev[0] / np.median(rev):.2f}x the "
                         f"median week); first-period market share {100 * m['market_share'].iloc[0]:.1f}% (median "
                         f"{100 * m['market_share'].median():.1f}%); staff satisfaction {ss[0]:.2f} at the start, "
                         f"peak {ss.max():.2f} in week {int(ss.argmax()) + 1}, {ss[-1]:.2f} at the end")
            else:
                e = m["points_expired"].to_numpy(dtype=float)
                if e.sum() > 0:
                    k = int(e.argmax())
                    line += (f"; largest week of expired points {e[k]:.0f} (day {int(m['day_start'][k])} of the "
                             f"run), {e[k] / np.median(e[e > 0]):.1f}x the median week with expiries")
            out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", help="a scenario with a launch_day (e.g. scenarios/apparel.yaml)")
    ap.add_argument("--warm-up", type=int, default=None, help="a warm-up of this many days instead of the "
                    "scenario's (the same measured horizon)")
    args = ap.parse_args(argv)
    for line in measure(args.scenario, args.warm_up):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
