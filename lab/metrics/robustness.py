"""How sure is a verdict: the statistics of a robust comparison over many plausible worlds.

A robust study (lab.experiment.robust) runs every policy in W sampled worlds, R replications
per world, with common random numbers (the same world and customers under every policy).
For one outcome its values form an array ``x[p, w, r]``. From it, per outcome:

* **probability of being best**: the share of worlds where the policy's world mean is the best
  (ties share the world); with its binomial standard error ``sqrt(p (1 - p) / W)``;
* **paired differences from the baseline**: ``d[p, w, r] = x[p, w, r] - x[baseline, w, r]``; their
  world means ``D[p, w]`` have a median, 5th and 95th percentiles across worlds, and the share of
  worlds where the policy beats the baseline;
* **noise separated from the worlds** (one-way random-effects ANOVA, method of moments): the
  within-world variance ``s2_within`` (mean over worlds of the variance over replications, needs
  R >= 2) is simulation noise; the variance of the world means ``var(D)`` holds the worlds' spread
  plus ``s2_within / R``; ``var_worlds = max(0, var(D) - s2_within / R)`` is the spread the
  parameters cause. ``p5_worlds``/``p95_worlds`` are the percentiles of the world means shrunk
  towards their mean by ``sqrt(var_worlds / var(D))`` (the empirical-Bayes estimate of the
  noise-free worlds' spread);
* **regret**: ``best[w] - x_mean[p, w]`` (the reverse for an outcome where lower is better), its
  mean and its worst 5% (the 95th percentile, and the mean of the worst 5% of worlds);
* a **verdict in words** (:func:`verdict`);
* on a Saltelli or Morris design, **sensitivity indices** of each policy's world-mean difference:
  first-order and total Sobol indices (:func:`sobol_rows`) or Morris elementary effects
  (:func:`morris_rows`), computed by lab.metrics.sensitivity (the batch's own definitions).

Outcomes where neither direction is better (breakage, concentration) get differences but no
best, regret or verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["ROBUST_SHARE", "morris_rows", "noise_split", "outcome_robustness", "rank_drivers", "regret", "sobol_rows",
           "verdict", "win_probabilities"]

#: A policy that is best in at least this share of the plausible worlds has a robust verdict.
ROBUST_SHARE = 0.9


def _f(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _best_index(means: np.ndarray, higher: bool) -> np.ndarray:
    """(P, W) world means -> (P, W) weights: 1/k for each of the k policies tied best in a world."""
    sign = means if higher else -means
    top = np.nanmax(sign, axis=0)
    is_best = sign == top[None, :]
    return is_best / is_best.sum(axis=0, keepdims=True)


def win_probabilities(means: np.ndarray, higher: bool) -> np.ndarray:
    """The share of worlds (columns) in which each policy (row) has the best world mean."""
    return _best_index(means, higher).mean(axis=1)


def noise_split(d: np.ndarray) -> dict:
    """Between-world spread vs within-world noise of one policy's paired differences ``d[w, r]``."""
    w, r = d.shape
    world = d.mean(axis=1)
    var_means = float(np.var(world, ddof=1)) if w > 1 else math.nan
    within = float(np.mean(np.var(d, axis=1, ddof=1))) if r > 1 else math.nan
    if math.isfinite(within) and math.isfinite(var_means):
        var_worlds = max(0.0, var_means - within / r)
        noise_share = min(1.0, within / r / var_means) if var_means > 0 else (0.0 if within == 0 else 1.0)
        shrink = math.sqrt(var_worlds / var_means) if var_means > 0 else 0.0
        centre = float(np.mean(world))
        shrunk = centre + shrink * (world - centre)
        p5w, p95w = float(np.percentile(shrunk, 5)), float(np.percentile(shrunk, 95))
    else:
        var_worlds = noise_share = p5w = p95w = math.nan
    return {"sd_between_world_means": _f(math.sqrt(var_means)) if math.isfinite(var_means) else None,
            "sd_within_world": _f(math.sqrt(within)) if math.isfinite(within) else None,
            "sd_worlds": _f(math.sqrt(var_worlds)) if math.isfinite(var_worlds) else None,
            "noise_share": _f(noise_share), "p5_worlds": _f(p5w), "p95_worlds": _f(p95w)}


def regret(means: np.ndarray, higher: bool) -> np.ndarray:
    """(P, W) world means -> (P, W) regret: how much each policy loses against the best policy of each world."""
    if higher:
        return np.nanmax(means, axis=0)[None, :] - means
    return means - np.nanmin(means, axis=0)[None, :]


def _worst_share(x: np.ndarray, share: float = 0.05) -> float:
    k = max(1, int(math.ceil(share * len(x))))
    return float(np.mean(np.sort(x)[-k:]))


