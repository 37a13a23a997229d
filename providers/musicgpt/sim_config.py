"""The MusicGPT simulator's knobs (``SimulatorConfig``) and fault rules (``Fault``).

Both are mutable msgspec Structs: tests may change the shared ``SimulatorConfig`` object
directly, or over HTTP with ``POST /__sim__/config`` (a partial JSON update; unknown
fields are a 400). Example::

    {"faults": [{"status": 429, "endpoints": ["create"], "count": 1}],
     "queue_seconds": 0.2, "callback_order": "shuffle", "callback_duplicates": 1}

``echo_auth_in_errors: true`` makes every native error body quote the ``Authorization``
value it received (``"Incorrect API key (received Authorization: <key>)"``), so tests can
check the gateway never passes a provider key on.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Endpoint = Literal["create", "status", "download"]
_ENDPOINTS: tuple[Endpoint, ...] = ("create", "status", "download")


class Fault(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One fault-injection rule; the first rule matching a request's endpoint applies."""

    status: int | None = None  # answer this HTTP status with the native error body
    message: str | None = None  # error text (default: a native message for the status)
    body_style: Literal["error", "message", "detail"] = "error"  # native body variants
    retry_after: float | None = None  # add a Retry-After header (the real API sends none)
    malformed: bool = False  # answer 200 with truncated JSON
    latency: float = 0.0  # seconds to wait before answering
    endpoints: list[Endpoint] = msgspec.field(default_factory=lambda: list(_ENDPOINTS))
    count: int | None = None  # only the next N matching requests; None = all of them
    # create only: the task is created first (callbacks included), then latency, status or
    # malformed shape the answer: the provider has the job, its answer is lost or late
    after_create: bool = False


class SimulatorConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every knob; mutable, and switchable at runtime with ``POST /__sim__/config``."""

    api_key: str = "sim-musicgpt-key"
    queue_seconds: float = 0.3  # IN_QUEUE for this long after create
    progress_seconds: float = 0.6  # then IN_PROGRESS for this long, then final
    partial_completed: bool = False  # 2nd half of progress answers PARTIAL_COMPLETED
    legacy_shape: bool = False  # byId answers the older single-output shape
    string_numbers: bool = False  # durations and costs as strings ("1.0")
    # phase (queued, in_progress, partial, completed, failed, flagged) -> native word
    status_words: dict[str, str] = {}
    # a prompt (or lyrics, style) containing one of these -> is_flagged: true at create
    flag_words: list[str] = msgspec.field(default_factory=lambda: ["flagme"])
    flag_reason: str = "Prompt violates the content policy"
    # a prompt (or lyrics, style) containing one of these -> the task ends in ERROR
    fail_words: list[str] = msgspec.field(default_factory=lambda: ["failme"])
    faults: list[Fault] = []
    # error bodies quote the Authorization header received, as some real APIs do
    echo_auth_in_errors: bool = False
    max_concurrent: int | None = None  # parallel generations per key (plan limit) -> 429
    byid_per_minute: int | None = None  # byId calls per minute (plan limit) -> 429
    callbacks: bool = True
    callback_shape: Literal["artefact", "legacy"] = "artefact"
    callback_order: Literal["natural", "reverse", "shuffle"] = "natural"
    callback_duplicates: int = 0  # extra copies of every callback
    callback_retries: int = 2
    callback_timeout: float = 5.0
    seed: int | None = None  # for callback_order "shuffle"


DEFAULT_WORDS: dict[str, str] = {
    "queued": "IN_QUEUE",
    "in_progress": "IN_PROGRESS",
    "partial": "PARTIAL_COMPLETED",
    "completed": "COMPLETED",
    "failed": "ERROR",
    "flagged": "FAILED",
}
