"""The public job object: what a poll, an SSE event and a webhook all carry.

It is AI Stats' music job shape (plus progress, timestamps, error, metadata). The job
lifecycle renders it (``records.to_public``); the API layer documents and sends it.
"""

from __future__ import annotations

from typing import Literal

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


class MusicJob(msgspec.Struct, kw_only=True):
    """The AI Stats-compatible job object (plus progress, timestamps, error, metadata)."""

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
    object: Literal["music"] = "music"
