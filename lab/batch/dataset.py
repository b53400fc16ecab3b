"""The batch dataset: the Parquet tables a batch writes (runs, series, failures), in atomic chunks; reading them.

Not to be confused with the shop (`lab.engine.store`): this is the folder of
files a batch produces. The driver alone writes it, in chunks, each file
written to a temporary name and renamed into place. The runs file of a chunk
is written last and commits the chunk: a run is complete iff its rows are in
a committed chunk, so a batch killed at any moment and resumed skips exactly
the completed runs and ends with the same rows as an uninterrupted batch.
`read_dataset` reads the committed chunks in a canonical order, so the data
is the same whatever the chunking, the executor or the order runs finished in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lab.batch.factors import Factor
from lab.batch.spec import Batch, BatchError
from lab.batch.tasks import SERIES, PointResult
from lab.experiment.run import write_atomic
from lab.metrics.outcomes import OUTCOMES

__all__ = ["MANIFEST", "PARTS", "BatchData", "DatasetWriter", "chunk_files", "committed_chunks", "read_dataset",
           "recover", "saved_runs", "schemas"]

MANIFEST = "manifest.json"
PARTS = ("runs", "series", "failures")
_PART = re.compile(r"^part-(\d+)\.parquet$")

_ARROW = {"float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_(), "string": pa.string()}


def schemas(factors: Sequence[Factor] | Sequence[Mapping[str, Any]]) -> dict[str, pa.Schema]:
    """The Arrow schema of each table of the store, given the factors (or their manifest entries)."""
    fac = [(f.name, f.dtype) if isinstance(f, Factor) else (f["name"], f["dtype"]) for f in factors]
    ident = [pa.field("run_id", pa.string()), pa.field("point", pa.int32()), pa.field("replication", pa.int32()),
             pa.field("policy", pa.string())]
    fcols = [pa.field(n, _ARROW[t]) for n, t in fac]
    return {
        "runs": pa.schema(ident + fcols + [pa.field("outcome", pa.string()), pa.field("value", pa.float64())]),
        "series": pa.schema(ident + [pa.field("period", pa.int32()), pa.field("day_end", pa.int32()),
                                     pa.field("variable", pa.string()), pa.field("value", pa.float64())]),
        "failures": pa.schema(ident + fcols + [pa.field("error", pa.string())]),
    }


def chunk_files(folder: Path) -> dict[int, Path]:
    """The part files of one table folder, by chunk number (committed or not)."""
    out: dict[int, Path] = {}
    if folder.is_dir():
        for p in folder.iterdir():
            m = _PART.match(p.name)
            if m:
                out[int(m.group(1))] = p
    return out


def committed_chunks(out: Path) -> list[int]:
    """Chunk numbers whose runs file exists: the runs file is written last, so these chunks are whole."""
    return sorted(chunk_files(out / "runs"))


def recover(out: Path) -> tuple[set[str], int]:
    """Tidy a store after an interruption and say what it holds.

    Deletes temporary files and the series/failures files of chunks whose runs
    file was never written (an interrupted flush), then returns the run ids of
    the complete runs and the next free chunk number."""
    chunks = set(committed_chunks(out))
    for part in PARTS:
        folder = out / part
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                p.unlink()
        for n, p in chunk_files(folder).items():
            if n not in chunks:
                p.unlink()
    return _done(out, chunks), (max(chunks) + 1 if chunks else 0)


def saved_runs(out: Path) -> int:
    """How many runs the store holds whole (completed or failed, in committed chunks), without tidying it: what
    an interrupted batch can say it kept."""
    return len(_done(Path(out), set(committed_chunks(Path(out)))))


def _done(out: Path, chunks: set[int]) -> set[str]:
    """The run ids of the committed chunks `chunks` of the store: its complete runs and its failed ones."""
    done: set[str] = set()
    for part in ("runs", "failures"):
        for n, p in chunk_files(out / part).items():
            if n in chunks:
                done.update(pq.read_table(p, columns=["run_id"]).column("run_id").to_pylist())
    return done



def _set(a: np.ndarray | None) -> np.ndarray:
    """One of a run's arrays, which are set whenever the run has no error."""
    assert a is not None
    return a

