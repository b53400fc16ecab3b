"""Factor paths: name any scenario or policy parameter, check the name, and set the value.

A batch varies parameters that live deep inside frozen dataclasses. A path
names one of them the way the YAML files spell it, components joined by dots:

* scenario parameters walk dataclass fields and dictionary keys, e.g.
  ``population.segments.bargain_hunters.reward_sensitivity`` or
  ``store.marketing.budget_per_year``; a tagged choice (a segment's
  ``purchases``) is entered through its tag, as in the YAML:
  ``population.segments.regulars.purchases.bgnbd.r``;
* policy parameters start with ``policies.<policy name>.`` and walk the
  Policy; rules are addressed by their id and actions by their position and
  tag, e.g. ``policies.points.rules.redeem.do.0.redeem.discount`` or
  ``policies.points.points.points.expiry_days`` (policy ``points``, its
  ledger ``points``).

Paths are checked against the dataclass declarations when a batch is loaded
(with "did you mean" on every component) and resolve to a sequence of steps;
setting a value rebuilds only the objects along the path with
``dataclasses.replace``, so the base objects are never changed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

from lab.config import Expr, FieldMeta, yaml_name
from lab.errors import suggest

POLICY_PREFIX = "policies"

LeafKind = Literal["float", "int", "bool", "str", "expr", "literal"]


class PathError(ValueError):
    """A factor path that names nothing: the message says what was expected and suggests a fix."""


@dataclass(frozen=True)
class Leaf:
    """What a path ends at: one value of a primitive type, with its declared bounds."""

    kind: LeafKind
    choices: tuple[Any, ...] = ()  # for literal leaves
    meta: FieldMeta | None = None
    optional: bool = False
    label: str = ""  # the field's YAML name, for messages

    def describe(self) -> str:
        """The value's type in words, for messages."""
        if self.kind == "literal":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return {"float": "a number", "int": "a whole number", "bool": "true or false", "str": "text",
                "expr": "an expression"}[self.kind]


@dataclass(frozen=True)
class Step:
    """One resolved move along a path: into a field, a dictionary key, a tuple item, or through a tag."""

    how: Literal["field", "key", "index", "tag"]
    name: str | int


@dataclass(frozen=True)
class Target:
    """A checked path: which root it starts from (the scenario, or a policy by name) and the steps to its leaf."""

    path: str
    policy: str | None
    steps: tuple[Step, ...]
    leaf: Leaf


# --------------------------------------------------------------------------- type inspection
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    h = _HINTS.get(cls)
    if h is None:
        h = typing.get_type_hints(cls)
        _HINTS[cls] = h
    return h


def _meta(f: dataclasses.Field) -> FieldMeta | None:
    return next((v for v in f.metadata.values() if isinstance(v, FieldMeta)), None)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = typing.get_args(tp)
        rest = tuple(a for a in args if a is not type(None))
        if len(rest) < len(args):
            # Union[...] of a runtime tuple of types has no `X | Y` spelling
            return (rest[0] if len(rest) == 1 else Union[rest]), True  # noqa: UP007
    return tp, False


def _is_dataclass(tp: Any) -> bool:
    """dataclasses.is_dataclass as a plain bool, so mypy keeps an annotation's type ``Any`` (it is a class here)."""
    return dataclasses.is_dataclass(tp)


