"""Plausible ranges: how far each modelling choice of the scenario could reasonably lie from its default.

Every behavioural, flywheel and store parameter that is a modelling choice (docs/MODEL.md,
section 13) has one row in :data:`TABLE`: its scenario path, a low and a high bound, a
distribution shape over them, and the reason for the bounds (a published figure where there
is one, docs/EVIDENCE.md; otherwise the argument). docs/MODEL.md ("Plausible ranges") shows
the same table; a test keeps the two equal.

**Paths.** A parameter is named by its scenario path, e.g. ``behaviour.goal_gradient`` or
``store.staff.bonus_effect``. A segment-level parameter is named with ``*`` for the segment,
e.g. ``population.segments.*.reward_sensitivity``: its value is a **multiplier** applied to
every segment's own value (1 = the scenario as written), so segments keep their differences;
a result beyond the field's bounds is clipped to them (no shipped scenario reaches them).

**A scenario's ``uncertainty:`` section** narrows, widens (within the field's bounds) or fixes
any row, by path: ``behaviour.goal_gradient: {low: 0.2, high: 0.4}``, ``{fixed: 0.3}``; keys left
out keep the table's. :func:`check_uncertainty` validates it (the scenario loader calls it).

**The API** the robust comparison and the batch designs use:

* :func:`plausible_ranges` -- the table with a scenario's changes applied, in table order;
* :func:`sample` -- an ``(n, len(ranges))`` array of values, a scrambled Latin hypercube or
  Sobol design (scipy.stats.qmc, seeded) mapped through each range's shape; fixed ranges
  give constant columns and take no dimension of the design;
* :func:`apply` -- a new scenario with one row of values set (``dataclasses.replace``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from lab.config import FieldMeta, SourceMap
from lab.config.messages import number_text
from lab.errors import Diagnostic, Diagnostics, suggest
from lab.scenario.model import Behaviour, Market, Scenario, Segment, Staff, Store

__all__ = ["SEGMENT_PREFIX", "TABLE", "Range", "apply", "check_uncertainty", "field_meta", "markdown_table",
           "plausible_ranges", "sample"]

ShapeName = Literal["uniform", "log-uniform", "triangular", "fixed"]

#: Paths starting with this name a segment-level parameter, as a multiplier of every segment's value.
SEGMENT_PREFIX = "population.segments.*."


@dataclass(frozen=True)
class Range:
    """The plausible range of one parameter: its values lie in [low, high], distributed by ``shape``.

    ``fixed`` ranges have ``low == high`` (the value); ``mode`` is set only for triangular ones.
    For a segment path (``population.segments.*.x``) the values are multipliers."""

    path: str
    low: float
    high: float
    shape: ShapeName = "uniform"
    mode: float | None = None
    reason: str = ""

    @property
    def fixed(self) -> bool:
        """Whether the parameter is held at one value (takes no dimension of a design)."""
        return self.shape == "fixed"

    @property
    def multiplier(self) -> bool:
        """Whether the values multiply every segment's own value (a ``population.segments.*`` path)."""
        return self.path.startswith(SEGMENT_PREFIX)

    def ppf(self, u: np.ndarray | float) -> np.ndarray:
        """The values at quantiles ``u`` in [0, 1] of this range's distribution."""
        u = np.asarray(u, dtype=float)
        lo, hi = self.low, self.high
        if self.shape == "fixed":
            return np.full(u.shape, lo)
        if self.shape == "uniform":
            return lo + u * (hi - lo)
        if self.shape == "log-uniform":
            return np.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        m = float(cast(float, self.mode))  # triangular: validated to carry a mode
        c = (m - lo) / (hi - lo)
        left = lo + np.sqrt(u * (hi - lo) * (m - lo))
        right = hi - np.sqrt((1 - u) * (hi - lo) * (hi - m))
        return np.clip(np.where(u < c, left, right), lo, hi)

    def shape_text(self) -> str:
        """The shape in words, as docs/MODEL.md writes it: ``triangular (mode 0.31)``."""
        if self.shape == "triangular":
            return f"triangular (mode {number_text(float(cast(float, self.mode)))})"
        return self.shape


def _r(path: str, low: float, high: float, reason: str, shape: ShapeName = "uniform",
       mode: float | None = None) -> Range:
    return Range(path, float(low), float(high), shape, None if mode is None else float(mode), reason)


