"""Could a numba kernel give the engine's pure-numpy bits? A probe, for the choice benchmarks/README.md records.

    pip install -e '.[test]'   # numba is a test dependency, not one of the lab's: the lab never imports it
    python benchmarks/numba_bits.py
    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" python benchmarks/numba_bits.py

The issue allows a compiled kernel for a few hot paths if it keeps a pure-numpy path giving the same bits. Two
questions decide whether that can pay:

1. The transcendental functions the purchase path computes (exp in satisfaction and the quantile tables, log1p
   in the purchase gaps, powers in dropout and discounting): does numba's scalar code return numpy's bits? On a
   machine where numpy uses its own SIMD code for float64 (AVX-512), numba's libm and numpy's SIMD can round
   differently; the script counts how often over a million arguments in the engine's ranges.
2. The one hot kernel that is exact integer arithmetic -- the counter-based uniforms (lab.randomness.streams,
   SplitMix64 twice, then a multiply by 2**-53) -- gives the same bits in any language: how much faster is it
   compiled, at the batch sizes a micro-step of the thinning loop hands it, and what share of a run's time is it
   (the apparel store at 1M customers x 730 days under points, and one stack of the first wave's comparison:
   the uniform draws are timed by wrapping lab.randomness.streams' two drawing functions)?

It prints a table for each (the shares take about half a minute). No result of the lab depends on this script.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lab.experiment.numerics import numerics  # noqa: E402
from lab.randomness import Streams  # noqa: E402

try:
    import numba
except ImportError:  # the probe is about numba: without it there is nothing to measure
    sys.exit("benchmarks/numba_bits.py needs numba: pip install -e '.[test]' (a test dependency, not one of the lab's)")

GOLDEN, M1, M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


EXP, LOG1P, POWER = 0, 1, 2  # the functions `_scalar` computes


@numba.njit(cache=True)
def _scalar(which: int, x: np.ndarray, y: float) -> np.ndarray:
    """exp(x), log1p(x) or x ** y, element by element in compiled scalar code (the C library's functions)."""
    out = np.empty_like(x)
    for i in range(x.size):
        if which == EXP:
            out[i] = np.exp(x[i])
        elif which == LOG1P:
            out[i] = np.log1p(x[i])
        else:
            out[i] = x[i] ** y
    return out


@numba.njit(cache=True)
def _splitmix(z: np.uint64) -> np.uint64:
    z ^= z >> np.uint64(30)
    z *= np.uint64(M1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(M2)
    z ^= z >> np.uint64(31)
    return z


@numba.njit(cache=True)
def _uniforms(keys: np.ndarray, cid: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The uniforms Streams.uniforms draws: mix(mix(id x G ^ key) + (k + 1) x G) >> 11, times 2**-53."""
    out = np.empty((keys.size, cid.size))
    g = np.uint64(GOLDEN)
    for p in range(keys.size):
        for i in range(cid.size):
            z = _splitmix((cid[i] * g) ^ keys[p])
            z = _splitmix(z + (k[i] + np.uint64(1)) * g)
            out[p, i] = np.float64(z >> np.uint64(11)) * 2.0**-53
    return out


def _median_seconds(fn, repeats: int = 200) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _start_seconds(module: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - t


def _draw_share() -> None:
    """The share of two runs' wall time spent drawing uniforms (lab.randomness.streams' two drawing functions)."""
    from lab.engine.options import RunOptions
    from lab.engine.simulate import Simulation
    from lab.engine.stack import StackedSimulation
    from lab.randomness import streams as drawing
    from lab.scenario.loader import load_scenario

    spent = [0.0]

    def timed(fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t
        return wrapper

    drawing.Streams._draw = timed(drawing.Streams._draw)
    drawing.keyed_uniforms = timed(drawing.keyed_uniforms)  # what WorldStreams' methods call, by this name
    print("\n| run | wall s | drawing uniforms, s | share |")
    print("|---|---:|---:|---:|")
    apparel = load_scenario(ROOT / "scenarios/apparel.yaml", ["points"])
    wave = load_scenario(ROOT / "benchmarks/specs/classroom_first_wave.yaml", ["points"])
    runs = [("apparel, points, 1,000,000 customers x 730 days",
             lambda: Simulation(apparel.scenario, apparel.policies["points"],
                                RunOptions(seed=1, customers=1_000_000, days=730)).run()),
            ("first wave's classroom, points, a stack of 20 replications",
             lambda: StackedSimulation(wave.scenario, wave.policies["points"],
                                       [RunOptions(seed=wave.scenario.seed, address=(k,)) for k in range(20)]).runs())]
    for name, run in runs:
        spent[0] = 0.0
        t = time.perf_counter()
        run()
        wall = time.perf_counter() - t
        print(f"| {name} | {wall:.2f} | {spent[0]:.2f} | {spent[0] / wall:.1%} |")


def main() -> None:
    info = numerics()
    code = ", ".join(f"{k} {v}" for k, v in sorted((info.get("numpy_cpu_code") or {}).items()))
    print(f"numpy {np.__version__}, numba {numba.__version__}; numpy's CPU code for float64: {code or 'none'}; "
          f"NPY_DISABLE_CPU_FEATURES={os.environ.get('NPY_DISABLE_CPU_FEATURES', '')!r}")
    rng = np.random.default_rng(1)
    n = 1_000_000
    u = rng.random(n)
    cases = [("exp(x), x in [-20, 0] (satisfaction's decay)", np.exp, lambda x: _scalar(EXP, x, 0.0),
              rng.uniform(-20.0, 0.0, n)),
             ("log1p(-u), u in [0, 1) (a purchase gap)", np.log1p, lambda x: _scalar(LOG1P, x, 0.0), -u),
             ("x ** 1.7, x in [0.2, 3] (a power, as in dropout)", lambda x: x ** 1.7, lambda x: _scalar(POWER, x, 1.7),
              rng.uniform(0.2, 3.0, n))]
    print("\n| function | values where numba's bits differ from numpy's | largest relative difference |")
    print("|---|---:|---:|")
    for name, np_fn, nb_fn, x in cases:
        a, b = np_fn(x), nb_fn(x)
        differ = a != b
        rel = float(np.max(np.abs(a[differ] - b[differ]) / np.abs(a[differ]))) if differ.any() else 0.0
        print(f"| {name} | {int(differ.sum()):,} of {n:,} ({differ.mean():.2%}) | {rel:.1e} |")

    streams = Streams(1, (0,))
    purposes = ("spend", "category", "referral")
    keys = np.array([streams._key(p) for p in purposes], dtype=np.uint64)
    print("\n| draws (3 purposes) | numpy, us | numba, us | numpy / numba | same bits |")
    print("|---:|---:|---:|---:|---|")
    for size in (100, 1_000, 10_000, 100_000):
        ids = np.sort(rng.choice(10 * size, size, replace=False)).astype(np.int64)
        counter = rng.integers(0, 50, size).astype(np.int64)
        ref = streams.uniforms(purposes, ids, counter)
        got = _uniforms(keys, ids.astype(np.uint64), counter.astype(np.uint64))
        t_np = _median_seconds(lambda ids=ids, counter=counter: streams.uniforms(purposes, ids, counter))
        t_nb = _median_seconds(lambda ids=ids, counter=counter: _uniforms(keys, ids.astype(np.uint64),
                                                                          counter.astype(np.uint64)))
        print(f"| {size:,} | {t_np * 1e6:.1f} | {t_nb * 1e6:.1f} | {t_np / t_nb:.1f}x | "
              f"{'yes' if np.array_equal(ref, got) else 'NO'} |")
    starts = {what: statistics.median(_start_seconds(what) for _ in range(5)) for what in ("numpy", "numba")}
    print(f"\nimporting numba in a fresh process: {starts['numba']:.2f} s, against numpy's {starts['numpy']:.2f} s "
          "(median of 5; a worker pays it once)")
    _draw_share()


if __name__ == "__main__":
    main()
