"""Pure mapping between MiniMax Music's wire format and the gateway's types.

No I/O here. Sources: MiniMax's API reference for ``POST /v1/music_generation``
(https://platform.minimax.io/docs/api-reference/music-generation), its error-code page
(https://platform.minimax.io/docs/api-reference/errorcode, the mainland page's full
table), and AI Stats' MiniMax executor (how a gateway called it: the defaults below).

* ``fields``: prompt, lyrics and instrumental as the request gives them (top level or the
  ``minimax`` block), and the parameter names to blame. As AI Stats does, a request that
  asks for no vocals in any way (no lyrics, no ``lyrics_optimizer``, no ``instrumental``)
  is made instrumental.
* ``to_native``: the ``POST /v1/music_generation`` body: ``output_format: "url"`` unless
  the block says ``hex``; ``audio_setting`` 44.1 kHz, 256 kbit/s, the gateway's format.
* ``outcome``: a success answer's audio (URL, or hex taken out while it streamed in),
  duration (``extra_info.music_duration``, ms) and id (``trace_id``); an error inside the
  HTTP 200 (``base_resp.status_code`` ≠ 0) raised as its ``ProviderError`` (``CODES``).
* ``error_message``, ``error_class``: a non-2xx answer's body, for the provider kit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec

from providers.base import (
    ProviderError,
    SubmitRequest,
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamRateLimited,
    UpstreamRejected,
)
from providers.kit import json_error_text
from providers.minimax.catalog import AudioSetting, MiniMaxOptions
from providers.minimax.schemas import MusicAnswer, MusicBody

PROVIDER = "minimax"
LABEL = "MiniMax"
OP = "generate"

DEFAULT_SAMPLE_RATE = 44100  # the API reference's example, and AI Stats' choice
DEFAULT_BITRATE = 256000
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}
MESSAGE_MAX = 500

#: ``base_resp.status_code`` → (class, wait in seconds before a retry for rate limits).
#: Error-code page (code: its English text): 1002 "rate limit"; 2056 Token Plan resource
#: limit, wait for the next window (mainland table); 2045 rate growth limit (mainland);
#: 1041 "conn limit"; 1004 "not authorized"; 2049 "invalid API key"; 1008 "insufficient
#: balance"; 1026 "input new_sensitive", 1027 "output new_sensitive" (content policy);
#: 2013 "invalid params". Any other non-zero code is an ``UpstreamError``.
CODES: dict[int, tuple[type[ProviderError], float | None]] = {
    1002: (UpstreamRateLimited, 10.0),
    2056: (UpstreamRateLimited, 60.0),
    2045: (UpstreamRateLimited, 10.0),
    1041: (UpstreamRateLimited, 10.0),
    1004: (UpstreamAuthError, None),
    2049: (UpstreamAuthError, None),
    1008: (UpstreamInsufficientCredits, None),
    1026: (UpstreamRejected, None),
    1027: (UpstreamRejected, None),
    2013: (UpstreamRejected, None),
}
CONTENT_POLICY = frozenset({1026, 1027})
INVALID_PARAMS = 2013

#: ``data.status`` (the reference: 1 "合成中" in progress, 2 "已完成" complete). A
#: synchronous answer is complete; 1 or anything else is an error, never a song.
NATIVE_STATUS = {1: "in_progress", 2: "completed"}

#: Request fields an ``invalid params`` message may name (longest first).
FIELDS = (
    "audio_setting.sample_rate",
    "audio_setting.bitrate",
    "audio_setting.format",
    "cover_feature_id",
    "lyrics_optimizer",
    "is_instrumental",
    "aigc_watermark",
    "audio_setting",
    "output_format",
    "audio_base64",
    "sample_rate",
    "audio_url",
    "bitrate",
    "prompt",
    "lyrics",
    "stream",
    "format",
    "model",
)
_FIELD = re.compile(r"\b(" + "|".join(re.escape(f) for f in FIELDS) + r")\b")

_encoder = msgspec.json.Encoder()
_answer = msgspec.json.Decoder(MusicAnswer)


# ----------------------------------------------------------------------------- request


class Fields(NamedTuple):
    """What the request asks, wherever it says it, and the parameter to blame for each."""

    prompt: str | None
    prompt_param: str
    lyrics: str | None
    lyrics_param: str
    instrumental: bool
    instrumental_param: str
    optimizer: bool


def options(req: SubmitRequest) -> MiniMaxOptions:
    return req.options if isinstance(req.options, MiniMaxOptions) else MiniMaxOptions()


def fields(req: SubmitRequest) -> Fields:
    opts = options(req)
    prompt, prompt_param = (
        (opts.prompt, "minimax.prompt") if opts.prompt is not None else (req.prompt, "prompt")
    )
    lyrics, lyrics_param = (
        (opts.lyrics, "minimax.lyrics") if opts.lyrics is not None else (req.lyrics, "lyrics")
    )
    optimizer = bool(opts.lyrics_optimizer)
    if opts.is_instrumental is not None:
        instrumental, param = opts.is_instrumental, "minimax.is_instrumental"
    elif req.instrumental is not None:
        instrumental, param = req.instrumental, "instrumental"
    else:  # nothing asks for vocals: an instrumental (AI Stats' rule)
        instrumental, param = not (lyrics or optimizer), "instrumental"
    return Fields(prompt, prompt_param, lyrics, lyrics_param, instrumental, param, optimizer)


def audio_setting(req: SubmitRequest) -> AudioSetting:
    """The block's ``audio_setting`` with the gaps filled: 44.1 kHz, 256 kbit/s and the
    gateway's format."""
    given = options(req).audio_setting or AudioSetting()
    return AudioSetting(
        sample_rate=given.sample_rate or DEFAULT_SAMPLE_RATE,
        bitrate=given.bitrate or DEFAULT_BITRATE,
        format=given.format or req.format,
    )


