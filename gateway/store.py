"""Redis persistence: job records and client keys, msgpack-encoded with msgspec.

Keys (all under the configured prefix, default ``mgw:``)::

    job:{id}          JobRecord (msgpack), expires after the retention period
    key:{sha256}      KeyRecord (msgpack) for a client key, found by the key's hash
    keyid:{key id}    sha256 of that key, so ``keys revoke <id>`` can find it
    lease:{id}        short-lived refresh lease (one refresher per job at a time)
    idem:{key id}:{h} IdempotencyEntry for one Idempotency-Key of one client key (24 h)
    due               sorted set: in-flight job id -> when the background refresher is due

Usage::

    store = Store(redis, prefix="mgw:", retention_seconds=30 * 86400)
    await store.put_job(record)
    record = await store.get_job("mus_...")
    record = await store.update_job("mus_...", lambda r: ...)   # optimistic, retried
    record = await store.get_job_cached("mus_...")   # a final job may come from memory
    key = await store.lookup_key("mgw_...")          # from memory for up to cache_seconds

Two small per-process caches keep Redis off the hot path of a client polling a finished
job: key records found by ``lookup_key`` and final job records read by
``get_job_cached``, each for at most ``cache_seconds`` (default ``CACHE_SECONDS``). A
revocation or limit change made by another process therefore applies within that time
(at once through this ``Store``); a final job's later changes (renewed download URLs, a
late artefact) show within it too, and a cached final job is never served past its
``refresh_after``. Every write through this ``Store`` drops the entry it makes stale.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import WatchError

from gateway.webhooks import new_signing_secret
from providers.base import JobError, Output, is_final

CACHE_SECONDS = 1.0  # how long a key record or a final job record may be answered from memory
CACHE_ENTRIES = 4096  # per cache; the oldest entry goes first


class KeyRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    name: str
    created_at: int
    revoked: bool = False
    rpm: int | None = None  # own requests-per-minute limit (None: the gateway default)
    max_inflight: int | None = None  # own jobs-in-flight limit (None: the gateway default)
    webhook_secret: str | None = None  # signs this key's webhooks (Standard Webhooks)


class IdempotencyEntry(msgspec.Struct, array_like=True):
    """What one ``Idempotency-Key`` stands for: the request's fingerprint and its job."""

    fingerprint: str
    job_id: str


class JobRecord(msgspec.Struct, kw_only=True, omit_defaults=True, array_like=True):
    """Everything the gateway keeps about one job. Stored as a msgpack array (field order,
    no names: about 10 % smaller), so new fields go at the end, with a default."""

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
    answer_status: int | None = None  # HTTP status of a create that failed (replayed)
    submitting: bool = False  # the upstream create is under way
    version: int = 0  # bumped on every snapshot merge (optimistic concurrency)


_job_encoder = msgspec.msgpack.Encoder()
_job_decoder = msgspec.msgpack.Decoder(JobRecord)
_key_decoder = msgspec.msgpack.Decoder(KeyRecord)
_idem_decoder = msgspec.msgpack.Decoder(IdempotencyEntry)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_id_for(digest: str) -> str:
    """Public, non-secret id of a key: derived from its hash."""
    return "key_" + digest[:16]


def new_raw_key() -> str:
    return "mgw_" + secrets.token_urlsafe(32)


_CLAIM_DUE = """
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
end
return ids
"""


def _remember(cache: dict[str, tuple[float, Any]], name: str, expires: float, value: Any) -> None:
    cache.pop(name, None)
    if len(cache) >= CACHE_ENTRIES:
        del cache[next(iter(cache))]
    cache[name] = (expires, value)


