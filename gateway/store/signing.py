"""Expiring signed download URLs for the artefacts the gateway serves itself.

A URL is ``{base}/v1/artefacts/{key}?exp={unix seconds}&sig={hex}`` where ``sig`` is the
HMAC-SHA256, under the signing key, of ``"{key}\\n{exp}"`` (the object key as stored,
not URL-encoded). Anyone holding the URL may download until ``exp``; changing the key,
the expiry or the signature gives 403 ``invalid_signature``, and after ``exp`` the
(intact) URL gives 403 ``url_expired``. No API key is needed.

The signing key is ``GATEWAY_ARTEFACT_SECRET`` when set; otherwise a random 32-byte key
made once and kept in Redis (``{prefix}artefact:secret``, never expiring, written with
``SET NX`` so concurrent first starts agree), fetched on first use and then remembered
by the process: every replica and every restart signs and checks alike.

Usage::

    signer = UrlSigner(b"secret")                        # or UrlSigner(load=redis_secret(...))
    query = await signer.query("mus_1/0.mp3", ttl=3600)  # "exp=...&sig=..."
    await signer.verify("mus_1/0.mp3", exp, sig)         # raises Forbidden
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable

from gateway.infra.errors import Forbidden
from gateway.store.redis_pool import RedisClient

Clock = Callable[[], float]
SECRET_REDIS_KEY = "artefact:secret"  # noqa: S105 - a Redis key name, under the prefix

EXPIRES_PARAM = "exp"
SIGNATURE_PARAM = "sig"


def redis_secret(redis: RedisClient, prefix: str) -> Callable[[], Awaitable[bytes]]:
    """A loader of the shared signing key kept in Redis (made on first use)."""
    name = f"{prefix}{SECRET_REDIS_KEY}"

    async def load() -> bytes:
        await redis.set(name, secrets.token_hex(32), nx=True)
        value = await redis.get(name)
        if not value:  # deleted between the two calls: try once more
            await redis.set(name, secrets.token_hex(32), nx=True)
            value = await redis.get(name)
        return value if isinstance(value, bytes) else str(value).encode()

    return load


class UrlSigner:
    """Signs and checks ``(key, expiry)`` pairs with HMAC-SHA256.

    ``secret`` is the key itself, or ``load`` an async function answering it (called
    until it succeeds once). ``clock`` answers the time in unix seconds (tests inject
    one)."""

    def __init__(
        self,
        secret: bytes | str | None = None,
        *,
        load: Callable[[], Awaitable[bytes]] | None = None,
        clock: Clock = time.time,
    ) -> None:
        if (secret is None) == (load is None):
            raise ValueError("give either a secret or a loader")
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self._load = load
        self._lock = asyncio.Lock()
        self.clock = clock

    async def secret(self) -> bytes:
        if self._secret is None:
            async with self._lock:
                if self._secret is None and self._load is not None:
                    self._secret = await self._load()
        assert self._secret is not None
        return self._secret

    async def signature(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(await self.secret(), message, hashlib.sha256).hexdigest()

    async def query(self, key: str, ttl: float) -> str:
        """The query string (``exp=...&sig=...``) of a URL for ``key`` valid ``ttl`` s."""
        return await self.query_until(key, int(self.clock() + ttl))

    async def query_until(self, key: str, expires: int) -> str:
        """The query string of a URL for ``key`` valid until the unix time ``expires``."""
        sig = await self.signature(key, expires)
        return f"{EXPIRES_PARAM}={expires}&{SIGNATURE_PARAM}={sig}"

    async def verify(self, key: str, expires: str | None, signature: str | None) -> None:
        """Accept an intact, unexpired signature; raise ``Forbidden`` otherwise
        (``invalid_signature`` or ``url_expired``)."""
        if not expires or not signature or not expires.isdigit() or len(expires) > 12:
            raise Forbidden("The download URL is not signed.", code="invalid_signature")
        expected = await self.signature(key, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.lower().encode(errors="replace")):
            raise Forbidden(
                "The download URL's signature does not match.", code="invalid_signature"
            )
        if int(expires) < self.clock():
            raise Forbidden(
                "The download URL has expired; read the job again for a fresh one.",
                code="url_expired",
            )
