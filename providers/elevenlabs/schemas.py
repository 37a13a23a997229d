"""ElevenLabs Music's native wire format as msgspec Structs.

Source: ElevenLabs' API reference for ``POST /v1/music``
(https://elevenlabs.io/docs/api-reference/music/compose), the official Python SDK
(``music/raw_client.py``) and ElevenLabs' error pages.

* ``MusicBody`` is what we send; ``omit_defaults`` keeps unset fields off the wire.
* The error views read only what we use and never forbid unknown fields. Both of
  ElevenLabs' error shapes live under ``detail``: an object ``{"status", "message",
  "data"}`` for business errors (``bad_prompt``, ``quota_exceeded``, ...), an array of
  ``{"loc", "msg", "type"}`` for FastAPI's request validation (422). Values whose type
  upstream may get wrong are ``Any`` and read defensively in ``mapping.py``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from providers.elevenlabs.catalog import CompositionPlan


class MusicBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``POST /v1/music`` JSON body (``output_format`` travels in the query)."""

    prompt: str | None = None
    composition_plan: CompositionPlan | None = None
    music_length_ms: int | None = None
    model_id: str | None = None
    force_instrumental: bool | None = None
    seed: int | None = None
    respect_sections_durations: bool | None = None
    finetune_id: str | None = None
    finetune_strength: float | None = None
    store_for_inpainting: bool | None = None
    sign_with_c2pa: bool | None = None


class ErrorBody(msgspec.Struct, kw_only=True):
    """Any ElevenLabs error body; ``detail`` is an object, a validation array or a string."""

    detail: Any = None
    message: Any = None
    error: Any = None
