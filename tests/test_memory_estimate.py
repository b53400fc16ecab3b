"""The memory a run needs is estimated before it starts, honestly, and runs that cannot fit are refused
(issue 14, "Resource guards")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.cli import main
from lab.experiment import memory
from lab.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"

PEAK = """
import sys
from lab.experiment.run import run_policy
from lab.scenario.loader import load_scenario
import dataclasses
ls = load_scenario(sys.argv[1])
# 120 days as a day-0 cohort (the classroom launches on day 365)
sc = dataclasses.replace(ls.scenario, launch_day=0,
                         population=dataclasses.replace(ls.scenario.population, arrival_days=0))
run_policy(sc, ls.policies["points"], 1, customers=int(sys.argv[2]), days=120)
# VmHWM, not ru_maxrss: Linux keeps the parent's ru_maxrss across exec, so a child of a large process reports it
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) * 1024)
"""


def peak_rss(customers: int) -> int:
    done = subprocess.run([sys.executable, "-c", PEAK, str(CLASSROOM), str(customers)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_the_estimate_is_a_lower_bound_within_a_small_factor_of_the_real_peak():
    ls = load_scenario(CLASSROOM)
    per = memory.bytes_per_customer(ls.scenario, ls.policies["points"])
    # the slope of the peak resident memory between two sizes: what one more customer really costs
    small, large = 20_000, 80_000
    slope = (peak_rss(large) - peak_rss(small)) / (large - small)
    assert per <= slope <= 3 * per, (per, slope)


def test_the_bytes_per_customer_follow_the_declared_columns():
    ls = load_scenario(CLASSROOM)
    none, points = (memory.bytes_per_customer(ls.scenario, ls.policies[p]) for p in ("none", "points"))
    assert points > none > 0  # the points ledger's columns are counted
    seg = ls.scenario.population.segments
    from lab.population.customers import Customers

    k = len(ls.scenario.store.categories)
    declared = sum(c.dtype().itemsize * (k if c.per_category else 1) for c in Customers.COLUMNS.values())
    assert none >= declared and len(seg) > 0


def test_runs_that_cannot_fit_are_refused_before_they_start(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "machine_memory", lambda: 2**30)
    for argv in (["run", str(CLASSROOM), "--policy", "points", "--customers", "5000000", "--out", str(tmp_path / "r")],
                 ["compare", str(CLASSROOM), "--customers", "3000000", "--jobs", "2", "--out", str(tmp_path / "c")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "need at least" in err and "this machine has 1.0 GB" in err and "bytes per customer" in err, err
        assert "lab batch" in err and "internal error" not in err
        assert ("x 2 runs at once" in err) == (argv[0] == "compare")
    assert not list(tmp_path.iterdir())