#: THE table of plausible ranges, one row per modelling choice (docs/MODEL.md, "Plausible ranges").
TABLE: tuple[Range, ...] = (
    # ---------------------------------------------------------------- behaviour
    _r("behaviour.goal_gradient", 0.14, 0.54,
       "Kivetz, Urminsky & Zheng (2006) Study 1: interpurchase time ~20% shorter at the last than at the first "
       "stamp of a 10-stamp card (docs/EVIDENCE.md suggests 10-30%); with power 2, g = 0.14 gives 10%, 0.31 "
       "gives 20%, 0.54 gives 30%", "triangular", 0.31),
    _r("behaviour.goal_gradient_power", 1.0, 4.0,
       "choice: effort follows the proportion of the distance remaining (Kivetz et al. 2006), no curvature "
       "published; from linear (1) to acceleration held back to the last stamps (4)"),
    _r("behaviour.points_hope", 0.0, 1.0,
       "choice: membership lengthens lifetimes (Meyer-Waarden 2007, no size published); from no hope effect "
       "(0) to dropout halved one purchase short of a reward (1)"),
    _r("behaviour.expiry_frustration", 0.0, 0.3,
       "choice: none published; from no frustration to twice the default (0.3 is also the engine's cap on "
       "one expiry's loss)"),
    _r("behaviour.reward_delight", 0.0, 0.1,
       "choice: programmes move attitudes less than behaviour (Belli et al. 2022, no size found); from none "
       "to twice the default"),
    _r("behaviour.habituation", 0.25, 4.0,
       "choice: hedonic adaptation exists (Fu & Ren 2023) but no rate is published; uplift fades within 6-9 "
       "months in grocery (Meyer-Waarden & Benavent 2009) yet lasts 2 years for light buyers (Liu 2007): a "
       "factor 4 either side of the default, even on a log scale", "log-uniform"),
    _r("behaviour.debt_stress", 0.0, 0.005,
       "choice: none published; from none to a fully used line costing 0.15 satisfaction a month"),
    _r("behaviour.credit_spend_ahead", 0.0, 0.6,
       "choice: none published; from no spending ahead to twice the default"),
    _r("behaviour.satisfaction_rate_effect", 0.25, 2.0,
       "choice: behaviour moves with attitude, positive in sign (Belli et al. 2022), size not found; a "
       "quarter to twice the default"),
    _r("behaviour.satisfaction_churn_effect", 0.5, 8.0,
       "choice: satisfaction lengthens relationships (Bolton 1998), elasticity not found; docs/EVIDENCE.md "
       "asks for a wide, positive range: a factor 4 either side of the default on a log scale", "log-uniform"),
    _r("behaviour.satisfaction_memory_days", 20.0, 180.0,
       "choice: from three weeks to half a year, the time by which a programme's uplift has eroded in "
       "grocery (Meyer-Waarden & Benavent 2009: 6-9 months); geometric mean 60, the default", "log-uniform"),
    _r("behaviour.service_quality_weight", 0.1, 1.0,
       "choice: service quality fully mediates staff to customer satisfaction, positive and significant "
       "(Brown & Lam 2008), r not found: a wide range that includes small values"),
    _r("behaviour.service_recovery", 0.0, 0.06,
       "de Matos et al. (2007): a good recovery lifts satisfaction a little (pooled size not found) and not "
       "repurchase; from none to twice the default"),
    _r("behaviour.trial_uplift", 0.0, 0.3,
       "choice: light buyers broaden into other areas (Liu 2007), no size found; from none to twice the "
       "default"),
    _r("behaviour.free_item_delight", 0.0, 0.1,
       "choice: none published; from none to twice the default, like reward_delight"),
    _r("behaviour.enrol_rate_tilt", 0.0, 1.5,
       "choice: heavier buyers enrol earlier (Meyer-Waarden & Benavent 2009), no size published; from none to a "
       "tilt that, with the spend tilt, makes the naive member gap well above seven times the causal effect "
       "(Leenheer et al. 2007) in the apparel store"),
    _r("behaviour.enrol_spend_tilt", 0.0, 1.0,
       "choice: bigger spenders join more (Leenheer et al. 2007, Meyer-Waarden & Benavent 2009), no size "
       "published; from none to two-thirds of the rate tilt's upper bound"),
    _r("behaviour.response_headroom", 0.0, 3.0,
       "choice: heavy buyers claimed most rewards but did not change behaviour, light and moderate buyers bought "
       "more (Liu 2007), no size published; from everyone alike (0) to an average buyer keeping a quarter of the "
       "response, a buyer at a tenth of the mean rate 77% and one at three times it a tenth (3)"),
    _r("behaviour.wear_out", 0.0, 6.0,
       "choice: the small change after joining erodes 6-9 months after joining in grocery (Meyer-Waarden & "
       "Benavent 2009), yet light and moderate buyers' gains lasted two years in a convenience store (Liu 2007); "
       "no rate published: from no wear-out (0, Liu) to a fifth of the response left after three months (6); "
       "at 3 a fifth is left after six months and a tenth after nine (Meyer-Waarden & Benavent)"),
    _r("behaviour.membership_effect", 0.0, 0.2,
       "choice: a small positive membership effect (Leenheer et al. 2007) and light and moderate buyers buying "
       "more within three months of joining (Liu 2007), no size published; from none (0) to a light buyer buying a "
       "fifth more often at joining (0.2); the shipped 0.1 gives about 1% of sales over two years with headroom 1 "
       "and wear-out 3, the order of the 1.74% of sales incentives drive (Nastasoiu et al. 2021)"),
    # ---------------------------------------------------------------- flywheel and store
    _r("store.staff.bonus_effect", 0.0, 0.3,
       "choice: no size published for a profit-sharing bonus; from none to twice the default"),
    _r("store.staff.turnover_satisfaction_effect", 1.0, 5.0,
       "choice: none published; a 0.1 drop in staff satisfaction raises quits by 10% (1) to 65% (5)"),
    _r("store.staff.experience_days", 60.0, 540.0,
       "choice: from two months to a year and a half to reach 63% of full competence; a factor 3 either side "
       "of the default on a log scale", "log-uniform"),
    _r("store.learning_rate", 0.9, 1.0,
       "choice: a retailer buys most of its unit cost, so its experience curve is flat; from none (1) to "
       "twice the default's saving per doubling (0.9)"),
    _r("store.prior_volume_days", 180.0, 1095.0,
       "choice: the store's past volume, from half a year to three years of today's sales", "log-uniform"),
    _r("market.competitor_pull", 0.0, 0.02,
       "choice: none published; from no pull (the default) to a 2% extra dropout chance per purchase"),
    # ---------------------------------------------------------------- segments (multipliers)
    _r("population.segments.*.reward_sensitivity", 0.5, 1.5,
       "choice: multiplies every segment's value; from half to one and a half times the responses the "
       "scenario states"),
    _r("population.segments.*.referral_propensity", 0.5, 2.0,
       "choice: multiplies every segment's value; word of mouth from half to twice the scenario's, even on a "
       "log scale", "log-uniform"),
    _r("population.segments.*.variety_seeking", 0.5, 1.5,
       "choice: multiplies every segment's value; from half to one and a half times the scenario's"),
    _r("population.segments.*.credit_appetite", 0.5, 1.5,
       "choice: multiplies every segment's value; from half to one and a half times the scenario's"),
    _r("population.segments.*.default_risk", 0.5, 2.0,
       "choice: multiplies every segment's value; from half to twice the scenario's, even on a log scale",
       "log-uniform"),
    _r("population.segments.*.repay_share", 0.5, 1.5,
       "choice: multiplies every segment's value; from half to one and a half times the scenario's"),
)

