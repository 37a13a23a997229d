"""Pure functions over job records: merge a provider snapshot, render the public job.

Usage::

    record = merge_snapshot(record, snapshot, time.time())
    job = to_public(record)            # the AI Stats-compatible job object
    ref = job_ref(record, model_spec, provider.state_type)  # what fetch/callback receive
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import structlog
from ulid import ULID

from gateway.jobs.public import DebugInfo, JobErrorInfo, JobWarning, MusicJob, OutputItem, Usage
from gateway.store.store import JobRecord, Notice
from providers.base import (
    STATUS_RANK,
    Artefact,
    AudioFormat,
    JobError,
    JobRef,
    ModelSpec,
    ProviderError,
    Snapshot,
    UpstreamError,
    UpstreamTimeout,
    is_final,
)

log = structlog.get_logger("gateway.jobs.service")


UNKNOWN_OUTCOME = "upstream_outcome_unknown"  # a create sent, its answer lost


def native_format(fmt: str, gives: frozenset[str] = frozenset({"mp3", "wav"})) -> AudioFormat:
    """The format a provider is asked for: ``fmt`` where the model ``gives`` it (mp3,
    wav); otherwise mp3, converted when stored (``sink.py``)."""
    return "wav" if fmt == "wav" and "wav" in gives else "mp3"


def fingerprint(req: Any) -> str:
    """A digest of the decoded create request (key order and whitespace do not matter)."""
    return hashlib.sha256(msgspec.json.encode(req, order="sorted")).hexdigest()


def outcome_unknown(exc: ProviderError) -> bool:
    """The create may have reached the provider, and its answer is lost: a timeout after
    sending, a reset mid-answer, or a success status whose body we could not read."""
    if not exc.sent:
        return False
    if isinstance(exc, UpstreamTimeout):
        return True
    status = exc.native_status
    return isinstance(exc, UpstreamError) and (
        status is None or (isinstance(status, int) and 200 <= status < 300)
    )


def new_job_id() -> str:
    return "mus_" + str(ULID()).lower()


def merge_snapshot(record: JobRecord, snap: Snapshot, now: float) -> JobRecord:
    """Fold a provider snapshot into the record. Status only moves forward; a snapshot
    saying ``completed`` without a playable ``audio_url`` on every output stays
    ``in_progress``. Native ids a callback names are adopted when the create's own answer
    was lost (reconciliation)."""
    status = snap.status
    if status == "completed" and (not snap.outputs or any(not o.audio_url for o in snap.outputs)):
        log.warning("completed_without_audio", job_id=record.id, native_status=snap.native_status)
        status = "in_progress"
    old = record.status
    conversion = record.conversion
    if is_final(old):
        status = old  # final is final; outputs may still refresh (e.g. renewed URLs)
    elif STATUS_RANK[status] < STATUS_RANK[old]:
        status = old
    elif status == "completed" and conversion is not None:
        status, conversion = "in_progress", "due"  # completed once converted (mirror.py)
    progress = snap.progress if snap.progress is not None else record.progress
    if status == "completed":
        progress = 100
    elif progress is not None and record.progress is not None and not is_final(old):
        progress = max(progress, record.progress)
    if conversion == "due" and progress is not None:
        progress = min(progress, 99)
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
    native_ids = record.native_ids + [i for i in snap.native_ids if i not in record.native_ids]
    changed = (
        status != old
        or outputs != record.outputs
        or progress != record.progress
        or conversion != record.conversion
    )
    return msgspec.structs.replace(
        record,
        native_id=record.native_id or (native_ids[0] if native_ids else None),
        native_ids=native_ids,
        status=status,
        native_status=snap.native_status or record.native_status,
        progress=progress,
        outputs=outputs,
        error=error,
        state=encode_state(snap.state) if snap.state is not None else record.state,
        refresh_after=snap.refresh_after,
        updated_at=now if changed else record.updated_at,
        refreshed_at=now,
        version=record.version + 1,
        conversion=conversion,
    )


def converted(
    record: JobRecord, outputs: list[Artefact] | None, notice: Notice | None, now: float
) -> JobRecord:
    """A job whose conversion was due, completed: with its ``outputs`` converted, or
    (None) with the provider's as made and a ``notice`` saying why."""
    return msgspec.structs.replace(
        record,
        status="completed",
        progress=100,
        outputs=record.outputs if outputs is None else outputs,
        refresh_after=None if outputs is not None else record.refresh_after,
        notices=[*record.notices, notice] if notice is not None else record.notices,
        conversion=None,
        updated_at=now,
        refreshed_at=now,
        version=record.version + 1,
    )


def unconverted_notice(fmt: str, why: str) -> Notice:
    """What a job whose audio stays in its provider's format says in its warnings."""
    message = f"The audio could not be converted to {fmt} ({why}); it is as made."
    return Notice(code="format_not_converted", param="format", message=message)


def to_public(record: JobRecord) -> MusicJob:
    """The AI Stats-compatible job object for a stored record. While a job's format is to
    be converted (``conversion`` wanted or due) no ``audio_url`` is shown, not even a
    finished song of an unfinished job: the provider's audio is not in the format asked
    (a stream URL, a preview by nature, still is)."""
    converting = record.conversion is not None
    outputs = [
        OutputItem(
            index=o.index,
            id=o.id,
            audio_url=None if converting else o.audio_url,
            stream_audio_url=o.stream_audio_url,
            image_url=o.image_url,
            title=o.title,
            tags=o.tags,
            duration=o.duration,
            lyrics=o.lyrics,
        )
        for o in record.outputs
    ]
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
        audio_url=outputs[0].audio_url if usage is not None and outputs else None,
        warnings=[
            JobWarning(code=n.code, param=n.param, message=n.message) for n in record.notices
        ],
    )


_debug_decoder = msgspec.json.Decoder(DebugInfo)


def with_debug(job: MusicJob, record: JobRecord) -> MusicJob:
    """``job`` with the create's upstream exchange, when one was kept for its answer."""
    if record.debug is None:
        return job
    return msgspec.structs.replace(job, debug=_debug_decoder.decode(record.debug))


_state_encoder = msgspec.msgpack.Encoder()


def encode_state(state: msgspec.Struct) -> bytes:
    """A provider's typed state as stored with the job (msgpack)."""
    return _state_encoder.encode(state)


def decode_state(record: JobRecord, state_type: type[msgspec.Struct]) -> msgspec.Struct | None:
    """The stored provider state as ``state_type``. A state that does not decode (written
    by another version of the provider, say) is logged, and the provider starts from an
    empty state: it is never reset in silence."""
    if record.state is None:
        return None
    try:
        if isinstance(record.state, dict):  # a record from before states were typed
            return msgspec.convert(record.state, state_type)
        return msgspec.msgpack.decode(record.state, type=state_type)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.error(
            "provider_state_undecodable",
            job_id=record.id,
            provider=record.provider,
            state_type=state_type.__name__,
            error=str(exc),
        )
        return None


def job_ref(record: JobRecord, spec: ModelSpec, state_type: type[msgspec.Struct]) -> JobRef:
    return JobRef(
        job_id=record.id,
        model=spec,
        native_id=record.native_id or "",
        native_ids=record.native_ids,
        format=native_format(record.format, spec.formats),
        last=Snapshot(
            status=record.status,  # type: ignore[arg-type]
            native_status=record.native_status,
            progress=record.progress,
            outputs=record.outputs,
            error=record.error,
            state=decode_state(record, state_type),
            refresh_after=record.refresh_after,
        ),
    )
