"""Pure mapping between the gateway's normalized types and sunoapi.org's Suno API.

Sources: sunoapi.org's docs, cited as *generate* ("Generate Suno AI Music",
https://docs.sunoapi.org/suno-api/generate-music.md), *details* ("Get Music Generation
Details", ``GET /api/v1/generate/record-info``) and *callbacks* ("Music Generation
Callbacks"); the error codes as sunoapi.org's docs index summarizes them (*codes*). No I/O
here; the only side effect is a structlog line for an unknown native status.

State and rendering
-------------------
Record-info answers and callbacks are merged into ``SunoState`` (a value never erases
one with nothing; a status never moves back), then ``render`` derives the snapshot, so
duplicates and any order converge:

* a failure word (or an ``error`` callback, or a callback ``code`` other than 200) ->
  ``failed`` with the native reason;
* ``SUCCESS`` (or ``CALLBACK_EXCEPTION``, which only says a callback could not be
  delivered) with every song's ``audioUrl`` -> ``completed``; without them yet ->
  ``in_progress``. If the audio is still missing ``AUDIO_GRACE`` seconds later, the
  songs that have audio complete the job (a gap in ``index``), or, with none, it fails;
* ``PENDING`` or nothing yet -> ``queued``; anything else -> ``in_progress`` (an unknown
  word is logged and never completes a job). ``FIRST_SUCCESS`` carries the first song's
  ``streamAudioUrl``: the output shows it while the job is in progress.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog

from providers.base import (
    STATUS_RANK,
    JobError,
    Output,
    Pending,
    Snapshot,
    Status,
    SubmitRequest,
    UpstreamError,
)
from providers.suno.catalog import PROVIDER, SunoOptions
from providers.suno.coerce import as_code, as_number, as_str
from providers.suno.errors import malformed, raise_for_code
from providers.suno.schemas import (
    CreateView,
    GenerateBody,
    RecordView,
    SunoItem,
    SunoState,
    Track,
)
from providers.suno.validation import is_custom, merged

#: Native ``data.status`` (record-info) -> normalized status.
STATUS_MAP: dict[str, Status] = {
    "PENDING": "queued",  # *details* status enum: "Task is waiting to be processed"
    "TEXT_SUCCESS": "in_progress",  # *details*: "Lyrics/text generation completed"
    "FIRST_SUCCESS": "in_progress",  # *details*: "First track generation completed"
    "SUCCESS": "completed",  # *details*: "All tracks generated successfully" (+ audio)
    "CREATE_TASK_FAILED": "failed",  # *details*: "Failed to create the generation task"
    "GENERATE_AUDIO_FAILED": "failed",  # *details*: "Failed to generate music tracks"
    "SENSITIVE_WORD_ERROR": "failed",  # *details*: "Content contains prohibited words"
    # "CALLBACK_EXCEPTION"  (*details*: "Error occurred during callback"): no status of
    # its own; the job completes once every song has audio (see the module docstring).
}
CALLBACK_EXCEPTION = "CALLBACK_EXCEPTION"
#: How far each documented word is along (a status never moves back).
RANK: dict[str, int] = {w: {"queued": 0, "in_progress": 1}.get(s, 3) for w, s in STATUS_MAP.items()}
RANK["FIRST_SUCCESS"] = 2
_FAILURES: dict[str, tuple[str, str]] = {  # word -> (JobError code, default message)
    "CREATE_TASK_FAILED": ("generation_failed", "sunoapi.org could not create the task"),
    "GENERATE_AUDIO_FAILED": ("generation_failed", "Suno failed to generate the music"),
    "SENSITIVE_WORD_ERROR": ("content_flagged", "The request contains words Suno refuses"),
}
_PROGRESS = {"PENDING": 0, "TEXT_SUCCESS": 30, "FIRST_SUCCESS": 60, "SUCCESS": 90}

AUDIO_GRACE = 600.0  # seconds a job that looks done may wait for its songs' audio
MAX_TRACKS = 8  # two songs per task (*generate*); more is ignored
#: Sent as ``callBackUrl`` when the gateway has no public URL: sunoapi.org requires one
#: (*generate* OpenAPI: required), and ``.invalid`` never resolves (RFC 6761).
PLACEHOLDER_CALLBACK = "https://callback.invalid/music-gateway/polling-only"

_encoder = msgspec.json.Encoder()
_create = msgspec.json.Decoder(CreateView)
_record = msgspec.json.Decoder(RecordView)


def logger() -> Any:
    """A logger bound to the structlog configuration in force now (not at import)."""
    return structlog.get_logger(__name__)


# --------------------------------------------------------------------------- request


def to_native(req: SubmitRequest) -> GenerateBody:
    """The ``POST /api/v1/generate`` body for a checked request (``validation.py``):
    the job's callback URL, or the inert placeholder when the gateway has none."""
    req = merged(req)
    o: SunoOptions = req.options or SunoOptions()
    custom = is_custom(req)
    url = req.callback.url if req.callback else PLACEHOLDER_CALLBACK
    body = GenerateBody(
        customMode=custom,
        instrumental=bool(req.instrumental),
        model=req.model.native_model,
        callBackUrl=url,
        prompt=(req.prompt if req.instrumental or not custom else req.lyrics),
    )
    if not custom:
        return body
    return msgspec.structs.replace(
        body,
        style=req.style,
        title=req.title,
        personaId=o.personaId,
        personaModel=o.personaModel,
        negativeTags=o.negativeTags,
        vocalGender=o.vocalGender,
        styleWeight=o.styleWeight,
        weirdnessConstraint=o.weirdnessConstraint,
        audioWeight=o.audioWeight,
    )