_BY_PATH: dict[str, Range] = {r.path: r for r in TABLE}

#: Where each path's field is declared: the dataclass and the attribute names from the scenario down.
_ROOTS: dict[str, tuple[type, tuple[str, ...]]] = {
    "behaviour": (Behaviour, ("behaviour",)),
    "store.staff": (Staff, ("store", "staff")),
    "store": (Store, ("store",)),
    "market": (Market, ("market",)),
    "population.segments.*": (Segment, ()),
}


def _split(path: str) -> tuple[type, tuple[str, ...], str]:
    head, _, name = path.rpartition(".")
    cls, attrs = _ROOTS[head]
    return cls, attrs, name


def field_meta(path: str) -> tuple[Any, FieldMeta]:
    """The declared default and bounds of the field a table path names."""
    cls, _, name = _split(path)
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    meta = next(v for v in f.metadata.values() if isinstance(v, FieldMeta))
    return f.default, meta


# --------------------------------------------------------------------------- a scenario's changes
def plausible_ranges(scenario: Scenario) -> tuple[Range, ...]:
    """The table with the scenario's ``uncertainty:`` changes applied, in table order.

    The scenario must have been checked (:func:`check_uncertainty`; the loader does it)."""
    out = []
    for base in TABLE:
        change = scenario.uncertainty.get(base.path)
        out.append(base if change is None else _changed(base, change))
    return tuple(out)