def _union_members(tp: Any) -> tuple[Any, ...] | None:
    """The members of a tagged union (dataclasses with a ``tag`` attribute), else None."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        members = typing.get_args(tp)
        if all(dataclasses.is_dataclass(m) and isinstance(getattr(m, "tag", None), str) for m in members):
            return members
    return None


def _leaf(tp: Any, meta: FieldMeta | None, label: str) -> Leaf | None:
    inner, optional = _strip_optional(tp)
    if isinstance(inner, type) and issubclass(inner, Expr):
        return Leaf("expr", meta=meta, optional=optional, label=label)
    if inner is bool:
        return Leaf("bool", meta=meta, optional=optional, label=label)
    if inner in (int, float, str):
        return Leaf(inner.__name__, meta=meta, optional=optional, label=label)
    if typing.get_origin(inner) is Literal:
        return Leaf("literal", choices=typing.get_args(inner), meta=meta, optional=optional, label=label)
    return None


def _what(tp: Any) -> str:
    inner, _ = _strip_optional(tp)
    if _is_dataclass(inner):
        return ("an " if inner.__name__[0] in "AEIOU" else "a ") + inner.__name__
    members = _union_members(inner)
    if members:
        return "a choice of " + " or ".join(m.tag for m in members)
    origin = typing.get_origin(inner)
    if origin is dict:
        return "a mapping"
    if origin is tuple:
        return "a list"
    return "a value"


def _field_names(cls: type) -> list[str]:
    return [yaml_name(f.name) for f in dataclasses.fields(cls) if f.init]


# --------------------------------------------------------------------------- resolving
def resolve(path: str, scenario: object, policies: dict[str, object]) -> Target:
    """Check a factor path against the scenario and the batch's policies; PathError says what is wrong."""
    text = path.strip()
    parts = text.split(".") if text else []
    if not parts or any(p == "" for p in parts):
        raise PathError(f"'{path}' is not a path; write the parameter's keys joined by dots, "
                        "e.g. population.segments.regulars.reward_sensitivity")
    if parts[0] == POLICY_PREFIX:
        if len(parts) < 3:
            raise PathError(f"a policy path names the policy and its parameter, e.g. "
                            f"policies.{next(iter(policies), 'points')}.points.points.expiry_days")
        name = parts[1]
        if name not in policies:
            raise PathError(f"policy '{name}' is not in this batch{suggest(name, list(policies))}")
        steps, leaf = _walk(policies[name], parts[2:], f"policies.{name}")
        return Target(text, name, steps, leaf)
    steps, leaf = _walk(scenario, parts, "")
    return Target(text, None, steps, leaf)


