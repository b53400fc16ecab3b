"""Turn a positioned YAML tree into frozen dataclasses, checking it like a compiler would.

Domain configuration (policies, scenarios, batch specs) is declared once, as frozen
dataclasses whose fields use :func:`option` for documentation, bounds and naming.  From those
declarations :func:`build` type-checks a user's YAML, reports *every* problem with its
``FILE:LINE:COL`` (never a traceback), and returns the dataclass instance together with a
:class:`SourceMap` so that later, cross-referencing checks can also point into the file.
The JSON Schema for editors (:mod:`lab.config.jsonschema`) is generated from the same
declarations, so the two can never disagree.

Supported field types: ``int``, ``float`` (ints accepted), ``bool`` (only true/false), ``str``,
``Literal[...]``, ``X | None``, ``tuple[X, ...]`` and fixed ``tuple[X, Y]`` (YAML lists),
``dict[str, X]`` (YAML mappings with user-chosen keys; returned as a plain ``dict`` in file
order that must be treated as read-only), nested dataclasses, :class:`Expr`, and tagged unions
``A | B`` of dataclasses that each declare ``tag: ClassVar[str]``.  A YAML key equals the
Python field name minus one trailing underscore (``if_`` is written ``if``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Iterable, Literal, Mapping, TypeVar, Union

from lab.config.yamlio import Node
from lab.errors import Diagnostic, Diagnostics, printable, suggest

__all__ = [
    "Expr",
    "FieldMeta",
    "SourceMap",
    "build",
    "diag_at",
    "option",
    "to_data",
    "yaml_name",
]

T = TypeVar("T")
_META_KEY = "lab.config"
Path = tuple[str | int, ...]


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
                parts.append(f"{op} {_num(v)}")
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


Shape = Union[_Prim, _Lit, _Opt, _Seq, _Fixed, _Dict, _Obj, _Union]


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


def _class_info(cls: type) -> _ClassInfo:
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
    return not any(f.required for f in _class_info(cls).fields)


def _human(name: str) -> str:
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", name)
    return " ".join(w.lower() for w in words) or name


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def render_path(path: Iterable[str | int]) -> str:
    """A readable field path such as ``rules[2].do[0].award.amount``."""
    out = ""
    for c in path:
        if isinstance(c, int):
            out += f"[{c}]"
        elif _IDENT.match(c):
            out += ("." if out else "") + c
        else:
            out += f"[{c!r}]"
    return out


def _label(path: Path) -> str:
    for i in range(len(path) - 1, -1, -1):
        if isinstance(path[i], str):
            return render_path(path[i:])
    return render_path(path)


def _at(path: Path, label: str | None = None) -> str:
    text = render_path(path)
    return f" (at {text})" if text and text != label else ""


def _num(v: float) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        if v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        return repr(v)
    return str(v)


def _describe(node: Node) -> str:
    if node.kind == "map":
        return "a mapping" if node.value else "an empty mapping"
    if node.kind == "seq":
        return "a list"
    v = node.value
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, float) and math.isfinite(v) else _num(v)
    if isinstance(v, str):
        if not v:
            return "empty text"
        return f"the text '{printable(v)}'"
    return f"a {type(v).__name__}"


def _article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


_FLOATISH = re.compile(r"^\s*[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _number_hint(node: Node) -> str:
    """For text that Python would read as a number: how to make YAML read it as one."""
    v = node.value
    if node.kind != "scalar" or not isinstance(v, str) or not _FLOATISH.match(v):
        return ""
    try:
        x = float(v.replace("_", ""))
    except ValueError:
        return ""
    if not math.isfinite(x):
        return ""
    if node.style in ("'", '"'):
        return "; remove the quotes to make it a number"
    text = repr(x)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:  # YAML 1.1 needs a '.' in floats with exponents
        text = f"{mantissa}.0e{exponent}"
    return f"; YAML reads this as text, write {text} instead"


# ---------------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------------


class _Bad:
    """Marker for a value that failed (its problems are already recorded)."""


_BAD = _Bad()


@dataclass(frozen=True)
class _Ctx:
    meta: FieldMeta = _NO_META
    entry: str | None = None  # the user-chosen key when this value is an entry of a dict


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


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.diags = Diagnostics(file)
        self.pos: dict[Path, tuple[int, int]] = {}

    def err(self, node: Node, code: str, path: Path, message: str) -> _Bad:
        self.diags.add(node.line, node.col, code, message, path)
        return _BAD

    def mismatch(self, node: Node, expected: str, path: Path, hint: str = "", code: str = "type") -> _Bad:
        label = _label(path)
        return self.err(node, code, path, f"expected {expected} for '{label}', got {_describe(node)}"
                                          f"{_at(path, label)}{hint}")

    # -- dispatch -------------------------------------------------------------------------------

    def value(self, node: Node, shape: Shape, path: Path, ctx: _Ctx) -> Any:
        self.pos[path] = (node.line, node.col)
        if isinstance(shape, _Opt):
            if node.kind == "scalar" and node.value is None:
                return None
            return self.value(node, shape.inner, path, ctx)
        if isinstance(shape, _Prim):
            return getattr(self, "prim_" + shape.name)(node, path, ctx)
        if isinstance(shape, _Lit):
            return self.literal(node, shape, path)
        if isinstance(shape, _Seq):
            return self.seq(node, shape, path, ctx)
        if isinstance(shape, _Fixed):
            return self.fixed(node, shape, path, ctx)
        if isinstance(shape, _Dict):
            return self.mapping(node, shape, path, ctx)
        if isinstance(shape, _Obj):
            if node.kind != "map":
                return self.mismatch(node, "a mapping", path)
            kind = ctx.meta.kind or _human(shape.cls.__name__)
            where = f"{kind} '{printable(ctx.entry)}'" if ctx.entry is not None else kind
            return self.obj(node, shape.cls, path, where, path)
        return self.union(node, shape, path, ctx)

    # -- scalars --------------------------------------------------------------------------------

    def _number(self, node: Node, path: Path, ctx: _Ctx) -> float | int | _Bad:
        v = node.value
        if node.kind != "scalar" or isinstance(v, bool) or not isinstance(v, (int, float)):
            return self.mismatch(node, "a number", path, _number_hint(node))
        return v

    def _check_bounds(self, node: Node, v: float, path: Path, ctx: _Ctx) -> bool:
        if ctx.meta.violates(v):
            label = _label(path)
            self.err(node, "range", path, f"expected a number {ctx.meta.bounds_text()} for '{label}', got "
                           f"{_num(v)}{_at(path, label)}")
            return False
        return True

    def prim_int(self, node: Node, path: Path, ctx: _Ctx) -> Any:
        v = self._number(node, path, ctx)
        if isinstance(v, _Bad):
            return v
        if isinstance(v, float):
            if not (math.isfinite(v) and v.is_integer()):
                return self.mismatch(node, "a whole number", path)
            v = int(v)
        return v if self._check_bounds(node, v, path, ctx) else _BAD

    def prim_float(self, node: Node, path: Path, ctx: _Ctx) -> Any:
        v = self._number(node, path, ctx)
        if isinstance(v, _Bad):
            return v
        try:
            v = float(v)
        except OverflowError:
            return self.mismatch(node, "a number of a sensible size", path)
        if math.isnan(v):
            return self.mismatch(node, "a number", path)
        return v if self._check_bounds(node, v, path, ctx) else _BAD

    def prim_bool(self, node: Node, path: Path, ctx: _Ctx) -> Any:
        if node.kind == "scalar" and isinstance(node.value, bool):
            return node.value
        hint = ""
        if node.kind == "scalar" and isinstance(node.value, str) and \
                node.value.lower() in ("yes", "no", "on", "off", "y", "n"):
            hint = "; write true or false (yes/no/on/off are read as text)"
        return self.mismatch(node, "true or false", path, hint)

    def prim_str(self, node: Node, path: Path, ctx: _Ctx) -> Any:
        if node.kind == "scalar" and isinstance(node.value, str):
            return node.value
        hint = ""
        if node.kind == "scalar" and node.value is not None:
            text = (node.raw or "").strip() or str(node.value)
            hint = f"; put it in quotes (\"{text}\") to use it as text"
        return self.mismatch(node, "text", path, hint)

    def prim_expr(self, node: Node, path: Path, ctx: _Ctx) -> Any:
        v = node.value
        if node.kind == "scalar":
            if isinstance(v, str):
                return Expr(v, file=self.file, node=node)
            if isinstance(v, bool):
                return Expr("true" if v else "false", file=self.file, node=node)
            if isinstance(v, int):
                return Expr(str(v), file=self.file, node=node)
            if isinstance(v, float) and math.isfinite(v):
                return Expr(repr(v), file=self.file, node=node)
        hint = ""
        if node.kind == "map":
            hint = "; if the expression contains ': ', put it in quotes"
        return self.mismatch(node, "an expression (text or a number)", path, hint)

    def literal(self, node: Node, shape: _Lit, path: Path) -> Any:
        v = node.value
        if node.kind == "scalar":
            for choice in shape.values:
                if type(choice) is type(v) and choice == v:
                    return choice
        options = ", ".join(f"'{c}'" if isinstance(c, str) else _describe(
            Node("scalar", c, 0, 0)) for c in shape.values)
        hint = ""
        if node.kind == "scalar" and isinstance(v, str):
            hint = suggest(v, [c for c in shape.values if isinstance(c, str)], list_all=False)
        return self.mismatch(node, f"one of {options}", path, hint, code="choice")

    # -- collections ----------------------------------------------------------------------------

    def seq(self, node: Node, shape: _Seq, path: Path, ctx: _Ctx) -> Any:
        if node.kind != "seq":
            hint = "; write each item on its own line starting with '- '" \
                if node.kind == "map" or (node.kind == "scalar" and node.value is not None) else ""
            return self.mismatch(node, "a list", path, hint)
        item_ctx = _Ctx(ctx.meta)
        out = [self.value(item, shape.item, path + (i,), item_ctx)
               for i, item in enumerate(node.value)]
        return _BAD if any(isinstance(x, _Bad) for x in out) else tuple(out)

    def fixed(self, node: Node, shape: _Fixed, path: Path, ctx: _Ctx) -> Any:
        n = len(shape.items)
        if node.kind != "seq" or len(node.value) != n:
            got = f"; got {len(node.value)} items" if node.kind == "seq" else ""
            if got:
                label = _label(path)
                return self.err(node, "type", path, f"expected a list of {n} items for '{label}'{got}"
                                      f"{_at(path, label)}")
            return self.mismatch(node, f"a list of {n} items", path)
        item_ctx = _Ctx(ctx.meta)
        out = [self.value(item, s, path + (i,), item_ctx)
               for i, (item, s) in enumerate(zip(node.value, shape.items))]
        return _BAD if any(isinstance(x, _Bad) for x in out) else tuple(out)

    def mapping(self, node: Node, shape: _Dict, path: Path, ctx: _Ctx) -> Any:
        if node.kind != "map":
            return self.mismatch(node, "a mapping", path)
        out: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        bad = False
        for k, v in node.value:
            key = self.key(k, seen, path)
            if key is None:
                bad = True
                continue
            val = self.value(v, shape.value, path + (key,), _Ctx(ctx.meta, key))
            if isinstance(val, _Bad):
                bad = True
            else:
                out[key] = val
        return _BAD if bad else out

    def key(self, k: Node, seen: dict[str, Node], path: Path) -> str | None:
        if k.kind != "scalar" or not isinstance(k.value, str):
            self.err(k, "key-type", path, "keys must be strings")
            return None
        first = seen.get(k.value)
        if first is not None:
            self.err(k, "duplicate-key", path + (k.value,), f"duplicate key '{printable(k.value)}' (first defined at line "
                        f"{first.line})")
            return None
        seen[k.value] = k
        return k.value

    def obj(self, node: Node, cls: type, path: Path, where: str, at_path: Path) -> Any:
        info = _class_info(cls)
        at = _at(at_path)
        seen: dict[str, Node] = {}
        kwargs: dict[str, Any] = {}
        bad = False
        pairs = node.value if node.kind == "map" else ()
        for k, v in pairs:
            key = self.key(k, seen, path)
            if key is None:
                bad = True
                continue
            f = info.by_yaml.get(key)
            if f is None:
                unused = [n for n in info.by_yaml if n not in seen] or list(info.by_yaml)
                self.err(k, "unknown-key", path + (key,), f"unknown key '{printable(key)}' in {where}{at}"
                            f"{suggest(key, unused)}")
                bad = True
                continue
            val = self.value(v, f.shape, path + (f.yaml,), _Ctx(f.meta))
            if isinstance(val, _Bad):
                bad = True
            else:
                kwargs[f.name] = val
        for f in info.fields:
            if f.required and f.yaml not in seen:
                self.err(node, "missing-key", path + (f.yaml,), f"missing required key '{f.yaml}' in {where}{at}")
                bad = True
        if bad:
            return _BAD
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as e:  # a declaration's own __post_init__ checks
            return self.err(node, "invalid", path, f"invalid {where}{at}: {e}")

    def union(self, node: Node, shape: _Union, path: Path, ctx: _Ctx) -> Any:
        kind = ctx.meta.kind or "variant"
        tags = [t for t, _ in shape.members]
        listing = ", ".join(tags)
        body: Node | None
        if node.kind == "scalar" and isinstance(node.value, str):
            tag_node, body = node, None
        elif node.kind == "map" and len(node.value) == 1:
            tag_node, body = node.value[0]
            if not isinstance(tag_node.value, str) or tag_node.kind != "scalar":
                return self.err(tag_node, "key-type", path, "keys must be strings")
        elif node.kind == "map" and len(node.value) > 1:
            return self.err(node, "variant-shape", path, self._many_keys(node, shape, kind, path))
        else:
            return self.mismatch(node, f"{_article(kind)} (one of: {listing})", path)
        tag = tag_node.value
        cls = shape.lookup(tag)
        if cls is None:
            hint = suggest(tag, tags)
            return self.err(tag_node, "unknown-variant", path + (tag,), f"unknown {kind} '{printable(tag)}'{_at(path)}{hint}")
        tpath = path + (tag,)
        if body is None or (body.kind == "scalar" and body.value is None):
            self.pos[tpath] = (tag_node.line, tag_node.col) if body is None \
                else (body.line, body.col)
            empty = Node("map", (), tag_node.line, tag_node.col)
            return self.obj(empty, cls, tpath, f"{tag} {kind}", path)
        self.pos[tpath] = (body.line, body.col)
        if body.kind != "map":
            label = _label(tpath)
            return self.err(body, "type", tpath, f"expected the settings of the {tag} {kind} as a mapping "
                                  f"for '{label}', got {_describe(body)}{_at(tpath, label)}")
        return self.obj(body, cls, tpath, f"{tag} {kind}", path)

    def _many_keys(self, node: Node, shape: _Union, kind: str, path: Path) -> str:
        keys = [k.value for k, _ in node.value]
        named = [k for k in keys if isinstance(k, str) and shape.lookup(k) is not None]
        listing = ", ".join(t for t, _ in shape.members)
        shown = ", ".join(f"'{printable(str(k))}'" for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
        msg = (f"{_article(kind)} must be a mapping with exactly one key naming it (one of: "
               f"{listing}), got {len(keys)} keys {shown}{_at(path)}")
        if len(named) == 1:
            msg += f"; indent the other keys under '{named[0]}:'"
        return msg


def build(node: Node, cls: type[T], file: str) -> tuple[T, SourceMap]:
    """Check ``node`` against the dataclass ``cls`` and construct it.

    Returns the instance and a :class:`SourceMap`.  Raises :class:`LabError` listing every
    problem found, sorted by position; never any other exception for any ``Node`` tree
    (a ``TypeError`` means ``cls`` itself uses an unsupported declaration).
    ``ValueError``/``TypeError`` raised by a dataclass's ``__post_init__`` become diagnostics.
    """
    _class_info(cls)  # declaration errors surface here, independent of the input
    b = _Builder(file)
    b.pos[()] = (node.line, node.col)
    if node.kind != "map":
        b.err(node, "type", (), f"expected a mapping at the top level of the file, got {_describe(node)}")
        result: Any = _BAD
    else:
        result = b.obj(node, cls, (), _human(cls.__name__), ())
    if b.diags or isinstance(result, _Bad):
        raise b.diags.error(sort=True)
    return result, SourceMap(file, b.pos)


# ---------------------------------------------------------------------------------------------
# Back to plain data
# ---------------------------------------------------------------------------------------------


def to_data(obj: Any) -> Any:
    """Plain YAML-ready data (dicts, lists, scalars) for a configuration dataclass instance.

    The inverse of :func:`build`: ``build(parse_yaml(yaml.safe_dump(to_data(x)), f), type(x))``
    reproduces ``x``.  Useful for showing users the fully-defaulted configuration.
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"to_data expects a dataclass instance, got {type(obj).__name__}")
    return _dump_obj(obj)


def _dump_obj(obj: Any) -> dict[str, Any]:
    info = _class_info(type(obj))
    return {f.yaml: _dump(getattr(obj, f.name), f.shape) for f in info.fields}


def _dump(v: Any, shape: Shape) -> Any:
    if isinstance(shape, _Opt):
        return None if v is None else _dump(v, shape.inner)
    if isinstance(shape, _Prim):
        return str(v) if shape.name in ("expr", "str") else v
    if isinstance(shape, _Lit):
        return v
    if isinstance(shape, _Seq):
        return [_dump(x, shape.item) for x in v]
    if isinstance(shape, _Fixed):
        return [_dump(x, s) for x, s in zip(v, shape.items)]
    if isinstance(shape, _Dict):
        return {k: _dump(x, shape.value) for k, x in v.items()}
    if isinstance(shape, _Obj):
        return _dump_obj(v)
    return {type(v).tag: _dump_obj(v)}
