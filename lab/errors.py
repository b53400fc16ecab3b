"""User-facing error reporting: positioned diagnostics and the one exception type for bad input.

Everything a user can get wrong in a YAML file (policies, scenarios, batch specs) is reported
as a :class:`LabError` carrying one or more :class:`Diagnostic` records in the familiar
compiler format ``FILE:LINE:COL: message``.  The CLI catches ``LabError`` and exits with
code 2; any other exception escaping is a bug in the lab, not in the user's input.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable

__all__ = ["Diagnostic", "LabError", "printable", "suggest"]

#: Similarity (difflib ratio) above which a candidate is offered as "did you mean".
SUGGEST_CUTOFF = 0.6
#: When nothing is close, list all candidates only if there are at most this many.
LIST_ALL_LIMIT = 12


@dataclass(frozen=True)
class Diagnostic:
    """One problem in one input file, at a 1-based line and column."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class LabError(Exception):
    """Bad user input, described by one or more diagnostics (``str(err)`` lists them, one a line)."""

    diagnostics: tuple[Diagnostic, ...]

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    @classmethod
    def at(cls, file: str, line: int, col: int, message: str) -> LabError:
        """A LabError with a single diagnostic (a convenience for callers)."""
        return cls([Diagnostic(file, line, col, message)])

    def __reduce__(self):  # keep diagnostics intact when sent between processes
        return (type(self), (self.diagnostics,))

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)


def suggest(word: str, candidates: Iterable[str]) -> str:
    """A hint to append to a message about an unknown name.

    Returns ``"; did you mean 'x'?"`` for the closest candidate (difflib, cutoff 0.6), else
    ``"; expected one of: a, b, c"`` when there are few candidates (<= 12), else ``""``.
    """
    pool = list(dict.fromkeys(c for c in candidates if isinstance(c, str)))
    if not pool:
        return ""
    close = difflib.get_close_matches(word, pool, n=1, cutoff=SUGGEST_CUTOFF)
    if not close:
        # Case-only differences ("Award" vs "award") score high anyway, but a short word
        # against long candidates may not; try case-folded as a second chance.
        folded = {c.casefold(): c for c in pool}
        close = [folded[m] for m in difflib.get_close_matches(word.casefold(), list(folded), n=1,
                                                              cutoff=SUGGEST_CUTOFF)]
    if close:
        return f"; did you mean '{close[0]}'?"
    if len(pool) <= LIST_ALL_LIMIT:
        return "; expected one of: " + ", ".join(pool)
    return ""


def printable(text: str, limit: int = 40) -> str:
    """User text made safe to quote inside a one-line message: escaped and shortened."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[: limit - 3] + "..."
