"""The contract between the gateway and every music provider (v2: capabilities).

The gateway (``gateway/``) knows providers only through this module and the explicit
registry in ``providers/registry.py``. A provider declares what it can do instead of
pretending every provider polls:

* ``Provider`` (every provider): its ``catalog`` (models, the normalized parameters each
  honours, its native request block and that block's msgspec Struct), its ``credentials``
  (environment names; the gateway redacts their values and the first-run demo starts the
  provider's simulator when they are unset), its ``state_type`` (the typed provider state
  the gateway stores with a job), ``check`` (pure input checks), ``start`` and ``aclose``.
* ``start(request)`` answers either ``Pending`` (native ids and a first snapshot: the
  gateway then follows the job) or ``Finished`` (the artefacts: a synchronous provider,
  whose answer is the audio itself).
* ``Pollable`` (optional): ``fetch(ref) -> Snapshot`` and ``polling``, the status calls a
  minute the provider documents and what one ``fetch`` costs (the gateway keeps the shared
  budget and the accounting).
* ``CallsBack`` (optional): ``callback(ref, headers, body) -> Snapshot``; the headers let
  a provider check a signature, the body is the raw bytes (JSON or a form).

Every output is an ``Artefact``: audio (or an image; later MIDI, text, data) with its
content type, duration, title, tags and lyrics, given as a URL to copy or, in a
``Finished`` answer, as a ``ByteStream``.

Errors are raised from the ``ProviderError`` tree (drawn in ``providers/errors.py`` and
re-exported here); the gateway maps each class to one client-facing answer. ``sent`` says
whether the request may have reached the provider: one that may have is never sent again.

Usage (a provider's ``start``)::

    async def start(self, req: SubmitRequest[MyOptions]) -> Pending[MyState]:
        body = mapping.to_native(req)            # pure
        raw = await self._client.create(body)    # thin I/O, raises ProviderError
        return mapping.from_create(raw, req)     # pure
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

import msgspec

# The error tree lives in providers/errors.py; providers and the gateway import it from here.
from providers.errors import (  # noqa: F401
    ProviderError,
    RequestRejected,
    UpstreamAuthError,
    UpstreamError,
    UpstreamInsufficientCredits,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_for_status,
)

Status = Literal["queued", "in_progress", "completed", "failed"]
Kind = Literal["song", "instrumental"]
AudioFormat = Literal["mp3", "wav"]
ArtefactKind = Literal["audio", "image"]

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

OptionsT = TypeVar("OptionsT", bound=msgspec.Struct)  # a provider's native block
StateT = TypeVar("StateT", bound=msgspec.Struct)  # a provider's typed state


# ---------------------------------------------------------------------- declarations


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One catalog entry: a public model id routed to one provider's native model."""

    id: str  # public id, e.g. "musicgpt/v7"
    provider: str  # provider name, e.g. "musicgpt"
    native_model: str  # what the provider's API calls it, e.g. "v7"
    kind: Kind
    supports: frozenset[str]  # subset of NORMALIZED_PARAMS
    description: str = ""
    # The formats the provider gives itself; any other ``format`` is asked as mp3 and
    # converted by the gateway from its stored copy.
    formats: frozenset[str] = frozenset({"mp3", "wav"})


@dataclass(frozen=True)
class Catalog:
    """What a provider serves: its models, and its native request block (``musicgpt {}``),
    whose Struct forbids unknown fields so a typo is a 400, never dropped.

    ``synchronous``: ``start`` runs the whole generation (seconds to minutes) and answers
    ``Finished``; the gateway runs it on its generation worker, never inside a client's
    request, at most ``concurrency`` at once (the provider's documented limit) unless
    ``GATEWAY_CONCURRENCY`` says otherwise.

    ``account_callbacks``: the provider calls one account-level URL rather than the
    per-job one the gateway gives it; the gateway then keeps a native-id → job index to
    route those callbacks (``Callbacks.callback_for_native``).

    ``ignored_options``: native block fields accepted (a client of another gateway sends
    them) that this provider cannot use; the gateway reports them in ``warnings``.

    ``without_callbacks``: what happens to a provider that calls back when the gateway
    gives it no callback URL (``GATEWAY_PUBLIC_URL`` unset), in a sentence ``/ready``
    shows operators; None: polling alone follows its jobs, nothing more to say.

    ``create_timeout``: seconds an asynchronous provider's ``start`` may take at most, end
    to end (set from the provider's read timeout: the longest it waits for an answer).
    The gateway gives up a create still running then (its outcome unknown: never sent
    again), so a job whose create is still marked under way well past it (the gateway
    adds a margin) belongs to a process that died: it is settled at once rather than
    left waiting."""

    models: tuple[ModelSpec, ...]
    native_block: str
    options_type: type[msgspec.Struct]
    synchronous: bool = False
    concurrency: int | None = None
    account_callbacks: bool = False
    ignored_options: frozenset[str] = frozenset()
    without_callbacks: str | None = None
    create_timeout: float = 30.0


@dataclass(frozen=True)
class Credential:
    """An environment variable a provider reads. ``secret`` values are redacted from every
    log line and answer; ``required`` ones decide whether the provider is configured (and,
    when unset, the first-run demo stands the provider's simulator in)."""

    env: str
    secret: bool = True
    required: bool = True


@dataclass(frozen=True)
class Polling:
    """How a pollable provider may be asked for status: the calls per minute it documents
    (the smallest plan's; ``GATEWAY_UPSTREAM_BUDGETS`` overrides it) and what one ``fetch``
    costs: one call per job, or one per native id the job spans."""

    calls_per_minute: float
    cost: Literal["per_job", "per_native_id"] = "per_job"

    def calls(self, native_ids: int) -> int:
        return 1 if self.cost == "per_job" else max(1, native_ids)


