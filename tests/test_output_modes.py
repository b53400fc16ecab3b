"""Every result file follows the user's umask (issue 13 item 16): Parquet and JSON like PNG and HTML."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import os, sys
os.umask(int(sys.argv[1], 8))
from lab.cli import main
sys.exit(main(["compare", sys.argv[2], "--policies", "points", "--replications", "2", "--customers", "150",
               "--days", "425", "--jobs", "1", "--quiet", "--no-flywheel-split", "--out", sys.argv[3]]))
"""


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_every_result_file_follows_the_umask(tmp_path, mask):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, oct(mask)[2:], str(ROOT / "scenarios" / "classroom.yaml"),
                           str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in files}
    assert {".json", ".parquet", ".html", ".png"} <= kinds, kinds
    want = 0o666 & ~mask
    modes = {p.relative_to(out).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {oct(want)}, modes
