"""Suno's models (through sunoapi.org) and native request block, declared as data.

Source: sunoapi.org's "Generate Suno AI Music" page
(https://docs.sunoapi.org/suno-api/generate-music.md, cited as *generate*). Every
create makes two songs. A model's ``native_model`` is the ``model`` value sunoapi.org
takes. Suno gives MP3 only (WAV is a separate, paid conversion endpoint the gateway does
not call), and it takes no duration, so no model supports ``duration``.

Length limits (*generate*, "Parameter Usage Guide"), in characters: non-custom mode
``prompt`` (a description) 500; custom mode ``prompt`` (the lyrics) 3000 for V4, 5000
for the others; ``style`` 200 for V4, 1000 for the others; ``title`` 80 for V4 and
V4_5ALL, 100 for V4_5, V4_5PLUS and V5.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from providers.base import Catalog, ModelSpec

PROVIDER = "suno"

_SUPPORTS = frozenset({"prompt", "lyrics", "instrumental", "title", "style", "format"})

#: Public id -> sunoapi.org ``model`` (the AI Stats ids; ``suno/v4.5plus`` is the
#: spelling AI Stats' docs use for ``V4_5PLUS``).
MODEL_IDS: dict[str, str] = {
    "suno/v4": "V4",
    "suno/v4.5": "V4_5",
    "suno/v4.5+": "V4_5PLUS",
    "suno/v4.5-all": "V4_5ALL",
    "suno/v5": "V5",
    "suno/v4.5plus": "V4_5PLUS",  # alias
}
_DESCRIPTIONS: dict[str, str] = {
    "V4": "Suno v4 (through sunoapi.org): two songs per request, up to 4 minutes.",
    "V4_5": "Suno v4.5 (through sunoapi.org): two songs per request, up to 8 minutes.",
    "V4_5PLUS": "Suno v4.5+ (through sunoapi.org): two songs per request, richer sound.",
    "V4_5ALL": "Suno v4.5-all (through sunoapi.org): two songs per request.",
    "V5": "Suno v5 (through sunoapi.org): two songs per request.",
}

MODELS: tuple[ModelSpec, ...] = tuple(
    ModelSpec(
        id=public,
        provider=PROVIDER,
        native_model=native,
        kind="song",
        supports=_SUPPORTS,
        formats=frozenset({"mp3"}),  # Suno gives MP3 only; wav is converted
        description=_DESCRIPTIONS[native]
        + (" Alias of suno/v4.5+." if public == "suno/v4.5plus" else ""),
    )
    for public, native in MODEL_IDS.items()
)

# ----------------------------------------------------------------- limits (*generate*)

SIMPLE_PROMPT_MAX = 500
CUSTOM_PROMPT_MAX: dict[str, int] = {"V4": 3000}  # every other model: 5000
STYLE_MAX: dict[str, int] = {"V4": 200}  # every other model: 1000
TITLE_MAX: dict[str, int] = {"V4": 80, "V4_5ALL": 80}  # every other model: 100
DEFAULT_PROMPT_MAX, DEFAULT_STYLE_MAX, DEFAULT_TITLE_MAX = 5000, 1000, 100

#: Bounds of the native block's strings: *generate* documents none; persona ids are
#: opaque ids, negative tags a style list (bounded like the longest ``style``).
MAX_PERSONA_ID = 128
MAX_NEGATIVE_TAGS = 1000

PersonaId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_PERSONA_ID,
        description="A Persona id (Generate Persona) or a Suno Voice `voiceId` (then set"
        f" `personaModel` to `voice_persona`); custom mode; at most {MAX_PERSONA_ID}"
        " characters.",
    ),
]
NegativeTags = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_NEGATIVE_TAGS,
        description=f"Styles to avoid; at most {MAX_NEGATIVE_TAGS} characters.",
    ),
]
Weight = Annotated[float, msgspec.Meta(ge=0.0, le=1.0, description="0 to 1.")]


class SunoOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Native sunoapi.org fields passed through as they are (``suno {...}`` block). They
    take effect in custom mode only (*generate*: in non-custom mode "other parameters
    should be left empty"), so they need ``style`` and ``title`` (or ``lyrics``)."""

    # AI Stats' block also carries the request itself (its SDK sends it so): these win
    # over the top-level fields (``mapping.merged``); ``customMode`` is checked against
    # the mode the fields choose; ``model`` must be the chosen model's; ``callBackUrl`` is
    # accepted and reported as ignored (the gateway owns the callback: use webhook_url).
    customMode: bool | None = None
    instrumental: bool | None = None
    prompt: Annotated[str, msgspec.Meta(max_length=5000)] | None = None
    style: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    title: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    model: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    callBackUrl: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    personaId: PersonaId | None = None
    personaModel: Literal["style_persona", "voice_persona"] | None = None
    negativeTags: NegativeTags | None = None
    vocalGender: Literal["m", "f"] | None = None
    styleWeight: Weight | None = None
    weirdnessConstraint: Weight | None = None
    audioWeight: Weight | None = None


#: Shown by ``/ready`` when the gateway has no public URL (see ``providers.suno``).
WITHOUT_CALLBACKS = (
    "GATEWAY_PUBLIC_URL is unset: sunoapi.org requires a callBackUrl, so an inert "
    "placeholder (https://callback.invalid/..., a name that never resolves) is sent; "
    "jobs are followed by polling record-info only, and sunoapi.org may report "
    "CALLBACK_EXCEPTION, which does not fail a job whose audio exists."
)

CATALOG = Catalog(
    models=MODELS,
    native_block=PROVIDER,
    options_type=SunoOptions,
    without_callbacks=WITHOUT_CALLBACKS,
    ignored_options=frozenset({"callBackUrl"}),
)
