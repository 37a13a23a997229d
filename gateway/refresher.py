"""The background refresher: in-flight jobs advance even when nobody polls them.

Every in-flight job sits in the Redis sorted set ``due`` (job id → when to look again).
Each gateway process runs one ``Refresher``; it claims due ids atomically (a claimed id is
pushed ahead, so two processes never take the same one, and it comes back by itself if
the claimer dies) and hands each to ``JobService.refresh_due``, which still goes through
the per-job lease and the provider's shared budget. Final jobs leave the set.

Usage::

    refresher = Refresher(jobs)
    task = asyncio.create_task(refresher.run(stop))   # in the lifespan; stop.set() ends it
"""

from __future__ import annotations

import asyncio
import time

import structlog
from redis.exceptions import RedisError

from gateway.jobs import JobService

log = structlog.get_logger("gateway.refresher")


class Refresher:
    def __init__(
        self, jobs: JobService, *, batch: int = 100, concurrency: int = 32, idle: float = 0.25
    ) -> None:
        self.jobs = jobs
        self.batch = batch
        self.idle = idle
        self.claim_seconds = max(30.0, jobs.period * 4)
        self._slots = asyncio.Semaphore(concurrency)

    async def run_once(self) -> int:
        """Refresh the jobs due now; returns how many were claimed."""
        ids = await self.jobs.store.claim_due(self.batch, self.claim_seconds, time.time())
        if ids:
            await asyncio.gather(*(self._one(i) for i in ids))
        return len(ids)

    async def _one(self, job_id: str) -> None:
        async with self._slots:
            try:
                await self.jobs.refresh_due(job_id)
            except RedisError as exc:  # the claim brings it back after claim_seconds
                log.warning("refresh_due_failed", job_id=job_id, error=type(exc).__name__)
            except Exception:
                log.exception("refresh_due_crashed", job_id=job_id)

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.idle
        while not stop.is_set():
            try:
                claimed = await self.run_once()
                delay = self.idle
            except RedisError as exc:
                log.warning("refresher_redis_error", error=type(exc).__name__)
                claimed, delay = 0, min(delay * 2, 5.0)
            if claimed < self.batch:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    pass
