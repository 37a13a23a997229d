"""Thin HTTP handlers: decode, call the job service, encode. Nothing else lives here.

(No ``from __future__ import annotations`` here: the create handler's body annotation
is a type built at run time, which Litestar must see as an object, not a string.)

The create handler's body type depends on the registered providers (one native block
each), so the music routes are built per app by ``music_handlers(request_type)``.
"""

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, HeaderParameter, JSONBody, PathParameter
from litestar.response import ServerSentEvent

from gateway.api.errors import (
    INTERNAL_ERROR_DOC,
    KeepRawBody,
    decode_create,
    error_responses_doc,
    error_spec,
)
from gateway.api.events import job_events
from gateway.api.prefer import prefer_wait
from gateway.api.responses import JSONBytes
from gateway.api.schemas import (
    CallbackAck,
    Health,
    JobEvent,
    ModelInfo,
    ModelList,
    MusicJob,
    ProviderReadiness,
    Readiness,
)
from gateway.infra.errors import InvalidRequest
from gateway.infra.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.infra.metrics import Metrics
from gateway.jobs.service import JobService
from gateway.store.keys import KeyRecord
from providers.base import Provider

_SECURITY = [{"BearerAuth": []}]
_PUBLIC = {"exclude_from_auth": True}

MusicId = Annotated[
    str,
    PathParameter(description="The job id returned by POST /v1/music/generate.", max_length=64),
]
Jobs = NamedDependency[JobService]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        min_length=1,
        max_length=255,
        description="Makes retries safe: the same key with the same body answers the same "
        "job (no second upstream call) for 24 hours; with another body, 409 "
        "idempotency_conflict. Scoped to your API key.",
    ),
]

Prefer = Annotated[
    str | None,
    HeaderParameter(
        name="Prefer",
        required=False,
        max_length=200,
        description="RFC 7240. `wait=N`: answer once the job is final or after N seconds, "
        "whichever comes first (default: GATEWAY_SYNC_WAIT, 300 s, for providers whose "
        "answer is the audio itself; 0 for the others). `respond-async`: answer at once. "
        "Whatever the wait, the job can be polled; the answer carries "
        "`Preference-Applied`.",
    ),
]


def _base_url(request: Request[Any, Any, Any]) -> str:
    """The base URL the client reached the gateway through (for stored outputs' URLs),
    read from the ASGI scope: Litestar's ``request.base_url`` costs ~0.1 ms a call."""
    scope = request.scope
    host = ""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
            break
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}".rstrip("/")


def _prefer(request: Request[Any, Any, Any]) -> list[str]:
    """Every ``Prefer`` header value, from the raw ASGI headers."""
    return [v.decode("latin-1") for n, v in request.scope["headers"] if n == b"prefer"]


#: The music routes: ours, and AI Stats' aliases (its SDK's ``generateMusicAlias`` and
#: ``getMusicGenerationAlias``), which behave exactly the same.
MUSIC_ROUTES = {
    "/v1/music/generate": (
        "createMusicGeneration",
        "getMusicGeneration",
        "streamMusicGenerationEvents",
    ),
    "/v1/music/generations": (
        "generateMusicAlias",
        "getMusicGenerationAlias",
        "streamMusicGenerationEventsAlias",
    ),
}


def music_handlers(request_type: type) -> list[Any]:
    """The music routes, for a create-request type built from the providers."""
    handlers: list[Any] = []
    for path, (create_id, get_id, events_id) in MUSIC_ROUTES.items():
        alias = "" if path == "/v1/music/generate" else " (alias of /v1/music/generate)"
        handlers += _music_handlers(request_type, path, create_id, get_id, alias)
        handlers.append(_events_handler(path, events_id, alias))
    return handlers


