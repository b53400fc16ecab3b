"""The one run the engine's probes measure (ufunc_share.py, segment_bound.py, compiled_multiplier.py): its
scenario, policy and size from the command line, and the scenario loaded or refused in the lab's own words."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run_arguments(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of `doc`, with the run's options. By default the run is the
    issue's largest: the apparel store under points, 1,000,000 customers x 730 days."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--scenario", default="scenarios/apparel.yaml")
    ap.add_argument("--policy", default="points")
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=730)
    return ap


def load_or_exit(scenario: str, policy: str) -> Any:
    """The scenario file (relative to the repository) with `policy` compiled, or exit 1 with the lab's message."""
    from lab.errors import LabError
    from lab.scenario.loader import load_scenario

    try:
        return load_scenario(ROOT / scenario, [policy])
    except LabError as e:
        sys.exit(str(e))