def _walk(root: object, parts: list[str], prefix: str) -> tuple[tuple[Step, ...], Leaf]:
    obj: Any = root
    tp: Any = type(root)
    meta: FieldMeta | None = None
    label = prefix.rsplit(".", 1)[-1]
    steps: list[Step] = []
    done = prefix
    for i, part in enumerate(parts):
        here = f"{done}.{part}" if done else part
        tp, _ = _strip_optional(tp)
        if obj is None:
            raise PathError(f"'{done}' is not set in the base files, so it has no '{part}' to change; "
                            "set it in the scenario or policy file first")
        members = _union_members(tp)
        if members is not None:
            tags = [m.tag for m in members]
            if part != obj.tag:
                if part in _field_names(type(obj)):
                    raise PathError(f"'{done}' is '{obj.tag}' in the base files: continue the path with "
                                    f"'{obj.tag}'; did you mean '{done}.{obj.tag}.{part}'?")
                if part in tags:
                    raise PathError(f"'{done}' is '{obj.tag}' in the base files, not '{part}'; "
                                    f"write {done}.{obj.tag}.<parameter>")
                raise PathError(f"'{done}' is '{obj.tag}' in the base files: continue the path with '{obj.tag}'")
            steps.append(Step("tag", part))
            tp = type(obj)
        elif _is_dataclass(tp):
            fields = {yaml_name(f.name): f for f in dataclasses.fields(tp) if f.init}
            f = fields.get(part)
            if f is None:
                raise PathError(f"unknown key '{part}' in {_where(done, tp)}{suggest(part, list(fields))}")
            steps.append(Step("field", f.name))
            obj, tp, meta, label = getattr(obj, f.name), _hints(tp)[f.name], _meta(f), part
        elif typing.get_origin(tp) is dict:
            if part not in obj:
                keys = list(obj)
                hint = suggest(part, keys) or ("; it is empty in the base files" if not keys else "")
                raise PathError(f"'{done}' has no entry '{part}'{hint}")
            steps.append(Step("key", part))
            obj, tp = obj[part], typing.get_args(tp)[1]
        elif typing.get_origin(tp) is tuple:
            ids = [getattr(x, "id", None) for x in obj]
            if obj and all(isinstance(x, str) for x in ids):
                if part not in ids:
                    raise PathError(f"no rule with id '{part}' in '{done}'"
                                    f"{suggest(part, typing.cast('list[str]', ids))} "
                                    "(rules are addressed by id)")
                idx = ids.index(part)
            else:
                if not part.isdigit():
                    raise PathError(f"'{done}' is a list: address its items by position 0..{len(obj) - 1}, "
                                    f"e.g. {done}.0" if obj else f"'{done}' is an empty list in the base files")
                idx = int(part)
                if idx >= len(obj):
                    raise PathError(f"'{done}' has {len(obj)} item{'s' if len(obj) != 1 else ''}: "
                                    f"positions 0..{len(obj) - 1}, not {idx}" if obj
                                    else f"'{done}' is an empty list in the base files")
            steps.append(Step("index", idx))
            args = typing.get_args(tp)
            obj, tp = obj[idx], args[0] if len(args) == 2 and args[1] is Ellipsis else args[idx]
        else:
            raise PathError(f"'{done}' is a single value; it has no '{part}' (remove '.{'.'.join(parts[i:])}')")
        done = here
    tp_inner, _ = _strip_optional(tp)
    members = _union_members(tp_inner)
    if members is not None and obj is not None:
        names = _field_names(type(obj))
        if not names:
            raise PathError(f"'{done}' is '{obj.tag}', which has no values a factor can set")
        raise PathError(f"'{done}' is a choice ('{obj.tag}'), not a single value; continue the path, "
                        f"e.g. {done}.{obj.tag}.{names[0]}")
    leaf = _leaf(tp, meta, label)
    if leaf is None:
        inner = tp_inner
        if obj is None:
            raise PathError(f"'{done}' is not set in the base files; set it there first, then vary one of its values")
        if _is_dataclass(inner) and not _field_names(inner):
            raise PathError(f"'{done}' is {_what(tp)}, which has no values a factor can set")
        if _is_dataclass(inner):
            raise PathError(f"'{done}' is {_what(tp)}, not a single value; continue the path with one of: "
                            + ", ".join(_field_names(inner)))
        if typing.get_origin(inner) is dict and obj:
            raise PathError(f"'{done}' is a mapping, not a single value; continue the path with one of: "
                            + ", ".join(obj))
        if typing.get_origin(inner) is tuple and obj:
            ids = [getattr(x, "id", None) for x in obj]
            what = "a rule id: " + ", ".join(typing.cast("list[str]", ids)) if all(isinstance(x, str) for x in ids) \
                else f"a position, 0..{len(obj) - 1}"
            raise PathError(f"'{done}' is a list, not a single value; continue the path with {what}")
        raise PathError(f"'{done}' is {_what(tp)}, not a single value a factor can set")
    return tuple(steps), leaf


def _where(done: str, cls: type) -> str:
    return f"'{done}' ({cls.__name__})" if done else cls.__name__


# --------------------------------------------------------------------------- setting
def apply(root: Any, steps: tuple[Step, ...], value: object) -> Any:
    """A copy of `root` with the value at the end of `steps` replaced (nothing else is rebuilt)."""
    if not steps:
        return value
    step, rest = steps[0], steps[1:]
    if step.how == "tag":
        return apply(root, rest, value)
    if step.how == "field":
        return dataclasses.replace(root, **{str(step.name): apply(getattr(root, str(step.name)), rest, value)})
    if step.how == "key":
        out = dict(root)
        out[step.name] = apply(root[step.name], rest, value)
        return out
    idx = int(step.name)
    items = list(root)
    items[idx] = apply(items[idx], rest, value)
    return tuple(items)


def get(root: Any, steps: tuple[Step, ...]) -> Any:
    """The value at the end of `steps`."""
    obj = root
    for step in steps:
        if step.how == "field":
            obj = getattr(obj, str(step.name))
        elif step.how in ("key", "index"):
            obj = obj[step.name]
    return obj
