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
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
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
    return _BEARER.sub("Bearer " + REDACTED, text)


def _redact_processor(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(event.items()):
        if _SENSITIVE.search(key) and key not in {"token_ok"}:
            event[key] = REDACTED
        elif isinstance(value, str):
            event[key] = redact(value)
    return event


class _Stderr:
    """``sys.stderr`` looked up at each write, so redirections (tests, daemons) apply."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", fmt: str = "auto", secrets_: Iterable[str] = ()) -> None:
    """Configure structlog (and the stdlib root logger) for this process."""
    global _known_secrets
    _known_secrets = tuple(sorted({s for s in secrets_ if s}, key=len, reverse=True))
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_out else structlog.dev.ConsoleRenderer()
    )
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr, force=True)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def bind(**fields: Any) -> None:
    """Add fields to the current request's canonical log line."""
    structlog.contextvars.bind_contextvars(**fields)


_access = structlog.get_logger("gateway.access")


class RequestContextMiddleware:
    """Request id in, ``X-Request-ID`` out, contextvars per request, one log line each."""

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
        rid = incoming if _REQUEST_ID_OK.match(incoming) else "req_" + secrets.token_hex(12)
        token = _request_id.set(rid)
        structlog.contextvars.clear_contextvars()
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
            _access.info(
                "request",
                request_id=rid,
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            if self.observe is not None:
                self.observe(route, method, status, elapsed)
            structlog.contextvars.clear_contextvars()
            _request_id.reset(token)
