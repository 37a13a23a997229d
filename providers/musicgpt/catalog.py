"""MusicGPT's models and native request block, declared as data.

Source: MusicGPT's public API docs (https://docs.musicgpt.com) (``POST /v2/MusicAI``
body). Every create makes two songs. ``duration`` is not a MusicGPT input, so no model
supports it."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from providers.base import Catalog, ModelSpec

_SONG = frozenset({"prompt", "lyrics", "instrumental", "title", "style", "format"})

MODELS: tuple[ModelSpec, ...] = tuple(
    ModelSpec(
        id=f"musicgpt/{native}",
        provider="musicgpt",
        native_model=native,
        kind="song",
        supports=_SONG,
        description=text,
    )
    for native, text in (
        ("v6", "MusicGPT v6: two songs per request, vocals or instrumental."),
        ("v6-pro", "MusicGPT v6 Pro: two songs per request, higher fidelity."),
        ("v7", "MusicGPT v7: two songs per request."),
        ("v7-pro", "MusicGPT v7 Pro: two songs per request, higher fidelity."),
    )
)


#: Length limits of the native block's strings. The reference documents none for these:
#: voice ids are short opaque ids (``GET /v1/getAllVoices``); ``negative_tags`` is a tag
#: list like ``music_style``, bounded like the gateway's ``style``.
MAX_VOICE_ID = 128
MAX_NEGATIVE_TAGS = 300

VoiceId = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_VOICE_ID,
        description=f"A MusicGPT voice id (forces model v6); at most {MAX_VOICE_ID} characters.",
    ),
]
NegativeTags = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_NEGATIVE_TAGS,
        description=f"Styles to avoid, comma-separated; at most {MAX_NEGATIVE_TAGS} characters.",
    ),
]


class MusicGPTOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Native MusicGPT fields passed through as they are (``musicgpt {...}`` block)."""

    gender: Literal["male", "female", "neutral"] | None = None
    voice_id: VoiceId | None = None
    vocal_only: bool | None = None
    negative_tags: NegativeTags | None = None
    lyrics_timestamps: bool | None = None
    generate_album_cover: bool | None = None


CATALOG = Catalog(models=MODELS, native_block="musicgpt", options_type=MusicGPTOptions)


class Track(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One song of the task as merged so far from byId answers and webhooks."""

    mp3: str | None = None
    wav: str | None = None
    stream: str | None = None
    title: str | None = None
    lyrics: str | None = None
    duration: float | None = None
    done: bool | None = None
    timestamps: bool | None = None


class MusicGPTState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The provider state the gateway stores with a MusicGPT job (``mapping.py``)."""

    task_id: str | None = None
    conversion_ids: list[str] = []
    shape: Literal["merged", "single"] | None = None
    single_id: str | None = None
    tracks: dict[str, Track] = {}
    cover: str | None = None
    native_status: str | None = None
    message: str | None = None
    flagged: bool | None = None
    reason: str | None = None
    eta: float | None = None
    submitted_at: float | None = None
    style: str | None = None
    native_style: str | None = None
    cost: float | None = None
