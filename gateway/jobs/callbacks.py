"""The callback part: a provider's call back applied to its job.

Unknown job, provider or token: 404 and nothing changes. A body the provider cannot
read: 400 ``invalid_callback``. An update that lands meanwhile is applied first and the
callback's snapshot merged on top of it.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import structlog

from gateway.infra.errors import InvalidRequest, NotFound, ServiceUnavailable
from gateway.infra.log import bind
from gateway.jobs.core import Conflicted, JobCore
from gateway.jobs.records import job_ref
from gateway.store.store import JobRecord
from providers.base import CallsBack

log = structlog.get_logger("gateway.jobs.service")

CONFLICT_RETRIES = 20  # a callback re-applied on top of updates that land meanwhile


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

    async def callback(
        self,
        provider_name: str,
        job_id: str,
        token: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> JobRecord:
        """Apply a provider callback addressed to one job (its URL carries the job's token).
        Unknown job, provider or token: 404, nothing changed."""
        record = await self.store.get_job(job_id) if job_id.startswith("mus_") else None
        provider = self.core.calls_back.get(provider_name)
        if (
            record is None
            or provider is None
            or record.provider != provider_name
            or not record.callback_token
            or not hmac.compare_digest(record.callback_token.encode(), token.encode())
        ):
            self._rejected(provider_name)
            raise NotFound("No such callback.")
        return await self._apply(provider, record, headers, body)

    async def callback_for_native(
        self, provider_name: str, native_id: str, headers: Mapping[str, str], body: bytes
    ) -> JobRecord:
        """Apply a callback a provider sends to one account-level URL: the job is found
        by the native id the callback names (the store's native-id index). The provider's
        ``callback`` checks the callback's own signature from ``headers``."""
        provider = self.core.calls_back.get(provider_name)
        job_id = (
            await self.store.indexes.job_for_native(provider_name, native_id) if provider else None
        )
        record = await self.store.get_job(job_id) if job_id else None
        if provider is None or record is None or record.provider != provider_name:
            self._rejected(provider_name)
            raise NotFound("No such callback.")
        return await self._apply(provider, record, headers, body)

    def _rejected(self, provider_name: str) -> None:
        label = provider_name if provider_name in self.providers else "unknown"
        self.metrics.callbacks.labels(label, "rejected").inc()

    async def _apply(
        self, provider: CallsBack, record: JobRecord, headers: Mapping[str, str], body: bytes
    ) -> JobRecord:
        name, job_id = record.provider, record.id
        spec = self.catalog[record.model]
        state_type = self.providers[name].state_type
        bind(job_id=job_id, provider=name)
        for _ in range(CONFLICT_RETRIES):
            try:
                with self.metrics.upstream(name, "callback"):
                    ref = job_ref(record, spec, state_type)
                    snap = await provider.callback(ref, headers, body)
            except ValueError as exc:
                self.metrics.callbacks.labels(name, "rejected").inc()
                raise InvalidRequest(
                    f"Unreadable callback body: {exc}", code="invalid_callback"
                ) from exc
            try:
                updated = await self.core.store_snapshot(
                    record, snap, defer=self.settings.callback_defer
                )
                if record.native_id is None and updated.native_id is not None:
                    log.info("create_reconciled", job_id=job_id, native_id=updated.native_id)
                    if self.providers[name].catalog.account_callbacks:
                        await self.store.indexes.index_native(name, updated.native_ids, job_id)
                self.metrics.callbacks.labels(name, "applied").inc()
                return updated
            except Conflicted as conflict:  # another update landed first: apply on top of it
                record = conflict.current
        raise ServiceUnavailable("Job busy; retry the callback.", code="job_busy")
