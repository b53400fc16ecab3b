"""The "How sure?" section of a comparison's report: the robust study's results in words and numbers.

It reads only summary.json's ``robustness`` section (lab.experiment.robust, docs/OUTPUTS.md), so
a report can be rebuilt from the file alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from lab.metrics.outcomes import REGISTRY
from lab.metrics.robustness import chance_correlation

__all__ = ["format_robust"]


def _money(v: float | None) -> str:
    if v is None:
        return "n/a"
    sign = "-" if v < 0 else "+"
    a = abs(v)
    return f"{sign}${a / 1000:.1f}k" if a >= 1000 else f"{sign}${a:.0f}"


def _plain(v: float | None) -> str:
    """A regret (never negative): dollars without a sign."""
    if v is None:
        return "n/a"
    return f"${v / 1000:.1f}k" if abs(v) >= 1000 else f"${v:.0f}"


def _index(v: float | None) -> str:
    """A sensitivity index to two decimals, or n/a."""
    return "n/a" if v is None else f"{v:.2f}"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"


def format_robust(section: Mapping, outcomes: tuple[str, ...] = ("net_profit",)) -> str:
    """Terminal lines: the verdicts, then per outcome each policy's P(best), difference spread and regret."""
    lines = [f"How sure? {section['worlds']} plausible worlds x {section['replications_per_world']} replications "
             f"({section['method']} design over {len(section['parameters'])} parameters), every policy in every world "
             "with the same customers"]
    if section.get("design_note"):
        lines.append(f"  (note: {section['design_note']})")
    for name, v in section["verdict"].items():
        mark = "robust" if v.get("robust") else "fragile"
        lines.append(f"  {REGISTRY[name].label} [{mark}]: {v['text']}")
        found = section.get("discovery", {}).get(name)
        if found is not None and found.get("reversals"):
            lines.append(f"    where it reverses (PRIM): {found['text']}")
    for name in outcomes:
        entry = section["outcomes"][name]
        if "p_best" not in entry:
            continue
        money = REGISTRY[name].unit == "$"
        fmt = _money if money else (lambda x: "n/a" if x is None else f"{x:+.3g}")
        rfmt = _plain if money else (lambda x: "n/a" if x is None else f"{x:.3g}")
        lines.append("")
        lines.append(f"  {REGISTRY[name].label}: {'policy':<14}{'P(best)':>9}{'vs baseline: median':>21}"
                     f"{'5%..95% of worlds':>22}{'noise':>7}{'beats':>7}{'regret mean':>13}{'worst 5%':>10}")
        for p, prob in entry["p_best"].items():
            d = entry["differences"].get(p)
            reg = entry["regret"][p]
            if d is None:
                diff = f"{'(baseline)':>21}{'':>22}{'':>7}{'':>7}"
            else:
                spread = f"{fmt(d['p5_worlds'] if d['p5_worlds'] is not None else d['p5'])}.." \
                         f"{fmt(d['p95_worlds'] if d['p95_worlds'] is not None else d['p95'])}"
                diff = f"{fmt(d['median']):>21}{spread:>22}{_pct(d['noise_share']):>7}" \
                       f"{_pct(d.get('share_beats_baseline')):>7}"
            lines.append(f"  {'':<{len(REGISTRY[name].label)}}  {p:<14}{_pct(prob):>9}{diff}"
                         f"{rfmt(reg['mean']):>13}{rfmt(reg['mean_worst_5pct']):>10}")
        drivers = entry.get("drivers", [])
        if drivers:
            worlds = int(entry.get("worlds", section["worlds"]))
            chance = chance_correlation(worlds)
            beyond = [d for d in drivers if abs(d["rank_correlation"]) >= chance]
            said = ", ".join(f"{d['parameter']} {d['rank_correlation']:+.2f}" for d in (beyond or drivers)[:4])
            lines.append(f"  what moves the leader's margin (rank correlation across worlds; chance alone reaches "
                         f"{chance:.2f} with {worlds} worlds): "
                         + (said if beyond else f"no parameter beyond chance (the largest: {said})"))
        for p, rows in entry.get("sobol", {}).items():
            top = ", ".join(f"{r['parameter']} total {_index(r['ST'])} [{_index(r['ST_low'])}, {_index(r['ST_high'])}] "
                            f"(first-order {_index(r['S1'])} [{_index(r['S1_low'])}, {_index(r['S1_high'])}])"
                            for r in rows[:3] if r["ST"] is not None)
            if top:
                lines.append(f"  what drives {p}'s difference (Sobol indices, 95% bootstrap): {top}")
        for p, rows in entry.get("morris", {}).items():
            top = ", ".join(f"{r['parameter']} mu* {fmt(r['mu_star']).lstrip('+')} [{fmt(r['mu_star_low']).lstrip('+')}"
                            f", {fmt(r['mu_star_high']).lstrip('+')}] (sigma {fmt(r['sigma']).lstrip('+')})"
                            for r in rows[:3] if r["mu_star"] is not None)
            if top:
                lines.append(f"  what drives {p}'s difference (Morris effects per plausible range, 95% bootstrap): "
                             f"{top}")
        lines.append("  (5%..95%: the worlds' spread with the simulation noise taken out; noise: the share of the "
                     "spread of world means that is simulation noise)")
    return "\n".join(lines)
