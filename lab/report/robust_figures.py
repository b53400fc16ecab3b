"""The figures of the report's "How sure?" section, drawn from summary.json's ``robustness`` section alone.

Four figures, each a :class:`lab.report.figures.FigureSpec` in :data:`ROBUST_FIGURES` (written as
``fig_robust_<name>.png``):

* ``p_best``: each policy's probability of being best on the verdict outcomes, with its binomial
  95% interval, against the share a robust verdict needs (lab.metrics.robustness.ROBUST_SHARE);
* ``differences``: each policy's paired difference from the baseline across the worlds: the
  median, the 5%..95% of the world means, the same with the simulation noise taken out, and,
  drawn apart, the noise of one world's mean alone;
* ``drivers``: what moves the answer: Sobol indices (a Saltelli design) or Morris effects (a
  Morris design) with their intervals, else a tornado of the rank correlations of each parameter
  with the leader's margin, against the band a parameter that does nothing stays in;
* ``prim``: for each verdict outcome with a scenario discovery, the worlds on its PRIM box's two
  leading parameters, reversals marked, the box drawn; its coverage, density and mass in the caption.

Every number comes from the section (lab.experiment.robust, docs/OUTPUTS.md), so a report can be
rebuilt from summary.json; the figures follow lab.report.figures's conventions (one colour per
policy, labelled axes, a caption saying what to look for).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator
from scipy.stats import norm

from lab.metrics.discovery import parameter_words
from lab.metrics.outcomes import REGISTRY
from lab.metrics.robustness import ROBUST_SHARE, chance_correlation
from lab.report.figures import BASELINE_COLOUR, FigureSpec, format_axis, new_figure, nothing_panel, policy_colours
from lab.report.text import display_scale, outcome_name, unit_label

if TYPE_CHECKING:
    from lab.experiment.compare import Comparison

__all__ = ["DRIVERS_SHOWN", "ROBUST_FIGURES", "fig_robust_differences", "fig_robust_drivers", "fig_robust_p_best",
           "fig_robust_prim", "has_robustness"]

#: The parameters the drivers figure shows at most (largest first).
DRIVERS_SHOWN = 10
_Z = float(norm.ppf(0.975))  # a two-sided 95% interval
_Z90 = float(norm.ppf(0.95))  # a two-sided 90% interval (the 5%..95% of the figures)
_FOCUS = "net_profit"  # the outcome the drivers figure is about


def has_robustness(comp: Comparison) -> bool:
    """True when the comparison carries a robust study (``lab compare --robust N``)."""
    return comp.robustness is not None


def _section(comp: Comparison) -> Mapping:
    assert comp.robustness is not None, "a robust figure drawn without a robust study"
    return comp.robustness


def _verdict_outcomes(section: Mapping) -> list[str]:
    return [o for o in section["verdict"] if "p_best" in section["outcomes"].get(o, {})]


def _world_words(section: Mapping) -> str:
    return f"{section['worlds']} plausible worlds ({section['method']} design)"


# --------------------------------------------------------------------------- #
# probability of being best
# --------------------------------------------------------------------------- #
def fig_robust_p_best(comp: Comparison) -> Figure:
    """Per verdict outcome, each policy's share of worlds where it is best, with a binomial 95% interval."""
    section = _section(comp)
    colours = policy_colours(comp)
    outcomes = _verdict_outcomes(section)
    if not outcomes:
        return nothing_panel(new_figure(8, 3), "Probability of being best", "no outcome with a better direction",
                        "probability of being best (share of plausible worlds)", "policy")
    policies = list(comp.policies)
    fig = new_figure(13, 0.45 * len(policies) + 2.2)
    axes = fig.subplots(1, len(outcomes), sharey=True, squeeze=False)[0]
    pos = np.arange(len(policies))
    n = max(1, int(section["worlds"]))
    for ax, o in zip(axes, outcomes):
        entry = section["outcomes"][o]
        probs = np.array([entry["p_best"].get(p) or 0.0 for p in policies])
        half = _Z * np.sqrt(probs * (1 - probs) / n)
        lo, hi = np.clip(probs - half, 0, 1), np.clip(probs + half, 0, 1)
        ax.barh(pos, probs, color=[colours[p] for p in policies], alpha=0.85, height=0.6)
        ax.errorbar(probs, pos, xerr=[probs - lo, hi - probs], fmt="none", ecolor="#222222", capsize=3, lw=1.1)
        for i, v in enumerate(probs):
            ax.text(0.01, i - 0.18, f"{100 * v:.0f}%", va="center", ha="left", fontsize=8, color="#222222",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
        ax.axvline(ROBUST_SHARE, color="#555555", lw=1, ls="--")
        robust = section["verdict"][o].get("robust")
        ax.set_title(f"{outcome_name(o)} ({'robust' if robust else 'fragile'})", fontsize=10)
        ax.set_xlim(0, 1)
        format_axis(ax.xaxis, "%")
        ax.set_xlabel("probability of being best (share of plausible worlds)")
        ax.set_ylabel("policy")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(pos, policies)
    axes[0].set_ylim(len(policies) - 0.5, -0.5)
    fig.suptitle(f"Which policy is best, across {_world_words(section)}", fontweight="bold")
    fig.legend([Line2D([], [], color="#222222", lw=1.1, marker="|", ms=8),
                Line2D([], [], color="#555555", lw=1, ls="--")],
               ["95% interval (binomial, over the worlds)", f"{100 * ROBUST_SHARE:.0f}%: a robust verdict"],
               loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    return fig


# --------------------------------------------------------------------------- #
# paired differences across worlds
# --------------------------------------------------------------------------- #
def _noise_half(d: Mapping, replications: int) -> float | None:
    """Half of the 5%..95% band of one world's mean difference that is simulation noise alone:
    1.645 sd_within / sqrt(R)."""
    sd = d.get("sd_within_world")
    return None if sd is None else _Z90 * float(sd) / math.sqrt(max(1, replications))


def fig_robust_differences(comp: Comparison) -> Figure:
    """Per verdict outcome, each policy's difference from the baseline across the worlds, with the noise apart."""
    section = _section(comp)
    colours = policy_colours(comp)
    outcomes = [o for o in _verdict_outcomes(section) if section["outcomes"][o].get("differences")]
    others = [p for p in comp.policies if p != comp.baseline]
    if not outcomes or not others:
        return nothing_panel(new_figure(8, 3), "Differences across worlds", "no policy to compare with the baseline",
                        f"difference vs {comp.baseline}", "policy")
    reps = int(section["replications_per_world"])
    fig = new_figure(13, 0.6 * len(others) + 2.4)
    axes = fig.subplots(1, len(outcomes), sharey=True, squeeze=False)[0]
    pos = np.arange(len(others), dtype=float)
    for ax, o in zip(axes, outcomes):
        unit = REGISTRY[o].unit
        scale = display_scale(unit)
        diffs = section["outcomes"][o]["differences"]
        for i, p in enumerate(others):
            d = diffs.get(p)
            if d is None or d.get("median") is None:
                continue
            c = colours[p]
            med = float(d["median"]) * scale
            ax.plot([float(d["p5"]) * scale, float(d["p95"]) * scale], [i, i], color=c, lw=1.4, alpha=0.6)
            if d.get("p5_worlds") is not None and d.get("p95_worlds") is not None:
                ax.plot([float(d["p5_worlds"]) * scale, float(d["p95_worlds"]) * scale], [i, i], color=c, lw=7,
                        alpha=0.55, solid_capstyle="butt")
            ax.plot([med], [i], "o", color=c, mec="white", ms=8, zorder=3)
            half = _noise_half(d, reps)
            if half is not None:
                ax.errorbar([med], [i + 0.3], xerr=[[half * scale], [half * scale]], fmt="none", ecolor="#666666",
                            capsize=3, lw=1.2)
        ax.axvline(0, color=BASELINE_COLOUR, lw=1, ls="--")
        hib = REGISTRY[o].higher_is_better
        ax.set_title(outcome_name(o) + (" (higher is better)" if hib else " (lower is better)"), fontsize=10)
        ax.set_xlabel(f"difference vs {comp.baseline} ({unit_label(unit, difference=True)})")
        ax.set_ylabel("policy")
        format_axis(ax.xaxis, unit)
        ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(pos, others)
    axes[0].set_ylim(len(others) - 0.4, -0.6)
    fig.suptitle(f"Each policy's paired difference from {comp.baseline} across {_world_words(section)}",
                 fontweight="bold")
    fig.legend([Line2D([], [], marker="o", color="#555555", ls="", ms=7),
                Line2D([], [], color="#555555", lw=7, alpha=0.55),
                Line2D([], [], color="#555555", lw=1.4, alpha=0.6),
                Line2D([], [], color="#666666", lw=1.2, marker="|", ms=8)],
               ["median world", "5%..95% of the worlds, noise taken out", "5%..95% of the world means (with noise)",
                f"simulation noise of one world's mean (90%, {reps} replication{'s' if reps != 1 else ''})"],
               loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    return fig


# --------------------------------------------------------------------------- #
# what drives the answer
# --------------------------------------------------------------------------- #
def _names(rows: Sequence[Mapping]) -> list[str]:
    return [parameter_words(str(r["parameter"])) for r in rows]


def _bars_with_intervals(ax: Axes, rows: Sequence[Mapping], keys: Sequence[tuple[str, str, str, str, str]]) -> None:
    """Horizontal bars of each row's values (keys: value, low, high, label, colour), side by side per row."""
    pos = np.arange(len(rows), dtype=float)
    width = 0.8 / len(keys)
    for k, (key, low, high, label, colour) in enumerate(keys):
        v = np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows])
        lo = np.array([np.nan if r.get(low) is None else float(r[low]) for r in rows])
        hi = np.array([np.nan if r.get(high) is None else float(r[high]) for r in rows])
        y = pos - 0.4 + width * (k + 0.5)
        ax.barh(y, np.nan_to_num(v), height=width, color=colour, alpha=0.8, label=label)
        ok = np.isfinite(v) & np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(v[ok], y[ok], xerr=[v[ok] - lo[ok], hi[ok] - v[ok]], fmt="none", ecolor="#222222", capsize=2,
                    lw=1)
    ax.set_yticks(pos, _names(rows), fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.axvline(0, color=BASELINE_COLOUR, lw=1)
    ax.grid(True, axis="x", alpha=0.3)


def _index_panels(comp: Comparison, section: Mapping, kind: str) -> Figure:
    entry = section["outcomes"][_FOCUS][kind]
    policies = [p for p in comp.policies if entry.get(p)]
    rows_max = max(min(DRIVERS_SHOWN, len(entry[p])) for p in policies)
    fig = new_figure(13, 0.32 * rows_max + 2.2)
    axes = fig.subplots(1, len(policies), squeeze=False)[0]
    unit = REGISTRY[_FOCUS].unit
    for ax, p in zip(axes, policies):
        rows = entry[p][:DRIVERS_SHOWN]
        if kind == "sobol":
            _bars_with_intervals(ax, rows, [("S1", "S1_low", "S1_high", "first-order S1", "#56B4E9"),
                                            ("ST", "ST_low", "ST_high", "total ST", "#0072B2")])
            ax.set_xlabel("Sobol index (share of the difference's variance)")
        else:
            _bars_with_intervals(ax, rows, [("mu_star", "mu_star_low", "mu_star_high", "mu* (mean |effect|)",
                                             "#D55E00"),
                                            ("sigma", "sigma_low", "sigma_high", "sigma (interactions, noise)",
                                             "#E69F00")])
            ax.set_xlabel(f"elementary effect per plausible range ({unit_label(unit, difference=True)})")
            format_axis(ax.xaxis, unit)
            ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.set_ylabel("parameter")
        ax.set_title(f"{p} - {comp.baseline}: {outcome_name(_FOCUS)}", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False, fontsize=9)
    what = ("Sobol indices, 95% bootstrap intervals" if kind == "sobol"
            else f"Morris elementary effects over {section.get('morris_trajectories')} trajectories, "
                 "95% bootstrap intervals")
    fig.suptitle(f"What drives each policy's difference from {comp.baseline} ({what})", fontweight="bold")
    return fig


def fig_robust_drivers(comp: Comparison) -> Figure:
    """Sobol indices (Saltelli design), Morris effects (Morris design), or the tornado of rank correlations."""
    section = _section(comp)
    entry = section["outcomes"].get(_FOCUS, {})
    for kind in ("sobol", "morris"):
        if any(entry.get(kind, {}).values()):
            return _index_panels(comp, section, kind)
    drivers = entry.get("drivers", [])[:DRIVERS_SHOWN]
    xlabel = "Spearman rank correlation with the leader's margin"
    if not drivers:
        return nothing_panel(new_figure(8, 3), "What moves the verdict", "no parameter varies the leader's margin",
                        xlabel, "parameter")
    leader = section["verdict"][_FOCUS].get("best", "")
    worlds = int(entry.get("worlds", section["worlds"]))
    fig = new_figure(10, 0.32 * len(drivers) + 2.0)
    ax = fig.subplots()
    rho = np.array([float(d["rank_correlation"]) for d in drivers])
    pos = np.arange(len(drivers))
    ax.barh(pos, rho, color=np.where(rho >= 0, "#0072B2", "#D55E00"), alpha=0.85, height=0.6)
    null = chance_correlation(worlds)
    ax.axvspan(-null, null, color="#999999", alpha=0.25, lw=0)
    ax.axvline(0, color=BASELINE_COLOUR, lw=1)
    ax.set_yticks(pos, _names(drivers), fontsize=8)
    ax.set_ylim(len(drivers) - 0.5, -0.5)
    ax.set_xlim(-1, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("parameter")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"What moves {leader}'s margin on {outcome_name(_FOCUS)} over the best other policy of each world",
                 fontsize=10)
    fig.legend([Patch(facecolor="#0072B2", alpha=0.85), Patch(facecolor="#D55E00", alpha=0.85),
                Patch(facecolor="#999999", alpha=0.25)],
               [f"higher values widen {leader}'s margin", "higher values narrow it",
                f"within chance: |rho| < 1.96 / sqrt({worlds} - 1)"],
               loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    return fig


def _drivers_detail(comp: Comparison) -> str:
    entry = _section(comp)["outcomes"].get(_FOCUS, {})
    if any(entry.get("sobol", {}).values()):
        return ("Sobol indices: the first-order index S1 is the share of the difference's variance across worlds a "
                "parameter causes alone, the total index ST with its interactions; a parameter whose ST interval "
                "reaches zero does not matter.")
    if any(entry.get("morris", {}).values()):
        return ("Morris effects: mu* is how much the difference moves, on average, when a parameter crosses its "
                "plausible range; a sigma as large as mu* means the effect depends on the other parameters (or is "
                "noise).")
    return ("The rank correlation of each parameter with the leader's margin over the best other policy of each "
            "world; a bar inside the grey band could be chance.")


# --------------------------------------------------------------------------- #
# where the verdict reverses
# --------------------------------------------------------------------------- #
def _discoveries(comp: Comparison) -> dict[str, Mapping]:
    """Each verdict outcome's scenario discovery (in the verdict's order) that has a parameter to draw it on."""
    section = comp.robustness or {}
    found = section.get("discovery", {})
    return {o: found[o] for o in section.get("verdict", {})
            if found.get(o) is not None and len(found[o].get("axes", [])) >= 1}


def _prim_panel(ax: Axes, comp: Comparison, outcome: str, found: Mapping) -> None:
    """One outcome's worlds on its box's two leading parameters, reversals marked, the PRIM box drawn."""
    colours = policy_colours(comp)
    axes_names = list(found["axes"])
    values = [np.asarray(v, dtype=float) for v in found["points"]["values"]]
    rev = np.asarray(found["points"]["reversed"], dtype=bool)
    if len(values) == 1:  # a single varying parameter: the worlds along it
        values.append(np.zeros_like(values[0]))
        axes_names.append("")
    x, y = values
    leader = str(found["leader"])
    box = found.get("box")
    rival = str(box["rival"]) if box else None
    ax.scatter(x[~rev], y[~rev], s=22, color=colours.get(leader, "#555555"), alpha=0.55, marker="o", lw=0,
               label=f"{leader} best ({int((~rev).sum())} worlds)")
    ax.scatter(x[rev], y[rev], s=34, color="#222222", marker="X", lw=0.4, edgecolor="white",
               label=f"verdict reversed: another policy best ({int(rev.sum())} worlds)")
    if box:
        limits = {str(r["parameter"]): r for r in box["restricted"]}

        def edge(j: int, data: np.ndarray) -> tuple[float, float]:
            r = limits.get(axes_names[j]) if j < len(axes_names) else None
            lo = float(data.min()) if r is None or r["low"] is None else float(r["low"])
            hi = float(data.max()) if r is None or r["high"] is None else float(r["high"])
            return lo, hi

        (x0, x1), (y0, y1) = edge(0, x), edge(1, y)
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=2, ls="-", color="#222222",
                               label=f"PRIM box: {rival} best in {100 * float(box['density']):.0f}% of its worlds"))
    ax.set_xlabel(parameter_words(axes_names[0]) + " (value in the world)")
    ax.set_ylabel(parameter_words(axes_names[1]) + " (value in the world)" if axes_names[1] else
                  "(one varying parameter)")
    if not axes_names[1]:
        ax.set_yticks([])
    ax.grid(True, alpha=0.3)
    ax.set_title(f"Where the verdict on {outcome_name(outcome)} reverses: {found['reversals']} of {found['worlds']} "
                 "worlds", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.13), ncols=1, frameon=False, fontsize=9)


