"""Numbers and sentences for people: money with thousands separators, shares as percentages,
intervals as "mean ± half-width", and the verdict of a comparison in plain words.

Shared by the HTML report and the terminal table so both say the same thing the same way.
Everything here returns plain text; the HTML writer escapes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lab.errors import suggest
from lab.metrics.flywheel_share import NO_CUT_RUNS
from lab.metrics.outcomes import REGISTRY, RETENTION_DAYS, retention_horizon
from lab.metrics.stats import Interval, paired_diff_ci

if TYPE_CHECKING:
    from lab.experiment.compare import Comparison

LEVEL_WORDS = "95% CI"



def check_outcomes(outcomes: Sequence[str]) -> None:
    """Refuse outcome names that do not exist, naming the closest real one."""
    for o in outcomes:
        if o not in REGISTRY:
            hint = suggest(o, REGISTRY.names) or f"; expected one of: {', '.join(REGISTRY)}"
            raise ValueError(f"unknown outcome '{o}'{hint}")


def retention_unmeasured(comp: Comparison) -> str:
    """Why a comparison's runs give 12-month retention no value (they end before a year has passed from the
    launch), and the horizon that would."""
    launch, days = comp.measured_from, comp.days
    need = retention_horizon(launch)
    since = f"{RETENTION_DAYS} days from the launch on day {launch}" if launch else f"{RETENTION_DAYS} days"
    return (f"it follows each customer for {since}, and the run lasts {days:,} days; give --days {need} (days: "
            f"{need} in the scenario) or more to see it")


def outcome_name(outcome: str) -> str:
    """A readable name for an outcome, its registered label ("retention_12m" -> "12-month retention");
    other identifiers with their underscores as spaces."""
    return REGISTRY[outcome].label if outcome in REGISTRY else outcome.replace("_", " ")


def outcome_unit(outcome: str) -> str:
    """The unit of an outcome as the registry declares it ("$", "share", "customers", ...); "" when unknown."""
    return REGISTRY[outcome].unit if outcome in REGISTRY else ""


def unit_label(unit: str, difference: bool = False) -> str:
    """How a unit is written next to an axis or a column: "$", "%" (or "percentage points" for differences)."""
    if unit == "share":
        return "percentage points" if difference else "%"
    if unit == "0-1":
        return "0-1 scale"
    if unit == "per year":
        return "per staff member per year"
    return unit


def display_scale(unit: str) -> float:
    """Factor from stored values to displayed ones (shares are shown in percent)."""
    return 100.0 if unit == "share" else 1.0


def _decimals(unit: str, ref: float) -> int:
    """Decimals to show for a quantity whose uncertainty (or, lacking one, size) is `ref`, in display units."""
    if not math.isfinite(ref) or ref <= 0:
        return 1 if unit == "share" else 0
    if unit in ("customers", "purchases"):
        return 0 if ref >= 1 else 1
    if unit == "$":
        return 0 if ref >= 10 else 2
    # two significant digits of the uncertainty; percentages to 0.01 pp at most, other scales to 0.0001
    return int(min(2 if unit == "share" else 4, max(0, 1 - math.floor(math.log10(ref)))))


def _value_decimals(unit: str, size: float) -> int:
    """Decimals for a number shown without an interval: cents below $100, tenths of a percent, 3 significant digits."""
    if unit == "$":
        return 0 if size >= 100 else 2
    if unit == "share":
        return 1 if size >= 1 else 2
    if unit in ("customers", "purchases") or size == 0:
        return 0
    return int(min(4, max(0, 2 - math.floor(math.log10(size)))))


def fmt_value(value: float, unit: str, signed: bool = False, difference: bool = False,
              decimals: int | None = None, symbol: bool = True) -> str:
    """One number in its unit: "$12,345", "+$1,234", "66.4%", "+0.3 pp", "1,553"; "n/a" when not finite.

    `value` is in stored units (a share of 0.664, not 66.4); `difference` writes shares as percentage points;
    without `symbol` the unit is left to a column header ("12,345", "66.4").
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    v = value * display_scale(unit)
    d = _value_decimals(unit, abs(v)) if decimals is None else decimals
    if round(abs(v), d) == 0:
        v = 0.0
    sign = "-" if v < 0 else ("+" if signed and v > 0 else "")
    body = f"{abs(v):,.{d}f}"
    if not symbol:
        return f"{sign}{body}"
    if unit == "$":
        return f"{sign}${body}"
    if unit == "share":
        return f"{sign}{body} pp" if difference else f"{sign}{body}%"
    return f"{sign}{body}"


def interval_decimals(iv: Interval, unit: str) -> int:
    """Decimals that show an interval's mean and bounds to the precision of its half-width."""
    scale = display_scale(unit)
    ref = iv.half_width * scale if math.isfinite(iv.half_width) and iv.half_width > 0 else abs(iv.mean) * scale
    return _decimals(unit, ref)


