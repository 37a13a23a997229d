"""The contract between the gateway and every music provider.

The gateway (``gateway/``) knows providers only through this module and the explicit
registry in ``providers/registry.py``. A provider package supplies:

* a ``Provider`` implementation (``submit``, ``fetch``, ``callback``, ``aclose``),
* its models as ``ModelSpec`` data,
* an ``options_type``: the msgspec Struct of its native request block (``musicgpt {...}``),
  declared with ``forbid_unknown_fields=True`` so a typo is a 400, never dropped.

Everything a provider returns is a normalized ``Snapshot``. Errors are raised from the
``ProviderError`` tree; the gateway maps each class to one client-facing answer::

    ProviderError                      (502 upstream_error unless a subclass says otherwise)
     ├── UpstreamRejected              400 upstream_rejected       native 400/422 on create
     ├── UpstreamAuthError             502 upstream_auth_error     native 401/403 (our key)
     ├── UpstreamInsufficientCredits   402 upstream_insufficient_credits  native 402/412
     ├── UpstreamRateLimited           429 upstream_rate_limited   native 429 (+ retry_after)
     ├── UpstreamNotFound              502 upstream_not_found      native 404 on a status call
     ├── UpstreamError                 502 upstream_error          5xx, malformed JSON, reset
     └── UpstreamTimeout               504 upstream_timeout        connect/read timeout

    RequestRejected                    400 (code chosen by the provider) for input the
                                       provider's models cannot honour, raised by ``check``.

Usage (a provider's ``submit``)::

    async def submit(self, req: SubmitRequest) -> Submission:
        body = mapping.to_native(req)            # pure
        raw = await self._client.create(body)    # thin I/O, raises ProviderError
        return mapping.from_create(raw, req)     # pure
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import msgspec

Status = Literal["queued", "in_progress", "completed", "failed"]
Kind = Literal["song", "instrumental"]
AudioFormat = Literal["mp3", "wav"]

FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed"})
STATUS_RANK: dict[str, int] = {"queued": 0, "in_progress": 1, "completed": 2, "failed": 2}

#: Normalized request parameters a model may or may not honour (see ``ModelSpec.supports``).
#: ``model``, ``webhook_url`` and ``metadata`` are gateway-level and always accepted.
NORMALIZED_PARAMS: tuple[str, ...] = (
    "prompt",
    "lyrics",
    "instrumental",
    "title",
    "style",
    "duration",
    "format",
)


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One catalog entry: a public model id routed to one provider's native model."""

    id: str  # public id, e.g. "musicgpt/v7"
    provider: str  # provider name, e.g. "musicgpt"
    native_model: str  # what the provider's API calls it, e.g. "v7"
    kind: Kind
    supports: frozenset[str]  # subset of NORMALIZED_PARAMS
    description: str = ""


class Callback(msgspec.Struct, frozen=True, kw_only=True):
    """Where the provider should call back for this job, when ``GATEWAY_PUBLIC_URL`` is set."""

    url: str  # full URL of the gateway's intake for this job, token included
    job_id: str  # gateway job id
    token: str  # unguessable per-job token (already inside ``url``)


class SubmitRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated, normalized create request handed to ``Provider.submit``."""

    model: ModelSpec
    prompt: str | None = None
    lyrics: str | None = None
    instrumental: bool | None = None
    title: str | None = None
    style: str | None = None
    duration: int | None = None
    format: AudioFormat = "mp3"
    options: Any = None  # an instance of the provider's ``options_type`` or None
    callback: Callback | None = None


class Output(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One generated track, normalized (the AI Stats ``output[]`` item)."""

    index: int
    id: str | None = None
    audio_url: str | None = None
    stream_audio_url: str | None = None
    image_url: str | None = None
    title: str | None = None
    tags: str | None = None
    duration: float | None = None
    lyrics: str | None = None


