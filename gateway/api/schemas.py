"""Public wire types: the request, the AI Stats-compatible job object, the catalog, errors.

Inbound types forbid unknown fields; the create request is assembled per app from the
registered providers, one native block per provider (``musicgpt {...}``, ``tempolor {...}``)::

    MusicGenerateRequest = build_request_type(providers)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import msgspec

from gateway.jobs.public import (
    DebugInfo,
    JobErrorInfo,
    JobWarning,
    MusicJob,
    OutputItem,
    Status,
    UpstreamRequest,
    UpstreamResponse,
    Usage,
)
from gateway.jobs.routing import DebugOptions, ProviderRouting
from providers.base import Provider

# Length limits on every inbound string (hostile input).
MAX_MODEL = 100
MAX_PROMPT = 4000
MAX_LYRICS = 5000
MAX_SHORT = 300
MAX_URL = 2048
MAX_METADATA_ITEMS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512

Metadata = Annotated[
    dict[
        Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_METADATA_KEY)],
        Annotated[str, msgspec.Meta(max_length=MAX_METADATA_VALUE)],
    ],
    msgspec.Meta(
        max_length=MAX_METADATA_ITEMS,
        description="Your own string key/value pairs, echoed back on the job: at most"
        f" {MAX_METADATA_ITEMS} pairs, keys 1-{MAX_METADATA_KEY} characters, values at most"
        f" {MAX_METADATA_VALUE}.",
    ),
]

#: Top-level fields every create request may carry, besides one block per provider.
BASE_REQUEST_FIELDS: list[tuple[str, Any, Any]] = [
    (
        "model",
        Annotated[
            str,
            msgspec.Meta(
                min_length=1,
                max_length=MAX_MODEL,
                description="Model id from GET /v1/models, e.g. `musicgpt/v7` (at most"
                f" {MAX_MODEL} characters).",
                examples=["musicgpt/v7"],
            ),
        ],
        msgspec.NODEFAULT,
    ),
    (
        "prompt",
        Annotated[
            str,
            msgspec.Meta(
                max_length=MAX_PROMPT,
                description=f"What to make; at most {MAX_PROMPT} characters (a provider may"
                " allow fewer: TemPolor takes 2000, MusicGPT advises about 300).",
            ),
        ]
        | None,
        None,
    ),
    (
        "lyrics",
        Annotated[
            str,
            msgspec.Meta(
                max_length=MAX_LYRICS,
                description=f"Lyrics to sing; at most {MAX_LYRICS} characters (MusicGPT and"
                " TemPolor take about 3000).",
            ),
        ]
        | None,
        None,
    ),
    ("instrumental", Annotated[bool, msgspec.Meta(description="No vocals.")] | None, None),
    (
        "title",
        Annotated[
            str,
            msgspec.Meta(max_length=MAX_SHORT, description=f"At most {MAX_SHORT} characters."),
        ]
        | None,
        None,
    ),
    (
        "style",
        Annotated[
            str,
            msgspec.Meta(
                max_length=MAX_SHORT, description=f"Genre / style; at most {MAX_SHORT} characters."
            ),
        ]
        | None,
        None,
    ),
    (
        "duration",
        Annotated[
            int,
            msgspec.Meta(
                ge=1,
                le=600,
                description="Seconds of audio, for the models that honour it (see"
                " supported_parameters in GET /v1/models); for the others it is listed in"
                " the answer's warnings (parameter_ignored).",
            ),
        ]
        | None,
        None,
    ),
    (
        "format",
        Annotated[
            Literal["mp3", "wav", "ogg", "aac"],
            msgspec.Meta(
                description="Audio format of the outputs (default mp3). What a provider"
                " does not give is converted from the gateway's stored copy."
            ),
        ]
        | None,
        None,
    ),
    (
        "webhook_url",
        Annotated[
            str,
            msgspec.Meta(
                max_length=MAX_URL,
                description=f"Absolute https URL of at most {MAX_URL} characters, without user"
                " info or fragment, whose host resolves only to public addresses (loopback,"
                " private and link-local targets are refused unless the gateway allows private"
                " targets; cloud metadata services always are). Every status change after the"
                " create is POSTed there: the job object, signed per Standard Webhooks with your"
                " key's signing secret (webhook-id, webhook-timestamp, webhook-signature).",
            ),
        ]
        | None,
        None,
    ),
    ("metadata", Metadata | None, None),
    (
        "provider",
        Annotated[
            ProviderRouting,
            msgspec.Meta(
                description="AI Stats' routing options: only, ignore, order and"
                " allow_fallbacks pick among the providers serving the model;"
                " require_parameters turns fields the model cannot use into a 400. The"
                " other options are accepted and listed in warnings."
            ),
        ]
        | None,
        None,
    ),
    (
        "routing",
        Annotated[ProviderRouting, msgspec.Meta(description="The same as provider (not both).")]
        | None,
        None,
    ),
    (
        "debug",
        Annotated[
            DebugOptions,
            msgspec.Meta(
                description="return_upstream_request / return_upstream_response: the"
                " create's answer carries debug.upstream_request / upstream_response,"
                " secrets redacted."
            ),
        ]
        | None,
        None,
    ),
    (
        "echo_upstream_request",
        Annotated[
            bool,
            msgspec.Meta(description="As debug.return_upstream_request."),
        ]
        | None,
        None,
    ),
    (
        "beta",
        Annotated[
            dict[Annotated[str, msgspec.Meta(max_length=MAX_METADATA_KEY)], Any],
            msgspec.Meta(
                max_length=MAX_METADATA_ITEMS,
                description="AI Stats' beta switches: accepted; none exists here, so each"
                " one set is listed in warnings.",
            ),
        ]
        | None,
        None,
    ),
]


def build_request_type(providers: Iterable[Provider]) -> type[msgspec.Struct]:
    """The create request Struct: base fields plus one optional native block per provider."""
    fields = list(BASE_REQUEST_FIELDS)
    for p in providers:
        fields.append((p.catalog.native_block, p.catalog.options_type | None, None))
    return msgspec.defstruct(
        "MusicGenerateRequest",
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        module=__name__,
    )


class ModelInfo(msgspec.Struct, kw_only=True):
    """A catalog entry."""

    id: str
    provider: str
    kind: Literal["song", "instrumental"]
    supported_parameters: list[str]
    native_parameters: list[str]
    native_block: str
    description: str
    available: bool
    object: Literal["model"] = "model"


class ModelList(msgspec.Struct, kw_only=True):
    data: list[ModelInfo]
    object: Literal["list"] = "list"


class ErrorResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The one error envelope (AI Stats keys plus ``param`` and ``request_id``)."""

    error: str
    description: str
    status_code: int
    request_id: str
    param: str | None = None
    reason: str | None = None
    details: list[str] | None = None


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok"] = "ok"


