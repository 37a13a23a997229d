"""Bearer-key authentication: ``Authorization: Bearer <key>`` → the caller's key record.

Keys are stored hashed (sha256) in Redis; the lookup is by hash, so no stored secret is
ever compared byte by byte. Routes marked ``opt={"public": True}`` (health, readiness,
docs, provider callbacks) skip authentication.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from gateway.errors import Unauthorized
from gateway.log import bind
from gateway.store import KeyRecord, Store


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to the caller's ``KeyRecord``; 401 in our envelope otherwise."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        header = connection.headers.get("authorization")
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
        record: KeyRecord | None = await store.lookup_key(raw)
        if record is None or record.revoked:
            raise Unauthorized(
                "Invalid or revoked API key.", headers={"WWW-Authenticate": "Bearer"}
            )
        bind(key_id=record.id)
        return AuthenticationResult(user=record, auth=record.id)
