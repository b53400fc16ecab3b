"""Global sensitivity of a batch's policy differences to its factors: SRC, PRCC and (when installed) SALib.

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

__all__ = ["salib_indices", "sensitivity", "sensitivity_indices"]


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
    """For sampled designs: sensitivity of each policy's paired difference vs the baseline in `outcome` to the numeric factors."""
    man = data.manifest
    numeric = [f for f in man["factors"] if f["dtype"] in ("float64", "int64")]
    if man["design"]["type"] == "grid" or not numeric:
        return pd.DataFrame()
    rows = []
    sub = summary[(summary["outcome"] == outcome) & (summary["policy"] != BASELINE)]
    names = [f["name"] for f in numeric]
    for policy, g in sub.groupby("policy", sort=False):
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

