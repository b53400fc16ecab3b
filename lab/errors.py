"""User-facing error reporting: positioned diagnostics, their collector, and the one exception type for bad input.

Everything a user can get wrong in a YAML file (policies, scenarios, batch specs) is reported
as a :class:`LabError` carrying one or more :class:`Diagnostic` records in the familiar
compiler format ``FILE:LINE:COL: message``.  The CLI catches ``LabError`` and exits with
code 2; any other exception escaping is a bug in the lab, not in the user's input.

Besides its position and message, each diagnostic carries a stable ``code`` (one of
:data:`CODES`: what kind of mistake it is) and the YAML ``path`` of the field it is about, e.g.
``("rules", 2, "do", 0, "award", "amount")``, so that programs and tests can act on a
diagnostic without parsing its prose.  Neither shows in ``str(d)``.  Every stage that checks
input (the YAML reader, the dataclass builder, the domain loaders) collects its findings in
one :class:`Diagnostics` collector, and every "did you mean" comes from :func:`suggest`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Protocol
from collections.abc import Iterable, Iterator

__all__ = ["CODES", "MAX_DIAGNOSTICS", "MAX_NAME", "MAX_SHOWN", "Diagnostic", "Diagnostics", "LabError", "TooMany",
           "by_meaning", "close_candidates", "closest", "declare_meanings", "name_problem", "name_problems",
           "printable", "shown", "suggest"]

#: Similarity (difflib ratio) above which a candidate is offered as "did you mean".
SUGGEST_CUTOFF = 0.6
#: When nothing is close, list all candidates only if there are at most this many.
LIST_ALL_LIMIT = 12

#: A collector stops after this many problems in one file (the rest are counted, not built): a file of
#: 10,000 mistakes is refused as fast as a file of 100, and nobody reads past the first screenful.
MAX_DIAGNOSTICS = 100
#: At most this many diagnostics are printed by a command; the rest are counted in one closing line.
MAX_SHOWN = 50
#: The longest name (ledger, line, tier, category, segment, policy, rule, scenario, batch) the lab accepts:
#: names go into messages, tables and file names (a file name holds at most 255 bytes).
MAX_NAME = 64
#: The longest message a diagnostic keeps (user text is quoted through printable() well below this).
MAX_MESSAGE = 600
#: How much of a user's text a message quotes (see :func:`printable`).
QUOTE_LIMIT = 40

#: The diagnostic codes, each with what it means. A code is part of the interface: never rename one.
CODES: dict[str, str] = {
    "file": "the file cannot be read, is not UTF-8 text, is empty, or holds a character YAML refuses",
    "yaml-syntax": "the text is not well-formed YAML",
    "yaml-limit": "the YAML is too large, nested too deep, or expands to too many nodes",
    "yaml-tag": "an unsupported or misplaced YAML tag, or a merge key '<<' without a mapping",
    "yaml-alias": "an undefined or recursive alias",
    "duplicate-key": "a key given twice in one mapping",
    "key-type": "a mapping key that is not text",
    "unknown-key": "a key the field does not have",
    "missing-key": "a required key that is absent",
    "type": "a value of the wrong kind (text where a number goes, a list where a mapping goes, ...)",
    "range": "a number outside the bounds its field allows",
    "choice": "a word that is not one of the field's allowed values",
    "unknown-variant": "an unknown tag of a tagged choice (an action, a trigger, a design, ...)",
    "variant-shape": "a tagged choice not written as a mapping with exactly one key",
    "invalid": "a value its declaration's own checks refuse",
    "required": "something that must be given is empty (a store without categories, a factor without levels)",
    "unknown-name": "a reference to a category, policy, ledger, ... that does not exist",
    "expression": "an expression that does not parse, names an unknown field or function, or has the wrong type",
    "duplicate-name": "two things that must be named differently share a name",
    "duplicate-value": "a list that gives the same value twice",
    "unknown-path": "a factor path that does not name a parameter",
    "conflict": "two settings that cannot both hold",
    "design": "a design that cannot be drawn as asked (size, samples)",
    "name": "a name that is empty, too long, or holds characters a name cannot (line breaks, control characters)",
    "too-many": "the file has more problems than are worth listing; the reading stopped",
    "unseen-reward": "a warning, not a refusal: points are earned towards no reward the behaviour model can read",
}


@dataclass(frozen=True)
class Diagnostic:
    """One problem in one input file, at a 1-based line and column.

    ``code`` and ``path`` say what and where in machine terms (see the module docstring);
    they are left out of equality and of ``str(d)``, which stays ``FILE:LINE:COL: message``."""

    file: str
    line: int
    col: int
    message: str
    code: str = field(default="invalid", compare=False)
    path: tuple[str | int, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        # The last guard of "one short line": a message that quoted user text without printable() is cut here.
        if len(self.message) > MAX_MESSAGE:
            object.__setattr__(self, "message", self.message[: MAX_MESSAGE - 3] + "...")

    def __str__(self) -> str:
        # One line whatever a message holds: a line break in a file name or a quoted text is escaped here too.
        return _one_line(f"{self.file}:{self.line}:{self.col}: {self.message}")


class LabError(Exception):
    """Bad user input, described by one or more diagnostics (``str(err)`` lists them, one a line)."""

    diagnostics: tuple[Diagnostic, ...]

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    @classmethod
    def at(cls, file: str, line: int, col: int, message: str, code: str = "invalid") -> LabError:
        """A LabError with a single diagnostic (a convenience for callers)."""
        return cls([Diagnostic(file, line, col, message, code)])

    def __reduce__(self):  # keep diagnostics intact when sent between processes
        return (type(self), (self.diagnostics,))

    def __str__(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)


class TooMany(LabError):
    """Raised by :meth:`Diagnostics.add` once a collector holds :data:`MAX_DIAGNOSTICS` problems.

    It is a LabError listing them (the last says the reading stopped), so a stage that does not catch it
    still ends in the usual exit 2; a stage that does (the YAML reader, the builder) re-raises them sorted."""

    def __init__(self, collector: Diagnostics | Iterable[Diagnostic]) -> None:
        if isinstance(collector, Diagnostics):
            self.collector: Diagnostics | None = collector
            super().__init__(collector.sorted())
        else:  # rebuilt from its diagnostics (pickling)
            self.collector = None
            super().__init__(collector)


class Locator(Protocol):
    """Anything that gives the (line, col) of a YAML path (lab.config's SourceMap)."""

    def at(self, path: Iterable[str | int]) -> tuple[int, int]: ...


class Diagnostics:
    """The one collector of diagnostics in one file: every checking stage adds to one, then raises it.

    Problems are added either at an explicit position (:meth:`add`, for the YAML reader and the
    builder, which hold the node) or at a YAML path resolved through ``where`` (:meth:`at`, for
    checks that run on built objects)."""

    def __init__(self, file: str, where: Locator | None = None) -> None:
        self.file = file
        self.where = where
        self._items: list[Diagnostic] = []
        self._stopped = False

    def add(self, line: int, col: int, code: str, message: str, path: Iterable[str | int] = ()) -> Diagnostic:
        """Record a problem at (line, col); returns it."""
        if code not in CODES:
            raise ValueError(f"unknown diagnostic code '{code}'")  # a bug in the lab, not in the input
        d = Diagnostic(self.file, line, col, message, code, tuple(path))
        self._items.append(d)
        if len(self._items) >= MAX_DIAGNOSTICS and not self._stopped:
            self._stopped = True
            self._items.append(Diagnostic(self.file, line, col, f"stopped after {MAX_DIAGNOSTICS} problems; fix "
                                          "these and run again", "too-many", tuple(path)))
            raise TooMany(self)
        return d

    def at(self, path: Iterable[str | int], code: str, message: str) -> Diagnostic:
        """Record a problem at the YAML node of ``path`` (its nearest recorded ancestor if it has none)."""
        path = tuple(path)
        line, col = self.where.at(path) if self.where is not None else (1, 1)
        return self.add(line, col, code, message, path)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        """Take over diagnostics found by another stage."""
        self._items.extend(diagnostics)

    @property
    def stopped(self) -> bool:
        """Whether the collector reached :data:`MAX_DIAGNOSTICS` (its last diagnostic says so)."""
        return self._stopped

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self._items)

    def sorted(self) -> list[Diagnostic]:
        """The diagnostics in file order, each once (the "stopped after" note, if any, last)."""
        items = sorted(dict.fromkeys(d for d in self._items if d.code != "too-many"),
                       key=lambda d: (d.line, d.col, d.message))
        return items + [d for d in self._items if d.code == "too-many"]

    def error(self, *, sort: bool = False) -> LabError:
        """The LabError listing the diagnostics (in file order if ``sort``, else as found)."""
        return LabError(self.sorted() if sort else self._items)

    def raise_if_any(self, *, sort: bool = False) -> None:
        """Raise the LabError when anything was recorded."""
        if self._items:
            raise self.error(sort=sort)