def outcome_robustness(x: np.ndarray, policies: Sequence[str], baseline: str, higher: bool | None) -> dict:
    """The robustness entry of one outcome from its values ``x[p, w, r]`` (policies in order, baseline among them)."""
    x = np.asarray(x, dtype=float)
    p_count, w, r = x.shape
    b = list(policies).index(baseline)
    means = x.mean(axis=2)
    ok = np.all(np.isfinite(means), axis=0)  # worlds where every policy's outcome is a number
    out: dict = {"worlds": int(ok.sum())}
    if ok.sum() < 2:
        out["note"] = "fewer than two worlds where every policy's outcome is a number"
        return out
    x, means = x[:, ok, :], means[:, ok]
    out["differences"] = {}
    for i, p in enumerate(policies):
        if i == b:
            continue
        d = x[i] - x[b]
        world = d.mean(axis=1)
        entry = {"mean": _f(np.mean(world)), "median": _f(np.median(world)),
                 "p5": _f(np.percentile(world, 5)), "p95": _f(np.percentile(world, 95)), **noise_split(d)}
        if higher is not None:
            entry["share_beats_baseline"] = _f(np.mean(world > 0) if higher else np.mean(world < 0))
        out["differences"][p] = entry
    if higher is None:
        return out
    probs = win_probabilities(means, higher)
    n = means.shape[1]
    out["p_best"] = {p: _f(probs[i]) for i, p in enumerate(policies)}
    out["p_best_se"] = {p: _f(math.sqrt(probs[i] * (1 - probs[i]) / n)) for i, p in enumerate(policies)}
    reg = regret(means, higher)
    out["regret"] = {p: {"mean": _f(np.mean(reg[i])), "p95": _f(np.percentile(reg[i], 95)),
                         "mean_worst_5pct": _f(_worst_share(reg[i]))} for i, p in enumerate(policies)}
    return out


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%"


#: The two-sided 95% quantile of the standard normal distribution.
_Z95 = 1.959963984540054


def chance_correlation(worlds: int) -> float:
    """How large a rank correlation across `worlds` worlds grows by chance alone, one parameter at a time: the 95%
    band of Spearman's rho under no association, 1.96 / sqrt(worlds - 1) (its null standard deviation is
    1 / sqrt(worlds - 1)). Above 1 (four worlds or fewer), no correlation can stand out."""
    return _Z95 / math.sqrt(max(1, worlds - 1))


def _driver(values: np.ndarray, names: Sequence[str], gap: np.ndarray) -> tuple[str, float] | None:
    """The varying parameter whose rank correlation with ``gap`` (per world) is largest in size."""
    from scipy.stats import spearmanr

    best: tuple[str, float] | None = None
    for j, name in enumerate(names):
        col = values[:, j]
        if np.all(col == col[0]) or np.all(gap == gap[0]):
            continue
        rho = float(spearmanr(col, gap).statistic)
        if math.isfinite(rho) and (best is None or abs(rho) > abs(best[1])):
            best = (name, rho)
    return best


def rank_drivers(world_means: np.ndarray, policies: Sequence[str], leader: str, higher: bool, values: np.ndarray,
                 parameters: Sequence[str]) -> list[dict]:
    """Every varying parameter's Spearman rank correlation, across worlds, with the leader's margin over the best
    other policy of each world (negative where the leader loses), largest in size first: the tornado chart's bars.

    The margin is ``m[leader, w] - max over other policies of m[p, w]`` (reversed when lower is better). A
    parameter constant over the worlds, or a margin constant over them, has no correlation and is left out."""
    from scipy.stats import spearmanr

    means = np.asarray(world_means, dtype=float)
    ok = np.all(np.isfinite(means), axis=0)
    sign = (means if higher else -means)[:, ok]
    i = list(policies).index(leader)
    if sign.shape[0] < 2 or ok.sum() < 3:
        return []
    margin = sign[i] - np.max(np.delete(sign, i, axis=0), axis=0)
    rows = []
    for j, name in enumerate(parameters):
        col = np.asarray(values, dtype=float)[ok, j]
        if np.all(col == col[0]) or np.all(margin == margin[0]):
            continue
        rho = float(spearmanr(col, margin).statistic)
        if math.isfinite(rho):
            rows.append({"parameter": name, "rank_correlation": rho})
    return sorted(rows, key=lambda r: -abs(r["rank_correlation"]))


