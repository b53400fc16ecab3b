"""JSON Schema (Draft 2020-12) for configuration dataclasses, for editors and external checks.

Generated from the very declarations that :func:`lab.config.build.build` enforces (read through
:mod:`lab.config.declare`), so an editor's completion and validation agree with the lab's own loader.
(The loader remains the authority: it also reports positions, suggestions and checks a schema cannot express.)
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any

from lab.config.declare import (
    Expr,
    FieldMeta,
    Shape,
    _all_optional,
    class_info,
    _Dict,
    _Fixed,
    _Lit,
    _Obj,
    _Opt,
    _Prim,
    _Seq,
    _Union,
)

__all__ = ["json_schema", "DRAFT"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
EXPR_DOC = "An expression, written as text; a plain number or true/false is taken as its text."

_PRIM_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}


def json_schema(cls: type, *, title: str, id: str | None = None) -> dict[str, Any]:
    """The JSON Schema of the YAML accepted for dataclass ``cls``.

    Nested dataclasses go to ``$defs`` (referenced by name); tagged unions become ``oneOf``
    single-key objects (or the bare tag when all the variant's settings are optional).
    """
    gen = _Generator(cls)
    body = gen.object_schema(cls)
    schema: dict[str, Any] = {"$schema": DRAFT}
    if id is not None:
        schema["$id"] = id
    schema["title"] = title
    schema.update(body)
    if gen.defs:
        schema["$defs"] = {name: gen.defs[name] for name in sorted(gen.defs)}
    return schema


class _Generator:
    def __init__(self, root: type):
        self.root = root
        self.names: dict[type, str] = {}
        self.defs: dict[str, dict[str, Any]] = {}

    def ref(self, cls: type) -> dict[str, Any]:
        if cls is self.root:
            return {"$ref": "#"}
        name = self.names.get(cls)
        if name is None:
            name = cls.__name__
            n = 2
            while name in self.defs:
                name = f"{cls.__name__}{n}"
                n += 1
            self.names[cls] = name
            self.defs[name] = {}  # reserved first, so recursive declarations terminate
            self.defs[name] = self.object_schema(cls)
        return {"$ref": f"#/$defs/{name}"}

    def object_schema(self, cls: type) -> dict[str, Any]:
        info = class_info(cls)
        out: dict[str, Any] = {"type": "object"}
        doc = _class_doc(cls)
        if doc:
            out["description"] = doc
        props: dict[str, Any] = {}
        for f in info.fields:
            s = dict(self.shape(f.shape, f.meta))
            if f.meta.doc:
                s["description"] = f.meta.doc + (" (an expression)" if _is_expr(f.shape) else "")
            if not f.required:
                default = f.default if f.default is not dataclasses.MISSING else _call(
                    f.default_factory)
                plain = _jsonable(default)
                if plain is not _NOT_JSON:
                    s["default"] = plain
            if f.meta.examples:
                examples = [_jsonable(e) for e in f.meta.examples]
                if all(e is not _NOT_JSON for e in examples):
                    s["examples"] = examples
            props[f.yaml] = s
        out["properties"] = props
        required = [f.yaml for f in info.fields if f.required]
        if required:
            out["required"] = required
        out["additionalProperties"] = False
        return out

    def shape(self, shape: Shape, meta: FieldMeta) -> dict[str, Any]:
        if isinstance(shape, _Prim):
            if shape.name == "expr":
                return {"type": ["string", "number", "boolean"], "description": EXPR_DOC}
            s: dict[str, Any] = {"type": _PRIM_TYPES[shape.name]}
            if shape.name in ("int", "float"):
                s.update(_bounds(meta))
            return s
        if isinstance(shape, _Lit):
            return {"enum": list(shape.values)}
        if isinstance(shape, _Opt):
            return {"anyOf": [self.shape(shape.inner, meta), {"type": "null"}]}
        if isinstance(shape, _Seq):
            return {"type": "array", "items": self.shape(shape.item, meta)}
        if isinstance(shape, _Fixed):
            n = len(shape.items)
            return {"type": "array", "prefixItems": [self.shape(s, meta) for s in shape.items],
                    "items": False, "minItems": n, "maxItems": n}
        if isinstance(shape, _Dict):
            return {"type": "object", "additionalProperties": self.shape(shape.value, meta)}
        if isinstance(shape, _Obj):
            return self.ref(shape.cls)
        return self.union(shape)

    def union(self, shape: _Union) -> dict[str, Any]:
        variants: list[dict[str, Any]] = []
        for tag, cls in shape.members:
            body = self.ref(cls)
            bare = _all_optional(cls)
            if bare:
                body = {"anyOf": [body, {"type": "null"}]}
            variants.append({"type": "object", "properties": {tag: body}, "required": [tag],
                             "additionalProperties": False})
            if bare:
                variants.append({"const": tag})
        return {"oneOf": variants}


def _is_expr(shape: Shape) -> bool:
    while isinstance(shape, _Opt):
        shape = shape.inner
    return isinstance(shape, _Prim) and shape.name == "expr"


def _bounds(meta: FieldMeta) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in (("minimum", meta.min), ("maximum", meta.max),
                   ("exclusiveMinimum", meta.gt), ("exclusiveMaximum", meta.lt)):
        if v is not None:
            out[key] = v
    return out


def _class_doc(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    if doc.startswith(cls.__name__ + "("):  # the signature dataclasses invent when undocumented
        return ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


class _NotJson:
    pass


_NOT_JSON = _NotJson()


def _call(factory: Any) -> Any:
    try:
        return factory()
    except Exception:  # a factory that needs context is simply not shown as a default
        return _NOT_JSON


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return str(v) if isinstance(v, Expr) else v
    if isinstance(v, float):
        return v if math.isfinite(v) else _NOT_JSON
    if isinstance(v, (tuple, list)):
        items = [_jsonable(x) for x in v]
        return _NOT_JSON if any(x is _NOT_JSON for x in items) else items
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        vals = {k: _jsonable(x) for k, x in v.items()}
        return _NOT_JSON if any(x is _NOT_JSON for x in vals.values()) else vals
    return _NOT_JSON
