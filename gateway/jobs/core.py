"""What the lifecycle's parts share: the store, the providers and their breakers, the
schedule written with every update, and the one compare-and-set write of a snapshot.

``Creates``, ``Refreshes`` and ``Callbacks`` each hold one ``JobCore``; ``JobService``
composes them. ``changed`` runs after every stored update (metrics, the client's webhook).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog

from gateway.infra.metrics import Metrics
from gateway.infra.resilience import CircuitBreaker
from gateway.infra.settings import Settings
from gateway.jobs.notify import Notifier
from gateway.jobs.records import converted, merge_snapshot
from gateway.store.limits import Limits
from gateway.store.scripts import ZOp
from gateway.store.store import JobRecord, Notice, Store, decode_job
from providers.base import (
    Artefact,
    CallsBack,
    ModelSpec,
    Pollable,
    Provider,
    Snapshot,
    is_final,
)

log = structlog.get_logger("gateway.jobs.service")


class Conflicted(Exception):
    """The job changed since it was read: ``current`` is what is stored now."""

    def __init__(self, current: JobRecord) -> None:
        self.current = current


class JobCore:
    """The shared state of the lifecycle's parts (one per process)."""

    def __init__(
        self,
        store: Store,
        providers: list[Provider],
        settings: Settings,
        metrics: Metrics,
        notifier: Notifier,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.notifier = notifier
        #: Run when a job turns ``completed`` (e.g. the artefact mirror's enqueue).
        self.on_completed: list[Callable[[JobRecord], Awaitable[None]]] = []
        #: Starts the conversion of a job whose provider finished (``conversion`` due):
        #: the artefact mirror's, where the generation worker runs; ``(record, attempt)``.
        self.convert: Callable[[JobRecord, int], Awaitable[None]] | None = None
        self.providers = {p.name: p for p in providers}
        self.catalog: dict[str, ModelSpec] = {m.id: m for p in providers for m in p.catalog.models}
        # Capabilities, read once: who can be polled, who calls back.
        self.pollable: dict[str, Pollable] = {
            p.name: p for p in providers if isinstance(p, Pollable)
        }
        self.calls_back: dict[str, CallsBack] = {
            p.name: p for p in providers if isinstance(p, CallsBack)
        }
        self.limits = Limits(store.redis, prefix=settings.redis_prefix)
        self.breakers = {
            p.name: CircuitBreaker(
                p.name, failures=settings.breaker_failures, cooldown=settings.breaker_cooldown
            )
            for p in providers
        }

    @property
    def period(self) -> float:
        """Seconds between background refreshes of one in-flight job."""
        return max(self.settings.refresh_interval, 0.5)

    def follow(self, defer: float | None = None) -> Callable[[str, JobRecord], list[ZOp]]:
        """The schedule and slot changes applied after a job update, in this order (see
        ``gateway/store/store.py``): a job that turns final frees its in-flight slot and
        then leaves the refresh schedule; one still in flight is due again after
        ``defer`` (default: the refresh period)."""

        def ops(before: str, after: JobRecord) -> list[ZOp]:
            if is_final(after.status):
                return [] if is_final(before) else self.release(after, due=self._last_turn(after))
            if self.settings.background_refresh:
                return [(self.store.due_key, after.id, time.time() + (defer or self.period))]
            return []

        return ops

    def release(self, record: JobRecord, *, due: float | None = None) -> list[ZOp]:
        """What a final job gives back: its owner's slot, then its place on the schedule
        (last: while it is scheduled, the refresher finds it final and releases it).
        ``due``: when the refresher takes one last turn at it instead (None: never)."""
        slots = self.limits.slot_key(record.owner)
        return [(slots, record.id, None), (self.store.due_key, record.id, due)]

    def _last_turn(self, final: JobRecord) -> float | None:
        """When the refresher looks at a job that just turned final once more: to queue
        its final webhook in case this process dies before it does (None: no webhook)."""
        if self.settings.background_refresh and self.notifier.notifies(final):
            return time.time() + self.period
        return None

    async def changed(
        self, before: str, after: JobRecord, *, notify: bool = True, prior: bytes | None = None
    ) -> None:
        """After every stored update (whose schedule and slot changes ``follow`` wrote
        with it): count a finished job, and queue the client's webhook when the status
        changed (``notify``).

        ``prior``: the stored record the update replaced. Its status's webhook is queued
        again first (a no-op when it was: one ``webhook-id`` per change), in case the
        process that stored that status died before it queued the webhook."""
        if is_final(after.status) and not is_final(before):
            self.metrics.job_finished(after.provider, after.status)
            if after.status == "completed":
                for hook in self.on_completed:
                    await hook(after)
        if after.conversion == "due" and (prior is None or decode_job(prior).conversion != "due"):
            await self.start_conversion(after, 0)
        if notify and after.status != before and self.notifier.notifies(after):
            if prior is not None and before != "queued":
                await self.notifier.notify_or_defer(decode_job(prior))
            await self.notifier.notify_or_defer(after)

    async def store_snapshot(
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
                raise Conflicted(current)
            return merge_snapshot(current, snap, time.time())

        done = await self.store.update_job(record.id, apply, follow=self.follow(defer), raw=raw)
        if done is None:
            return record
        await self.changed(done.before, done.record, prior=done.prior)
        return done.record

    async def start_conversion(self, record: JobRecord, attempt: int) -> None:
        """Have the mirror convert ``record``'s audio (the refresher tries again if this
        enqueue is lost: ``Refreshes.refresh_due``)."""
        if self.convert is None:
            return
        try:
            await self.convert(record, attempt)
        except Exception as exc:  # noqa: BLE001 - the refresher's next turn enqueues it
            log.warning("conversion_enqueue_failed", job_id=record.id, error=type(exc).__name__)

    async def finish_conversion(
        self, job_id: str, outputs: list[Artefact] | None, notice: Notice | None = None
    ) -> JobRecord | None:
        """Complete a job whose conversion was due: with its converted ``outputs``, or
        (None) with the provider's and a ``notice``. None when it was not due (any more)."""

        def apply(current: JobRecord) -> JobRecord | None:
            if current.conversion != "due" or is_final(current.status):
                return None
            return converted(current, outputs, notice, time.time())

        done = await self.store.update_job(job_id, apply, follow=self.follow())
        if done is None or done.record.status != "completed" or is_final(done.before):
            return None
        await self.changed(done.before, done.record, prior=done.prior)
        return done.record
