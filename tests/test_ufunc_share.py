"""benchmarks/ufunc_share.py (a run's time in numpy's transcendental functions and in the engine's steps) times
what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "benchmarks" / "ufunc_share.py")


def test_the_timed_functions_and_the_rest_add_up_to_the_run() -> None:
    done = subprocess.run([sys.executable, SCRIPT, "--customers", "500"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    timed = {m[0]: float(m[1]) for m in re.findall(r"^\| np\.(\w+) \| ([\d.]+) \| [\d.]+% \|", out, re.M)}
    assert {"exp", "log1p"} <= set(timed)  # every run draws purchase gaps (log1p) and decays satisfaction (exp)
    total = float(re.search(r"^\| all of them \| ([\d.]+) \|", out, re.M)[1])  # type: ignore[index]
    run, rest = (float(x) for x in re.search(r"the run: ([\d.]+) s; outside these functions: ([\d.]+) s", out)
                 .groups())  # type: ignore[union-attr]
    assert abs(sum(timed.values()) - total) <= 0.005 * len(timed) + 1e-9  # each row rounded to 0.01 s
    assert abs(run - total - rest) <= 0.011 and 0 < total < run
    steps = {m[0]: float(m[1]) for m in re.findall(r"^\| (_?\w+) \| [^|]+ \| ([\d.]+) \| [\d.]+% \|$", out, re.M)}
    assert set(steps) >= {"_purchase", "rate_multiplier", "_next_candidate"}
    assert 0 < steps["_purchase"] < run and 0 < steps["rate_multiplier"] < run


def test_a_bad_policy_is_named_without_a_traceback() -> None:
    done = subprocess.run([sys.executable, SCRIPT, "--policy", "nonesuch", "--customers", "100"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1
    assert "policy 'nonesuch' not found" in done.stderr and "Traceback" not in done.stderr
