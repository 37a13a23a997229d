"""Pure mapping between ElevenLabs Music's wire format and the gateway's types.

No I/O here. Sources: ElevenLabs' API reference for ``POST /v1/music``
(https://elevenlabs.io/docs/api-reference/music/compose), the official Python SDK, the
Eleven Music quickstart (copyrighted material: ``bad_prompt``/``bad_composition_plan``)
and ElevenLabs' help-center page on API errors 400/401.

* ``to_native``: the normalized request (+ the ``elevenlabs {...}`` block) as the query's
  ``output_format`` and the JSON body.
* ``wav_header``, ``pcm_seconds``, ``duration_of``: the RIFF/WAVE wrapping of raw PCM.
* ``error_message``, ``error_class``: ElevenLabs' error bodies (``detail`` as an object
  or a validation array) as a short message and a ``ProviderError`` class.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from providers.base import (
    ProviderError,
    SubmitRequest,
    UpstreamAuthError,
    UpstreamInsufficientCredits,
    UpstreamRateLimited,
    UpstreamRejected,
)
from providers.elevenlabs.catalog import CompositionPlan, ElevenLabsOptions
from providers.elevenlabs.schemas import ErrorBody, MusicBody

PROVIDER = "elevenlabs"
LABEL = "ElevenLabs"

#: The gateway's formats as ElevenLabs ``output_format`` values. ``wav`` is raw PCM that
#: the provider wraps (``wav_header``); ElevenLabs' ``pcm_*`` is 16-bit signed
#: little-endian mono (the SDK's and the docs' description of ``pcm_*``).
OUTPUT_FORMATS: dict[str, str] = {"mp3": "mp3_44100_128", "wav": "pcm_44100"}
SAMPLE_WIDTH, CHANNELS = 2, 1
WAV_HEADER_BYTES = 44
MAX_WAV_DATA = 0xFFFFFFFF - 36  # what a RIFF size field can say

#: ``detail.status`` words whose class the HTTP status alone would get wrong (ElevenLabs
#: answers ``quota_exceeded`` with 401, ``invalid_api_key`` with 400 or 401).
STATUS_CLASSES: dict[str, type[ProviderError]] = {
    "bad_prompt": UpstreamRejected,  # quickstart, "Copyrighted material"
    "bad_composition_plan": UpstreamRejected,  # idem
    "invalid_api_key": UpstreamAuthError,  # help center, errors 400 or 401
    "needs_authorization": UpstreamAuthError,  # no key received (help center)
    "quota_exceeded": UpstreamInsufficientCredits,  # help center, errors 400 or 401
    "too_many_concurrent_requests": UpstreamRateLimited,  # error messages page, 429
    "system_busy": UpstreamRateLimited,  # idem
}

MESSAGE_MAX = 500
SUGGESTION_MAX = 300
_LOC_ROOTS = frozenset({"body", "query", "header", "path"})

_encoder = msgspec.json.Encoder()
_error_decoder = msgspec.json.Decoder(ErrorBody)


# ----------------------------------------------------------------------------- request


@dataclass(frozen=True)
class NativeCall:
    """One ``POST /v1/music``: the ``output_format`` query value and the JSON body."""

    output_format: str
    body: MusicBody

    @property
    def params(self) -> dict[str, str]:
        return {"output_format": self.output_format}

    @property
    def pcm_rate(self) -> int | None:
        return pcm_rate(self.output_format)


def options(req: SubmitRequest) -> ElevenLabsOptions:
    return req.options if isinstance(req.options, ElevenLabsOptions) else ElevenLabsOptions()


def merged(req: SubmitRequest) -> SubmitRequest:
    """AI Stats' spellings inside the block folded in: ``elevenlabs.prompt`` and
    ``elevenlabs.force_instrumental`` win over ``prompt`` and ``instrumental``."""
    opts = options(req)
    if opts.prompt is None and opts.force_instrumental is None:
        return req
    return msgspec.structs.replace(
        req,
        prompt=opts.prompt if opts.prompt is not None else req.prompt,
        instrumental=(
            opts.force_instrumental if opts.force_instrumental is not None else req.instrumental
        ),
    )


def length_ms(req: SubmitRequest) -> int | None:
    """``elevenlabs.music_length_ms``, else ``duration`` in ms."""
    ms = options(req).music_length_ms
    return ms if ms is not None else (req.duration * 1000 if req.duration is not None else None)


def output_format(req: SubmitRequest) -> str:
    """The block's ``output_format`` override, else the gateway format's native one."""
    return options(req).output_format or OUTPUT_FORMATS[req.format]


def pcm_rate(fmt: str) -> int | None:
    """``pcm_44100`` -> 44100; None for any other family."""
    family, _, rate = fmt.partition("_")
    return int(rate) if family == "pcm" and rate.isdigit() else None


def plan_shape(plan: CompositionPlan) -> Literal["music_v1", "music_v2", "mixed", "empty"]:
    """Which model's plan this is: v1 (global styles, sections), v2 (chunks)."""
    v1 = any(
        x is not None
        for x in (plan.positive_global_styles, plan.negative_global_styles, plan.sections)
    )
    v2 = plan.chunks is not None
    if v1 and v2:
        return "mixed"
    return "music_v1" if v1 else "music_v2" if v2 else "empty"


