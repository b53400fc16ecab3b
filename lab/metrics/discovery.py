"""Scenario discovery: where in the plausible worlds the verdict reverses, as a PRIM box in words.

A robust study's verdict names the policy best in most worlds (the leader). The worlds where
another policy is best are the *reversals*. PRIM (the Patient Rule Induction Method, Friedman &
Fisher 1999, as used for scenario discovery by Bryant & Lempert 2010) peels the parameter space
down to a box, a few parameters each restricted to an interval, that holds many of the reversals
and few of the other worlds. Each box on PRIM's peeling trajectory has

* **coverage**: the share of all reversals that fall in the box;
* **density**: the share of the worlds in the box that are reversals;
* **mass**: the share of all worlds that fall in the box.

A restriction PRIM made by chance is dropped: one whose quasi-p-value (Bryant & Lempert's
one-sided binomial test of the density gain it brings) is above :data:`QP_MAX`; coverage,
density and mass are those of the box that remains.

The box reported is the one of largest coverage among those of density at least
:data:`DENSITY` (Bryant & Lempert's trade-off read at a fixed density), or the densest box when
none reaches it. PRIM comes from the ``PRIM`` package (Project Platypus, a port of the EMA
Workbench's implementation): small, with no dependency the lab does not have already but
``mplcursors``; peeling is deterministic, so the same worlds give the same box.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["DENSITY", "QP_MAX", "parameter_words", "reversal_box"]

#: The density (share of the box's worlds that are reversals) the reported box must reach when it can.
DENSITY = 0.8
#: A restriction whose quasi-p-value is above this is noise, and is dropped from the box.
QP_MAX = 0.05
# PRIM's peeling step (the share of the box peeled off at each step) and the smallest mass a box may have
_PEEL_ALPHA = 0.05
_MASS_MIN = 0.05


def _f(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


def _num(v: float) -> str:
    return f"{v:.3g}"


def parameter_words(path: str) -> str:
    """A parameter's path as a reader says it: ``behaviour.free_item_delight`` -> "free item delight"; a segment
    multiplier ``population.segments.*.reward_sensitivity`` -> "reward sensitivity (x each segment's)"."""
    last = path.rsplit(".", 1)[-1].replace("_", " ")
    if path.startswith("population.segments.*."):
        return f"{last} (x each segment's)"
    if path.startswith("store.staff."):
        return f"staff {last}"
    return last


def _condition(name: str, lo: float, hi: float, restrict_lo: bool, restrict_hi: bool) -> str:
    if restrict_lo and restrict_hi:
        return f"{name} is between {_num(lo)} and {_num(hi)}"
    if restrict_hi:
        return f"{name} is below {_num(hi)}"
    return f"{name} is above {_num(lo)}"


def _axes(restricted: Sequence[Mapping], order: Sequence[str], parameters: Sequence[str]) -> list[str]:
    """The two parameters the box is drawn on: its restrictions, most significant (lowest quasi-p-value) first,
    then the parameters of ``order`` (the drivers, largest first), then the design's order."""
    ranked = [str(r["parameter"]) for r in sorted(restricted, key=lambda r: (r["quasi_p"], list(parameters)
                                                                             .index(r["parameter"])))]
    for name in [*order, *parameters]:
        if len(ranked) >= 2:
            break
        if name not in ranked and name in parameters:
            ranked.append(name)
    return ranked[:2]