def _music_handlers(
    request_type: type, path: str, create_id: str, get_id: str, alias: str
) -> list[Any]:
    @post(
        path,
        operation_id=create_id,
        summary="Start a music generation job" + alias,
        tags=["Music"],
        security=_SECURITY,
        status_code=200,
        opt={"request_type": request_type},
        middleware=[KeepRawBody],  # the error handlers explain a rejected body from it
        responses={
            **error_responses_doc(),
            402: error_spec("Provider credits exhausted."),
            409: error_spec("Idempotency-Key reused with another body."),
            413: error_spec("Request body too large."),
            429: error_spec("Rate limited: rate_limited, too_many_jobs or upstream_rate_limited."),
            502: error_spec("The provider failed."),
            504: error_spec("The provider timed out."),
        },
    )
    async def create_music(
        data: JSONBody[request_type],  # type: ignore[valid-type]
        request: Request[KeyRecord, str, State],
        idempotency_key: IdempotencyKey = None,
        prefer: Prefer = None,
    ) -> Response[MusicJob]:
        """Route the request by ``model`` to its provider and start the job.

        Answers with the job object; poll ``GET /v1/music/generate/{music_id}`` until its
        ``status`` is ``completed`` or ``failed``. With an ``Idempotency-Key`` seen before
        (same body), the same job is answered with ``Idempotent-Replayed: true``.
        """
        # Strictly, again: the framework's pass converts "10" to 10 and "true" to True.
        data = decode_create(await request.body(), request_type)
        jobs: JobService = request.app.state.jobs  # hot route: no dependency injection
        wait, applied = prefer_wait(_prefer(request))
        base = _base_url(request)
        record, replayed = await jobs.create(request.user, data, idempotency_key, wait, base)
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        if applied:
            headers["Preference-Applied"] = applied
        body = await jobs.render(record, base, debug=True)
        return JSONBytes(body, headers=headers or None)

    @get(
        path + "/{music_id:str}",
        operation_id=get_id,
        summary="Get a music generation job" + alias,
        tags=["Music"],
        security=_SECURITY,
        responses=error_responses_doc(),
    )
    async def get_music(
        music_id: MusicId,
        request: Request[KeyRecord, str, State],
    ) -> Response[MusicJob]:
        """The job's current status and outputs.

        A final job is answered from the store. A job in flight is refreshed from the
        provider at most once per refresh interval; when that refresh fails, the last
        known state is answered with the header ``X-Gateway-Stale: true``.
        """
        jobs: JobService = request.app.state.jobs  # hot route: no dependency injection
        record, stale = await jobs.get(request.user.id, music_id)
        headers = {"X-Gateway-Stale": "true"} if stale else None
        base = _base_url(request) if jobs.stores_outputs(record) else None
        return JSONBytes(await jobs.render(record, base), headers=headers)

    return [create_music, get_music]


def _events_handler(path: str, operation_id: str, alias: str) -> Any:
    return get(
        path + "/{music_id:str}/events",
        operation_id=operation_id,
        summary="Stream a job's status changes (server-sent events)" + alias,
        tags=["Music"],
        security=_SECURITY,
        media_type="text/event-stream",
        responses={
            200: ResponseSpec(
                data_container=JobEvent,
                media_type="text/event-stream",
                description="Server-sent events: `event: status`, `id: {music_id}.{status}`, "
                "`data:` the job object (MusicJob) as JSON, one per status change; the stream "
                "ends after the final one.",
                generate_examples=False,
            ),
            **error_responses_doc(),
        },
        name=operation_id,
    )(music_events)


async def music_events(
    music_id: MusicId,
    request: Request[KeyRecord, str, State],
    jobs: Jobs,
) -> ServerSentEvent:
    """One ``status`` event per status change, its ``data`` the job object and its ``id``
    ``{music_id}.{status}``; the stream ends after the ``completed`` or ``failed`` event.
    The first event is the job's current status."""
    record = await jobs.load(request.user.id, music_id)  # 404 before the stream starts
    return ServerSentEvent(job_events(jobs, request.user.id, record, _base_url(request)))


@get(
    "/v1/models",
    operation_id="listModels",
    summary="List the models this gateway routes",
    tags=["Models"],
    security=_SECURITY,
    responses={
        code: spec for code, spec in error_responses_doc().items() if code in (401, 429, 503, 500)
    },
)
async def list_models(jobs: Jobs) -> ModelList:
    """Every model id, its provider, its kind and the parameters it honours."""
    data = []
    for spec in jobs.catalog.values():
        provider = jobs.providers[spec.provider]
        data.append(
            ModelInfo(
                id=spec.id,
                provider=spec.provider,
                kind=spec.kind,
                supported_parameters=sorted(spec.supports),
                native_parameters=sorted(provider.catalog.options_type.__struct_fields__),
                native_block=provider.catalog.native_block,
                description=spec.description,
                available=provider.configured,
            )
        )
    return ModelList(data=data)


FORM = RequestEncodingType.URL_ENCODED.value
_ANY_OBJECT = OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT, additional_properties={}))


