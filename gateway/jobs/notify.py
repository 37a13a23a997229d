"""The notify part: the public job object rendered (and kept for final jobs), and queued
for the client's webhook on every status change.

A status change is stored before its webhook is queued (two writes, not one: the outbox
and the job may live on different Redis nodes). So that no change goes without its
webhook: a webhook that could not be queued (Redis unreachable, restarting) is queued
again in the background, with backoff, for up to ``REQUEUE_SECONDS``. In case the
process that made a change died before it queued the webhook: the job's next change
queues the webhook of the status it replaces again (``JobCore.changed``), and a job that
turns final with a webhook stays on the refresh schedule one more period, when the
refresher queues its final webhook again (``JobCore.follow``, ``Refreshes.refresh_due``).
Queuing is deduplicated per ``webhook-id`` (``{job id}.{status}``), so a change is
delivered under one id.

Usage::

    notifier = Notifier(store)
    notifier.outbox = WebhookOutbox(...)        # set by the app when webhooks run
    body = await notifier.render(record, base)   # JSON bytes of the public job
    await notifier.notify(record)                # webhook ``music.<status>``, deduplicated
    await notifier.notify_or_defer(record)       # the same; on failure, again later
    await notifier.aclose()                      # stop the deferred ones (shutdown)
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import stamina
import structlog

from gateway.jobs.records import to_public, with_debug
from gateway.jobs.sink import resolve_urls, stores_outputs
from gateway.notify.webhooks import WebhookOutbox
from gateway.store.artefacts import ArtefactStore
from gateway.store.store import JobRecord, Store
from providers.base import is_final

log = structlog.get_logger("gateway.jobs.service")

RENDERED_ENTRIES = 4096  # final jobs whose JSON is kept (see ``Notifier.render``)
REQUEUE_SECONDS = 300.0  # how long a webhook Redis refused is tried again in the background

_job_encoder = msgspec.json.Encoder()


class Notifier:
    """Renders jobs and hands status changes to the webhook outbox."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.outbox: WebhookOutbox | None = None
        self.artefacts: ArtefactStore | None = None  # set by the app: stored outputs' URLs
        self._rendered: dict[str, tuple[JobRecord, bytes]] = {}  # job id -> (record, JSON)
        self._deferred: set[asyncio.Task[None]] = set()

    async def render(
        self, record: JobRecord, base_url: str | None = None, *, debug: bool = False
    ) -> bytes:
        """The public job object as JSON. Outputs the gateway stored get fresh signed
        URLs (on ``base_url``, the request's, else the one the job was created through).
        Otherwise a final record's rendering is kept for as long as the store's cache
        hands out that same record object (records are never changed in place), so polls
        of a finished job do not encode it again. ``debug``: the create's answer, which
        carries the upstream exchange the client asked to see."""
        if stores_outputs(record):
            record = await resolve_urls(record, self.artefacts, base_url or record.origin)
        elif not (debug and record.debug):
            return self.render_plain(record)
        job = to_public(record)
        return _job_encoder.encode(with_debug(job, record) if debug else job)

    def render_plain(self, record: JobRecord) -> bytes:
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

    async def notify(self, record: JobRecord) -> None:
        """Queue the job object for the client's webhook (deduplicated per status)."""
        assert self.outbox is not None and record.webhook_url
        key = await self.store.keys.get_key(record.owner)
        secret = key.webhook_secret if key is not None else None
        if secret is None:  # a key from before webhooks: give it a secret (rotate to see it)
            secret = await self.store.keys.rotate_webhook_secret(record.owner)
        if secret is None:
            log.warning("webhook_owner_missing", job_id=record.id)
            return
        await self.outbox.enqueue(
            msg_id=f"{record.id}.{record.status}",
            url=record.webhook_url,
            secret=secret,
            event_type=f"music.{record.status}",
            payload=await self.render(record),
        )

    def notifies(self, record: JobRecord) -> bool:
        """Whether ``record``'s status changes go to a webhook (a create answered with an
        error says it all: no webhook)."""
        return (
            self.outbox is not None
            and record.webhook_url is not None
            and record.answer_status is None
        )

    async def notify_or_defer(self, record: JobRecord) -> None:
        """``notify``; if the webhook cannot be queued now, keep trying in the background
        (the change itself is stored: the caller's request need not fail for it).
        Whatever the failure: Redis unreachable or restarting, or redis-py raising
        ``AttributeError`` for a connection torn down under a write (redis/redis-py#4287,
        seen in the chaos test)."""
        try:
            await self.notify(record)
        except Exception as exc:  # noqa: BLE001 - any failure: again in the background
            log.warning(
                "webhook_enqueue_deferred",
                job_id=record.id,
                status=record.status,
                error=type(exc).__name__,
            )
            task = asyncio.create_task(self._requeue(record))
            self._deferred.add(task)
            task.add_done_callback(self._deferred.discard)

    async def _requeue(self, record: JobRecord) -> None:
        retrying = stamina.retry_context(
            on=Exception, attempts=None, timeout=REQUEUE_SECONDS, wait_initial=0.2, wait_max=5.0
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self.notify(record)
        except Exception as exc:  # noqa: BLE001 - the next change or the last turn queues it
            log.error("webhook_enqueue_failed", job_id=record.id, error=type(exc).__name__)

    async def aclose(self) -> None:
        """Stop the deferred webhooks (the refresher covers final statuses)."""
        tasks, self._deferred = list(self._deferred), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
