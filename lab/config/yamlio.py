"""Positioned, hardened YAML reading for hand-written (possibly hostile) configuration files.

PyYAML's safe parser produces an event stream; this module composes the events itself into a
small immutable :class:`Node` tree that remembers where every value came from, so that later
stages can report ``FILE:LINE:COL`` for any mistake, even one inside an expression string.

Composing from events (instead of ``yaml.compose``) lets every limit be enforced *while*
reading: the nesting depth, the number of nodes after expanding aliases (billion laughs), and
recursive aliases are refused before any work is wasted.  Every problem becomes a
:class:`~lab.errors.LabError`; no PyYAML exception escapes.

Scalar resolution follows YAML 1.1 as PyYAML's SafeLoader does, with three deliberate
exceptions that remove classic foot-guns:

* only ``true``/``false`` are booleans; ``yes``/``no``/``on``/``off`` stay text (the
  "Norway problem");
* base-60 numbers (``1:30``) stay text;
* timestamps (``2024-01-31``) stay text.

The module runs past 500 lines because reading untrusted YAML safely is one job:
the size, depth, alias and node limits, the positions every later message needs,
and the duplicate-key and tag checks all act in one pass of the parser.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any
from collections.abc import Iterator

import yaml
import yaml.constructor
import yaml.nodes
import yaml.resolver

from lab.config.node import BREAK as _BREAK
from lab.config.node import STR, Node
from lab.errors import LIST_ALL_LIMIT, Diagnostic, Diagnostics, LabError, TooMany, nearest, printable

__all__ = [
    "Node",
    "parse_yaml",
    "read_yaml",
    "MAX_FILE_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "sibling_hint",
]

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000

_TAG = "tag:yaml.org,2002:"
INT, FLOAT, BOOL, NULL, MAP, SEQ, MERGE = (
    _TAG + t for t in ("int", "float", "bool", "null", "map", "seq", "merge")
)
_SCALAR_TAGS = frozenset({STR, INT, FLOAT, BOOL, NULL, MERGE})

# The characters YAML refuses outright.
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)

# PyYAML with libyaml is ~20x faster; both produce identical events and marks for valid input.
USE_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))


# ---------------------------------------------------------------------------------------------
# Scalar resolution
# ---------------------------------------------------------------------------------------------


class _Resolver(yaml.resolver.BaseResolver):
    """SafeLoader's implicit resolvers minus yes/no/on/off booleans, timestamps and '='."""


_KEEP = {INT, FLOAT, NULL, MERGE}
for _first, _rules in yaml.resolver.Resolver.yaml_implicit_resolvers.items():
    for _tag, _regexp in _rules:
        if _tag in _KEEP:
            _Resolver.add_implicit_resolver(_tag, _regexp, [_first])