@dataclass
class CallbackOperation(Operation):
    """The callback intake's body as documented: a JSON object. (The handler reads the
    raw bytes, which the framework would document as a string; a form is accepted too,
    undocumented, for a provider that sends one.)"""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(content={"application/json": _ANY_OBJECT}, required=True)


@post(
    "/v1/callbacks/{provider:str}/{job_id:str}/{token:str}",
    operation_class=CallbackOperation,
    operation_id="receiveProviderCallback",
    summary="Intake for provider callbacks (used by providers, not clients)",
    tags=["Callbacks"],
    status_code=200,
    opt=_PUBLIC,
    responses={
        400: error_spec("Unreadable callback body."),
        404: error_spec("Unknown job or wrong token."),
        413: error_spec("Callback body too large."),
        503: error_spec("Job store unavailable or job busy; retry the callback."),
        **INTERNAL_ERROR_DOC,
    },
)
async def provider_callback(
    provider: FromPath[str],
    job_id: FromPath[str],
    token: FromPath[str],
    request: Request[Any, Any, State],
    jobs: Jobs,
) -> CallbackAck:
    """Apply one provider callback to its job. The path carries the per-job token.

    The body is the provider's native callback payload (a JSON object), read as is.
    """
    # The raw bytes and the headers go to the provider, which decodes them (a form body
    # too, for a provider that sends one) and may check a signature.
    body = await request.body()  # the raw bytes: the provider decodes them
    if not body.strip():
        raise InvalidRequest("A JSON object (or form) body is required.")
    headers = {name.lower(): value for name, value in request.headers.items()}
    if not headers.get("content-type", "").startswith(FORM):
        _check_json_object(body)
    record = await jobs.callback(provider, job_id, token, headers, body)
    return CallbackAck(status=record.status)  # type: ignore[arg-type]


def _check_json_object(body: bytes) -> None:
    """A callback that is not a form must be a JSON object (400 as for any body)."""
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Malformed JSON body: {exc}", code="invalid_json") from None
    if not isinstance(value, dict):
        raise InvalidRequest("A JSON object (or form) body is required.")


@get(
    "/health",
    operation_id="health",
    summary="Liveness",
    tags=["Operations"],
    opt=_PUBLIC,
    responses=INTERNAL_ERROR_DOC,
)
async def health() -> Health:
    """The process is up. No authentication."""
    return Health()


@get(
    "/ready",
    operation_id="ready",
    summary="Readiness: Redis reachable, providers configured",
    tags=["Operations"],
    opt=_PUBLIC,
    responses={503: error_spec("Not ready (Redis unreachable).", Readiness), **INTERNAL_ERROR_DOC},
)
async def ready(jobs: Jobs) -> Response[Readiness]:
    """Ready when Redis answers. Lists which providers have credentials, each
    provider's circuit (``open`` while creates fail fast after repeated upstream failures,
    ``half_open`` while one trial call decides whether it closes again) and, for one that
    calls back, whether it can (``GATEWAY_PUBLIC_URL``) and what happens when it cannot."""
    try:
        redis_ok = bool(await jobs.store.redis.ping())
    except Exception:  # noqa: BLE001 - any failure means not ready
        redis_ok = False
    body = Readiness(
        status="ready" if redis_ok else "not_ready",
        redis=redis_ok,
        providers={n: _readiness(jobs, n, p) for n, p in jobs.providers.items()},
    )
    return Response(body, status_code=200 if redis_ok else 503)


def _readiness(jobs: JobService, name: str, provider: Provider) -> ProviderReadiness:
    """A provider's readiness; for one that calls back, whether it can (the gateway's
    public URL) and, when it cannot, what the provider declares happens then."""
    callbacks = bool(jobs.settings.public_url) if name in jobs.core.calls_back else None
    note = None
    if callbacks is False:
        note = provider.catalog.without_callbacks or (
            "GATEWAY_PUBLIC_URL is unset: no provider callbacks; jobs are followed by polling only."
        )
    return ProviderReadiness(
        configured=provider.configured,
        circuit=jobs.breakers[name].state,
        callbacks=callbacks,
        note=note,
    )


@get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    tags=["Operations"],
    opt=_PUBLIC,
    media_type="text/plain",
    responses=INTERNAL_ERROR_DOC,
)
async def metrics_endpoint(state: State) -> Response[bytes]:
    """Request, upstream, job, callback and webhook counters and latency histograms, in
    the Prometheus text format. No authentication: expose it on an internal network."""
    metrics: Metrics = state.metrics
    return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)