class DatasetWriter:
    """Buffers task results and writes them as atomic chunks (series and failures first, runs last)."""

    def __init__(self, out: Path, batch: Batch, first_chunk: int = 0, done: set[str] | None = None) -> None:
        self.out = out
        self.batch = batch
        self.chunk = first_chunk
        self.done = done if done is not None else set()
        self.schemas = schemas(batch.factors)
        self.buffer: list[PointResult] = []
        self.pending = 0
        self.failed = 0

    def add(self, result: PointResult) -> tuple[int, int]:
        """Buffer a task's runs (dropping any already stored or buffered); returns (runs added, failures among them)."""
        ids = [self.batch.run_id(result.point, result.replication, r.policy) for r in result.records]
        keep = tuple(r for r, i in zip(result.records, ids) if i not in self.done)
        if not keep:
            return 0, 0
        self.done.update(ids)
        self.buffer.append(replace(result, records=keep))
        self.pending += len(keep)
        bad = sum(r.error is not None for r in keep)
        self.failed += bad
        return len(keep), bad

    def flush(self) -> None:
        """Write the buffered runs as one chunk; a no-op when nothing is buffered."""
        if not self.buffer:
            return
        tables = self._tables()
        name = f"part-{self.chunk:05d}.parquet"
        for part in ("series", "failures", "runs"):
            t = tables[part]
            if part != "runs" and t.num_rows == 0:
                continue
            write_atomic(self.out / part / name, lambda p, t=t: pq.write_table(t, p))
        self.chunk += 1
        self.buffer = []
        self.pending = 0

    def _tables(self) -> dict[str, pa.Table]:
        b = self.batch
        ok = [(res, r) for res in self.buffer for r in res.records if r.error is None]
        bad = [(res, r) for res in self.buffer for r in res.records if r.error is not None]
        n_out = len(OUTCOMES)

        def ident(pairs: list, reps: np.ndarray | int) -> dict[str, pa.Array]:
            ids = [b.run_id(res.point, res.replication, r.policy) for res, r in pairs]
            return {
                "run_id": pa.array(np.repeat(np.array(ids, dtype=object), reps), pa.string()),
                "point": pa.array(np.repeat(np.array([res.point for res, _ in pairs], dtype=np.int32), reps)),
                "replication": pa.array(np.repeat(np.array([res.replication for res, _ in pairs], dtype=np.int32),
                                                  reps)),
                "policy": pa.array(np.repeat(np.array([r.policy for _, r in pairs], dtype=object), reps), pa.string()),
            }

        def factor_cols(pairs: list, reps: np.ndarray | int) -> dict[str, pa.Array]:
            cols = {}
            for f in b.factors:
                vals = np.empty(len(pairs), dtype=object)
                vals[:] = [b.points[res.point][f.name] for res, _ in pairs]
                cols[f.name] = pa.array(np.repeat(vals, reps).tolist(), _ARROW[f.dtype])
            return cols

        runs = ident(ok, n_out) | factor_cols(ok, n_out)
        runs["outcome"] = pa.array(np.tile(np.array(list(OUTCOMES), dtype=object), len(ok)), pa.string())
        runs["value"] = pa.array(np.concatenate([r.outcomes for _, r in ok]) if ok else np.empty(0))
        lengths = np.array([_set(r.series).size for _, r in ok], dtype=np.int64)
        series = ident(ok, lengths)
        n_var = len(SERIES)
        series["period"] = pa.array(np.concatenate([np.repeat(_set(r.period), n_var) for _, r in ok]) if ok
                                    else np.empty(0, np.int32))
        series["day_end"] = pa.array(np.concatenate([np.repeat(_set(r.day_end), n_var) for _, r in ok]) if ok
                                     else np.empty(0, np.int32))
        series["variable"] = pa.array(np.concatenate([np.tile(np.array(SERIES, dtype=object), len(_set(r.period)))
                                                     for _, r in ok])
                                      if ok else np.empty(0, dtype=object), pa.string())
        series["value"] = pa.array(np.concatenate([_set(r.series).ravel() for _, r in ok]) if ok else np.empty(0))
        failures = ident(bad, 1) | factor_cols(bad, 1)
        failures["error"] = pa.array([r.error for _, r in bad], pa.string())
        return {k: pa.Table.from_pydict(v, schema=self.schemas[k]) for k, v in
                (("runs", runs), ("series", series), ("failures", failures))}


@dataclass(frozen=True)
class BatchData:
    """A batch store read back: long tables sorted canonically, and the manifest.

    `missing` names the runs of the design that the store does not hold (an
    interrupted batch: resume it); `repairs` says what `read_dataset(repair=True)`
    dropped."""

    runs: pd.DataFrame
    series: pd.DataFrame
    failures: pd.DataFrame
    manifest: dict[str, Any]
    missing: tuple[str, ...] = ()
    repairs: tuple[str, ...] = ()


def _expected_ids(manifest: dict[str, Any]) -> list[str] | None:
    """Every run id of the design the manifest describes (None for a manifest without its design table)."""
    points, reps, policies = manifest.get("points"), manifest.get("replications"), manifest.get("policies")
    if points is None or reps is None or policies is None:
        return None
    pw = max(4, len(str(max(len(points) - 1, 0))))
    rw = max(2, len(str(reps - 1)))
    return [f"p{pt:0{pw}d}-r{r:0{rw}d}-{pol}" for pt in range(len(points)) for r in range(reps) for pol in policies]


