"""MusicGPT's native wire format as msgspec Structs.

Source: MusicGPT's public API docs (https://docs.musicgpt.com) and their "Status Check"
page.

* ``CreateBody`` is what we send (``POST /v2/MusicAI``); ``omit_defaults`` keeps unset
  fields off the wire.
* Everything else is an upstream *view*: only the fields we read, never
  ``forbid_unknown_fields`` (MusicGPT adds fields freely). Fields whose type is not
  reliable upstream (numbers that arrive as strings, flags that arrive as ``"true"``)
  are typed ``Any`` and coerced in ``mapping.py``.
"""

from __future__ import annotations

from typing import Any

import msgspec


class CreateBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``POST /v2/MusicAI`` JSON body."""

    prompt: str | None = None
    music_style: str | None = None
    lyrics: str | None = None
    title: str | None = None
    make_instrumental: bool | None = None
    vocal_only: bool | None = None
    gender: str | None = None
    voice_id: str | None = None
    model: str | None = None
    generate_album_cover: bool | None = None
    lyrics_timestamps: bool | None = None
    negative_tags: str | None = None
    webhook_url: str | None = None


class CreateResponse(msgspec.Struct, kw_only=True):
    """``POST /v2/MusicAI`` answer (success or a 200 carrying ``success: false``)."""

    success: Any = None
    message: Any = None
    error: Any = None
    task_id: str | None = None
    conversion_id_1: str | None = None
    conversion_id_2: str | None = None
    eta: Any = None
    is_flagged: Any = None
    reason: Any = None
    credit_estimate: Any = None


class ErrorBody(msgspec.Struct, kw_only=True):
    """Native error bodies: ``{"success": false, "error"|"message": ...}`` or FastAPI's
    ``{"detail": ...}`` (a string or a list of ``{"msg": ...}`` objects)."""

    success: Any = None
    error: Any = None
    message: Any = None
    detail: Any = None


class Conversion(msgspec.Struct, kw_only=True):
    """``GET /v1/byId`` ``conversion`` object: the union of both documented shapes.

    Merged MUSIC_AI shape: ``conversion_id_N``/``title_N``/``lyrics_N``/
    ``conversion_path_N``/``conversion_path_wav_N``/``conversion_duration_N`` for N=1,2.
    Older single-output shape (seed 000): ``conversion_id``, ``status_msg``,
    ``audio_url``, ``conversion_cost``, ``title``, ``lyrics``, ``music_style``.
    """

    task_id: str | None = None
    status: Any = None
    message: Any = None
    status_msg: Any = None
    # merged MUSIC_AI shape
    conversion_id_1: str | None = None
    conversion_id_2: str | None = None
    title_1: str | None = None
    title_2: str | None = None
    lyrics_1: str | None = None
    lyrics_2: str | None = None
    conversion_path_1: str | None = None
    conversion_path_2: str | None = None
    conversion_path_wav_1: str | None = None
    conversion_path_wav_2: str | None = None
    conversion_duration_1: Any = None
    conversion_duration_2: Any = None
    album_cover_path: str | None = None
    # older single-output shape
    conversion_id: str | None = None
    audio_url: str | None = None
    conversion_cost: Any = None
    title: str | None = None
    lyrics: str | None = None
    music_style: str | None = None


class ByIdResponse(msgspec.Struct, kw_only=True):
    """``GET /v1/byId`` answer."""

    success: Any = None
    conversion: Conversion | None = None
    error: Any = None
    message: Any = None


class Webhook(msgspec.Struct, kw_only=True):
    """One webhook POST: the union of every documented payload.

    Per-artefact payloads carry ``subtype`` (``music_ai``, ``audio_streaming``,
    ``album_cover_generation``, ``lyrics_timestamped``); the older generic payload has
    ``status``/``status_msg``/``audio_url``/``conversion_cost`` and no ``subtype``.
    """

    subtype: str | None = None
    task_id: str | None = None
    conversion_id: str | None = None
    # music_ai
    conversion_path: str | None = None
    conversion_path_wav: str | None = None
    conversion_duration: Any = None
    lyrics: str | None = None
    lyrics_timestamped: Any = None
    title: str | None = None
    album_cover_path: str | None = None
    is_flagged: Any = None
    reason: Any = None
    # audio_streaming
    streaming_url: str | None = None
    # album_cover_generation
    image_path: str | None = None
    thumbnail_path: str | None = None
    image_paths: Any = None
    conversion_id_1: str | None = None
    conversion_id_2: str | None = None
    # older generic payload
    status: Any = None
    status_msg: Any = None
    audio_url: str | None = None
    conversion_cost: Any = None
    success: Any = None
