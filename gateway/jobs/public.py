"""The public job object: what a poll, an SSE event and a webhook all carry.

It is AI Stats' music job shape (plus progress, timestamps, error, metadata). The job
lifecycle renders it (``records.to_public``); the API layer documents and sends it.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Status = Literal["queued", "in_progress", "completed", "failed"]


class OutputItem(msgspec.Struct, kw_only=True):
    """One generated track."""

    index: int
    id: str | None = None
    audio_url: str | None = None
    stream_audio_url: str | None = None
    image_url: str | None = None
    title: str | None = None
    tags: str | None = None
    duration: float | None = None
    lyrics: str | None = None


class Usage(msgspec.Struct, kw_only=True):
    """Present once the job is completed."""

    output_audio_count: int
    output_audio_seconds: float


class JobErrorInfo(msgspec.Struct, kw_only=True):
    """Why a job failed."""

    code: str
    message: str
    native_status: str | None = None


class JobWarning(msgspec.Struct, kw_only=True):
    """A field of the request the model did not use (``parameter_ignored``), or another
    note on how the request was run."""

    code: str
    param: str
    message: str


class UpstreamRequest(msgspec.Struct, kw_only=True):
    """The provider call as sent, credentials and callback tokens redacted."""

    method: str
    url: str
    body: Any


class UpstreamResponse(msgspec.Struct, kw_only=True):
    """The provider's answer (``status`` null: none arrived). Audio is not echoed."""

    status: int | None
    content_type: str | None
    body: Any


class DebugInfo(msgspec.Struct, kw_only=True):
    """On the create's answer only, when asked (``echo_upstream_request``, ``debug``)."""

    upstream_request: UpstreamRequest | None = None
    upstream_response: UpstreamResponse | None = None


class MusicJob(msgspec.Struct, kw_only=True):
    """The AI Stats-compatible job object (plus progress, timestamps, error, metadata,
    warnings). ``audio_url`` is the first output's, as AI Stats answers, once completed;
    ``debug`` is only on a create's answer that asked for it."""

    id: str
    status: Status
    provider: str
    model: str
    nativeResponseId: str | None
    created_at: int
    updated_at: int
    progress: int | None
    output: list[OutputItem]
    usage: Usage | None
    error: JobErrorInfo | None
    metadata: dict[str, str] | None
    audio_url: str | None = None
    warnings: list[JobWarning] = []
    debug: DebugInfo | None = None
    object: Literal["music"] = "music"
