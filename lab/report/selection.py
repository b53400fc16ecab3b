"""The naive member comparison next to the causal effect, for the terminal and the HTML report.

One estimate per policy (lab.metrics.selection.naive_vs_causal over the comparison's replications): what a
retailer would read from members against non-members in its own data, what the programme caused for the same
customers (against the baseline), and how many times the first overstates the second. A policy that everyone
joins, or no one, has no non-members to compare with, and says so.
"""

from __future__ import annotations

import math
import textwrap
from html import escape
from typing import TYPE_CHECKING

from lab.metrics.selection import SelectionEstimate, naive_vs_causal
from lab.report.text import fmt_value

if TYPE_CHECKING:
    from lab.experiment.compare import Comparison


def selection_estimates(comp: "Comparison") -> dict[str, SelectionEstimate | None]:
    """Policy -> its estimate (None when no replication had both members and non-members at the launch)."""
    naive = comp.matrix("naive_member_gap")
    rev = comp.matrix("launch_customer_revenue")
    share = comp.matrix("launch_member_share")
    out: dict[str, SelectionEstimate | None] = {}
    for p in comp.policies:
        if p == comp.baseline or p not in naive:
            continue
        est = naive_vs_causal(naive[p].to_numpy(), rev[p].to_numpy(), rev[comp.baseline].to_numpy(),
                              share[p].to_numpy())
        out[p] = est if est.naive.n > 0 else None
    return out


def _money(x: float) -> str:
    return fmt_value(x, "$", decimals=0)  # ("-$30", as every report writes money; "n/a" when not finite)


def _ci(low: float, high: float, money: bool = True) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "[unbounded]" if math.isinf(low) or math.isinf(high) else "[n/a]"
    f = _money if money else (lambda v: f"{v:.1f}")
    return f"[{f(low)}, {f(high)}]"


def _sentence(p: str, est: SelectionEstimate | None) -> str:
    if est is None:
        return f"{p}: everyone present at the launch joined (or no one did): there is no member comparison to make."
    r = est.ratio
    times = "n/a" if not math.isfinite(r.value) else f"{r.value:.1f}x"
    return (f"{p}: members out-spend non-members by {_money(est.naive.mean)} a year "
            f"{_ci(est.naive.ci_low, est.naive.ci_high)}; the programme caused {_money(est.causal.mean)} "
            f"{_ci(est.causal.ci_low, est.causal.ci_high)} per member; the naive figure is {times} "
            f"{_ci(r.ci_low, r.ci_high, money=False)} the causal one ({est.member_share:.0%} joined)")


WIDTH = 120  # the terminal table's width (lab.report.terminal)


def selection_lines(comp: "Comparison") -> list[str]:
    """Terminal lines, at most WIDTH columns: a heading, then each policy's sentence (continued indented)."""
    ests = selection_estimates(comp)
    if not any(e is not None for e in ests.values()):  # every policy enrols everyone (or no one): nothing to compare
        return []
    heading = ("Members against non-members (what a dashboard shows) and the causal effect (against the baseline, "
               "same customers), revenue per customer-year since the launch:")
    lines = textwrap.wrap(heading, WIDTH)
    for p, e in ests.items():
        lines += textwrap.wrap(_sentence(p, e), WIDTH, initial_indent="  ", subsequent_indent="    ",
                               break_on_hyphens=False)
    return lines


def selection_html(comp: "Comparison") -> str:
    """An HTML fragment (a section with a heading and a list); empty when there is no policy to show."""
    ests = selection_estimates(comp)
    if not any(e is not None for e in ests.values()):
        return ""
    items = "".join(f"<li>{escape(_sentence(p, e))}</li>" for p, e in ests.items())
    return ("<section class=\"selection\"><h2>Why the dashboard flatters the programme</h2>"
            "<p>Members against non-members in the policy's own run (the naive estimate a retailer makes) next to "
            "the effect the programme caused for the same customers (paired against the baseline). Customers who "
            "would have spent more anyway join more often, so the naive figure overstates the effect.</p>"
            f"<ul>{items}</ul></section>")
