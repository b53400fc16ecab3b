"""Command-line value types shared by every `lab` subcommand: clear messages, never a traceback."""

from __future__ import annotations

import argparse


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
