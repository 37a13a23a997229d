"""Redis persistence: job records and client keys, msgpack-encoded with msgspec.

Keys (all under the configured prefix, default ``mgw:``)::

    job:{id}          JobRecord (msgpack), expires after the retention period
    key:{sha256}      KeyRecord (msgpack) for a client key, found by the key's hash
    keyid:{key id}    sha256 of that key, so ``keys revoke <id>`` can find it
    lease:{id}        short-lived refresh lease (one refresher per job at a time)

Usage::

    store = Store(redis, prefix="mgw:", retention_seconds=30 * 86400)
    await store.put_job(record)
    record = await store.get_job("mus_...")
    record = await store.update_job("mus_...", lambda r: ...)   # optimistic, retried
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import WatchError

from providers.base import JobError, Output


class KeyRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    name: str
    created_at: int
    revoked: bool = False


class JobRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Everything the gateway keeps about one job."""

    id: str
    owner: str  # key id of the creator
    provider: str
    model: str  # public model id
    status: str
    created_at: float
    updated_at: float
    format: str = "mp3"
    native_id: str | None = None
    native_ids: list[str] = []
    native_status: str | None = None
    progress: int | None = None
    outputs: list[Output] = []
    error: JobError | None = None
    state: dict[str, Any] = {}
    refresh_after: float | None = None
    refreshed_at: float = 0.0
    metadata: dict[str, str] | None = None
    webhook_url: str | None = None
    callback_token: str | None = None
    version: int = 0  # bumped on every snapshot merge (optimistic concurrency)


_job_encoder = msgspec.msgpack.Encoder()
_job_decoder = msgspec.msgpack.Decoder(JobRecord)
_key_decoder = msgspec.msgpack.Decoder(KeyRecord)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_id_for(digest: str) -> str:
    """Public, non-secret id of a key: derived from its hash."""
    return "key_" + digest[:16]


def new_raw_key() -> str:
    return "mgw_" + secrets.token_urlsafe(32)


class Store:
    def __init__(self, redis: Redis, *, prefix: str, retention_seconds: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention = retention_seconds

    def _job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    # ------------------------------------------------------------------------ jobs

    async def put_job(self, record: JobRecord) -> None:
        await self.redis.set(self._job(record.id), _job_encoder.encode(record), ex=self.retention)

    async def get_job(self, job_id: str) -> JobRecord | None:
        raw = await self.redis.get(self._job(job_id))
        return None if raw is None else _job_decoder.decode(raw)

    async def update_job(
        self, job_id: str, change: Callable[[JobRecord], JobRecord | None], attempts: int = 20
    ) -> JobRecord | None:
        """Apply ``change`` atomically (WATCH/MULTI); ``change`` returns None to skip."""
        key = self._job(job_id)
        for _ in range(attempts):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        return None
                    current = _job_decoder.decode(raw)
                    updated = change(current)
                    if updated is None:
                        return current
                    ttl = await pipe.ttl(key)
                    pipe.multi()
                    pipe.set(
                        key, _job_encoder.encode(updated), ex=ttl if ttl > 0 else self.retention
                    )
                    await pipe.execute()
                    return updated
                except WatchError:
                    continue
        raise RuntimeError(f"job {job_id} kept changing; update abandoned")

    async def acquire_lease(self, job_id: str, seconds: float) -> bool:
        """True for exactly one caller per job per ``seconds`` (across processes)."""
        ms = max(1, int(seconds * 1000))
        return bool(await self.redis.set(f"{self.prefix}lease:{job_id}", b"1", nx=True, px=ms))

    # ------------------------------------------------------------------------ keys

    async def create_key(self, name: str, raw_key: str | None = None) -> tuple[str, KeyRecord]:
        """Store a new client key (hashed). Returns the raw key, shown once, and its record."""
        raw = raw_key or new_raw_key()
        digest = hash_key(raw)
        record = KeyRecord(id=key_id_for(digest), name=name, created_at=int(time.time()))
        await self.redis.set(f"{self.prefix}key:{digest}", _job_encoder.encode(record))
        await self.redis.set(f"{self.prefix}keyid:{record.id}", digest)
        return raw, record

    async def seed_key(self, raw_key: str, name: str = "bootstrap") -> KeyRecord:
        """Add a bootstrap key unless it is already known (a revoked one stays revoked)."""
        digest = hash_key(raw_key)
        record = KeyRecord(id=key_id_for(digest), name=name, created_at=int(time.time()))
        created = await self.redis.set(
            f"{self.prefix}key:{digest}", _job_encoder.encode(record), nx=True
        )
        if created:
            await self.redis.set(f"{self.prefix}keyid:{record.id}", digest)
            return record
        existing = await self.redis.get(f"{self.prefix}key:{digest}")
        return _key_decoder.decode(existing)

    async def lookup_key(self, raw_key: str) -> KeyRecord | None:
        raw = await self.redis.get(f"{self.prefix}key:{hash_key(raw_key)}")
        return None if raw is None else _key_decoder.decode(raw)

    async def list_keys(self) -> list[KeyRecord]:
        records = []
        async for name in self.redis.scan_iter(match=f"{self.prefix}key:*", count=500):
            raw = await self.redis.get(name)
            if raw is not None:
                records.append(_key_decoder.decode(raw))
        return sorted(records, key=lambda r: (r.created_at, r.id))

    async def revoke_key(self, key_id: str) -> bool:
        digest = await self.redis.get(f"{self.prefix}keyid:{key_id}")
        if digest is None:
            return False
        name = f"{self.prefix}key:{digest.decode()}"
        raw = await self.redis.get(name)
        if raw is None:
            return False
        record = _key_decoder.decode(raw)
        record.revoked = True
        await self.redis.set(name, _job_encoder.encode(record))
        return True
