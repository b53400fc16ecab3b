"""The robust study in the report: a fragile verdict is no longer a clear winner in summary.json, the verdict's
words, the terminal and report.html, which gains a "How sure?" section with the PRIM box (issue 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KNOWN = str(ROOT / "tests" / "data" / "robust_known.yaml")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_a_fragile_verdict_is_not_a_clear_winner_anywhere(tmp_path):
    out = tmp_path / "cmp"
    done = subprocess.run([sys.executable, "-m", "lab", "compare", KNOWN, "--replications", "3", "--customers", "200",
                           "--days", "365", "--jobs", "2", "--seed", "1", "--no-flywheel-split", "--robust", "16",
                           "--quiet", "--out", str(out)], capture_output=True, text=True, env=ENV, timeout=900)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    robust = summary["robustness"]["verdict"]["net_profit"]
    single = summary["verdict"]["net_profit"]
    # in the known world, points' lead depends on the response to rewards: fragile by construction
    assert not robust["robust"]
    assert single["holds_across_worlds"] is False
    if "clear_winner" in single:
        assert single["clear_winner"] is False
    page = (out / "report.html").read_text()
    assert 'id="how-sure"' in page and "How sure?" in page
    assert "but across plausible worlds the verdict is fragile" in page
    assert "wins:" not in page.split('id="how-sure"')[0].split('id="verdict"')[1]  # no "points wins" line
    found = summary["robustness"]["discovery"]["net_profit"]
    assert found["reversals"] > 0 and "Where it reverses" in page
    assert "where it reverses (PRIM)" in done.stdout and "[fragile]" in done.stdout
