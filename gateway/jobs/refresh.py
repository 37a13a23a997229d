"""The refresh part: a job's snapshot brought up to date from its provider.

A poll (``get``) refreshes an in-flight job when due; the background refresher
(``refresh_due``) does it for jobs nobody polls. Across processes, one lease holder
refreshes a job per interval, within the provider's shared status-call budget; within a
process, concurrent refreshes of one job share one upstream call. A create whose answer
was lost (or whose process died mid-create) is failed ``upstream_outcome_unknown`` after
its bound (``expire_unknown``; the bounds in ``gateway/jobs/lost.py``).
"""

from __future__ import annotations

import asyncio
import hmac
import time

import stamina
import structlog

from gateway.infra.errors import NotFound
from gateway.infra.log import bind
from gateway.infra.resilience import backoff, is_transient
from gateway.jobs import lost
from gateway.jobs.core import Conflicted, JobCore
from gateway.jobs.records import job_ref, unconverted_notice
from gateway.store.limits import Bucket, Grant
from gateway.store.store import JobRecord, decode_job
from providers.base import ModelSpec, Pollable, ProviderError, Snapshot, is_final

#: Seconds a booked turn of the budget waits for its job past the turn (the refresher
#: claims it within milliseconds; a process that died meanwhile just loses the turn).
RESERVATION_GRACE = 30.0

log = structlog.get_logger("gateway.jobs.service")

POLL_BUDGET = 5.0  # seconds a status poll may spend on retries
#: A job whose conversion is due (``gateway/jobs/mirror.py``): the refresher enqueues its
#: copy again every ``CONVERSION_RECHECK`` seconds (its queued copy may be lost with a
#: process), and completes it unconverted ``CONVERSION_DEADLINE`` seconds after it was due.
CONVERSION_RECHECK = 30.0
CONVERSION_DEADLINE = 300.0
LEASE_WAIT = 0.5  # seconds a poll waits for another process's refresh under way


