"""benchmarks/bench_engine.py --stack runs end to end on a tiny problem: K runs alone against one stack of K."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]


def test_the_stack_benchmark_compares_runs_alone_with_one_stack() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_engine.py"), "--stack", "3",
                           "--stack-sizes", "200", "--days", "20", "--repeats", "1",
                           "--scenario", str(CLASSROOM_DAY0)],  # a day-0 cohort: 20 days end before the launch
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    rows = dict(re.findall(r"^\| (alone x3|stacked x3) \| 200 \| [\d.]+ \| [\d.]+ \| ([\d,]+) \|", out, re.M))
    assert set(rows) == {"alone x3", "stacked x3"}
    assert rows["alone x3"] == rows["stacked x3"]  # the same purchases: each world is its run alone
    assert int(rows["alone x3"].replace(",", "")) > 3 * 200  # every customer buys at least once
    assert re.search(r"200 customers: the stack of 3 takes [\d.]+ s against [\d.]+ s alone, [\d.]+x", out)
    assert "a bug" not in out


def test_the_stack_shape_benchmark_prints_a_row_per_shape() -> None:
    """benchmarks/bench_stacks.py times policy_runs per shape (policies x worlds) and says so in a table."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_stacks.py"), str(CLASSROOM_DAY0),
                           "--shape", "none:2", "--shape", "none,points:1", "--repeats", "1"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^\| ([a-z,]+) \| (\d+) \| (\d+) \| ([\d.]+) \|", done.stdout, re.M)
    assert [r[:3] for r in rows] == [("none", "2", "2"), ("none,points", "1", "2")]
    assert all(float(r[3]) > 0 for r in rows)
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_stacks.py"), str(CLASSROOM_DAY0),
                          "--shape", "none"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "expected POLICIES:WORLDS" in bad.stderr
