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

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> _U64(30))) * _M1
    z = (z ^ (z >> _U64(27))) * _M2
    return z ^ (z >> _U64(31))


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
        with np.errstate(over="ignore"):
            z = _mix(self._key(purpose) ^ (cid * _GOLDEN))
            z = _mix(z + (k + _U64(1)) * _GOLDEN)
        return (z >> _U64(11)).astype(np.float64) * _TO_UNIT

    def exponential(self, purpose: str, customer: np.ndarray, counter: np.ndarray | int) -> np.ndarray:
        """Unit-rate exponential variates, counter-based like `uniform`."""
        return -np.log1p(-self.uniform(purpose, customer, counter))
