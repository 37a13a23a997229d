"""TemPolor's models (through useapi.net) and native request block, declared as data.

Source: useapi.net's TemPolor docs (https://useapi.net/docs/api-tempolor-v1). Song
models go to ``POST /tempolor/music/song`` (``model_song``); instrumental models to
``POST /tempolor/music/instrumental`` (``model_instrumental``). TemPolor takes no
title, style or duration, so no model supports them.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from providers.base import Catalog, ModelSpec

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


#: Length limits of the native block's strings (useapi.net's TemPolor docs,
#: https://useapi.net/docs/api-tempolor-v1):
#: ``chords`` <= 200; ``tonality`` is one of 24 keys such as ``F#:minor``, checked in
#: ``validation.py``; item and user ids are opaque ids, bounded generously).
MAX_TONALITY = 16
MAX_CHORDS = 200
MAX_ITEM_ID = 128


Tonality = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_TONALITY,
        description=f"Key, e.g. `C:major` or `F#:minor` (instrumental models); at most"
        f" {MAX_TONALITY} characters.",
    ),
]
Chords = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_CHORDS,
        description=f"Chord progression, e.g. `Am F C G` (instrumental models); at most"
        f" {MAX_CHORDS} characters.",
    ),
]
#: Artist / cloned voice and MIDI item ids (song models), the useapi.net user id.
ItemId = Annotated[
    str,
    msgspec.Meta(max_length=MAX_ITEM_ID, description=f"At most {MAX_ITEM_ID} characters."),
]


class TemPolorOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Native TemPolor fields passed through as they are (``tempolor {...}`` block)."""

    tonality: Tonality | None = None  # e.g. "C:major", "F#:minor" (instrumental)
    bpm: int | None = None  # 50-190 (instrumental)
    chords: Chords | None = None  # <= 200 chars (instrumental)
    artistVoiceItemId: ItemId | None = None
    clonedVoiceItemId: ItemId | None = None
    midiItemId: ItemId | None = None
    user_id: ItemId | None = None
    maxJobs: int | None = None


CATALOG = Catalog(models=MODELS, native_block="tempolor", options_type=TemPolorOptions)
