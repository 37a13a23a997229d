"""Client keys: their record in Redis (found by the key's sha256, never the key itself)
and the operations the ``keys`` command line runs: ``Keys``, one part of ``Store``
(``store.keys``).

Keys (under the store's prefix)::

    key:{sha256}      KeyRecord (msgpack) for a client key, found by the key's hash
    keyid:{key id}    sha256 of that key, so ``keys revoke <id>`` can find it
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec

from gateway.store.memo import remember
from gateway.store.redis_pool import RedisClient


def new_signing_secret() -> str:
    """A fresh per-key signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class KeyRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    name: str
    created_at: int
    revoked: bool = False
    rpm: int | None = None  # own requests-per-minute limit (None: the gateway default)
    max_inflight: int | None = None  # own jobs-in-flight limit (None: the gateway default)
    webhook_secret: str | None = None  # signs this key's webhooks (Standard Webhooks)


key_encoder = msgspec.msgpack.Encoder()
key_decoder = msgspec.msgpack.Decoder(KeyRecord)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_id_for(digest: str) -> str:
    """Public, non-secret id of a key: derived from its hash."""
    return "key_" + digest[:16]


def new_raw_key() -> str:
    return "mgw_" + secrets.token_urlsafe(32)


class Keys:
    """Finding, creating, listing and changing client keys. A key found by ``lookup_key``
    is kept in memory for ``cache_seconds`` (the hot path of every request); a change
    made here clears that cache, so this process sees it at once."""

    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        *,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, KeyRecord]] = {}  # sha256 -> (expires, record)

    async def lookup_key(self, raw_key: str) -> KeyRecord | None:
        """The record of a raw client key (revoked ones included), None when unknown. A
        found record is kept in memory for ``cache_seconds``; unknown keys never are.
        Callers must not change the record they get."""
        digest = hash_key(raw_key)
        hit = self._cache.get(digest)
        if hit is not None and self.clock() < hit[0]:
            return hit[1]
        raw = await self.redis.get(f"{self.prefix}key:{digest}")
        if raw is None:
            self._cache.pop(digest, None)
            return None
        record = key_decoder.decode(raw)
        if self.cache_seconds > 0:
            remember(self._cache, digest, self.clock() + self.cache_seconds, record)
        return record

    async def create_key(
        self,
        name: str,
        raw_key: str | None = None,
        *,
        rpm: int | None = None,
        max_inflight: int | None = None,
    ) -> tuple[str, KeyRecord]:
        """Store a new client key (hashed). Returns the raw key, shown once, and its record."""
        raw = raw_key or new_raw_key()
        digest = hash_key(raw)
        record = KeyRecord(
            id=key_id_for(digest),
            name=name,
            created_at=int(time.time()),
            rpm=rpm,
            max_inflight=max_inflight,
            webhook_secret=new_signing_secret(),
        )
        await self.redis.set(f"{self.prefix}key:{digest}", key_encoder.encode(record))
        await self.redis.set(f"{self.prefix}keyid:{record.id}", digest)
        return raw, record

    async def seed_key(self, raw_key: str, name: str = "bootstrap") -> KeyRecord:
        """Add a bootstrap key unless it is already known (a revoked one stays revoked)."""
        digest = hash_key(raw_key)
        record = KeyRecord(
            id=key_id_for(digest),
            name=name,
            created_at=int(time.time()),
            webhook_secret=new_signing_secret(),
        )
        created = await self.redis.set(
            f"{self.prefix}key:{digest}", key_encoder.encode(record), nx=True
        )
        if created:
            await self.redis.set(f"{self.prefix}keyid:{record.id}", digest)
            return record
        existing = await self.redis.get(f"{self.prefix}key:{digest}")
        return key_decoder.decode(existing)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        found = await self._load_key(key_id)
        return None if found is None else found[1]

    async def rotate_webhook_secret(self, key_id: str) -> str | None:
        """A new signing secret for the key's webhooks; returns it (shown once)."""
        record = await self._change_key(key_id, webhook_secret=new_signing_secret())
        return None if record is None else record.webhook_secret

    async def list_keys(self) -> list[KeyRecord]:
        records = []
        async for name in self.redis.scan_iter(match=f"{self.prefix}key:*", count=500):
            raw = await self.redis.get(name)
            if raw is not None:
                records.append(key_decoder.decode(raw))
        return sorted(records, key=lambda r: (r.created_at, r.id))

    async def _load_key(self, key_id: str) -> tuple[str, KeyRecord] | None:
        """(Redis name, record) of a key found by its public id."""
        digest = await self.redis.get(f"{self.prefix}keyid:{key_id}")
        if digest is None:
            return None
        name = f"{self.prefix}key:{digest.decode()}"
        raw = await self.redis.get(name)
        return None if raw is None else (name, key_decoder.decode(raw))

    async def _change_key(self, key_id: str, **changes: Any) -> KeyRecord | None:
        """Store the key's record with ``changes``; None when there is no such key."""
        found = await self._load_key(key_id)
        if found is None:
            return None
        name, record = found
        record = msgspec.structs.replace(record, **changes)
        await self.redis.set(name, key_encoder.encode(record))
        self._cache.clear()  # this process sees the change at once
        return record

    async def set_key_limits(
        self, key_id: str, *, rpm: int | None, max_inflight: int | None
    ) -> KeyRecord | None:
        """Give one key its own limits (None: back to the gateway default)."""
        return await self._change_key(key_id, rpm=rpm, max_inflight=max_inflight)

    async def revoke_key(self, key_id: str) -> bool:
        return await self._change_key(key_id, revoked=True) is not None