def encode(body: GenerateBody) -> bytes:
    return _encoder.encode(body)


# ---------------------------------------------------------------------------- create


def decode_create(raw: bytes) -> str:
    """The ``taskId`` of a create answer whose ``code`` is 200 (``UpstreamError`` without
    one: the task may exist, the gateway cannot know)."""
    try:
        view = _create.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise malformed("create") from None
    raise_for_code("create", view.code, view.msg)
    task_id = as_str(view.data.taskId) if view.data is not None else None
    if task_id is None:
        raise UpstreamError(
            "sunoapi.org create answer has no taskId", provider=PROVIDER, native_status=200
        )
    return task_id


def from_create(task_id: str, req: SubmitRequest, now: float) -> Pending[SunoState]:
    state = SunoState(task_id=task_id, instrumental=bool(req.instrumental))
    return Pending(native_id=task_id, native_ids=[task_id], snapshot=render(state, None, now))


# ----------------------------------------------------------------------- record-info


def decode_record(raw: bytes) -> RecordView:
    try:
        view = _record.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise malformed("record-info") from None
    raise_for_code("record-info", view.code, view.msg)
    return view


def apply_record(last: Snapshot, view: RecordView, now: float) -> Snapshot:
    """Merge one record-info answer (``code`` 200) into the job."""
    state = load_state(last.state)
    data = view.data
    if data is None:
        raise UpstreamError(
            "sunoapi.org record-info answer has no data", provider=PROVIDER, native_status=200
        )
    resp = data.response
    items = [_record_item(i) for i in (resp.sunoData or [])] if resp is not None else []
    merge_tracks(state, items)
    reason = as_str(data.errorMessage) or (as_str(resp.errorMessage) if resp else None)
    word = as_str(data.status)
    if word is not None:
        merge_word(state, word.upper(), reason, as_code(data.errorCode), now)
    settle(state, now)
    return render(state, last, now)


def _record_item(item: SunoItem) -> dict[str, Any]:
    return {
        "id": as_str(item.id),
        "audio": as_str(item.audioUrl) or as_str(item.sourceAudioUrl),
        "stream": as_str(item.streamAudioUrl) or as_str(item.sourceStreamAudioUrl),
        "image": as_str(item.imageUrl) or as_str(item.sourceImageUrl),
        "title": as_str(item.title),
        "tags": as_str(item.tags),
        "duration": as_number(item.duration),
        "lyrics": as_str(item.prompt),
    }


# --------------------------------------------------------------------------- merging


def load_state(state: SunoState | None) -> SunoState:
    """A fresh copy of the stored state to merge into."""
    if state is None:
        return SunoState()
    return msgspec.convert(msgspec.to_builtins(state), SunoState)


def is_final(state: SunoState) -> bool:
    """Failed, or done with every song's audio."""
    return state.error is not None or (_looks_done(state) and _all_audio(state))


def merge_word(
    state: SunoState, word: str, reason: str | None, code: int | None, now: float
) -> None:
    """Fold one native status word in; documented words only move forward, and a
    failed job keeps the word it failed with."""
    if state.error is not None:
        return
    state.word = word
    if word == CALLBACK_EXCEPTION:
        state.callback_exception = True
        return
    if word not in STATUS_MAP:
        logger().warning(
            "unknown_native_status", provider=PROVIDER, status=word, task_id=state.task_id
        )
        return
    if RANK[word] < RANK.get(state.status or "", -1):
        return
    if state.status in _FAILURES or state.status == "SUCCESS":
        return  # final words stay
    state.status = word
    if word in _FAILURES:
        fail(state, word, reason or _FAILURES[word][1], code)