def verdict(entry: Mapping, outcome_label: str, labels: Mapping[str, str], baseline: str,
            world_means: np.ndarray | None = None, policies: Sequence[str] = (), values: np.ndarray | None = None,
            parameters: Sequence[str] = ()) -> dict:
    """The verdict on one outcome in words, with whether it is robust.

    Robust when one policy is best in at least :data:`ROBUST_SHARE` of the worlds: "points beats no
    programme on net profit in 94% of plausible worlds" (against the baseline, or "is best ... in"
    when the baseline is not the runner-up). Otherwise "which programme wins depends on X", X the
    parameter most rank-correlated (across worlds) with the gap between the two likeliest winners,
    when ``world_means`` and the design ``values`` are given."""
    probs = entry.get("p_best")
    if not probs:
        return {"robust": False, "text": f"no verdict on {outcome_label}: {entry.get('note', 'no direction')}"}
    order = sorted(probs, key=lambda p: (-probs[p], list(probs).index(p)))
    best, second = order[0], order[1] if len(order) > 1 else None
    share = probs[best]
    out: dict = {"best": best, "p_best": share, "robust": bool(share >= ROBUST_SHARE)}
    name = labels.get(best, best)
    if share >= ROBUST_SHARE:
        if best != baseline:
            beats = entry["differences"][best].get("share_beats_baseline")
            text = (f"{name} beats {labels.get(baseline, baseline)} on {outcome_label} in {_pct(beats)} of "
                    f"plausible worlds, and is the best policy in {_pct(share)}")
        else:
            text = f"{name} is the best policy on {outcome_label} in {_pct(share)} of plausible worlds"
        out["text"] = text
        return out
    assert second is not None  # a lone policy has share 1 >= ROBUST_SHARE and returned above
    text = (f"which programme wins on {outcome_label} depends on the world: {name} is best in {_pct(share)} of "
            f"plausible worlds, {labels.get(second, second)} in {_pct(probs[second])}")
    if world_means is not None and values is not None and parameters and second is not None:
        i, k = list(policies).index(best), list(policies).index(second)
        gap = world_means[i] - world_means[k]
        found = _driver(values, parameters, gap)
        chance = chance_correlation(len(gap))
        if found is not None and abs(found[1]) >= chance:
            out["driver"] = {"parameter": found[0], "rank_correlation": found[1]}
            text += (f"; it depends most on {found[0]} (rank correlation {found[1]:+.2f} with "
                     f"{name}'s lead over {labels.get(second, second)})")
        elif found is not None:
            text += (f"; with {len(gap)} worlds no parameter's rank correlation with {name}'s lead stands out from "
                     f"chance (the largest, {found[0]}'s {found[1]:+.2f}, is within the {chance:.2f} that chance "
                     "alone reaches in 95% of samples)")
    out["text"] = text
    return out


def sobol_rows(y: np.ndarray, parameters: Sequence[str], seed: int) -> list[dict]:
    """First-order and total Sobol indices of ``y`` (one value per world of a Saltelli design, in SALib's order,
    without second order) with their 95% bootstrap intervals, ranked by total index (largest first).

    The indices are lab.metrics.sensitivity's :func:`~lab.metrics.sensitivity.sobol_table` (SALib's
    ``sobol.analyze``, Jansen estimators, the batch's own); ``seed`` seeds the bootstrap. A ``y`` with a missing
    value gives no rows (Sobol indices need every world of the sample)."""
    from lab.metrics.sensitivity import sobol_table

    y = np.asarray(y, dtype=float)
    if not np.all(np.isfinite(y)):
        return []
    t = sobol_table(y, parameters, seed=seed)
    rows = [{"parameter": str(r.factor), "S1": _f(r.s1), "S1_low": _f(r.s1_low), "S1_high": _f(r.s1_high),
             "ST": _f(r.st), "ST_low": _f(r.st_low), "ST_high": _f(r.st_high), **({"note": r.note} if r.note else {})}
            for r in t.itertuples()]
    return sorted(rows, key=lambda r: -(r["ST"] if r["ST"] is not None else -math.inf))


def morris_rows(values: np.ndarray, y: np.ndarray, parameters: Sequence[str], spans: Sequence[float],
                seed: int) -> list[dict]:
    """Morris elementary effects of ``y`` (one value per world of a Morris design, trajectory by trajectory):
    per parameter mu* (mean absolute effect), mu and sigma, each effect per whole plausible range of the parameter
    (``spans``: high - low), with 95% percentile bootstrap intervals over the trajectories; ranked by mu*.

    The effects and their table are lab.metrics.sensitivity's :func:`~lab.metrics.sensitivity.morris_effects`
    and :func:`~lab.metrics.sensitivity.morris_table` (the batch's own)."""
    from lab.metrics.sensitivity import morris_effects, morris_table

    t = morris_table(morris_effects(values, y, spans), parameters, seed=seed)
    rows = [{"parameter": str(r.factor), "trajectories": int(r.r), "mu_star": _f(r.mu_star),
             "mu_star_low": _f(r.mu_star_low), "mu_star_high": _f(r.mu_star_high), "mu": _f(r.mu),
             "sigma": _f(r.sigma), "sigma_low": _f(r.sigma_low), "sigma_high": _f(r.sigma_high)}
            for r in t.itertuples()]
    return sorted(rows, key=lambda r: -(r["mu_star"] if r["mu_star"] is not None else -math.inf))