class ProviderReadiness(msgspec.Struct, kw_only=True):
    configured: bool
    circuit: Literal["closed", "open", "half_open"] = "closed"
    callbacks: Annotated[
        bool | None,
        msgspec.Meta(
            description="Whether the provider calls the gateway back: null when it never"
            " does; false when it could but GATEWAY_PUBLIC_URL is unset (its jobs are then"
            " followed by polling only)."
        ),
    ] = None
    note: Annotated[
        str | None,
        msgspec.Meta(description="What that means for this provider, when it says more."),
    ] = None


class Readiness(msgspec.Struct, kw_only=True):
    status: Literal["ready", "not_ready"]
    redis: bool
    providers: dict[str, ProviderReadiness]


class CallbackAck(msgspec.Struct, kw_only=True):
    ok: bool = True
    status: Status


class JobEvent(msgspec.Struct, kw_only=True):
    """One server-sent event of ``GET /v1/music/generate/{music_id}/events``."""

    event: Literal["status"] = msgspec.field(default="status", name="event")
    id: Annotated[str, msgspec.Meta(description="`{music_id}.{status}`")]
    data: Annotated[
        str, msgspec.Meta(description="The job object (MusicJob), JSON-encoded on one line.")
    ]


#: Types the gateway only ever sends. msgspec writes every field of them (``null`` when
#: empty), so the OpenAPI document lists every field as required and generated clients
#: need not handle an absent key. (``ErrorResponse`` omits empty fields: not listed.)
RESPONSE_TYPES: tuple[type[msgspec.Struct], ...] = (
    MusicJob,
    OutputItem,
    Usage,
    JobErrorInfo,
    JobWarning,
    DebugInfo,
    UpstreamRequest,
    UpstreamResponse,
    ModelInfo,
    ModelList,
    Health,
    ProviderReadiness,
    Readiness,
    CallbackAck,
)