def plan_ms(plan: CompositionPlan) -> int:
    """The plan's length: its sections' or chunks' durations (an audio reference counts
    its range)."""
    total = sum(s.duration_ms for s in plan.sections or ())
    for chunk in plan.chunks or ():
        if chunk.duration_ms is not None:
            total += chunk.duration_ms
        elif chunk.range is not None:
            total += max(0, chunk.range.end_ms - chunk.range.start_ms)
    return total


def to_native(req: SubmitRequest) -> NativeCall:
    """The request as ``POST /v1/music`` (``check`` has accepted it). A ``music_v1`` plan
    without its global style lists gets empty ones (the API requires both lists)."""
    req = merged(req)
    opts = options(req)
    plan = opts.composition_plan
    if plan is not None and plan_shape(plan) == "music_v1":
        plan = msgspec.structs.replace(
            plan,
            positive_global_styles=plan.positive_global_styles or [],
            negative_global_styles=plan.negative_global_styles or [],
        )
    prompted = plan is None
    body = MusicBody(
        prompt=req.prompt if prompted else None,
        composition_plan=plan,
        music_length_ms=length_ms(req) if prompted else None,
        model_id=req.model.native_model,
        force_instrumental=req.instrumental if prompted else None,
        seed=opts.seed,
        respect_sections_durations=opts.respect_sections_durations,
        finetune_id=opts.finetune_id,
        finetune_strength=opts.finetune_strength,
        store_for_inpainting=opts.store_for_inpainting,
        sign_with_c2pa=opts.sign_with_c2pa,
    )
    return NativeCall(output_format=output_format(req), body=body)


def encode(body: MusicBody) -> bytes:
    return _encoder.encode(body)


# ------------------------------------------------------------------------------ audio


def content_type(fmt: str, upstream: str | None) -> str:
    """The artefact's content type: ``audio/wav`` for wrapped PCM; for MP3 the upstream's
    own ``audio/*`` type, else ``audio/mpeg``."""
    if pcm_rate(fmt) is not None:
        return "audio/wav"
    media = (upstream or "").split(";")[0].strip().lower()
    return media if media.startswith("audio/") else "audio/mpeg"


def is_audio_answer(upstream_type: str | None) -> bool:
    """False for a 2xx answer that says it is JSON or text (an error in a 200)."""
    media = (upstream_type or "").split(";")[0].strip().lower()
    return not (media.startswith("text/") or media.endswith(("/json", "+json")))


def wav_header(rate: int, data_bytes: int) -> bytes:
    """The 44-byte RIFF/WAVE header of ``data_bytes`` of 16-bit mono PCM at ``rate`` Hz."""
    if not 0 <= data_bytes <= MAX_WAV_DATA:
        raise ValueError(f"{data_bytes} bytes of PCM do not fit a WAV file")
    block = SAMPLE_WIDTH * CHANNELS
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,  # fmt chunk size
        1,  # PCM
        CHANNELS,
        rate,
        rate * block,  # byte rate
        block,
        8 * SAMPLE_WIDTH,
        b"data",
        data_bytes,
    )


def pcm_seconds(data_bytes: int, rate: int) -> float:
    return round(data_bytes / (rate * SAMPLE_WIDTH * CHANNELS), 3)


def duration_of(req: SubmitRequest, pcm: tuple[int, int] | None = None) -> float | None:
    """The artefact's duration: measured for PCM (``(bytes, rate)``), else the requested
    length (``elevenlabs.music_length_ms``, else ``duration``), else a plan's length where
    the model keeps it (``music_v2`` always, ``music_v1`` with
    ``respect_sections_durations``), else unknown."""
    if pcm is not None:
        return pcm_seconds(*pcm)
    asked = length_ms(req)
    if asked is not None:
        return asked / 1000
    opts = options(req)
    plan = opts.composition_plan
    if plan is not None and (plan.chunks is not None or opts.respect_sections_durations):
        return plan_ms(plan) / 1000
    return None


