"""The words of configuration diagnostics: field paths, values and hints as users read them.

Shared by the builder (:mod:`lab.config.build`) and the declarations' bounds text, so a
path, a number or a value is described the same way in every message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from lab.config.yamlio import Node
from lab.errors import printable

__all__ = ["article", "at_text", "describe", "field_label", "number_hint", "number_text", "render_path"]

Path = tuple[str | int, ...]

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


def field_label(path: Path) -> str:
    for i in range(len(path) - 1, -1, -1):
        if isinstance(path[i], str):
            return render_path(path[i:])
    return render_path(path)


def at_text(path: Path, label: str | None = None) -> str:
    text = render_path(path)
    return f" (at {text})" if text and text != label else ""


def number_text(v: float) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        if v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        return repr(v)
    return str(v)


def describe(node: Node) -> str:
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
        return repr(v) if isinstance(v, float) and math.isfinite(v) else number_text(v)
    if isinstance(v, str):
        if not v:
            return "empty text"
        return f"the text '{printable(v)}'"
    return f"a {type(v).__name__}"


def article(word: str) -> str:
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


_FLOATISH = re.compile(r"^\s*[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def number_hint(node: Node) -> str:
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

