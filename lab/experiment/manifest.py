"""What it takes to reproduce a result: input file hashes, seed, versions, arithmetic, command line."""

from __future__ import annotations

import hashlib
import platform
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("loyalty-lab", "numpy", "scipy", "pandas", "pyarrow", "simpy", "pyyaml", "matplotlib")


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def manifest(files: dict[str, str | Path], seed: int, argv: list[str] | None = None, **extra: object) -> dict:
    """A manifest naming every input by hash, the seed, the versions, the machine's arithmetic
    (lab.experiment.numerics) and the command line."""
    from lab.experiment.numerics import numerics

    return {
        "inputs": {k: {"path": str(v), "sha256": file_hash(v)} for k, v in files.items()},
        "seed": seed,
        "versions": versions(),
        "numerics": numerics(),
        "command": list(argv if argv is not None else sys.argv),
        **extra,
    }