def _changed(base: Range, change: Any) -> Range:
    if change.fixed is not None:
        v = float(change.fixed)
        return Range(base.path, v, v, "fixed", None, base.reason)
    low = base.low if change.low is None else float(change.low)
    high = base.high if change.high is None else float(change.high)
    shape = change.shape or base.shape
    if shape == "fixed":  # a fixed table row widened again: uniform unless said otherwise
        shape = "uniform"
    mode = None
    if shape == "triangular":
        mode = float(change.mode) if change.mode is not None else base.mode
    return Range(base.path, low, high, shape, mode, base.reason)


def check_uncertainty(sc: Scenario, where: SourceMap, file: str) -> list[Diagnostic]:
    """Problems with a scenario's ``uncertainty:`` section, at their FILE:LINE:COL."""
    diags = Diagnostics(file, where)
    for path, change in sc.uncertainty.items():
        at = ("uncertainty", path)
        base = _BY_PATH.get(path)
        if base is None:
            parts = path.split(".")
            star = SEGMENT_PREFIX + parts[-1]
            if len(parts) == 4 and parts[:2] == ["population", "segments"] and star in _BY_PATH:
                hint = (f"; a segment parameter is one multiplier of every segment's value: write '{star}'")
            else:
                hint = suggest(path, list(_BY_PATH), list_all=False)
            diags.at(at, "unknown-path", f"'{path}' is not a parameter with a plausible range{hint}"
                     " (docs/MODEL.md lists them under 'Plausible ranges')")
            continue
        if change.fixed is not None:
            given = [k for k in ("low", "high", "shape", "mode") if getattr(change, k) is not None]
            if given:
                diags.at(at + (given[0],), "conflict",
                         f"'{path}' is fixed at {number_text(change.fixed)}: drop '{given[0]}', or give a range "
                         "instead of 'fixed'")
                continue
            _check_bounds(diags, sc, base, at + ("fixed",), float(change.fixed), "fixed value")
            continue
        r = _changed(base, change)
        if r.low > r.high:
            key = "low" if change.low is not None else "high"
            diags.at(at + (key,), "conflict", f"'{path}': low {number_text(r.low)} is above high "
                     f"{number_text(r.high)}" + ("" if change.low is not None and change.high is not None
                                                 else f" (the table's range is {number_text(base.low)} to "
                                                 f"{number_text(base.high)})"))
            continue
        bad = False
        for key in ("low", "high"):
            if getattr(change, key) is not None:
                bad |= _check_bounds(diags, sc, base, at + (key,), getattr(r, key), key)
        if bad:
            continue
        if r.shape == "log-uniform" and r.low <= 0:
            diags.at(at + ("low" if change.low is not None else "shape",), "invalid",
                     f"'{path}': a log-uniform range needs low above 0, not {number_text(r.low)}")
        elif r.shape == "triangular":
            if r.mode is None:
                diags.at(at, "required", f"'{path}': a triangular range needs a mode, e.g. mode: "
                         f"{number_text((r.low + r.high) / 2)}")
            elif not r.low <= r.mode <= r.high:
                key = "mode" if change.mode is not None else "low" if change.low is not None else "high"
                diags.at(at + (key,), "invalid",
                         f"'{path}': the mode {number_text(r.mode)} is outside {number_text(r.low)} to "
                         f"{number_text(r.high)}; give a mode inside the range, or shape: uniform")
        elif change.mode is not None:
            diags.at(at + ("mode",), "conflict", f"'{path}': a mode is for a triangular shape, not {r.shape}")
        if r.low == r.high and r.shape != "fixed":
            diags.at(at, "invalid", f"'{path}': low equals high; write fixed: {number_text(r.low)} to hold "
                     "the value")
    return list(diags)


