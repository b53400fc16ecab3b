"""The policy expression language: safe, typed, vectorised.

Policies written in YAML carry small expressions -- conditions such as
``purchase.amount >= 50 and customer.tier == "gold"`` and amounts such as
``floor(purchase.amount) * 2``. Policies may come from untrusted hands, so an
expression is never run as Python. Instead:

1. the raw text is bounded (length, bracket depth) *before* anything parses it,
   so hostile inputs cannot exhaust the parser;
2. the standard library's ``ast.parse(text, mode="eval")`` turns it into a
   syntax tree (parsing only -- nothing is compiled, evaluated or executed);
3. every node is checked against a strict whitelist and type-checked against a
   declared :data:`Schema` at load time, so mistakes surface when the policy is
   loaded, with a message and the character offset of the offending token;
4. the tree becomes a tree of closures over whole-array numpy operations, so one
   call evaluates the expression for a million customers at once.

Why ``ast`` plus a whitelist rather than CEL or another expression library: it
adds no dependency, Python's parser gives exact column offsets for error
messages, the syntax is the one policy authors already half-know, and owning
the whole pipeline gives full control of cost (node count, nesting, the
operations that can run).

The module runs past 500 lines because the language is one concept whose four
stages (bounds, parse, type check, compile) share one table of functions and
operators: a new function or operator is added in one place, with its type rule
and its numpy closure side by side.

Semantics worth knowing (all element-wise; a batch of one row gives exactly
the result that row gets inside any larger batch):

* Every number an expression reads or computes lies within +-MAX_MAGNITUDE
  (1e15, far beyond any amount a store of this world reaches): a field value,
  and the result of every ``+ - * / // % **`` and ``days_since``, is clamped to
  that range. So, from finite inputs, the arithmetic is total and
  finite by construction: ``1 / 5e-324`` is 1e15, ``0 * (1 / 5e-324)`` is 0,
  ``((1e12 ** 4) ** 4) ** 4`` is 1e15. Values inside the range are untouched
  (the clamp changes no result of a policy that stays in it). A nan input
  (which no engine serves) stays nan and compares false; the rules engine
  stops the run if a non-finite number ever reaches a book (runtime.py).
* ``/``, ``//`` and ``%`` by zero yield 0 -- a policy arithmetic slip must not
  turn a customer's points into inf/nan. ``//`` and ``%`` otherwise follow
  Python (floor division; the remainder takes the divisor's sign).
* ``sqrt(x)`` of a negative number is 0; ``log(x)`` (natural) of ``x <= 0`` is 0;
  a fractional power (``x ** 0.5``) of a negative number is 0.
* ``**`` takes only a constant exponent between 0 and 4 (bounded growth).
* ``round(x)`` rounds half away from zero (2.5 -> 3, -2.5 -> -3), the rule
  shoppers expect on a receipt, not numpy's round-half-to-even.
* ``clip(x, lo, hi)`` is ``min(max(x, lo), hi)``; ``days_since(t)`` is ``now - t``.
* ``and``/``or`` evaluate both sides (whole arrays); neither side can fail.
"""

from __future__ import annotations

import ast
import enum
import functools
import math
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lab.errors import closest

__all__ = [
    "MAX_DEPTH",
    "MAX_MAGNITUDE",
    "MAX_NODES",
    "MAX_TEXT_LENGTH",
    "Compiled",
    "ExprType",
    "ExpressionError",
    "Field",
    "FUNCTIONS",
    "Schema",
    "compile_expression",
]

MAX_TEXT_LENGTH = 2000
MAX_NODES = 256
MAX_DEPTH = 32
MAX_LITERAL = 1e12
MAX_EXPONENT = 4
MAX_MAGNITUDE = 1e15


class ExprType(enum.Enum):
    """The type of a schema field or of an expression's value."""

    NUMBER = "number"
    BOOL = "bool"
    ENUM = "enum"
    MAP = "map"


@dataclass(frozen=True)
class Field:
    """One named input an expression may read, declared by the engine.

    ENUM fields are categorical strings stored as integer codes indexing
    ``values``; MAP fields are numbers keyed by the fixed string keys in
    ``values`` (stored as the columns of a 2-D array, in that order).
    """

    type: ExprType
    values: tuple[str, ...] = ()
    doc: str = ""
    why_values: str = ""  # said when a text is not one of ``values``: why they are what they are, and the fix

    def __post_init__(self) -> None:
        if not isinstance(self.type, ExprType):
            raise TypeError(f"Field.type must be an ExprType, got {self.type!r}")
        values = tuple(self.values)
        object.__setattr__(self, "values", values)
        if not all(isinstance(v, str) and v for v in values):
            raise ValueError(f"Field.values must be non-empty strings, got {values!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"Field.values must not repeat, got {values!r}")
        if self.type in (ExprType.ENUM, ExprType.MAP) and not values:
            raise ValueError(f"a {self.type.value} field needs at least one value in Field.values")
        if self.type in (ExprType.NUMBER, ExprType.BOOL) and values:
            raise ValueError(f"a {self.type.value} field takes no Field.values, got {values!r}")


Schema = Mapping[str, Field]


class ExpressionError(Exception):
    """A policy expression that cannot be accepted.

    ``message`` is the full human message (also ``str(exc)``); ``offset`` is the
    0-based character offset of the offending token in the expression text.
    """

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.offset))


