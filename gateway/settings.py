"""Gateway settings: one frozen, documented dataclass read from the environment.

Usage::

    settings = get_settings()                 # cached, from os.environ
    settings = Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0"})

Provider settings (``MUSICGPT_API_KEY``, ``USEAPI_TOKEN``, ...) are not read here: each
provider package reads its own names from ``Settings.env`` (see ``providers/registry.py``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

_DAY = 86_400


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the gateway reads from its environment (names in brackets)."""

    redis_url: str | None = None
    """[REDIS_URL] Redis to store jobs and keys in. Unset: start an embedded redis-server
    persisting under ``data_dir`` with an append-only file."""

    data_dir: Path = Path(".data")
    """[GATEWAY_DATA_DIR] Where the embedded Redis keeps its files (default ``.data``)."""

    redis_prefix: str = "mgw:"
    """[GATEWAY_REDIS_PREFIX] Prefix of every Redis key the gateway writes."""

    api_keys: tuple[str, ...] = ()
    """[GATEWAY_API_KEYS] Comma-separated bootstrap client keys, seeded (hashed) at start."""

    public_url: str | None = None
    """[GATEWAY_PUBLIC_URL] The gateway's own URL as providers can reach it; when set, each
    create asks the provider to call back at a per-job URL with an unguessable token."""

    job_retention_seconds: int = 30 * _DAY
    """[GATEWAY_JOB_RETENTION_DAYS] How long job records are kept (default 30 days)."""

    refresh_interval: float = 2.0
    """[GATEWAY_REFRESH_INTERVAL] Seconds between upstream refreshes of one in-flight job."""

    max_body_bytes: int = 64 * 1024
    """[GATEWAY_MAX_BODY_BYTES] Largest accepted request body (413 beyond)."""

    redis_timeout: float = 2.0
    """[GATEWAY_REDIS_TIMEOUT] Seconds before a Redis call is given up (503)."""

    log_level: str = "info"
    """[GATEWAY_LOG_LEVEL] debug | info | warning | error."""

    log_format: str = "auto"
    """[GATEWAY_LOG_FORMAT] json | console | auto (console on a TTY, JSON otherwise)."""

    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The whole environment mapping, handed to provider factories."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``)."""
        env = dict(os.environ if env is None else env)
        retention_days = _float(env, "GATEWAY_JOB_RETENTION_DAYS", 30.0)
        if retention_days <= 0:
            raise ValueError("GATEWAY_JOB_RETENTION_DAYS must be positive")
        public_url = (env.get("GATEWAY_PUBLIC_URL") or "").strip().rstrip("/") or None
        log_format = env.get("GATEWAY_LOG_FORMAT", "auto").strip().lower() or "auto"
        if log_format not in {"auto", "json", "console"}:
            raise ValueError("GATEWAY_LOG_FORMAT must be json, console or auto")
        return cls(
            redis_url=(env.get("REDIS_URL") or "").strip() or None,
            data_dir=Path(env.get("GATEWAY_DATA_DIR") or ".data"),
            redis_prefix=env.get("GATEWAY_REDIS_PREFIX") or "mgw:",
            api_keys=_csv(env.get("GATEWAY_API_KEYS")),
            public_url=public_url,
            job_retention_seconds=int(retention_days * _DAY),
            refresh_interval=_float(env, "GATEWAY_REFRESH_INTERVAL", 2.0),
            max_body_bytes=int(_float(env, "GATEWAY_MAX_BODY_BYTES", 64 * 1024)),
            redis_timeout=_float(env, "GATEWAY_REDIS_TIMEOUT", 2.0),
            log_level=(env.get("GATEWAY_LOG_LEVEL") or "info").lower(),
            log_format=log_format,
            env=MappingProxyType(env),
        )

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line or a response."""
        names = ("MUSICGPT_API_KEY", "USEAPI_TOKEN")
        found = [self.env.get(n, "") for n in names]
        return tuple(s for s in (*self.api_keys, *found) if s and len(s) >= 6)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from ``os.environ``."""
    return Settings.from_env()
