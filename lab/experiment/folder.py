"""A comparison's output folder: checked before the runs, its finished runs kept as they come, published whole.

A comparison works in a hidden sibling of its output folder, `.NAME.partial/`:
each finished run is written there at once (its outcomes as JSON, its series
and curves as Parquet, the JSON last so it commits the run), so a comparison
killed at any moment loses at most the runs in flight, and `--resume` reruns
only the others: the runs are deterministic, so the resumed comparison is the
uninterrupted one, bit for bit. The results are then written into a staging
sibling, `.NAME.staging-*`, which is renamed into place: the output folder
appears complete or not at all, and an earlier result it replaces is moved
aside first, never mixed with the new files.

Every problem with the folder (a file in the way, no permission, a read-only
disk, a full disk) is an `OutputError` saying what is wrong and what to do,
raised before the first run when it can be known then.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pandas as pd

from lab.errors import Diagnostic, LabError

__all__ = ["OutputError", "Workspace", "check_free_space", "key_of", "published", "world_key"]



class OutputError(LabError):
    """The output folder cannot take the results; the message says why and what to do."""

    def __init__(self, message: str | tuple[Diagnostic, ...]) -> None:
        if isinstance(message, tuple):  # unpickling
            super().__init__(message)
        else:
            super().__init__([Diagnostic("<output>", 1, 1, message, "output")])


def explain(exc: OSError, where: Path) -> OutputError:
    """An OSError met while writing results, as an OutputError that says what to do."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        what = "the disk is full (or your quota is used up); free some space and rerun with --resume"
    elif code == errno.EROFS:
        what = "it is on a read-only file system; choose another --out"
    elif code in (errno.EACCES, errno.EPERM):
        what = "you may not write there; choose another --out or change the folder's permissions"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        what = "a file is in the way of a folder; move it or choose another --out"
    elif code == errno.ENAMETOOLONG:
        what = "the name is too long; choose a shorter --out"
    else:
        what = f"{exc.strerror or exc}; choose another --out"
    return OutputError(f"cannot write the results to {where}: {what}")


def _sibling(out: Path, tag: str) -> Path:
    return out.parent / f".{out.name}.{tag}"