_Fn = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Compiled:
    """A checked expression, ready to evaluate over whole arrays.

    ``fields`` lists the schema names the expression reads, so the engine only
    builds the columns that are needed.
    """

    text: str
    type: ExprType
    fields: frozenset[str]
    _fn: _Fn = field(repr=False, compare=False)
    _schema: Mapping[str, Field] = field(repr=False, compare=False)

    def evaluate(self, env: Mapping[str, object], n: int) -> np.ndarray:
        """Evaluate for ``n`` rows at once; returns float64 (NUMBER) or bool (BOOL), shape (n,).

        ``env`` maps each name in ``fields`` to: NUMBER -> numbers of shape (n,)
        or a scalar; BOOL -> bools of shape (n,) or a scalar; ENUM -> integer
        codes into ``Field.values``, shape (n,) or a scalar; MAP -> numbers of
        shape (n, len(Field.values)). Scalars broadcast. The result never
        aliases an input array.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"evaluate() needs a row count n >= 0, got {n!r}")
        n = int(n)
        prepared = {name: self._prepare(env, name, n) for name in self.fields}
        with np.errstate(all="ignore"):
            raw = self._fn(prepared)
        dtype = np.float64 if self.type is ExprType.NUMBER else np.bool_
        out = np.asarray(raw)
        if out.shape != (n,):
            return np.array(np.broadcast_to(out, (n,)), dtype=dtype)
        if out.dtype != dtype or any(
            isinstance(a, np.ndarray) and np.may_share_memory(out, a) for a in prepared.values()
        ):
            return out.astype(dtype)
        return out

    def _prepare(self, env: Mapping[str, object], name: str, n: int) -> Any:
        """Check one env entry against its declared field and return it as a numpy value."""
        if name not in env:
            raise ValueError(f"evaluate() needs {name!r} in env: the expression {self.text!r} reads it")
        spec = self._schema[name]
        arr = np.asarray(env[name])
        kinds = {
            ExprType.NUMBER: "biuf",
            ExprType.BOOL: "b",
            ExprType.ENUM: "iu",
            ExprType.MAP: "biuf",
        }[spec.type]
        if arr.dtype.kind not in kinds:
            wanted = {
                ExprType.NUMBER: "numbers",
                ExprType.BOOL: "bools",
                ExprType.ENUM: "integer codes",
                ExprType.MAP: "numbers",
            }[spec.type]
            raise ValueError(f"env[{name!r}] must hold {wanted}, got dtype {arr.dtype}")
        if spec.type is ExprType.MAP:
            shapes: tuple[tuple[int, ...], ...] = ((n, len(spec.values)),)
        else:
            shapes = ((), (n,))
        if arr.shape not in shapes:
            allowed = " or ".join(str(s) for s in shapes)
            raise ValueError(f"env[{name!r}] must have shape {allowed}, got {arr.shape}")
        if spec.type in (ExprType.NUMBER, ExprType.MAP):
            arr = arr.astype(np.float64, copy=False)
        return arr

    def __reduce__(self) -> tuple[Any, ...]:
        # Closures do not pickle; recompiling from the text and the fields it reads does.
        return (_recompile, (self.text, dict(self._schema), self.type))


def _recompile(text: str, schema: dict[str, Field], expect: ExprType) -> Compiled:
    return compile_expression(text, schema, expect=expect)


# --------------------------------------------------------------------------- numerics


def _bounded(x: Any) -> Any:
    """x clamped to +-MAX_MAGNITUDE (nan stays nan): every number an expression reads or computes passes here."""
    return np.clip(x, -MAX_MAGNITUDE, MAX_MAGNITUDE)


def _safe_divisor(y: Any) -> tuple[Any, Any]:
    nonzero = np.not_equal(y, 0)
    return nonzero, np.where(nonzero, y, 1.0)


def _div(x: Any, y: Any) -> Any:
    nonzero, safe = _safe_divisor(y)
    return np.where(nonzero, np.true_divide(x, safe), 0.0)


def _floordiv(x: Any, y: Any) -> Any:
    nonzero, safe = _safe_divisor(y)
    return np.where(nonzero, np.floor_divide(x, safe), 0.0)


def _mod(x: Any, y: Any) -> Any:
    nonzero, safe = _safe_divisor(y)
    return np.where(nonzero, np.mod(x, safe), 0.0)


def _round_half_away(x: Any) -> Any:
    whole = np.trunc(x)
    # x - trunc(x) is exact in floating point, so the half test is exact too.
    return whole + np.where(np.abs(np.subtract(x, whole)) >= 0.5, np.sign(x), 0.0)


def _sqrt(x: Any) -> Any:
    return np.sqrt(np.maximum(x, 0.0))


def _log(x: Any) -> Any:
    positive = np.greater(x, 0.0)
    return np.where(positive, np.log(np.where(positive, x, 1.0)), 0.0)


def _power(exponent: float) -> Callable[[Any], Any]:
    if float(exponent).is_integer():
        return lambda x: np.power(np.asarray(x, dtype=np.float64), exponent)
    return lambda x: np.where(
        np.greater_equal(x, 0.0), np.power(np.maximum(x, 0.0), exponent), 0.0
    )


def _clip(x: Any, lo: Any, hi: Any) -> Any:
    return np.minimum(np.maximum(x, lo), hi)


# The callable functions: name -> (fewest, most) arguments.
FUNCTIONS: Mapping[str, tuple[int, int]] = {
    "floor": (1, 1),
    "ceil": (1, 1),
    "round": (1, 1),
    "abs": (1, 1),
    "sqrt": (1, 1),
    "log": (1, 1),
    "min": (2, 8),
    "max": (2, 8),
    "clip": (3, 3),
    "days_since": (1, 1),
    "if_else": (3, 3),
}

_UNARY_FUNCTIONS: Mapping[str, Callable[[Any], Any]] = {
    "floor": np.floor,
    "ceil": np.ceil,
    "round": _round_half_away,
    "abs": np.abs,
    "sqrt": _sqrt,
    "log": _log,
}

_ARITHMETIC: Mapping[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", np.add),
    ast.Sub: ("-", np.subtract),
    ast.Mult: ("*", np.multiply),
    ast.Div: ("/", _div),
    ast.FloorDiv: ("//", _floordiv),
    ast.Mod: ("%", _mod),
}

_ORDERING: Mapping[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Lt: ("<", np.less),
    ast.LtE: ("<=", np.less_equal),
    ast.Gt: (">", np.greater),
    ast.GtE: (">=", np.greater_equal),
}

_EQUALITY: Mapping[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", np.equal),
    ast.NotEq: ("!=", np.not_equal),
}

_FORBIDDEN_OPERATORS: Mapping[type, tuple[str, str]] = {
    ast.BitAnd: ("&", "; did you mean 'and'?"),
    ast.BitOr: ("|", "; did you mean 'or'?"),
    ast.BitXor: ("^", "; for powers write '**'"),
    ast.LShift: ("<<", ""),
    ast.RShift: (">>", ""),
    ast.MatMult: ("@", ""),
    ast.Invert: ("~", "; did you mean 'not'?"),
    ast.Is: ("is", "; did you mean '=='?"),
    ast.IsNot: ("is not", "; did you mean '!='?"),
}

_FORBIDDEN_NODES: Mapping[str, str] = {
    "Lambda": "'lambda'",
    "ListComp": "a list comprehension",
    "SetComp": "a set comprehension",
    "DictComp": "a dict comprehension",
    "GeneratorExp": "a generator expression",
    "Starred": "unpacking with '*'",
    "NamedExpr": "an assignment expression (':=')",
    "JoinedStr": "an f-string",
    "FormattedValue": "an f-string",
    "Dict": "a dict literal ('{...}')",
    "Set": "a set literal ('{...}')",
    "Slice": "a slice (':')",
    "Await": "'await'",
    "Yield": "'yield'",
    "YieldFrom": "'yield from'",
}

_DESCRIBE_TYPE: Mapping[ExprType, str] = {
    ExprType.NUMBER: "a number",
    ExprType.BOOL: "a condition (true/false)",
    ExprType.ENUM: "a category",
    ExprType.MAP: "a map of numbers",
}

_BOOL_NAMES: Mapping[str, bool] = {"true": True, "false": False}


# --------------------------------------------------------------------------- text helpers


def _did_you_mean(word: str, candidates: Any) -> str | None:
    """The closest candidate to a misspelt word, also matching on the last dotted part (lab.errors.closest)."""
    return closest(word, candidates, fold_case=False, tail_cutoff=0.75)


def _quoted_list(items: Any, limit: int = 12) -> str:
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (", ..." if len(items) > limit else "")


def _mask_code(text: str) -> str:
    """The text with string-literal contents and comments blanked, same length."""
    out = list(text)
    i, size = 0, len(text)
    while i < size:
        c = text[i]
        if c == "#":
            while i < size and text[i] not in "\r\n":
                out[i] = " "
                i += 1
        elif c in "'\"":
            quote = c * 3 if text.startswith(c * 3, i) else c
            j = i + len(quote)
            while j < size and not text.startswith(quote, j):
                if text[j] == "\\":
                    out[j] = " "
                    j += 1
                if j < size:
                    out[j] = " "
                    j += 1
            i = j + len(quote)
        else:
            i += 1
    return "".join(out)


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, c in enumerate(text):
        if c == "\n" or (c == "\r" and text[i + 1 : i + 2] != "\n"):
            starts.append(i + 1)
    return starts


_SYNTAX_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"&&"), "use 'and' instead of '&&'"),
    (re.compile(r"\|\|"), "use 'or' instead of '||'"),
    (re.compile(r"==="), "use '==' instead of '==='"),
    (re.compile(r"!(?!=)"), "use 'not' instead of '!'"),
    (re.compile(r"(?<![=!<>:])=(?!=)"), "use '==' to compare ('=' assigns)"),
    (re.compile(r"[\r\n]"), "to split an expression over lines, wrap it in parentheses"),
)
# an expression cut short after an operator ("customer.points['points'] >="), and what the operator needs after
# it; not after another operator's sign ("=>", "<>": the '=' hint says more)
_TRAILING = re.compile(r"(?<![=<>!*/])(>=|<=|==|!=|<|>|\+|-|\*\*|\*|//|/|%|\band|\bor|\bnot|\bin)\s*$")
_NEEDS = {"and": "a condition", "or": "a condition", "not": "a condition", "in": "a list such as ['gold', 'silver']"}


# --------------------------------------------------------------------------- compiler


@dataclass(frozen=True)
class _Typed:
    """A compiled sub-expression: its type, its evaluator, and what errors need to know."""

    kind: str  # "value"; "text" (a string literal); "list" (bracketed string literals after 'in')
    type: ExprType | None
    fn: _Fn | None
    offset: int
    label: str
    values: tuple[str, ...] = ()
    literal: Any = None


class _Compiler:
    """Type-checks one parsed expression and builds its closure tree."""

    def __init__(self, text: str, base: int, schema: Schema) -> None:
        self.text = text
        self.base = base
        self.source = text[base:]
        self.starts = _line_starts(self.source)
        self.schema = schema
        self.fields: set[str] = set()

    # ---- positions

    def pos(self, lineno: int, col: int) -> int:
        """Character offset in the whole text of an ast (line, utf-8 byte column) position."""
        line_index = min(max(lineno - 1, 0), len(self.starts) - 1)
        start = self.starts[line_index]
        line = self.source[start:]
        chars = len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))
        return min(self.base + start + chars, len(self.text))

    def at(self, node: Any) -> int:
        return self.pos(node.lineno, node.col_offset)

    def end(self, node: Any) -> int:
        return self.pos(node.end_lineno, node.end_col_offset)

    def label(self, node: Any) -> str:
        return self.text[self.at(node) : self.end(node)]

    def between(self, start: int, stop: int) -> int:
        """Offset of the first token after `start` (skipping spaces, closing brackets, comments)."""
        i = start
        while i < stop:
            c = self.text[i]
            if c.isspace() or c in ")]\\":
                i += 1
            elif c == "#":
                while i < stop and self.text[i] not in "\r\n":
                    i += 1
            else:
                return i
        return start

    def error(self, message: str, offset: int) -> ExpressionError:
        return ExpressionError(message, offset)

    # ---- typing helpers

    def describe(self, t: _Typed) -> str:
        if t.kind == "text":
            return f"the text {t.literal!r}"
        if t.kind == "list":
            return "a list of values"
        assert t.type is not None
        if t.type is ExprType.ENUM:
            return f"the category {t.label}"
        if t.type is ExprType.MAP:
            return f"the map {t.label}"
        return _DESCRIBE_TYPE[t.type]

    def hint(self, t: _Typed, want: ExprType) -> str:
        """A 'did you mean' that turns what was written into what was wanted."""
        if t.kind == "text":
            example = self.enum_example()
            return f"; text can only be compared with a category field, e.g. {example}" if example else ""
        if t.kind == "list":
            example = self.enum_example(in_list=True)
            return f"; a list of values only goes after 'in', e.g. {example}" if example else ""
        if t.type is ExprType.MAP:
            return f"; did you mean '{t.label}[\"{t.values[0]}\"]'?"
        if want is ExprType.BOOL and t.type is ExprType.NUMBER:
            return f"; did you mean '{t.label} > 0'?"
        if want is ExprType.BOOL and t.type is ExprType.ENUM:
            return f"; did you mean '{t.label} == \"{t.values[0]}\"'?"
        if want is ExprType.NUMBER and t.type is ExprType.BOOL:
            return f"; did you mean 'if_else({t.label}, 1, 0)'?"
        return ""

    def enum_example(self, in_list: bool = False) -> str:
        for name in sorted(self.schema):
            spec = self.schema[name]
            if spec.type is ExprType.ENUM:
                if in_list:
                    return f"{name} in {list(spec.values[:2])!r}".replace("'", '"')
                return f'{name} == "{spec.values[0]}"'
        return ""

    def require(self, t: _Typed, want: ExprType, what: str) -> _Fn:
        if t.kind != "value" or t.type is not want:
            raise self.error(
                f"{what} needs {_DESCRIBE_TYPE[want]}, got {self.describe(t)}{self.hint(t, want)}",
                t.offset,
            )
        assert t.fn is not None
        return t.fn

    def value(self, t: _Typed, what: str) -> _Typed:
        """Reject text and list literals where a value is needed."""
        if t.kind != "value":
            raise self.error(f"{what} cannot use {self.describe(t)}{self.hint(t, ExprType.BOOL)}", t.offset)
        return t

    def same_type(self, a: _Typed, b: _Typed, what: str) -> ExprType:
        """The common type of two branches (number, condition or same-valued category)."""
        a, b = self.value(a, what), self.value(b, what)
        assert a.type is not None and b.type is not None
        if a.type is ExprType.MAP or b.type is ExprType.MAP:
            bad = a if a.type is ExprType.MAP else b
            raise self.error(
                f"{what} cannot return {self.describe(bad)}{self.hint(bad, ExprType.NUMBER)}", bad.offset
            )
        if a.type is not b.type or (a.type is ExprType.ENUM and a.values != b.values):
            raise self.error(
                f"both branches of {what} must have the same type; got {self.describe(a)} and {self.describe(b)}",
                b.offset,
            )
        return a.type

    # ---- dispatch

    def visit(self, node: ast.AST) -> _Typed:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.forbidden(node)
        return method(node)

    def forbidden(self, node: ast.AST) -> ExpressionError:
        name = type(node).__name__
        desc = _FORBIDDEN_NODES.get(name, f"'{name}'")
        offset = self.at(node) if hasattr(node, "lineno") else 0
        return self.error(f"{desc} is not allowed in a policy expression", offset)

    def visit_Constant(self, node: ast.Constant) -> _Typed:
        value = node.value
        offset, label = self.at(node), self.label(node)
        if isinstance(value, bool):
            return _Typed("value", ExprType.BOOL, lambda env: value, offset, label, literal=value)
        if isinstance(value, (int, float)):
            number = float(value) if not isinstance(value, int) or abs(value) <= MAX_LITERAL else math.inf
            if not math.isfinite(number) or abs(number) > MAX_LITERAL:
                raise self.error(
                    f"number {label} is too large; numbers in a policy must be at most 1e12 in size", offset
                )
            return _Typed("value", ExprType.NUMBER, lambda env: number, offset, label, literal=number)
        if isinstance(value, str):
            return _Typed("text", None, None, offset, label, literal=value)
        kinds = {bytes: "a bytes literal", complex: "a complex number", type(None): "'None'", type(...): "'...'"}
        desc = kinds.get(type(value), f"the literal {label}")
        raise self.error(f"{desc} is not allowed in a policy expression", offset)

    def visit_Name(self, node: ast.Name) -> _Typed:
        if node.id in _BOOL_NAMES:
            flag = _BOOL_NAMES[node.id]
            return _Typed("value", ExprType.BOOL, lambda env: flag, self.at(node), node.id, literal=flag)
        return self.field_ref(node, [(node.id, self.at(node))])

    def visit_Attribute(self, node: ast.Attribute) -> _Typed:
        parts: list[tuple[str, int]] = []
        current: ast.AST = node
        while isinstance(current, ast.Attribute):
            attr_at = max(self.end(current) - len(current.attr), self.at(current))
            parts.append((current.attr, attr_at))
            current = current.value
        if not isinstance(current, ast.Name):
            dot = self.between(self.end(current), len(self.text))
            what = "a function call" if isinstance(current, ast.Call) else "this"
            raise self.error(
                f"attribute access ('.name') is only allowed on field names such as "
                f"{_quoted_list(sorted(self.schema)[:3])}, not on {what}",
                dot,
            )
        parts.append((current.id, self.at(current)))
        parts.reverse()
        return self.field_ref(node, parts)

    def field_ref(self, node: ast.AST, parts: list[tuple[str, int]]) -> _Typed:
        """Resolve a (dotted) name to a schema field, or explain what is wrong with it."""
        for part, offset in parts:
            if part.startswith("__"):
                raise self.error(
                    f"'{part}' is not allowed in a policy expression (names starting with '__' are reserved)",
                    offset,
                )
        name = ".".join(p for p, _ in parts)
        start = self.at(node)
        if name in self.schema:
            spec = self.schema[name]
            self.fields.add(name)
            if spec.type in (ExprType.NUMBER, ExprType.MAP):
                return _Typed("value", spec.type, lambda env: _bounded(env[name]), start, name, values=spec.values)
            return _Typed("value", spec.type, lambda env: env[name], start, name, values=spec.values)
        if len(parts) == 1 and name in FUNCTIONS:
            raise self.error(f"'{name}' is a function; call it with parentheses, e.g. {name}(...)", start)
        children = sorted(k for k in self.schema if k.startswith(name + "."))
        if children:
            raise self.error(
                f"'{name}' is not a field by itself; did you mean {children[0]!r}?"
                + (f" (fields under it: {_quoted_list(children)})" if len(children) > 1 else ""),
                start,
            )
        prefix = ".".join(p for p, _ in parts[:-1])
        if prefix in self.schema and self.schema[prefix].type is ExprType.MAP:
            key, key_at = parts[-1]
            keys = self.schema[prefix].values
            if key in keys:
                raise self.error(f"unknown field '{name}'; did you mean '{prefix}[\"{key}\"]'?", key_at)
            raise self.error(
                f"{prefix} is a map; pick a key in brackets, one of {_quoted_list(keys)}, "
                f"e.g. {prefix}[\"{keys[0]}\"]",
                key_at,
            )
        offset = parts[0][1]
        for i in range(1, len(parts)):
            head = ".".join(p for p, _ in parts[:i])
            if not any(k == head or k.startswith(head + ".") for k in self.schema):
                break
            offset = parts[i][1]
        suggestion = _did_you_mean(name, self.schema)
        if suggestion is not None:
            raise self.error(f"unknown field {name!r}; did you mean {suggestion!r}?", offset)
        known = _quoted_list(sorted(self.schema)) or "(none)"
        raise self.error(f"unknown field {name!r}; the fields available here are {known}", offset)

    def visit_Subscript(self, node: ast.Subscript) -> _Typed:
        target = self.visit(node.value)
        bracket = self.between(self.end(node.value), self.at(node.slice))
        if target.kind != "value" or target.type is not ExprType.MAP:
            maps = sorted(k for k, f in self.schema.items() if f.type is ExprType.MAP)
            example = f" such as {maps[0]}" if maps else ""
            raise self.error(
                f"only map fields{example} can be indexed with [...]; {target.label} is {self.describe(target)}",
                bracket,
            )
        key_node = node.slice
        if isinstance(key_node, ast.Slice):
            raise self.forbidden(key_node)
        keys = target.values
        if not (isinstance(key_node, ast.Constant) and isinstance(key_node.value, str)):
            raise self.error(
                f"the key of {target.label} must be written as text, one of {_quoted_list(keys)} "
                f"(e.g. {target.label}[\"{keys[0]}\"])",
                self.at(key_node),
            )
        key = key_node.value
        if key not in keys:
            suggestion = _did_you_mean(key, keys)
            tail = f"did you mean {suggestion!r}?" if suggestion else f"the keys are {_quoted_list(keys)}"
            raise self.error(f"unknown key {key!r} for {target.label}; {tail}", self.at(key_node))
        column = keys.index(key)
        source = target.fn
        assert source is not None
        return _Typed(
            "value", ExprType.NUMBER, lambda env: source(env)[:, column], target.offset, self.label(node)
        )

    def visit_Tuple(self, node: ast.Tuple | ast.List) -> _Typed:
        example = self.enum_example(in_list=True)
        tail = f", as in {example}" if example else ""
        raise self.error(f"a list of values is only allowed after 'in'{tail}", self.at(node))

    visit_List = visit_Tuple

    def visit_UnaryOp(self, node: ast.UnaryOp) -> _Typed:
        offset = self.at(node)
        if type(node.op) in _FORBIDDEN_OPERATORS:
            symbol, hint = _FORBIDDEN_OPERATORS[type(node.op)]
            raise self.error(f"'{symbol}' is not allowed in a policy expression{hint}", offset)
        operand = self.visit(node.operand)
        label = self.label(node)
        if isinstance(node.op, ast.Not):
            fn = self.require(operand, ExprType.BOOL, "'not'")
            return _Typed("value", ExprType.BOOL, lambda env: np.logical_not(fn(env)), offset, label)
        symbol = "-" if isinstance(node.op, ast.USub) else "+"
        fn = self.require(operand, ExprType.NUMBER, f"'{symbol}'")
        if isinstance(node.op, ast.USub):
            return _Typed("value", ExprType.NUMBER, lambda env: np.negative(fn(env)), offset, label)
        return _Typed("value", ExprType.NUMBER, fn, offset, label)

    def visit_BinOp(self, node: ast.BinOp) -> _Typed:
        op_at = self.between(self.end(node.left), self.at(node.right))
        op_type = type(node.op)
        if op_type in _FORBIDDEN_OPERATORS:
            symbol, hint = _FORBIDDEN_OPERATORS[op_type]
            raise self.error(f"'{symbol}' is not allowed in a policy expression{hint}", op_at)
        left = self.visit(node.left)
        offset, label = self.at(node), self.label(node)
        if isinstance(node.op, ast.Pow):
            lf = self.require(left, ExprType.NUMBER, "'**'")
            exponent = node.right
            if (
                not isinstance(exponent, ast.Constant)
                or isinstance(exponent.value, bool)
                or not isinstance(exponent.value, (int, float))
                or not 0 <= exponent.value <= MAX_EXPONENT
            ):
                raise self.error(
                    f"'**' needs a constant exponent between 0 and {MAX_EXPONENT} (e.g. x ** 2), "
                    f"got {self.label(exponent)}",
                    self.at(exponent),
                )
            power = _power(float(exponent.value))
            return _Typed("value", ExprType.NUMBER, lambda env: _bounded(power(lf(env))), offset, label)
        symbol, op = _ARITHMETIC[op_type]
        lf = self.require(left, ExprType.NUMBER, f"'{symbol}'")
        rf = self.require(self.visit(node.right), ExprType.NUMBER, f"'{symbol}'")
        return _Typed("value", ExprType.NUMBER, lambda env: _bounded(op(lf(env), rf(env))), offset, label)

    def visit_BoolOp(self, node: ast.BoolOp) -> _Typed:
        word = "and" if isinstance(node.op, ast.And) else "or"
        fns = [self.require(self.visit(v), ExprType.BOOL, f"'{word}'") for v in node.values]
        combine = np.logical_and if word == "and" else np.logical_or
        return _Typed(
            "value",
            ExprType.BOOL,
            lambda env: functools.reduce(combine, [f(env) for f in fns]),
            self.at(node),
            self.label(node),
        )

    def visit_IfExp(self, node: ast.IfExp) -> _Typed:
        cond = self.require(self.visit(node.test), ExprType.BOOL, "the test of 'if ... else'")
        return self.choice(cond, self.visit(node.body), self.visit(node.orelse), "'if ... else'", node)

    def choice(self, cond: _Fn, a: _Typed, b: _Typed, what: str, node: ast.AST) -> _Typed:
        result = self.same_type(a, b, what)
        af, bf = a.fn, b.fn
        assert af is not None and bf is not None
        return _Typed(
            "value",
            result,
            lambda env: np.where(cond(env), af(env), bf(env)),
            self.at(node),
            self.label(node),
            values=a.values,
        )

    def visit_Compare(self, node: ast.Compare) -> _Typed:
        nodes = [node.left, *node.comparators]
        operands: list[_Typed] = []
        for i, operand in enumerate(nodes):
            op_before = node.ops[i - 1] if i else None
            if isinstance(op_before, (ast.In, ast.NotIn)) and isinstance(operand, (ast.Tuple, ast.List)):
                operands.append(self.literal_list(operand))
            else:
                operands.append(self.visit(operand))
        pairs: list[tuple[int, int, Callable[[Any, Any], Any]]] = []
        for i, op in enumerate(node.ops):
            op_at = self.between(self.end(nodes[i]), self.at(nodes[i + 1]))
            pairs.append((i, i + 1, self.comparison(operands[i], op, operands[i + 1], op_at)))
        getters = [t.fn if t.kind == "value" else None for t in operands]

        def evaluate(env: Mapping[str, Any]) -> Any:
            values = [g(env) if g is not None else None for g in getters]
            result = None
            for left, right, compare in pairs:
                outcome = compare(values[left], values[right])
                result = outcome if result is None else np.logical_and(result, outcome)
            return result

        return _Typed("value", ExprType.BOOL, evaluate, self.at(node), self.label(node))

    def literal_list(self, node: ast.Tuple | ast.List) -> _Typed:
        """The bracketed values after 'in'; checked against the category in `comparison`."""
        items = tuple(
            (e.value if isinstance(e, ast.Constant) else None, self.at(e), self.label(e)) for e in node.elts
        )
        return _Typed("list", None, None, self.at(node), self.label(node), literal=items)

    def enum_code(self, category: _Typed, text: str, offset: int) -> int:
        if text in category.values:
            return category.values.index(text)
        suggestion = _did_you_mean(text, category.values)
        tail = (
            f"did you mean {suggestion!r}?"
            if suggestion
            else f"the only allowed value is {_quoted_list(category.values)}" if len(category.values) == 1
            else f"the allowed values are {_quoted_list(category.values)}"
        )
        spec = self.schema.get(category.label)
        if spec is not None and spec.why_values:
            tail += f" ({spec.why_values})"
        raise self.error(f"unknown value {text!r} for {category.label}; {tail}", offset)

    def comparison(self, a: _Typed, op: ast.cmpop, b: _Typed, op_at: int) -> Callable[[Any, Any], Any]:
        """Type-check one link of a (possibly chained) comparison; return its array function."""
        op_type = type(op)
        if op_type in _FORBIDDEN_OPERATORS:
            symbol, hint = _FORBIDDEN_OPERATORS[op_type]
            raise self.error(f"'{symbol}' is not allowed in a policy expression{hint}", op_at)
        if isinstance(op, (ast.In, ast.NotIn)):
            word = "in" if isinstance(op, ast.In) else "not in"
            if b.kind != "list":
                example = self.enum_example(in_list=True) or 'x in ["a", "b"]'
                raise self.error(f"after '{word}' write a list of values in brackets, e.g. {example}", b.offset)
            if a.kind != "value" or a.type is not ExprType.ENUM:
                tip = "; for numbers combine comparisons, e.g. 'x == 1 or x == 2'" if a.type is ExprType.NUMBER else ""
                raise self.error(f"'{word}' works only on a category field, got {self.describe(a)}{tip}", a.offset)
            codes = []
            for text, at, label in b.literal:
                if not isinstance(text, str):
                    raise self.error(
                        f"the list after '{word}' may only hold values of {a.label} as text, "
                        f"such as \"{a.values[0]}\"; got {label}",
                        at,
                    )
                codes.append(self.enum_code(a, text, at))
            codes_array = np.array(codes, dtype=np.int64)
            invert = word == "not in"
            return lambda x, _: np.isin(x, codes_array, invert=invert)
        if a.kind == "list" or b.kind == "list":
            bad = a if a.kind == "list" else b
            raise self.error("a list of values only goes after 'in' or 'not in'", bad.offset)
        if op_type in _EQUALITY:
            symbol, eq = _EQUALITY[op_type]
            for category, other in ((a, b), (b, a)):
                if category.type is ExprType.ENUM and other.kind == "text":
                    code = self.enum_code(category, other.literal, other.offset)
                    if category is a:
                        return lambda x, _: eq(x, code)
                    return lambda _, y: eq(y, code)
            if a.kind == "text" or b.kind == "text":
                text_side = a if a.kind == "text" else b
                other = b if text_side is a else a
                example = self.enum_example()
                raise self.error(
                    f"text {text_side.literal!r} can only be compared with a category field"
                    + (f" (e.g. {example})" if example else "")
                    + f", not with {self.describe(other)}",
                    text_side.offset,
                )
            if a.type is ExprType.ENUM and b.type is ExprType.ENUM:
                if a.values != b.values:
                    raise self.error(
                        f"cannot compare {a.label} with {b.label}: they take different values", op_at
                    )
                return eq
            for side in (a, b):
                if side.type is ExprType.MAP:
                    raise self.error(
                        f"'{symbol}' cannot compare {self.describe(side)}{self.hint(side, ExprType.NUMBER)}",
                        side.offset,
                    )
            if a.type is not b.type:
                raise self.error(
                    f"'{symbol}' cannot compare {self.describe(a)} with {self.describe(b)}", op_at
                )
            return eq
        symbol, order = _ORDERING[op_type]
        for side in (a, b):
            if side.type is ExprType.ENUM:
                raise self.error(
                    f"category field {side.label} can only be compared with '==', '!=', 'in' or 'not in', "
                    f"not '{symbol}'",
                    op_at,
                )
        self.require(a, ExprType.NUMBER, f"'{symbol}'")
        self.require(b, ExprType.NUMBER, f"'{symbol}'")
        return order

    def visit_Call(self, node: ast.Call) -> _Typed:
        func = node.func
        if isinstance(func, ast.Attribute):
            method_at = max(self.end(func) - len(func.attr), self.at(func))
            if func.attr.startswith("__"):
                raise self.error(
                    f"'{func.attr}' is not allowed in a policy expression (names starting with '__' are reserved)",
                    method_at,
                )
            raise self.error(
                f"method calls are not allowed in a policy expression; the functions are {', '.join(FUNCTIONS)}",
                method_at,
            )
        if not isinstance(func, ast.Name):
            if type(func).__name__ in _FORBIDDEN_NODES:
                raise self.forbidden(func)
            raise self.error(
                f"only named functions can be called, such as floor(x); the functions are {', '.join(FUNCTIONS)}",
                self.at(func),
            )
        name, name_at = func.id, self.at(func)
        if name.startswith("__"):
            raise self.error(
                f"'{name}' is not allowed in a policy expression (names starting with '__' are reserved)", name_at
            )
        if name not in FUNCTIONS:
            if name in self.schema or name in _BOOL_NAMES:
                raise self.error(f"'{name}' is a value, not a function; remove the '(...)'", name_at)
            suggestion = _did_you_mean(name, FUNCTIONS)
            tail = f"did you mean {suggestion!r}?" if suggestion else f"the functions are {', '.join(FUNCTIONS)}"
            raise self.error(f"unknown function {name!r}; {tail}", name_at)
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.error("unpacking with '**' is not allowed in a policy expression", self.at(keyword))
            raise self.error(
                f"{name}() takes no keyword arguments; pass values by position, e.g. {name}(x)",
                self.at(keyword),
            )
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.forbidden(arg)
        low, high = FUNCTIONS[name]
        count = len(node.args)
        if not low <= count <= high:
            wanted = f"{low} argument{'s' if low != 1 else ''}" if low == high else f"{low} to {high} arguments"
            raise self.error(f"{name}() takes {wanted}, got {count}", name_at)
        args = [self.visit(a) for a in node.args]
        offset, label = self.at(node), self.label(node)
        if name == "if_else":
            cond = self.require(args[0], ExprType.BOOL, "if_else() argument 1")
            return self.choice(cond, args[1], args[2], "if_else()", node)
        fns = [self.require(a, ExprType.NUMBER, f"{name}() argument {i + 1}") for i, a in enumerate(args)]
        if name in _UNARY_FUNCTIONS:
            unary, (x,) = _UNARY_FUNCTIONS[name], fns
            return _Typed("value", ExprType.NUMBER, lambda env: unary(x(env)), offset, label)
        if name in ("min", "max"):
            pick = np.minimum if name == "min" else np.maximum
            return _Typed(
                "value",
                ExprType.NUMBER,
                lambda env: functools.reduce(pick, [f(env) for f in fns]),
                offset,
                label,
            )
        if name == "clip":
            x, lo, hi = fns
            return _Typed("value", ExprType.NUMBER, lambda env: _clip(x(env), lo(env), hi(env)), offset, label)
        # days_since
        now = self.schema.get("now")
        if now is None or now.type is not ExprType.NUMBER:
            raise self.error(
                "days_since() needs a number field 'now' (the current day), which this context does not provide",
                name_at,
            )
        self.fields.add("now")
        (t,) = fns
        return _Typed("value", ExprType.NUMBER, lambda env: _bounded(np.subtract(_bounded(env["now"]), t(env))),
                      offset, label)


# --------------------------------------------------------------------------- entry point


def _check_brackets(text: str) -> None:
    """Reject bracket nesting deeper than MAX_DEPTH before the parser sees it."""
    depth = 0
    for i, c in enumerate(_mask_code(text)):
        if c in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ExpressionError(
                    f"expression is nested too deeply (more than {MAX_DEPTH} levels of brackets); simplify it",
                    i,
                )
        elif c in ")]}":
            depth = max(depth - 1, 0)


def _syntax_message(exc: SyntaxError, source: str) -> str:
    detail = (exc.msg or "").strip()
    if detail.startswith("invalid syntax"):
        detail = detail[len("invalid syntax") :].lstrip(". ")
    if isinstance(exc, IndentationError):
        detail = ""
    masked = _mask_code(source)
    hints = [hint for pattern, hint in _SYNTAX_HINTS if pattern.search(masked)]
    cut = _TRAILING.search(masked)
    if cut is not None:
        op = cut.group(1)
        hints.insert(0, f"the expression ends with '{op}', which needs {_NEEDS.get(op, 'a number or a field')} "
                        "after it")
    hint = hints[0] if hints else "expressions use 'and', 'or', 'not' and '==' as in Python"
    return f"invalid syntax{': ' + detail if detail else ''}; {hint}"


def _parse(text: str, base: int) -> ast.Expression:
    source = text[base:]
    if "\x00" in source:
        raise ExpressionError("the expression contains a NUL character; remove it", text.index("\x00"))
    try:
        with warnings.catch_warnings():
            # Sloppy text Python merely warns about ("1and x", "\\d" in a string) is rejected outright.
            warnings.simplefilter("error", SyntaxWarning)
            warnings.simplefilter("error", DeprecationWarning)
            return ast.parse(source, mode="eval")
    except SyntaxError as exc:
        offset = len(text)
        if exc.lineno is not None and exc.offset is not None and exc.offset > 0:
            starts = _line_starts(source)
            line_index = min(max(exc.lineno - 1, 0), len(starts) - 1)
            offset = min(base + starts[line_index] + exc.offset - 1, len(text))
        raise ExpressionError(_syntax_message(exc, source), offset) from None
    except (SyntaxWarning, DeprecationWarning) as exc:
        raise ExpressionError(f"invalid syntax: {exc}", base) from None
    except (RecursionError, MemoryError, ValueError, OverflowError):
        raise ExpressionError("expression is too complex to read; simplify it", base) from None


def _check_size(tree: ast.Expression, compiler: _Compiler) -> None:
    """Bound the number of expression nodes and their nesting, without recursion."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            count += 1
            if count > MAX_NODES:
                raise ExpressionError(
                    f"expression is too large (more than {MAX_NODES} parts); split it into smaller rules",
                    compiler.at(node),
                )
            if depth > MAX_DEPTH:
                raise ExpressionError(
                    f"expression is nested too deeply (more than {MAX_DEPTH} levels, where each operator "
                    "in a chain like a + b + c counts as one); simplify it or split it into smaller rules",
                    compiler.at(node),
                )
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1 if isinstance(child, ast.expr) else depth))


