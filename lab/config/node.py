"""A YAML value with its source position: the tree the YAML reader builds and every later stage points into.

A :class:`Node` remembers the line and column of its value and, for scalars, the raw source
text, so that a mistake found much later (an unknown field, an error at character 17 of an
expression inside a folded block scalar) can still be reported as ``FILE:LINE:COL``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["BREAK", "Node", "STR"]

#: The tag of text, every scalar's tag unless resolved otherwise.
STR = "tag:yaml.org,2002:str"
#: YAML line breaks, as PyYAML counts lines.
BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_VALUE_BREAK = re.compile("[\n\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class Node:
    """One YAML value with its 1-based source position.

    ``kind`` is ``"map"`` (value: tuple of (key Node, value Node) pairs, in file order),
    ``"seq"`` (value: tuple of Nodes) or ``"scalar"`` (value: str, int, float, bool or None).
    ``tag`` is the resolved YAML tag; ``style`` is the scalar quoting style (None for plain,
    ``"'"``, ``'"'``, ``"|"``, ``">"``) or ``"flow"``/``"block"`` for collections.
    Nodes reached through an alias are shared, so the tree is really a DAG; never mutate it.
    """

    kind: Literal["map", "seq", "scalar"]
    value: Any
    line: int
    col: int
    tag: str = STR
    style: str | None = None
    # Source text of a scalar starting at its first character (quote/indicator included),
    # kept so that offsets inside the value can be mapped back to the file.
    raw: str | None = field(default=None, repr=False, compare=False)

    def get(self, key: str) -> Node | None:
        """The value node for ``key`` in a mapping node (None if absent or not a mapping)."""
        if self.kind != "map":
            return None
        for k, v in self.value:
            if k.value == key:
                return v
        return None

    def to_python(self) -> Any:
        """Plain Python data (dict/list/scalars) for this node; positions are dropped."""
        if self.kind == "map":
            return {k.value: v.to_python() for k, v in self.value}
        if self.kind == "seq":
            return [v.to_python() for v in self.value]
        return self.value

    def position_of(self, offset: int) -> tuple[int, int]:
        """File (line, col) of character ``offset`` inside this scalar's text value.

        Exact for plain and quoted single-line scalars and for literal blocks (``|``); for
        folded blocks and multi-line flow scalars, whose text is re-flowed by YAML, the
        characters are aligned with the source in order, which is exact for every
        non-blank character that is not an escape sequence.
        """
        offset = max(0, offset)
        raw = self.raw
        if self.kind != "scalar" or raw is None or not isinstance(self.value, str):
            return (self.line, self.col + offset)
        value: str = self.value
        offset = min(offset, len(value))
        single_line = BREAK.search(raw.rstrip("\r\n\x85\u2028\u2029")) is None
        if self.style is None and single_line:
            return (self.line, self.col + offset)
        if self.style in ("'", '"'):
            return self._raw_position(1 + _align(value, raw[1:], offset))
        if self.style in ("|", ">"):
            header = BREAK.search(raw)
            if header is None:  # block scalar with no content lines
                return (self.line, self.col + len(raw))
            start = header.end()
            if self.style == "|":
                return self._literal_position(value, raw, start, offset)
            return self._raw_position(start + _align(value, raw[start:], offset))
        return self._raw_position(_align(value, raw, offset))

    def _raw_position(self, index: int) -> tuple[int, int]:
        raw = self.raw or ""
        last = None
        count = 0
        for m in BREAK.finditer(raw, 0, index):
            last = m
            count += 1
        if last is None:
            return (self.line, self.col + index)
        return (self.line + count, index - last.end() + 1)

    def _literal_position(self, value: str, raw: str, start: int, offset: int) -> tuple[int, int]:
        src_lines = BREAK.split(raw[start:])
        val_lines = _VALUE_BREAK.split(value)
        k = len(_VALUE_BREAK.findall(value, 0, offset))
        line_start = 0
        for m in _VALUE_BREAK.finditer(value, 0, offset):
            line_start = m.end()
        indent = 0
        for s, v in zip(src_lines, val_lines):
            if v:
                indent = len(s) - len(v)
                break
        return (self.line + 1 + k, indent + (offset - line_start) + 1)


def _align(value: str, src: str, offset: int) -> int:
    """Index in ``src`` of ``value[offset]``, matching non-blank characters in order."""
    p = 0
    n = len(src)
    for ch in value[:offset]:
        if ch.isspace():
            if p < n and src[p] == ch:
                p += 1
            continue
        q = src.find(ch, p)
        if q >= 0:
            p = q + 1
    if offset < len(value) and not value[offset].isspace():
        q = src.find(value[offset], p)
        if q >= 0:
            return q
    return p