class _Skipped(Exception):
    """The breaker or the budget said no to a retry: try again after ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        self.wait = wait


class Refreshes:
    """Reads and refreshes of jobs."""

    def __init__(self, core: JobCore) -> None:
        self.core = core
        self.store = core.store
        self.settings = core.settings
        self.metrics = core.metrics
        self.providers = core.providers
        self.catalog = core.catalog
        self.breakers = core.breakers
        self._inflight: dict[str, asyncio.Task[tuple[JobRecord, bool]]] = {}

    async def load(self, owner: str, job_id: str) -> JobRecord:
        """The caller's job (a final one may come from the store's short-lived cache)."""
        record = await self.store.get_job_cached(job_id) if job_id.startswith("mus_") else None
        if record is None or not hmac.compare_digest(record.owner, owner):
            raise NotFound(
                f"No music job {job_id!r}.",
                param="music_id",
                reason="music_not_found_or_not_owned",
            )
        return record

    def _due(self, record: JobRecord, now: float) -> bool:
        if record.native_id is None:
            return False  # create under way, or its answer was lost (awaiting a callback)
        if record.conversion == "due":
            return False  # the provider finished: the mirror converts it
        if is_final(record.status):
            return record.refresh_after is not None and now >= record.refresh_after
        return now - record.refreshed_at >= self.settings.refresh_interval

    async def get(self, owner: str, job_id: str) -> tuple[JobRecord, bool]:
        """The job, refreshed from upstream when due. Returns (record, stale)."""
        record = await self.load(owner, job_id)
        bind(job_id=job_id, provider=record.provider, model=record.model)
        now = time.time()
        if record.native_id is None and not is_final(record.status):
            if now >= self.expiry(record):
                return await self.expire_unknown(record), False
            return record, False
        if record.conversion == "due" and now - record.updated_at >= CONVERSION_DEADLINE:
            return await self._give_up_conversion(record, now - record.updated_at), False
        if not self._due(record, now):
            return record, False
        return await self._refresh_once(record, wait=True)

    async def _refresh_once(self, record: JobRecord, wait: bool = False) -> tuple[JobRecord, bool]:
        job_id = record.id
        task = self._inflight.get(job_id)
        if task is None:  # singleflight within this process
            task = asyncio.ensure_future(self._refresh(record, wait))
            self._inflight[job_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(job_id, None))
        return await asyncio.shield(task)

    async def refresh_due(self, job_id: str) -> None:
        """The background refresher's turn for one job: refresh it if due, expire a lost
        create, or put it back on the schedule."""
        record = await self.store.get_job(job_id)
        if record is None:
            await self.store.schedule.remove(job_id)
            return
        if is_final(record.status):  # zero upstream calls from here on
            if self.core.notifier.notifies(record):
                await self.core.notifier.notify(record)  # queued once, whoever came first
            await self.store.schedule.apply_zops(self.core.release(record))  # if a process died
            return
        now = time.time()
        if record.conversion == "due":
            await self._converting(record, now)
            return
        if record.native_id is None:
            deadline = self.expiry(record)
            if now >= deadline:
                await self.expire_unknown(record)
            else:
                await self.store.schedule.add(job_id, deadline)
            return
        if not self._due(record, now):
            await self.store.schedule.add(job_id, record.refreshed_at + self.core.period)
            return
        await self._refresh_once(record)

    async def _converting(self, record: JobRecord, now: float) -> None:
        """A job converted by the mirror (``updated_at``: when its conversion was due):
        its copy enqueued again past each ``CONVERSION_RECHECK``, given up (completed
        with the provider's audio, said in its warnings) past ``CONVERSION_DEADLINE``."""
        waited = now - record.updated_at
        if waited >= CONVERSION_DEADLINE or self.core.convert is None:
            await self._give_up_conversion(record, waited)
            return
        if waited >= CONVERSION_RECHECK:
            await self.core.start_conversion(record, int(waited // CONVERSION_RECHECK))
        again = min(now + CONVERSION_RECHECK, record.updated_at + CONVERSION_DEADLINE)
        await self.store.schedule.add(record.id, again)

    async def _give_up_conversion(self, record: JobRecord, waited: float) -> JobRecord:
        notice = unconverted_notice(record.format, "no conversion finished in time")
        done = await self.core.finish_conversion(record.id, None, notice)
        if done is None:  # finished meanwhile
            return await self.store.get_job(record.id) or record
        log.warning("conversion_given_up", job_id=record.id, waited=round(waited, 1))
        return done

    def expiry(self, record: JobRecord) -> float:
        """When a job without a native id is given up (``gateway/jobs/lost.py``)."""
        return lost.expiry(record, self.settings.unknown_outcome_seconds)

    async def expire_unknown(self, record: JobRecord) -> JobRecord:
        """Fail a job whose create never got an answer nor a callback in time."""
        return await lost.expire(self.core, record)

    async def _await_other(self, record: JobRecord) -> JobRecord:
        """Another process holds the lease: its refresh is under way. Wait (briefly) for
        the snapshot it stores rather than answer one older than the interval."""
        deadline = time.monotonic() + min(LEASE_WAIT, self.settings.refresh_interval)
        delay = 0.01
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            current = await self.store.get_job(record.id)
            if current is None or current.version != record.version:
                return current or record
            delay = min(delay * 2, 0.1)
        return record

    async def _refresh(self, record: JobRecord, wait: bool = False) -> tuple[JobRecord, bool]:
        spec = self.catalog.get(record.model)
        provider = self.core.pollable.get(record.provider)
        if spec is None or provider is None:  # unknown, or a provider that is not polled
            return record, False
        breaker = self.breakers[record.provider]
        if not breaker.allow():
            log.info("refresh_skipped_circuit_open", job_id=record.id)
            return await self._not_refreshed(record, self.core.period)
        # ... and across processes: one lease holder per refresh interval. The lease and a
        # fresh read (the caller's copy may predate another holder's snapshot) come in one
        # round trip, the budget after them.
        bucket = self.bucket(record)
        raw: bytes | None = None
        interval = self.settings.refresh_interval
        if interval > 0:
            # the background refresher queues for a tight budget (first come, first served)
            reserve = self.settings.background_refresh
            begun = await self.store.begin_refresh(record.id, interval, bucket, reserve=reserve)
            if not begun.leased or begun.raw is None:
                breaker.release_trial()
                if wait and not begun.leased:  # a client polls: the other's snapshot
                    return await self._await_other(record), False
                return record, False
            raw, record = begun.raw, decode_job(begun.raw)
            if not self._due(record, time.time()):
                breaker.release_trial()
                return record, False
            grant = begun.grant
        else:
            grant = await self._take(bucket) if bucket is not None else None
        started = time.perf_counter()
        try:
            snap = await self._fetch(record, spec, provider, bucket, grant)
        except _Skipped as skipped:
            return await self._not_refreshed(record, skipped.wait)
        except ProviderError:  # logged by ``_fetch``
            return await self._not_refreshed(record, self.core.period)
        finally:
            bind(upstream_ms=round((time.perf_counter() - started) * 1000, 2))
        try:
            return await self.core.store_snapshot(record, snap, raw=raw), False
        except Conflicted as conflict:  # a callback landed meanwhile: it is at least as fresh
            return conflict.current, False

    async def _fetch(
        self,
        record: JobRecord,
        spec: ModelSpec,
        provider: Pollable,
        bucket: Bucket | None,
        grant: Grant | None,
    ) -> Snapshot:
        """One status fetch, retried (``GATEWAY_POLL_RETRIES`` times, full-jitter backoff,
        within ``POLL_BUDGET`` seconds, through stamina) while the provider is in trouble
        (5xx, reset, timeout). Each retry asks the breaker and spends from the budget
        again; either saying no ends the refresh (``_Skipped``). The first attempt goes
        straight out (stamina's machinery costs ~0.2 ms)."""
        breaker = self.breakers[record.provider]
        retries = self.settings.poll_retries
        began = time.monotonic()
        tries = 1
        try:
            try:
                return await self._fetch_once(record, spec, provider, grant)
            except ProviderError as exc:
                if not is_transient(exc) or retries < 1:
                    raise

            def again(exc: Exception) -> bool | float:
                if not isinstance(exc, ProviderError) or not is_transient(exc) or tries > retries:
                    return False
                return backoff(tries - 1)

            await asyncio.sleep(backoff(0))
            left = max(0.0, POLL_BUDGET - (time.monotonic() - began))
            retrying = stamina.retry_context(on=again, attempts=retries, timeout=left)
            async for attempt in retrying:
                with attempt:
                    tries = attempt.num + 1
                    if not breaker.allow():
                        log.info("refresh_skipped_circuit_open", job_id=record.id)
                        raise _Skipped(self.core.period)
                    grant = await self._take(bucket) if bucket is not None else None
                    return await self._fetch_once(record, spec, provider, grant)
        except ProviderError as exc:
            log.warning(
                "refresh_failed",
                job_id=record.id,
                provider=record.provider,
                error=exc.code,
                upstream_status=exc.native_status,
                attempts=tries,
            )
            raise
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _fetch_once(
        self, record: JobRecord, spec: ModelSpec, provider: Pollable, grant: Grant | None
    ) -> Snapshot:
        breaker = self.breakers[record.provider]
        if grant is not None and not grant.allowed:
            breaker.release_trial()
            log.info("upstream_budget_spent", provider=record.provider, job_id=record.id)
            self.metrics.budget_denied.labels(record.provider).inc()
            if grant.reserved:  # its turn is booked: back exactly then, already paid
                await self.store.reserve_for(record.id, grant.retry_after, RESERVATION_GRACE)
                raise _Skipped(grant.retry_after)
            raise _Skipped(max(grant.retry_after, self.core.period))
        state_type = self.providers[record.provider].state_type
        try:
            with self.metrics.upstream(record.provider, "fetch"):
                snap = await provider.fetch(job_ref(record, spec, state_type))
        except ProviderError as exc:
            breaker.record(exc)
            raise
        breaker.record(None)
        return snap

    def budget(self, provider: str) -> float:
        """Status calls per minute all processes together may make to ``provider``."""
        configured = self.settings.upstream_budgets.get(provider)
        if configured is not None:
            return configured
        pollable = self.core.pollable.get(provider)
        return float(pollable.polling.calls_per_minute) if pollable is not None else 0.0

    def bucket(self, record: JobRecord) -> Bucket | None:
        """The provider's shared status-call budget, as spent by one refresh of
        ``record``: the status calls its fetch makes. The bucket holds
        ``upstream_burst_seconds`` of the budget (at least this refresh's cost). None
        when there is no budget."""
        per_minute = self.budget(record.provider)
        if per_minute <= 0:
            return None
        calls = self.core.pollable[record.provider].polling.calls(len(record.native_ids))
        cost = min(max(1, calls), per_minute)
        per_second = per_minute / 60
        capacity = max(cost, per_second * self.settings.upstream_burst_seconds)
        key = self.core.limits.bucket_key(f"upstream:{record.provider}")
        return Bucket(key, capacity, per_second, cost)

    async def _take(self, bucket: Bucket) -> Grant:
        return await self.core.limits.take_from(bucket)

    async def _not_refreshed(self, record: JobRecord, wait: float) -> tuple[JobRecord, bool]:
        """No fresh snapshot this time: answer the cached one, try again after ``wait``."""
        if self.settings.background_refresh and not is_final(record.status):
            await self.store.schedule.add(record.id, time.time() + wait)
        return record, True
