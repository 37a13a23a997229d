"""The request flow of DESIGN.md: validate and route, submit, store, refresh, callbacks.

Usage::

    service = JobService(store, providers, settings)
    record = await service.create(owner="key_...", req=decoded_request)
    record, stale = await service.get(owner="key_...", job_id="mus_...")
    job = to_public(record)
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from typing import Any

import msgspec
import structlog
from ulid import ULID

from gateway.errors import InvalidRequest, NotFound, ServiceUnavailable
from gateway.log import bind
from gateway.metrics import Metrics
from gateway.schemas import JobErrorInfo, MusicJob, OutputItem, Usage
from gateway.settings import Settings
from gateway.store import JobRecord, Store
from providers.base import (
    NORMALIZED_PARAMS,
    STATUS_RANK,
    Callback,
    JobError,
    JobRef,
    ModelSpec,
    Provider,
    ProviderError,
    Snapshot,
    SubmitRequest,
    is_final,
)

log = structlog.get_logger("gateway.jobs")


def new_job_id() -> str:
    return "mus_" + str(ULID()).lower()


# ------------------------------------------------------------------ pure helpers


def merge_snapshot(record: JobRecord, snap: Snapshot, now: float) -> JobRecord:
    """Fold a provider snapshot into the record. Status only moves forward; a snapshot
    saying ``completed`` without a playable ``audio_url`` on every output stays
    ``in_progress``."""
    status = snap.status
    if status == "completed" and (not snap.outputs or any(not o.audio_url for o in snap.outputs)):
        log.warning("completed_without_audio", job_id=record.id, native_status=snap.native_status)
        status = "in_progress"
    old = record.status
    if is_final(old):
        status = old  # final is final; outputs may still refresh (e.g. renewed URLs)
    elif STATUS_RANK[status] < STATUS_RANK[old]:
        status = old
    progress = snap.progress if snap.progress is not None else record.progress
    if status == "completed":
        progress = 100
    elif progress is not None and record.progress is not None and not is_final(old):
        progress = max(progress, record.progress)
    outputs = snap.outputs or record.outputs
    if old == "failed" or (old == "completed" and any(not o.audio_url for o in outputs)):
        outputs = record.outputs  # never trade playable outputs for unplayable ones
    error = record.error
    if status == "failed" and error is None:
        error = snap.error or JobError(
            code="generation_failed",
            message="The provider reported the generation as failed.",
            native_status=snap.native_status,
        )
    changed = status != old or outputs != record.outputs or progress != record.progress
    return msgspec.structs.replace(
        record,
        status=status,
        native_status=snap.native_status or record.native_status,
        progress=progress,
        outputs=outputs,
        error=error,
        state=snap.state or record.state,
        refresh_after=snap.refresh_after,
        updated_at=now if changed else record.updated_at,
        refreshed_at=now,
        version=record.version + 1,
    )


def to_public(record: JobRecord) -> MusicJob:
    """The AI Stats-compatible job object for a stored record."""
    outputs = [OutputItem(**msgspec.structs.asdict(o)) for o in record.outputs]
    usage = None
    if record.status == "completed":
        usage = Usage(
            output_audio_count=len(outputs),
            output_audio_seconds=round(sum(o.duration or 0 for o in outputs), 3),
        )
    error = None
    if record.status == "failed" and record.error is not None:
        error = JobErrorInfo(
            code=record.error.code,
            message=record.error.message,
            native_status=record.error.native_status,
        )
    return MusicJob(
        id=record.id,
        status=record.status,  # type: ignore[arg-type]
        provider=record.provider,
        model=record.model,
        nativeResponseId=record.native_id,
        created_at=int(record.created_at),
        updated_at=int(record.updated_at),
        progress=record.progress,
        output=outputs,
        usage=usage,
        error=error,
        metadata=record.metadata,
    )


def job_ref(record: JobRecord, spec: ModelSpec) -> JobRef:
    return JobRef(
        job_id=record.id,
        model=spec,
        native_id=record.native_id or "",
        native_ids=record.native_ids,
        format=record.format,  # type: ignore[arg-type]
        last=Snapshot(
            status=record.status,  # type: ignore[arg-type]
            native_status=record.native_status,
            progress=record.progress,
            outputs=record.outputs,
            error=record.error,
            state=record.state,
            refresh_after=record.refresh_after,
        ),
    )


# ----------------------------------------------------------------------- service


class JobService:
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
        self._inflight: dict[str, asyncio.Task[tuple[JobRecord, bool]]] = {}

    # ---------------------------------------------------------------- validation

    def resolve(self, req: Any) -> tuple[ModelSpec, Provider, SubmitRequest]:
        """Route by model and check every parameter against what the model honours."""
        spec = self.catalog.get(req.model)
        if spec is None:
            valid = ", ".join(self.catalog)
            raise InvalidRequest(
                f"Unknown model {req.model!r}. Valid models: {valid}.",
                code="unknown_model",
                param="model",
                details=list(self.catalog),
            )
        provider = self.providers[spec.provider]
        for name in NORMALIZED_PARAMS:
            if getattr(req, name) is not None and name not in spec.supports:
                raise InvalidRequest(
                    f"Model {spec.id} does not support {name!r}. It supports: "
                    f"{', '.join(sorted(spec.supports))}.",
                    code="unsupported_parameter",
                    param=name,
                )
        for other in self.providers:
            if other != spec.provider and getattr(req, other, None) is not None:
                raise InvalidRequest(
                    f"The {other!r} block applies to {other}/* models only; "
                    f"model {spec.id} is served by {spec.provider}.",
                    code="unsupported_parameter",
                    param=other,
                )
        submit = SubmitRequest(
            model=spec,
            prompt=req.prompt,
            lyrics=req.lyrics,
            instrumental=req.instrumental,
            title=req.title,
            style=req.style,
            duration=req.duration,
            format=req.format or "mp3",
            options=getattr(req, spec.provider, None),
        )
        provider.check(submit)
        return spec, provider, submit

    # -------------------------------------------------------------------- create

    async def create(self, owner: str, req: Any) -> JobRecord:
        spec, provider, submit = self.resolve(req)
        bind(model=spec.id, provider=spec.provider)
        if not provider.configured:
            raise ServiceUnavailable(
                f"Provider {spec.provider} is not configured on this gateway.",
                code="provider_not_configured",
                param="model",
            )
        now = time.time()
        job_id = new_job_id()
        token = secrets.token_urlsafe(24)
        if self.settings.public_url:
            url = f"{self.settings.public_url}/v1/callbacks/{spec.provider}/{job_id}/{token}"
            submit = msgspec.structs.replace(
                submit, callback=Callback(url=url, job_id=job_id, token=token)
            )
        record = JobRecord(
            id=job_id,
            owner=owner,
            provider=spec.provider,
            model=spec.id,
            status="queued",
            created_at=now,
            updated_at=now,
            format=submit.format,
            metadata=req.metadata,
            webhook_url=req.webhook_url,
            callback_token=token,
            refreshed_at=now,
        )
        # The record exists before the upstream call: no job is ever lost in between.
        await self.store.put_job(record)
        self.metrics.jobs_created.labels(spec.provider).inc()
        started = time.perf_counter()
        try:
            with self.metrics.upstream(spec.provider, "submit"):
                submission = await provider.submit(submit)
        except ProviderError as exc:
            self.metrics.job_finished(spec.provider, "failed")
            error = JobError(code=exc.code, message=exc.message)
            await self.store.put_job(
                msgspec.structs.replace(
                    record, status="failed", error=error, updated_at=time.time()
                )
            )
            raise
        finally:
            bind(upstream_ms=round((time.perf_counter() - started) * 1000, 2))

        def apply(current: JobRecord) -> JobRecord:
            current.native_id = submission.native_id
            current.native_ids = submission.native_ids
            return merge_snapshot(current, submission.snapshot, time.time())

        stored = await self.store.update_job(job_id, apply)
        assert stored is not None
        if is_final(stored.status):
            self.metrics.job_finished(spec.provider, stored.status)
        bind(job_id=job_id)
        return stored

    # ----------------------------------------------------------------------- get

    async def load(self, owner: str, job_id: str) -> JobRecord:
        record = await self.store.get_job(job_id) if job_id.startswith("mus_") else None
        if record is None or not hmac.compare_digest(record.owner, owner):
            raise NotFound(f"No music job {job_id!r}.", param="music_id")
        return record

    def _due(self, record: JobRecord, now: float) -> bool:
        if record.native_id is None:
            return False  # create still under way
        if is_final(record.status):
            return record.refresh_after is not None and now >= record.refresh_after
        return now - record.refreshed_at >= self.settings.refresh_interval

    async def get(self, owner: str, job_id: str) -> tuple[JobRecord, bool]:
        """The job, refreshed from upstream when due. Returns (record, stale)."""
        record = await self.load(owner, job_id)
        bind(job_id=job_id, provider=record.provider, model=record.model)
        if not self._due(record, time.time()):
            return record, False
        task = self._inflight.get(job_id)
        if task is None:  # singleflight within this process
            task = asyncio.ensure_future(self._refresh(record))
            self._inflight[job_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(job_id, None))
        return await asyncio.shield(task)

    async def _refresh(self, record: JobRecord) -> tuple[JobRecord, bool]:
        # ... and across processes: one lease holder per refresh interval.
        interval = self.settings.refresh_interval
        if interval > 0 and not await self.store.acquire_lease(record.id, interval):
            return record, False
        spec = self.catalog.get(record.model)
        provider = self.providers.get(record.provider)
        if spec is None or provider is None:
            return record, False
        started = time.perf_counter()
        try:
            with self.metrics.upstream(record.provider, "fetch"):
                snap = await provider.fetch(job_ref(record, spec))
        except ProviderError as exc:
            log.warning(
                "refresh_failed",
                job_id=record.id,
                provider=record.provider,
                error=exc.code,
                upstream_status=exc.native_status,
            )
            return record, True
        finally:
            bind(upstream_ms=round((time.perf_counter() - started) * 1000, 2))
        try:
            return await self._store_snapshot(record, snap), False
        except _Conflict as conflict:  # a callback landed meanwhile: it is at least as fresh
            return conflict.current, False

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
                updated = await self._store_snapshot(record, snap)
                self.metrics.callbacks.labels(provider_name, "applied").inc()
                return updated
            except _Conflict as conflict:  # another update landed first: apply on top of it
                record = conflict.current
        raise ServiceUnavailable("Job busy; retry the callback.", code="job_busy")

    async def _store_snapshot(self, record: JobRecord, snap: Snapshot) -> JobRecord:
        """Store ``snap`` merged over ``record``, only if nobody changed the job since."""
        expected = record.version

        def apply(current: JobRecord) -> JobRecord:
            if current.version != expected:
                raise _Conflict(current)
            return merge_snapshot(current, snap, time.time())

        updated = await self.store.update_job(record.id, apply)
        if updated is None:
            return record
        if is_final(updated.status) and not is_final(record.status):
            self.metrics.job_finished(updated.provider, updated.status)
        return updated


class _Conflict(Exception):
    def __init__(self, current: JobRecord) -> None:
        self.current = current
