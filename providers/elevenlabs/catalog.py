"""ElevenLabs Music's models and native request block, declared as data.

Source: ElevenLabs' API reference for ``POST /v1/music`` ("Compose music",
https://elevenlabs.io/docs/api-reference/music/compose) and the official Python SDK's
types (``MusicPrompt``, ``SongSection``, ``CompositionPlan``, ``GenerationChunkInput``,
``AudioRefChunk``, ``TimeRange``, ``SectionSource``).

Formats: ``mp3`` is asked for as ``mp3_44100_128``; ``wav`` as ``pcm_44100`` (raw 16-bit
little-endian mono PCM) that the provider wraps in a RIFF/WAVE header. ElevenLabs has no
``ogg`` (Vorbis) or ``aac`` output: for those the gateway asks for ``mp3`` and converts.

The composition plan: ``music_v1`` takes a ``MusicPrompt`` (global styles and
``sections``), ``music_v2`` a ``CompositionPlan`` (``chunks``, each a generation chunk
or an audio reference). Neither union carries a tag on the wire, and msgspec decodes a
union of two object types only by a tag, so each union is one Struct holding the fields
of both shapes (``CompositionPlan``, ``PlanChunk``), every field typed and bounded,
unknown fields refused. ``providers.elevenlabs.validation`` then requires exactly one
shape, the one the model takes, with its required fields (400 naming the field).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from providers.base import Catalog, ModelSpec

#: Parallel music generations on the smallest paid plans (Starter, Creator, Pro: 2;
#: Scale, Business: 3), from ElevenLabs' models page; the gateway's default limit.
DEFAULT_CONCURRENCY = 2

_SUPPORTS = frozenset({"prompt", "instrumental", "duration", "format"})

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="elevenlabs/music_v1",
        provider="elevenlabs",
        native_model="music_v1",
        kind="song",
        supports=_SUPPORTS,
        description="ElevenLabs Eleven Music v1: one song per request, 3 s to 10 min.",
    ),
    ModelSpec(
        id="elevenlabs/music_v2",
        provider="elevenlabs",
        native_model="music_v2",
        kind="song",
        supports=_SUPPORTS,
        description="ElevenLabs Eleven Music v2: one song per request, 3 s to 10 min.",
    ),
    *(
        ModelSpec(
            id=alias,
            provider="elevenlabs",
            native_model="music_v2",
            kind="song",
            supports=_SUPPORTS,
            description="ElevenLabs Eleven Music (the latest model, music_v2).",
        )
        for alias in ("elevenlabs/music", "eleven-labs/music")
    ),
)

# ------------------------------------------------------------------- bounds (reference)

SECTION_MS = (3000, 120000)  # a v1 section's / a v2 chunk's duration_ms
MAX_LINES, MAX_LINE = 30, 200  # lines per section, characters per line
MAX_CHUNKS = 30  # v2 chunks per plan (ElevenLabs' music skill reference)
MAX_STYLES = 50  # styles per list (idem)
MAX_TEXT = MAX_LINES * (MAX_LINE + 1) + 102  # a chunk's text: "[label]" + 30 lines

SectionName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
SectionMs = Annotated[int, msgspec.Meta(ge=SECTION_MS[0], le=SECTION_MS[1])]
Millis = Annotated[int, msgspec.Meta(ge=0)]
Style = Annotated[str, msgspec.Meta(max_length=MAX_LINE)]
Styles = Annotated[list[Style], msgspec.Meta(max_length=MAX_STYLES)]
Line = Annotated[str, msgspec.Meta(max_length=MAX_LINE)]
Lines = Annotated[list[Line], msgspec.Meta(max_length=MAX_LINES)]
SongId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Level = Literal["low", "medium", "high"]
Strength = Literal["low", "medium", "high", "xhigh"]


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Unknown fields refused; unset optional fields left off the wire."""


class TimeRange(_Strict):
    start_ms: Millis
    end_ms: Millis


class SectionSource(_Strict):
    """Where a v1 section is taken from (inpainting)."""

    song_id: SongId
    range: TimeRange
    negative_ranges: list[TimeRange] | None = None