def reversal_box(world_means: np.ndarray, policies: Sequence[str], leader: str, higher: bool,
                 values: np.ndarray, parameters: Sequence[str], outcome_label: str,
                 labels: Mapping[str, str] | None = None, order: Sequence[str] = ()) -> dict:
    """The PRIM box of the worlds where ``leader`` is not the best policy on one outcome.

    ``world_means`` is (policies, worlds), ``values`` the design (worlds, parameters). Returns the
    number of worlds and reversals and, when PRIM can look (at least two reversals and one world
    that is not one), ``box``: its restricted parameters with their limits, coverage, density and
    mass, the policy best in most of the box's reversals, and ``text``, the box in words.

    For the figure of the box, ``axes`` names the two parameters it is drawn on (:func:`_axes`; ``order``
    is the drivers' ranking) and ``points`` holds every world's values on them and whether it is a reversal."""
    labels = labels or {}
    means = np.asarray(world_means, dtype=float)
    x = np.asarray(values, dtype=float)
    ok = np.all(np.isfinite(means), axis=0)
    means, x = means[:, ok], x[ok]
    sign = means if higher else -means
    lead = list(policies).index(leader)
    reversed_ = sign[lead] < np.max(sign, axis=0)  # another policy strictly better: a tie is no reversal
    n, k = int(reversed_.size), int(reversed_.sum())
    out: dict = {"leader": leader, "worlds": n, "reversals": k, "box": None}
    name = labels.get(leader, leader)

    def drawn(restricted: Sequence[Mapping]) -> dict:
        axes = _axes(restricted, order, parameters)
        cols = [list(parameters).index(a) for a in axes]
        out["axes"] = axes
        out["points"] = {"values": [[float(v) for v in x[:, j]] for j in cols],
                         "reversed": [bool(v) for v in reversed_]}
        return out

    if k == 0:
        out["text"] = f"{name} is best on {outcome_label} in every plausible world sampled: no reversal to describe"
        return drawn([])
    if k < 2 or k == n or not parameters:
        out["text"] = (f"{k} of {n} worlds reverse the verdict on {outcome_label}: too few (or too many) for "
                       "scenario discovery to describe where")
        return drawn([])
    import pandas as pd
    from prim import Prim

    frame = pd.DataFrame(x, columns=list(parameters))
    p = Prim(frame, reversed_.astype(float), threshold=0.5, threshold_type=">", peel_alpha=_PEEL_ALPHA,
             mass_min=_MASS_MIN)
    box = p.find_box()
    traj = box.peeling_trajectory
    dense = traj.index[traj["density"] >= DENSITY]
    pick = (int(traj.loc[dense, "coverage"].idxmax()) if len(dense)
            else int(traj["density"].idxmax()))
    box.select(pick)
    lims = box.limits
    lo_data, hi_data = frame.min(), frame.max()
    restricted: list[dict] = []
    for param in parameters:  # in the design's order, so the words do not depend on PRIM's sort
        if param not in lims.index:
            continue
        lo, hi = float(lims.loc[param, "min"]), float(lims.loc[param, "max"])
        r_lo, r_hi = lo > float(lo_data[param]), hi < float(hi_data[param])
        qp = float(lims.loc[param, "qp values"])
        if (r_lo or r_hi) and qp <= QP_MAX:
            restricted.append({"parameter": param, "low": lo if r_lo else None, "high": hi if r_hi else None,
                               "quasi_p": _f(qp), "words": _condition(parameter_words(param), lo, hi, r_lo, r_hi)})
    inside = np.ones(n, dtype=bool)
    for r in restricted:
        col = frame[r["parameter"]].to_numpy()
        if r["low"] is not None:
            inside &= col >= r["low"]
        if r["high"] is not None:
            inside &= col <= r["high"]
    coverage = float((inside & reversed_).sum() / k)
    density = float((inside & reversed_).sum() / max(1, inside.sum()))
    mass = float(inside.mean())
    winners = np.argmax(sign[:, inside & reversed_], axis=0)
    counts = np.bincount(winners, minlength=len(policies)) if winners.size else np.zeros(len(policies), int)
    rival = list(policies)[int(np.argmax(counts))] if winners.size else None
    entry = {"restricted": restricted, "coverage": _f(coverage), "density": _f(density), "mass": _f(mass),
             "rival": rival}
    if restricted and rival is not None:
        where = " and ".join(str(r["words"]) for r in restricted)
        entry["text"] = (f"{labels.get(rival, rival)} beats {name} on {outcome_label} when {where}: "
                         f"{_pct(mass)} of the worlds, {_pct(coverage)} of the reversals "
                         f"(the verdict reverses in {_pct(density)} of the worlds in that box)")
    else:
        entry["text"] = (f"no box of parameters describes where the verdict on {outcome_label} reverses: "
                         f"the {k} reversals of {n} worlds are spread across the plausible ranges")
    out["box"] = entry if restricted else None
    out["text"] = entry["text"]
    return drawn(restricted)
