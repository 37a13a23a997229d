"""Reading sunoapi.org's loosely typed values (``code``, ``duration``, strings) strictly."""

from __future__ import annotations

import math
from typing import Any


def as_str(value: Any) -> str | None:
    return (value.strip()[:5000] or None) if isinstance(value, str) else None


def as_number(value: Any) -> float | None:
    """A finite, non-negative number (a JSON number or its ASCII decimal spelling)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        if not value.isascii() or "_" in value:
            return None
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) and f >= 0 else None


def as_code(value: Any) -> int | None:
    n = as_number(value)
    return int(n) if n is not None and n.is_integer() and n < 10**6 else None
