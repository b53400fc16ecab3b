"""Where each built value came from: the source map of a configuration file, and diagnostics at its paths.

:func:`lab.config.build.build` returns a :class:`SourceMap` beside the instance, so that
checks running later on the built objects (cross-references, a batch's factors) can point
at the YAML node of any field, e.g. ``("rules", 0, "do", 0, "award", "ledger")``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lab.config.declare import yaml_name
from lab.errors import Diagnostic

__all__ = ["SourceMap", "diag_at"]

Path = tuple[str | int, ...]


class SourceMap:
    """Where each built value came from: ``at(path)`` gives the (line, col) of its YAML node.

    Paths use YAML key names, sequence indices and, for tagged unions, the tag, e.g.
    ``("rules", 0, "do", 0, "award", "ledger")``.  Python field names with a trailing
    underscore are accepted too.  Unknown paths fall back to the nearest recorded ancestor.
    """

    __slots__ = ("file", "_pos")

    def __init__(self, file: str, positions: Mapping[Path, tuple[int, int]]):
        self.file = file
        self._pos = dict(positions)

    def _get(self, path: Path) -> tuple[int, int] | None:
        pos = self._pos.get(path)
        if pos is None:
            alt = tuple(yaml_name(c) if isinstance(c, str) else c for c in path)
            pos = self._pos.get(alt)
        return pos

    def at(self, path: Iterable[str | int]) -> tuple[int, int]:
        """(line, col) of the node at ``path``, or of its nearest recorded ancestor."""
        p = tuple(path)
        while True:
            pos = self._get(p)
            if pos is not None:
                return pos
            if not p:
                return (1, 1)
            p = p[:-1]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, tuple) and self._get(path) is not None

    def diag(self, path: Iterable[str | int], message: str, code: str = "invalid") -> Diagnostic:
        """A diagnostic in this file at ``path`` (see :meth:`at`), with its code (see lab.errors.CODES)."""
        return diag_at(self.file, self, path, message, code=code)


def diag_at(file: str, source_map: SourceMap, path: Iterable[str | int],
            message: str, *, code: str = "invalid") -> Diagnostic:
    """A diagnostic at the YAML node for ``path`` (nearest ancestor if it has none), with its code and path."""
    path = tuple(path)
    line, col = source_map.at(path)
    return Diagnostic(file, line, col, message, code, path)

