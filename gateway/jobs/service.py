"""The job lifecycle of DESIGN.md, composed: create, refresh, callbacks, notify.

Usage::

    service = JobService(store, providers, settings)
    record, replayed = await service.create(key, req, idempotency_key="order-42")
    record, stale = await service.get(owner="key_...", job_id="mus_...")
    body = await service.render(record, base)      # the public job object, JSON

Each path is its own part over one shared ``JobCore``: ``Creates`` (``create.py``),
``Refreshes`` (``refresh.py``), ``Callbacks`` (``callbacks.py``) and ``Notifier``
(``notify.py``). This class only wires them and offers their entry points.

No job is lost or doubled: the record is written before the upstream create and
completed after it; a failed create is stored failed (and replayed as such for its
``Idempotency-Key``); a create whose answer was lost is never re-sent, it waits for the
provider's callback and fails with ``upstream_outcome_unknown`` after a bounded time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from gateway.infra.metrics import Metrics
from gateway.infra.settings import Settings
from gateway.jobs.callbacks import Callbacks
from gateway.jobs.core import JobCore
from gateway.jobs.create import Creates
from gateway.jobs.generate import Generations
from gateway.jobs.notify import Notifier
from gateway.jobs.policy import Plan
from gateway.jobs.records import to_public
from gateway.jobs.refresh import Refreshes
from gateway.jobs.sink import ArtefactSink, stores_outputs
from gateway.notify.webhooks import WebhookOutbox
from gateway.store.keys import KeyRecord
from gateway.store.store import JobRecord, Store
from providers.base import ModelSpec, Provider, is_final

__all__ = ["JobService", "to_public"]


def needs_queue(settings: Settings, providers: list[Provider]) -> bool:
    """Whether this gateway runs the generation queue: a synchronous provider is
    configured, or the artefact mirror is on."""
    return settings.artefact_mirror or any(
        p.catalog.synchronous and p.configured for p in providers
    )


class JobService:
    """The lifecycle's entry points, one per path."""

    def __init__(
        self,
        store: Store,
        providers: list[Provider],
        settings: Settings,
        metrics: Metrics | None = None,
        *,
        queue_url: str | None = None,
        sink: ArtefactSink | None = None,
    ) -> None:
        self.notifier = Notifier(store)
        self.core = core = JobCore(store, providers, settings, metrics or Metrics(), self.notifier)
        # Synchronous providers' generations: a SAQ queue on a single Redis (when known).
        self.generations = (
            Generations(core, queue_url, sink or ArtefactSink(None))
            if queue_url and needs_queue(settings, providers)
            else None
        )
        self.creates = Creates(core, self.generations)
        self.refreshes = Refreshes(core)
        self.callbacks = Callbacks(core)
        self.store, self.settings, self.metrics = store, settings, core.metrics
        self.providers = core.providers
        self.catalog: dict[str, ModelSpec] = core.catalog
        self.limits, self.breakers = core.limits, core.breakers

    @property
    def outbox(self) -> WebhookOutbox | None:
        """The client webhook outbox (set by the app when webhooks run)."""
        return self.notifier.outbox

    @outbox.setter
    def outbox(self, outbox: WebhookOutbox | None) -> None:
        self.notifier.outbox = outbox

    @property
    def period(self) -> float:
        """Seconds between background refreshes of one in-flight job."""
        return self.core.period

    def resolve(self, req: Any) -> Plan:
        return self.creates.resolve(req)

    async def create(
        self,
        key: KeyRecord,
        req: Any,
        idempotency_key: str | None = None,
        wait: float | None = None,
        origin: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Start a job; then wait up to ``wait`` seconds for it to be final (None: the
        default, ``GATEWAY_SYNC_WAIT`` for a synchronous provider, 0 otherwise).
        ``origin``: the base URL the request came through (for stored outputs' URLs)."""
        record, replayed = await self.creates.create(key, req, idempotency_key, origin)
        if wait is None:
            provider = self.providers.get(record.provider)
            synchronous = provider is not None and provider.catalog.synchronous
            wait = self.settings.sync_wait if synchronous else 0.0
        if wait > 0 and not is_final(record.status):
            record = await self.wait_final(key.id, record, wait)
        return record, replayed

    async def wait_final(self, owner: str, record: JobRecord, wait: float) -> JobRecord:
        """The job once final, or as it stands after ``wait`` seconds. Reads go through
        ``get`` (a job a provider keeps is refreshed within the usual policy)."""
        deadline = time.monotonic() + wait
        delay = 0.02
        while not is_final(record.status):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 1.5, 0.5)
            record, _ = await self.get(owner, record.id)
        return record

    async def load(self, owner: str, job_id: str) -> JobRecord:
        return await self.refreshes.load(owner, job_id)

    async def get(self, owner: str, job_id: str) -> tuple[JobRecord, bool]:
        return await self.refreshes.get(owner, job_id)

    async def refresh_due(self, job_id: str) -> None:
        await self.refreshes.refresh_due(job_id)

    async def expire_unknown(self, record: JobRecord) -> JobRecord:
        return await self.refreshes.expire_unknown(record)

    def budget(self, provider: str) -> float:
        return self.refreshes.budget(provider)

    async def callback(
        self,
        provider_name: str,
        job_id: str,
        token: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> JobRecord:
        return await self.callbacks.callback(provider_name, job_id, token, headers, body)

    async def callback_for_native(
        self, provider_name: str, native_id: str, headers: Mapping[str, str], body: bytes
    ) -> JobRecord:
        return await self.callbacks.callback_for_native(provider_name, native_id, headers, body)

    def stores_outputs(self, record: JobRecord) -> bool:
        """Whether rendering ``record`` makes signed URLs (and so needs a base URL)."""
        return stores_outputs(record)

    async def render(
        self, record: JobRecord, base_url: str | None = None, *, debug: bool = False
    ) -> bytes:
        return await self.notifier.render(record, base_url, debug=debug)
