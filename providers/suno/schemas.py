"""sunoapi.org's wire format as msgspec Structs (https://docs.sunoapi.org, the pages
"Generate Suno AI Music", "Get Music Generation Details" and "Music Generation
Callbacks").

* ``GenerateBody``: what we *send* to ``POST /api/v1/generate``. ``customMode``,
  ``instrumental``, ``model`` and ``callBackUrl`` are always written (the OpenAPI schema
  requires them); the optional fields are absent when unset.
* Views of what we *read*: only the fields the gateway uses, all optional, never
  ``forbid_unknown_fields`` (sunoapi.org adds fields freely). Values whose type the docs
  do not pin down (``code``, ``duration``, ``status``) are ``Any`` and normalized in
  ``mapping.py``. Record-info items are camelCase (``audioUrl``), callback items
  snake_case (``audio_url``): two Structs.
* ``SunoState``/``Track``: not wire types; the provider state the gateway keeps.
"""

from __future__ import annotations

from typing import Any

import msgspec

# ----------------------------------------------------------------------------- request


class GenerateBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``POST /api/v1/generate``."""

    customMode: bool
    instrumental: bool
    model: str
    callBackUrl: str
    prompt: str | None = None
    style: str | None = None
    title: str | None = None
    personaId: str | None = None
    personaModel: str | None = None
    negativeTags: str | None = None
    vocalGender: str | None = None
    styleWeight: float | None = None
    weirdnessConstraint: float | None = None
    audioWeight: float | None = None


# ------------------------------------------------------------------------------- views


class Envelope(msgspec.Struct):
    """Every answer: ``{"code": 200, "msg": "success", "data": ...}``; an error is a
    ``code`` other than 200, even inside an HTTP 200."""

    code: Any = None
    msg: Any = None
    data: Any = None


class CreateData(msgspec.Struct):
    taskId: Any = None


class CreateView(msgspec.Struct):
    code: Any = None
    msg: Any = None
    data: CreateData | None = None


class SunoItem(msgspec.Struct):
    """One song in ``data.response.sunoData`` (record-info, camelCase)."""

    id: Any = None
    audioUrl: Any = None
    sourceAudioUrl: Any = None
    streamAudioUrl: Any = None
    sourceStreamAudioUrl: Any = None
    imageUrl: Any = None
    sourceImageUrl: Any = None
    prompt: Any = None
    title: Any = None
    tags: Any = None
    duration: Any = None


class RecordResponse(msgspec.Struct):
    taskId: Any = None
    sunoData: list[SunoItem] | None = None
    errorMessage: Any = None


class RecordData(msgspec.Struct):
    taskId: Any = None
    status: Any = None
    response: RecordResponse | None = None
    errorCode: Any = None
    errorMessage: Any = None


class RecordView(msgspec.Struct):
    """``GET /api/v1/generate/record-info?taskId=...``."""

    code: Any = None
    msg: Any = None
    data: RecordData | None = None


class CallbackItem(msgspec.Struct):
    """One song in a callback's ``data.data`` (snake_case)."""

    id: Any = None
    audio_url: Any = None
    source_audio_url: Any = None
    stream_audio_url: Any = None
    source_stream_audio_url: Any = None
    image_url: Any = None
    source_image_url: Any = None
    prompt: Any = None
    title: Any = None
    tags: Any = None
    duration: Any = None


class CallbackData(msgspec.Struct):
    callbackType: Any = None
    task_id: Any = None
    data: list[CallbackItem] | None = None


class CallbackView(msgspec.Struct):
    """A callback to ``callBackUrl``: ``code``, ``msg`` and the stage's ``data``."""

    code: Any = None
    msg: Any = None
    data: CallbackData | None = None


# -------------------------------------------------------------------- provider state


class Track(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One song as merged so far from record-info answers and callbacks."""

    id: str
    audio: str | None = None
    stream: str | None = None
    image: str | None = None
    title: str | None = None
    tags: str | None = None
    duration: float | None = None
    lyrics: str | None = None


class SunoState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The state the gateway stores with a Suno job (``mapping.py`` merges into it).

    ``status`` is the furthest documented stage seen (never moves back); ``word`` the
    last native word read (an unknown one included, for display); ``callback_exception``
    whether ``CALLBACK_EXCEPTION`` was reported; ``waiting_since`` when the job first
    looked done (``SUCCESS`` or ``CALLBACK_EXCEPTION``) with a song still lacking audio.
    """

    task_id: str | None = None
    instrumental: bool = False
    status: str | None = None
    word: str | None = None
    tracks: list[Track] = []
    error: str | None = None
    error_code: int | None = None
    callback_exception: bool = False
    waiting_since: float | None = None