def fmt_mean_hw(iv: Interval, unit: str, signed: bool = False, difference: bool = False,
                symbol: bool = True) -> str:
    """An interval as "mean ± half-width" ("$52,714 ± $1,203", "66.4% ± 0.3 pp"); just the mean when n < 2."""
    if not math.isfinite(iv.mean):
        return "n/a"
    d = interval_decimals(iv, unit)
    mean = fmt_value(iv.mean, unit, signed=signed, difference=difference, decimals=d, symbol=symbol)
    if not math.isfinite(iv.half_width) or iv.half_width == 0:
        return mean  # one replication, or the same value in every replication
    hw = fmt_value(iv.half_width, unit, difference=True, decimals=d, symbol=symbol)
    return f"{mean} ± {hw}"


def fmt_bounds(iv: Interval, unit: str, difference: bool = False, signed: bool = True) -> str:
    """An interval's bounds as "+$1,701 to +$2,974": signed, since a difference's straddle zero or not (a plain
    mean's, `signed` False: "$124,913 to $289,668"); `difference` writes shares as percentage points."""
    if not (math.isfinite(iv.ci_low) and math.isfinite(iv.ci_high)):
        return "n/a"
    d = interval_decimals(iv, unit)
    return (f"{fmt_value(iv.ci_low, unit, signed=signed, difference=difference, decimals=d)} to "
            f"{fmt_value(iv.ci_high, unit, signed=signed, difference=difference, decimals=d)}")


def fmt_seconds(seconds: float) -> str:
    """A run time as "42 s", "3 min 5 s" or "1 h 2 min"."""
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(round(s % 60))} s"
    return f"{int(s // 3600)} h {int(round(s % 3600 / 60))} min"


def is_good(outcome: str, difference: float) -> bool | None:
    """Whether a difference vs the baseline is good news for the retailer; None when the outcome has no direction."""
    hib = REGISTRY[outcome].higher_is_better if outcome in REGISTRY else None
    if hib is None or not math.isfinite(difference) or difference == 0:
        return None
    return (difference > 0) == hib


def baseline_words(comp: Comparison) -> str:
    """How the baseline is named in sentences: "no programme" for the do-nothing policy."""
    base = comp.baseline
    pol = comp.loaded.policies.get(base)
    if pol is not None and pol.policy.is_baseline:
        return "no programme"
    return f"the baseline '{base}'"


def days_words(n: int) -> str:
    """A count of days in words: "1 day", "365 days"."""
    return f"{n:,} day{'' if n == 1 else 's'}"


def horizon_words(comp: Comparison) -> str:
    """The time the outcome totals cover, in words that follow an amount ("a year", "over the 730-day run",
    "in the year from the launch on day 365")."""
    start = comp.measured_from
    if not start:
        return "a year" if comp.days == 365 else f"over the {comp.days:,}-day run"
    if comp.measured_days == 365:
        return f"in the year from the launch on day {start:,}"
    return f"over the {days_words(comp.measured_days)} from the launch on day {start:,}"


def span_words(comp: Comparison) -> str:
    """The days the outcome totals cover, as a noun phrase ("the whole run of 730 days", "the 365 days from the
    launch on day 365 to the end of the 730-day run")."""
    if not comp.measured_from:
        return f"the whole run of {days_words(comp.days)}"
    return (f"the {days_words(comp.measured_days)} from the launch on day {comp.measured_from:,} to the end of the "
            f"{comp.days:,}-day run")


def replication_count(comp: Comparison) -> int:
    """Replications run with the flywheel whole."""
    return len({r.task.replication for r in comp.results if not r.task.cut})


def _effect(iv: Interval, outcome: str, comp: Comparison) -> str:
    unit = outcome_unit(outcome)
    diff = unit == "share"
    when = f" {horizon_words(comp)}" if unit == "$" and outcome in ("net_profit", "revenue", "gross_profit") else ""
    d = interval_decimals(iv, unit)
    mean = fmt_value(iv.mean, unit, signed=True, difference=diff, decimals=d)
    if unit == "share":
        mean = mean.replace(" pp", " percentage points")
    if not math.isfinite(iv.half_width):
        return f"{mean}{when} vs {baseline_words(comp)} (a single replication: no interval)"
    return (f"{mean}{when} vs {baseline_words(comp)} ({LEVEL_WORDS} {fmt_bounds(iv, unit, difference=diff)}, "
            f"{iv.n} paired replications)")


