"""The ElevenLabs simulator's knobs (``SimulatorConfig``) and fault rules (``Fault``).

Both are mutable msgspec Structs: tests may change the shared ``SimulatorConfig`` object
directly, or over HTTP with ``POST /__sim__/config`` (a partial JSON update; unknown
fields are a 400). Example::

    {"latency": 0.5, "max_concurrency": 2,
     "faults": [{"kind": "too_many_concurrent_requests", "count": 2, "retry_after": 3}]}

Fault kinds and what the next ``count`` calls (after the key check) answer:

======================================  ====================================================
``bad_prompt``                          422 ``detail.status: bad_prompt`` + ``suggestion``
``bad_composition_plan``                422 ``bad_composition_plan`` + a suggested plan
``validation``                          422 FastAPI array on ``music_length_ms``
``invalid_api_key``                     401 ``detail.status: invalid_api_key``
``quota_exceeded``                      401 ``detail.status: quota_exceeded`` (as ElevenLabs)
``too_many_concurrent_requests``        429 (``retry_after``: a ``Retry-After`` header)
``system_busy``                         429 ``system_busy``
``server_error``                        500 ``{"detail": "Internal Server Error"}``
``disconnect``                          200, then the connection is cut after
                                        ``after_bytes`` bytes of audio
======================================  ====================================================

``status`` overrides the HTTP status (e.g. ``bad_prompt`` as 400).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

FaultKind = Literal[
    "bad_prompt",
    "bad_composition_plan",
    "validation",
    "invalid_api_key",
    "quota_exceeded",
    "too_many_concurrent_requests",
    "system_busy",
    "server_error",
    "disconnect",
]


class Fault(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One fault-injection rule; the first rule with calls left applies."""

    kind: FaultKind
    count: int | None = 1  # the next N calls; None = every call
    status: int | None = None  # override the HTTP status
    retry_after: float | None = None  # add a Retry-After header (429s)
    suggestion: str = "An upbeat pop song with bright synths and a catchy chorus"
    after_bytes: int = 65536  # disconnect: audio bytes sent before the cut


class SimulatorConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every knob; mutable, and switchable at runtime with ``POST /__sim__/config``."""

    api_key: str = "sim-elevenlabs-key"
    latency: float = 0.0  # seconds before the answer's first byte (the "generation")
    default_length_ms: int = 30000  # a prompt without music_length_ms
    max_concurrency: int | None = None  # calls beyond this many in flight -> 429
    concurrency_retry_after: float | None = None  # Retry-After on those 429s
    chunk_size: Annotated[int, msgspec.Meta(ge=512, le=1 << 20)] = 65536
    mp3_content_length: bool = False  # MP3 answers chunked (no Content-Length) by default
    pcm_content_length: bool = True  # PCM answers carry Content-Length by default
    echo_key_in_errors: bool = False  # error messages quote the xi-api-key received
    faults: list[Fault] = []