#: Words that name one kind of quantity, by concept: a word in a name or a meaning maps to its concept, so an
#: unknown ``customer.spent_last_year`` is matched with the fields about money, not with the nearest spelling.
CONCEPTS: dict[str, str] = {
    "money": "spend spent spending spends dollar dollars money amount amounts revenue paid pay pays cash basket "
             "sales sale",
    "purchases": "purchase purchases bought buy buys buying order orders visit visits visited transaction "
                 "transactions trip trips",
    "points": "point points pts stamp stamps",
    "credit": "credit owe owed owes owing debt debts loan loans borrow borrowed delinquent",
    "satisfaction": "satisfaction satisfied happy happiness mood",
    "tier": "tier tiers level levels status",
    "referral": "refer refers referral referrals referred friend friends",
    "voucher": "voucher vouchers coupon coupons",
    "category": "category categories department departments product products",
    "tenure": "tenure joined acquired",
    "reward": "reward rewards redeem redeemed redemption redemptions",
    "service": "service contact contacts complaint complaints staff",
}
_CONCEPT_OF: dict[str, str] = {w: c for c, words in CONCEPTS.items() for w in words.split()}
#: Known meanings of candidate names (an expression field: its unit and one-line meaning), declared by the
#: domain that owns the names (lab.policy.loader feeds it from lab.policy.fields); see :func:`declare_meanings`.
MEANINGS: dict[str, str] = {}
#: A spelling at least this close wins over a match by meaning (a typo, not another word).
SPELLING_WINS = 0.85