def verdict_sentences(comp: Comparison) -> list[str]:
    """The verdict in plain words, from the numbers: who wins on net profit, retention and revenue, and how surely.

    A policy "wins" only when its paired 95% interval against the baseline excludes zero; otherwise the
    sentence says no policy beats the baseline clearly. Policies that clearly lose net profit are named.
    """
    v = comp.verdict()
    base = comp.baseline
    out: list[str] = []
    for outcome in ("net_profit", "retention_12m", "revenue"):
        name = outcome_name(outcome)
        entry = v.get(outcome)
        if entry is None:
            if outcome == "retention_12m":
                out.append(f"12-month retention cannot be measured in this run: {retention_unmeasured(comp)}.")
            else:
                out.append(f"{name.capitalize()} could not be measured in this run.")
            continue
        best = entry["best"]
        if entry.get("holds_across_worlds") is False:
            out.append(_fragile_sentence(comp, outcome, best))
            continue
        if best != base:
            d = comp.difference(best, outcome)
            if d.excludes_zero:
                s = f"On {name}, {best} wins: {_effect(d, outcome, comp)}"
                runner = entry.get("runner_up")
                if runner is not None and runner != base:
                    gap = _gap(comp, outcome, best, runner)
                    unit = outcome_unit(outcome)
                    bounds = fmt_bounds(gap, unit, difference=True)
                    if entry.get("clear_winner"):
                        s += (f"; it is also clearly ahead of the runner-up, {runner} "
                              f"({LEVEL_WORDS} of the gap {bounds})")
                    else:
                        s += (f"; but it is not clearly ahead of the runner-up, {runner} "
                              f"({LEVEL_WORDS} of the gap {bounds})")
                out.append(s + ".")
                if outcome == "net_profit":
                    out.extend(_programme_notes(comp, best))
            elif not math.isfinite(d.half_width):
                out.append(f"On {name}, {best} has the highest mean, {_effect(d, outcome, comp)}; without a second "
                           "replication nothing can be called a clear win.")
            else:
                out.append(f"On {name}, no policy beats {baseline_words(comp)} clearly: the best, {best}, is "
                           f"{_effect(d, outcome, comp)}, an interval that includes zero.")
        else:
            others = [p for p in comp.policies if p != base and math.isfinite(comp.interval(p, outcome).mean)]
            if not others:
                continue
            closest = max(others, key=lambda p: comp.interval(p, outcome).mean)
            d = comp.difference(closest, outcome)
            tail = ("clearly lower" if d.excludes_zero else "not distinguishable from it"
                    if math.isfinite(d.half_width) else "lower, on one replication")
            out.append(f"On {name}, no policy beats {baseline_words(comp)}: the closest, {closest}, is "
                       f"{_effect(d, outcome, comp)} -- {tail}.")
    losers = [p for p in comp.policies if p != base and comp.difference(p, "net_profit").excludes_zero
              and comp.difference(p, "net_profit").mean < 0]
    if losers:
        parts = [f"{p} ({fmt_value(comp.difference(p, 'net_profit').mean, '$', signed=True)})" for p in losers]
        out.append(f"Clearly worse than {baseline_words(comp)} on net profit: {', '.join(parts)}.")
    return out


def _fragile_sentence(comp: Comparison, outcome: str, best: str) -> str:
    """The single-world verdict when the robust study found it fragile: one line, no longer a winner."""
    name = outcome_name(outcome)
    robust = (comp.robustness or {})["verdict"][outcome]
    lead = ("leads" if best != comp.baseline else "is not beaten")
    effect = f": {_effect(comp.difference(best, outcome), outcome, comp)}" if best != comp.baseline else ""
    return (f"On {name}, in the scenario as written {best} {lead}{effect}; but across plausible worlds the verdict "
            f"is fragile: {robust['text']}.")


def _gap(comp: Comparison, outcome: str, a: str, b: str) -> Interval:
    mat = comp.matrix(outcome)
    x, y = mat[a].to_numpy(dtype=float), mat[b].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    return paired_diff_ci(x[ok], y[ok])


def _programme_notes(comp: Comparison, policy: str) -> list[str]:
    """What the winner's programme returns per dollar it costs, and how much of its effect travels round the
    flywheel."""
    out = []
    roi = comp.programme_return(policy)
    if math.isfinite(roi.mean):
        bounds = f" ({LEVEL_WORDS} {fmt_bounds(roi, '$')})" if math.isfinite(roi.half_width) else ""
        out.append(f"Return on the programme: net profit changes by "
                   f"{fmt_value(roi.mean, '$', signed=True, decimals=2)} "
                   f"for each $1 that {policy} costs in discounts, rewards, offers and running costs{bounds}.")
    verdict = comp.flywheel_share_verdict(policy)
    share = verdict.interval
    if share is not None and math.isfinite(share.mean):
        bounds = ""
        if math.isfinite(share.half_width):
            bounds = f" ({LEVEL_WORDS} {share.ci_low:.0%} to {share.ci_high:.0%})"
            if share.ci_low <= 0 <= share.ci_high:
                bounds += ", not distinguishable from none of it"
        out.append(f"Share of that net-profit effect that travels round the flywheel (service, satisfaction, staff): "
                   f"{share.mean:.0%}{bounds}.")
    elif verdict.reason is not None and verdict.reason != NO_CUT_RUNS:
        out.append(f"Flywheel share of the net-profit effect: not meaningful: {verdict.reason}.")
    return out
