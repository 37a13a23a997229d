"""The generation worker: synchronous providers' ``start`` runs here, never in a request.

A create for a synchronous provider (``Catalog.synchronous``) stores its job, queued and
with its normalized request, and enqueues one SAQ job on a Redis queue that every gateway
process shares; every process runs a SAQ worker. One attempt at a job:

1. The job is final or gone: nothing to do.
2. ``started_at`` is set: an earlier attempt began the upstream call. If its lease is
   still renewed, it is running (SAQ delivers at least once: the same attempt can come
   twice): this one leaves it and looks again a lapse later. Else its worker died (SAQ's
   sweep hands the job back once its heartbeat lapses); the request may have reached the
   provider: the job fails ``upstream_outcome_unknown``, never sent again.
3. A lease among the provider's concurrency (``GATEWAY_CONCURRENCY``, Redis, shared by
   every process). None free: the job is enqueued again for when one may free up (and
   keeps its status).
4. ``started_at`` is written (compare-and-set) before the upstream call; a heartbeat
   touches the SAQ job and renews the lease while the call runs.
5. ``start``: ``Finished`` → the artefacts are stored → ``completed``. A rate limit (429):
   nothing was created upstream, so ``started_at`` is cleared and the job is enqueued
   again with backoff; it stays ``in_progress`` (status only moves forward). A request
   that provably never left (connect failure): the same, a bounded number of times.
   Any other failure fails the job with its code; a lost answer with
   ``upstream_outcome_unknown``.

An attempt that fails on the store (a Redis outage) is tried again by SAQ with backoff
(``RETRIES``, about half a minute in all) rather than dropped. The background refresher
is the last safety net: a synchronous job not final within
``GATEWAY_UNKNOWN_OUTCOME_SECONDS`` of its last attempt is failed the same way.

Usage (the app's lifespan)::

    generations = Generations(core, queue_url, sink)      # queue_url: a single Redis
    task = asyncio.create_task(generations.run(stop))     # stop.set() to end
    await generations.enqueue(job_id)                      # after the record is stored
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import saq
import structlog
from redis.asyncio import Redis
from saq.queue.redis import RedisQueue

from gateway.jobs.core import JobCore
from gateway.jobs.mirror import Mirror
from gateway.jobs.records import (
    UNKNOWN_OUTCOME,
    merge_snapshot,
    outcome_unknown,
)
from gateway.jobs.requests import debug_info, load_diagnostics, load_request
from gateway.jobs.sink import ArtefactSink
from gateway.store.store import JobRecord
from providers import diagnostics
from providers.base import (
    Finished,
    JobError,
    Pending,
    Provider,
    ProviderError,
    Snapshot,
    SubmitRequest,
    UpstreamRateLimited,
    is_final,
)

log = structlog.get_logger("gateway.jobs.generate")

LAPSES = 3  # heartbeats a generation may miss before it is taken for dead (swept)
NEVER_LEFT_RETRIES = 3  # attempts again for a request that provably never left
RETRIES = 10  # SAQ's tries of one attempt: swept, or failed on Redis (0.5 s, doubling to 5 s)
DEFAULT_CONCURRENCY = 4  # a synchronous provider that documents no limit
BUSY_RETRY = 1.0  # seconds at most before a job that found no free place tries again
SHUTDOWN_GRACE = 5.0  # seconds a stopping process lets its generations finish


class _Worker(saq.Worker):
    """A SAQ worker that leaves the process's signals to its server: ``SIGNALS``, the
    public class attribute listing the signals a SAQ worker would take over, is empty."""

    SIGNALS = ()  # type: ignore[assignment]


class Generations:
    """Enqueues synchronous generations and runs them (one worker per process)."""

    def __init__(self, core: JobCore, queue_url: str, sink: ArtefactSink) -> None:
        self.core = core
        self.sink = sink
        # Its own client (blocking dequeues, no command timeout); any URL redis-py takes,
        # the embedded server's unix socket included (SAQ's from_url knows tcp only). A
        # single Redis always (``GATEWAY_QUEUE_REDIS_URL`` beside a cluster): SAQ's
        # scripts and transactions span keys of several slots (its abort keys carry no
        # part of the queue's name), so it cannot run on a Redis Cluster.
        self.queue = RedisQueue(
            Redis.from_url(queue_url), name=f"{core.settings.redis_prefix}generate"
        )
        self.mirror = Mirror(core, sink, self.queue)
        core.on_completed.append(self.mirror.on_completed)
        if self.mirror.converts:
            core.convert = self.mirror.convert
        self.heartbeat = core.settings.worker_heartbeat
        self.lapse = max(1.0, LAPSES * self.heartbeat)  # seconds of silence: dead
        self._running = 0  # attempts under way in this process

    def limit(self, provider: Provider) -> int:
        configured = self.core.settings.concurrency.get(provider.name)
        return configured or provider.catalog.concurrency or DEFAULT_CONCURRENCY

    async def enqueue(self, job_id: str, *, delay: float = 0.0, attempt: int = 0) -> None:
        """Queue one attempt at ``job_id`` (``delay`` seconds from now)."""
        await self.queue.enqueue(
            saq.Job(
                "generate",
                kwargs={"job_id": job_id, "attempt": attempt},
                key=f"{job_id}:{attempt}",
                timeout=0,  # the provider's own timeouts bound the call
                heartbeat=math.ceil(self.lapse),  # swept only once its lease has lapsed
                retries=RETRIES,  # a swept attempt comes back to ``generate``, which decides
                retry_delay=0.5,
                retry_backoff=5.0,
                scheduled=int(time.time() + delay) if delay > 0 else 0,
                ttl=3600,
            )
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set. SAQ's sweep hands back attempts whose heartbeat
        lapsed; it runs every heartbeat (at least 1 s) and, as SAQ does, takes a lock for
        as long across processes."""
        await self.queue.connect()
        worker = _Worker(
            self.queue,
            functions=[
                ("generate", self._generate),
                ("mirror", self.mirror.copy),
                ("expire_artefacts", self.mirror.expire),
            ],
            concurrency=self.core.settings.worker_concurrency,
            timers={"sweep": max(1, round(self.heartbeat))},
        )
        runner = asyncio.create_task(worker.start())
        try:
            await stop.wait()
        finally:
            # Generations under way may finish (up to SHUTDOWN_GRACE); idle dequeues end
            # at once. One cancelled mid-call is failed, never re-sent, by the next try.
            deadline = time.monotonic() + SHUTDOWN_GRACE
            while self._running and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await worker.stop()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
            await self.queue.disconnect()

    @property
    def converts(self) -> bool:
        """Whether an asynchronous job's audio can be converted (``mirror.py``)."""
        return self.mirror.converts

    # -------------------------------------------------------------------- one attempt

    async def _generate(self, ctx: dict[str, Any], *, job_id: str, attempt: int = 0) -> None:
        self._running += 1
        try:
            await self._one(ctx, job_id, attempt)
        finally:
            self._running -= 1

    async def _one(self, ctx: dict[str, Any], job_id: str, attempt: int) -> None:
        record = await self.core.store.get_job(job_id)
        if record is None or is_final(record.status) or record.request is None:
            return
        structlog.contextvars.bind_contextvars(job_id=job_id, provider=record.provider)
        if record.started_at is not None:  # an attempt began the upstream call
            if await self.core.limits.leased(record.provider, job_id):  # and it runs
                log.info("generation_running_elsewhere", job_id=job_id)
                await self.enqueue(job_id, delay=self.lapse, attempt=attempt + 1)
                return
            await self._fail(record, JobError(code=UNKNOWN_OUTCOME, message=_DIED))
            return
        provider = self.core.providers[record.provider]
        held, wait = await self.core.limits.lease(
            record.provider, job_id, limit=self.limit(provider), ttl=self.lapse
        )
        if not held:  # try again soon: a place frees up when another generation ends
            await self._again(record, min(max(wait, 0.2), BUSY_RETRY), attempt, "concurrency_busy")
            return
        beat = asyncio.create_task(self._beat(ctx["job"], record.provider, job_id, provider))
        ours = True
        try:
            ours = await self._attempt(record, provider, attempt)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            if ours:  # (not the lease of another attempt at the job, running it)
                await self.core.limits.release(record.provider, job_id)

    async def _attempt(self, record: JobRecord, provider: Provider, attempt: int) -> bool:
        """Run the attempt; False when another attempt got there first."""
        begun = await self._mark_started(record)
        if begun is None:
            return False
        spec = self.core.catalog[begun.model]
        req = load_request(begun, spec, provider)
        wanted = load_diagnostics(begun)  # the create's answer shows the upstream call
        if wanted is None:
            await self._run(begun, provider, req, attempt)
            return True
        with diagnostics.capture() as exchanges:
            await self._run(
                begun,
                provider,
                req,
                attempt,
                lambda: debug_info(exchanges, wanted, begun.callback_token),
            )
        return True

    async def _run(
        self,
        begun: JobRecord,
        provider: Provider,
        req: SubmitRequest,
        attempt: int,
        debug: Callable[[], bytes | None] = lambda: None,
    ) -> None:
        """One upstream call and its outcome stored (with ``debug()``, the exchange the
        create asked to see, in the same write)."""
        try:
            with self.core.metrics.upstream(provider.name, "submit"):
                started = await provider.start(req)
        except UpstreamRateLimited as exc:  # answered: nothing was created upstream
            await self._again(begun, exc.retry_after or 2.0 * (attempt + 1), attempt, "rate")
            return
        except ProviderError as exc:
            if not exc.sent and attempt < NEVER_LEFT_RETRIES:
                await self._again(begun, 0.5 * (attempt + 1), attempt, exc.code)
                return
            code = UNKNOWN_OUTCOME if outcome_unknown(exc) else exc.code
            await self._fail(begun, JobError(code=code, message=exc.message), debug())
            return
        try:
            snapshot = await self._finish(begun, started, begun.format)  # as asked
        except ProviderError as exc:  # storing the artefacts failed
            await self._fail(begun, JobError(code=exc.code, message=exc.message), debug())
            return
        native = started.native_id if isinstance(started, (Finished, Pending)) else None
        await self._store(begun, snapshot, native, debug())

    async def _finish(self, record: JobRecord, started: Pending | Finished, fmt: str) -> Snapshot:
        if isinstance(started, Pending):  # a synchronous provider answered as async
            return Snapshot(
                status="failed",
                error=JobError(code="upstream_error", message=_PENDING),
            )
        outputs = await self.sink.store_all(record, started, fmt)
        if self.sink.store is not None:
            await self.mirror.retain(record.id)
        return Snapshot(status="completed", progress=100, outputs=outputs)

    # -------------------------------------------------------------------- the record

    async def _mark_started(self, record: JobRecord) -> JobRecord | None:
        """``started_at`` and ``in_progress``, written before the upstream call; None
        when another attempt got there first."""
        now = time.time()

        def apply(current: JobRecord) -> JobRecord | None:
            if current.started_at is not None or is_final(current.status):
                return None
            current.started_at = now
            current.status = "in_progress"
            current.updated_at = current.refreshed_at = now
            current.version += 1
            return current

        done = await self.core.store.update_job(record.id, apply, follow=self._deadline())
        if done is None or done.record.started_at != now:
            return None
        await self.core.changed(done.before, done.record, prior=done.prior)
        return done.record

    async def _again(self, record: JobRecord, delay: float, attempt: int, why: str) -> None:
        """Back in the queue in ``delay`` seconds (nothing was sent). The status stays
        as it is: a job once ``in_progress`` never shows ``queued`` again (status only
        moves forward)."""

        def apply(current: JobRecord) -> JobRecord | None:
            if is_final(current.status):
                return None
            current.started_at = None
            current.refreshed_at = time.time()
            current.version += 1
            return current

        await self.core.store.update_job(record.id, apply, follow=self._deadline(delay))
        log.info("generation_requeued", job_id=record.id, reason=why, delay=round(delay, 2))
        self.core.metrics.generations_requeued.labels(record.provider, why).inc()
        await self.enqueue(record.id, delay=delay, attempt=attempt + 1)

    async def _fail(self, record: JobRecord, error: JobError, debug: bytes | None = None) -> None:
        await self._store(record, Snapshot(status="failed", error=error), None, debug)

    async def _store(
        self,
        record: JobRecord,
        snap: Snapshot,
        native_id: str | None,
        debug: bytes | None = None,
    ) -> None:
        """Merge the attempt's outcome into the job (unless it is final already)."""

        def apply(job: JobRecord) -> JobRecord | None:
            if is_final(job.status):
                return None
            if native_id and not job.native_id:
                job.native_id, job.native_ids = native_id, [native_id]
            if debug is not None:
                job.debug = debug
            return merge_snapshot(job, snap, time.time())

        done = await self.core.store.update_job(record.id, apply, follow=self.core.follow())
        if done is not None and done.record is not None:
            if done.record.status == "failed" and snap.error is not None:
                log.warning("generation_failed", job_id=record.id, error=snap.error.code)
            await self.core.changed(done.before, done.record, prior=done.prior)

    def _deadline(self, delay: float = 0.0) -> Any:
        """The refresher's safety net, written with every attempt's record change."""
        deadline = time.time() + delay + self.core.settings.unknown_outcome_seconds
        due = self.core.store.due_key

        def ops(before: str, after: JobRecord) -> list[tuple[str, str, float | None]]:
            return [(due, after.id, None if is_final(after.status) else deadline)]

        return ops

    async def _beat(self, job: saq.Job, provider: str, job_id: str, p: Provider) -> None:
        """Touch the SAQ job and renew the lease while the upstream call runs."""
        while True:
            await asyncio.sleep(self.heartbeat)
            with contextlib.suppress(Exception):  # a missed beat is retried next time
                await job.update()
                await self.core.limits.lease(provider, job_id, limit=self.limit(p), ttl=self.lapse)


_DIED = (
    "The gateway process running this generation stopped after the request may have "
    "reached the provider; it was not sent again."
)
_PENDING = "The provider answered a synchronous generation with a job to follow."
