"""An existing customer base: one simulated customer per real one, drawn from their own posterior.

`lab fit` writes DIR/customers.parquet, one row per customer of the calibration period with
their history: repeat transactions x, recency t_x and age T (in the fit's time unit, given in
DIR/fit.json), calibration revenue, mean repeat spend and purchases per category.
`posterior_traits` draws each customer's latent traits given that history under their
segment's fitted model, and `ExistingBase` carries the result into the engine, which starts the
run at the data's calibration end (time 0) with these customers already in the store.

BG/NBD (Fader, Hardie & Lee 2005). A customer with history (x, t_x, T) is alive at T with
P(alive) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) (`btyd.bgnbd_p_alive`).
The joint likelihood of (lambda, p) is (1-p)^x lambda^x e^(-lambda T) when alive and
p (1-p)^(x-1) lambda^x e^(-lambda t_x) when the customer dropped out after the last purchase, so,
with the Gamma(r, alpha) and Beta(a, b) priors:
- alive: lambda ~ Gamma(r + x, rate alpha + T), p ~ Beta(a, b + x);
- dropped out after the last purchase: lambda ~ Gamma(r + x, rate alpha + t_x), p ~ Beta(a + 1, b + x - 1).
Gamma-Gamma (Fader, Hardie & Lee 2005b): given x repeat transactions of mean spend m, the scale
nu ~ Gamma(q + p x, rate gamma + x m) (the prior Gamma(q, rate gamma) when x == 0).
Category tastes: the Dirichlet around the segment's mix updated by the customer's own counts.

Draws come from counter-based streams keyed by the customer's row, so the same base gives the
same customers under every policy (common random numbers). Pareto/NBD segments are refused
with a message (their P(alive) lives in lab.fit, above this layer): refit with --model bgnbd.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab.errors import LabError
from lab.population import btyd
from lab.randomness import Streams, beta_quantile, gamma_quantile
from lab.scenario.model import BGNBD, TIME_UNIT_DAYS, Scenario

__all__ = ["History", "ExistingBase", "read_history", "posterior_traits", "existing_base", "BASE_FILE"]

#: The file `lab fit` writes into its output folder for `population.from_fit`.
BASE_FILE = "customers.parquet"


@dataclass(frozen=True)
class History:
    """What the data say about each real customer at the calibration end (times in days before it)."""

    segment: np.ndarray       # int: segment code in the scenario
    x: np.ndarray             # repeat transactions
    recency_days: np.ndarray  # t_x: days from the first to the last transaction
    age_days: np.ndarray      # T: days from the first transaction to the calibration end
    revenue: np.ndarray       # spend in calibration, every transaction
    mean_repeat_spend: np.ndarray  # mean amount of the repeat transactions (NaN when x == 0)
    category_counts: np.ndarray    # (customers, scenario categories): purchases in each

    @property
    def n(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class ExistingBase:
    """The latent traits and starting state of every customer of an existing base (per-day units)."""

    history: History
    alive: np.ndarray         # bool: still a customer at the calibration end
    lam: np.ndarray           # purchase rate per day
    p_drop: np.ndarray        # BG/NBD dropout chance after a repeat purchase
    nu: np.ndarray            # Gamma-Gamma spend scale
    tastes: np.ndarray        # (customers, categories): preference weights, rows sum to 1
    p_alive: np.ndarray       # the closed-form P(alive) each draw came from


def read_history(folder: str | Path, scenario: Scenario) -> History:
    """The customers of `lab fit`'s output `folder`, mapped onto the scenario's segments and categories."""
    import pandas as pd  # only when launching on a fitted base

    folder = Path(folder)
    file, meta = folder / BASE_FILE, folder / "fit.json"
    for f in (file, meta):
        if not f.is_file():
            raise LabError.at(str(f), 1, 1, f"population.from_fit: {f} does not exist; "
                              f"run `lab fit LOG --out {folder}` "
                              "(it writes fit.json and customers.parquet)")
    unit = TIME_UNIT_DAYS[json.loads(meta.read_text(encoding="utf-8"))["data"]["time_unit"]]
    frame = pd.read_parquet(file)
    names = list(scenario.population.segments)
    if "segment" in frame.columns and len(names) > 1:
        code = {n: i for i, n in enumerate(names)}
        unknown = sorted(set(frame["segment"].astype(str)) - set(code))
        if unknown:
            raise LabError.at(str(file), 1, 1, f"population.from_fit: segment '{unknown[0]}' of {file} is not a "
                              "segment of the "
                              f"scenario (it has {', '.join(names)}); name the scenario's segments as the fit did")
        seg = frame["segment"].astype(str).map(code).to_numpy(dtype=np.int64)
    elif len(names) == 1:
        seg = np.zeros(len(frame), dtype=np.int64)
    else:
        raise LabError.at(str(file), 1, 1, f"population.from_fit: {file} has no segment column but the scenario has "
                          f"{len(names)} segments; fit with --segment COL or keep one segment")
    cats = list(scenario.store.categories)
    counts = np.zeros((len(frame), len(cats)))
    for j, c in enumerate(cats):
        if f"n_{c}" in frame.columns:
            counts[:, j] = frame[f"n_{c}"].to_numpy(dtype=float)
    return History(segment=seg, x=frame["x"].to_numpy(dtype=float),
                   recency_days=frame["t_x"].to_numpy(dtype=float) * unit,
                   age_days=frame["T"].to_numpy(dtype=float) * unit, revenue=frame["revenue"].to_numpy(dtype=float),
                   mean_repeat_spend=frame["mean_repeat_spend"].to_numpy(dtype=float), category_counts=counts)


def posterior_traits(h: History, scenario: Scenario, streams: Streams) -> ExistingBase:
    """Draw every customer's traits from their posterior given their history (see the module's docstring)."""
    names = list(scenario.population.segments)
    segs = list(scenario.population.segments.values())
    n = h.n
    ids = np.arange(n, dtype=np.int64)
    u = streams.uniforms(("base_alive", "base_lambda", "base_p", "base_nu"), ids, np.zeros(n, dtype=np.int64))
    alive = np.zeros(n, dtype=bool)
    lam, p_drop, nu, pa = (np.zeros(n) for _ in range(4))
    for k, seg in enumerate(segs):
        pm = seg.purchases
        if not isinstance(pm, BGNBD):
            raise LabError.at("<scenario>", 1, 1, f"population.from_fit: segment '{names[k]}' "
                              "follows Pareto/NBD; launching on a fitted base supports BG/NBD segments: "
                              "refit with --model bgnbd")
        w = np.flatnonzero(h.segment == k)
        if not w.size:
            continue
        unit = TIME_UNIT_DAYS[pm.time_unit]
        x, t_x, T = h.x[w], h.recency_days[w] / unit, h.age_days[w] / unit
        pa[w] = np.asarray(btyd.bgnbd_p_alive(x, t_x, T, pm.r, pm.alpha, pm.a, pm.b), dtype=float)
        live = u[0][w] < pa[w]
        alive[w] = live
        horizon = np.where(live, T, t_x)  # the exposure the purchase rate is seen over
        lam[w] = gamma_quantile(pm.r + x, u[1][w]) / (pm.alpha + horizon) / unit
        pa_ = np.where(live, pm.a, pm.a + 1.0)
        pb_ = np.where(live, pm.b + x, pm.b + x - 1.0)
        p_drop[w] = beta_quantile(pa_, pb_, u[2][w])
        sp = seg.spend
        m = np.where(x > 0, np.nan_to_num(h.mean_repeat_spend[w]), 0.0)
        xs = np.where(m > 0, x, 0.0)
        nu[w] = gamma_quantile(sp.q + sp.p * xs, u[3][w]) / (sp.gamma + xs * m)
    tastes = _tastes(h, scenario, streams, ids)
    return ExistingBase(h, alive, lam, p_drop, nu, tastes, pa)


def _tastes(h: History, scenario: Scenario, streams: Streams, ids: np.ndarray) -> np.ndarray:
    """Each customer's category tastes: Dirichlet(concentration x segment mix + own counts)."""
    cats = list(scenario.store.categories)
    C = len(cats)
    market = np.array([scenario.store.categories[c].share for c in cats], dtype=float)
    shapes = np.zeros((h.n, C))
    for k, seg in enumerate(scenario.population.segments.values()):
        pref = np.array([seg.categories.get(c, market[i]) for i, c in enumerate(cats)], dtype=float)
        pref = pref / pref.sum()
        w = h.segment == k
        shapes[w] = seg.category_concentration * pref
    shapes = shapes + h.category_counts
    u = streams.uniforms(tuple(f"base_taste{c}" for c in range(C)), ids, np.zeros(h.n, dtype=np.int64))
    g = np.maximum(np.stack([gamma_quantile(shapes[:, c], u[c]) for c in range(C)], axis=1), 1e-12)
    return g / g.sum(axis=1, keepdims=True)


def existing_base(scenario: Scenario, streams: Streams, customers: int | None = None) -> ExistingBase:
    """The scenario's existing customer base (`population.from_fit`), traits drawn.

    `customers`: keep only the first that many rows of the base (a smaller run, e.g. `--customers`);
    each keeps the traits it has in the full base, since draws are keyed by row."""
    assert scenario.population.from_fit is not None
    h = read_history(scenario.population.from_fit, scenario)
    if customers is not None and customers < h.n:
        h = History(**{f: getattr(h, f)[:customers] for f in h.__dataclass_fields__})
    return posterior_traits(h, scenario, streams)
