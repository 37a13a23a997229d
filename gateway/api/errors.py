"""The one error envelope, for our own errors and the framework's alike.

Every error answer is ``ErrorResponse``::

    {"error": "unknown_model", "description": "...", "status_code": 400,
     "param": "model", "request_id": "req_..."}

What is answered how: ``GatewayError`` (its tree is drawn in ``gateway/infra/errors.py``)
with its own status and code; ``ProviderError`` (``providers/base.py``) per DESIGN.md's
table; ``RequestRejected`` and the SSRF guard's ``UnsafeURL`` as 400s naming the
parameter; the framework's own errors (validation, 404, 405, 413, ...) in the same
envelope; Redis errors as 503 ``store_unavailable``; anything else as a 500 that shows
no internals.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.exceptions import RedisError

from gateway.api.schemas import ErrorResponse
from gateway.infra.errors import (
    GatewayError,
    InvalidRequest,
)
from gateway.infra.log import current_request_id, redact
from gateway.notify.ssrf import UnsafeURL
from providers.base import ProviderError, RequestRejected

log = structlog.get_logger("gateway.api.errors")


_encoder = msgspec.json.Encoder()

_FRAMEWORK_CODES = {
    400: "bad_request",
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(
    status_code: int,
    code: str,
    description: str,
    *,
    param: str | None = None,
    details: list[str] | None = None,
    headers: dict[str, str] | None = None,
    reason: str | None = None,
) -> Response[bytes]:
    body = ErrorResponse(
        error=code,
        description=redact(description),
        status_code=status_code,
        request_id=current_request_id(),
        param=param,
        reason=reason,
        details=details,
    )
    return Response(
        content=_encoder.encode(body),
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


# ------------------------------------------------------------------ body decode errors

_PATH_RE = re.compile(r" - at (?:`key` in )?`\$\.?(?P<path>[^`]*)`$")
_UNKNOWN_RE = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")


def describe_decode_error(message: str) -> tuple[str, str | None]:
    """Turn a msgspec error into (human message, param path like ``musicgpt.gender``)."""
    param = None
    m = _PATH_RE.search(message)
    if m:
        message = message[: m.start()]
        path = m.group("path").replace("[...]", "")  # a dict value: name the dict
        param = re.sub(r"\[(\d+)\]", r".\1", path) or None
    u = _UNKNOWN_RE.search(message)
    if u:
        param = f"{param}.{u.group('field')}" if param else u.group("field")
    return message, param


def body_error(raw: bytes, request_type: type[msgspec.Struct]) -> InvalidRequest | None:
    """Explain why ``raw`` is not a valid create request, naming every unknown field;
    None when the body is valid (the error was elsewhere, e.g. a header)."""
    try:
        msgspec.json.decode(raw, type=request_type)
    except msgspec.ValidationError as exc:
        message, param = describe_decode_error(str(exc))
        if message.startswith("Object contains unknown field") and param and "." not in param:
            allowed = set(request_type.__struct_fields__)
            try:
                sent = msgspec.json.decode(raw, type=dict[str, Any])
            except msgspec.DecodeError:
                sent = {}
            unknown = sorted(k for k in sent if k not in allowed)
            return InvalidRequest(
                f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.",
                code="unknown_parameter",
                param=unknown[0] if unknown else param,
                details=unknown,
            )
        if message.startswith("Object contains unknown field"):
            return InvalidRequest(message, code="unknown_parameter", param=param)
        if message.startswith("Object missing required field"):
            field = message.rsplit("`", 2)[-2] if "`" in message else None
            full = f"{param}.{field}" if param and field else field
            return InvalidRequest(message, code="missing_parameter", param=full)
        return InvalidRequest(message, code="validation_error", param=param)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return InvalidRequest(f"Malformed JSON body: {_short(exc)}", code="invalid_json")
    return None


def decode_create(raw: bytes, request_type: type[msgspec.Struct]) -> Any:
    """Decode a create body strictly: ``"10"`` is not a number, ``"true"`` not a bool.

    (The framework's own pass converts such strings; the gateway never guesses.)
    """
    try:
        return msgspec.json.decode(raw, type=request_type)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        error = body_error(raw, request_type)
        raise error or InvalidRequest("Invalid request body.", code="invalid_json") from None


def _short(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8"
    return str(exc)


# ---------------------------------------------------------------------- the handlers


def _gateway_error(_: Request, exc: GatewayError) -> Response[bytes]:
    return error_response(
        exc.status_code,
        exc.code,
        exc.message,
        param=exc.param,
        details=exc.details,
        headers=exc.headers,
        reason=exc.reason,
    )


def _unsafe_url(_: Request, exc: UnsafeURL) -> Response[bytes]:
    return error_response(400, exc.code, exc.message, param=exc.param)


def _rejected(_: Request, exc: RequestRejected) -> Response[bytes]:
    return error_response(400, exc.code, exc.message, param=exc.param, reason=exc.reason)


def _provider_error(_: Request, exc: ProviderError) -> Response[bytes]:
    headers = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    elif exc.http_status == 429:
        headers["Retry-After"] = "10"
    prefix = f"{exc.provider}: " if exc.provider else ""
    return error_response(
        exc.http_status,
        exc.code,
        prefix + exc.message,
        headers=headers,
        reason=exc.reason,
        param=exc.param,
    )


RAW_BODY = "gateway.raw_body"  # the request state key ``KeepRawBody`` fills


class KeepRawBody:
    """Route middleware (the create route's): keeps the request body, once the framework
    has read all of it, in the request state, so that an error handler can explain a body
    the framework rejected (error handlers are synchronous: they cannot read it again)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    scope.setdefault("state", {})[RAW_BODY] = b"".join(chunks)
            return message

        await self.app(scope, receive_and_keep, send)


def _create_body_error(request: Request) -> Response[bytes] | None:
    """On the create route, explain a rejected body our way (every unknown field, the
    nested path); None elsewhere or when the body was never read in full."""
    request_type = request.route_handler.opt.get("request_type")
    raw = request.state.get(RAW_BODY)
    if request_type is None or not isinstance(raw, bytes):
        return None
    error = body_error(raw, request_type)
    return None if error is None else _gateway_error(request, error)


_HEADER_PARAMS = {"idempotency_key": "Idempotency-Key"}  # handler kwarg → header name


def _validation_error(request: Request, exc: ValidationException) -> Response[bytes]:
    if (ours := _create_body_error(request)) is not None:
        return ours
    extra = exc.extra if isinstance(exc.extra, list) else []
    param = None
    if extra and isinstance(extra[0], dict):
        param = extra[0].get("key")
        param = _HEADER_PARAMS.get(param, param)  # as the client spelled it
        detail = str(extra[0].get("message") or exc.detail)
    else:
        detail = str(exc.detail)
    if detail == "'data'":  # the framework's KeyError text for a missing body
        detail = "A JSON object body is required."
    return error_response(400, "validation_error", detail, param=param)


def _http_error(request: Request, exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    code = _FRAMEWORK_CODES.get(status, "internal_error" if status >= 500 else "bad_request")
    detail = exc.detail
    if status == 400 and (ours := _create_body_error(request)) is not None:
        return ours  # Litestar's own body parsing failed (e.g. truncated JSON)
    if status == 404:
        detail = f"No route for {request.method} {request.url.path}."
    elif status == 405:
        detail = f"Method {request.method} is not allowed on {request.url.path}."
    headers = dict(exc.headers or {})
    return error_response(status, code, detail, headers=headers)


def _undecodable(request: Request, exc: Exception) -> Response[bytes]:
    """The framework's own JSON pass choked (invalid UTF-8, absurd nesting): a 400."""
    if (ours := _create_body_error(request)) is not None:
        return ours
    return error_response(400, "invalid_json", f"Malformed JSON body: {_short(exc)}")


def _redis_error(_: Request, exc: RedisError) -> Response[bytes]:
    log.error("store_unavailable", error=type(exc).__name__)
    return error_response(
        503,
        "store_unavailable",
        "The job store is unavailable; retry shortly.",
        headers={"Retry-After": "2"},
    )


def _internal_error(_: Request, exc: Exception) -> Response[bytes]:
    log.exception("unhandled_error", error=type(exc).__name__)
    return error_response(500, "internal_error", "Internal error; see the gateway log.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    GatewayError: _gateway_error,
    RequestRejected: _rejected,
    UnsafeURL: _unsafe_url,
    ProviderError: _provider_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    RedisError: _redis_error,
    UnicodeDecodeError: _undecodable,
    RecursionError: _undecodable,
    Exception: _internal_error,
}


def error_spec(text: str, container: Any = ErrorResponse) -> ResponseSpec:
    """An OpenAPI response documented with the error envelope's schema."""
    return ResponseSpec(data_container=container, description=text, generate_examples=False)


INTERNAL_ERROR_DOC = {500: error_spec("Unexpected internal error.")}


def error_responses_doc() -> dict[int, Any]:
    """OpenAPI ``responses`` for the errors every authenticated route can answer."""
    return {
        400: error_spec("Bad input: validation_error, unknown_parameter, unknown_model, ..."),
        401: error_spec("Missing or invalid API key."),
        404: error_spec("No such job for this key."),
        429: error_spec("Rate limited: rate_limited or too_many_jobs (see Retry-After)."),
        503: error_spec("Job store or provider unavailable."),
        **INTERNAL_ERROR_DOC,
    }
