"""Pure mapping between the gateway's normalized types and useapi.net's TemPolor API.

Sources: useapi.net's TemPolor docs (https://useapi.net/docs/api-tempolor-v1) (cited
below as *ref*) and its "Check music generation status and results" page (cited as
*seed 002*). No I/O here; the only side effect is a
structlog line for an unknown native status. The request checks (``Provider.check``)
live in ``validation.py``.

One gateway job, several native jobs
------------------------------------
A create answers ``{"jobs": [id, ...]}`` (ref: "jobs is an array ... code must handle
several"). The gateway job spans all of them, one output per native job, ``index`` = the
native job's position in ``jobs`` (stable across polls). Each native job is normalized on
its own (``job_status``):

* never seen, or ``0`` with ``progress`` 0       -> queued
* ``0`` with progress > 0                         -> in_progress
* ``30`` with a download URL obtained             -> completed
* ``30`` without a URL yet (download answered 404) -> in_progress, progress capped at 99
* ``10``                                          -> failed
* unknown status                                  -> in_progress; failed when
  ``status_final`` is true (logged either way, never completed)

and the gateway job aggregates them (``to_snapshot``):

* **completed** when every native job is final (completed or failed) and at least one
  completed; the outputs are the completed native jobs only, so every output has a
  playable ``audio_url`` (a failed sibling leaves a gap in ``index``);
* **failed** when every native job failed (the first native error message is reported);
* **queued** while every native job is queued; **in_progress** otherwise.

``progress`` is the mean of the native jobs' progress (a final native job counts 100,
one still waiting for its URL at most 99); 100 once completed.

Expiring download URLs
----------------------
A URL from ``GET /tempolor/music/download/{id}`` expires after ``remainSeconds`` (ref).
Each native job keeps ``url_expires_at`` and ``url_refresh_at`` (a little before expiry:
``min(30 s, 20 % of the lifetime)``); ``Snapshot.refresh_after`` is the earliest
``url_refresh_at`` so the gateway calls ``fetch`` again before a client can be handed a
dead URL. ``remainSeconds`` missing or ``0`` (the ref's own example shows 0) is read as
"lifetime unknown" and the provider's default lifetime is assumed instead.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import msgspec
import structlog

from providers.base import (
    JobError,
    Output,
    Pending,
    Snapshot,
    Status,
    SubmitRequest,
    UpstreamError,
    error_for_status,
)
from providers.tempolor.catalog import TemPolorOptions
from providers.tempolor.schemas import (
    CreateView,
    DownloadView,
    InstrumentalBody,
    NativeJob,
    SongBody,
    StatusView,
    TemPolorState,
)

PROVIDER = "tempolor"
Endpoint = Literal["song", "instrumental"]

#: Native ``status`` -> normalized status (``0`` is refined to queued while progress is 0,
#: ``30`` holds as in_progress until a download URL is obtained).
STATUS_MAP: dict[int, Status] = {
    0: "in_progress",  # GENERATING, status_final false (seed 002 "Status Values"; ref Status)
    10: "failed",  # FAILED, status_final true (seed 002 "Status Values"; ref Status)
    30: "completed",  # COMPLETED, status_final true (seed 002 "Status Values"; ref Status)
}
#: ``status_name`` -> native ``status``, used only when ``status`` itself is absent.
STATUS_NAMES: dict[str, int] = {
    "GENERATING": 0,  # seed 002 "Status Values"
    "FAILED": 10,  # seed 002 "Status Values"
    "COMPLETED": 30,  # seed 002 "Status Values"
}
_NAME_OF: dict[int, str] = {v: k for k, v in STATUS_NAMES.items()}

#: Catalog native model -> the value useapi documents for ``model_instrumental``
#: (ref: "i3.5 beta"/"i3.5"; the useapi doc page lists "i3.5 beta").
WIRE_MODEL: dict[str, str] = {"i3.5": "i3.5 beta"}

URL_MARGIN_MAX, URL_MARGIN_FRACTION = 30.0, 0.2  # re-fetch a URL this long before expiry
URL_RETRY_SECONDS = 2.0  # a refresh that found no new URL is retried after this long
DEFAULT_URL_TTL = 300.0  # assumed URL lifetime when remainSeconds is missing or 0

_encoder = msgspec.json.Encoder()
_create_decoder = msgspec.json.Decoder(CreateView)
_status_decoder = msgspec.json.Decoder(StatusView)
_download_decoder = msgspec.json.Decoder(DownloadView)
_EMPTY_OPTIONS = TemPolorOptions()


# ------------------------------------------------------------------------ the request


def to_native(req: SubmitRequest) -> tuple[Endpoint, SongBody | InstrumentalBody]:
    """The create endpoint and body for a checked request."""
    o: TemPolorOptions = req.options or _EMPTY_OPTIONS
    reply_url = req.callback.url if req.callback else None
    reply_ref = f"{req.callback.job_id}:{req.callback.token}" if req.callback else None
    native = req.model.native_model
    prompt = req.prompt or ""
    if req.model.kind == "song":
        return "song", SongBody(
            prompt=prompt,
            lyrics=req.lyrics,
            model_song=native,
            artistVoiceItemId=o.artistVoiceItemId,
            clonedVoiceItemId=o.clonedVoiceItemId,
            midiItemId=o.midiItemId,
            user_id=o.user_id,
            replyUrl=reply_url,
            replyRef=reply_ref,
            maxJobs=o.maxJobs,
        )
    return "instrumental", InstrumentalBody(
        prompt=prompt,
        model_instrumental=WIRE_MODEL.get(native, native),
        tonality=o.tonality,
        bpm=o.bpm,
        chords=o.chords,
        user_id=o.user_id,
        replyUrl=reply_url,
        replyRef=reply_ref,
        maxJobs=o.maxJobs,
    )


def encode(body: msgspec.Struct) -> bytes:
    return _encoder.encode(body)


# --------------------------------------------------------------------------- decoding


def _malformed(what: str) -> UpstreamError:
    return UpstreamError(f"useapi.net {what} answer is not the expected JSON", provider=PROVIDER)


def decode_create(raw: bytes) -> list[str]:
    """The native job ids of a create answer; UpstreamError when there are none."""
    try:
        view = _create_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise _malformed("create") from None
    jobs = [j for j in (view.jobs or []) if isinstance(j, str) and j]
    code = _number(view.code)
    if not jobs and code is not None and code >= 400:  # an error envelope behind a 2xx
        message = _text(view.error) or "error"
        raise error_for_status(int(code), f"useapi.net create: {message}", provider=PROVIDER)
    if not jobs:
        raise UpstreamError("useapi.net create answer has no jobs", provider=PROVIDER)
    return jobs


def decode_status(raw: bytes) -> StatusView:
    try:
        view = _status_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise _malformed("status") from None
    code = _number(view.code)
    if view.status is None and view.status_name is None and code is not None and code >= 400:
        message = _text(view.error) or "error"  # an error envelope behind a 2xx
        raise error_for_status(int(code), f"useapi.net status: {message}", provider=PROVIDER)
    return view


def decode_callback(raw: bytes) -> StatusView:
    """A callback body (the status object plus ``replyRef``); ValueError when unreadable."""
    try:
        view = _status_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"unreadable TemPolor callback: {exc}") from None
    return view


def decode_download(raw: bytes) -> DownloadView:
    try:
        return _download_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise _malformed("download") from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            f = float(value)
        except OverflowError:  # an integer beyond float range (JSON allows 4300 digits)
            return None
        return f if math.isfinite(f) else None
    if isinstance(value, str):
        if not value.isascii() or "_" in value:  # float() also reads "３０" and "3_0"
            return None
        try:
            f = float(value)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def native_status(view: StatusView) -> int | str | None:
    """``status`` as an int when it is one (also ``"30"`` or ``30.0``), else its text."""
    raw = view.status
    if raw is None:
        return STATUS_NAMES.get(view.status_name, view.status_name) if view.status_name else None
    n = _number(raw)
    if n is not None and n.is_integer() and abs(n) < 2**53:  # storable (msgpack), exact
        return int(n)
    return str(raw)


# --------------------------------------------------------------------- per native job


def from_create(native_ids: list[str]) -> Pending[TemPolorState]:
    jobs = [NativeJob(id=i) for i in native_ids]
    return Pending(native_id=native_ids[0], native_ids=list(native_ids), snapshot=to_snapshot(jobs))


def load_jobs(state: TemPolorState | None, native_ids: list[str]) -> list[NativeJob]:
    """The per-native-job records kept in the state (a fresh one for an id it lacks)."""
    stored = {j.id: j for j in state.jobs} if state is not None else {}
    return [stored.get(i) or NativeJob(id=i) for i in native_ids]


def is_known_final(status: int | str | None) -> bool:
    return isinstance(status, int) and STATUS_MAP.get(status) in ("completed", "failed")


def merge_status(job: NativeJob, view: StatusView) -> NativeJob:
    """Fold one status answer or callback into a native job; never moves backwards."""
    status = native_status(view)
    final_flag = view.status_final is True
    known = isinstance(status, int) and status in STATUS_MAP
    if status is not None and not known:
        # A fresh logger each time (rare event): honours the structlog config of the moment.
        structlog.get_logger(__name__).warning(
            "unknown_native_status",
            provider=PROVIDER,
            native_id=job.id,
            status=view.status,
            status_name=view.status_name,
            status_final=view.status_final,
        )
    meta = _metadata(job, view)
    if job.final or is_known_final(job.status):
        return msgspec.structs.replace(job, **meta)  # a final job keeps its status
    progress = _number(view.progress)
    new_progress = job.progress if progress is None else max(job.progress, int(progress))
    changes: dict[str, Any] = {**meta, "progress": max(0, min(100, new_progress))}
    if status is not None:
        changes["status"] = status
        changes["final"] = is_known_final(status) or (not known and final_flag)
    failed_now = isinstance(status, int) and STATUS_MAP.get(status) == "failed"
    if failed_now or (changes.get("final") and not known):
        changes["error"] = _text(view.error) or (
            "TemPolor generation failed"
            if known
            else f"TemPolor reported unknown final status {view.status!r}"
        )
    return msgspec.structs.replace(job, **changes)


def _text(value: Any) -> str | None:
    return (value.strip()[:500] or None) if isinstance(value, str) else None


def _metadata(job: NativeJob, view: StatusView) -> dict[str, Any]:
    mat, ext = view.musicMaterial, view.ltmMaterialExtendDto
    dur = _number(mat.dur) if mat else None
    fresh = {
        "title": _text(view.titleEn),
        "cover": _text(view.cover),
        "tags": _text(mat.style) if mat else None,
        "duration": dur if dur is not None and dur >= 0 else None,  # seconds, never negative
        "lyrics": _text(ext.lyricsPrompt) if ext else None,
    }
    return {k: v for k, v in fresh.items() if v is not None and getattr(job, k) != v}


def needs_status(job: NativeJob) -> bool:
    """A status call is due while the native job is not final."""
    return not (job.final or is_known_final(job.status))


def needs_download(job: NativeJob, now: float) -> bool:
    """A download call is due for a completed native job without a URL, or one to renew."""
    if job.status != 30:
        return False
    return job.url is None or job.url_refresh_at is None or now >= job.url_refresh_at


def apply_download(
    job: NativeJob,
    view: DownloadView | None,
    file_format: str,
    now: float,
    default_ttl: float = DEFAULT_URL_TTL,
) -> NativeJob:
    """Store a fresh URL and its expiry; ``view`` None (404: not ready) keeps what is there."""
    url = _text(view.url) if view is not None else None
    if url is None:
        if job.url is None:
            return job  # still not ready: stays in_progress, polled again
        return msgspec.structs.replace(job, url_refresh_at=now + URL_RETRY_SECONDS)
    remain = _number(view.remainSeconds) if view is not None else None
    ttl = remain if remain is not None and remain > 0 else default_ttl
    margin = min(URL_MARGIN_MAX, ttl * URL_MARGIN_FRACTION)
    return msgspec.structs.replace(
        job,
        url=url,
        url_format=file_format,
        url_expires_at=now + ttl,
        url_refresh_at=now + ttl - margin,
    )


def job_status(job: NativeJob) -> tuple[Status, int]:
    """One native job's normalized status and progress (see the module docstring)."""
    st = job.status
    if st is None:
        return "queued", 0
    mapped = STATUS_MAP.get(st) if isinstance(st, int) else None
    if mapped is None:
        return ("failed", 100) if job.final else ("in_progress", min(job.progress, 99))
    if mapped == "completed":
        return ("completed", 100) if job.url else ("in_progress", min(job.progress, 99))
    if mapped == "failed":
        return "failed", 100
    return ("queued" if job.progress == 0 else "in_progress"), min(job.progress, 99)


