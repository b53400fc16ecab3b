"""Worker processes started from a script: the `if __name__ == "__main__":` guard they need.

The lab's process pools use the spawn start method (the same on every
platform, and safe with threads). A spawned worker starts by importing the
parent's main script, so a script that calls `lab.compare(..., jobs=2)` at its
top level, without the guard, makes every worker call it again; Python stops
them and the parent sees only `BrokenProcessPool`. `check_main_guarded` finds
that case before any process is started, by reading where the main script's
top level is executing, and says how to fix it. A notebook, an interactive
shell or `python -c` has no script for the workers to import and needs no guard.

A worker also dies with the process that started it (`die_with_parent`, run
by each pool's initializer): after a kill -9 of `lab compare` or `lab batch`
no worker stays behind holding its memory.

`worker_pool` is the pool a comparison runs on. `lab compare` opens it before
it has read its inputs, so the workers import the lab while it does, and
keeps it open after the runs to draw the report's figures on it
(lab.report.drawing): the workers are warm, and their cores idle otherwise.
"""

from __future__ import annotations

import ast
import atexit
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from importlib import import_module
from types import FrameType

__all__ = ["UnguardedMain", "check_main_guarded", "die_with_parent", "exit_quickly", "preload", "spawn_pool",
           "start_workers", "worker_pool"]


class UnguardedMain(RuntimeError):
    """Worker processes were asked for from a script's top level without the `if __name__ == "__main__":` guard."""


@lru_cache(maxsize=8)
def _guarded_lines(path: str, mtime: float) -> tuple[tuple[int, int], ...] | None:
    """The line ranges of the script's `if __name__ == "__main__":` blocks (None if it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return None
    spans = []
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [node.test.left, *node.test.comparators]
            if (any(isinstance(n, ast.Name) and n.id == "__name__" for n in names)
                    and any(isinstance(n, ast.Constant) and n.value == "__main__" for n in names)):
                spans.append((node.lineno, node.end_lineno or node.lineno))
    return tuple(spans)


def check_main_guarded(what: str) -> None:
    """Raise UnguardedMain if worker processes started now would re-run the main script's top level."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or getattr(sys, "ps1", None) is not None:
        return
    spec = getattr(main, "__spec__", None)
    if spec is not None and (spec.name == "__main__" or spec.name.endswith(".__main__")):
        return  # `python -m package`: spawn does not re-run a package's __main__ in its workers
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:  # the script's top level is not on the stack (called from a thread, a callback...)
        return
    if not os.path.isfile(path):  # a script read from stdin: a worker cannot import it at all
        raise UnguardedMain(f"{what} starts worker processes, and each of them imports the main script, but it was "
                            f"read from {path}, not a file. Save the script to a file, with its work under a guard:"
                            "\n\n    if __name__ == \"__main__\":\n        ...\n\nor run it in one process (jobs=1).")
    try:
        spans = _guarded_lines(os.path.abspath(path), os.path.getmtime(path))
    except OSError:
        return
    if spans is None:
        return
    line = frame.f_lineno
    if any(a <= line <= b for a, b in spans):
        return
    raise UnguardedMain(
        f"{what} starts worker processes, and each of them imports {path}, whose line {line} would start them again. "
        f"Put the script's work under a guard:\n\n    if __name__ == \"__main__\":\n        ...\n\n"
        "or run it in one process (jobs=1).")


def die_with_parent(parent: int, every: float = 1.0) -> None:
    """Make this worker process end when the process `parent` dies, however it dies (kill -9 included).

    On Linux the kernel does it: prctl(PR_SET_PDEATHSIG, SIGKILL). Everywhere,
    a daemon thread also watches the parent pid (a worker whose parent died is
    re-parented, so its getppid() changes) and ends the process: the portable
    fallback, and a cover for the race where the parent died before prctl."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog below does it
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(every)

    threading.Thread(target=watch, name="lab-parent-watchdog", daemon=True).start()


def exit_quickly() -> None:
    """Make this worker process skip the interpreter's teardown when it ends: once the atexit handlers
    registered after this call have run, the standard streams are flushed and the process exits at once.

    A spawned worker ends through sys.exit, and with numpy, pandas and matplotlib loaded the teardown (every
    module's objects freed one by one) takes 0.5 to 0.9 s, which `pool.shutdown()` waits for. A worker has
    nothing left to lose by then: its results went back through the pool's pipe as each task finished, and
    it writes no files of its own."""

    def leave() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(0)

    atexit.register(leave)


def _start_worker(parent: int, ignore_interrupt: bool = False) -> None:
    """Each pool worker's initializer: it dies with `parent` and exits without the teardown, and with
    `ignore_interrupt` leaves Ctrl-C to its parent."""
    if ignore_interrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
    exit_quickly()


def spawn_pool(jobs: int, ignore_interrupt: bool = False) -> ProcessPoolExecutor:
    """`jobs` spawned worker processes, each ending with this one (`die_with_parent`) and quickly
    (`exit_quickly`). They start as work is submitted: one per task while none is idle, up to `jobs`.
    With `ignore_interrupt` a Ctrl-C at the terminal reaches the parent only, which decides what becomes of
    the tasks under way (`lab batch` waits for them to end and keeps the runs it had written)."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(), ignore_interrupt))


@contextmanager
def worker_pool(jobs: int, what: str) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of `jobs` workers for the block (None for one job: the work runs in this process), shut down at
    its end. On an error the tasks not yet started are dropped and the error goes on at once (the tasks under
    way finish in the background; at the latest the workers die with this process). `what` names the caller
    in the UnguardedMain error (check_main_guarded)."""
    if jobs <= 1:
        yield None
        return
    check_main_guarded(what)
    pool = spawn_pool(jobs)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def preload(*modules: str) -> None:
    """Import `modules` (a worker's first task, sent by `start_workers`)."""
    for name in modules:
        import_module(name)


def start_workers(pool: ProcessPoolExecutor, jobs: int, *modules: str) -> list[Future[None]]:
    """Start `pool`'s `jobs` workers now (a pool starts them as work is submitted), each importing `modules`
    first, so that the work sent later finds them ready: `lab compare` starts its workers while it is still
    importing and checking its inputs, instead of after (one core would idle meanwhile)."""
    return [pool.submit(preload, *modules) for _ in range(jobs)]
