"""The per-process caches' one rule: an entry with its expiry, at most ``CACHE_ENTRIES``
of them, the oldest going first."""

from __future__ import annotations

from typing import Any

CACHE_SECONDS = 1.0  # how long a key record or a final job record may be answered from memory
CACHE_ENTRIES = 4096  # per cache; the oldest entry goes first


def remember(cache: dict[str, tuple[float, Any]], name: str, expires: float, value: Any) -> None:
    """Keep ``value`` under ``name`` until ``expires`` (the cache's own clock)."""
    cache.pop(name, None)
    if len(cache) >= CACHE_ENTRIES:
        del cache[next(iter(cache))]
    cache[name] = (expires, value)