def fig_robust_prim(comp: Comparison) -> Figure:
    """For each verdict outcome with a scenario discovery, one panel: the worlds on the box's two leading
    parameters, reversals marked, the PRIM box drawn."""
    found = _discoveries(comp)
    assert found, "the PRIM figure drawn without a discovery"
    fig = new_figure(8.5, 6 * len(found))  # one above the other: each panel as wide as the page
    for ax, (outcome, one) in zip(fig.subplots(len(found), 1, squeeze=False)[:, 0], found.items()):
        _prim_panel(ax, comp, outcome, one)
    return fig


def _prim_detail(comp: Comparison) -> str:
    words = []
    for outcome, found in _discoveries(comp).items():
        box = found.get("box")
        name = outcome_name(outcome)
        if not box:
            words.append(f"{name[0].upper()}{name[1:]}: {found['text']}.")
            continue
        words.append(f"{name[0].upper()}{name[1:]}: {box['text']}. Coverage {100 * float(box['coverage']):.0f}% "
                     f"(the reversals inside it), density {100 * float(box['density']):.0f}% (the share of its "
                     f"worlds that are reversals), mass {100 * float(box['mass']):.0f}% (the share of all worlds "
                     "inside it).")
    return " ".join(words) + " Restrictions on parameters beyond the two drawn are not shown."