class SongSection(_Strict):
    """One section of a ``music_v1`` plan (every field but ``source_from`` required)."""

    section_name: SectionName
    positive_local_styles: Styles
    negative_local_styles: Styles
    duration_ms: SectionMs
    lines: Lines
    source_from: SectionSource | None = None


class AudioRef(_Strict):
    """A range of an earlier song (its ``song-id``)."""

    song_id: SongId
    range: TimeRange


class PlanChunk(_Strict):
    """One ``music_v2`` chunk: a generation chunk (``text``, ``duration_ms``,
    ``positive_styles`` required; the rest optional) or an audio reference (``song_id``
    and ``range`` only)."""

    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | None = None
    duration_ms: SectionMs | None = None
    positive_styles: Styles | None = None
    negative_styles: Styles | None = None
    context_adherence: Level | None = None
    conditioning_ref: AudioRef | None = None
    condition_strength: Strength | None = None
    song_id: SongId | None = None
    range: TimeRange | None = None


class CompositionPlan(_Strict):
    """A composition plan of either shape: ``music_v1``'s (``positive_global_styles``,
    ``negative_global_styles``, ``sections``) or ``music_v2``'s (``chunks``)."""

    positive_global_styles: Styles | None = None
    negative_global_styles: Styles | None = None
    sections: Annotated[list[SongSection], msgspec.Meta(min_length=1)] | None = None
    chunks: Annotated[list[PlanChunk], msgspec.Meta(min_length=1, max_length=MAX_CHUNKS)] | None = (
        None
    )


#: ``output_format`` values the block accepts: MP3 (for ``format: mp3``) and raw PCM
#: (for ``format: wav``, wrapped). ulaw/alaw/opus are left out: no gateway format is one.
OutputFormat = Literal[
    "mp3_22050_32",
    "mp3_24000_48",
    "mp3_44100_32",
    "mp3_44100_64",
    "mp3_44100_96",
    "mp3_44100_128",
    "mp3_44100_192",
    "mp3_48000_128",
    "mp3_48000_192",
    "mp3_48000_240",
    "mp3_48000_320",
    "pcm_8000",
    "pcm_16000",
    "pcm_22050",
    "pcm_24000",
    "pcm_32000",
    "pcm_44100",
    "pcm_48000",
]


class ElevenLabsOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Native ElevenLabs fields (``elevenlabs {...}`` block), sent as they are.

    AI Stats' block also carries ``prompt``, ``music_length_ms``, ``force_instrumental``
    and ``model_id``: the first three win over the top-level ``prompt``, ``duration`` and
    ``instrumental``; ``model_id`` must name the model chosen by ``model``.
    ``with_timestamps`` is accepted and reported as ignored (ElevenLabs returns
    timestamps on its detailed endpoint only)."""

    prompt: Annotated[str, msgspec.Meta(max_length=4100)] | None = None
    music_length_ms: Annotated[int, msgspec.Meta(ge=1)] | None = None
    force_instrumental: bool | None = None
    model_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    with_timestamps: bool | None = None

    composition_plan: CompositionPlan | None = None
    seed: Annotated[int, msgspec.Meta(ge=0)] | None = None
    respect_sections_durations: bool | None = None
    finetune_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    finetune_strength: Annotated[float, msgspec.Meta(ge=0.0)] | None = None  # default 1.0
    store_for_inpainting: bool | None = None
    sign_with_c2pa: bool | None = None
    output_format: OutputFormat | None = None


#: ElevenLabs documents 2 concurrent music generations on its smallest paid plans
#: (models.mdx); ``GATEWAY_CONCURRENCY=elevenlabs=N`` raises it for bigger plans.
CATALOG = Catalog(
    models=MODELS,
    native_block="elevenlabs",
    options_type=ElevenLabsOptions,
    synchronous=True,
    concurrency=DEFAULT_CONCURRENCY,
    ignored_options=frozenset({"with_timestamps"}),
)


class ElevenLabsState(msgspec.Struct):
    """A synchronous provider keeps nothing between calls."""
