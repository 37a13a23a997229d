"""Bearer-key authentication: ``Authorization: Bearer <key>`` → the caller's key record.

Keys are stored hashed (sha256) in Redis; the lookup is by hash, so no stored secret is
ever compared byte by byte. Routes marked ``opt={"public": True}`` (health, readiness,
docs, provider callbacks) skip authentication. ``RateLimitMiddleware``, next in line,
then counts an authenticated request against its key's requests-per-minute limit (429
``rate_limited`` with ``Retry-After``) through the job layer's ``Admission``.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Receive, Scope, Send

from gateway.infra.errors import Unauthorized
from gateway.infra.log import bind
from gateway.store.keys import KeyRecord
from gateway.store.store import Store


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to the caller's ``KeyRecord``; 401 in our envelope otherwise."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The base class's, minus the ``ASGIConnection`` it builds per request."""
        if not self._bypass(scope):
            record = await self._authenticate(scope)
            scope["user"] = record
            scope["auth"] = record.id
        await self.app(scope, receive, send)

    def _bypass(self, scope: Scope) -> bool:
        """The base class's exclusions: other scope types, handlers whose ``opt`` opts
        out, excluded methods (OPTIONS), excluded paths (``/docs``)."""
        if scope["type"] not in self.scopes:
            return True
        handler = scope.get("route_handler")
        if handler is not None and handler.opt.get(self.exclude_opt_key):
            return True
        if scope.get("method") in self.exclude_http_methods:
            return True
        return self.exclude is not None and bool(self.exclude.findall(scope["path"]))

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        record = await self._authenticate(connection.scope)
        return AuthenticationResult(user=record, auth=record.id)

    async def _authenticate(self, scope: Scope) -> KeyRecord:
        header = _authorization(scope["headers"])
        if not header:
            raise Unauthorized(
                "Missing API key: send 'Authorization: Bearer <key>'.",
                code="missing_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        if scheme.lower() != "bearer" or not raw:
            raise Unauthorized(
                "Malformed Authorization header: expected 'Bearer <key>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        app = scope["litestar_app"]
        store: Store = app.state.store
        record: KeyRecord | None = await store.lookup_key(raw)
        if record is None or record.revoked:
            raise Unauthorized(
                "Invalid or revoked API key.", headers={"WWW-Authenticate": "Bearer"}
            )
        bind(key_id=record.id)
        return record


def _authorization(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The first ``Authorization`` value, read from the raw ASGI headers (lower-case
    names): building Litestar's ``Headers`` costs more than the whole lookup."""
    for name, value in headers:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


class RateLimitMiddleware:
    """After authentication: one request of the caller's key, admitted or 429."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = scope.get("user") if scope["type"] == "http" else None
        if isinstance(record, KeyRecord):
            await scope["litestar_app"].state.admission.admit(record)
        await self.app(scope, receive, send)
