"""Global sensitivity of a batch's policy differences to its factors: SRC/PRCC, Sobol' indices, Morris effects.

Every index is of a policy's paired difference against the baseline, per
design point (the mean over replications), and only over the factors that
can affect that difference: a factor on one policy's parameters (its path
starts ``policies.NAME.``) is not a candidate driver of another policy's
outcomes (`applicable`). Three methods:

* Saltelli stores (design ``saltelli``): first-order and total Sobol' indices
  (S1, ST; Saltelli et al. 2010, Jansen 1999 estimators) from SALib's
  `SALib.analyze.sobol`, with its bootstrap intervals (index +- the 95%
  half-width) -- `sobol_indices`;
* Morris stores (design ``morris``): elementary effects per trajectory, their
  mean absolute value mu* and standard deviation sigma (Morris 1991; Campolongo
  et al. 2007), each with a percentile bootstrap interval over trajectories --
  `morris_indices`;
* the cheap option, for lhs and sobol stores:

For sampled designs (lhs, sobol): the sensitivity of each policy's
net-profit difference against the baseline to the factors. Always computed
with numpy/scipy: standardized regression coefficients (SRC: the OLS slope
on standardized variables; meaningful when the linear model's R^2 is high)
and partial rank correlation coefficients (PRCC: the correlation of the rank
residuals after regressing out the other factors; monotone effects, Marino
et al. 2008, J. Theor. Biol. 254:178), each with percentile bootstrap
intervals over design points. When SALib is installed (the optional extra
`sensitivity`), its moment-independent delta index and first-order S1
(Borgonovo 2007; Plischke et al. 2013), which accept any sample, are added.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from scipy.stats import t as student_t

from lab.metrics.batch_summary import LEVEL, TARGET, BatchTables
from lab.scenario.loader import BASELINE

__all__ = ["INDEX", "applicable", "indices", "morris_effects", "morris_indices", "policy_of", "salib_indices",
           "sensitivity", "sensitivity_indices", "sobol_indices", "sobol_table"]

#: The index each method ranks its drivers by, and the columns of its value and interval.
INDEX = {"prcc": ("PRCC", "prcc", "prcc_low", "prcc_high"), "sobol": ("ST", "st", "st_low", "st_high"),
         "morris": ("mu*", "mu_star", "mu_star_low", "mu_star_high")}


def policy_of(path: str) -> str | None:
    """The policy a factor's path belongs to ('policies.NAME....'), or None for a scenario parameter."""
    parts = str(path).split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "policies" else None


def applicable(factors: Sequence[dict], policy: str) -> list[dict]:
    """The factors that can affect `policy`'s difference vs the baseline: the scenario's, the policy's own and the
    baseline's (a factor on another policy changes neither run)."""
    return [f for f in factors if policy_of(f["path"]) in (None, policy, BASELINE)]


