"""Executors: where a batch's tasks run (local processes, or a Dask cluster), and surviving the death of a worker.

Both runners take the tasks still to do, grouped into stacks (tasks of design
points of one scenario structure simulated at once: `lab.batch.tasks.run_stack`),
and yield each task's result as its stack completes, in whatever order; the
driver writes them. A worker holds the
batch without its design table (each stack carries its own points' values).
`LocalRunner` restarts its process pool when a worker dies (out of memory,
killed) and reruns the tasks that were in flight; `DaskRunner` leaves retries
to the cluster and reports the tasks it could not run.

Each runner also says how its workers compute (`numerics`, the fingerprint of
lab.experiment.numerics), which the driver stores in the manifest and a resume
compares: local workers are this machine's processes, so theirs is the driver's;
a Dask cluster's workers are asked, and refused if they differ among
themselves. A worker that joins later and computes otherwise has its results
refused too, as tasks left undone, so one dataset holds one machine kind's bits.

A local worker learns the batch from its tasks (each carries the pickled batch,
a few kilobytes, unpickled once per worker), so its pool may be started before
the batch is read: `lab batch` starts it first thing, and the workers import the
engine while the driver imports the rest and checks its inputs.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from functools import lru_cache
from typing import Any

from lab.batch.spec import Batch, BatchError
from lab.batch.tasks import PointResult, PointTask, Stack, run_stack
from lab.experiment.numerics import SAME_BITS, differences, numerics
from lab.experiment.processes import check_main_guarded, spawn_pool

__all__ = ["DaskRunner", "LocalRunner", "WorkersDied"]


@lru_cache(maxsize=2)
def _batch_of(blob: bytes) -> Batch:
    batch: Batch = pickle.loads(blob)
    return batch


def _local_task(blob: bytes, stack: Stack, values: dict[int, dict[str, Any]]) -> list[PointResult]:
    return run_stack(_batch_of(blob), stack, values)


def _dask_task(batch: Batch, stack: Stack, values: dict[int, dict[str, Any]]
               ) -> tuple[str, dict[str, Any], list[PointResult]]:
    """The stack's results, with the address and the fingerprint of the worker that computed them."""
    from dask.distributed import get_worker

    return get_worker().address, numerics(), run_stack(batch, stack, values)


def _bits(fingerprint: dict[str, Any]) -> tuple[Any, ...]:
    """What of a fingerprint decides the bits (lab.experiment.numerics.SAME_BITS)."""
    return tuple(fingerprint.get(k) for k in SAME_BITS)


def _values(batch: Batch, stack: Stack) -> dict[int, dict[str, Any]]:
    """The factor values of the design points of a stack (a worker's batch holds no design table)."""
    return {point: batch.points[point] for point, _ in stack}


def _tasks(stacks: Sequence[Stack]) -> list[PointTask]:
    return sorted((point, r) for stack in stacks for point, reps in stack for r in reps)


def _worker_copy(batch: Batch) -> Batch:
    """The batch without its design table: tasks carry their own point's values."""
    return replace(batch, points=())


class WorkersDied(Exception):
    """Worker processes kept dying; the runs finished so far are saved."""


