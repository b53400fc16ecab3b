"""Configuration declarations: fields with documentation and bounds, expressions that remember
their position, and the shapes the builder and the JSON Schema read from the dataclasses.

Domain configuration (policies, scenarios, batch specs) is declared once, as frozen
dataclasses whose fields use :func:`option`; :mod:`lab.config.build` checks YAML against
those declarations and :mod:`lab.config.jsonschema` turns them into a schema, both through
the cached shape analysis here (:func:`class_info`), so the two can never disagree.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Literal, Union
from collections.abc import Iterable, Mapping

from lab.config.messages import number_text
from lab.config.yamlio import Node
from lab.errors import Diagnostic

__all__ = ["Expr", "FieldMeta", "Shape", "class_info", "option", "yaml_name"]

_META_KEY = "lab.config"

# ---------------------------------------------------------------------------------------------
# Declarations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldMeta:
    """What :func:`option` attaches to a field: documentation, numeric bounds and a kind name."""

    doc: str
    min: float | None = None
    max: float | None = None
    gt: float | None = None
    lt: float | None = None
    kind: str | None = None
    examples: tuple[Any, ...] | None = None

    def bounds_text(self) -> str:
        """The bounds as readable text, e.g. ``">= 0 and < 1"`` (empty if unbounded)."""
        parts = []
        for op, v in ((">=", self.min), (">", self.gt), ("<=", self.max), ("<", self.lt)):
            if v is not None:
                parts.append(f"{op} {number_text(v)}")
        return " and ".join(parts)

    def violates(self, v: float) -> bool:
        """Whether the number ``v`` lies outside the bounds."""
        return ((self.min is not None and not v >= self.min)
                or (self.max is not None and not v <= self.max)
                or (self.gt is not None and not v > self.gt)
                or (self.lt is not None and not v < self.lt))


_NO_META = FieldMeta("")


def option(doc: str, *, default: Any = MISSING, default_factory: Any = MISSING,
           min: float | None = None, max: float | None = None,
           gt: float | None = None, lt: float | None = None,
           kind: str | None = None, examples: Iterable[Any] | None = None) -> Any:
    """Declare a configuration field (a ``dataclasses.field`` carrying :class:`FieldMeta`).

    ``doc`` becomes the JSON Schema description; ``min``/``max``/``gt``/``lt`` bound every
    number inside the field; ``kind`` names what the value is in messages ("action",
    "ledger", ...).  Without ``default``/``default_factory`` the key is required.
    The return type is ``Any`` so that ``x: int = option(...)`` type-checks.
    """
    meta = FieldMeta(doc, min, max, gt, lt, kind,
                     tuple(examples) if examples is not None else None)
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={_META_KEY: meta})


def yaml_name(python_name: str) -> str:
    """The YAML key for a Python field name: one trailing underscore is dropped (``if_``)."""
    return python_name[:-1] if python_name.endswith("_") and len(python_name) > 1 else python_name


class Expr(str):
    """Expression text from a configuration file that remembers where it was written.

    The domain loader compiles expressions; when it finds a mistake at character ``offset``
    it calls :meth:`position` (or :meth:`diagnostic`) to point at the exact file position,
    even inside quoted or block (``|``/``>``) scalars.  Compares and hashes like ``str``.
    """

    file: str
    line: int
    col: int

    def __new__(cls, text: str = "", *, file: str = "<expr>", line: int = 1, col: int = 1,
                node: Node | None = None) -> Expr:
        self = super().__new__(cls, text)
        d = self.__dict__
        d["file"] = file
        d["line"] = node.line if node is not None else line
        d["col"] = node.col if node is not None else col
        d["_node"] = node
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Expr is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Expr is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_expr, (str(self), self.file, self.line, self.col, self.__dict__["_node"]))

    def __repr__(self) -> str:
        return f"Expr({str(self)!r})"

    def position(self, offset: int = 0) -> tuple[int, int]:
        """File (line, col) of character ``offset`` of this expression's text."""
        node: Node | None = self.__dict__["_node"]
        if node is not None and node.kind == "scalar" and isinstance(node.value, str):
            return node.position_of(offset)
        return (self.line, self.col + max(0, offset))

    def diagnostic(self, message: str, offset: int = 0) -> Diagnostic:
        """A diagnostic pointing at character ``offset`` of this expression."""
        line, col = self.position(offset)
        return Diagnostic(self.file, line, col, message)


