"""Reading a provider's configuration from the environment mapping, one way for all.

Usage::

    base = text(env, "MUSICGPT_BASE_URL", DEFAULT_BASE_URL).rstrip("/")
    limit = count(env, "MUSICGPT_MAX_CONNECTIONS", 50)
    timeouts = timeouts_from(env, "MUSICGPT")   # MUSICGPT_CONNECT_TIMEOUT, _READ_, ...

A value that is set but unusable (not a number, zero or negative) is a ``ValueError``
naming the variable: a typo in the configuration fails the start, it is never replaced by
a default in silence. An empty value counts as unset.
"""

from __future__ import annotations

from collections.abc import Mapping

from providers.kit.http import Timeouts


def text(env: Mapping[str, str], name: str, default: str = "") -> str:
    """The stripped value, or ``default`` when unset or blank."""
    return (env.get(name) or "").strip() or default


def seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds."""
    raw = text(env, name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def count(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive whole number."""
    raw = text(env, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def timeouts_from(env: Mapping[str, str], prefix: str, default: Timeouts | None = None) -> Timeouts:
    """``{prefix}_CONNECT_TIMEOUT``, ``_READ_TIMEOUT``, ``_WRITE_TIMEOUT``, ``_POOL_TIMEOUT``."""
    base = default or Timeouts()
    return Timeouts(
        connect=seconds(env, f"{prefix}_CONNECT_TIMEOUT", base.connect),
        read=seconds(env, f"{prefix}_READ_TIMEOUT", base.read),
        write=seconds(env, f"{prefix}_WRITE_TIMEOUT", base.write),
        pool=seconds(env, f"{prefix}_POOL_TIMEOUT", base.pool),
    )