class LocalRunner:
    """Runs tasks on local processes (spawned), restarting the pool when a worker dies; with one job and no
    pool, in this process (as `compare` does), so a script needs no `__main__` guard for it.

    `pool`: a pool to run on first, `spawn_pool(jobs, ignore_interrupt=True)` (lab.experiment.processes) started
    early, as `lab batch` does (with `--jobs 1` too: a worker that runs out of memory then dies alone); the
    runner shuts it down when its runs end."""

    def __init__(self, batch: Batch, jobs: int, max_restarts: int = 3, tick: float = 1.0,
                 pool: ProcessPoolExecutor | None = None) -> None:
        self.batch = batch
        self.jobs = jobs
        self.max_restarts = max_restarts
        self.tick = tick
        self.restarts = 0
        self.unfinished: list[PointTask] = []
        self._pool: ProcessPoolExecutor | None = pool
        if pool is None and jobs > 1:  # refused before the store is touched
            check_main_guarded(f"run_batch(..., jobs={jobs})")
        self._blob = pickle.dumps(_worker_copy(batch))

    def numerics(self) -> dict[str, Any]:
        """How the workers compute: this process's fingerprint (they are spawned from it, on this machine)."""
        return numerics()

    def _new_pool(self) -> ProcessPoolExecutor:
        if self._pool is not None:  # the pool given, the first time
            return self._pool
        check_main_guarded(f"run_batch(..., jobs={self.jobs})")
        return spawn_pool(self.jobs, ignore_interrupt=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def results(self, stacks: Sequence[Stack]) -> Iterator[PointResult | None]:
        """Yield each task's result as its stack completes (None every `tick` seconds with nothing new)."""
        if self._pool is None and self.jobs <= 1:
            for stack in stacks:
                yield from run_stack(self.batch, stack, _values(self.batch, stack))
            return
        queue = deque(stacks)
        inflight: dict[Any, Stack] = {}
        window = max(2 * self.jobs, 2)
        self._pool = self._new_pool()
        try:
            while queue or inflight:
                broken = False
                while queue and len(inflight) < window and not broken:
                    t = queue[0]
                    try:
                        fut = self._pool.submit(_local_task, self._blob, t, _values(self.batch, t))
                    except BrokenProcessPool:
                        broken = True
                        break
                    queue.popleft()
                    inflight[fut] = t
                if not broken:
                    done, _ = wait(list(inflight), timeout=self.tick, return_when=FIRST_COMPLETED)
                    if not done:
                        yield None
                        continue
                    for fut in done:
                        t = inflight.pop(fut)
                        try:
                            res = fut.result()
                        except BrokenProcessPool:
                            broken = True
                            queue.appendleft(t)
                            continue
                        yield from res
                if broken:
                    for fut, t in list(inflight.items()):
                        if fut.done() and fut.exception() is None:
                            yield from fut.result()
                        else:
                            queue.appendleft(t)
                    inflight.clear()
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = None
                    self.restarts += 1
                    if self.restarts > self.max_restarts:
                        self.unfinished = _tasks(queue)
                        raise WorkersDied(f"worker processes died {self.restarts} times (out of memory? try fewer "
                                          f"--jobs, a smaller --memory or fewer --customers); "
                                          f"{len(self.unfinished)} tasks were not run")
                    print(f"lab batch: a worker process died; restarting the pool "
                          f"({self.restarts}/{self.max_restarts}) and rerunning its tasks", file=sys.stderr)
                    self._pool = self._new_pool()
        finally:
            self.close()


class DaskRunner:
    """Runs tasks on a Dask distributed cluster: an existing one (address or client) or a LocalCluster it starts."""

    def __init__(self, batch: Batch, jobs: int | None, address: str | None = None, client: Any = None,
                 retries: int = 3, tick: float = 1.0) -> None:
        try:
            from dask import distributed  # noqa: F401
        except ImportError:
            raise BatchError("the dask executor needs the optional 'dask' extra: pip install -e '.[dask]' "
                             "(or use --executor local)") from None
        self.batch = batch
        self.jobs = jobs
        self.address = address
        self.client = client
        self.retries = retries
        self.tick = tick
        self.unfinished: list[PointTask] = []
        self.errors: list[str] = []
        self._own: list[Any] = []
        self._fingerprint: dict[str, Any] | None = None  # how every result's worker must compute (numerics)

    def numerics(self, wait_seconds: float = 60.0) -> dict[str, Any]:
        """How the cluster's workers compute (lab.experiment.numerics), asked of each worker connected now
        (after waiting up to `wait_seconds` for a first one). BatchError if none joins, or if they differ in
        what decides the bits: the dataset would then depend on which worker ran which run."""
        client = self._connect()
        try:
            client.wait_for_workers(1, timeout=wait_seconds)
        except TimeoutError:
            raise BatchError(f"no Dask worker joined the scheduler at {client.scheduler.address} within "
                             f"{wait_seconds:g} s; start workers with 'dask worker {client.scheduler.address}' "
                             "and rerun (nothing was written)") from None
        prints: dict[str, dict[str, Any]] = client.run(numerics)
        kinds: dict[tuple[Any, ...], list[str]] = {}
        for worker, fp in sorted(prints.items()):
            kinds.setdefault(_bits(fp), []).append(worker)
        if len(kinds) > 1:
            one, other = (ws[0] for ws in list(kinds.values())[:2])
            raise BatchError(
                f"the Dask workers compute floating-point functions differently ({len(kinds)} kinds), so the "
                "dataset would depend on which worker ran which run: "
                + "; ".join(f"{', '.join(ws)} (probe {bits[0]})" for bits, ws in kinds.items()) + ". "
                + "; ".join(differences(prints[one], prints[other], f"on {one}", f"on {other}"))
                + ". Run the batch on workers of one kind (the same numpy and scipy on the same kind of CPU); "
                "nothing was written")
        self._fingerprint = prints[min(prints)]
        return self._fingerprint

    def _connect(self) -> Any:
        from dask.distributed import Client, LocalCluster

        if self.client is not None:
            return self.client
        if self.address is not None:
            try:
                client = Client(self.address, timeout="20s")
            except (OSError, TimeoutError) as e:
                raise BatchError(f"cannot reach the Dask scheduler at {self.address}: {e}; start one with "
                                 "'dask scheduler' and workers with 'dask worker <address>'") from None
        else:
            import logging

            cluster = LocalCluster(n_workers=self.jobs or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.WARNING)
            self._own.append(cluster)
            client = Client(cluster)
        self._own.insert(0, client)
        self.client = client
        return client

    def close(self) -> None:
        if self._own:
            self.client = None  # it was ours
        for thing in self._own:
            thing.close()
        self._own = []

    def results(self, stacks: Sequence[Stack]) -> Iterator[PointResult | None]:
        """Yield each task's result as its stack completes (None every `tick` seconds with nothing new)."""
        from dask.distributed import wait as dwait

        client = self._connect()
        try:
            ctx = client.scatter(_worker_copy(self.batch), broadcast=True, hash=False)
            queue = deque(stacks)
            inflight: dict[Any, Stack] = {}
            window = max(2 * sum(client.nthreads().values()), 4)
            while queue or inflight:
                while queue and len(inflight) < window:
                    t = queue.popleft()
                    fut = client.submit(_dask_task, ctx, t, _values(self.batch, t), retries=self.retries,
                                        pure=False)
                    inflight[fut] = t
                try:
                    done, _ = dwait(list(inflight), timeout=self.tick, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    yield None
                    continue
                for fut in done:
                    t = inflight.pop(fut)
                    if fut.status == "finished":
                        worker, fingerprint, res = fut.result()
                        if self._fingerprint is None or _bits(fingerprint) == _bits(self._fingerprint):
                            yield from res
                        else:
                            self.unfinished += _tasks([t])
                            differ = differences(self._fingerprint, fingerprint, "on the batch's workers",
                                                 f"on {worker}")
                            self.errors.append(
                                f"the worker {worker} computes floating-point functions otherwise than the batch's "
                                f"workers ({'; '.join(differ)}), so its results were not recorded; rerun with "
                                "--resume on workers of the batch's kind")
                    else:
                        self.unfinished += _tasks([t])
                        try:
                            fut.result()
                        except Exception as e:  # KilledWorker and the like: not a result, so not recorded
                            self.errors.append(f"{type(e).__name__}: {e}")
                        else:
                            self.errors.append(f"task {t} ended as {fut.status}")
                    fut.release()
        finally:
            self.close()
