"""The notify part: the public job object rendered (and kept for final jobs), and queued
for the client's webhook on every status change.

Usage::

    notifier = Notifier(store)
    notifier.outbox = WebhookOutbox(...)        # set by the app when webhooks run
    body = await notifier.render(record, base)   # JSON bytes of the public job
    await notifier.notify(record)                # webhook ``music.<status>``, deduplicated
"""

from __future__ import annotations

import msgspec
import structlog

from gateway.jobs.records import to_public, with_debug
from gateway.jobs.sink import SCHEME, resolve_urls
from gateway.notify.webhooks import WebhookOutbox
from gateway.store.artefacts import ArtefactStore
from gateway.store.store import JobRecord, Store
from providers.base import is_final

log = structlog.get_logger("gateway.jobs.service")

RENDERED_ENTRIES = 4096  # final jobs whose JSON is kept (see ``Notifier.render``)

_job_encoder = msgspec.json.Encoder()


class Notifier:
    """Renders jobs and hands status changes to the webhook outbox."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.outbox: WebhookOutbox | None = None
        self.artefacts: ArtefactStore | None = None  # set by the app: stored outputs' URLs
        self._rendered: dict[str, tuple[JobRecord, bytes]] = {}  # job id -> (record, JSON)

    async def render(
        self, record: JobRecord, base_url: str | None = None, *, debug: bool = False
    ) -> bytes:
        """The public job object as JSON. Outputs the gateway stored get fresh signed
        URLs (on ``base_url``, the request's, else the one the job was created through).
        Otherwise a final record's rendering is kept for as long as the store's cache
        hands out that same record object (records are never changed in place), so polls
        of a finished job do not encode it again. ``debug``: the create's answer, which
        carries the upstream exchange the client asked to see."""
        if self.stores_outputs(record):
            record = await resolve_urls(record, self.artefacts, base_url or record.origin)
        elif not (debug and record.debug):
            return self.render_plain(record)
        job = to_public(record)
        return _job_encoder.encode(with_debug(job, record) if debug else job)

    @staticmethod
    def stores_outputs(record: JobRecord) -> bool:
        return any(o.audio_url and o.audio_url.startswith(SCHEME) for o in record.outputs)

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
            payload=await self.render(record),
        )
