"""TemPolor's models (through useapi.net) and native request block, declared as data.

Source: ``shared/reference/tempolor-useapi.md``. Song models go to
``POST /tempolor/music/song`` (``model_song``); instrumental models to
``POST /tempolor/music/instrumental`` (``model_instrumental``). TemPolor takes no
title, style or duration, so no model supports them.
"""

from __future__ import annotations

import msgspec

from providers.base import ModelSpec

_SONG = frozenset({"prompt", "lyrics", "instrumental", "format"})
_INSTRUMENTAL = frozenset({"prompt", "instrumental", "format"})

MODELS: tuple[ModelSpec, ...] = (
    *(
        ModelSpec(
            id=f"tempolor/{native}",
            provider="tempolor",
            native_model=native,
            kind="song",
            supports=_SONG,
            description=f"TemPolor song model {native} (vocals, lyrics written if omitted).",
        )
        for native in ("v3", "v3.5", "v4.5+", "v4.8")
    ),
    *(
        ModelSpec(
            id=f"tempolor/{native}",
            provider="tempolor",
            native_model=native,
            kind="instrumental",
            supports=_INSTRUMENTAL,
            description=f"TemPolor instrumental model {native}.",
        )
        for native in ("i3", "i3.5", "i4")
    ),
)


class TemPolorOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Native TemPolor fields passed through as they are (``tempolor {...}`` block)."""

    tonality: str | None = None  # e.g. "C:major", "F#:minor" (instrumental)
    bpm: int | None = None  # 50-190 (instrumental)
    chords: str | None = None  # <= 200 chars (instrumental)
    artistVoiceItemId: str | None = None
    clonedVoiceItemId: str | None = None
    midiItemId: str | None = None
    user_id: str | None = None
    maxJobs: int | None = None