ROBUST_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("robust_p_best", "Probability of being best", fig_robust_p_best,
               "A verdict is robust when one policy's bar reaches the dashed line; bars of similar length mean the "
               "winner depends on the world, and the intervals say how far the number of worlds can tell them "
               "apart.", applies=has_robustness, skipped="No robust study was run (lab compare --robust N)."),
    FigureSpec("robust_differences", "Differences across plausible worlds", fig_robust_differences,
               "Each row is one policy's difference from the baseline across the worlds: when the thick bar, the "
               "worlds' spread with the simulation noise taken out, lies on one side of the dashed zero line, the "
               "sign holds whatever the behaviour; the grey bar below shows how much of the spread is noise.",
               applies=has_robustness, skipped="No robust study was run (lab compare --robust N)."),
    FigureSpec("robust_drivers", "Which assumptions drive the answer", fig_robust_drivers,
               "Look at the longest bars: those are the modelling choices worth measuring before deciding; "
               "parameters near zero can be left at their defaults.",
               applies=has_robustness, skipped="No robust study was run (lab compare --robust N).",
               detail=_drivers_detail),
    FigureSpec("robust_prim", "Where the verdict reverses", fig_robust_prim,
               "One panel per verdict (net profit, retention, revenue) whose reversals could be searched: crosses "
               "are the worlds where another policy beats that verdict's leader; the box, found by PRIM, is the "
               "region of the two parameters where most of them lie -- the conditions under which to distrust the "
               "verdict.",
               applies=lambda c: has_robustness(c) and bool(_discoveries(c)),
               skipped="No verdict to reverse, or no varying parameter, so there is no box to draw.",
               detail=_prim_detail),
)