_Resolver.add_implicit_resolver(
    BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
del _first, _rules, _tag, _regexp

_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_CONSTRUCT = {
    INT: _CONSTRUCTOR.construct_yaml_int,
    FLOAT: _CONSTRUCTOR.construct_yaml_float,
    BOOL: _CONSTRUCTOR.construct_yaml_bool,
}


class _PyEvents(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _Resolver):
    def __init__(self, text: str):
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _Resolver.__init__(self)


if USE_LIBYAML:

    class _CEvents(yaml.cyaml.CParser, _Resolver):
        def __init__(self, text: str):
            yaml.cyaml.CParser.__init__(self, text)
            _Resolver.__init__(self)


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


# ---------------------------------------------------------------------------------------------
# Composer
# ---------------------------------------------------------------------------------------------


class _Fatal(Exception):
    def __init__(self, line: int, col: int, message: str, code: str = "yaml-syntax",
                 path: tuple[str | int, ...] = ()):
        self.line, self.col, self.message, self.code, self.path = line, col, message, code, path


@dataclass
class _Frame:
    kind: str
    line: int
    col: int
    tag: str
    style: str
    anchor: str | None
    items: list[Node] = field(default_factory=list)
    size: int = 1
    height: int = 1


#: A cap on the length of the list at one YAML path: (most items, what to say when the list is longer).
Longest = Mapping[tuple[str | int, ...], tuple[int, str]]


class _Composer:
    def __init__(self, text: str, file: str, resolver: yaml.resolver.BaseResolver, longest: Longest | None = None):
        self.longest = dict(longest or {})
        self.text = text
        self.file = file
        self.resolver = resolver
        self.diags = Diagnostics(file)
        self.anchors: dict[str, tuple[Node, int, int] | None] = {}  # None = still open
        self.stack: list[_Frame] = []
        self.total = 0
        self.aliased = False  # whether any alias has been expanded yet
        self.root: Node | None = None
        self.documents = 0
        self._resolved: dict[tuple[str, Any], str] = {}  # plain scalar text -> its resolved tag

    def warn(self, line: int, col: int, code: str, message: str, path: tuple[str | int, ...] | None = None) -> None:
        """Record a problem that does not stop the reading (at the path of the value being composed by default)."""
        self.diags.add(line, col, code, message, self.path() if path is None else path)

    def path(self, frames: list[_Frame] | None = None) -> tuple[str | int, ...]:
        """The YAML path of the value being composed now, e.g. ("rules", 2, "do")."""
        out: list[str | int] = []
        for fr in self.stack if frames is None else frames:
            if fr.kind == "seq":
                out.append(len(fr.items))
            elif len(fr.items) % 2:  # inside a value: its key is the last item
                key = fr.items[-1].value
                out.append(key if isinstance(key, str) else str(key))
            else:  # inside a key
                break
        return tuple(out)

    def compose(self, events: Iterator[yaml.Event]) -> Node | None:
        for ev in events:
            if isinstance(ev, yaml.DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise _Fatal(*_pos(ev.start_mark),
                                 "expected a single YAML document, but a second one starts "
                                 "here; remove the '---' line or split the file")
            elif isinstance(ev, yaml.ScalarEvent):
                self.scalar(ev)
            elif isinstance(ev, yaml.AliasEvent):
                self.alias(ev)
            elif isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                self.start(ev)
            elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                self.end()
        return self.root

    # -- counting and limits --------------------------------------------------------------

    def count(self, n: int, mark: yaml.Mark) -> None:
        self.total += n
        if self.total > MAX_NODES:
            if self.aliased:
                raise _Fatal(*_pos(mark),
                             "too many YAML nodes after expanding aliases (billion-laughs "
                             f"protection; the limit is {MAX_NODES:,})", "yaml-limit", self.path())
            raise _Fatal(*_pos(mark), f"too many YAML nodes (the limit is {MAX_NODES:,}); "
                                      "split the file", "yaml-limit", self.path())

    def check_depth(self, height: int, mark: yaml.Mark) -> None:
        if len(self.stack) + height > MAX_DEPTH:
            raise _Fatal(*_pos(mark),
                         f"the data is nested more than {MAX_DEPTH} levels deep; "
                         "flatten the structure", "yaml-limit", self.path())

    def add(self, node: Node, size: int, height: int) -> None:
        if self.stack:
            top = self.stack[-1]
            if self.longest and top.kind == "seq":
                self.check_length(top, node)
            top.items.append(node)
            top.size += size
            top.height = max(top.height, height + 1)
        else:
            self.root = node

    def check_length(self, top: _Frame, node: Node) -> None:
        """Stop reading at the first item past a list's cap (e.g. a policy's rules), before composing the rest."""
        n = len(top.items)
        if all(n != most for most, _ in self.longest.values()):
            return
        at = self.path(self.stack[:-1])
        cap = self.longest.get(at)
        if cap is not None and n == cap[0]:
            raise _Fatal(node.line, node.col, cap[1], "yaml-limit", at + (n,))

    def register(self, anchor: str | None, node: Node, size: int, height: int) -> None:
        if anchor is not None:
            self.anchors[anchor] = (node, size, height)

    # -- events -----------------------------------------------------------------------------

    def scalar(self, ev: yaml.ScalarEvent) -> None:
        if ev.tag is None and ev.anchor is None:  # the common case, kept cheap: reading time is per node
            self.plain_scalar(ev)
            return
        self.count(1, ev.start_mark)
        start = ev.start_mark.index
        if start < len(self.text) and self.text[start] in "&!":  # anchor/tag before the text
            start = _skip_properties(self.text, start, ev.end_mark.index)
            line, col = _index_position(self.text, ev.start_mark, start)
        else:
            line, col = _pos(ev.start_mark)
        style = ev.style or None
        tag_line, tag_col = _pos(ev.start_mark)  # properties (anchor, tag) start here
        tag = ev.tag
        value: Any = ev.value
        if tag is None or tag == "!":
            tag = self.resolve(yaml.ScalarNode, ev.value, ev.implicit)
            if tag in (INT, FLOAT) and ":" in ev.value:  # YAML 1.1 base-60 numbers
                tag = STR
        elif tag in (MAP, SEQ):
            self.warn(tag_line, tag_col, "yaml-tag", f"the tag {_short_tag(tag)} cannot be used on a single "
                                         "value; remove the tag")
            tag = STR
        elif tag not in _SCALAR_TAGS:
            self.warn(tag_line, tag_col, "yaml-tag", _bad_tag(tag))
            tag = STR
        if tag in _CONSTRUCT:
            try:
                value = _CONSTRUCT[tag](yaml.ScalarNode(tag, ev.value))
            except Exception:  # PyYAML raises ValueError/KeyError/... for junk under !!int etc.
                shown = printable(ev.value)
                if ev.tag in (None, "!"):  # e.g. an integer too long for Python to convert
                    self.warn(line, col, "type", f"cannot read the number '{shown}'; put it in quotes "
                                         "if it is text")
                else:
                    self.warn(line, col, "yaml-tag", f"invalid {_short_tag(tag)} value '{shown}'; "
                                         "remove the tag or fix the value")
                tag, value = STR, ev.value
        elif tag == NULL:
            value = None
        raw = self.text[start:ev.end_mark.index]
        node = Node("scalar", value, line, col, tag, style, raw)
        self.register(ev.anchor, node, 1, 0)
        self.add(node, 1, 0)

    def plain_scalar(self, ev: yaml.ScalarEvent) -> None:
        """A scalar without tag or anchor: what `scalar` does for one, with its resolution cached by text."""
        self.total += 1
        if self.total > MAX_NODES:
            self.count(0, ev.start_mark)
        mark = ev.start_mark
        text = ev.value
        key = (text, ev.implicit)
        tag = self._resolved.get(key)
        if tag is None:
            tag = self.resolve(yaml.ScalarNode, text, ev.implicit)
            if tag in (INT, FLOAT) and ":" in text:  # YAML 1.1 base-60 numbers
                tag = STR
            self._resolved[key] = tag
        value: Any = text
        if tag in _CONSTRUCT:
            try:
                value = _CONSTRUCT[tag](yaml.ScalarNode(tag, text))
            except Exception:  # e.g. an integer too long for Python to convert
                self.warn(mark.line + 1, mark.column + 1, "type", f"cannot read the number '{printable(text)}'; "
                          "put it in quotes if it is text")
                tag, value = STR, text
        elif tag == NULL:
            value = None
        node = Node("scalar", value, mark.line + 1, mark.column + 1, tag, ev.style or None,
                    self.text[mark.index:ev.end_mark.index])
        if self.stack:
            top = self.stack[-1]
            top.items.append(node)
            top.size += 1
            if top.height < 1:
                top.height = 1
        else:
            self.root = node

    def resolve(self, kind: type, value: str | None, implicit: Any) -> str:
        return self.resolver.resolve(kind, value, implicit)

    def alias(self, ev: yaml.AliasEvent) -> None:
        line, col = _pos(ev.start_mark)
        if ev.anchor not in self.anchors:
            name = printable(ev.anchor)
            raise _Fatal(line, col, f"undefined alias '*{name}'; define it first with '&{name}'", "yaml-alias",
                         self.path())
        entry = self.anchors[ev.anchor]
        if entry is None:
            raise _Fatal(line, col, f"recursive alias '*{printable(ev.anchor)}' refers to a value that "
                                    "contains it", "yaml-alias", self.path())
        node, size, height = entry
        self.aliased = True
        self.count(size, ev.start_mark)
        self.check_depth(height, ev.start_mark)
        if node.kind != "scalar":  # report problems with the whole value at the alias
            node = Node(node.kind, node.value, line, col, node.tag, node.style)
        self.add(node, size, height)

    def start(self, ev: yaml.CollectionStartEvent) -> None:
        kind = "map" if isinstance(ev, yaml.MappingStartEvent) else "seq"
        line, col = _pos(ev.start_mark)
        self.check_depth(1, ev.start_mark)
        self.count(1, ev.start_mark)
        want = MAP if kind == "map" else SEQ
        tag = ev.tag
        if tag not in (None, "!", want):
            if tag in (MAP, SEQ) or tag in _SCALAR_TAGS:
                what = "a mapping" if kind == "map" else "a list"
                self.warn(line, col, "yaml-tag", f"the tag {_short_tag(tag)} cannot be used on {what}; "
                                     "remove the tag")
            else:
                self.warn(line, col, "yaml-tag", _bad_tag(tag))
        if ev.anchor is not None:
            self.anchors[ev.anchor] = None
        style = "flow" if ev.flow_style else "block"
        self.stack.append(_Frame(kind, line, col, want, style, ev.anchor))

    def end(self) -> None:
        fr = self.stack.pop()
        if fr.kind == "seq":
            node = Node("seq", tuple(fr.items), fr.line, fr.col, fr.tag, fr.style)
        else:
            node = Node("map", self.mapping_pairs(fr.items), fr.line, fr.col, fr.tag, fr.style)
        self.register(fr.anchor, node, fr.size, fr.height)
        self.add(node, fr.size, fr.height)

    def mapping_pairs(self, items: list[Node]) -> tuple[tuple[Node, Node], ...]:
        here = self.path()  # the stack holds the mapping's parents: this is the mapping's own path
        explicit: dict[str, tuple[Node, Node]] = {}
        merged: dict[str, tuple[Node, Node]] = {}
        for key, val in zip(items[0::2], items[1::2]):
            if key.kind == "scalar" and key.tag == MERGE:
                self.merge_into(merged, val, here + ("<<",))
                continue
            if key.kind != "scalar" or not isinstance(key.value, str):
                self.warn(key.line, key.col, "key-type", _non_string_key(key), here)
                continue
            first = explicit.get(key.value)
            if first is not None:
                self.warn(key.line, key.col, "duplicate-key", f"duplicate key '{printable(key.value)}' (first "
                                                              f"defined at line {first[0].line})", here + (key.value,))
                continue
            explicit[key.value] = (key, val)
        pairs = [p for k, p in merged.items() if k not in explicit]
        pairs.extend(explicit.values())
        return tuple(pairs)

    def merge_into(self, merged: dict[str, tuple[Node, Node]], val: Node, path: tuple[str | int, ...]) -> None:
        sources = val.value if val.kind == "seq" else (val,)
        for src in sources:
            if src.kind != "map":
                self.warn(src.line, src.col, "yaml-tag", "a merge key '<<' needs a mapping or a list of "
                                                         "mappings (usually an alias like *defaults)", path)
                continue
            for k, v in src.value:
                merged.setdefault(k.value, (k, v))


def _pos(mark: yaml.Mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _index_position(text: str, mark: yaml.Mark, index: int) -> tuple[int, int]:
    """1-based line/col of ``index``, counted from a mark known to lie at or before it."""
    line, col = mark.line + 1, mark.column + 1
    last = None
    for m in _BREAK.finditer(text, mark.index, index):
        last = m
        line += 1
    if last is None:
        return (line, col + index - mark.index)
    return (line, index - last.end() + 1)


_PROPERTY = re.compile(r"(?:[&!][^\s]*|#[^\r\n\x85\u2028\u2029]*|\s+)")


def _skip_properties(text: str, start: int, end: int) -> int:
    """Index of a scalar's own text after its anchor/tag properties (``&a !!str value``)."""
    i = start
    while i < end:
        m = _PROPERTY.match(text, i, end)
        if m is None or m.end() == i:
            break
        if text[i] == "#" and i > start and not text[i - 1].isspace():
            break
        i = m.end()
    return min(i, end)


def _bad_tag(tag: str) -> str:
    return (f"unsupported YAML tag '{printable(_short_tag(tag))}'; only the standard tags !!str, !!int, "
            "!!float, !!bool, !!null, !!map and !!seq are allowed; remove the tag")


def _non_string_key(key: Node) -> str:
    if key.kind == "map":
        got = "a mapping"
    elif key.kind == "seq":
        got = "a list"
    elif key.value is None:
        got = "an empty key (null)"
    elif isinstance(key.value, bool):
        got = "true" if key.value else "false"
    else:
        got = f"the number {key.value}"
    hint = ""
    if key.kind == "scalar" and key.raw:
        hint = f"; put it in quotes (\"{printable(key.raw.strip())}\") to use it as a name"
    return f"keys must be strings, got {got}{hint}"


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def _line_col_of_index(text: str, index: int) -> tuple[int, int]:
    line, last_end = 1, 0
    for m in _BREAK.finditer(text, 0, index):
        line += 1
        last_end = m.end()
    return (line, index - last_end + 1)


def _listed(diags: Diagnostics) -> LabError:
    """The LabError of the reader's diagnostics in file order, the "stopped after" note (if any) last."""
    items = list(diags)
    return LabError(sorted((d for d in items if d.code != "too-many"), key=_order)
                    + [d for d in items if d.code == "too-many"])


def parse_yaml(text: str, file: str, longest: Longest | None = None) -> Node:
    """Parse one YAML document into a positioned :class:`Node` tree.

    Raises :class:`LabError` (never anything else) for malformed YAML, duplicate or
    non-string keys, unsupported tags, alias bombs, excessive nesting or size, and empty input.
    `longest` caps the length of lists at given paths (e.g. {("rules",): (64, "at most 64 rules ...")}): the
    reading stops at the first item past the cap, so a file of thousands of items is refused without reading them.
    """
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise LabError.at(file, 1, 1, _too_large(len(text.encode("utf-8", "surrogatepass"))), "yaml-limit")
    if text.startswith("\ufeff"):
        text = text[1:]
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:
        line, col = _line_col_of_index(text, bad.start())
        raise LabError.at(file, line, col,
                          f"the character U+{ord(bad.group()):04X} is not allowed in YAML; "
                          "remove it", "file")
    loader: Any = _CEvents(text) if USE_LIBYAML else _PyEvents(text)
    composer = _Composer(text, file, loader, longest)

    def events() -> Iterator[yaml.Event]:
        while loader.check_event():
            yield loader.get_event()

    try:
        root = composer.compose(events())
    except TooMany:
        raise _listed(composer.diags) from None
    except _Fatal as f:
        try:
            composer.diags.add(f.line, f.col, f.code, f.message, f.path)
        except TooMany:
            pass
        raise _listed(composer.diags) from None
    except yaml.MarkedYAMLError as e:
        if "maximum nesting depth" in str(e.problem):  # libyaml's own cap (1,000 levels), met before ours is seen
            line, col = _pos(e.problem_mark) if e.problem_mark is not None else (1, 1)
            raise LabError.at(file, line, col, f"the data is nested more than {MAX_DEPTH} levels deep; "
                              "flatten the structure", "yaml-limit") from None
        composer.diags.extend([_malformed(e, text, file)])
        raise _listed(composer.diags) from None
    except yaml.reader.ReaderError as e:
        line, col = _line_col_of_index(text, min(e.position, len(text)))
        raise LabError.at(file, line, col, f"unreadable YAML: {e.reason}", "file") from None
    except yaml.YAMLError as e:
        raise LabError.at(file, 1, 1, f"malformed YAML: {e}", "yaml-syntax") from None
    finally:
        dispose = getattr(loader, "dispose", None)
        if dispose is not None:
            dispose()
    if composer.diags:
        raise _listed(composer.diags)
    if root is None or (root.kind == "scalar" and root.value is None and not root.raw):
        raise LabError.at(file, 1, 1, "the file is empty; expected a mapping", "file")
    if root.kind == "scalar" and root.value is None:
        raise LabError.at(file, root.line, root.col,
                          "the document is just null; expected a mapping", "type")
    return root


def _order(d: Diagnostic) -> tuple[int, int, str]:
    return (d.line, d.col, d.message)


def _too_large(nbytes: int) -> str:
    return (f"the file is too large ({nbytes / (1 << 20):.1f} MiB); the limit is "
            f"{MAX_FILE_BYTES >> 20} MiB")


def _malformed(e: yaml.MarkedYAMLError, text: str, file: str) -> Diagnostic:
    mark = e.problem_mark or e.context_mark
    line, col = _pos(mark) if mark is not None else (1, 1)
    problem = (e.problem or e.context or "cannot parse").replace(" in this context", " here")
    message = f"malformed YAML: {problem}"
    if e.context and e.problem and e.context_mark is not None and mark is not None:
        cl, cc = _pos(e.context_mark)
        if (cl, cc) != (line, col):
            message += f" ({e.context} started at line {cl}, column {cc})"
    if "mapping values are not allowed" in problem:
        message += "; if this is text containing ': ', put the whole text in quotes"
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        message += "; tabs cannot be used for indentation, use spaces"
    return Diagnostic(file, line, col, message, "yaml-syntax")


def read_yaml(path: str | os.PathLike[str], longest: Longest | None = None) -> Node:
    """Read and parse a UTF-8 YAML file; diagnostics name the file exactly as ``path`` is given (`longest`: see
    :func:`parse_yaml`)."""
    file = os.fspath(path)
    try:
        with open(file, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        reason = e.strerror or str(e)
        raise LabError.at(file, 1, 1, f"cannot read the file: {reason}{sibling_hint(file)}", "file") \
            from None
    if len(data) > MAX_FILE_BYTES:
        try:
            size = os.path.getsize(file)
        except OSError:
            size = len(data)
        raise LabError.at(file, 1, 1, _too_large(size), "yaml-limit")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise LabError.at(file, 1, 1,
                          f"the file is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line} "
                          "cannot be decoded); save it as UTF-8", "file") from None
    return parse_yaml(text, file, longest)


def sibling_hint(file: str) -> str:
    """The YAML file beside a missing one whose name is close to its name, compared without the extension that
    every candidate shares (which would make 'nope.yaml' look like 'grocer.yaml'), one with the extension given
    preferred; else the few files there are; appended to a 'no such file' message."""
    folder, name = os.path.split(file)
    try:
        siblings = sorted(n for n in os.listdir(folder or ".") if n.endswith((".yaml", ".yml")))
    except OSError:
        return ""
    stem, ext = os.path.splitext(name)
    by_stem: dict[str, str] = {}
    for n in sorted(siblings, key=lambda n: os.path.splitext(n)[1] == ext):  # the extension given wins a tie
        by_stem[os.path.splitext(n)[0]] = n
    near = nearest(stem, by_stem)
    if near is not None:
        return f"; did you mean '{printable(by_stem[near], 80)}'?"
    where = printable(folder or ".", 120)
    if len(siblings) == 1:
        return f"; the only YAML file in {where} is {printable(siblings[0], 80)}"
    if siblings and len(siblings) <= LIST_ALL_LIMIT:
        return f"; the YAML files in {where} are: {', '.join(printable(n, 80) for n in siblings)}"
    return ""
