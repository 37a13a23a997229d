"""The artefact mirror and retention, run by the generation worker's queue: an
asynchronous job's audio copied into the artefact store (every job's under
``GATEWAY_ARTEFACT_MIRROR``, once it completes), converted first where its format needs
it, and stored artefacts deleted when their job's retention ends.

A job whose format needs a conversion (``JobRecord.conversion``) completes only once
converted: when its provider finishes, it stays ``in_progress`` (``merge_snapshot``)
while the mirror copies and converts its audio, then turns ``completed`` with the
converted outputs; a conversion that fails completes it with the provider's audio and a
``format_not_converted`` warning. A conversion whose queued copy is lost (its process
died) is enqueued again by the refresher, and given up the same way after
``CONVERSION_DEADLINE`` (``Refreshes.refresh_due``).

Usage (``Generations`` wires it)::

    mirror = Mirror(core, sink, queue)
    core.on_completed.append(mirror.on_completed)      # enqueues ``mirror``
    core.convert = mirror.convert                      # enqueues ``mirror`` (converting)
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
from gateway.jobs.records import native_format, unconverted_notice
from gateway.jobs.sink import SCHEME, ArtefactSink
from gateway.store.store import JobRecord
from providers.base import ProviderError

log = structlog.get_logger("gateway.jobs.generate")

#: Seconds one copy (download, conversion, upload of a job's outputs) may run.
COPY_TIMEOUT = 240


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
        """Copy an asynchronous job's audio in under ``GATEWAY_ARTEFACT_MIRROR`` (a
        converted job's is in already)."""
        provider = self.core.providers.get(record.provider)
        if provider is None or provider.catalog.synchronous or stored(record):
            return
        legacy = record.format != self._native(record) and not _format_noticed(record)  # (*)
        if self.core.settings.artefact_mirror or legacy:
            await self._enqueue(record.id, f"mirror:{record.id}")

    async def convert(self, record: JobRecord, attempt: int) -> None:
        """Copy and convert the audio of a job whose provider finished (its conversion
        due); ``attempt``: the refresher's retry of a copy that never ran."""
        await self._enqueue(record.id, f"mirror:{record.id}" + (f":{attempt}" if attempt else ""))

    async def _enqueue(self, job_id: str, key: str) -> None:
        # SAQ's default timeout (10 s) would cut off copying and converting two songs of
        # a few minutes on a busy host; a copy that dies is enqueued again by the refresher
        job = saq.Job("mirror", kwargs={"job_id": job_id}, key=key, timeout=COPY_TIMEOUT)
        await self.queue.enqueue(job)

    def _native(self, record: JobRecord) -> str:
        """The format the job's provider was asked for."""
        spec = self.core.catalog.get(record.model)
        return native_format(record.format, spec.formats) if spec else record.format

    async def copy(self, ctx: dict[str, Any], *, job_id: str) -> None:
        """Copy a job's outputs in: one whose conversion is due then completes; a
        completed one keeps its provider's URLs if the copy fails (logged)."""
        record = await self.core.store.get_job(job_id)
        due = record is not None and record.conversion == "due"
        if record is None or not (due or record.status == "completed"):
            return
        try:
            copied = await self.sink.mirror(record, record.outputs)
        except ProviderError as exc:
            log.warning("artefact_mirror_failed", job_id=job_id, error=exc.message)
            why = exc.message
            if due:  # the client must know
                notice = unconverted_notice(record.format, why)
                await self.core.finish_conversion(job_id, None, notice)
            elif record.format != self._native(record):
                await self.core.store.update_job(job_id, lambda job: _unconverted(job, why))
            return
        if due:
            await self.core.finish_conversion(job_id, copied)
            await self.retain(job_id)
            return
        original = record.outputs

        def apply(job: JobRecord) -> JobRecord | None:
            if job.outputs != original:  # changed meanwhile (renewed URLs): next time
                return None
            job.outputs = copied
            job.refresh_after = None  # stored copies need no renewal
            # converted now (a conversion given up earlier): no warning says otherwise
            job.notices = [n for n in job.notices if n.code != "format_not_converted"]
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


def stored(record: JobRecord) -> bool:
    """Every output of ``record`` is in the artefact store."""
    return bool(record.outputs) and all(
        (o.audio_url or "").startswith(SCHEME) for o in record.outputs
    )


def _unconverted(job: JobRecord, why: str) -> JobRecord | None:
    """(*) A job whose conversion did not hold it (created before they did): its audio
    stays in the provider's format, said in its warnings."""
    if _format_noticed(job):
        return None
    job.notices = [*job.notices, unconverted_notice(job.format, why)]
    job.version += 1
    return job


def _format_noticed(job: JobRecord) -> bool:
    """The job's warnings already say something of its format."""
    return any(n.param == "format" for n in job.notices)
