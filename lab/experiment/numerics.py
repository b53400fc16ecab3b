"""This machine's arithmetic: whether two machines give the same run the same bits.

A run's numbers pass through floating-point functions whose last bits IEEE 754 does not fix: numpy's exp,
log, log1p, power... (numpy picks, when it is imported, an implementation for the CPU: its own AVX-512 code
on a machine that has it, the C library's on one that has not), Python's math module and float `**` (the C
library), scipy.special, Python's `sum` of floats (compensated from Python 3.12), and numpy's random
generators (whose streams numpy may change between versions). The same inputs, seed and code give
bit-identical results on one machine, and on machines that compute these alike; elsewhere values may
differ in their last digits (docs/BATCHES.md, "Determinism", has the sizes measured).

`numerics()` is this process's fingerprint: a hash of those functions' values on fixed inputs (the probe),
so that two machines are compared on what they compute rather than on what they are, beside the package
versions and the CPU code numpy chose, which say why two probes differ. A batch's manifest holds it, and a
resume or a Dask worker that computes otherwise is refused (lab.batch): one dataset, one arithmetic.
"""

from __future__ import annotations

import hashlib
import math
import platform
from functools import cache
from typing import Any

import numpy as np

__all__ = ["SAME_BITS", "differences", "numerics"]

#: The fingerprint's fields that two processes must share to compute the same bits (the others explain why not).
SAME_BITS = ("probe", "numpy", "scipy")

_N = 1031  # values per function: SIMD blocks and a remainder, as in any real array
_NUMPY = ("exp", "log", "log1p", "expm1", "power", "tanh", "arctanh", "logaddexp")


def _inputs() -> np.ndarray:
    """Fixed values spread over [0, 1) (an additive recurrence, no generator: the probe must not depend on one)."""
    return (np.arange(1, _N + 1, dtype=np.float64) * 0.6180339887498949) % 1.0


def _probe_values() -> list[np.ndarray]:
    """What the probed functions give on fixed inputs: the engine's, the fitter's and the statistics' kinds."""
    from scipy import special

    u = _inputs()
    x = 60.0 * u - 30.0
    pos = 1e-6 + 1e4 * u * u
    shape = 0.05 + 20.0 * u[::-1]
    out = [np.exp(x), np.log(pos), np.log1p(4.0 * u - 0.999), np.expm1(x / 10.0), np.power(pos, x / 10.0),
           pos ** -0.75, np.tanh(x / 5.0), np.arctanh(2.0 * u - 0.9995), np.logaddexp(x, x[::-1])]
    out += [special.gammaln(pos), special.betaln(shape, pos), special.gammaincinv(shape, u * 0.998 + 0.001),
            special.betaincinv(shape, shape[::-1], u * 0.998 + 0.001), special.gammainc(shape, pos),
            special.betainc(shape, shape[::-1], u), special.hyp2f1(shape, 0.5, 2.5, u * 0.99),
            special.expit(x), special.stdtrit(3.0 + shape, u * 0.998 + 0.001), special.digamma(pos)]
    py = [math.exp(v) for v in x[:64].tolist()] + [math.expm1(v) for v in (x[:64] / 10).tolist()]
    py += [math.log(v) for v in pos[:64].tolist()] + [a ** b for a, b in zip(pos[:64].tolist(), (x[:64] / 10).tolist())]
    py.append(sum([0.1] * 10 + [1e16, 1.0, -1e16]))  # Python's own float sum: plain from left to right until 3.12
    out.append(np.array(py))
    rng = np.random.default_rng(np.random.SeedSequence(20261205, spawn_key=(1, 2)))
    out += [rng.random(_N), rng.poisson(3.7, _N).astype(np.float64), rng.gamma(0.8, 2.0, _N),
            rng.beta(0.7, 3.0, _N), rng.integers(0, 1 << 40, _N).astype(np.float64),
            rng.standard_exponential(_N), rng.exponential(2.5, _N)]
    return out


def _dispatch() -> dict[str, str]:
    """The CPU code numpy uses on float64 for each probed function it compiles for several CPUs (none listed
    where numpy cannot say: before numpy 2.0)."""
    try:
        from numpy.lib.introspect import opt_func_info
    except ImportError:  # numpy < 2.0
        return {}
    info = opt_func_info(func_name="^(" + "|".join(_NUMPY) + ")$", signature="float64")
    return {name: next(iter(info[name].values()))["current"] for name in _NUMPY if name in info}


@cache
def numerics() -> dict[str, Any]:
    """This process's fingerprint: the probe's sha256 (first 16 hex digits), versions and numpy's CPU code."""
    import scipy

    h = hashlib.sha256()
    for values in _probe_values():
        h.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    libc, libc_version = platform.libc_ver()
    return {"probe": h.hexdigest()[:16], "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "libc": f"{libc} {libc_version}".strip() or "unknown", "numpy_cpu_code": _dispatch()}


def differences(a: dict[str, Any], b: dict[str, Any], first: str = "then", second: str = "now") -> list[str]:
    """The fields in which two fingerprints differ, as 'field: A then, B now' (the words `first` and
    `second`; numpy's CPU code function by function); empty when they match."""
    out = []
    for key in ("probe", "numpy", "scipy", "python", "machine", "libc"):
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)} {first}, {b.get(key)} {second}")
    ca, cb = a.get("numpy_cpu_code") or {}, b.get("numpy_cpu_code") or {}
    moved = [f"{n} {ca.get(n)} / {cb.get(n)}" for n in sorted(set(ca) | set(cb)) if ca.get(n) != cb.get(n)]
    if moved:
        out.append(f"numpy's CPU code for float64 ({first} / {second}): " + ", ".join(moved))
    return out
