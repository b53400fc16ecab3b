"""Factors: one parameter a batch varies, as declared (`FactorSpec`) and as checked (`Factor`).

`check_factor` turns a `FactorSpec` from the spec into a `Factor`: its
target (a scenario or policy parameter, resolved by lab.batch.overrides),
its kind (float, int or choice), its range or levels checked against the
parameter's type and bounds, and the dataset column type its values take.
Every problem goes to the spec's diagnostics collector with a code and the
spec path of the offending key, so one load reports all of them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal, cast

from lab.batch.design import Axis, Design, Grid
from lab.batch.overrides import Leaf, PathError, Target, resolve
from lab.batch.whole import whole_reason
from lab.config import Expr, Node, SourceMap, option
from lab.errors import Diagnostics, printable, suggest
from lab.scenario.loader import PolicySource
from lab.scenario.model import Scenario

__all__ = ["RESERVED", "Factor", "FactorSpec", "check_factor"]

#: Column names of the dataset that a factor cannot take.
RESERVED = ("run_id", "point", "replication", "policy", "outcome", "value", "period", "day_end", "variable", "error")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, kw_only=True)
class FactorSpec:
    """One parameter to vary: where it lives, and its range or levels."""

    path: str = option("the parameter, e.g. population.segments.regulars.reward_sensitivity or "
                       "policies.points.rules.redeem.do.0.redeem.discount")
    low: float | None = option("lowest value of a numeric range", default=None)
    high: float | None = option("highest value of a numeric range", default=None)
    steps: int | None = option("grid designs: evenly spaced values over low..high", default=None, min=2, max=100_000)
    levels: tuple[Expr | None, ...] | None = option(
        "or: the values to use (numbers, text, true/false or null), converted to the parameter's type", default=None)
    type_: Literal["float", "int", "choice"] | None = option(
        "float, int or choice (default: from the parameter: whole numbers are int, text and true/false are choice)",
        default=None)
    template: str | None = option("for an expression parameter: the expression, with {value} "
                                  "where the factor's value goes, "
                                  "e.g. 'floor(purchase.amount * {value})'", default=None)
    description: str = option("what the factor is", default="")



@dataclass(frozen=True)
class Factor:
    """A checked factor: its target, its domain and how its values become parameter values."""

    name: str
    path: str
    target: Target
    axis: Axis
    dtype: Literal["float64", "int64", "bool", "string"]
    template: str | None
    file: str
    position: tuple[int, int]
    level_positions: tuple[tuple[int, int], ...] = ()

    def field_value(self, value: object) -> object:
        """The parameter value a factor value stands for (expressions become positioned Expr text)."""
        kind = self.target.leaf.kind
        if value is None:
            return None
        if kind == "float":
            return float(value)  # type: ignore[arg-type]
        if kind == "int":
            return int(value)  # type: ignore[call-overload]
        if kind != "expr":
            return value
        text = _expr_text(value)
        line, col = self.position
        if self.template is not None:
            text = self.template.replace("{value}", text)
        elif self.axis.levels is not None and value in self.axis.levels:
            line, col = self.level_positions[self.axis.levels.index(value)]
        return Expr(text, file=self.file, line=line, col=col)

    def describe(self) -> dict[str, object]:
        """The factor as plain data, for the manifest."""
        a = self.axis
        out: dict[str, object] = {"name": self.name, "path": self.path, "type": a.kind, "dtype": self.dtype}
        if a.levels is not None:
            out["levels"] = list(a.levels)
        else:
            out.update(low=a.low, high=a.high)
            if a.steps is not None:
                out["steps"] = a.steps
        if self.template is not None:
            out["template"] = self.template
        return out



def check_factor(name: str, fs: FactorSpec, node: Node | None, scenario: Scenario, sources: dict[str, PolicySource],
                 design: Design, where: SourceMap, file: str, err: Diagnostics, customers: int | None,
                 days: int | None) -> Factor | None:
    """The checked factor `name`, or None after recording its problems in `err` (at spec paths under factors.NAME)."""
    base = ("factors", name)
    n0 = len(err)
    if not _NAME.match(name):
        err.at(base, "invalid", f"factor name '{name}' becomes a column name: use letters, digits and _ "
                                f"(not starting with a digit)")
    elif name in RESERVED:
        err.at(base, "conflict",
               f"factor name '{name}' is also a column of the dataset; rename it, e.g. '{name}_factor'")
    try:
        target = resolve(fs.path, scenario, {k: v.policy for k, v in sources.items()})
    except PathError as e:
        err.at(base + ("path",), "unknown-path", f"factor '{name}': {e}")
        return None
    leaf = target.leaf
    steps = target.steps
    fields = [s.name for s in steps if s.how == "field"]
    if target.policy is None and customers is not None and fields == ["population", "customers"]:
        err.at(base + ("path",), "conflict", f"factor '{name}' varies population.customers, but the batch sets "
                                             f"customers: {customers} "
                              "for every run; remove one of them")
    if target.policy is None and days is not None and fields == ["days"]:
        err.at(base + ("path",), "conflict",
               f"factor '{name}' varies days, but the batch sets days: {days} for every run; "
                              "remove one of them")
    has_range = fs.low is not None or fs.high is not None
    kind = _factor_kind(name, fs, leaf, base, err)
    if kind is None:
        return None
    whole = ""
    if kind == "float" and fs.type_ is None:  # a whole quantity written as a number (a stamp card's length)
        reason = whole_reason(target, sources[target.policy].policy if target.policy in sources else None,
                              fs.template)
        if reason is not None:
            kind, whole = "int", f" ({reason}; give type: float to sample fractions anyway)"
    levels_node = node.get("levels") if node is not None else None
    level_nodes = tuple(levels_node.value) if levels_node is not None and levels_node.kind == "seq" else ()
    if has_range and fs.levels is not None:
        err.at(base + ("levels",), "conflict", f"factor '{name}' has both a range (low/high) and levels; keep one")
        return None
    if not has_range and fs.levels is None:
        hint = "levels: [true, false]" if leaf.kind == "bool" \
            else "levels: [...]" if kind == "choice" else "low: ..., high: ..."
        err.at(base, "required", f"factor '{name}' needs a range or levels, e.g. {hint}")
        return None
    if fs.template is not None:
        if leaf.kind != "expr":
            err.at(base + ("template",), "invalid", f"factor '{name}': template only applies to expression parameters; "
                                      f"'{printable(fs.path)}' is {leaf.describe()}")
        elif "{value}" not in fs.template:
            err.at(base + ("template",), "invalid", f"factor '{name}': the template needs {{value}} "
                                      f"where the value goes, "
                                      f"e.g. 'floor(purchase.amount * {{value}})'")
    levels: tuple[Any, ...] | None = None
    if has_range:
        if kind == "choice":
            err.at(base, "type", f"factor '{name}' is a choice: give levels instead of low/high")
            return None
        for key, v in (("low", fs.low), ("high", fs.high)):
            if v is None:
                err.at(base, "required", f"factor '{name}' needs both low and high (missing {key})")
                return None
            if not math.isfinite(v):
                err.at(base + (key,), "range", f"factor '{name}': {key} must be a finite number")
                return None
            if kind == "int" and not float(v).is_integer():
                err.at(base + (key,), "type", f"factor '{name}' takes whole numbers{whole}; {key} is {v:g}")
            _check_bounds(name, v, leaf, fs.path, base + (key,), err)
        if fs.low is not None and fs.high is not None and not fs.low < fs.high:
            err.at(base + ("high",), "range", f"factor '{name}': high ({fs.high:g}) must be above low ({fs.low:g}); "
                                  "to fix a value, "
                                  "set it in the scenario or policy file instead")
    else:
        values = []
        if not level_nodes:
            err.at(base + ("levels",), "required", f"factor '{name}' needs at least one level")
            return None
        for i, ln in enumerate(level_nodes):
            values.append(_level_value(name, ln.value, kind, leaf, fs, base + ("levels", i), err))
        if len(err) == n0:
            dup = [v for i, v in enumerate(values) if values.index(v) != i]
            if dup:
                err.at(base + ("levels",), "duplicate-value", f"factor '{name}' lists the level {dup[0]!r} twice")
        levels = tuple(values)
    if fs.steps is not None:
        if not isinstance(design, Grid):
            err.at(base + ("steps",), "conflict", f"factor '{name}': steps only applies to grid designs "
                                   f"(an {design.tag} design "
                                   "draws 'samples' values over low..high); remove it")
        elif levels is not None:
            err.at(base + ("steps",), "conflict",
                   f"factor '{name}': steps cuts a range into levels; with levels, remove it")
    elif isinstance(design, Grid) and levels is None and has_range:
        err.at(base, "required", f"factor '{name}': a grid design needs steps (e.g. steps: 5) for a range, or levels")
    if len(err) > n0:
        return None
    axis = Axis(name, cast('Literal["float", "int", "choice"]', kind), fs.low, fs.high, fs.steps, levels)
    positions = tuple((ln.line, ln.col) for ln in level_nodes)
    at = ("template",) if fs.template is not None else ("path",)
    return Factor(name, fs.path, target, axis, _dtype(kind, leaf, levels), fs.template, file,
                  where.at(base + at), positions)


def _factor_kind(name: str, fs: FactorSpec, leaf: Leaf, base: tuple, err: Diagnostics) -> str | None:
    want = fs.type_
    if leaf.kind in ("float", "int"):
        natural = leaf.kind
        if want == "float" and natural == "int":
            err.at(base + ("type",), "type", f"factor '{name}': '{printable(fs.path)}' takes whole numbers; "
                                  "use type: int (or leave type out)")
            return None
        return want or natural
    if leaf.kind == "expr":
        if want == "choice":
            return "choice"
        if fs.template is not None or fs.low is not None or fs.high is not None:
            return want or "float"
        return want or "choice"
    if want in ("float", "int"):
        err.at(base + ("type",), "type", f"factor '{name}': '{printable(fs.path)}' is {leaf.describe()}, "
                              "so the factor is a choice; "
                              "give levels and remove type")
        return None
    return "choice"


def _check_bounds(name: str, v: float, leaf: Leaf, path: str, at: tuple, err: Diagnostics) -> None:
    meta = leaf.meta
    if meta is not None and meta.violates(v):
        err.at(at, "range", f"factor '{name}': {v:g} is outside what '{path}' allows ({meta.bounds_text()})")


def _level_value(name: str, v: object, kind: str, leaf: Leaf, fs: FactorSpec, at: tuple, err: Diagnostics) -> object:
    bad = f"factor '{name}': level {printable(repr(v))} is not {leaf.describe()} as '{printable(fs.path)}' needs"
    if v is None:
        if not leaf.optional:
            err.at(at, "type", f"factor '{name}': '{printable(fs.path)}' cannot be left empty (null)")
        return None
    numeric = isinstance(v, (int, float)) and not isinstance(v, bool)
    if leaf.kind in ("float", "int") or (leaf.kind == "expr" and kind in ("float", "int")):
        if not numeric:
            err.at(at, "type", bad if leaf.kind != "expr"
                   else f"factor '{name}': level {printable(repr(v))} is not a number")
            return v
        assert isinstance(v, (int, float))  # numeric, checked above
        if (kind == "int" or leaf.kind == "int") and not float(v).is_integer():
            err.at(at, "type", f"factor '{name}': level {printable(repr(v))} is not a whole number "
                               f"as '{printable(fs.path)}' needs")
            return v
        _check_bounds(name, float(v), leaf, fs.path, at, err)
        return int(v) if (kind == "int" or leaf.kind == "int") else float(v)
    if leaf.kind == "bool":
        if not isinstance(v, bool):
            err.at(at, "type", bad + " (write true or false)")
        return v
    if leaf.kind == "literal":
        if v not in leaf.choices:
            err.at(at, "choice", f"factor '{name}': {printable(repr(v))} is not one of "
                   + ", ".join(map(repr, leaf.choices))
                + (suggest(v, leaf.choices) if isinstance(v, str) else ""))
        return v
    if leaf.kind == "str":
        if not isinstance(v, str):
            err.at(at, "type", bad + f" (put it in quotes: \"{printable(v)}\")")
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return v  # an expression level: text, or a number used as a constant expression


def _dtype(kind: str, leaf: Leaf, levels: tuple[Any, ...] | None) -> Literal["float64", "int64", "bool", "string"]:
    if kind == "int":
        return "int64"
    if kind == "float":
        return "float64"
    if leaf.kind in ("float", "int"):
        return "float64" if leaf.kind == "float" else "int64"
    if leaf.kind == "bool":
        return "bool"
    if levels is not None and all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in levels):
        return "float64"
    return "string"


def _expr_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)

