"""The store lock: one driver at a time writes a batch store.

Two drivers writing one store would pick the same chunk numbers and
overwrite each other's files, leaving runs twice or not at all. The driver
holds an exclusive `fcntl.flock` on `STORE/.lock` for as long as it runs. The
kernel releases a flock when its process dies, however it dies, so a lock
left by a killed driver is never in the way: there is no stale lock to clean
up by hand. The file also records who holds it (pid, host, start time,
command), for the refusal message.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from lab.batch.spec import BatchError

__all__ = ["LOCK", "StoreLock", "holder"]

LOCK = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, so no lock (documented in docs/BATCHES.md)
    fcntl = None  # type: ignore[assignment]


def holder(out: Path) -> str:
    """Who the lock file says holds the store, in words."""
    try:
        info = json.loads((Path(out) / LOCK).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    cmd = " ".join(info.get("command", []))
    return (f"process {info.get('pid', '?')} on {info.get('host', '?')} (started {info.get('started', '?')}"
            + (f": {cmd}" if cmd else "") + ")")


class StoreLock:
    """An exclusive lock on a store folder, taken on entry and released on exit (or by the kernel at death)."""

    def __init__(self, out: Path, command: Sequence[str] = ()) -> None:
        self.out = Path(out)
        self.command = list(command)
        self._file: IO[str] | None = None

    def held_elsewhere(self) -> bool:
        """Whether another live process holds the lock now (without taking it, and without creating the file)."""
        path = self.out / LOCK
        if fcntl is None or not path.is_file():
            return False
        with open(path) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
        return False

    def refusal(self) -> BatchError:
        return BatchError(f"{self.out} is being written by {holder(self.out)}; two drivers on one store would lose "
                          "or duplicate runs. Wait for it to finish (or stop it) and then rerun with --resume, or "
                          "choose another --out")

    def __enter__(self) -> StoreLock:
        self.out.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            return self
        f = open(self.out / LOCK, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            raise self.refusal() from None
        f.seek(0)
        f.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": self.command}, f)
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