def _restore_expr(text: str, file: str, line: int, col: int, node: Node | None) -> Expr:
    return Expr(text, file=file, line=line, col=col, node=node)


# ---------------------------------------------------------------------------------------------
# Type analysis (cached per class)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prim:
    name: str  # "int" | "float" | "bool" | "str" | "expr"


@dataclass(frozen=True)
class _Lit:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class _Opt:
    inner: Any


@dataclass(frozen=True)
class _Seq:
    item: Any


@dataclass(frozen=True)
class _Fixed:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class _Dict:
    value: Any


@dataclass(frozen=True)
class _Obj:
    cls: type


@dataclass(frozen=True)
class _Union:
    members: tuple[tuple[str, type], ...]

    def lookup(self, tag: str) -> type | None:
        for t, c in self.members:
            if t == tag:
                return c
        return None


Shape = _Prim | _Lit | _Opt | _Seq | _Fixed | _Dict | _Obj | _Union


@dataclass(frozen=True)
class _Field:
    name: str
    yaml: str
    shape: Shape
    required: bool
    default: Any
    default_factory: Any
    meta: FieldMeta


@dataclass(frozen=True)
class _ClassInfo:
    cls: type
    fields: tuple[_Field, ...]
    by_yaml: Mapping[str, _Field]


_INFO: dict[type, _ClassInfo] = {}


def class_info(cls: type) -> _ClassInfo:
    info = _INFO.get(cls)
    if info is not None:
        return info
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{cls!r} is not a dataclass")
    try:
        hints = typing.get_type_hints(cls)
    except Exception as e:  # unresolvable forward reference: a bug in the declaration
        raise TypeError(f"cannot resolve the field types of {cls.__name__}: {e}") from e
    fields = []
    by_yaml: dict[str, _Field] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        meta = f.metadata.get(_META_KEY, _NO_META)
        shape = _shape(hints[f.name], f"{cls.__name__}.{f.name}")
        fi = _Field(f.name, yaml_name(f.name), shape,
                    f.default is MISSING and f.default_factory is MISSING,
                    f.default, f.default_factory, meta)
        if fi.yaml in by_yaml:
            raise TypeError(f"{cls.__name__}: fields '{by_yaml[fi.yaml].name}' and '{f.name}' "
                            f"both map to the YAML key '{fi.yaml}'")
        by_yaml[fi.yaml] = fi
        fields.append(fi)
    info = _ClassInfo(cls, tuple(fields), by_yaml)
    _INFO[cls] = info
    return info


def _shape(tp: Any, where: str) -> Shape:
    if isinstance(tp, type) and issubclass(tp, Expr):
        return _Prim("expr")
    if tp in (int, float, bool, str):
        return _Prim(tp.__name__)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        if not all(isinstance(a, (str, int, bool)) for a in args):
            raise TypeError(f"{where}: Literal values must be str, int or bool")
        return _Lit(args)
    if origin is Union or origin is types.UnionType:
        rest = [a for a in args if a is not type(None)]
        inner = _shape(rest[0], where) if len(rest) == 1 else _union(rest, where)
        return _Opt(inner) if len(rest) < len(args) else inner
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _Seq(_shape(args[0], where))
        if args and Ellipsis not in args:
            return _Fixed(tuple(_shape(a, where) for a in args))
    if origin is dict and len(args) == 2 and args[0] is str:
        return _Dict(_shape(args[1], where))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _Obj(tp)
    raise TypeError(f"{where}: unsupported configuration field type {tp!r}")


def _union(members: list[Any], where: str) -> _Union:
    tags: list[tuple[str, type]] = []
    for m in members:
        tag = getattr(m, "tag", None)
        if not (isinstance(m, type) and dataclasses.is_dataclass(m) and isinstance(tag, str)):
            raise TypeError(f"{where}: every member of a union must be a dataclass with "
                            f"'tag: ClassVar[str]' ({m!r} is not)")
        if any(t == tag for t, _ in tags):
            raise TypeError(f"{where}: two union members use the tag '{tag}'")
        tags.append((tag, m))
    return _Union(tuple(tags))


def _all_optional(cls: type) -> bool:
    return not any(f.required for f in class_info(cls).fields)


def _human(name: str) -> str:
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", name)
    return " ".join(w.lower() for w in words) or name