# --------------------------------------------------------------------------- requests


class Callback(msgspec.Struct, frozen=True, kw_only=True):
    """Where the provider should call back for this job, when ``GATEWAY_PUBLIC_URL`` is set."""

    url: str  # full URL of the gateway's intake for this job, token included
    job_id: str  # gateway job id
    token: str  # unguessable per-job token (already inside ``url``)


class SubmitRequest(msgspec.Struct, Generic[OptionsT], frozen=True, kw_only=True):
    """A validated, normalized create request handed to ``Provider.start``; ``options``
    is the provider's own typed native block (or None)."""

    model: ModelSpec
    prompt: str | None = None
    lyrics: str | None = None
    instrumental: bool | None = None
    title: str | None = None
    style: str | None = None
    duration: int | None = None
    format: AudioFormat = "mp3"
    options: OptionsT | None = None
    callback: Callback | None = None


# -------------------------------------------------------------------------- answers


class Artefact(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One output of a job, normalized (the AI Stats ``output[]`` item). ``audio_url`` is
    where its audio is (a URL the provider serves, or the gateway's own once stored)."""

    index: int
    id: str | None = None
    audio_url: str | None = None
    stream_audio_url: str | None = None
    image_url: str | None = None
    title: str | None = None
    tags: str | None = None
    duration: float | None = None
    lyrics: str | None = None
    kind: ArtefactKind = "audio"
    content_type: str | None = None


#: The name snapshots have always used for their artefacts.
Output = Artefact


@dataclass
class ByteStream:
    """An artefact's bytes as a synchronous provider answers them: read ``chunks`` once,
    in order (never held whole); ``aclose`` releases the connection if not read to the end."""

    content_type: str
    chunks: AsyncIterator[bytes]
    length: int | None = None

    async def aclose(self) -> None:
        closer = getattr(self.chunks, "aclose", None)
        if closer is not None:
            await closer()


class JobError(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why a job failed: a machine code, a human message and the native status word."""

    code: str
    message: str
    native_status: str | None = None


class Snapshot(msgspec.Struct, Generic[StateT], kw_only=True, omit_defaults=True):
    """The provider's view of a job at one moment, already normalized.

    ``state`` is the provider's typed state (its ``state_type``), stored by the gateway
    with the job and handed back on the next ``fetch``/``callback`` (e.g. per-native-job
    progress, URL expiry). ``refresh_after`` (epoch seconds) asks the gateway to call
    ``fetch`` again after that moment even when the job is final, e.g. because a
    download URL expires then. ``native_ids`` names native jobs a callback revealed that
    the gateway did not know yet: a create whose answer was lost is reconciled this way.
    """

    status: Status
    native_status: str | None = None
    progress: int | None = None
    outputs: list[Artefact] = []
    error: JobError | None = None
    state: StateT | None = None
    refresh_after: float | None = None
    native_ids: list[str] = []


class Pending(msgspec.Struct, Generic[StateT], kw_only=True):
    """``start``'s answer for a job the provider keeps: its native ids and first snapshot."""

    native_id: str  # shown to clients as ``nativeResponseId``
    native_ids: list[str]  # every native id this job spans (one per output for TemPolor)
    snapshot: Snapshot[StateT]


@dataclass
class Finished:
    """``start``'s answer when the generation is done: the artefacts themselves. An
    artefact whose bytes came in the answer has its ``ByteStream`` under its index in
    ``streams`` (its ``audio_url`` is then None until the gateway stores it)."""

    artefacts: list[Artefact]
    native_id: str | None = None
    streams: dict[int, ByteStream] = field(default_factory=dict)


class JobRef(msgspec.Struct, Generic[StateT], frozen=True, kw_only=True):
    """What ``fetch``/``callback`` get: the stored native ids and the last snapshot (its
    ``state`` decoded as the provider's ``state_type``)."""

    job_id: str
    model: ModelSpec
    native_id: str
    native_ids: list[str]
    format: AudioFormat
    last: Snapshot[StateT]


# -------------------------------------------------------------------------- protocol


@runtime_checkable
class Provider(Protocol):
    """What every provider implements. Construct with its settings; close with ``aclose``."""

    name: str  # e.g. "musicgpt"; also the name of its native request block
    catalog: Catalog
    credentials: tuple[Credential, ...]
    state_type: type[msgspec.Struct]
    #: The API's configured base URL: artefacts it answers on this host are copied in
    #: without the SSRF guard (any other host passes it).
    base_url: str

    @property
    def configured(self) -> bool:
        """True when credentials (or a simulator) are set up."""
        ...

    def check(self, req: SubmitRequest) -> None:
        """Raise ``RequestRejected`` for input the model cannot honour (pure, no I/O)."""
        ...

    async def start(self, req: SubmitRequest) -> Pending | Finished:
        """Start a generation upstream (a synchronous provider: run it to the end).
        Raises ``ProviderError``."""
        ...

    async def aclose(self) -> None:
        """Release network clients."""
        ...


@runtime_checkable
class Pollable(Protocol):
    """A provider whose jobs can be asked for their status."""

    polling: Polling

    async def fetch(self, job: JobRef) -> Snapshot:
        """Fetch a fresh status snapshot from upstream. Raises ``ProviderError``."""
        ...


@runtime_checkable
class CallsBack(Protocol):
    """A provider that calls the gateway back with a job's progress."""

    async def callback(self, job: JobRef, headers: Mapping[str, str], body: bytes) -> Snapshot:
        """Apply one callback (its headers, lower-case names, and raw body: JSON or a
        form) to the job; returns the new snapshot. Must tolerate duplicates and any
        order. Raises ``ValueError`` for a body it cannot read (or a bad signature)."""
        ...


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES
