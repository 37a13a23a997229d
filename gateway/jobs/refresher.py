"""The background refresher: in-flight jobs advance even when nobody polls them.

Every in-flight job sits in the Redis sorted set ``due`` (job id → when to look again).
Each gateway process runs one ``Refresher``; it claims due ids atomically (a claimed id is
pushed ahead, so two processes never take the same one, and it comes back by itself if
the claimer dies) and hands each to ``JobService.refresh_due``, which still goes through
the per-job lease and the provider's shared budget. Final jobs leave the set. Between
claims it sleeps until the next job is due (at least ``MIN_GAP``, at most ``idle``, which
bounds how late it sees a job scheduled meanwhile by another process): a job's refresh
starts within milliseconds of its due time, so a status is at most one refresh interval
behind, not an interval plus the refresher's sleep.

Usage::

    refresher = Refresher(jobs)
    task = asyncio.create_task(refresher.run(stop))   # in the lifespan; stop.set() ends it
"""

from __future__ import annotations

import asyncio
import time

import structlog
from redis.exceptions import RedisError

from gateway.jobs.service import JobService
from gateway.store.schedule import Claimed

log = structlog.get_logger("gateway.jobs.refresher")

MIN_GAP = 0.01  # seconds between two claims at least (no spinning on a busy schedule)


class Refresher:
    def __init__(
        self, jobs: JobService, *, batch: int = 100, concurrency: int = 32, idle: float = 0.25
    ) -> None:
        self.jobs = jobs
        self.batch = batch
        self.idle = idle
        self.claim_seconds = max(30.0, jobs.period * 4)
        self._slots = asyncio.Semaphore(concurrency)

    async def run_once(self) -> Claimed:
        """Refresh the jobs due now; returns what was claimed."""
        claimed = await self.jobs.store.schedule.claim_due(
            self.batch, self.claim_seconds, time.time()
        )
        self.jobs.metrics.refresher_claims.inc()
        if claimed.ids:
            self.jobs.metrics.refresher_claimed.inc(len(claimed.ids))
            await asyncio.gather(*(self._one(i) for i in claimed.ids))
        return claimed

    async def _one(self, job_id: str) -> None:
        async with self._slots:
            try:
                await self.jobs.refresh_due(job_id)
            except RedisError as exc:  # the claim brings it back after claim_seconds
                log.warning("refresh_due_failed", job_id=job_id, error=type(exc).__name__)
            except Exception:
                log.exception("refresh_due_crashed", job_id=job_id)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.idle
        while not stop.is_set():
            try:
                claimed = await self.run_once()
            except RedisError as exc:
                log.warning("refresher_redis_error", error=type(exc).__name__)
                backoff = min(backoff * 2, 5.0)
                delay = backoff
            else:
                backoff = self.idle
                if claimed.ids:
                    continue  # more may be due by now, and those refreshed are due again
                delay = self.idle
                if claimed.next_due is not None:
                    delay = min(delay, max(MIN_GAP, claimed.next_due - time.time()))
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
