"""Random streams with common random numbers down to the customer.

Each random purpose ("spend", "dropout", ...) has its own stream, keyed from
the run's seed through numpy's SeedSequence. Draws that belong to a customer
are counter-based: the uniform for (purpose, customer, k) is a fixed function
of those three numbers, so a customer's k-th purchase sees the same spend
draw under every policy, however many draws other customers or other
purposes consumed (Law & Kelton's common random numbers, taken to the finest
grain). The mixing function is the SplitMix64 finaliser (Steele, Lea &
Flood 2014), applied twice; store-level draws use ordinary numpy Generators.
"""

from __future__ import annotations

import math
import os
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import special

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53


def _mix(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser, in place on a fresh uint64 array (returns it)."""
    z ^= z >> _U64(30)
    z *= _M1
    z ^= z >> _U64(27)
    z *= _M2
    z ^= z >> _U64(31)
    return z


def _mix_into(z: np.ndarray, tmp: np.ndarray) -> None:
    """_mix for a uint64 array, using `tmp` (same shape) as scratch instead of fresh temporaries."""
    for shift, mult in ((_U64(30), _M1), (_U64(27), _M2)):
        np.right_shift(z, shift, out=tmp)
        z ^= tmp
        z *= mult
    np.right_shift(z, _U64(31), out=tmp)
    z ^= tmp


_PARALLEL_MIN = 8192  # below this, handing work to a thread costs more than it saves
_PARALLEL_MAX = 1 << 16  # the largest slice a thread works on at once
_BLOCK = 1 << 15  # uniforms are mixed this many customers at a time, so the scratch stays in cache
_pool: ThreadPoolExecutor | None = None
_local = threading.local()  # marks the pool's own threads, which must not wait on the pool


def _forget_pool() -> None:
    global _pool
    _pool = None  # a forked child has none of its parent's threads: it must start its own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def in_parallel(fn: Callable[[int, int], None], n: int) -> None:
    """Call fn(lo, hi) over [0, n) in slices, one per core for large n (numpy releases the GIL in its loops).

    For element-wise work only: each slice must be independent of the others."""
    global _pool
    if n < _PARALLEL_MIN or getattr(_local, "in_pool", False):
        fn(0, n)
        return
    workers = min(_workers(), 8)
    if workers == 1:
        fn(0, n)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lab-parallel")
    err = np.geterr()  # numpy's error state belongs to a thread: carry the caller's over

    def part(lo: int, hi: int) -> None:
        _local.in_pool = True
        try:
            with np.errstate(**err):
                fn(lo, hi)
        finally:
            _local.in_pool = False

    pieces = max(workers, -(-n // _PARALLEL_MAX))  # bounded slices keep the temporaries small
    bounds = np.linspace(0, n, pieces + 1).astype(np.int64).tolist()
    for f in [_pool.submit(part, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]:
        f.result()


# --------------------------------------------------------------------------- quantile functions
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
    """Per interval of the logit grid: q and 1 - q at its start, and the quintic for y - y0; (N - 1, 8), None if unusable."""
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
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(d1)) and np.all(np.isfinite(d2)) and np.all(q > 0) and np.all(p > 0)):
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


def beta_quantile(a: np.ndarray | float, b: np.ndarray | float, u: np.ndarray, code: np.ndarray | None = None) -> np.ndarray:
    """Quantiles of Beta(a, b) at u, to the accuracy of scipy's betaincinv (parameters as for gamma_quantile)."""
    return _quantiles("beta", (a, b), u, code)


def _purpose_code(purpose: str) -> int:
    return zlib.crc32(purpose.encode("utf-8"))


class Streams:
    """All the randomness of one run, derived from a seed and the run's address.

    `address` is a tuple of non-negative integers naming the run inside an
    experiment (e.g. replication k, or design point i and replication k); it
    never includes the policy, so replication k of every policy shares its
    streams (common random numbers).
    """

    def __init__(self, seed: int, address: Sequence[int] = ()) -> None:
        self.seed = int(seed)
        self.address = tuple(int(a) for a in address)
        self._root = np.random.SeedSequence(self.seed, spawn_key=self.address)
        self._keys: dict[str, np.uint64] = {}

    def _key(self, purpose: str) -> np.uint64:
        key = self._keys.get(purpose)
        if key is None:
            seq = np.random.SeedSequence(self._root.entropy, spawn_key=self.address + (_purpose_code(purpose),))
            key = _U64(seq.generate_state(1, dtype=np.uint64)[0])
            self._keys[purpose] = key
        return key

    def generator(self, purpose: str) -> np.random.Generator:
        """A sequential numpy Generator for store-level draws of one purpose."""
        seq = np.random.SeedSequence(self._root.entropy, spawn_key=self.address + (_purpose_code(purpose), 1))
        return np.random.Generator(np.random.PCG64(seq))

    def uniform(self, purpose: str, customer: np.ndarray, counter: np.ndarray | int) -> np.ndarray:
        """Uniforms in [0, 1), one per (customer, counter) pair, fixed by the seed and the purpose."""
        cid = np.asarray(customer, dtype=np.uint64)
        k = np.asarray(counter, dtype=np.uint64)
        if cid.ndim == 1 and cid.shape == k.shape:
            return self._draw((purpose,), cid, k)[0]
        if cid.ndim and k.ndim:
            z = _mix(_mix(cid * _GOLDEN ^ self._key(purpose)) + (k + _U64(1)) * _GOLDEN)
        else:
            with np.errstate(over="ignore"):
                z = _mix(_mix(cid * _GOLDEN ^ self._key(purpose)) + (k + _U64(1)) * _GOLDEN)
        z >>= _U64(11)
        out = z.astype(np.float64)
        out *= _TO_UNIT
        return out

    def uniforms(self, purposes: Sequence[str], customer: np.ndarray, counter: np.ndarray) -> np.ndarray:
        """uniform(p, customer, counter) for several purposes at once, one row per purpose (the same bits, one pass)."""
        cid = np.asarray(customer, dtype=np.uint64)
        k = np.asarray(counter, dtype=np.uint64)
        if cid.ndim != 1 or k.shape != cid.shape:
            return np.stack([self.uniform(p, customer, counter) for p in purposes])
        return self._draw(purposes, cid, k)

    def _draw(self, purposes: Sequence[str], cid: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The uniforms of `purposes` for 1-d uint64 arrays of customers and counters, in cache-sized blocks."""
        keys = np.array([self._key(p) for p in purposes], dtype=np.uint64)[:, None]
        out = np.empty((len(purposes), cid.size))

        def part(lo: int, hi: int) -> None:
            for a in range(lo, hi, _BLOCK):
                b = min(a + _BLOCK, hi)
                z = (cid[a:b] * _GOLDEN) ^ keys  # arrays wrap around silently (the point); scalars would warn
                tmp = np.empty_like(z)
                _mix_into(z, tmp)
                step = k[a:b] + _U64(1)
                step *= _GOLDEN
                z += step
                _mix_into(z, tmp)
                z >>= _U64(11)
                o = out[:, a:b]
                np.multiply(z, _TO_UNIT, out=o, casting="unsafe")
        in_parallel(part, cid.size)
        return out

    def exponential(self, purpose: str, customer: np.ndarray, counter: np.ndarray | int) -> np.ndarray:
        """Unit-rate exponential variates, counter-based like `uniform`."""
        return -np.log1p(-self.uniform(purpose, customer, counter))