class Store:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        retention_seconds: int,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention = retention_seconds
        self.cache_seconds = cache_seconds
        self._due = f"{prefix}due"
        self._claim_due = redis.register_script(_CLAIM_DUE)
        self._keys: dict[str, tuple[float, KeyRecord]] = {}  # sha256 -> (expires, record)
        self._finals: dict[str, tuple[float, JobRecord]] = {}  # job id -> (expires, record)
        self._job_writes = 0  # bumped by every job write through this Store
        # job id -> (writes when it started, the Redis read under way), shared by readers
        self._reads: dict[str, tuple[int, asyncio.Future[JobRecord | None]]] = {}

    def _job(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    # ------------------------------------------------------------------------ jobs

    def _wrote_job(self, job_id: str) -> None:
        """Before and after each job write: no read in between is cached, and no entry
        cached from before survives it."""
        self._job_writes += 1
        self._finals.pop(job_id, None)

    async def put_job(self, record: JobRecord, *, due: float | None = None) -> None:
        """Store ``record``; with ``due``, also put it on the refresh schedule (one trip)."""
        self._wrote_job(record.id)
        if due is None:
            await self.redis.set(
                self._job(record.id), _job_encoder.encode(record), ex=self.retention
            )
        else:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self._job(record.id), _job_encoder.encode(record), ex=self.retention)
                pipe.zadd(self._due, {record.id: due})
                await pipe.execute()
        self._wrote_job(record.id)

    async def get_job(self, job_id: str) -> JobRecord | None:
        raw = await self.redis.get(self._job(job_id))
        return None if raw is None else _job_decoder.decode(raw)

    async def get_job_cached(self, job_id: str) -> JobRecord | None:
        """``get_job`` for readers: a final record may be answered from this process's
        memory, for at most ``cache_seconds`` and never once its ``refresh_after`` has
        come; concurrent reads of one job share one Redis read (unless a write of this
        process came between). Callers must not change the record they get."""
        hit = self._finals.get(job_id)
        if hit is not None:
            expires, record = hit
            if time.monotonic() < expires and (
                record.refresh_after is None or time.time() < record.refresh_after
            ):
                return record
            del self._finals[job_id]
        writes = self._job_writes
        pending = self._reads.get(job_id)
        if pending is None or pending[0] != writes:
            task = asyncio.ensure_future(self._read_job(job_id, writes))
            pending = self._reads[job_id] = (writes, task)
            task.add_done_callback(lambda done: self._read_done(job_id, done))
        # shielded: a caller that goes away does not cancel the others' read
        return await asyncio.shield(pending[1])

    async def _read_job(self, job_id: str, writes: int) -> JobRecord | None:
        record = await self.get_job(job_id)
        if (
            record is not None
            and is_final(record.status)
            and self.cache_seconds > 0
            and writes == self._job_writes  # no write of ours raced this read
        ):
            _remember(self._finals, job_id, time.monotonic() + self.cache_seconds, record)
        return record

    def _read_done(self, job_id: str, task: asyncio.Future[JobRecord | None]) -> None:
        if self._reads.get(job_id, (0, None))[1] is task:
            del self._reads[job_id]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning if every caller left

    async def update_job(
        self, job_id: str, change: Callable[[JobRecord], JobRecord | None], attempts: int = 20
    ) -> JobRecord | None:
        """Apply ``change`` atomically (WATCH/MULTI); ``change`` returns None to skip."""
        key = self._job(job_id)
        self._wrote_job(job_id)
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
                    self._wrote_job(job_id)
                    return updated
                except WatchError:
                    continue
        raise RuntimeError(f"job {job_id} kept changing; update abandoned")

    # ------------------------------------------------------------- refresh schedule

    async def schedule(self, job_id: str, at: float) -> None:
        """The background refresher should look at ``job_id`` at ``at`` (epoch seconds)."""
        await self.redis.zadd(self._due, {job_id: at})

    async def unschedule(self, job_id: str) -> None:
        await self.redis.zrem(self._due, job_id)

    async def claim_due(self, limit: int, claim_seconds: float, now: float) -> list[str]:
        """Take up to ``limit`` due job ids; each is pushed ``claim_seconds`` ahead so no
        other process takes it meanwhile (and it comes back if this one dies)."""
        ids = await self._claim_due(keys=[self._due], args=[now, limit, claim_seconds])
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    async def delete_job(self, job_id: str) -> None:
        self._wrote_job(job_id)
        await self.redis.delete(self._job(job_id))
        self._wrote_job(job_id)

    # ---------------------------------------------------------------- idempotency

    def _idem(self, owner: str, idem_key: str) -> str:
        return f"{self.prefix}idem:{owner}:{hashlib.sha256(idem_key.encode()).hexdigest()[:32]}"

    async def get_idempotency(self, owner: str, idem_key: str) -> IdempotencyEntry | None:
        raw = await self.redis.get(self._idem(owner, idem_key))
        return None if raw is None else _idem_decoder.decode(raw)

    async def claim_idempotency(
        self, owner: str, idem_key: str, entry: IdempotencyEntry, ttl: int
    ) -> IdempotencyEntry | None:
        """Bind ``idem_key`` to ``entry`` unless it is bound already; returns the existing
        binding when there is one (the caller lost the race), else None."""
        name = self._idem(owner, idem_key)
        if await self.redis.set(name, _job_encoder.encode(entry), nx=True, ex=ttl):
            return None
        raw = await self.redis.get(name)
        return entry if raw is None else _idem_decoder.decode(raw)

    async def release_idempotency(self, owner: str, idem_key: str) -> None:
        await self.redis.delete(self._idem(owner, idem_key))

    async def acquire_lease(self, job_id: str, seconds: float) -> bool:
        """True for exactly one caller per job per ``seconds`` (across processes)."""
        ms = max(1, int(seconds * 1000))
        return bool(await self.redis.set(f"{self.prefix}lease:{job_id}", b"1", nx=True, px=ms))

    # ------------------------------------------------------------------------ keys

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
        await self.redis.set(f"{self.prefix}key:{digest}", _job_encoder.encode(record))
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
            f"{self.prefix}key:{digest}", _job_encoder.encode(record), nx=True
        )
        if created:
            await self.redis.set(f"{self.prefix}keyid:{record.id}", digest)
            return record
        existing = await self.redis.get(f"{self.prefix}key:{digest}")
        return _key_decoder.decode(existing)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        found = await self._load_key(key_id)
        return None if found is None else found[1]

    async def rotate_webhook_secret(self, key_id: str) -> str | None:
        """A new signing secret for the key's webhooks; returns it (shown once)."""
        record = await self._change_key(key_id, webhook_secret=new_signing_secret())
        return None if record is None else record.webhook_secret

    async def lookup_key(self, raw_key: str) -> KeyRecord | None:
        """The record of a raw client key (revoked ones included), None when unknown. A
        found record is kept in memory for ``cache_seconds``; unknown keys never are.
        Callers must not change the record they get."""
        digest = hash_key(raw_key)
        hit = self._keys.get(digest)
        if hit is not None and time.monotonic() < hit[0]:
            return hit[1]
        raw = await self.redis.get(f"{self.prefix}key:{digest}")
        if raw is None:
            self._keys.pop(digest, None)
            return None
        record = _key_decoder.decode(raw)
        if self.cache_seconds > 0:
            _remember(self._keys, digest, time.monotonic() + self.cache_seconds, record)
        return record

    async def list_keys(self) -> list[KeyRecord]:
        records = []
        async for name in self.redis.scan_iter(match=f"{self.prefix}key:*", count=500):
            raw = await self.redis.get(name)
            if raw is not None:
                records.append(_key_decoder.decode(raw))
        return sorted(records, key=lambda r: (r.created_at, r.id))

    async def _load_key(self, key_id: str) -> tuple[str, KeyRecord] | None:
        """(Redis name, record) of a key found by its public id."""
        digest = await self.redis.get(f"{self.prefix}keyid:{key_id}")
        if digest is None:
            return None
        name = f"{self.prefix}key:{digest.decode()}"
        raw = await self.redis.get(name)
        return None if raw is None else (name, _key_decoder.decode(raw))

    async def _change_key(self, key_id: str, **changes: Any) -> KeyRecord | None:
        """Store the key's record with ``changes``; None when there is no such key."""
        found = await self._load_key(key_id)
        if found is None:
            return None
        name, record = found
        record = msgspec.structs.replace(record, **changes)
        await self.redis.set(name, _job_encoder.encode(record))
        self._keys.clear()  # this process sees the change at once
        return record

    async def set_key_limits(
        self, key_id: str, *, rpm: int | None, max_inflight: int | None
    ) -> KeyRecord | None:
        """Give one key its own limits (None: back to the gateway default)."""
        return await self._change_key(key_id, rpm=rpm, max_inflight=max_inflight)

    async def revoke_key(self, key_id: str) -> bool:
        return await self._change_key(key_id, revoked=True) is not None
