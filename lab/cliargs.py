"""Command-line value types shared by every `lab` subcommand: clear messages, never a traceback."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.config import FieldMeta


def _whole(text: str, minimum: int, what: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if v < minimum:
        raise argparse.ArgumentTypeError(f"expected {what} >= {minimum}, got {v}")
    return v


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return _whole(text, 1, "a whole number")


def seed(text: str) -> int:
    """A random seed: a whole number >= 0."""
    return _whole(text, 0, "a seed")


def fraction(text: str) -> float:
    """A fraction strictly between 0 and 1."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number like 0.05, got '{text}'") from None
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (0.05 = within 5% of the mean), got {v}")
    return v


def count(text: str) -> int:
    """A whole number >= 0 (a replication, a design point, a customer id, a number of retries)."""
    return _whole(text, 0, "a whole number")


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, say)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number like 60, got '{text}'") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return v


def scenario_bounded(path: str, fix: str) -> Callable[[str], int]:
    """A whole number inside the bounds a scenario file declares for the field at `path` (e.g. 'days').

    The bounds are read from the field's declaration in lab.scenario.model (imported when a value is
    given, not when the parser is built), so the command line and the scenario file accept the same values;
    `fix` says what to do instead."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        meta = declared(path)
        if meta.violates(v):
            raise argparse.ArgumentTypeError(f"{v} is outside the bounds of '{path}' in a scenario "
                                             f"({meta.bounds_text()}); {fix}")
        return v

    parse.__name__ = path.rsplit(".", 1)[-1]
    return parse


def declared(path: str) -> FieldMeta:
    """The declaration (doc, bounds) of a scenario field given by its dotted path, e.g. 'population.customers'."""
    import dataclasses
    import typing

    from lab.config import FieldMeta
    from lab.scenario.model import Scenario

    cls: type = Scenario
    parts = path.split(".")
    for i, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            raise KeyError(f"{cls.__name__} has no field '{part}'")
        if i == len(parts) - 1:
            meta = next((m for m in fields[part].metadata.values() if isinstance(m, FieldMeta)), None)
            if meta is None:
                raise KeyError(f"{path} is not a declared option")
            return meta
        cls = typing.get_type_hints(cls)[part]
    raise KeyError(path)


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def memory_size(text: str) -> int:
    """A memory budget in bytes: '4G', '512M', '1.5GB', '2GiB', or a share of this machine's memory, '25%'."""
    t = text.strip().upper().replace(" ", "")
    example = "expected a size like 4G, 512M or 25% (of this machine's memory)"
    if t.endswith("%"):
        try:
            share = float(t[:-1])
        except ValueError:
            raise argparse.ArgumentTypeError(f"{example}, got '{text}'") from None
        if not (math.isfinite(share) and 0 < share <= 100):
            raise argparse.ArgumentTypeError(f"expected a share between 0% and 100%, got '{text}'")
        from lab.experiment.memory import machine_memory

        total = machine_memory()
        if total is None:
            raise argparse.ArgumentTypeError(f"this machine does not say how much memory it has, so '{text}' cannot "
                                             "be worked out; give a size such as 4G")
        return max(1, int(total * share / 100))
    for suffix in ("IB", "B"):
        if t.endswith(suffix) and len(t) > len(suffix) and t[-len(suffix) - 1] in "KMGT":
            t = t[:-len(suffix)]
            break
    unit = t[-1] if t and t[-1] in _UNITS else ""
    try:
        v = float(t[:-1] if unit else t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{example}, got '{text}'") from None
    size = v * _UNITS[unit]
    if not (math.isfinite(size) and size >= 2**20):
        raise argparse.ArgumentTypeError(f"expected at least 1M of memory, got '{text}'")
    return int(size)
