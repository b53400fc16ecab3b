"""The lab's thread pool: element-wise numpy work split over the cores.

numpy releases the GIL inside its loops, so large element-wise passes (drawing
uniforms, satisfaction over a whole population) gain from running one slice per
core. Slices must be independent of each other, so the result is the same bits
whatever the number of threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_PARALLEL_MIN = 8192  # below this, handing work to a thread costs more than it saves
_PARALLEL_MAX = 1 << 16  # the largest slice a thread works on at once
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
