"""benchmarks/compiled_multiplier.py (the thinning multiplier compiled around numpy's transcendental functions)
gives the engine's bits, times both ways, and refuses what it does not cover."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "benchmarks" / "compiled_multiplier.py")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.mark.parametrize(("scenario", "policy"), [
    ("scenarios/apparel.yaml", "points"),   # headroom, wear-out, seasonality, the membership effect
    ("scenarios/classroom.yaml", "points"),  # none of those four
    ("scenarios/cafe.yaml", "hybrid"),  # headroom and seasonality without wear-out; 17 offers taken up at this size
])
def test_the_compiled_multiplier_gives_the_engines_bits_at_every_call(scenario: str, policy: str) -> None:
    done = _run("--scenario", scenario, "--policy", policy, "--customers", "1500")
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^\| (numpy \(the engine\)|compiled [^|]+) \| ([\d,]+) \| ([\d,]+) \| ([\d.]+) \|", done.stdout,
                      re.M)
    assert [r[0].split()[0] for r in rows] == ["numpy", "compiled"]
    calls, candidates = int(rows[0][1].replace(",", "")), int(rows[0][2].replace(",", ""))
    assert calls > 100 and candidates > calls and rows[0][1:3] == rows[1][1:3]
    differ = re.search(r"values that differ: ([\d,]+) of ([\d,]+)", done.stdout)
    assert differ is not None and differ[1] == "0" and int(differ[2].replace(",", "")) == candidates


def test_a_policy_outside_the_prototype_is_refused_with_the_reason() -> None:
    done = _run("--policy", "credit", "--customers", "500")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "outside the prototype's scope" in done.stderr and "credit line" in done.stderr


def test_a_bad_policy_is_named_without_a_traceback() -> None:
    done = _run("--policy", "nonesuch", "--customers", "100")
    assert done.returncode == 1
    assert "policy 'nonesuch' not found" in done.stderr and "Traceback" not in done.stderr