class JobError(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why a job failed: a machine code, a human message and the native status word."""

    code: str
    message: str
    native_status: str | None = None


class Snapshot(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The provider's view of a job at one moment, already normalized.

    ``state`` is provider-private data (msgspec-encodable) that the gateway stores with
    the job and hands back on the next ``fetch``/``callback`` (e.g. per-native-job
    progress, URL expiry). ``refresh_after`` (epoch seconds) asks the gateway to call
    ``fetch`` again after that moment even when the job is final, e.g. because a
    download URL expires then. ``native_ids`` names native jobs a callback revealed that
    the gateway did not know yet: a create whose answer was lost is reconciled this way.
    """

    status: Status
    native_status: str | None = None
    progress: int | None = None
    outputs: list[Output] = []
    error: JobError | None = None
    state: dict[str, Any] = {}
    refresh_after: float | None = None
    native_ids: list[str] = []


class Submission(msgspec.Struct, kw_only=True):
    """What ``submit`` returns: the native ids and the first snapshot."""

    native_id: str  # shown to clients as ``nativeResponseId``
    native_ids: list[str]  # every native id this job spans (one per output for TemPolor)
    snapshot: Snapshot


class JobRef(msgspec.Struct, frozen=True, kw_only=True):
    """What ``fetch``/``callback`` get: the stored native ids and the last snapshot."""

    job_id: str
    model: ModelSpec
    native_id: str
    native_ids: list[str]
    format: AudioFormat
    last: Snapshot


# ---------------------------------------------------------------------------- errors


class ProviderError(Exception):
    """Base of every upstream failure. ``message`` must never contain a credential."""

    code: ClassVar[str] = "upstream_error"
    http_status: ClassVar[int] = 502

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        native_status: int | str | None = None,
        retry_after: float | None = None,
        sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.native_status = native_status  # upstream HTTP status or native status word
        self.retry_after = retry_after  # seconds, for rate limits
        self.sent = sent  # False only when the request provably never left (connect error)


class UpstreamRejected(ProviderError):
    code = "upstream_rejected"
    http_status = 400


class UpstreamAuthError(ProviderError):
    code = "upstream_auth_error"
    http_status = 502


class UpstreamInsufficientCredits(ProviderError):
    code = "upstream_insufficient_credits"
    http_status = 402


class UpstreamRateLimited(ProviderError):
    code = "upstream_rate_limited"
    http_status = 429


class UpstreamNotFound(ProviderError):
    code = "upstream_not_found"
    http_status = 502


class UpstreamError(ProviderError):
    code = "upstream_error"
    http_status = 502


class UpstreamTimeout(ProviderError):
    code = "upstream_timeout"
    http_status = 504


def error_for_status(
    status: int, message: str, *, provider: str, retry_after: float | None = None
) -> ProviderError:
    """Map an upstream HTTP status to the ProviderError class of DESIGN.md's table."""
    if status in (400, 409, 422):
        return UpstreamRejected(message, provider=provider, native_status=status)
    if status in (401, 403):
        return UpstreamAuthError(message, provider=provider, native_status=status)
    if status in (402, 412):
        return UpstreamInsufficientCredits(message, provider=provider, native_status=status)
    if status == 429:
        return UpstreamRateLimited(
            message, provider=provider, native_status=status, retry_after=retry_after
        )
    if status == 404:
        return UpstreamNotFound(message, provider=provider, native_status=status)
    return UpstreamError(message, provider=provider, native_status=status)


class RequestRejected(Exception):
    """Input a provider's model cannot honour; becomes a 400 with ``code`` and ``param``."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


# -------------------------------------------------------------------------- protocol


@runtime_checkable
class Provider(Protocol):
    """What every provider implements. Construct with its settings; close with ``aclose``."""

    name: str  # e.g. "musicgpt"; also the name of its native request block
    models: tuple[ModelSpec, ...]
    options_type: type[msgspec.Struct]  # native block, forbid_unknown_fields=True
    #: Status calls per minute the provider documents (the smallest plan's): the default
    #: of the gateway's shared upstream budget (GATEWAY_UPSTREAM_BUDGETS overrides it).
    status_calls_per_minute: float

    def status_calls(self, native_ids: Sequence[str]) -> int:
        """Status calls one ``fetch`` of a job with these native ids makes: what a
        refresh spends from the upstream budget (pure, no I/O)."""
        ...

    @property
    def configured(self) -> bool:
        """True when credentials (or a simulator) are set up."""
        ...

    def check(self, req: SubmitRequest) -> None:
        """Raise ``RequestRejected`` for input the model cannot honour (pure, no I/O)."""
        ...

    async def submit(self, req: SubmitRequest) -> Submission:
        """Start a generation upstream. Raises ``ProviderError``."""
        ...

    async def fetch(self, job: JobRef) -> Snapshot:
        """Fetch a fresh status snapshot from upstream. Raises ``ProviderError``."""
        ...

    async def callback(self, job: JobRef, body: bytes) -> Snapshot:
        """Apply one provider callback body to the job; returns the new snapshot.

        Must tolerate duplicates and any order. Raises ``ValueError`` for a body it cannot
        read.
        """
        ...

    async def aclose(self) -> None:
        """Release network clients."""
        ...


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES
