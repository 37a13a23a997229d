"""Pure mapping between MusicGPT's wire format and the gateway's normalized types.

No I/O here: every function takes decoded Structs (or bytes to decode) and the current
time where it matters, and returns new values. Sources: MusicGPT's public API docs
(https://docs.musicgpt.com, "the reference") and their "Status Check" page ("seed 000").

Provider state (``MusicGPTState`` in ``catalog.py``, stored by the gateway; the merge
functions below work on its plain-dict form, ``load_state``/``store_state`` convert)::

    task_id, conversion_ids [id_1, id_2], shape "merged" | "single", single_id,
    tracks {conversion_id: {mp3, wav, stream, title, lyrics, duration, done, timestamps}},
    cover, native_status, message, flagged, reason, eta, submitted_at, style, cost

ById answers (here) and webhooks (``callbacks.py``) are merged into that state (a value
never erases one with nothing), then ``render`` derives the snapshot, so duplicates and
any order converge.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog

from providers.base import (
    STATUS_RANK,
    AudioFormat,
    JobError,
    Output,
    Pending,
    Snapshot,
    Status,
    SubmitRequest,
    UpstreamError,
    UpstreamRejected,
)
from providers.musicgpt.catalog import MusicGPTOptions, MusicGPTState
from providers.musicgpt.coerce import as_flag, as_number, as_str
from providers.musicgpt.schemas import (
    ByIdResponse,
    Conversion,
    CreateBody,
    CreateResponse,
    ErrorBody,
)


def logger() -> Any:
    """A logger bound to the structlog configuration in force now (not at import)."""
    return structlog.get_logger(__name__)


PROVIDER = "musicgpt"

#: Native status word -> normalized status. Anything else is unknown: logged, never
#: ``completed``.
STATUS_MAP: dict[str, Status] = {
    "IN_QUEUE": "queued",  # reference "Status" list; seed 000 (`status` bullet)
    "PENDING": "queued",  # reference "Status values seen across ... official clients"
    "IN_PROGRESS": "in_progress",  # reference "Status values"
    "PROCESSING": "in_progress",  # reference "Status values" (official clients)
    "PARTIAL_COMPLETED": "in_progress",  # reference: one of the two songs is done
    "COMPLETED": "completed",  # reference; seed 000 example response
    "ERROR": "failed",  # reference "Final: COMPLETED, ERROR, FAILED"; seed 000
    "FAILED": "failed",  # reference "Final: COMPLETED, ERROR, FAILED"; seed 000
}

_encoder = msgspec.json.Encoder()
_create_decoder = msgspec.json.Decoder(CreateResponse)
_error_decoder = msgspec.json.Decoder(ErrorBody)
_byid_decoder = msgspec.json.Decoder(ByIdResponse)

_MERGED_FIELDS = tuple(
    f"{name}_{n}"
    for n in (1, 2)
    for name in ("conversion_id", "title", "lyrics", "conversion_path", "conversion_path_wav")
)


def map_status(native: str | None) -> Status | None:
    """Native status word -> normalized status; None when absent or unknown."""
    if native is None:
        return None
    return STATUS_MAP.get(native.strip().upper())


def note_status(raw: Any, task_id: str | None) -> str | None:
    native = as_str(raw)
    if native is not None and map_status(native) is None:
        logger().warning("unknown_native_status", provider=PROVIDER, raw=native, task_id=task_id)
    return native


# -------------------------------------------------------------------------- create


def to_native(req: SubmitRequest) -> CreateBody:
    """The normalized request (+ the ``musicgpt {...}`` block) as a ``/v2/MusicAI`` body."""
    opts = req.options if isinstance(req.options, MusicGPTOptions) else MusicGPTOptions()
    return CreateBody(
        prompt=req.prompt,
        music_style=req.style,
        lyrics=req.lyrics,
        title=req.title,
        make_instrumental=req.instrumental,
        vocal_only=opts.vocal_only,
        gender=opts.gender,
        voice_id=opts.voice_id,
        model=req.model.native_model,
        generate_album_cover=opts.generate_album_cover,
        lyrics_timestamps=opts.lyrics_timestamps,
        negative_tags=opts.negative_tags,
        webhook_url=req.callback.url if req.callback is not None else None,
    )


def encode(body: CreateBody) -> bytes:
    return _encoder.encode(body)


def decode_create(raw: bytes) -> CreateResponse:
    """Decode a create answer; ``ValueError`` when it is not the expected JSON."""
    try:
        return _create_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"malformed MusicGPT create response: {exc}") from None


def from_create(resp: CreateResponse, req: SubmitRequest, now: float) -> Pending:
    """Native create answer -> native ids and the first snapshot.

    ``is_flagged: true`` yields a failed job carrying the ``reason``. A 200 answer with
    ``success: false`` or without a ``task_id`` raises ``UpstreamRejected``.
    """
    flagged = as_flag(resp.is_flagged)
    task_id = as_str(resp.task_id)
    if not flagged and (task_id is None or resp.success is False):
        text = as_str(resp.error) or as_str(resp.message) or "MusicGPT did not accept the task"
        raise UpstreamRejected(text, provider=PROVIDER, native_status=200)
    ids = [c for c in (as_str(resp.conversion_id_1), as_str(resp.conversion_id_2)) if c]
    state: dict[str, Any] = {
        "task_id": task_id,
        "conversion_ids": ids,
        "shape": "merged",
        "tracks": {cid: {} for cid in ids},
        "eta": as_number(resp.eta),
        "submitted_at": now,
        "style": req.style,
        "flagged": flagged,
        "reason": as_str(resp.reason),
    }
    snapshot = render(state, req.format, None, now)
    return Pending(
        native_id=task_id or "",
        native_ids=[x for x in (task_id, *ids) if x],
        snapshot=snapshot,
    )


def error_message(raw: bytes) -> str | None:
    """The human message of a native error body, whatever its variant."""
    text: str | None = None
    try:
        body = _error_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        body = None
    if body is not None:
        text = as_str(body.error) or as_str(body.message) or _detail_text(body.detail)
    return text[:500] if text else None


def _detail_text(detail: Any) -> str | None:
    if isinstance(detail, list):  # FastAPI validation: [{"loc": [...], "msg": "..."}]
        parts = [as_str(d.get("msg")) for d in detail if isinstance(d, dict)]
        return "; ".join(p for p in parts if p) or None
    if isinstance(detail, dict):
        return as_str(detail.get("error")) or as_str(detail.get("message"))
    return as_str(detail)


# -------------------------------------------------------------------------- byId


def decode_by_id(raw: bytes) -> ByIdResponse:
    try:
        return _byid_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"malformed MusicGPT byId response: {exc}") from None


def apply_by_id(last: Snapshot, resp: ByIdResponse, fmt: AudioFormat, now: float) -> Snapshot:
    """Merge one byId answer (either shape) into the job; returns the new snapshot."""
    conv = resp.conversion
    if conv is None:
        text = as_str(resp.error) or as_str(resp.message) or "byId answer without a conversion"
        raise UpstreamError(text, provider=PROVIDER, native_status=200)
    state = load_state(last.state)
    _merge_conversion(state, conv)
    return render(state, fmt, last, now)


def _merge_conversion(state: dict[str, Any], conv: Conversion) -> None:
    state.setdefault("task_id", as_str(conv.task_id))
    status = note_status(conv.status, state.get("task_id"))
    if status is not None:
        state["native_status"] = status
    set_value(state, "message", as_str(conv.status_msg) or as_str(conv.message))
    set_value(state, "cover", as_str(conv.album_cover_path))
    set_value(state, "cost", as_number(conv.conversion_cost))
    set_value(state, "native_style", as_str(conv.music_style))
    if any(getattr(conv, name) is not None for name in _MERGED_FIELDS):
        state["shape"] = "merged"
        for n in (1, 2):
            cid = as_str(getattr(conv, f"conversion_id_{n}")) or nth_id(state, n - 1)
            if cid is None:
                continue
            ensure_id(state, cid, n - 1)
            update_track(
                state,
                cid,
                mp3=as_str(getattr(conv, f"conversion_path_{n}")),
                wav=as_str(getattr(conv, f"conversion_path_wav_{n}")),
                title=as_str(getattr(conv, f"title_{n}")),
                lyrics=as_str(getattr(conv, f"lyrics_{n}")),
                duration=as_number(getattr(conv, f"conversion_duration_{n}")),
            )
    elif any(
        as_str(v) is not None  # "" is absent: it must not turn a two-song job into one song
        for v in (conv.conversion_id, conv.audio_url, conv.status_msg, conv.title)
    ):
        # Older single-output shape (seed 000): one song.
        cid = as_str(conv.conversion_id) or state.get("single_id") or nth_id(state, 0)
        cid = cid or state.get("task_id") or "0"
        state["shape"] = "single"
        state["single_id"] = cid
        update_track(
            state,
            cid,
            mp3=as_str(conv.audio_url),
            title=as_str(conv.title),
            lyrics=as_str(conv.lyrics),
        )


# ------------------------------------------------------------------- state helpers


def load_state(state: MusicGPTState | None) -> dict[str, Any]:
    """The stored state as a fresh plain dict (absent fields absent) for merging."""
    return msgspec.to_builtins(state) if state is not None else {}


def store_state(state: dict[str, Any]) -> MusicGPTState:
    """The merged dict back as the typed state (``ValueError`` if a value is off-type)."""
    try:
        return msgspec.convert(state, MusicGPTState)
    except msgspec.ValidationError as exc:
        raise ValueError(f"MusicGPT state does not fit its type: {exc}") from None


def set_value(state: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        state[key] = value


def nth_id(state: dict[str, Any], n: int) -> str | None:
    ids = state.get("conversion_ids") or []
    return ids[n] if n < len(ids) else None


def ensure_id(state: dict[str, Any], cid: str, n: int) -> None:
    ids: list[str] = state.setdefault("conversion_ids", [])
    if cid not in ids:
        if n < len(ids):
            ids[n] = cid
        else:
            ids.append(cid)
    state.setdefault("tracks", {}).setdefault(cid, {})


def accept_id(state: dict[str, Any], cid: str) -> None:
    """A callback's conversion id must be one of this task's (room is left for unknown)."""
    ids: list[str] = state.setdefault("conversion_ids", [])
    if cid not in ids and cid != state.get("single_id"):
        if len(ids) >= 2:
            raise ValueError("callback for a conversion of another task")
        ids.append(cid)
    state.setdefault("tracks", {}).setdefault(cid, {})


def update_track(state: dict[str, Any], cid: str, **values: Any) -> None:
    track = state.setdefault("tracks", {}).setdefault(cid, {})
    for key, value in values.items():
        if value is not None:
            track[key] = value


# -------------------------------------------------------------------------- render


def _output_ids(state: dict[str, Any]) -> list[str]:
    if state.get("shape") == "single" and state.get("single_id"):
        return [state["single_id"]]
    return list(state.get("conversion_ids") or state.get("tracks", {}).keys())


def _audio(track: dict[str, Any], fmt: AudioFormat, final: bool) -> str | None:
    """The requested format's file; the other one only once the song is final (the
    older shape has no WAV at all), so a finished job never hangs on a missing format."""
    mp3, wav = track.get("mp3"), track.get("wav")
    want, other = (wav, mp3) if fmt == "wav" else (mp3, wav)
    return want or (other if final or track.get("done") else None)


def render(state: dict[str, Any], fmt: AudioFormat, last: Snapshot | None, now: float) -> Snapshot:
    """Derive the normalized snapshot from the merged state (status only moves forward)."""
    native = state.get("native_status")
    mapped = map_status(native)
    tracks: dict[str, dict[str, Any]] = state.get("tracks", {})
    ids = _output_ids(state)
    tags = state.get("native_style") or state.get("style")
    outputs = []
    for index, cid in enumerate(ids):
        track = tracks.get(cid, {})
        outputs.append(
            Output(
                index=index,
                id=cid,
                audio_url=_audio(track, fmt, mapped == "completed"),
                stream_audio_url=track.get("stream"),
                image_url=state.get("cover"),
                title=track.get("title"),
                tags=tags,
                duration=track.get("duration"),
                lyrics=track.get("lyrics"),
            )
        )
    all_audio = bool(outputs) and all(o.audio_url for o in outputs)
    all_done = bool(ids) and all(tracks.get(cid, {}).get("done") for cid in ids)
    error: JobError | None = None
    status: Status
    if state.get("flagged"):
        status = "failed"
        reason = state.get("reason") or "MusicGPT flagged the prompt"
        error = JobError(code="content_flagged", message=reason, native_status=native)
    elif mapped == "failed":
        status = "failed"
        message = state.get("message") or f"MusicGPT reported {native}"
        error = JobError(code="generation_failed", message=message, native_status=native)
    elif all_audio and (mapped == "completed" or all_done):
        status = "completed"
    elif (mapped == "queued" or (mapped is None and native is None)) and not any(
        o.audio_url or o.stream_audio_url for o in outputs
    ):
        status = "queued"
    else:  # in progress, COMPLETED with a song still missing, or an unknown word
        status = "in_progress"
    progress = _progress(state, status, outputs, now)
    if (
        last is not None
        and last.status != status
        and (
            last.status in ("completed", "failed") or STATUS_RANK[status] < STATUS_RANK[last.status]
        )
    ):
        status, error = last.status, last.error  # never move backwards
        if status == "completed" and not all_audio:
            outputs = last.outputs  # e.g. a WAV job's MP3 fallback after COMPLETED regressed
    if last is not None and progress is not None and last.progress is not None:
        progress = max(progress, last.progress)
    if status in ("completed", "failed"):
        progress = 100 if status == "completed" else None
    return Snapshot(
        status=status,
        native_status=native,
        progress=progress,
        outputs=outputs,
        error=error,
        state=store_state(state),
    )


def _progress(
    state: dict[str, Any], status: Status, outputs: list[Output], now: float
) -> int | None:
    if status == "queued":
        return 0
    if status != "in_progress":
        return None
    estimate = 1
    eta, started = state.get("eta"), state.get("submitted_at")
    if eta and started is not None:
        # clamped before int(): a tiny eta (e.g. 1e-310) makes the ratio overflow to inf
        estimate = int(max(0.0, min(99.0, (now - started) / eta * 100)))
    if outputs:
        estimate = max(estimate, int(100 * sum(1 for o in outputs if o.audio_url) / len(outputs)))
    return max(1, min(99, estimate))
