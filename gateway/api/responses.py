"""``JSONBytes``: an already-encoded JSON answer for the hot routes.

Usage::

    return JSONBytes(body, headers={"X-Gateway-Stale": "true"})  # handler -> Response[MusicJob]

Litestar turns every ``Response`` into an ``ASGIResponse``: a mutable header container,
``setdefault`` lookups for content type and length, cookie and background handling. For a
body that is already JSON and two or three headers, that machinery costs more than the
rest of the answer (a fifth of a cached GET in the profile). ``JSONBytes`` sends the two
ASGI messages itself, with its headers encoded once. Whatever it does not cover
(route-level headers or cookies, a background task) goes the framework's way.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response
from litestar.types import Receive, Scope, Send

_JSON = (b"content-type", b"application/json")


class _Answer:
    """The ASGI app for one answer: start, then the whole body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class JSONBytes(Response[Any]):
    """A ``Response`` whose content is JSON bytes, sent without re-encoding."""

    def __init__(
        self, body: bytes, *, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        # ``Response.__init__``'s attributes, set directly: its ``isinstance`` checks
        # against ``typing`` aliases cost more than this whole answer's own path.
        self.content = body
        self.background = None
        self.cookies: list[Any] = []
        self.encoding = "utf-8"
        self.headers = dict(headers) if headers else {}
        self.media_type = MediaType.JSON
        self.status_code = status_code
        self.response_type_encoders = dict(self.type_encoders or {})

    def to_asgi_response(  # type: ignore[override]
        self,
        app: Any,
        request: Request,
        *,
        background: Any = None,
        cookies: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        if (
            headers
            or cookies
            or self.cookies
            or background is not None
            or self.background is not None
        ):
            return super().to_asgi_response(
                app, request, background=background, cookies=cookies, headers=headers, **kwargs
            )
        body: bytes = self.content
        encoded = [_JSON, (b"content-length", str(len(body)).encode())]
        for name, value in self.headers.items():
            encoded.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        return _Answer(self.status_code, encoded, body)
