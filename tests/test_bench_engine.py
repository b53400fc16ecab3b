"""benchmarks/bench_engine.py runs end to end on a tiny problem and reports what it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import CLASSROOM_DAY0

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_reports_both_engines_ratio_and_linearity() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_engine.py"), "--sizes", "300,600",
                           "--days", "20",
                           "--repeats", "1", "--reference-sizes", "300",
                           "--scenario", str(CLASSROOM_DAY0)],  # a day-0 cohort: 20 days end before the launch
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    rows = {(m[0], m[1]): m
            for m in re.findall(r"^\| (vectorised|reference) \| ([\d,]+) \| ([\d.]+) \| [\d.]+ \| ([\d,]+) \|",
                                out, re.M)}
    assert {("vectorised", "300"), ("vectorised", "600"), ("reference", "300")} <= set(rows)
    # each customer buys once at least
    assert all(float(r[2]) > 0 and int(r[3].replace(",", "")) > 300 for r in rows.values())
    assert re.search(r"speed ratio at 300 customers \(measured side by side\): .* = [\d.]+x", out)
    assert "marginal" in out and "exponent of time in purchases" in out


def test_benchmark_rejects_bad_sizes() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_engine.py"), "--sizes", "ten"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "comma-separated whole numbers" in done.stderr and "Traceback" not in done.stderr
