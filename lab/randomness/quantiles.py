"""Gamma and beta quantile functions from per-parameter tables, as accurate as scipy's inversion at a tenth of the
cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from lab.randomness.threads import in_parallel

# Inverting the gamma and beta distribution functions is most of the cost of drawing a
# population and its baskets: scipy's gammaincinv and betaincinv iterate to a root from a
# generic start, about half a microsecond a draw. Here each distinct parameter set gets a
# table of its quantile function, y = log q (gamma) or logit q (beta) against s = logit u
# -- smooth everywhere and nearly straight in both tails -- holding q, y' and y'' at 4096
# nodes (q from scipy's inversion, polished by one Halley step on scipy's incomplete
# gamma / beta function; the derivatives exactly, from q and the density), and a draw is
# the quintic Hermite interpolant between its two nodes. The interpolation error is far
# below the nodes' own, so a draw is as accurate as scipy's inversion (within a few 1e-14
# relative; tests/test_quantiles.py holds it to that against scipy and closed forms) at
# a tenth of the cost. A draw depends only on its parameters and its uniform, never on
# the rest of the batch, so common random numbers hold to the last bit. Whatever the
# tables cannot vouch for (u = 0, parameters without a finite table, a result at the
# edge of the support) is handed to scipy.
_GRID_HALF = 38.0  # the tables span logit(u) in [-38, 38], which holds every u in [2**-53, 1 - 2**-53]
_GRID_N = 4096
_GRID_STEP = 2 * _GRID_HALF / (_GRID_N - 1)
_NODES = -_GRID_HALF + np.arange(_GRID_N) * _GRID_STEP  # logit u at the nodes, exactly as the tables use them
_tables: dict[tuple[str, float, float], np.ndarray | None] = {}


def _table(kind: str, a: float, b: float) -> np.ndarray | None:
    """Per interval of the logit grid: q and 1 - q at its start, and the quintic for y - y0; (N - 1, 8), None if
    unusable."""
    key = (kind, a, b)
    if key in _tables:
        return _tables[key]
    h = _GRID_STEP
    s = _NODES
    u, v = special.expit(s), special.expit(-s)  # u and 1 - u, each to full relative accuracy
    lower = s <= 0
    with np.errstate(all="ignore"):
        if kind == "gamma":
            q = np.where(lower, special.gammaincinv(a, u), special.gammainccinv(a, v))
            # one Halley step on the residual makes each node as good as the incomplete gamma function itself
            f = np.where(lower, special.gammainc(a, q) - u, v - special.gammaincc(a, q))
            step = f / np.exp((a - 1) * np.log(q) - q - special.gammaln(a))
            q = q - step / (1 - 0.5 * step * ((a - 1) / q - 1))
            y = np.log(q)
            d1 = u * v / np.exp((a - 1) * y - q - special.gammaln(a) + y)  # dy/ds = u(1-u) / (q pdf(q))
            d2 = d1 * ((v - u) - (a - q) * d1)  # since d(q pdf(q))/ds = (a - q) u (1 - u)
        else:
            q = np.where(lower, special.betaincinv(a, b, u), 0.0)
            p = np.where(lower, 1 - q, special.betaincinv(b, a, v))  # 1 - q, accurate near q = 1
            q = np.where(lower, q, 1 - p)
            f = np.where(lower, special.betainc(a, b, q) - u, v - special.betainc(b, a, p))  # polish, as for gamma
            step = f / np.exp((a - 1) * np.log(q) + (b - 1) * np.log(p) - special.betaln(a, b))
            step = step / (1 - 0.5 * step * ((a - 1) / q - (b - 1) / p))
            q, p = q - step, p + step
            y = np.log(q) - np.log(p)
            log_pdf = (a - 1) * np.log(q) + (b - 1) * np.log(p) - special.betaln(a, b)
            d1 = u * v / (np.exp(log_pdf) * q * p)  # dy/ds = u(1-u) / (q(1-q) pdf(q))
            d2 = d1 * ((v - u) - (a - (a + b) * q) * d1)  # since d(q(1-q) pdf(q))/ds = (a - (a+b) q) u (1 - u)
        if kind == "gamma":
            p = np.ones_like(q)  # unused
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(d1)) and np.all(np.isfinite(d2)) and np.all(q > 0)
            and np.all(p > 0)):
        _tables[key] = None
        return None
    # on each interval, y(t) = y0 + m0 t + c0/2 t^2 + A t^3 + B t^4 + D t^5 for t in [0, 1], matching y, y', y'' at
    # both ends; the draw is worked from the node's own q (and 1 - q), so large |y| costs no relative accuracy
    y0, y1 = y[:-1], y[1:]
    m0, m1 = d1[:-1] * h, d1[1:] * h
    c0, c1 = d2[:-1] * (h * h), d2[1:] * (h * h)
    dy = y1 - y0
    coef = np.stack([q[:-1], m0, 0.5 * c0,
                     10 * dy - 6 * m0 - 4 * m1 - 1.5 * c0 + 0.5 * c1,
                     -15 * dy + 8 * m0 + 7 * m1 + 1.5 * c0 - c1,
                     6 * dy - 3 * m0 - 3 * m1 - 0.5 * c0 + 0.5 * c1,
                     p[:-1], np.zeros(_GRID_N - 1)], axis=1)  # (padded to 64 bytes: one cache line an interval)
    _tables[key] = coef
    return coef


@dataclass(frozen=True)
class _Family:
    """The tables of a set of parameter rows (e.g. one per segment), stacked for one-pass lookups."""

    usable: np.ndarray  # per row: a table exists
    coef: np.ndarray  # (rows * (N - 1), 8): see _table


_families: dict[tuple[object, ...], _Family] = {}
_NO_B = np.zeros(1)  # gamma has one parameter; its family is keyed as if b were 0


def _family(kind: str, a: np.ndarray, b: np.ndarray) -> _Family:
    key = (kind, a.tobytes(), None if b is _NO_B else b.tobytes())
    fam = _families.get(key)
    if fam is not None:
        return fam
    if b.shape != a.shape:
        b = np.zeros_like(a) if b is _NO_B else np.broadcast_to(b, a.shape)
    coef = np.zeros((a.size, _GRID_N - 1, 8))
    usable = np.zeros(a.size, dtype=bool)
    for g, (ag, bg) in enumerate(zip(a.tolist(), b.tolist())):
        ok = math.isfinite(ag) and ag > 0 and (kind == "gamma" or (math.isfinite(bg) and bg > 0))
        tab = _table(kind, ag, bg) if ok else None
        if tab is not None:
            coef[g] = tab
            usable[g] = True
    fam = _Family(usable, coef.reshape(-1, 8))
    _families[key] = fam
    return fam


def _fast(kind: str, fam: _Family, code: np.ndarray | int, u: np.ndarray) -> np.ndarray:
    """The interpolated quantile, for u strictly inside (0, 1) and usable rows."""
    s = np.log(u)
    s -= np.log1p(-u)
    np.clip(s, -_GRID_HALF, _GRID_HALF, out=s)
    j = ((s + _GRID_HALF) * (1.0 / _GRID_STEP)).astype(np.intp)
    np.minimum(j, _GRID_N - 2, out=j)
    t = s - _NODES[j]  # measured from the node itself: no precision lost to the node's distance from -38
    t *= 1.0 / _GRID_STEP
    j += np.asarray(code) * (_GRID_N - 1)
    c = fam.coef[j]
    r = c[:, 5] * t  # y - y0, by Horner
    for k in (4, 3, 2, 1):
        r += c[:, k]
        r *= t
    if kind == "gamma":  # q = q0 exp(y - y0)
        return c[:, 0] * np.exp(r)
    np.negative(r, out=r)  # logit q = y0 + r  =>  q = q0 / (q0 + (1 - q0) exp(-r))
    np.exp(r, out=r)
    r *= c[:, 6]
    r += c[:, 0]
    return c[:, 0] / r


def _quantiles(kind: str, params: tuple[np.ndarray | float, ...], u: np.ndarray, code: np.ndarray | None) -> np.ndarray:
    u = np.asarray(u, dtype=np.float64)
    shape = u.shape
    u = u.reshape(-1)
    rows = [np.atleast_1d(np.asarray(p, dtype=np.float64)) for p in params]
    if code is None:
        if all(r.size == 1 for r in rows):
            rows, code = [r.reshape(1) for r in rows], None
        else:  # one parameter set per draw: group the draws by their parameters
            cols = np.stack([np.broadcast_to(r.reshape(-1) if r.size > 1 else r, u.shape) for r in rows], axis=1)
            uniq, inv = np.unique(cols, axis=0, return_inverse=True)
            rows, code = [uniq[:, i] for i in range(len(rows))], inv.reshape(-1)
    else:
        code = np.asarray(code).reshape(-1)
        if code.dtype != np.intp:
            code = code.astype(np.intp)
        if code.size != u.size:
            code = np.broadcast_to(code, u.shape)
    if len(rows) > 1 and rows[0].shape != rows[1].shape:
        rows = [np.ascontiguousarray(r) for r in np.broadcast_arrays(*rows)]
    fam = _family(kind, rows[0], rows[1] if kind == "beta" else _NO_B)
    exact = special.gammaincinv if kind == "gamma" else special.betaincinv
    out = np.empty(u.shape)

    every_row = bool(fam.usable.all())

    def part(lo: int, hi: int) -> None:
        uu = u[lo:hi]
        cc = 0 if code is None else code[lo:hi]
        if uu.size == 0:
            return
        if every_row and uu.min() > 0 and uu.max() < 1:  # the usual case: no guards needed on the way in
            x = _fast(kind, fam, cc, uu)
            ok = None
        else:
            with np.errstate(all="ignore"):
                inner = (uu > 0) & (uu < 1) & fam.usable[cc]
                x = _fast(kind, fam, cc, np.where(inner, uu, 0.5))
            ok = inner
        # the tables give a finite q inside the support; at its edges (q rounding to 0, or 1 for beta) ask scipy
        edge = ~(x > 0) if kind == "gamma" else ~((x > 0) & (x < 1))
        if ok is not None:
            edge |= ~ok
        if edge.any():
            bad = np.flatnonzero(edge)
            args = [r[cc][bad] if code is not None else r[0] for r in rows]
            x[bad] = exact(*args, uu[bad])
        out[lo:hi] = x

    in_parallel(part, u.size)
    return out.reshape(shape)


def gamma_quantile(shape: np.ndarray | float, u: np.ndarray, code: np.ndarray | None = None) -> np.ndarray:
    """Quantiles of Gamma(shape, 1) at u, to the accuracy of scipy's gammaincinv.

    `shape` is a number, one per draw, or -- with `code` -- one per group, draw i
    taking shape[code[i]] (segments, say: far cheaper than one per draw). A draw
    depends only on its shape and its uniform, so a uniform keyed by customer gives
    that customer the same draw whatever batch it comes in (common random numbers)."""
    return _quantiles("gamma", (shape,), u, code)


def beta_quantile(a: np.ndarray | float, b: np.ndarray | float, u: np.ndarray,
                  code: np.ndarray | None = None) -> np.ndarray:
    """Quantiles of Beta(a, b) at u, to the accuracy of scipy's betaincinv (parameters as for gamma_quantile)."""
    return _quantiles("beta", (a, b), u, code)
