"""How the MiniMax simulator validates ``POST /v1/music_generation`` like the real API
(pure).

``validate(raw_body)`` answers either an ``Order`` (what to generate) or the message of
the ``base_resp`` 2013 ("invalid params") MiniMax answers with, naming the field. Rules:
``GenerateMusicReq`` (MiniMax's API reference) for the text-to-music models; the cover
models and ``stream: true`` are not simulated (2013).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

MODELS = frozenset({"music-2.6", "music-3.0", "music-2.6-free", "music-3.0-free"})
SAMPLE_RATES = (16000, 24000, 32000, 44100)
BITRATES = (32000, 64000, 128000, 256000)
FORMATS = ("mp3", "wav", "pcm")
MAX_PROMPT, MAX_LYRICS = 2000, 3500


@dataclass(frozen=True)
class Order:
    """A valid request: what the simulator generates."""

    model: str
    output_format: str  # url | hex
    format: str  # mp3 | wav
    sample_rate: int
    bitrate: int
    instrumental: bool
    body: dict[str, Any]


def _bad(field: str, why: str) -> str:
    return f"invalid params, {field}: {why}"


def _bool(body: dict[str, Any], name: str) -> bool | str:
    value = body.get(name, False)
    return value if isinstance(value, bool) else _bad(name, "must be a boolean")


def _text(body: dict[str, Any], name: str, low: int, high: int) -> str | None:
    """The problem with a string field, if any (None: fine or absent)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        return _bad(name, "must be a string")
    if not low <= len(value) <= high:
        return _bad(name, f"length must be between {low} and {high}")
    return None


def _setting(raw: Any) -> tuple[str, int, int] | str:
    setting = raw if raw is not None else {}
    if not isinstance(setting, dict):
        return _bad("audio_setting", "must be an object")
    fmt = setting.get("format", "mp3")
    rate = setting.get("sample_rate", 44100)
    bitrate = setting.get("bitrate", 256000)
    if fmt not in FORMATS:
        return _bad("audio_setting.format", f"must be one of {', '.join(FORMATS)}")
    if fmt == "pcm":
        return _bad("audio_setting.format", "pcm is not simulated")
    if rate not in SAMPLE_RATES:
        return _bad("audio_setting.sample_rate", f"must be one of {SAMPLE_RATES}")
    if bitrate not in BITRATES:
        return _bad("audio_setting.bitrate", f"must be one of {BITRATES}")
    return fmt, rate, bitrate


def validate(raw: bytes) -> Order | str:
    """The order, or the 2013 message of this request."""
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return "invalid params, body: not JSON"
    if not isinstance(body, dict):
        return "invalid params, body: must be a JSON object"
    model = body.get("model")
    if model not in MODELS:
        return _bad("model", f"unknown or unsupported model {model!r}")
    for name in ("is_instrumental", "lyrics_optimizer", "stream", "aigc_watermark"):
        flag = _bool(body, name)
        if isinstance(flag, str):
            return flag
    if body.get("stream"):
        return _bad("stream", "streaming is not simulated")
    output = body.get("output_format", "hex")
    if output not in ("url", "hex"):
        return _bad("output_format", "must be url or hex")
    instrumental = bool(body.get("is_instrumental"))
    low_prompt = 1 if instrumental else 0
    problem = _text(body, "prompt", low_prompt, MAX_PROMPT) or _text(body, "lyrics", 1, MAX_LYRICS)
    if problem:
        return problem
    if instrumental and not body.get("prompt"):
        return _bad("prompt", "required when is_instrumental is true")
    if not instrumental and not body.get("lyrics") and not body.get("lyrics_optimizer"):
        return _bad("lyrics", "required for a song with vocals (or lyrics_optimizer)")
    setting = _setting(body.get("audio_setting"))
    if isinstance(setting, str):
        return setting
    fmt, rate, bitrate = setting
    return Order(
        model=model,
        output_format=output,
        format=fmt,
        sample_rate=rate,
        bitrate=bitrate,
        instrumental=instrumental,
        body=body,
    )
