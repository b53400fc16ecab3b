"""The comparison table `lab compare` prints: one row per policy, the headline outcomes as
mean ± 95% half-width, and each policy's paired difference from the baseline, starred where
its interval excludes zero. Plain aligned text that fits a wide terminal; colour only on request.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lab.metrics.outcomes import HEADLINE
from lab.metrics.stats import Interval
from lab.report.selection import selection_lines
from lab.report.text import (check_outcomes, fmt_mean_hw, is_good, outcome_name, outcome_unit, replication_count,
                             retention_unmeasured, unit_label)

if TYPE_CHECKING:
    from lab.experiment.compare import Comparison

MARK = "*"
_GAP = "  "  # between outcome groups
_SUB = "  "  # between the mean and the difference of one outcome
_GREEN, _RED, _BOLD, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[1m", "\x1b[0m"


def _money_scale(comp: Comparison, outcome: str) -> tuple[float, str]:
    """Dollars in thousands or millions when the amounts are large, so four outcomes fit across a terminal --
    but never so coarse that a half-width needs more than two decimals."""
    ivs = [comp.interval(p, outcome) for p in comp.policies]
    ivs += [comp.difference(p, outcome) for p in comp.policies if p != comp.baseline]
    top = max((abs(iv.mean) for iv in ivs if math.isfinite(iv.mean)), default=0.0)
    finest = min((iv.half_width for iv in ivs if math.isfinite(iv.half_width) and iv.half_width > 0), default=math.inf)
    for factor, label in ((1e6, "$M"), (1e3, "$k")):
        if top >= 10 * factor and math.isfinite(finest) and finest >= 0.1 * factor:
            return factor, label
    return 1.0, "$"


def _scaled(iv: Interval, factor: float) -> Interval:
    return Interval(iv.mean / factor, iv.ci_low / factor, iv.ci_high / factor, iv.n, iv.half_width / factor)


def _cells(comp: Comparison, outcome: str, factor: float) -> tuple[list[str], list[str], list[str | None]]:
    """Per policy: the mean ± half-width, the difference vs the baseline (marked), and its colour code."""
    unit = outcome_unit(outcome)
    diff_share = unit == "share"
    fmt_unit = "" if unit == "$" and factor != 1.0 else unit  # scaled dollars: decimals follow the half-width
    means: list[str] = []
    diffs: list[str] = []
    colours: list[str | None] = []
    for p in comp.policies:
        means.append(fmt_mean_hw(_scaled(comp.interval(p, outcome), factor), fmt_unit, symbol=False))
        if p == comp.baseline:
            diffs.append("-" + " ")
            colours.append(None)
            continue
        d = comp.difference(p, outcome)
        text = fmt_mean_hw(_scaled(d, factor), fmt_unit, signed=True, difference=diff_share, symbol=False)
        sig = d.excludes_zero
        diffs.append(text + (MARK if sig else " "))
        good = is_good(outcome, d.mean)
        colours.append(None if not sig else _GREEN if good is True else _RED if good is False else _BOLD)
    return means, diffs, colours


def _blocks(widths: Sequence[int], first: int, limit: int) -> list[list[int]]:
    """Group outcome columns, in order, into blocks no wider than `limit` (each holds at least one)."""
    blocks: list[list[int]] = []
    current: list[int] = []
    used = first
    for i, w in enumerate(widths):
        if current and used + len(_GAP) + w > limit:
            blocks.append(current)
            current, used = [], first
        current.append(i)
        used += len(_GAP) + w
    if current:
        blocks.append(current)
    return blocks


def format_table(comp: Comparison, color: bool = False, width: int = 120,
                 outcomes: Sequence[str] = HEADLINE) -> str:
    """The terminal table of a comparison: policies down, headline outcomes across (mean ± 95% half-width
    and the paired difference vs the baseline, `*` where its interval excludes zero), then a legend.

    Outcome groups that would not fit in `width` characters wrap into a further block below.
    With `color`, clear differences are green when good for the retailer and red when bad.
    """
    check_outcomes(outcomes)
    base = comp.baseline
    names = [p + (" (baseline)" if p == base else "") for p in comp.policies]
    name_w = max(len("policy"), *(len(n) for n in names))
    groups = []
    unmeasured = [o for o in outcomes if not any(math.isfinite(comp.interval(p, o).mean) for p in comp.policies)]
    for o in outcomes:
        if o in unmeasured:
            continue
        unit = outcome_unit(o)
        factor, label = _money_scale(comp, o) if unit == "$" else (1.0, unit_label(unit))
        means, diffs, colours = _cells(comp, o, factor)
        title = outcome_name(o) if label == o.split("_")[-1] else f"{outcome_name(o)} ({label})"
        mean_head, diff_head = "mean ± 95%", f"vs {base}" + (" (pp)" if unit == "share" else "") + " "
        mw = max(len(mean_head), *(len(m) for m in means))
        dw = max(len(diff_head), *(len(d) for d in diffs))
        gw = max(len(title), mw + len(_SUB) + dw)
        mw = gw - len(_SUB) - dw  # give any spare title width to the mean column
        groups.append((title, mean_head, diff_head, means, diffs, colours, mw, dw, gw))

    n = replication_count(comp)
    sc = comp.loaded.scenario
    measured = f" (outcomes from the launch on day {comp.measured_from:,})" if comp.measured_from else ""
    title = (f"{sc.name}: {len(comp.policies)} policies, {n} replication{'s' if n != 1 else ''}, "
             f"{comp.customers:,} customers, {comp.days:,} days{measured}, seed {comp.seed}")
    lines = [*textwrap.wrap(title, width=width), ""]
    for block in _blocks([g[8] for g in groups], name_w, width):
        head1 = " " * name_w
        head2 = "policy".ljust(name_w)
        for i in block:
            title, mh, dh, *_rest, mw, dw, gw = groups[i]
            head1 += _GAP + title.center(gw)
            head2 += _GAP + mh.rjust(mw) + _SUB + dh.rjust(dw)
        lines += [head1.rstrip(), head2.rstrip(), "-" * len(head2)]
        for r, name in enumerate(names):
            row = name.ljust(name_w)
            for i in block:
                _t, _mh, _dh, means, diffs, colours, mw, dw, _gw = groups[i]
                cell = diffs[r].rjust(dw)
                code = colours[r]
                if color and code is not None:
                    cell = code + cell + _RESET
                row += _GAP + means[r].rjust(mw) + _SUB + cell
            lines.append(row.rstrip())
        lines.append("")
    legend = (f"mean ± 95%: mean over {n} replication{'s' if n != 1 else ''} "
              "± the half-width of its 95% confidence interval (Student t). "
              f"vs {base}: paired difference from the baseline (common random numbers) ± its 95% half-width; "
              f"{MARK} = the interval excludes zero (a clear difference); pp = percentage points."
              + (" Green: better for the retailer, red: worse." if color else ""))
    if unmeasured:
        legend += (f" Not measurable in this run: {', '.join(outcome_name(o) for o in unmeasured)}"
                   + (f" ({retention_unmeasured(comp)})." if "retention_12m" in unmeasured else "."))
    lines += textwrap.wrap(legend, width=width)
    lines += selection_lines(comp)
    if n < 2:
        lines.append("With a single replication there is no interval; run at least 2 (e.g. --replications 10).")
    return "\n".join(lines)
