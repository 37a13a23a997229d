"""Structured logging: JSON off a TTY, console on one, one canonical line per request.

Usage::

    configure_logging(settings)             # once per process
    app = Litestar(..., middleware=[RequestContextMiddleware])
    bind(model="musicgpt/v7")               # adds fields to this request's canonical line

Secrets never reach a log line: values under sensitive keys are replaced, and every
known secret (client keys, provider keys) is scrubbed from every string.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# The fields ``bind`` adds while a request runs (None outside one): one dict per request,
# shared with the tasks the request starts, merged into every line logged meanwhile.
_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_fields", default=None
)
_known_secrets: tuple[str, ...] = ()
_SENSITIVE = re.compile(r"(authorization|api[_-]?key|token|secret|password)", re.I)
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._:\-]+")
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
REDACTED = "[REDACTED]"


def current_request_id() -> str:
    return _request_id.get()


def redact(text: str) -> str:
    """Scrub known secrets and bearer tokens from a string."""
    for s in _known_secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    if "bearer" not in text.lower():  # the regex costs ten times this test
        return text
    return _BEARER.sub("Bearer " + REDACTED, text)


_sensitive_keys: dict[str, bool] = {}  # field name -> its value is a secret


def _is_sensitive(key: str) -> bool:
    found = _sensitive_keys.get(key)
    if found is None:
        found = bool(_SENSITIVE.search(key)) and key != "token_ok"
        if len(_sensitive_keys) < 4096:  # field names come from code: few
            _sensitive_keys[key] = found
    return found


def _redact_processor(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    texts: list[str] = []
    for key, value in event.items():  # only values change: iterating is safe
        sensitive = _sensitive_keys.get(key)
        if sensitive or (sensitive is None and _is_sensitive(key)):
            event[key] = REDACTED
        elif isinstance(value, str):
            texts.append(value)
    if not texts:
        return event
    # Most lines are clean: one search over all their strings at once decides it. (No
    # secret holds a NUL, so none can match across two values.)
    joined = "\0".join(texts)
    if "bearer" not in joined.lower():
        for secret in _known_secrets:
            if secret in joined:
                break
        else:
            return event
    for key, value in event.items():
        if isinstance(value, str) and value is not REDACTED:
            event[key] = redact(value)
    return event


def _merge_fields(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    fields = _fields.get()
    if fields:
        for key, value in fields.items():
            event.setdefault(key, value)
    return event


def _timestamp(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """ISO 8601 UTC with microseconds (``2025-01-31T12:00:00.123456Z``); the date part is
    formatted once a second."""
    global _stamp_second, _stamp_prefix
    now = time.time()
    second = int(now)
    if second != _stamp_second:
        _stamp_second = second
        _stamp_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    event["timestamp"] = f"{_stamp_prefix}.{int((now - second) * 1e6):06d}Z"
    return event


_stamp_second = -1
_stamp_prefix = ""


def _fallback(obj: Any) -> Any:
    """What JSON cannot hold: its ``__structlog__()`` when it has one, else its repr."""
    try:
        return obj.__structlog__()
    except AttributeError:
        return repr(obj)


_json = msgspec.json.Encoder(enc_hook=_fallback)


def _render_json(_: Any, __: str, event: dict[str, Any]) -> str:
    """One JSON line (msgspec: a fifth of the stdlib's cost), ASCII like ``json.dumps``."""
    try:
        line = _json.encode(event).decode()
        if line.isascii():
            return line
    except (TypeError, ValueError, OverflowError):  # e.g. keys msgspec cannot encode
        pass
    return json.dumps(event, default=_fallback, separators=(",", ":"))


class _Stderr:
    """``sys.stderr`` looked up at each write, so redirections (tests, daemons) apply."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_access_direct = False  # JSON at info or below: the canonical line skips structlog's machinery


def configure_logging(level: str = "info", fmt: str = "auto", secrets_: Iterable[str] = ()) -> None:
    """Configure structlog (and the stdlib root logger) for this process."""
    global _known_secrets, _access_direct
    _known_secrets = tuple(sorted({s for s in secrets_ if s}, key=len, reverse=True))
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = _render_json if json_out else structlog.dev.ConsoleRenderer()
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    # ``_access_line`` below renders the canonical line exactly as this chain would.
    processors = [
        _merge_fields,
        structlog.processors.add_log_level,
        _timestamp,
        structlog.processors.format_exc_info,
        _redact_processor,
        renderer,
    ]
    _access_direct = json_out and numeric <= logging.INFO
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, force=True)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bind(**fields: Any) -> None:
    """Add fields to the current request's canonical log line (and to every other line
    logged while the request runs, from tasks it started too). Outside a request, e.g. in
    the background refresher, there is no canonical line: nothing is kept."""
    current = _fields.get()
    if current is not None:
        current.update(fields)


def _access_line(rid: str, method: str, route: str, status: int, duration_ms: float) -> None:
    """The canonical line, as the ``gateway.access`` logger's ``info("request", ...)``
    renders it in JSON, at a third of the cost (it is written once per request)."""
    processors = structlog.get_config()["processors"]  # a test may capture logs meanwhile
    if not (_access_direct and processors and processors[-1] is _render_json):
        # Console output, info filtered out, or a test capturing logs: a fresh logger, so
        # that it binds to the configuration in force now (loggers cache on first use).
        structlog.get_logger("gateway.access").info(
            "request",
            request_id=rid,
            method=method,
            route=route,
            status=status,
            duration_ms=duration_ms,
        )
        return
    event: dict[str, Any] = {
        "request_id": rid,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
        "event": "request",
    }
    _merge_fields(None, "", event)
    event["level"] = "info"
    _timestamp(None, "", event)
    _redact_processor(None, "", event)
    sys.stderr.write(_render_json(None, "", event) + "\n")


def _reset_request_ids() -> None:
    global _rid_prefix, _rid_counter
    _rid_prefix = "req_" + secrets.token_hex(6)  # random per process ...
    _rid_counter = itertools.count()  # ... then counted: no system call per request


_reset_request_ids()
os.register_at_fork(after_in_child=_reset_request_ids)  # workers forked from one parent


def _new_request_id() -> str:
    """``req_`` and 24 hex digits, unique across processes (48 random bits each)."""
    return f"{_rid_prefix}{next(_rid_counter):012x}"


class RequestContextMiddleware:
    """Request id in, ``X-Request-ID`` out, log fields per request, one log line each."""

    def __init__(
        self, app: ASGIApp, observe: Callable[[str, str, int, float], None] | None = None
    ) -> None:
        self.app = app
        self.observe = observe  # (route template, method, status, seconds), e.g. metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if _REQUEST_ID_OK.match(incoming) else _new_request_id()
        token = _request_id.set(rid)
        fields = _fields.set({})
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", rid.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            # The template, never the raw path: paths carry ids and callback tokens.
            route = scope.get("path_template") or "<unmatched>"
            method = scope.get("method", "")
            _access_line(rid, method, route, status, round(elapsed * 1000, 2))
            if self.observe is not None:
                self.observe(route, method, status, elapsed)
            _fields.reset(fields)
            _request_id.reset(token)
