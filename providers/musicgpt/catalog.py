"""MusicGPT's models and native request block, declared as data.

Source: ``shared/reference/musicgpt.md`` (``POST /v2/MusicAI`` body). Every create makes
two songs. ``duration`` is not a MusicGPT input, so no model supports it.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from providers.base import ModelSpec

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


class MusicGPTOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Native MusicGPT fields passed through as they are (``musicgpt {...}`` block)."""

    gender: Literal["male", "female", "neutral"] | None = None
    voice_id: str | None = None
    vocal_only: bool | None = None
    negative_tags: str | None = None
    lyrics_timestamps: bool | None = None
    generate_album_cover: bool | None = None
