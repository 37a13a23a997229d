"""Bearer-key authentication: ``Authorization: Bearer <key>`` → the caller's key record.

Keys are stored hashed (sha256) in Redis; the lookup is by hash, so no stored secret is
ever compared byte by byte. Routes marked ``opt={"exclude_from_auth": True}`` (health,
readiness, metrics, provider callbacks), ``/docs`` and ``OPTIONS`` skip authentication.
``RateLimitMiddleware``, next in line, then counts an authenticated request against its
key's requests-per-minute limit (429 ``rate_limited`` with ``Retry-After``) through the
job layer's ``Admission``.
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
    """Sets ``request.user`` to the caller's ``KeyRecord``; 401 in our envelope otherwise.

    The base class decides what is exempt: other scope types, handlers whose ``opt``
    carries ``exclude_from_auth``, ``OPTIONS`` and the excluded paths (``/docs``)."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        header = _authorization(connection.scope["headers"])
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
        store: Store = connection.app.state.store
        record: KeyRecord | None = await store.keys.lookup_key(raw)
        if record is None or record.revoked:
            raise Unauthorized(
                "Invalid or revoked API key.", headers={"WWW-Authenticate": "Bearer"}
            )
        bind(key_id=record.id)
        return AuthenticationResult(user=record, auth=record.id)


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
