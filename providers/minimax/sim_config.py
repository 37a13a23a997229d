"""The MiniMax simulator's knobs (``SimulatorConfig``) and fault rules (``Fault``).

Both are mutable msgspec Structs: tests may change the shared ``SimulatorConfig`` object
directly, or over HTTP with ``POST /__sim__/config`` (a partial JSON update; unknown
fields are a 400). Example::

    {"latency": 0.5, "max_concurrency": 2,
     "faults": [{"kind": "rate_limited", "count": 2}]}

Fault kinds and what the next ``count`` calls (after the key check) answer. As MiniMax
does, errors come inside an HTTP 200 (``status`` overrides it) with ``base_resp``:

========================  ==========================================================
``rate_limited``          ``base_resp`` 1002 "rate limit exceeded"
``plan_limit``            2056 (Token Plan resource limit)
``auth_failed``           1004 (authorization failed)
``invalid_api_key``       2049 "invalid api key"
``insufficient_balance``  1008 "insufficient balance"
``input_sensitive``       1026 "input new_sensitive"
``output_sensitive``      1027 "output new_sensitive" (after the generation's latency)
``invalid_params``        2013 "invalid params", naming ``field``
``unknown_error``         1000 "unknown error"
``http_error``            HTTP ``status`` (500 by default) with a plain-text body
``unfinished``            200, ``data.status`` 1 and no audio
``malformed``             200, the JSON answer cut in the middle (well-formed HTTP)
``disconnect``            200, then the connection is cut after ``after_bytes`` bytes
                          of the answer (hex mode: inside the hex)
========================  ==========================================================

``message`` overrides ``base_resp.status_msg``; ``retry_after`` adds a ``Retry-After``
header.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

FaultKind = Literal[
    "rate_limited",
    "plan_limit",
    "auth_failed",
    "invalid_api_key",
    "insufficient_balance",
    "input_sensitive",
    "output_sensitive",
    "invalid_params",
    "unknown_error",
    "http_error",
    "unfinished",
    "malformed",
    "disconnect",
]

#: ``base_resp`` of each fault kind that answers one: (status_code, status_msg).
BASE_RESP: dict[str, tuple[int, str]] = {
    "rate_limited": (1002, "rate limit exceeded(RPM)"),
    "plan_limit": (2056, "usage limit exceeded, please wait for the next window"),
    "auth_failed": (1004, "authorized failed, token not match group"),
    "invalid_api_key": (2049, "invalid api key"),
    "insufficient_balance": (1008, "insufficient balance"),
    "input_sensitive": (1026, "input new_sensitive"),
    "output_sensitive": (1027, "output new_sensitive"),
    "invalid_params": (2013, "invalid params"),
    "unknown_error": (1000, "unknown error"),
}


class Fault(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One fault-injection rule; the first rule with calls left applies."""

    kind: FaultKind
    count: int | None = 1  # the next N calls; None = every call
    status: int | None = None  # the HTTP status (200 for base_resp errors)
    retry_after: float | None = None  # add a Retry-After header
    message: str | None = None  # base_resp.status_msg instead of the default
    field: str = "lyrics"  # invalid_params: the field the message names
    after_bytes: int = 4096  # disconnect: answer bytes sent before the cut


class SimulatorConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every knob; mutable, and switchable at runtime with ``POST /__sim__/config``."""

    api_key: str = "sim-minimax-key"
    latency: float = 0.0  # seconds the "generation" takes before the answer
    length_ms: int = 30000  # every song's length (MiniMax picks it; ~5 min at most)
    max_concurrency: int | None = None  # calls beyond this many in flight -> 1002
    chunk_size: Annotated[int, msgspec.Meta(ge=512, le=1 << 20)] = 65536
    url_field: Literal["audio", "audio_url"] = "audio"  # where a URL answer puts it
    url_ttl: float = 86400.0  # seconds a URL answer's download works (24 h)
    trace_header: bool = True  # send the trace id in a Trace-Id header too
    echo_key_in_errors: bool = False  # error messages quote the key received
    faults: list[Fault] = []
