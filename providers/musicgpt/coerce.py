"""Coercion of MusicGPT's loosely typed values (pure).

The reference (MusicGPT's public API docs (https://docs.musicgpt.com)): "Numbers may
arrive as strings (``"conversion_cost": "0.88"``); fields may be null or absent." Empty
strings are treated as absent (the byId shape answers ``""`` for paths not produced
yet)."""

from __future__ import annotations

import math
from typing import Any


def as_str(value: Any) -> str | None:
    """A non-empty string, or None (``""``, null, absent and non-strings become None)."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def as_number(value: Any) -> float | None:
    """A finite, non-negative number from a number or a numeric string, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer beyond float range (JSON allows 4300 digits)
        return None
    return value if math.isfinite(value) and value >= 0 else None


def as_flag(value: Any) -> bool:
    """MusicGPT booleans: ``true``, ``"true"``, ``1``, ``"1"``."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True or (isinstance(value, int) and value == 1)
