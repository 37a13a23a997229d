"""The Suno simulator's knobs (``SimulatorConfig``) and fault rules (``Fault``).

Both are mutable msgspec Structs: tests change the shared ``SimulatorConfig`` directly or
over HTTP with ``POST /__sim__/config`` (a partial JSON update; unknown fields are a 400).
Example::

    {"faults": [{"code": 430, "endpoints": ["create"], "count": 1, "retry_after": 7}],
     "text_seconds": 0.1, "callback_order": "reverse", "callback_duplicates": 1}

sunoapi.org reports errors as a request-level ``code`` inside an HTTP 200 (its docs'
table: 400 parameters, 401 key, 404 path, 405 rate, 413 too long, 429 credits, 430
frequency, 455 maintenance, 500 server); a ``Fault`` answers one such code, in an HTTP
200 by default or with ``http_status`` as the HTTP status too.

``echo_auth_in_errors: true`` makes every error ``msg`` quote the ``Authorization``
received, so tests can check the gateway never passes the key on.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Endpoint = Literal["create", "status"]
_ENDPOINTS: tuple[Endpoint, ...] = ("create", "status")

#: A default ``msg`` per code (the docs' wording, shortened).
MESSAGES: dict[int, str] = {
    400: "Invalid parameters",
    401: "Unauthorized: invalid API key",
    404: "Invalid request method or path",
    405: "Rate limit exceeded",
    413: "Theme or prompt too long",
    429: "Insufficient credits",
    430: "Call frequency too high",
    455: "System maintenance",
    500: "Server error",
}


class Fault(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One fault rule; the first rule matching a request's endpoint applies."""

    code: int | None = None  # answer this request-level code (nothing is created)
    message: str | None = None  # its ``msg`` (default: ``MESSAGES``)
    http_status: int | None = None  # the HTTP status of that answer (default 200)
    retry_after: float | None = None  # add a Retry-After header (none documented)
    malformed: bool = False  # answer HTTP 200 with truncated JSON
    latency: float = 0.0  # seconds to wait before answering
    endpoints: list[Endpoint] = msgspec.field(default_factory=lambda: list(_ENDPOINTS))
    count: int | None = None  # only the next N matching requests; None = all of them
    # create only: the task is created first (callbacks included), then latency, code or
    # malformed shape the answer: sunoapi.org has the task, its answer is lost or late
    after_create: bool = False


class SimulatorConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every knob; mutable, and switchable at runtime with ``POST /__sim__/config``."""

    api_key: str = "sim-suno-key"
    text_seconds: float = 0.2  # PENDING until then, then TEXT_SUCCESS (lyrics, titles)
    first_seconds: float = 0.4  # then FIRST_SUCCESS (the first song's stream URL)
    complete_seconds: float = 0.6  # then SUCCESS (both songs' audio)
    songs: int = 2  # songs per task (*generate*: "exactly 2")
    # a prompt, lyrics, style or title containing one of these ends the task so:
    fail_words: list[str] = msgspec.field(default_factory=lambda: ["failme"])  # audio failed
    sensitive_words: list[str] = msgspec.field(default_factory=lambda: ["sensitiveme"])
    create_fail_words: list[str] = msgspec.field(default_factory=lambda: ["createfailme"])
    fail_code: int = 501  # errorCode (and the error callback's code) of a failed task
    # tasks created while set end in this status word instead of SUCCESS (e.g. an
    # undocumented one), with their audio or not
    end_word: str | None = None
    end_audio: bool = True
    faults: list[Fault] = []
    echo_auth_in_errors: bool = False
    creates_per_window: int | None = None  # *generate*: 20 per 10 s; beyond: code 430
    window_seconds: float = 10.0
    callbacks: bool = True
    callback_order: Literal["natural", "reverse", "shuffle"] = "natural"
    callback_duplicates: int = 0  # extra copies of every callback
    callback_retries: int = 2
    callback_timeout: float = 5.0
    # a callback that cannot be delivered turns the task's status into CALLBACK_EXCEPTION
    # for the rest of its life (the generation goes on, its audio appears)
    callback_exception: bool = True
    seed: int | None = None  # for callback_order "shuffle"