def compile_expression(text: str, schema: Schema, *, expect: ExprType | None = None) -> Compiled:
    """Check a policy expression against `schema` and build its vectorised evaluator.

    `expect` is the required result type: BOOL for conditions, NUMBER for
    amounts, None to accept either. Raises ExpressionError (with a message and
    the offset of the offending token) on anything that is not a well-typed
    expression of the policy language.
    """
    if expect not in (None, ExprType.NUMBER, ExprType.BOOL):
        raise ValueError(f"expect must be ExprType.NUMBER, ExprType.BOOL or None, got {expect!r}")
    for name, spec in schema.items():
        if not isinstance(spec, Field):
            raise TypeError(f"schema[{name!r}] must be a Field, got {type(spec).__name__}")
    if not isinstance(text, str):
        raise ExpressionError(
            f"an expression must be text, got {type(text).__name__}; quote it in the YAML, e.g. \"true\"", 0
        )
    if len(text) > MAX_TEXT_LENGTH:
        raise ExpressionError(
            f"expression is too long ({len(text)} characters, the limit is {MAX_TEXT_LENGTH}); "
            "split it into smaller rules",
            MAX_TEXT_LENGTH,
        )
    base = len(text) - len(text.lstrip())
    if base == len(text):
        raise ExpressionError(
            "the expression is empty; write a condition such as 'purchase.amount >= 50' or a number", 0
        )
    _check_brackets(text)
    try:
        tree = _parse(text, base)
        compiler = _Compiler(text, base, schema)
        _check_size(tree, compiler)
        result = compiler.visit(tree.body)
    except (RecursionError, MemoryError):
        raise ExpressionError("expression is too complex to read; simplify it", base) from None
    if result.kind != "value" or result.type not in (ExprType.NUMBER, ExprType.BOOL):
        want = expect or ExprType.BOOL
        wanted = _DESCRIBE_TYPE[expect] if expect else "a number or a condition (true/false)"
        raise ExpressionError(
            f"expected {wanted}, got {compiler.describe(result)}{compiler.hint(result, want)}", result.offset
        )
    if expect is not None and result.type is not expect:
        raise ExpressionError(
            f"expected {_DESCRIBE_TYPE[expect]}, got {_DESCRIBE_TYPE[result.type]}{compiler.hint(result, expect)}",
            result.offset,
        )
    assert result.fn is not None
    used = frozenset(compiler.fields)
    return Compiled(
        text=text,
        type=result.type,
        fields=used,
        _fn=result.fn,
        _schema={name: schema[name] for name in sorted(used)},
    )
