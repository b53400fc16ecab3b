"""benchmarks/segment_bound.py (what a thinning bound per segment would buy) measures what it says it does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_per_segment_bounds_are_rate_bound_per_segment_and_draw_fewer_candidates() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "segment_bound.py"), "--customers", "300",
                           "--days", "400", "--repeats", "1"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = {m[0]: m for m in re.findall(r"^\| (shipped|per-segment) \| ([\d., ]+) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| "
                                          r"([\d,]+) \| ([\d,]+) \| ([\d.]+) \|", done.stdout, re.M)}
    assert set(rows) == {"shipped", "per-segment"}
    # the apparel store's big spenders (reward sensitivity 2) reach the scenario's bound; the two segments of
    # sensitivity 1 have 1.1 x 1.4 x e^0.3 x 1.09 x 1.1 x 1.3 = 3.24 (benchmarks/README.md)
    assert rows["shipped"][1] == "4.79" and rows["per-segment"][1] == "3.24, 3.24, 4.79"
    shipped, per_segment = (int(rows[d][3].replace(",", "")) for d in ("shipped", "per-segment"))
    assert per_segment < shipped
    assert re.search(r"shipped / per-segment, medians: [\d.]+x", done.stdout)


def test_a_bad_input_is_named_without_a_traceback() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "segment_bound.py"), "--policy", "nonesuch",
                           "--customers", "100", "--repeats", "1"], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 1
    assert "the shipped run of scenarios/apparel.yaml failed" in done.stderr
    assert "policy 'nonesuch' not found" in done.stderr and "Traceback" not in done.stderr
