"""A store born on day 0 against a store in steady state: the day-0 cohort's artefacts, measured before and after.

    python benchmarks/warmup.py scenarios/apparel.yaml

Runs the scenario under 'none' and 'points' (replication 0 of `lab compare`'s streams) twice: as shipped (a
warm-up while the starting customers arrive, then the launch) and as a day-0 cohort (launch_day 0,
arrival_days 0, the same measured horizon), and prints for the measured periods: the first week's share of
revenue, the first period's market share, the staff-satisfaction range, and the largest week of expired
points under 'points' against the median week (the cliffs of lots synchronised by a common start). Under 'none'
it also prints how settled the store is at the launch: the customers alive then and their tenure mix (shares
under 90 days, 90 days to a year, over a year), and the drift over the measured horizon (revenue of its last 13
weeks against its first 13, customers alive at its end against the launch). It prints each run's wall time (the
cost of the warm-up). docs/MODEL.md ("Launch day") quotes its output.
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


def alive_on(day: float, acquired: np.ndarray, dropped: np.ndarray) -> np.ndarray:
    """Who is alive at the start of `day`: arrived by then (a day-0 cohort arrives at 0) and not yet dropped."""
    return (acquired <= day) & ~(dropped < day)


def settled(sc: Scenario, acquired: np.ndarray, dropped: np.ndarray, rev: np.ndarray) -> str:
    """The store at the launch (alive, tenure mix) and its drift over the measured horizon."""
    launch = alive_on(sc.launch_day, acquired, dropped)
    tenure = sc.launch_day - acquired[launch]
    end = alive_on(sc.days, acquired, dropped).sum()
    q = min(13, len(rev) // 2)
    return (f"alive at the launch {int(launch.sum())} (tenure <90 d {100 * np.mean(tenure < 90):.0f}%, 90-365 d "
            f"{100 * np.mean((tenure >= 90) & (tenure < 365)):.0f}%, >365 d {100 * np.mean(tenure >= 365):.0f}%), "
            f"at the end {int(end)} ({end / launch.sum():.2f}x); last {q} weeks' revenue "
            f"{rev[-q:].sum() / rev[:q].sum():.2f}x the first {q}")


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
            acquired = np.asarray(raw.record.customers.acquired_at, dtype=float)
            dropped = np.asarray(raw.record.customers.dropped_at, dtype=float)
            line = (f"{label} ({sc.launch_day} days warm-up, {sc.days - sc.launch_day} measured), {pol}: "
                    f"{dt:.1f} s")
            if pol == "none":
                ss = m["staff_satisfaction"].to_numpy(dtype=float)
                line += (f"; week 1 = {100 * rev[0] / rev.sum():.1f}% of revenue ({rev[0] / np.median(rev):.2f}x the "
                         f"median week); first-period market share {100 * m['market_share'].iloc[0]:.1f}% (median "
                         f"{100 * m['market_share'].median():.1f}%); staff satisfaction {ss[0]:.2f} at the start, "
                         f"peak {ss.max():.2f} in week {int(ss.argmax()) + 1}, {ss[-1]:.2f} at the end")
                line += "; " + settled(sc, acquired, dropped, rev)
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