def declare_meanings(meanings: dict[str, str]) -> None:
    """Declare what candidate names mean (words of their unit and meaning), for suggestions by meaning."""
    MEANINGS.update(meanings)


def _concepts(text: str) -> set[str]:
    out = set()
    for w in re.split(r"[^a-z0-9]+", text.lower()):
        c = _CONCEPT_OF.get(w) or (_CONCEPT_OF.get(w[:-1]) if w.endswith("s") else None)
        if c is not None:
            out.add(c)
    return out


def _similarity(word: str, cand: str) -> float:
    """The closer of the whole names' and their last dotted parts' similarity."""
    full = difflib.SequenceMatcher(None, word, cand).ratio()
    if "." in cand:
        tail = difflib.SequenceMatcher(None, word.rsplit(".", 1)[-1], cand.rsplit(".", 1)[-1]).ratio()
        return max(full, tail)
    return full


def by_meaning(word: str, candidates: Iterable[str], meanings: dict[str, str] | None = None) -> list[str]:
    """The candidates whose name or declared meaning names the same kind of quantity as ``word``, best first.

    A concept shared with the candidate's name counts twice, one shared with its meaning once; ties go to
    the closer spelling. Only candidates with a declared meaning are considered (names the lab knows)."""
    meanings = MEANINGS if meanings is None else meanings
    wanted = _concepts(word)
    if not wanted:
        return []
    scored = []
    for c in dict.fromkeys(candidates):
        if not isinstance(c, str) or c not in meanings:
            continue
        score = 2 * len(wanted & _concepts(c)) + len(wanted & _concepts(meanings[c]))
        if score:
            scored.append((-score, -_similarity(word, c), c))
    return [c for _, _, c in sorted(scored)]


def close_candidates(word: str, candidates: Iterable[str], n: int = 4,
                     meanings: dict[str, str] | None = None) -> list[str]:
    """Up to ``n`` candidates close to ``word``, by meaning (where known) and by spelling, best first."""
    pool = list(dict.fromkeys(c for c in candidates if isinstance(c, str)))
    first = closest(word, pool, tail_cutoff=0.75, meanings=meanings)
    out = [first] if first is not None else []
    out += by_meaning(word, pool, meanings)
    out += difflib.get_close_matches(word, pool, n=n, cutoff=SUGGEST_CUTOFF)
    return list(dict.fromkeys(out))[:n]


def closest(word: str, candidates: Iterable[str], *, fold_case: bool = True,
            tail_cutoff: float | None = None, meanings: dict[str, str] | None = None) -> str | None:
    """The candidate closest to a misspelt ``word`` (difflib ratio above 0.6), or None.

    ``fold_case`` gives case-only differences a second chance ("Award" for "award");
    ``tail_cutoff`` also matches the last dotted part (``customer.visits`` for ``visit``)
    at that similarity, for dotted names such as expression fields. For those (or with ``meanings`` given),
    where candidates have a declared meaning (:data:`MEANINGS`, or ``meanings``), a candidate of the same kind of
    quantity as ``word``
    (:func:`by_meaning`) is preferred to a spelling that is not close (below :data:`SPELLING_WINS`):
    ``customer.spent_last_year`` gets ``customer.spend``, not ``customer.points_earned``."""
    pool = list(dict.fromkeys(c for c in candidates if isinstance(c, str)))
    if not pool:
        return None
    spelled = _spelled(word, pool, fold_case, tail_cutoff)
    if spelled is not None and _similarity(word, spelled) >= SPELLING_WINS:
        return spelled
    if meanings is None and tail_cutoff is None:
        return spelled  # plain words (keys, ledger names): by spelling only
    meant = by_meaning(word, pool, meanings)
    return meant[0] if meant else spelled


