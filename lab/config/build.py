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
from dataclasses import dataclass
from typing import Any, TypeVar

from lab.config.declare import (
    _NO_META,
    Expr,
    FieldMeta,
    Shape,
    _Dict,
    _Fixed,
    _human,
    _Lit,
    _Obj,
    _Opt,
    _Prim,
    _Seq,
    _Union,
    class_info,
    option,
    yaml_name,
)
from lab.config.messages import article, at_text, describe, field_label, number_hint, number_text
from lab.config.sourcemap import SourceMap, diag_at
from lab.config.yamlio import Node
from lab.errors import Diagnostics, TooMany, nearest, printable, suggest

# Expr, FieldMeta, option, yaml_name (lab.config.declare) and SourceMap, diag_at (lab.config.sourcemap)
# are re-exported: this module was their home, and lab.config exports them all.
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
Path = tuple[str | int, ...]


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



class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.diags = Diagnostics(file)
        self.pos: dict[Path, tuple[int, int]] = {}

    def err(self, node: Node, code: str, path: Path, message: str) -> _Bad:
        self.diags.add(node.line, node.col, code, message, path)
        return _BAD

    def mismatch(self, node: Node, expected: str, path: Path, hint: str = "", code: str = "type") -> _Bad:
        label = field_label(path)
        return self.err(node, code, path, f"expected {expected} for '{label}', got {describe(node)}"
                                          f"{at_text(path, label)}{hint}")

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
            return self.mismatch(node, "a number", path, number_hint(node))
        return v

    def _check_bounds(self, node: Node, v: float, path: Path, ctx: _Ctx) -> bool:
        if ctx.meta.violates(v):
            label = field_label(path)
            self.err(node, "range", path, f"expected a number {ctx.meta.bounds_text()} for '{label}', got "
                           f"{number_text(v)}{at_text(path, label)}")
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
        options = ", ".join(f"'{c}'" if isinstance(c, str) else describe(
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
                label = field_label(path)
                return self.err(node, "type", path, f"expected a list of {n} items for '{label}'{got}"
                                      f"{at_text(path, label)}")
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
            self.err(k, "duplicate-key", path + (k.value,),
                     f"duplicate key '{printable(k.value)}' (first defined at line {first.line})")
            return None
        seen[k.value] = k
        return k.value

    def obj(self, node: Node, cls: type, path: Path, where: str, at_path: Path) -> Any:
        info = class_info(cls)
        at = at_text(at_path)
        seen: dict[str, Node] = {}
        kwargs: dict[str, Any] = {}
        bad = False
        pairs = node.value if node.kind == "map" else ()
        keys = {k.value for k, _ in pairs if k.kind == "scalar" and isinstance(k.value, str)}
        misspelt: set[str] = set()  # required keys missing because they were misspelt: said once, at the misspelling
        for k, v in pairs:
            key = self.key(k, seen, path)
            if key is None:
                bad = True
                continue
            f = info.by_yaml.get(key)
            if f is None:
                unused = [n for n in info.by_yaml if n not in seen] or list(info.by_yaml)
                near = nearest(key, unused)
                if near is not None and near not in keys and near not in misspelt and info.by_yaml[near].required:
                    misspelt.add(near)
                    hint = f"; did you mean '{near}'? (a required key, missing here)"
                else:
                    hint = suggest(key, unused)
                self.err(k, "unknown-key", path + (key,), f"unknown key '{printable(key)}' in {where}{at}{hint}")
                bad = True
                continue
            val = self.value(v, f.shape, path + (f.yaml,), _Ctx(f.meta))
            if isinstance(val, _Bad):
                bad = True
            else:
                kwargs[f.name] = val
        for f in info.fields:
            if f.required and f.yaml not in seen and f.yaml not in misspelt:
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
            return self.mismatch(node, f"{article(kind)} (one of: {listing})", path)
        tag = tag_node.value
        cls = shape.lookup(tag)
        if cls is None:
            hint = suggest(tag, tags)
            return self.err(tag_node, "unknown-variant", path + (tag,),
                            f"unknown {kind} '{printable(tag)}'{at_text(path)}{hint}")
        tpath = path + (tag,)
        if body is None or (body.kind == "scalar" and body.value is None):
            self.pos[tpath] = (tag_node.line, tag_node.col) if body is None \
                else (body.line, body.col)
            empty = Node("map", (), tag_node.line, tag_node.col)
            return self.obj(empty, cls, tpath, f"{tag} {kind}", path)
        self.pos[tpath] = (body.line, body.col)
        if body.kind != "map":
            label = field_label(tpath)
            return self.err(body, "type", tpath, f"expected the settings of the {tag} {kind} as a mapping "
                                  f"for '{label}', got {describe(body)}{at_text(tpath, label)}")
        return self.obj(body, cls, tpath, f"{tag} {kind}", path)

    def _many_keys(self, node: Node, shape: _Union, kind: str, path: Path) -> str:
        keys = [k.value for k, _ in node.value]
        named = [k for k in keys if isinstance(k, str) and shape.lookup(k) is not None]
        listing = ", ".join(t for t, _ in shape.members)
        shown = ", ".join(f"'{printable(str(k))}'" for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
        msg = (f"{article(kind)} must be a mapping with exactly one key naming it (one of: "
               f"{listing}), got {len(keys)} keys {shown}{at_text(path)}")
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
    class_info(cls)  # declaration errors surface here, independent of the input
    b = _Builder(file)
    b.pos[()] = (node.line, node.col)
    if node.kind != "map":
        b.err(node, "type", (), f"expected a mapping at the top level of the file, got {describe(node)}")
        result: Any = _BAD
    else:
        try:
            result = b.obj(node, cls, (), _human(cls.__name__), ())
        except TooMany:
            raise b.diags.error(sort=True) from None
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
    info = class_info(type(obj))
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