# ----------------------------------------------------------------------------- errors


def _text(value: Any, limit: int = MESSAGE_MAX) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())[:limit]
    return None


def _decode(raw: bytes) -> ErrorBody | None:
    try:
        return _error_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _field(loc: Any) -> str | None:
    """FastAPI's ``loc`` as a field name: ``["body", "music_length_ms"]`` ->
    ``music_length_ms``, ``["body", "composition_plan", "sections", 0]`` ->
    ``composition_plan.sections[0]``."""
    if not isinstance(loc, list):
        return None
    parts = [p for p in loc if isinstance(p, (str, int)) and not isinstance(p, bool)]
    if parts and parts[0] in _LOC_ROOTS and len(parts) > 1:
        parts = parts[1:]
    name = ""
    for p in parts:
        name += f"[{p}]" if isinstance(p, int) else (f".{p}" if name else str(p))
    return name[:100] or None


def _issues(detail: list[Any]) -> str | None:
    texts = []
    for item in detail[:5]:
        if not isinstance(item, dict):
            continue
        msg = _text(item.get("msg"), 200) or _text(item.get("type"), 50) or "invalid"
        field = _field(item.get("loc"))
        texts.append(f"{field}: {msg}" if field else msg)
    return "; ".join(texts) or None


def plan_summary(plan: Any) -> str | None:
    """A short reading of a suggested composition plan (either shape)."""
    if not isinstance(plan, dict):
        return _text(plan, SUGGESTION_MAX)
    parts: list[str] = []
    styles = plan.get("positive_global_styles")
    if isinstance(styles, list) and styles:
        parts.append("styles " + ", ".join(s for s in styles[:6] if isinstance(s, str)))
    for key, name_key in (("sections", "section_name"), ("chunks", "text")):
        items = plan.get(key)
        if not isinstance(items, list):
            continue
        names = []
        for item in items[:8]:
            if not isinstance(item, dict):
                continue
            name = item.get(name_key)
            first = name.strip().splitlines()[0] if isinstance(name, str) and name.strip() else None
            label = _text(first, 40) or _text(item.get("song_id"), 40) or "?"
            ms = item.get("duration_ms")
            sane = isinstance(ms, int) and not isinstance(ms, bool) and 0 <= ms < 10**9
            seconds = f" {ms / 1000:g}s" if sane else ""
            names.append(f"{label}{seconds}")
        parts.append(f"{key} " + ", ".join(names))
    return _text("; ".join(parts), SUGGESTION_MAX)


def _business(detail: dict[str, Any]) -> str | None:
    status = _text(detail.get("status"), 60) or _text(detail.get("code"), 60)
    message = _text(detail.get("message"))
    data = detail.get("data") if isinstance(detail.get("data"), dict) else {}
    suggestion = None
    if "prompt_suggestion" in data:
        text = _text(data.get("prompt_suggestion"), SUGGESTION_MAX)
        suggestion = f"suggested prompt: {text}" if text else None
    elif "composition_plan_suggestion" in data:
        text = plan_summary(data.get("composition_plan_suggestion"))
        suggestion = f"suggested plan: {text}" if text else None
    if status == "bad_prompt" and not message:
        message = "the prompt was refused (copyrighted or harmful material)"
    if status == "bad_composition_plan" and not message:
        message = "the composition plan was refused (copyrighted or harmful material)"
    head = ": ".join(p for p in (status, message) if p)
    return "; ".join(p for p in (head, suggestion) if p) or None


def error_message(raw: bytes) -> str | None:
    """The human message of an ElevenLabs error body (at most ``MESSAGE_MAX`` chars)."""
    body = _decode(raw)
    if body is None:
        return None
    detail, text = body.detail, None
    if isinstance(detail, dict):
        text = _business(detail)
    elif isinstance(detail, list):
        text = _issues(detail)
    else:
        text = _text(detail)
    text = text or _text(body.message) or _text(body.error)
    return text[:MESSAGE_MAX] if text else None


def error_class(status: int, raw: bytes) -> type[ProviderError] | None:
    """The class a ``detail.status`` word says (``STATUS_CLASSES``); None: by status."""
    body = _decode(raw)
    detail = body.detail if body is not None else None
    if not isinstance(detail, dict):
        return None
    word = detail.get("status")
    return STATUS_CLASSES.get(word.strip().lower()) if isinstance(word, str) else None
