"""The driver: run (or resume) a batch into its dataset folder.

`run_batch` checks the output folder (refusing a non-empty one without
`resume`, or one holding a different batch), records the session in the
manifest, works out which tasks are left, hands them to an executor and
writes their results in chunks (`lab.batch.dataset`). Resuming after an
interruption at any moment ends with exactly the uninterrupted dataset; the
guarantees are described in docs/BATCHES.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import pyarrow.parquet as pq

from lab.batch.dataset import MANIFEST, DatasetWriter, chunk_files, recover, saved_runs
from lab.batch.executors import DaskRunner, LocalRunner, WorkersDied
from lab.batch.identity import check_same, identity, other_batch, session
from lab.batch.load import load_spec
from lab.batch.lock import LOCK, StoreLock
from lab.batch.progress import BatchProgress
from lab.batch.spec import Batch, BatchError
from lab.batch.tasks import PointTask, stacks_of
from lab.errors import suggest
from lab.experiment.run import write_json

__all__ = ["BatchRun", "run_batch"]


@dataclass(frozen=True)
class BatchRun:
    """What a call of run_batch did."""

    out: Path
    total: int
    skipped: int
    completed: int
    failed: int
    unfinished: int
    seconds: float
    messages: tuple[str, ...] = field(default=())


def run_batch(spec: str | Path | Batch, out: str | Path, *, executor: Literal["local", "dask"] = "local",
              address: str | None = None, jobs: int | None = None, resume: bool = False,
              customers: int | None = None, days: int | None = None, scale_store: bool = False, flush_runs: int = 500,
              flush_seconds: float = 60.0, max_restarts: int = 3, client: Any = None,
              command: Sequence[str] | None = None, stream: TextIO | None = None,
              progress_interval: float = 10.0, allow_code_change: bool = False,
              memory: int | None = None, pool: ProcessPoolExecutor | None = None) -> BatchRun:
    """Run (or resume) a batch into the store `out`; see the module docstring for the guarantees.

    Raises LabError for a bad spec and BatchError for a refused store (not
    empty without `resume`, or written by a different batch). `client` is an
    existing dask.distributed Client (used with executor="dask"). `allow_code_change` lets a resume go on
    although the lab's sources changed since the batch started (the sessions record both hashes). `memory` is
    the bytes the stacks running at once may hold (default: a share of the machine's memory); it changes how
    fast the batch runs, never its results. `customers`, `days` and `scale_store` are `load_spec`'s, for a spec
    given by its path. `pool` is a pool of `jobs` local workers already started
    for the local executor to run on (`lab.batch.executors.LocalRunner`, which shuts it down when its runs end);
    the caller shuts it down too, for the cases where none start (a refused store, nothing left to run)."""
    stream = stream if stream is not None else sys.stderr
    batch = spec if isinstance(spec, Batch) else load_spec(spec, customers=customers, days=days,
                                                                           scale_store=scale_store)
    out = Path(out)
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    mpath = out / MANIFEST
    command = list(command) if command is not None else [sys.executable, *sys.argv]
    runner: LocalRunner | DaskRunner
    if executor == "dask":
        if pool is not None:
            raise ValueError("pool= is a pool of local workers, for executor='local'; drop it for the dask executor")
        runner = DaskRunner(batch, jobs if jobs else None, address=address, client=client, retries=max_restarts)
    elif executor == "local":
        if address is not None:
            raise BatchError("--address is for --executor dask; add --executor dask, or drop --address")
        runner = LocalRunner(batch, jobs, max_restarts=max_restarts, pool=pool)
    else:
        raise BatchError(f"unknown executor '{executor}'{suggest(executor, ['local', 'dask'])}")
    if out.exists() and not out.is_dir():
        raise BatchError(f"--out {out} is a file, not a folder; choose another --out")
    lock = StoreLock(out, command)
    if lock.held_elsewhere():
        raise lock.refusal()
    nonempty = out.is_dir() and any(p.name != LOCK for p in out.iterdir())
    if nonempty and not resume:
        if not mpath.is_file():
            raise BatchError(f"{out} is not empty; choose another --out")
        other = other_batch(_stored(mpath), batch.spec.name, batch.spec_path, out)
        if other is not None:
            raise BatchError(other)
        done, total = saved_runs(out), _total_runs(mpath)
        if total is not None and done >= total:
            raise BatchError(f"{out} already holds a complete batch ({total:,} runs): read it with `lab batch-report "
                             f"{out}`, or choose another --out (--resume would add nothing)")
        of = f" of {total:,}" if total is not None else ""
        raise BatchError(f"{out} already holds a batch ({done:,}{of} runs done); add --resume to continue it, or "
                         "choose another --out")
    if nonempty and not mpath.is_file():
        raise BatchError(f"{out} is not empty and holds no {MANIFEST}, so it is not a batch to resume; "
                         "choose another --out")
    existed = mpath.is_file()
    with lock:
        if mpath.is_file() and not existed and not resume:  # another driver started the store between check and lock
            raise BatchError(f"{out} was started by another driver a moment ago; add --resume to continue it, "
                             "or choose another --out")
        try:
            numerics = runner.numerics()  # (a Dask cluster is reached here: one out of reach writes nothing)
            ident = identity(batch, numerics)
            if mpath.is_file():
                manifest = json.loads(mpath.read_text())
                check_same(manifest, ident, out, allow_code_change)
                manifest["sessions"] = manifest.get("sessions", []) + [session(command, executor, jobs, True,
                                                                               numerics)]
                manifest["sessions"][-1]["code_sha256"] = ident["code_sha256"]
            else:
                manifest = {**ident, "sessions": [session(command, executor, jobs, False, numerics)]}
                manifest["versions"] = manifest["sessions"][0]["versions"]
                manifest["command"] = command
            write_json(mpath, manifest)
            return _run(batch, out, runner, flush_runs, flush_seconds, stream, progress_interval, jobs or 1,
                        memory)
        finally:
            runner.close()


def _stored(manifest: Path) -> dict[str, Any]:
    """A store's manifest as read ({} when it cannot be read)."""
    try:
        stored = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def _total_runs(manifest: Path) -> int | None:
    """The runs the batch in a store is made of, from its manifest (None when it cannot be read)."""
    total = _stored(manifest).get("total_runs")
    return total if isinstance(total, int) else None


def _run(batch: Batch, out: Path, runner: LocalRunner | DaskRunner, flush_runs: int, flush_seconds: float,
         stream: TextIO, progress_interval: float, jobs: int, memory: int | None) -> BatchRun:
    """The body of run_batch, with the store locked."""
    done, first = recover(out)
    tasks: list[PointTask] = []
    for point in range(len(batch.points)):
        for rep in range(batch.replications):
            if any(batch.run_id(point, rep, p) not in done for p in batch.policy_names):
                tasks.append((point, rep))
    skipped = len(done)
    old_failed = 0
    if (out / "failures").is_dir():
        old_failed = sum(pq.read_metadata(p).num_rows for n, p in chunk_files(out / "failures").items())
    writer = DatasetWriter(out, batch, first, done)
    progress = BatchProgress(batch.total_runs, skipped, old_failed, stream, progress_interval)
    t0 = time.monotonic()
    last_flush = t0
    messages: list[str] = []
    completed = failed = 0
    gen = runner.results(stacks_of(batch, tasks, jobs, memory)) if tasks else iter(())
    try:
        for res in gen:
            if res is not None:
                n, bad = writer.add(res)
                completed += n
                failed += bad
                progress.update(n, bad)
            else:
                progress.tick()
            now = time.monotonic()
            if writer.pending >= flush_runs or (writer.pending and now - last_flush >= flush_seconds):
                writer.flush()
                last_flush = now
    except WorkersDied as e:
        messages.append(str(e))
    finally:
        if hasattr(gen, "close"):
            gen.close()
        writer.flush()
        progress.close()
    unfinished = list(runner.unfinished)
    if isinstance(runner, DaskRunner) and runner.errors:
        messages.append(f"{len(runner.errors)} tasks could not run on the cluster (first: {runner.errors[0]})")
    return BatchRun(out, batch.total_runs, skipped, completed, failed,
                    len(unfinished) * len(batch.policies), time.monotonic() - t0, tuple(messages))

