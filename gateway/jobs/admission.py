"""Per-key request limits: the part of the lifecycle the API layer calls before a route runs.

Usage::

    admission = Admission(limits, settings)
    await admission.admit(key)        # raises TooManyRequests (429, Retry-After) beyond rpm
"""

from __future__ import annotations

from gateway.infra.errors import TooManyRequests
from gateway.infra.settings import Settings
from gateway.store.keys import KeyRecord
from gateway.store.limits import Limits


class Admission:
    """Counts requests against each key's requests-per-minute budget, in Redis (shared by
    every process). A key's own ``rpm`` overrides ``GATEWAY_RATE_LIMIT_RPM``; 0 is no
    limit."""

    def __init__(self, limits: Limits, settings: Settings) -> None:
        self.limits = limits
        self.settings = settings

    async def admit(self, key: KeyRecord) -> None:
        """Count one request against the key's requests-per-minute budget (429 beyond)."""
        rpm = key.rpm if key.rpm is not None else self.settings.rate_limit_rpm
        if rpm <= 0:
            return
        grant = await self.limits.take(f"rpm:{key.id}", capacity=rpm, per_second=rpm / 60)
        if not grant.allowed:
            raise TooManyRequests(
                f"Rate limit exceeded: this key may make {rpm} requests per minute.",
                retry_after=grant.retry_after,
            )
