"""MiniMax Music's models and native request block, declared as data.

Source: MiniMax's API reference for ``POST /v1/music_generation``
(https://platform.minimax.io/docs/api-reference/music-generation, and the mainland copy
https://platform.minimaxi.com/docs/api-reference/music-generation with its OpenAPI
``GenerateMusicReq``), and MiniMax's rate-limit guide
(https://platform.minimaxi.com/docs/guides/rate-limits).

The public ids are AI Stats' (``minimax/music-2.6``, ``minimax/music-3.0``); the native
model is the id's tail. The native block is the ``minimax`` block AI Stats accepts (its
``.strict()`` schema): ``prompt``, ``lyrics``, ``is_instrumental``, ``lyrics_optimizer``,
``stream``, ``output_format``, ``audio_setting``, the cover fields, plus MiniMax's own
``aigc_watermark``. Unknown fields are refused (a 400 naming them).

Formats: ``mp3`` and ``wav`` are MiniMax's own (``audio_setting.format``); MiniMax has
no ``ogg`` or ``aac``: for those the gateway asks for ``mp3`` and converts.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from providers.base import Catalog, ModelSpec

#: Generations running at once that MiniMax allows a paying account ("CONN, maximum
#: parallel running tasks" of Music Generation: 20 for paid accounts, 3 for free ones,
#: the rate-limit guide; ``music-2.6``/``music-3.0`` need a paid account). The gateway's
#: default limit; ``GATEWAY_CONCURRENCY=minimax=N`` changes it.
DEFAULT_CONCURRENCY = 20

#: Prompt and lyrics lengths the API accepts (``GenerateMusicReq``).
MAX_PROMPT = 2000
MAX_LYRICS = 3500

_SUPPORTS = frozenset({"prompt", "lyrics", "instrumental", "format"})

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="minimax/music-2.6",
        provider="minimax",
        native_model="music-2.6",
        kind="song",
        supports=_SUPPORTS,
        description="MiniMax Music 2.6: one song (or instrumental) per request, lyrics with"
        " structure tags, up to about 5 minutes.",
    ),
    ModelSpec(
        id="minimax/music-3.0",
        provider="minimax",
        native_model="music-3.0",
        kind="song",
        supports=_SUPPORTS,
        description="MiniMax Music 3.0: one song (or instrumental) per request, lyrics with"
        " structure tags, up to about 5 minutes.",
    ),
)

SampleRate = Literal[16000, 24000, 32000, 44100]
Bitrate = Literal[32000, 64000, 128000, 256000]
NativeFormat = Literal["mp3", "wav", "pcm"]


class AudioSetting(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """``audio_setting``: every field optional here; the gateway fills the rest."""

    sample_rate: SampleRate | None = None
    bitrate: Bitrate | None = None
    format: NativeFormat | None = None


class MiniMaxOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Native MiniMax fields (``minimax {...}`` block), as AI Stats accepts them.

    ``prompt``, ``lyrics`` and ``is_instrumental`` stand for the top-level ``prompt``,
    ``lyrics`` and ``instrumental`` (give each once). ``stream`` may only be ``false`` and
    the cover fields apply to MiniMax's cover models, which this gateway does not serve:
    both are accepted here so that the 400 says why."""

    prompt: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    lyrics: Annotated[str, msgspec.Meta(max_length=5000)] | None = None
    is_instrumental: bool | None = None
    lyrics_optimizer: bool | None = None
    stream: bool | None = None
    output_format: Literal["url", "hex"] | None = None
    audio_setting: AudioSetting | None = None
    aigc_watermark: bool | None = None
    audio_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    audio_base64: Annotated[str, msgspec.Meta(max_length=1 << 16)] | None = None
    cover_feature_id: Annotated[str, msgspec.Meta(max_length=300)] | None = None


CATALOG = Catalog(
    models=MODELS,
    native_block="minimax",
    options_type=MiniMaxOptions,
    synchronous=True,
    concurrency=DEFAULT_CONCURRENCY,
)


class MiniMaxState(msgspec.Struct):
    """A synchronous provider keeps nothing between calls."""