def _spelled(word: str, pool: list[str], fold_case: bool, tail_cutoff: float | None) -> str | None:
    close = difflib.get_close_matches(word, pool, n=1, cutoff=SUGGEST_CUTOFF)  # the same whatever the order
    if not close and fold_case:
        # Case-only differences ("Award" vs "award") score high anyway, but a short word
        # against long candidates may not; try case-folded as a second chance.
        folded = {c.casefold(): c for c in pool}
        close = [folded[m] for m in difflib.get_close_matches(word.casefold(), list(folded), n=1,
                                                              cutoff=SUGGEST_CUTOFF)]
    if not close and tail_cutoff is not None:
        tails: dict[str, str] = {}
        for c in sorted(pool):
            tails.setdefault(c.rsplit(".", 1)[-1], c)
        close = [tails[m] for m in difflib.get_close_matches(word.rsplit(".", 1)[-1], list(tails), n=1,
                                                             cutoff=tail_cutoff)]
    return close[0] if close else None


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate :func:`suggest` offers for ``word`` ("did you mean"), or None: by spelling, and where
    candidates have a declared meaning (:data:`MEANINGS`), by meaning."""
    pool = list(dict.fromkeys(c for c in candidates if isinstance(c, str)))
    return closest(word, pool, meanings={c: MEANINGS[c] for c in pool if c in MEANINGS} or None)


def suggest(word: str, candidates: Iterable[str], *, list_all: bool = True) -> str:
    """A hint to append to a message about an unknown name: the one "did you mean" of the lab.

    Returns ``"; did you mean 'x'?"`` for the closest candidate (:func:`closest`), else
    ``"; expected one of: a, b, c"`` when there are few candidates (<= 12) and ``list_all``,
    else ``""``.
    """
    pool = list(dict.fromkeys(c for c in candidates if isinstance(c, str)))
    known = {c: MEANINGS[c] for c in pool if c in MEANINGS} or None
    near = nearest(word, pool)
    if near is not None:
        others = [c for c in by_meaning(word, pool, known or {}) if c != near][:3]
        also = f" (or: {', '.join(printable(c, 80) for c in others)})" if others else ""
        return f"; did you mean '{printable(near, 80)}'?{also}"
    if list_all and pool and len(pool) <= LIST_ALL_LIMIT:
        return "; expected one of: " + ", ".join(printable(c, 80) for c in pool)
    return ""


def printable(text: object, limit: int = QUOTE_LIMIT) -> str:
    """User text made safe to quote inside a one-line message: escaped and shortened.

    Every name or value a message echoes from a user's file goes through here, so a message stays on one
    line (a line break is shown as ``\\n``) and short (a 900,000-character name is cut to ``limit``)."""
    text = str(text)
    if len(text) > 4 * limit:  # escaping can only lengthen: never escape more than will be shown
        text = text[: 4 * limit]
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _one_line(text: str) -> str:
    """A whole message on one line: control characters escaped (a last guard; quote user text with printable)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def name_problem(name: str, what: str = "a name") -> str | None:
    """What is wrong with a user-chosen name (empty, too long, a line break or a control character), or None.

    The one rule for every name the lab keeps (ledgers, credit lines, tiers, categories, segments, policies,
    rules, scenarios, batches): they appear in one-line messages, table headings and file names."""
    if not name.strip():
        return f"{what} cannot be empty or blank; give it a short name (letters, digits and _)"
    if len(name) > MAX_NAME:
        return f"{what} '{printable(name)}' is {len(name):,} characters long; names are at most {MAX_NAME}"
    if not name.isprintable():
        return f"{what} '{printable(name)}' holds a line break or a control character; use letters, digits and _"
    if name != name.strip():
        return f"{what} '{printable(name)}' starts or ends with a space; remove it"
    return None


def name_problems(names: Iterable[str], what: str) -> Iterator[tuple[str, str]]:
    """(name, problem) for each of ``names`` that :func:`name_problem` refuses."""
    for n in names:
        problem = name_problem(n, what)
        if problem is not None:
            yield n, problem


def shown(diagnostics: Iterable[Diagnostic], limit: int = MAX_SHOWN) -> list[str]:
    """The lines a command prints for ``diagnostics``: at most ``limit``, then one line counting the rest."""
    items = list(diagnostics)
    lines = [str(d) for d in items[:limit]]
    rest = len(items) - limit
    if rest > 0:
        lines.append(f"lab: {rest:,} more problem{'s' if rest != 1 else ''} not shown (fix the first ones and run "
                     "again)")
    return lines
