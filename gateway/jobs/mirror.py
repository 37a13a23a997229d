"""The artefact mirror and retention, run by the generation worker's queue: an
asynchronous job's audio copied into the artefact store once it completes (every job's
under ``GATEWAY_ARTEFACT_MIRROR``, else one whose format needs a conversion), and stored
artefacts deleted when their job's retention ends.

Usage (``Generations`` wires it)::

    mirror = Mirror(core, sink, queue)
    core.on_completed.append(mirror.on_completed)      # enqueues ``mirror``
    functions = [("mirror", mirror.copy), ("expire_artefacts", mirror.expire)]
    await mirror.retain(job_id)                        # schedules ``expire_artefacts``
"""

from __future__ import annotations

import time
from typing import Any

import saq
import structlog
from saq.queue.redis import RedisQueue

from gateway.jobs.core import JobCore
from gateway.jobs.records import native_format
from gateway.jobs.sink import ArtefactSink
from gateway.store.store import JobRecord, Notice
from providers.base import ProviderError

log = structlog.get_logger("gateway.jobs.generate")


class Mirror:
    """Copies asynchronous jobs' audio in, and expires stored artefacts."""

    def __init__(self, core: JobCore, sink: ArtefactSink, queue: RedisQueue) -> None:
        self.core = core
        self.sink = sink
        self.queue = queue

    @property
    def converts(self) -> bool:
        """Whether an asynchronous job's audio can be converted (``ogg``, ``aac``): its
        stored copy, the mirror's, is made where an artefact store is."""
        return self.sink.store is not None

    async def on_completed(self, record: JobRecord) -> None:
        """Copy an asynchronous job's audio in: every job's under
        ``GATEWAY_ARTEFACT_MIRROR``, else a job whose format needs a conversion."""
        provider = self.core.providers.get(record.provider)
        converting = record.format != self._native(record)
        if not (self.core.settings.artefact_mirror or converting):
            return
        if provider is not None and not provider.catalog.synchronous:
            await self.queue.enqueue(
                saq.Job("mirror", kwargs={"job_id": record.id}, key=f"mirror:{record.id}")
            )

    def _native(self, record: JobRecord) -> str:
        """The format the job's provider was asked for."""
        spec = self.core.catalog.get(record.model)
        return native_format(record.format, spec.formats) if spec else record.format

    async def copy(self, ctx: dict[str, Any], *, job_id: str) -> None:
        """Copy a completed asynchronous job's outputs in; on failure the provider's own
        URLs stay (logged), the job stays completed."""
        record = await self.core.store.get_job(job_id)
        if record is None or record.status != "completed":
            return
        try:
            copied = await self.sink.mirror(record, record.outputs)
        except ProviderError as exc:
            log.warning("artefact_mirror_failed", job_id=job_id, error=exc.message)
            why = exc.message
            if record.format != self._native(record):  # the client must know
                await self.core.store.update_job(job_id, lambda job: _unconverted(job, why))
            return
        original = record.outputs

        def apply(job: JobRecord) -> JobRecord | None:
            if job.outputs != original:  # changed meanwhile (renewed URLs): next time
                return None
            job.outputs = copied
            job.refresh_after = None  # stored copies need no renewal
            job.version += 1
            return job

        await self.core.store.update_job(job_id, apply)
        await self.retain(job_id)

    async def retain(self, job_id: str) -> None:
        """Stored artefacts go when their job does (its retention period)."""
        when = time.time() + self.core.settings.job_retention_seconds
        await self.queue.enqueue(
            saq.Job(
                "expire_artefacts",
                kwargs={"job_id": job_id},
                key=f"expire:{job_id}",
                scheduled=int(when),
            )
        )

    async def expire(self, ctx: dict[str, Any], *, job_id: str) -> None:
        store = self.sink.store
        if store is not None:
            removed = await store.delete_prefix(f"{job_id}/")
            log.info("artefacts_expired", job_id=job_id, removed=removed)


def _unconverted(job: JobRecord, why: str) -> JobRecord | None:
    """The job's audio stays in the provider's format: said in its warnings."""
    if any(n.param == "format" for n in job.notices):
        return None
    message = f"The audio could not be converted to {job.format} ({why}); it is"
    job.notices = [
        *job.notices,
        Notice(code="format_not_converted", param="format", message=message + " as made."),
    ]
    job.version += 1
    return job
