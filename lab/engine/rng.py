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

import os
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

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


_PARALLEL_MIN = 2048  # below this, handing work to a thread costs more than it saves
_pool: ThreadPoolExecutor | None = None


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _elementwise(fn: Callable[..., np.ndarray], *args: np.ndarray | float) -> np.ndarray:
    """fn(*args) for an element-wise numpy ufunc, split over the cores for large arrays.

    Inverting a distribution function costs about a microsecond per draw, and
    the ufuncs release the GIL, so threads give the same bits sooner."""
    global _pool
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args))
    n = arrays[0].size if arrays else 0
    workers = _workers()
    if n < _PARALLEL_MIN or workers == 1 or arrays[0].ndim != 1:
        return fn(*arrays)
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=min(workers, 8), thread_name_prefix="lab-inverse")
    out = np.empty(n)
    bounds = np.linspace(0, n, min(workers, 8) + 1).astype(np.int64)
    err = np.geterr()  # numpy's error state is per thread: carry the caller's over

    def part(lo: int, hi: int) -> None:
        with np.errstate(**err):
            fn(*(a[lo:hi] for a in arrays), out=out[lo:hi])

    for f in [_pool.submit(part, int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]:
        f.result()
    return out


def gamma_quantile(shape: np.ndarray | float, u: np.ndarray) -> np.ndarray:
    """Quantiles of Gamma(shape, 1) at u: exact inversion (scipy's gammaincinv), so a uniform keyed by customer gives that customer's draw."""
    return _elementwise(special.gammaincinv, shape, u)


def beta_quantile(a: np.ndarray | float, b: np.ndarray | float, u: np.ndarray) -> np.ndarray:
    """Quantiles of Beta(a, b) at u: exact inversion (scipy's betaincinv)."""
    return _elementwise(special.betaincinv, a, b, u)


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
        if cid.ndim and cid.shape == k.shape:  # arrays wrap around silently (the point); scalars would warn
            z = cid * _GOLDEN
            z ^= self._key(purpose)
            tmp = np.empty_like(z)
            _mix_into(z, tmp)
            np.add(k, _U64(1), out=tmp)
            tmp *= _GOLDEN
            z += tmp
            _mix_into(z, tmp)
        elif cid.ndim and k.ndim:
            z = _mix(_mix(cid * _GOLDEN ^ self._key(purpose)) + (k + _U64(1)) * _GOLDEN)
        else:
            with np.errstate(over="ignore"):
                z = _mix(_mix(cid * _GOLDEN ^ self._key(purpose)) + (k + _U64(1)) * _GOLDEN)
        z >>= _U64(11)
        out = z.astype(np.float64)
        out *= _TO_UNIT
        return out

    def exponential(self, purpose: str, customer: np.ndarray, counter: np.ndarray | int) -> np.ndarray:
        """Unit-rate exponential variates, counter-based like `uniform`."""
        return -np.log1p(-self.uniform(purpose, customer, counter))