def _name(status: int | str | None) -> str | None:
    if status is None:
        return None
    return _NAME_OF.get(status, str(status)) if isinstance(status, int) else status


def to_snapshot(jobs: list[NativeJob]) -> Snapshot[TemPolorState]:
    """Aggregate the native jobs into the gateway job's snapshot (rule in the docstring)."""
    views = [job_status(j) for j in jobs]
    statuses = [s for s, _ in views]
    names = list(dict.fromkeys(n for n in (_name(j.status) for j in jobs) if n))
    state = TemPolorState(jobs=list(jobs))
    if all(s in ("completed", "failed") for s in statuses):
        status: Status = "completed" if "completed" in statuses else "failed"
    elif all(s == "queued" for s in statuses):
        status = "queued"
    else:
        status = "in_progress"
    progress = 100 if status == "completed" else int(sum(p for _, p in views) / len(views))
    outputs = [
        Output(
            index=i,
            id=j.id,
            audio_url=j.url if s == "completed" else None,
            image_url=j.cover,
            title=j.title,
            tags=j.tags,
            duration=j.duration,
            lyrics=j.lyrics,
        )
        for i, (j, s) in enumerate(zip(jobs, statuses, strict=True))
        if s != "failed"
    ]
    error = None
    if status == "failed":
        unknown = any(not isinstance(j.status, int) or j.status not in STATUS_MAP for j in jobs)
        error = JobError(
            code="unknown_native_status" if unknown else "generation_failed",
            message=next((j.error for j in jobs if j.error), "TemPolor generation failed"),
            native_status=",".join(names) or None,
        )
    refresh = [j.url_refresh_at for j in jobs if j.url and j.url_refresh_at is not None]
    return Snapshot(
        status=status,
        native_status=",".join(names) or None,
        progress=progress,
        outputs=outputs,
        error=error,
        state=state,
        refresh_after=min(refresh) if refresh else None,
    )
