"""The request flow of DESIGN.md: validate and route, submit, store, refresh, callbacks.

Usage::

    service = JobService(store, providers, settings)
    await service.admit(key)                                   # rate limit (429)
    record, replayed = await service.create(key, req, idempotency_key="order-42")
    record, stale = await service.get(owner="key_...", job_id="mus_...")
    job = to_public(record)

No job is lost or doubled: the record is written before the upstream create and
completed after it; a failed create is stored failed (and replayed as such for its
``Idempotency-Key``); a create whose answer was lost is never re-sent, it waits for the
provider's callback and fails with ``upstream_outcome_unknown`` after a bounded time.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable

import msgspec
import structlog

from gateway.creates import UNKNOWN_OUTCOME, Creates
from gateway.errors import InvalidRequest, NotFound, ServiceUnavailable, TooManyRequests
from gateway.keys import KeyRecord
from gateway.limits import Bucket, Grant, Limits
from gateway.log import bind
from gateway.metrics import Metrics
from gateway.records import job_ref, merge_snapshot, to_public
from gateway.resilience import CircuitBreaker, backoff, is_transient
from gateway.settings import Settings
from gateway.store import JobRecord, Store, decode_job
from gateway.store_scripts import ZOp
from gateway.webhooks import WebhookOutbox
from providers.base import JobError, ModelSpec, Provider, ProviderError, Snapshot, is_final

__all__ = ["JobService", "to_public"]

log = structlog.get_logger("gateway.jobs")

POLL_BUDGET = 5.0  # seconds a status poll may spend on retries
RENDERED_ENTRIES = 4096  # final jobs whose JSON is kept (see ``JobService.render``)
LEASE_WAIT = 0.5  # seconds a poll waits for another process's refresh under way

_job_encoder = msgspec.json.Encoder()


class JobService(Creates):
    def __init__(
        self,
        store: Store,
        providers: list[Provider],
        settings: Settings,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.providers = {p.name: p for p in providers}
        self.catalog: dict[str, ModelSpec] = {m.id: m for p in providers for m in p.models}
        self.limits = Limits(store.redis, prefix=settings.redis_prefix)
        self.breakers = {
            p.name: CircuitBreaker(
                p.name, failures=settings.breaker_failures, cooldown=settings.breaker_cooldown
            )
            for p in providers
        }
        self._inflight: dict[str, asyncio.Task[tuple[JobRecord, bool]]] = {}
        self._rendered: dict[str, tuple[JobRecord, bytes]] = {}  # job id -> (record, JSON)
        self.outbox: WebhookOutbox | None = None  # set by the app when webhooks run

    # --------------------------------------------------------------- rate limits

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

    # ------------------------------------------------------------- after updates

    @property
    def period(self) -> float:
        """Seconds between background refreshes of one in-flight job."""
        return max(self.settings.refresh_interval, 0.5)

    def _follow(self, defer: float | None = None) -> Callable[[str, JobRecord], list[ZOp]]:
        """The schedule and slot changes written together with a job update: a job that
        turns final leaves the refresh schedule and frees its in-flight slot; one still in
        flight is due again after ``defer`` (default: the refresh period)."""

        def ops(before: str, after: JobRecord) -> list[ZOp]:
            if is_final(after.status):
                if is_final(before):
                    return []
                slots = self.limits.slot_key(after.owner)
                return [(self.store.due_key, after.id, None), (slots, after.id, None)]
            if self.settings.background_refresh:
                return [(self.store.due_key, after.id, time.time() + (defer or self.period))]
            return []

        return ops

    async def _changed(self, before: str, after: JobRecord, *, notify: bool = True) -> None:
        """After every stored update (whose schedule and slot changes ``_follow`` wrote
        with it): count a finished job, and queue the client's webhook when the status
        changed (``notify``)."""
        if is_final(after.status) and not is_final(before):
            self.metrics.job_finished(after.provider, after.status)
        if notify and after.status != before and after.webhook_url and self.outbox is not None:
            await self._notify(after)

    async def _notify(self, record: JobRecord) -> None:
        """Queue the job object for the client's webhook (deduplicated per status)."""
        assert self.outbox is not None and record.webhook_url
        key = await self.store.get_key(record.owner)
        secret = key.webhook_secret if key is not None else None
        if secret is None:  # a key from before webhooks: give it a secret (rotate to see it)
            secret = await self.store.rotate_webhook_secret(record.owner)
        if secret is None:
            log.warning("webhook_owner_missing", job_id=record.id)
            return
        await self.outbox.enqueue(
            msg_id=f"{record.id}.{record.status}",
            url=record.webhook_url,
            secret=secret,
            event_type=f"music.{record.status}",
            payload=self.render(record),
        )

    # ----------------------------------------------------------------------- get

    def render(self, record: JobRecord) -> bytes:
        """The public job object as JSON. A final record's rendering is kept for as long
        as the store's cache hands out that same record object (records are never
        changed in place), so polls of a finished job do not encode it again."""
        if not is_final(record.status):
            return _job_encoder.encode(to_public(record))
        hit = self._rendered.get(record.id)
        if hit is not None and hit[0] is record:
            return hit[1]
        body = _job_encoder.encode(to_public(record))
        if len(self._rendered) >= RENDERED_ENTRIES and record.id not in self._rendered:
            del self._rendered[next(iter(self._rendered))]  # the oldest goes first
        self._rendered[record.id] = (record, body)
        return body

    async def load(self, owner: str, job_id: str) -> JobRecord:
        """The caller's job (a final one may come from the store's short-lived cache)."""
        record = await self.store.get_job_cached(job_id) if job_id.startswith("mus_") else None
        if record is None or not hmac.compare_digest(record.owner, owner):
            raise NotFound(f"No music job {job_id!r}.", param="music_id")
        return record

    def _due(self, record: JobRecord, now: float) -> bool:
        if record.native_id is None:
            return False  # create under way, or its answer was lost (awaiting a callback)
        if is_final(record.status):
            return record.refresh_after is not None and now >= record.refresh_after
        return now - record.refreshed_at >= self.settings.refresh_interval

    async def get(self, owner: str, job_id: str) -> tuple[JobRecord, bool]:
        """The job, refreshed from upstream when due. Returns (record, stale)."""
        record = await self.load(owner, job_id)
        bind(job_id=job_id, provider=record.provider, model=record.model)
        now = time.time()
        if record.native_id is None and not is_final(record.status):
            if now - record.created_at >= self.settings.unknown_outcome_seconds:
                return await self.expire_unknown(record), False
            return record, False
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
        if record is None or is_final(record.status):
            await self.store.unschedule(job_id)  # final: zero upstream calls from here on
            return
        now = time.time()
        if record.native_id is None:
            deadline = record.created_at + self.settings.unknown_outcome_seconds
            if now >= deadline:
                await self.expire_unknown(record)
            else:
                await self.store.schedule(job_id, deadline)
            return
        if not self._due(record, now):
            await self.store.schedule(job_id, record.refreshed_at + self.period)
            return
        await self._refresh_once(record)

    async def expire_unknown(self, record: JobRecord) -> JobRecord:
        """Fail a job whose create never got an answer nor a callback in time."""

        def apply(current: JobRecord) -> JobRecord | None:
            if current.native_id is not None or is_final(current.status):
                return None  # reconciled meanwhile
            current.status = "failed"
            current.error = JobError(
                code=UNKNOWN_OUTCOME,
                message="The provider never confirmed this job (its create answer was lost "
                "and no callback came); it was not sent again.",
            )
            current.updated_at = time.time()
            current.version += 1
            return current

        done = await self.store.update_job(record.id, apply, follow=self._follow())
        if done is None:
            return record
        if is_final(done.record.status) and not is_final(done.before):
            log.warning("create_outcome_expired", job_id=record.id, provider=record.provider)
            await self._changed(done.before, done.record)
        return done.record

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
        provider = self.providers.get(record.provider)
        if spec is None or provider is None:
            return record, False
        breaker = self.breakers[record.provider]
        if not breaker.allow():
            log.info("refresh_skipped_circuit_open", job_id=record.id)
            return await self._not_refreshed(record, self.period)
        # ... and across processes: one lease holder per refresh interval. Lease, a fresh
        # read (the caller's copy may predate another holder's snapshot) and the budget
        # come in one round trip.
        bucket = self._bucket(record)
        raw: bytes | None = None
        interval = self.settings.refresh_interval
        if interval > 0:
            begun = await self.store.begin_refresh(record.id, interval, bucket)
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
        deadline = time.monotonic() + POLL_BUDGET
        try:
            for attempt in range(self.settings.poll_retries + 1):
                if attempt:
                    if not breaker.allow():
                        log.info("refresh_skipped_circuit_open", job_id=record.id)
                        return await self._not_refreshed(record, self.period)
                    grant = await self._take(bucket) if bucket is not None else None
                if grant is not None and not grant.allowed:
                    breaker.release_trial()
                    log.info("upstream_budget_spent", provider=record.provider, job_id=record.id)
                    self.metrics.budget_denied.labels(record.provider).inc()
                    return await self._not_refreshed(record, max(grant.retry_after, self.period))
                try:
                    with self.metrics.upstream(record.provider, "fetch"):
                        snap = await provider.fetch(job_ref(record, spec))
                    breaker.record(None)
                    break
                except ProviderError as exc:
                    breaker.record(exc)
                    retry = is_transient(exc) and attempt < self.settings.poll_retries
                    if retry and time.monotonic() < deadline:
                        await asyncio.sleep(backoff(attempt))
                        continue
                    log.warning(
                        "refresh_failed",
                        job_id=record.id,
                        provider=record.provider,
                        error=exc.code,
                        upstream_status=exc.native_status,
                        attempts=attempt + 1,
                    )
                    return await self._not_refreshed(record, self.period)
        finally:
            bind(upstream_ms=round((time.perf_counter() - started) * 1000, 2))
        try:
            return await self._store_snapshot(record, snap, raw=raw), False
        except _Conflict as conflict:  # a callback landed meanwhile: it is at least as fresh
            return conflict.current, False

    def budget(self, provider: str) -> float:
        """Status calls per minute all processes together may make to ``provider``."""
        configured = self.settings.upstream_budgets.get(provider)
        if configured is not None:
            return configured
        return float(getattr(self.providers[provider], "status_calls_per_minute", 0) or 0)

    def _bucket(self, record: JobRecord) -> Bucket | None:
        """The provider's shared status-call budget, as spent by one refresh of
        ``record``: the status calls its fetch makes. The bucket holds
        ``upstream_burst_seconds`` of the budget (at least this refresh's cost). None
        when there is no budget."""
        per_minute = self.budget(record.provider)
        if per_minute <= 0:
            return None
        calls = self.providers[record.provider].status_calls(record.native_ids)
        cost = min(max(1, calls), per_minute)
        per_second = per_minute / 60
        capacity = max(cost, per_second * self.settings.upstream_burst_seconds)
        key = self.limits.bucket_key(f"upstream:{record.provider}")
        return Bucket(key, capacity, per_second, cost)

    async def _take(self, bucket: Bucket) -> Grant:
        return await self.limits.take_from(bucket)

    async def _not_refreshed(self, record: JobRecord, wait: float) -> tuple[JobRecord, bool]:
        """No fresh snapshot this time: answer the cached one, try again after ``wait``."""
        if self.settings.background_refresh and not is_final(record.status):
            await self.store.schedule(record.id, time.time() + wait)
        return record, True

    # ----------------------------------------------------------------- callbacks

    async def callback(self, provider_name: str, job_id: str, token: str, body: bytes) -> JobRecord:
        """Apply a provider callback. Unknown job, provider or token: 404, nothing changed."""
        record = await self.store.get_job(job_id) if job_id.startswith("mus_") else None
        provider = self.providers.get(provider_name)
        if (
            record is None
            or provider is None
            or record.provider != provider_name
            or not record.callback_token
            or not hmac.compare_digest(record.callback_token.encode(), token.encode())
        ):
            label = provider_name if provider is not None else "unknown"
            self.metrics.callbacks.labels(label, "rejected").inc()
            raise NotFound("No such callback.")
        spec = self.catalog[record.model]
        bind(job_id=job_id, provider=provider_name)
        for _ in range(20):
            try:
                with self.metrics.upstream(provider_name, "callback"):
                    snap = await provider.callback(job_ref(record, spec), body)
            except ValueError as exc:
                self.metrics.callbacks.labels(provider_name, "rejected").inc()
                raise InvalidRequest(
                    f"Unreadable callback body: {exc}", code="invalid_callback"
                ) from exc
            try:
                updated = await self._store_snapshot(
                    record, snap, defer=self.settings.callback_defer
                )
                if record.native_id is None and updated.native_id is not None:
                    log.info("create_reconciled", job_id=job_id, native_id=updated.native_id)
                self.metrics.callbacks.labels(provider_name, "applied").inc()
                return updated
            except _Conflict as conflict:  # another update landed first: apply on top of it
                record = conflict.current
        raise ServiceUnavailable("Job busy; retry the callback.", code="job_busy")

    async def _store_snapshot(
        self,
        record: JobRecord,
        snap: Snapshot,
        *,
        defer: float | None = None,
        raw: bytes | None = None,
    ) -> JobRecord:
        """Store ``snap`` merged over ``record``, only if nobody changed the job since
        (``raw``: the stored bytes ``record`` was decoded from, when at hand)."""
        expected = record.version

        def apply(current: JobRecord) -> JobRecord:
            if current.version != expected:
                raise _Conflict(current)
            return merge_snapshot(current, snap, time.time())

        done = await self.store.update_job(record.id, apply, follow=self._follow(defer), raw=raw)
        if done is None:
            return record
        await self._changed(done.before, done.record)
        return done.record


class _Conflict(Exception):
    def __init__(self, current: JobRecord) -> None:
        self.current = current
