"""--precision aims at the paired differences against the baseline by default (issue 13 item 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.cli import build_parser
from lab.experiment.compare import CompareOptions, compare
from lab.metrics.outcomes import HEADLINE
from lab.metrics.stats import mean_ci, replications_needed
from lab.scenario.loader import load_scenario
from tests.conftest import day0_loaded

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "scenarios" / "classroom.yaml"


def _difference_waves(comp, first: int, target: float, cap: int) -> int:
    """Law & Kelton's waves on the differences: the half-width of each policy's paired difference from the
    baseline within `target` of the baseline's mean, for every headline outcome."""
    done = first
    while True:
        need = 0
        for p in comp.policies:
            if p == comp.baseline:
                continue
            for o in HEADLINE:
                m = comp.matrix(o)
                x, y = m[p].to_numpy(dtype=float)[:done], m[comp.baseline].to_numpy(dtype=float)[:done]
                ok = np.isfinite(x) & np.isfinite(y)
                d, base = x[ok] - y[ok], y[ok]
                if len(d) < 2 or np.ptp(d) == 0 or base.mean() == 0:
                    continue
                if mean_ci(d).half_width / abs(base.mean()) > target:
                    need = max(need, replications_needed(d - d.mean() + base.mean(), target))
        if min(need, cap) <= done:
            return done
        done = min(need, cap)


def test_the_differences_drive_the_replication_count_by_default():
    ls = day0_loaded(load_scenario(CLASSROOM))  # 120 days: the day-0 cohort
    target, cap = 0.02, 60
    kw = dict(replications=3, precision=target, max_replications=cap, customers=200, days=120, flywheel_split=False)
    diff = compare(ls, CompareOptions(**kw), progress=False)
    level = compare(ls, CompareOptions(**kw, precision_of="level"), progress=False)
    n_diff, n_level = diff.summary()["replications"], level.summary()["replications"]
    # common random numbers make the differences far tighter than the levels: fewer replications for the same target
    assert 3 < n_diff < n_level <= cap
    assert n_diff == _difference_waves(diff, 3, target, cap)
    for p in diff.policies:
        if p == diff.baseline:
            continue
        for o in HEADLINE:
            d = diff.difference(p, o)
            base = diff.interval(diff.baseline, o).mean
            if np.isfinite(d.half_width) and d.n >= 2 and base:
                assert d.half_width / abs(base) <= target, (p, o)


def test_precision_of_is_an_option_and_the_help_says_what_precision_aims_at():
    p = build_parser()
    sub = next(a for a in p._actions if a.dest == "command").choices["compare"]
    text = " ".join(sub.format_help().split())
    assert "paired difference" in text and "--precision-of" in text
    args = p.parse_args(["compare", "s.yaml", "--precision", "0.1"])
    assert args.precision_of == "difference"
    assert p.parse_args(["compare", "s.yaml", "--precision", "0.1", "--precision-of", "level"]).precision_of == "level"