def sensitivity_indices(X: np.ndarray, y: np.ndarray, names: Sequence[str], *, boot: int = 1000, seed: int = 0,
                        level: float = LEVEL) -> pd.DataFrame:
    """SRC and PRCC of `y` on the columns of `X`, with percentile bootstrap intervals over rows.

    Returns one row per factor: src, src_low, src_high, prcc, prcc_low,
    prcc_high, prcc_p (two-sided t test of PRCC = 0 with n - k - 1 degrees of
    freedom), and r2 (of the linear model behind SRC, the same on every row).
    Constant factors get NaN; fewer than k + 3 rows give an empty table."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    X, y = X[keep], y[keep]
    n, k = X.shape
    cols = ["factor", "src", "src_low", "src_high", "prcc", "prcc_low", "prcc_high", "prcc_p", "r2"]
    if k == 0 or n < k + 3:
        return pd.DataFrame(columns=cols)
    src, r2 = _src(X, y)
    prcc = _prcc(X, y)
    rng = np.random.default_rng(seed)
    bs_src = np.full((boot, k), np.nan)
    bs_prcc = np.full((boot, k), np.nan)
    for b in range(boot):
        rows = rng.integers(0, n, n)
        bs_src[b], _ = _src(X[rows], y[rows])
        bs_prcc[b] = _prcc(X[rows], y[rows])
    a = 100 * (1 - level) / 2
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where a factor is constant
        s_lo, s_hi = np.nanpercentile(bs_src, [a, 100 - a], axis=0)
        p_lo, p_hi = np.nanpercentile(bs_prcc, [a, 100 - a], axis=0)
        df = n - k - 1
        t = prcc * np.sqrt(df / np.maximum(1 - prcc ** 2, 1e-300))
        pval = 2 * student_t.sf(np.abs(t), df)
    return pd.DataFrame({"factor": list(names), "src": src, "src_low": s_lo, "src_high": s_hi, "prcc": prcc,
                         "prcc_low": p_lo, "prcc_high": p_hi, "prcc_p": pval, "r2": r2})[cols]


def _src(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    sx = X.std(axis=0, ddof=1)
    sy = y.std(ddof=1)
    live = sx > 0
    out = np.full(X.shape[1], np.nan)
    if sy == 0 or not live.any():
        return out, float("nan")
    Z = (X[:, live] - X[:, live].mean(axis=0)) / sx[live]
    yz = (y - y.mean()) / sy
    A = np.column_stack([np.ones(len(y)), Z])
    coef, *_ = np.linalg.lstsq(A, yz, rcond=None)
    out[live] = coef[1:]
    resid = yz - A @ coef
    return out, float(1 - (resid @ resid) / (yz @ yz))


def _prcc(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    R = np.column_stack([rankdata(X[:, j]) for j in range(X.shape[1])]) if X.shape[1] else X
    ry = rankdata(y)
    k = X.shape[1]
    out = np.full(k, np.nan)
    live = [j for j in range(k) if np.ptp(R[:, j]) > 0]
    for j in live:
        others = [i for i in live if i != j]
        A = np.column_stack([np.ones(len(y))] + [R[:, i] for i in others])
        ex = R[:, j] - A @ np.linalg.lstsq(A, R[:, j], rcond=None)[0]
        ey = ry - A @ np.linalg.lstsq(A, ry, rcond=None)[0]
        den = math.sqrt(float(ex @ ex) * float(ey @ ey))
        out[j] = float(ex @ ey) / den if den > 0 else np.nan
    return out


def salib_indices(X: np.ndarray, y: np.ndarray, names: Sequence[str], bounds: Sequence[tuple[float, float]],
                  seed: int = 0) -> pd.DataFrame | None:
    """SALib's delta and S1 indices from the given sample, or None when SALib is not installed.

    Works with both SALib APIs: up to 1.5 `delta.analyze` returns `delta`; from 1.6 it returns
    `delta_raw` (the same estimator on plain bootstrap resamples, reported here as delta) beside
    `delta_balanced` and `delta_step`, and catches its own per-factor errors. When the sample is too
    small for SALib's bins (SALib wants at least 10 points per bin and two bins per factor),
    the indices are NaN and the `salib_note` column says why and what to do."""
    if importlib.util.find_spec("SALib") is None:
        return None
    import contextlib
    import io

    from SALib.analyze import delta

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    k = len(names)
    nan = np.full(k, np.nan)

    def refused(why: str) -> pd.DataFrame:
        return pd.DataFrame({"factor": list(names), "delta": nan, "delta_conf": nan, "s1": nan, "s1_conf": nan,
                             "salib_note": [why] * k})

    n = int(keep.sum())
    problem = {"num_vars": k, "names": list(names), "bounds": [list(b) for b in bounds]}
    sink = io.StringIO()
    try:
        # record=True keeps SALib's own notices out of the user's terminal even though SALib resets the filters
        with warnings.catch_warnings(record=True), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            res = delta.analyze(problem, X[keep], y[keep], print_to_console=False, seed=seed)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # SALib < 1.6 raises per factor
        return refused(f"SALib could not compute its indices from {n} design points ({_first_line(exc)}): "
                       "raise the design's n")
    d_key = "delta" if "delta" in res else "delta_raw"
    out = pd.DataFrame({"factor": list(names), "delta": np.asarray(res[d_key], dtype=float),
                        "delta_conf": np.asarray(res[f"{d_key}_conf"], dtype=float),
                        "s1": np.asarray(res["S1"], dtype=float), "s1_conf": np.asarray(res["S1_conf"], dtype=float)})
    failed = ~np.isfinite(out["delta"].to_numpy())
    if failed.any():
        out["salib_note"] = np.where(failed, f"SALib could not bin this factor with {n} design points "
                                     "(it wants at least 10 points per bin and two bins): raise the design's n", "")
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__


def sensitivity(data: BatchTables, summary: pd.DataFrame, outcome: str = TARGET, boot: int = 1000) -> pd.DataFrame:
    """For lhs and sobol designs: SRC and PRCC of each policy's paired difference vs the baseline in `outcome`, over the
    numeric factors that can affect that policy (`applicable`)."""
    man = data.manifest
    numeric = [f for f in man["factors"] if f["dtype"] in ("float64", "int64")]
    if man["design"]["type"] not in ("lhs", "sobol") or not numeric:
        return pd.DataFrame()
    rows = []
    sub = summary[(summary["outcome"] == outcome) & (summary["policy"] != BASELINE)]
    for policy, g in sub.groupby("policy", sort=False):
        names = [f["name"] for f in applicable(numeric, str(policy))]
        if not names:
            continue
        g = g.sort_values("point")
        X = g[names].to_numpy(dtype=float)
        y = g["diff_mean"].to_numpy(dtype=float)
        s = sensitivity_indices(X, y, names, boot=boot, seed=int(man["design"].get("seed") or 0))
        if s.empty:
            continue
        bounds = [(float(np.nanmin(X[:, j])), float(np.nanmax(X[:, j]))) for j in range(len(names))]
        extra = salib_indices(X, y, names, bounds, seed=int(man["design"].get("seed") or 0))
        if extra is not None:
            s = s.merge(extra, on="factor", how="left")
        s.insert(0, "policy", policy)
        s.insert(1, "outcome", f"{outcome} difference vs {BASELINE}")
        rows.append(s)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()



def _responses(summary: pd.DataFrame, n_points: int) -> dict[tuple[str, str], np.ndarray]:
    """Per (policy, outcome) other than the baseline: the mean paired difference at every design point, in point
    order (NaN where no replication gave one)."""
    sub = summary[summary["policy"] != BASELINE]
    out = {}
    for (policy, outcome), g in sub.groupby(["policy", "outcome"], sort=False):
        y = np.full(n_points, np.nan)
        y[g["point"].to_numpy(dtype=int)] = g["diff_mean"].to_numpy(dtype=float)
        out[(str(policy), str(outcome))] = y
    return out


def sobol_table(y: np.ndarray, names: Sequence[str], *, boot: int = 1000, seed: int = 0,
                level: float = LEVEL) -> pd.DataFrame:
    """First-order and total Sobol' indices of `y` over a Saltelli sample without second order (SALib 1.6's
    `SALib.analyze.sobol.analyze`), with SALib's bootstrap intervals: S1, s1_low, s1_high, ST, st_low, st_high.

    `y` must hold N (k + 2) values in the sample's order; a missing value (a failed point) gives NaN indices and a
    note. A response that does not vary has every index 0 (nothing drives it)."""
    y = np.asarray(y, dtype=float)
    k = len(names)
    cols = ["factor", "s1", "s1_low", "s1_high", "st", "st_low", "st_high", "note"]
    nan = np.full(k, np.nan)
    if k == 0:
        return pd.DataFrame(columns=cols)
    if len(y) % (k + 2):
        raise ValueError(f"a Saltelli sample over {k} factors has a multiple of {k + 2} points, not {len(y)}")
    if not np.all(np.isfinite(y)):
        bad = int((~np.isfinite(y)).sum())
        return pd.DataFrame({"factor": list(names), "s1": nan, "s1_low": nan, "s1_high": nan, "st": nan,
                             "st_low": nan, "st_high": nan,
                             "note": [f"{bad} design points have no value (failed or undefined runs), and Sobol' "
                                      "indices need every point of the sample"] * k})[cols]
    if np.ptp(y) == 0:
        z = np.zeros(k)
        return pd.DataFrame({"factor": list(names), "s1": z, "s1_low": z, "s1_high": z, "st": z, "st_low": z,
                             "st_high": z, "note": ["the response is the same at every design point"] * k})[cols]
    from SALib.analyze import sobol

    problem = {"num_vars": k, "names": list(names), "bounds": [[0.0, 1.0]] * k}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = sobol.analyze(problem, y, calc_second_order=False, num_resamples=boot, conf_level=level,
                            print_to_console=False, seed=seed)
    s1, s1c = np.asarray(res["S1"], dtype=float), np.asarray(res["S1_conf"], dtype=float)
    st, stc = np.asarray(res["ST"], dtype=float), np.asarray(res["ST_conf"], dtype=float)
    return pd.DataFrame({"factor": list(names), "s1": s1, "s1_low": s1 - s1c, "s1_high": s1 + s1c, "st": st,
                         "st_low": st - stc, "st_high": st + stc, "note": [""] * k})[cols]


def sobol_indices(data: BatchTables, summary: pd.DataFrame, *, boot: int = 1000,
                  outcomes: Sequence[str] | None = None) -> pd.DataFrame:
    """For a saltelli store: S1 and ST, with intervals, of every policy's difference vs the baseline in every outcome
    (or `outcomes`), over the factors that can affect that policy (the others are estimated with the rest, as the
    sample requires, and left out of the table)."""
    man = data.manifest
    if man["design"]["type"] != "saltelli":
        return pd.DataFrame()
    factors = man["factors"]
    names = [f["name"] for f in factors]
    seed = int(man["design"].get("seed") or 0)
    rows = []
    for (policy, outcome), y in _responses(summary, len(man["points"])).items():
        if outcomes is not None and outcome not in outcomes:
            continue
        keep = {f["name"] for f in applicable(factors, policy)}
        if not keep:
            continue
        t = sobol_table(y, names, boot=boot, seed=seed)
        t = t[t["factor"].isin(keep)]
        t.insert(0, "policy", policy)
        t.insert(1, "outcome", outcome)
        rows.append(t)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def morris_effects(X: np.ndarray, y: np.ndarray, ranges: Sequence[float]) -> np.ndarray:
    """Elementary effects of a Morris sample: (trajectories x factors), each (y' - y) / (dx / range) for the one
    factor a step changes (NaN where a step is missing or changes a whole-number factor by nothing)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    k = X.shape[1]
    r = X.shape[0] // (k + 1)
    ee = np.full((r, k), np.nan)
    span = np.where(np.asarray(ranges, dtype=float) > 0, np.asarray(ranges, dtype=float), 1.0)
    for t in range(r):
        block = X[t * (k + 1):(t + 1) * (k + 1)] / span
        yt = y[t * (k + 1):(t + 1) * (k + 1)]
        for s in range(k):
            dx = block[s + 1] - block[s]
            j = int(np.argmax(np.abs(dx)))
            if dx[j] != 0 and np.isfinite(yt[s]) and np.isfinite(yt[s + 1]):
                ee[t, j] = (yt[s + 1] - yt[s]) / dx[j]
    return ee


def morris_table(ee: np.ndarray, names: Sequence[str], *, boot: int = 1000, seed: int = 0,
                 level: float = LEVEL) -> pd.DataFrame:
    """mu* (mean |EE|), mu (mean EE) and sigma (sd of EE) per factor, with percentile bootstrap intervals over the
    trajectories; `r` says how many elementary effects each rests on."""
    ee = np.asarray(ee, dtype=float)
    rng = np.random.default_rng(seed)
    a = 100 * (1 - level) / 2
    rows = []
    for j, name in enumerate(names):
        e = ee[:, j][np.isfinite(ee[:, j])]
        row = {"factor": name, "r": len(e)}
        if len(e) < 2:
            row.update(mu_star=np.nan, mu_star_low=np.nan, mu_star_high=np.nan, mu=np.nan, sigma=np.nan,
                       sigma_low=np.nan, sigma_high=np.nan)
        else:
            bs = e[rng.integers(0, len(e), (boot, len(e)))]
            ms = np.abs(bs).mean(axis=1)
            sd = bs.std(axis=1, ddof=1)
            row.update(mu_star=float(np.abs(e).mean()), mu_star_low=float(np.percentile(ms, a)),
                       mu_star_high=float(np.percentile(ms, 100 - a)), mu=float(e.mean()),
                       sigma=float(e.std(ddof=1)), sigma_low=float(np.percentile(sd, a)),
                       sigma_high=float(np.percentile(sd, 100 - a)))
        rows.append(row)
    return pd.DataFrame(rows, columns=["factor", "r", "mu_star", "mu_star_low", "mu_star_high", "mu", "sigma",
                                       "sigma_low", "sigma_high"])


def morris_indices(data: BatchTables, summary: pd.DataFrame, *, boot: int = 1000,
                   outcomes: Sequence[str] | None = None) -> pd.DataFrame:
    """For a morris store: mu*, mu and sigma, with intervals, of every policy's difference vs the baseline in every
    outcome (or `outcomes`), over the factors that can affect that policy. Effects are per unit of each factor's
    range (low..high), so they compare across factors."""
    man = data.manifest
    if man["design"]["type"] != "morris":
        return pd.DataFrame()
    factors = man["factors"]
    names = [f["name"] for f in factors]
    pts = pd.DataFrame(man["points"]).sort_values("point")
    X = pts[names].to_numpy(dtype=float)
    ranges = [float(f["high"]) - float(f["low"]) for f in factors]
    seed = int(man["design"].get("seed") or 0)
    rows = []
    for (policy, outcome), y in _responses(summary, len(man["points"])).items():
        if outcomes is not None and outcome not in outcomes:
            continue
        keep = [j for j, f in enumerate(factors) if f in applicable(factors, policy)]
        if not keep:
            continue
        t = morris_table(morris_effects(X, y, ranges), names, boot=boot, seed=seed).iloc[keep]
        t.insert(0, "policy", policy)
        t.insert(1, "outcome", outcome)
        rows.append(t)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def indices(data: BatchTables, summary: pd.DataFrame, *, boot: int = 1000) -> tuple[str, pd.DataFrame]:
    """The method a store's design calls for and its table: ('sobol', S1/ST) for saltelli stores, ('morris', mu*/sigma)
    for morris stores, ('prcc', SRC/PRCC of net profit) for lhs and sobol stores, ('', empty) for grids."""
    kind = data.manifest["design"]["type"]
    if kind == "saltelli":
        return "sobol", sobol_indices(data, summary, boot=boot)
    if kind == "morris":
        return "morris", morris_indices(data, summary, boot=boot)
    if kind in ("lhs", "sobol"):
        return "prcc", sensitivity(data, summary, boot=boot)
    return "", pd.DataFrame()
