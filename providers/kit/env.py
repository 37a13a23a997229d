"""Reading a provider's configuration from the environment mapping, one way for all.

Usage::

    settings = ProviderSettings.load(env, "MUSICGPT", base_url=DEFAULT_BASE_URL, pooled=True)
    base = text(env, "MUSICGPT_BASE_URL", DEFAULT_BASE_URL).rstrip("/")
    limit = count(env, "MUSICGPT_MAX_CONNECTIONS", 50)
    timeouts = timeouts_from(env, "MUSICGPT")   # MUSICGPT_CONNECT_TIMEOUT, _READ_, ...

A value that is set but unusable (not a number, zero or negative) is a ``ValueError``
naming the variable: a typo in the configuration fails the start, it is never replaced by
a default in silence. An empty value counts as unset.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

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


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A provider client's settings: ``{PREFIX}_BASE_URL``, ``{PREFIX}_API_KEY`` (or
    ``key``), the four ``{PREFIX}_*_TIMEOUT`` values and, when ``pooled``,
    ``{PREFIX}_MAX_CONNECTIONS``. A provider subclasses it for its own ``from_env``."""

    base_url: str
    api_key: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    write_timeout: float = 10.0
    pool_timeout: float = 5.0
    max_connections: int = 50

    @classmethod
    def load(
        cls,
        env: Mapping[str, str],
        prefix: str,
        *,
        base_url: str,
        timeouts: Timeouts | None = None,
        pooled: bool = False,
        key: str | None = None,
    ) -> ProviderSettings:
        """Read them; a value set but unusable is a ``ValueError`` naming it."""
        t = timeouts_from(env, prefix, timeouts)
        return cls(
            base_url=text(env, f"{prefix}_BASE_URL", base_url).rstrip("/"),
            api_key=text(env, key or f"{prefix}_API_KEY") or None,
            connect_timeout=t.connect,
            read_timeout=t.read,
            write_timeout=t.write,
            pool_timeout=t.pool,
            max_connections=count(env, f"{prefix}_MAX_CONNECTIONS", 50) if pooled else 50,
        )

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.write_timeout,
            pool=self.pool_timeout,
        )