def _examples(ids: Sequence[str], n: int = 3) -> str:
    ids = sorted(ids)
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def _check(out: Path, tables: dict[str, list[tuple[int, pa.Table]]], n_outcomes: int, repair: bool
           ) -> tuple[dict[str, list[tuple[int, pa.Table]]], list[str]]:
    """Refuse (or, with `repair`, mend) a store whose chunks hold a run twice or disagree about a run.

    One driver at a time writes a store (lab.batch.lock), so neither happens
    unless a store was written by two drivers at once (before the lock) or
    edited by hand. Runs are deterministic, so copies of a run are identical:
    repair keeps the first committed copy and drops the chunks that are not whole."""
    problems, repairs = [], []
    bad_chunks: set[int] = set()
    for n, t in tables["runs"]:
        counts = pd.Series(t.column("run_id").to_pylist()).value_counts()
        series = {n2: t2 for n2, t2 in tables["series"]}.get(n)
        sids = set(series.column("run_id").to_pylist()) if series is not None else set()
        if (counts != n_outcomes).any() or (sids and not sids <= set(counts.index)):
            bad_chunks.add(n)
    if bad_chunks:
        msg = (f"chunk(s) {', '.join(f'part-{n:05d}' for n in sorted(bad_chunks))} are not whole (runs with missing "
               "outcomes, or series of runs the chunk does not hold)")
        problems.append(msg)
        if repair:
            repairs.append(f"dropped {msg}; resume the batch to rerun their runs")
            tables = {k: [(n, t) for n, t in v if n not in bad_chunks] for k, v in tables.items()}
    seen: dict[str, int] = {}
    dup: dict[int, set[str]] = {}
    for n, t in sorted(tables["runs"] + tables["failures"], key=lambda x: x[0]):
        for rid in set(t.column("run_id").to_pylist()):
            if rid in seen:
                dup.setdefault(n, set()).add(rid)
            else:
                seen[rid] = n
    if dup:
        ids = set().union(*dup.values())
        problems.append(f"{len(ids)} runs are stored more than once ({_examples(list(ids))})")
        if repair:
            repairs.append(f"kept the first stored copy of {len(ids)} runs stored more than once "
                           f"({_examples(list(ids))})")
            tables = {k: [(n, t.filter(pa.compute.invert(pa.compute.is_in(t.column("run_id"),
                                                                          pa.array(sorted(dup[n]), pa.string())))))
                          if n in dup else (n, t) for n, t in v] for k, v in tables.items()}
    if problems and not repair:
        raise BatchError(f"the batch store {out} is inconsistent: {'; '.join(problems)}. It was probably written by "
                         "two drivers at once. Read it with read_dataset(store, repair=True) to keep one copy of each "
                         "run and drop broken chunks, or rerun the batch into a new --out")
    return tables, repairs


def read_dataset(out: str | Path, *, repair: bool = False) -> BatchData:
    """Read a batch store: every committed chunk concatenated, rows sorted by run id (then outcome, variable, period).

    The result is the same whatever the chunking, the executor or the order
    runs finished in; chunks of an interrupted flush are ignored. A store holding
    a run twice, or a chunk that is not whole, is refused with BatchError unless
    `repair` is given (then `repairs` says what was dropped)."""
    import json

    import pyarrow.compute  # noqa: F401  (pa.compute, used by the repair)

    out = Path(out)
    mpath = out / MANIFEST
    if not mpath.is_file():
        raise BatchError(f"{out} is not a batch store (no {MANIFEST}); give the --out folder of a 'lab batch' run")
    manifest = json.loads(mpath.read_text())
    sch = schemas(manifest["factors"])
    chunks = set(committed_chunks(out))
    tables = {part: [(n, pq.read_table(p, schema=sch[part])) for n, p in sorted(chunk_files(out / part).items())
                     if n in chunks] for part in PARTS}
    tables, repairs = _check(out, tables, len(manifest.get("outcomes", OUTCOMES)), repair)
    frames = {}
    order = {"runs": ["run_id", "outcome"], "series": ["run_id", "variable", "period"], "failures": ["run_id"]}
    for part in PARTS:
        parts = [t for _, t in tables[part]]
        table = pa.concat_tables(parts) if parts else sch[part].empty_table()
        frame = table.to_pandas()
        frames[part] = frame.sort_values(order[part], kind="stable").reset_index(drop=True)
    expected = _expected_ids(manifest)
    have = set(frames["runs"]["run_id"]) | set(frames["failures"]["run_id"])
    missing = tuple(i for i in expected if i not in have) if expected is not None else ()
    return BatchData(frames["runs"], frames["series"], frames["failures"], manifest, missing, tuple(repairs))
