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

import zlib
from collections.abc import Sequence

import numpy as np

from lab.randomness.threads import in_parallel

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53
_BLOCK = 1 << 15  # uniforms are mixed this many customers at a time, so the scratch stays in cache


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


def keyed_uniforms(keys: np.ndarray, cid: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Uniforms for uint64 arrays of per-draw keys, customer ids and counters: the function `Streams.uniform`
    computes, mix(mix(id x G ^ key) + (k + 1) x G), elementwise (arrays wrap around silently)."""
    z = _mix(_mix(cid * _GOLDEN ^ keys) + (k + _U64(1)) * _GOLDEN)
    z >>= _U64(11)
    out = z.astype(np.float64)
    out *= _TO_UNIT
    return out


class WorldStreams(Streams):
    """The counter-based streams of a stack of worlds (lab.engine.stack), addressed by row.

    Each row belongs to world `world[row]` and is customer `row - base[world]` there; its draws are
    the draws that customer gets from that world's own Streams, bit for bit, since every draw is a
    function of (key of world and purpose, customer id, counter) alone. The owner keeps `world` and
    `base` up to date as its rows move. Sequential generators are per world: ask the worlds' Streams."""

    def __init__(self, worlds: Sequence[Streams]) -> None:
        self.worlds = tuple(worlds)
        self.world = np.zeros(0, dtype=np.int64)  # world of each row (set by the owner)
        self.base = np.zeros(len(worlds), dtype=np.int64)  # first row of each world (set by the owner)
        self._world_keys: dict[str, np.ndarray] = {}

    def _keys_of(self, purpose: str) -> np.ndarray:
        keys = self._world_keys.get(purpose)
        if keys is None:
            keys = np.array([s._key(purpose) for s in self.worlds], dtype=np.uint64)
            self._world_keys[purpose] = keys
        return keys

    def generator(self, purpose: str) -> np.random.Generator:
        raise TypeError("a stack's sequential draws are per world: use that world's Streams.generator")

    def uniform(self, purpose: str, customer: np.ndarray, counter: np.ndarray | int) -> np.ndarray:
        rows = np.asarray(customer, dtype=np.int64)
        w = self.world[rows]
        cid = (rows - self.base[w]).astype(np.uint64)
        k = np.broadcast_to(np.asarray(counter, dtype=np.uint64), cid.shape)
        return keyed_uniforms(self._keys_of(purpose)[w], cid, k)

    def uniforms(self, purposes: Sequence[str], customer: np.ndarray, counter: np.ndarray) -> np.ndarray:
        rows = np.asarray(customer, dtype=np.int64)
        w = self.world[rows]
        cid = (rows - self.base[w]).astype(np.uint64)
        if not purposes:
            return np.empty((0, cid.size))
        k = np.broadcast_to(np.asarray(counter, dtype=np.uint64), cid.shape)
        keys = np.stack([self._keys_of(p) for p in purposes])[:, w]  # (purposes, draws): one pass for them all
        return keyed_uniforms(keys, cid, k)
