"""The callback part: a provider's call back applied to its job.

Unknown job, provider or token: 404 and nothing changes. A body the provider cannot
read: 400 ``invalid_callback``. An update that lands meanwhile is applied first and the
callback's snapshot merged on top of it.
"""

from __future__ import annotations

import hmac

import structlog

from gateway.infra.errors import InvalidRequest, NotFound, ServiceUnavailable
from gateway.infra.log import bind
from gateway.jobs.core import Conflicted, JobCore
from gateway.jobs.records import job_ref
from gateway.store.store import JobRecord

log = structlog.get_logger("gateway.jobs.service")


class Callbacks:
    """Provider callbacks, checked against the job's own token."""

    def __init__(self, core: JobCore) -> None:
        self.core = core
        self.store = core.store
        self.settings = core.settings
        self.metrics = core.metrics
        self.providers = core.providers
        self.catalog = core.catalog
        self.breakers = core.breakers

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
                updated = await self.core.store_snapshot(
                    record, snap, defer=self.settings.callback_defer
                )
                if record.native_id is None and updated.native_id is not None:
                    log.info("create_reconciled", job_id=job_id, native_id=updated.native_id)
                self.metrics.callbacks.labels(provider_name, "applied").inc()
                return updated
            except Conflicted as conflict:  # another update landed first: apply on top of it
                record = conflict.current
        raise ServiceUnavailable("Job busy; retry the callback.", code="job_busy")
