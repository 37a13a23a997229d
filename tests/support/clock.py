"""Time in tests without waiting for it: a clock moved by hand, and the stored state that
Redis' own clock or the gateway's wall clock would age, aged on purpose.

A test that asserts "X happens after N seconds" either injects a ``FakeClock`` where the
code takes one (``CircuitBreaker(clock=...)``, ``Store(clock=..., wall_clock=...)``,
``WebhookOutbox(clock=...)``), or
moves the stored timestamps back by N seconds (``age_job``, ``rewind_bucket``): the
code under test then sees exactly N seconds gone by, however slow the machine is.

Usage::

    clock = FakeClock()
    breaker = use_breaker_clock(app, "echo", clock)   # the app's breaker, on ``clock``
    clock.advance(breaker.cooldown)                   # the cooldown has passed
    await age_job(store, job_id, 60)                  # the job was made/refreshed 60 s ago
    await rewind_bucket(redis, limits.bucket_key("upstream:echo"), 10)   # 10 s of refill
    await wall_clock_reaches(expires_at)              # where only the real clock will do
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from redis.asyncio import Redis

from gateway.infra.resilience import CircuitBreaker
from gateway.store.store import JobRecord, Store

__all__ = [
    "FakeClock",
    "age_job",
    "rewind_bucket",
    "use_breaker_clock",
    "wall_clock_reaches",
]


class FakeClock:
    """A callable clock that only moves when ``advance`` is called."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.monotonic() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def use_breaker_clock(app: Any, provider: str, clock: FakeClock) -> CircuitBreaker:
    """Give a started app's circuit breaker for ``provider`` the clock ``clock``: a fresh
    breaker with the app's settings (closed), in the one dict every part of the job
    service reads its breakers from."""
    breakers = app.state.jobs.breakers
    old = breakers[provider]
    breakers[provider] = CircuitBreaker(
        provider, failures=old.threshold, cooldown=old.cooldown, clock=clock
    )
    return breakers[provider]


async def age_job(store: Store, job_id: str, seconds: float) -> JobRecord:
    """The job as if created, updated and refreshed ``seconds`` earlier (its create's
    deadline too), its refresh lease (Redis' clock) expired: what ``seconds`` of waiting
    would leave in the store."""

    def older(record: JobRecord) -> JobRecord:
        until = record.submit_until
        return msgspec.structs.replace(
            record,
            created_at=record.created_at - seconds,
            updated_at=record.updated_at - seconds,
            refreshed_at=record.refreshed_at - seconds,
            submit_until=None if until is None else until - seconds,
        )

    done = await store.update_job(job_id, older)
    assert done is not None, f"no job {job_id}"
    await store.redis.delete(store.lease_key(job_id))
    return done.record


async def rewind_bucket(redis: Redis, key: str, seconds: float) -> None:
    """A token bucket (``gateway.store.limits``) as if last touched ``seconds`` earlier:
    the next take refills ``seconds`` worth of tokens (up to its capacity)."""
    assert await redis.exists(key), f"no bucket {key}"
    await redis.hincrbyfloat(key, "ts", -seconds)


async def wall_clock_reaches(epoch: float) -> None:
    """Until ``time.time()`` has reached ``epoch``: for code that reads the real clock and
    takes no other (the provider clients). A wait on that very condition, no margin."""
    while (left := epoch - time.time()) > 0:
        await asyncio.sleep(left)