def fail(state: SunoState, word: str, reason: str, code: int | None) -> None:
    """Record a failure, unless the job is already final (completed or failed)."""
    if is_final(state):
        return
    state.error, state.error_code = reason, code
    state.word = word


def merge_tracks(state: SunoState, items: list[dict[str, Any]]) -> None:
    """Merge songs by ``id`` (by position when an item has none); a value never erases
    one with nothing."""
    tracks = list(state.tracks)
    for pos, item in enumerate(items[:MAX_TRACKS]):
        tid = item["id"]
        at = next((i for i, t in enumerate(tracks) if t.id == tid), None) if tid else None
        if at is None and tid is None and pos < len(tracks):
            at = pos
        if at is None:
            if len(tracks) >= MAX_TRACKS:
                continue
            tracks.append(Track(id=tid or f"{state.task_id or 'song'}-{len(tracks)}"))
            at = len(tracks) - 1
        fresh = {k: v for k, v in item.items() if k != "id" and v is not None}
        if state.instrumental:
            fresh.pop("lyrics", None)  # *details*: instrumentals have no lyrics
        tracks[at] = msgspec.structs.replace(tracks[at], **fresh)
    state.tracks = tracks


def _all_audio(state: SunoState) -> bool:
    return bool(state.tracks) and all(t.audio for t in state.tracks)


def _looks_done(state: SunoState) -> bool:
    return state.error is None and (state.status == "SUCCESS" or state.callback_exception)


def settle(state: SunoState, now: float) -> None:
    """Start (or clear) the wait for missing audio of a job that looks done."""
    if _looks_done(state) and not _all_audio(state):
        state.waiting_since = state.waiting_since if state.waiting_since is not None else now
    else:
        state.waiting_since = None


# ---------------------------------------------------------------------------- render


def _outputs(tracks: list[Track], only_playable: bool = False) -> list[Output]:
    return [
        Output(
            index=i,
            id=t.id,
            audio_url=t.audio,
            stream_audio_url=t.stream,
            image_url=t.image,
            title=t.title,
            tags=t.tags,
            duration=t.duration,
            lyrics=t.lyrics,
        )
        for i, t in enumerate(tracks)
        if t.audio or not only_playable
    ]


def render(state: SunoState, last: Snapshot | None, now: float) -> Snapshot:
    """The normalized snapshot of the merged state (status only moves forward)."""
    outputs = _outputs(state.tracks)
    error: JobError | None = None
    status: Status
    overdue = state.waiting_since is not None and now - state.waiting_since >= AUDIO_GRACE
    if state.error is not None:
        status = "failed"
        code = _FAILURES.get(state.word or "", ("generation_failed", ""))[0]
        error = JobError(code=code, message=state.error, native_status=state.word)
    elif _looks_done(state) and _all_audio(state):
        status = "completed"
    elif overdue and any(t.audio for t in state.tracks):
        status, outputs = "completed", _outputs(state.tracks, only_playable=True)
    elif overdue:
        status = "failed"
        error = JobError(
            code="generation_failed",
            message=f"sunoapi.org reported {state.word} but gave no audio within"
            f" {int(AUDIO_GRACE)} s",
            native_status=state.word,
        )
    elif (
        state.status in (None, "PENDING")
        and not state.callback_exception  # a stage's callback was due: under way
        and not any(t.audio or t.stream for t in state.tracks)
    ):
        status = "queued"
    else:
        status = "in_progress"
    progress = _progress(state, status)
    if (
        last is not None
        and last.status != status
        and (
            last.status in ("completed", "failed") or STATUS_RANK[status] < STATUS_RANK[last.status]
        )
    ):
        status, error = last.status, last.error  # never move backwards
        if status == "completed" and not all(o.audio_url for o in outputs):
            outputs = last.outputs
        progress = last.progress
    elif last is not None and progress is not None and last.progress is not None:
        progress = max(progress, last.progress) if status == "in_progress" else progress
    return Snapshot(
        status=status,
        native_status=state.word,
        progress=progress,
        outputs=outputs,
        error=error,
        state=state,
    )


def _progress(state: SunoState, status: Status) -> int | None:
    if status == "completed":
        return 100
    if status == "failed":
        return None
    if status == "queued":
        return 0
    stage = _PROGRESS.get(state.status or "", 30)
    if state.callback_exception:
        stage = max(stage, 60)
    done = sum(1 for t in state.tracks if t.audio)
    share = int(100 * done / len(state.tracks)) if state.tracks else 0
    return max(1, min(99, max(stage, share)))