def _check_bounds(diags: Diagnostics, sc: Scenario, base: Range, at: tuple, v: float, what: str) -> bool:
    """Record a diagnostic when ``v`` puts the parameter outside its field's bounds; True if it does."""
    _, meta = field_meta(base.path)
    if not base.multiplier:
        if meta.violates(v):
            diags.at(at, "range", f"'{base.path}': {what} {number_text(v)} is outside the field's bounds "
                     f"({meta.bounds_text()})")
            return True
        return False
    if not v >= 0:
        diags.at(at, "range", f"'{base.path}' is a multiplier of every segment's value: {what} "
                 f"{number_text(v)} must be >= 0")
        return True
    name = base.path[len(SEGMENT_PREFIX):]
    for seg_name, seg in sc.population.segments.items():
        value = getattr(seg, name) * v
        if meta.violates(value):
            diags.at(at, "range", f"'{base.path}': {what} {number_text(v)} takes segment '{seg_name}' to "
                     f"{number_text(value)}, outside the field's bounds ({meta.bounds_text()})")
            return True
    return False


# --------------------------------------------------------------------------- designs
def sample(ranges: Sequence[Range], n: int, seed: int, method: Literal["lhs", "sobol"] = "lhs") -> np.ndarray:
    """``n`` plausible worlds: an ``(n, len(ranges))`` array, column j the values of ``ranges[j]``.

    The varying ranges get one dimension each of a scrambled design from scipy.stats.qmc
    (``"lhs"``: Latin hypercube, any n; ``"sobol"``: Sobol sequence, n a power of two), seeded
    by ``seed``, mapped through each range's quantile function (:meth:`Range.ppf`); fixed
    ranges give constant columns. The same arguments give the same bits."""
    from scipy.stats import qmc

    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    varying = [j for j, r in enumerate(ranges) if not r.fixed]
    out = np.empty((n, len(ranges)), dtype=float)
    for j, r in enumerate(ranges):
        if r.fixed:
            out[:, j] = r.low
    if not varying:
        return out
    rng = np.random.default_rng(seed)
    if method == "lhs":
        u = qmc.LatinHypercube(d=len(varying), scramble=True, rng=rng).random(n)
    elif method == "sobol":
        if n & (n - 1):
            raise ValueError(f"a Sobol design needs n a power of two (keeps its balance), not {n}")
        u = qmc.Sobol(d=len(varying), scramble=True, rng=rng).random_base2(int(math.log2(n)))
    else:
        raise ValueError(f"unknown method '{method}'; expected 'lhs' or 'sobol'")
    for k, j in enumerate(varying):
        out[:, j] = ranges[j].ppf(u[:, k])
    return out


def apply(scenario: Scenario, ranges: Sequence[Range], values: Iterable[float]) -> Scenario:
    """A new scenario with each range's parameter set to its value (the scenario is not changed).

    Segment paths multiply every segment's own value, clipped to the field's bounds."""
    values = [float(v) for v in values]
    if len(values) != len(ranges):
        raise ValueError(f"{len(values)} values for {len(ranges)} ranges")
    sc = scenario
    for r, v in zip(ranges, values):
        cls, attrs, name = _split(r.path)
        if r.multiplier:
            _, meta = field_meta(r.path)
            lo = meta.min if meta.min is not None else -math.inf
            hi = meta.max if meta.max is not None else math.inf
            segs = {k: dataclasses.replace(s, **{name: min(max(getattr(s, name) * v, lo), hi)})
                    for k, s in sc.population.segments.items()}
            sc = dataclasses.replace(sc, population=dataclasses.replace(sc.population, segments=segs))
        else:
            sc = _set(sc, attrs + (name,), v)
    return sc


def _set(obj: Any, attrs: tuple[str, ...], value: float) -> Any:
    if not attrs:
        return value
    return dataclasses.replace(obj, **{attrs[0]: _set(getattr(obj, attrs[0]), attrs[1:], value)})


# --------------------------------------------------------------------------- the docs' table
def markdown_table(ranges: Sequence[Range] = TABLE) -> str:
    """The table docs/MODEL.md shows: parameter, default, low, high, shape, reason (one line per range)."""
    lines = ["| parameter | default | low | high | shape | reason or source |", "|---|---|---|---|---|---|"]
    for r in ranges:
        default, _ = field_meta(r.path)
        d = "1 (× each segment's value)" if r.multiplier else number_text(default)
        lines.append(f"| `{r.path}` | {d} | {number_text(r.low)} | {number_text(r.high)} | {r.shape_text()} "
                     f"| {r.reason} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # print the docs' table: python -m lab.scenario.ranges
    print(markdown_table(), end="")