class Workspace:
    """The hidden `.NAME.partial/` folder where a comparison keeps its finished runs until it is published."""

    def __init__(self, out: Path, identity: dict, resume: bool) -> None:
        self.out = Path(out)
        self.path = _sibling(self.out, "partial")
        self.identity = identity
        self.resume = resume

    def open(self) -> int:
        """Check the output folder and create (or reopen, with resume) the workspace; returns the runs kept."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out} is a file, not a folder; choose another --out or move the file")
        for parent in [out.parent, *out.parent.parents]:
            if parent.exists():
                if not parent.is_dir():
                    raise OutputError(f"cannot create {out}: {parent} is a file, not a folder; choose another --out")
                break
        if out.is_dir() and any(out.iterdir()) and not (out / "summary.json").is_file():
            raise OutputError(f"--out {out} holds other files and no earlier comparison (no summary.json); the "
                              "results replace the whole folder, so choose a new or empty folder")
        ident = _canonical(self.identity)
        if self.path.is_dir() and not _run_files(self.path):  # one stopped before any run ended: nothing to keep
            shutil.rmtree(self.path, ignore_errors=True)
        if self.path.is_dir():
            stored = (self.path / "identity.json").read_text() if (self.path / "identity.json").is_file() else ""
            if not self.resume:
                raise OutputError(f"an interrupted comparison into {out} is kept in {self.path}; add --resume to "
                                  f"continue it, or delete {self.path} to start afresh")
            if stored != ident:
                raise OutputError(f"the interrupted comparison in {self.path} was run with other inputs or options "
                                  f"({_changed(stored, ident)}), so it cannot be resumed; rerun it with the same "
                                  f"ones, or delete {self.path} to start afresh")
        try:
            (self.path / "runs").mkdir(parents=True, exist_ok=True)
            _write_text(self.path / "identity.json", ident)
            probe = self.path / ".probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise explain(e, out) from None
        return len(self._keys())

    def _keys(self) -> list[Path]:
        return _run_files(self.path)

    def keep(self, key: str, outcomes: dict, rule_fires: dict, seconds: float,
             frames: dict[str, pd.DataFrame] | None = None) -> int:
        """Write one finished run (frames first, the JSON that commits it last); returns the bytes it took.

        A robust study's runs keep their outcomes only (``frames`` None)."""
        size = 0
        try:
            for name, frame in (frames or {}).items():
                p = self.path / "runs" / f"{key}.{name}.parquet"
                _write_via_temp(p, partial(_to_parquet, frame))
                size += p.stat().st_size
            p = self.path / "runs" / f"{key}.json"
            _write_text(p, json.dumps({"outcomes": outcomes, "rule_fires": rule_fires, "seconds": seconds}))
            size += p.stat().st_size
        except OSError as e:
            raise explain(e, self.path) from None
        return size

    def kept(self) -> Iterator[tuple[str, dict]]:
        """The committed runs: (key, the JSON's content); their frames stay on disk (:meth:`stack` reads them)."""
        for p in self._keys():
            yield p.name[:-len(".json")], json.loads(p.read_text())

    def stack(self, name: str, runs: list[tuple[str, dict[str, object]]]) -> Path:
        """Write ``NAME.parquet`` in the workspace: the kept frames of kind ``name`` of ``runs`` (key, leading
        columns) in that order, each run's rows preceded by its leading columns; returns its path.

        The runs are read and written one at a time (a row group each), so the memory it takes is one run's
        frame however many runs there are; the column types are the runs' own, unified (Arrow's promotion)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = [self.path / "runs" / f"{key}.{name}.parquet" for key, _ in runs]
        target = self.path / f"{name}.parquet"
        try:
            if not runs:
                pd.DataFrame().to_parquet(target, index=False)
                return target
            lead = pa.Table.from_pandas(pd.DataFrame({k: [v] for k, v in runs[0][1].items()}),
                                        preserve_index=False).schema.remove_metadata()
            body = pa.unify_schemas([pq.read_schema(f).remove_metadata() for f in files],
                                    promote_options="permissive")
            schema = pa.schema([*lead, *body])
            tmp = target.with_name(target.name + ".tmp")
            with pq.ParquetWriter(tmp, schema) as writer:
                for f, (_, cols) in zip(files, runs, strict=True):
                    with pq.ParquetFile(f) as pf:  # the file alone (read_table's dataset layer costs more than it)
                        table = pf.read()
                    for i, (k, v) in enumerate(cols.items()):
                        table = table.add_column(i, k, pa.array([v] * table.num_rows, type=lead.field(k).type))
                    writer.write_table(table.select(schema.names).cast(schema))
            os.replace(tmp, target)
        except OSError as e:
            raise explain(e, self.path) from None
        return target

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def settle_interrupted(out: Path) -> tuple[Path, int]:
    """After a comparison into `out` was interrupted: where it keeps its finished runs (the workspace) and how
    many it holds there. A workspace with none is removed, so that the comparison can start again as it was
    first asked for (without --resume)."""
    path = _sibling(Path(out), "partial")
    kept = len(_run_files(path))
    if not kept:
        shutil.rmtree(path, ignore_errors=True)
    return path, kept


def _run_files(workspace: Path) -> list[Path]:
    """The committed runs of a workspace: one JSON file each, written last (lab.experiment.folder.Workspace.keep)."""
    return sorted((workspace / "runs").glob("*.json"))


def check_free_space(where: Path, needed: int) -> None:
    """Refuse, before the remaining runs, when the disk under `where` has less room than `needed` bytes."""
    free = shutil.disk_usage(where).free
    if needed > free:
        raise OutputError(f"the results need about {_size(needed)} but the disk holding {where} has {_size(free)} "
                          "free; free some space and rerun with --resume, or choose another --out")


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError


def published(out: Path, write: Callable[[Path], None]) -> None:
    """Write a result folder through a staging sibling and rename it into place: it appears whole or not at all.

    An earlier folder at `out` is moved aside before the rename and deleted
    after it, so old and new files never mix. On a write error the staging
    folder is removed and the earlier result is left as it was."""
    out = Path(out)
    for left in out.parent.glob(f".{out.name}.staging-*"):  # a publication killed while writing: never a result
        shutil.rmtree(left, ignore_errors=True)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
        os.chmod(stage, 0o777 & ~_umask())
    except OSError as e:
        raise explain(e, out) from None
    try:
        write(stage)
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old / out.name)
        os.replace(stage, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(stage, ignore_errors=True)
        raise explain(e, out) from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _umask() -> int:
    from lab.experiment.run import umask

    return umask()


def _write_via_temp(path: Path, write: Callable[[Path], None]) -> None:
    from lab.experiment.run import write_atomic

    write_atomic(path, write)


def _to_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def _write_text(path: Path, text: str) -> None:
    def write(p: Path) -> None:
        p.write_text(text)

    _write_via_temp(path, write)


def _changed(stored: str, now: str) -> str:
    """What differs between a workspace's stored identity and the one asked for, in words: the fields by name,
    the machine's arithmetic by what moved (lab.experiment.numerics)."""
    from lab.experiment.numerics import differences

    try:
        then = json.loads(stored)
    except ValueError:
        return "the interrupted comparison's identity.json cannot be read"
    new = json.loads(now)
    words = []
    for key in sorted(set(then) | set(new)):
        if then.get(key) == new.get(key):
            continue
        if key == "numerics" and isinstance(then.get(key), dict) and isinstance(new.get(key), dict):
            words.append("the machine's arithmetic: " + "; ".join(differences(then[key], new[key])))
        elif key == "code_sha256":
            words.append("the lab's code")
        else:
            words.append(f"{key}: {json.dumps(then.get(key), default=str)[:80]} then, "
                         f"{json.dumps(new.get(key), default=str)[:80]} now")
    return "; ".join(words) or "its identity.json"


def _canonical(identity: dict) -> str:
    return json.dumps(identity, sort_keys=True, indent=1, default=str)


def world_key(policy: str, world: int, replication: int) -> str:
    """The file name of a robust study's run in the workspace (world ``world``, replication ``replication``)."""
    digest = hashlib.sha256(policy.encode()).hexdigest()[:8]
    return f"w{world:06d}-r{replication:06d}-{digest}"


def key_of(policy: str, replication: int, cut: bool) -> str:
    """The file name of a run in the workspace (policy names are file names already)."""
    digest = hashlib.sha256(policy.encode()).hexdigest()[:8]
    return f"r{replication:06d}-{'cut' if cut else 'whole'}-{digest}"