def to_native(req: SubmitRequest) -> MusicBody:
    """The request as ``POST /v1/music_generation`` (``check`` has accepted it)."""
    opts = options(req)
    f = fields(req)
    return MusicBody(
        model=req.model.native_model,
        prompt=f.prompt or None,
        lyrics=None if f.instrumental else (f.lyrics or None),
        is_instrumental=f.instrumental,
        lyrics_optimizer=opts.lyrics_optimizer,
        stream=False,
        output_format=opts.output_format or "url",
        audio_setting=audio_setting(req),
        aigc_watermark=opts.aigc_watermark,
    )


def encode(body: MusicBody) -> bytes:
    return _encoder.encode(body)


def content_type(req: SubmitRequest) -> str:
    return CONTENT_TYPES.get(audio_setting(req).format or "mp3", "audio/mpeg")


# ------------------------------------------------------------------------------ answer


@dataclass(frozen=True)
class Outcome:
    """A successful generation: its audio URL (None when the audio came as hex), its
    length in seconds and MiniMax's id for it."""

    url: str | None
    duration: float | None
    native_id: str | None


def _text(value: Any, limit: int = MESSAGE_MAX) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())[:limit]
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def decode(raw: bytes) -> MusicAnswer | None:
    try:
        return _answer.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def base_resp(answer: MusicAnswer) -> tuple[int | None, str | None]:
    """``base_resp``'s code (None when absent or not a whole number) and message."""
    resp = _dict(answer.base_resp)
    return _int(resp.get("status_code")), _text(resp.get("status_msg"))


def field_named(message: str | None) -> str | None:
    """The request field an ``invalid params`` message names, if any."""
    found = _FIELD.search(message or "")
    return found.group(1) if found else None


def base_error(code: int, message: str | None, retry_after: float | None = None) -> ProviderError:
    """The ``ProviderError`` for ``base_resp.status_code`` ≠ 0 (``CODES``)."""
    cls, wait = CODES.get(code, (UpstreamError, None))
    said = message or "no message"
    if code in CONTENT_POLICY:
        text = f"{LABEL} refused the content (content policy, {code}): {said}"
    elif code == INVALID_PARAMS and (name := field_named(message)) is not None:
        text = f"{LABEL} {OP} rejected {name} ({code}): {said}"
    else:
        text = f"{LABEL} {OP} answered status_code {code}: {said}"
    limited = issubclass(cls, UpstreamRateLimited)
    return cls(
        text[: MESSAGE_MAX + 60],
        provider=PROVIDER,
        native_status=code,
        retry_after=(retry_after if retry_after is not None else wait) if limited else None,
    )


def _unread(what: str) -> UpstreamError:
    """A 200 answer that is not a finished song: the generation may have happened."""
    return UpstreamError(f"{LABEL} {OP}: {what}", provider=PROVIDER, native_status=200)


def _url(value: Any) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    return text if text.startswith(("https://", "http://")) and len(text) <= 4096 else None


def outcome(
    raw: bytes,
    *,
    audio_bytes: int,
    trace_header: str | None = None,
    retry_after: float | None = None,
) -> Outcome:
    """Read a complete 200 answer (its skeleton: ``data.audio`` emptied when it was hex,
    ``audio_bytes`` decoded from it). Raises the ``ProviderError`` it stands for."""
    answer = decode(raw)
    if answer is None:
        raise _unread("the answer is not a JSON object")
    code, message = base_resp(answer)
    if code is not None and code != 0:
        raise base_error(code, message, retry_after)
    data = _dict(answer.data)
    status = data.get("status")
    if status is not None and NATIVE_STATUS.get(_int(status) or -1) != "completed":
        word = NATIVE_STATUS.get(_int(status) or -1, "unknown")
        raise _unread(f"answered data.status {status!r} ({word}) instead of a finished song")
    url = None if audio_bytes else (_url(data.get("audio")) or _url(data.get("audio_url")))
    if not audio_bytes and url is None:
        raise _unread("answered no audio")
    extra = _dict(answer.extra_info)
    ms = _int(extra.get("music_duration"))
    ms = ms if ms is not None else _int(extra.get("audio_length"))
    duration = round(ms / 1000, 3) if ms is not None and 0 < ms < 10**9 else None
    trace = _text(answer.trace_id, 128) or _text(trace_header, 128)
    return Outcome(url=url, duration=duration, native_id=trace)


# ----------------------------------------------------------------------- HTTP errors


def error_message(raw: bytes) -> str | None:
    """The human message of a non-2xx answer: ``base_resp`` (code and message), else an
    ``error``/``message`` string."""
    answer = decode(raw)
    if answer is not None:
        code, message = base_resp(answer)
        if code is not None and code != 0:
            return f"status_code {code}: {message or 'no message'}"[:MESSAGE_MAX]
    return json_error_text(raw)


def error_class(status: int, raw: bytes) -> type[ProviderError] | None:
    """The class a non-2xx answer's ``base_resp`` code says (``CODES``); None: by status."""
    answer = decode(raw)
    code = base_resp(answer)[0] if answer is not None else None
    return CODES[code][0] if code in CODES else None
