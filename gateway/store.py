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
    done = await store.update_job("mus_...", change, follow=...)  # compare-and-set, retried
    begun = await store.begin_refresh("mus_...", 2.0, bucket)  # lease + read + budget
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
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import msgspec
from redis.asyncio import Redis

from gateway.limits import BUCKET_LUA, SLOT_LUA, Bucket, Grant
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


def decode_job(raw: bytes) -> JobRecord:
    return _job_decoder.decode(raw)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_id_for(digest: str) -> str:
    """Public, non-secret id of a key: derived from its hash."""
    return "key_" + digest[:16]


def new_raw_key() -> str:
    return "mgw_" + secrets.token_urlsafe(32)


ZOp = tuple[str, str, float | None]  # (sorted set key, member, score; None removes it)


class Updated(NamedTuple):
    """What ``update_job`` did: the status the job had before, and the record as stored
    now (the unchanged current one when ``change`` skipped)."""

    before: str
    record: JobRecord


class Opened(NamedTuple):
    """What ``open_job`` did: ``created``; else ``existing`` is the Idempotency-Key's
    binding (a replay), or None when the owner had no free slot."""

    created: bool
    existing: IdempotencyEntry | None = None


class Begun(NamedTuple):
    """What ``begin_refresh`` found: the lease (False: another refresh holds it), the
    job's stored bytes (None: no such job), the budget's answer (None: no budget)."""

    leased: bool
    raw: bytes | None
    grant: Grant | None


# Sorted-set changes that ride along with a job write: KEYS[2..] and, after the two
# leading arguments, one (member, score) pair per key; an empty score removes the member.
_ZOPS_LUA = """
local function zops()
  for i = 2, #KEYS do
    local member, score = ARGV[2 * i - 1], ARGV[2 * i]
    if score == '' then
      redis.call('ZREM', KEYS[i], member)
    else
      redis.call('ZADD', KEYS[i], score, member)
    end
  end
end
"""

# KEYS[1] job; ARGV[1] record, ARGV[2] seconds to keep it.
_PUT = (
    _ZOPS_LUA
    + """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
zops()
return 1
"""
)

# A new job, all or nothing: KEYS job, due, the owner's slots, the Idempotency-Key;
# ARGV record, seconds to keep it, due score, job id, slot limit (0: none), slot max
# age, the key's entry ('': none), its seconds. {1}: stored; {0}: no slot free; {2,
# entry}: the Idempotency-Key is bound already (nothing stored).
_OPEN = (
    SLOT_LUA
    + """
if ARGV[7] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then
    return {2, existing}
  end
end
local limit = tonumber(ARGV[5])
if limit > 0 and acquire_slot(KEYS[3], ARGV[4], limit, tonumber(ARGV[6])) == 0 then
  return {0}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[4], ARGV[7], 'EX', ARGV[8])
end
return {1}
"""
)

# Compare-and-set: KEYS[1] job; ARGV[1] the bytes the change was computed from, ARGV[2]
# the new record. Returns 1 when written, else the current bytes (nil: no such job).
_SWAP = (
    _ZOPS_LUA
    + """
local current = redis.call('GET', KEYS[1])
if not current then
  return false
end
if current ~= ARGV[1] then
  return current
end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
zops()
return 1
"""
)

# KEYS[1] lease, KEYS[2] job, KEYS[3] budget bucket (optional); ARGV[1] lease ms, then
# the bucket's capacity, refill per second and cost.
_BEGIN = (
    BUCKET_LUA
    + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return {0}
end
local raw = redis.call('GET', KEYS[2])
if not raw or #KEYS < 3 then
  return {1, raw}
end
local g = take(KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return {1, raw, g[1], g[2], g[3]}
"""
)


def _zops(ops: Sequence[ZOp]) -> tuple[list[str], list[Any]]:
    keys: list[str] = []
    args: list[Any] = []
    for key, member, score in ops:
        keys.append(key)
        args += [member, "" if score is None else repr(float(score))]
    return keys, args


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
        self.due_key = f"{prefix}due"
        self._claim_due = redis.register_script(_CLAIM_DUE)
        self._put = redis.register_script(_PUT)
        self._open = redis.register_script(_OPEN)
        self._swap = redis.register_script(_SWAP)
        self._begin = redis.register_script(_BEGIN)
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

    async def put_job(
        self, record: JobRecord, *, due: float | None = None, zsets: Sequence[ZOp] = ()
    ) -> None:
        """Store ``record`` (one round trip); with ``due``, also put it on the refresh
        schedule, and apply the sorted-set changes ``zsets``, atomically with it."""
        self._wrote_job(record.id)
        ops = [*zsets, (self.due_key, record.id, due)] if due is not None else zsets
        raw = _job_encoder.encode(record)
        if ops:
            keys, args = _zops(ops)
            await self._put(keys=[self._job(record.id), *keys], args=[raw, self.retention, *args])
        else:
            await self.redis.set(self._job(record.id), raw, ex=self.retention)
        self._wrote_job(record.id)

    async def open_job(
        self,
        record: JobRecord,
        *,
        due: float,
        slot: tuple[str, int, int] | None = None,
        idempotency: tuple[str, IdempotencyEntry, int] | None = None,
    ) -> Opened:
        """Store a new job and put it on the refresh schedule at ``due``, in one round
        trip and all or nothing: with ``slot`` (sorted set, limit, max age) only if the
        owner has a free in-flight slot (then taken); with ``idempotency`` (the client's
        Idempotency-Key, its entry, seconds to keep it) only if that key is not bound
        already (then bound to this job)."""
        keys = [self._job(record.id), self.due_key, "", ""]
        args: list[Any] = [_job_encoder.encode(record), self.retention, repr(due), record.id]
        args += [0, 0] if slot is None else [slot[1], slot[2]]
        if slot is not None:
            keys[2] = slot[0]
        if idempotency is None:
            args += ["", 0]
        else:
            idem_key, entry, ttl = idempotency
            keys[3] = self._idem(record.owner, idem_key)
            args += [_job_encoder.encode(entry), ttl]
        self._wrote_job(record.id)
        reply = await self._open(keys=keys, args=args)
        self._wrote_job(record.id)
        if reply[0] == 2:
            return Opened(False, _idem_decoder.decode(reply[1]))
        return Opened(bool(reply[0]))

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
        self,
        job_id: str,
        change: Callable[[JobRecord], JobRecord | None],
        *,
        follow: Callable[[str, JobRecord], Sequence[ZOp]] | None = None,
        raw: bytes | None = None,
        attempts: int = 20,
    ) -> Updated | None:
        """Apply ``change`` atomically: compare-and-set against the bytes it was computed
        from (one round trip; retried on the current bytes when another write won).
        ``change`` gets a fresh record it may modify, and returns None to skip the write.
        ``follow(status before, new record)`` names sorted-set changes written with it.
        ``raw``: the stored bytes when the caller just read them (saves the read).
        None when there is no such job."""
        key = self._job(job_id)
        self._wrote_job(job_id)
        if raw is None:
            raw = await self.redis.get(key)
        for _ in range(attempts):
            if raw is None:
                return None
            current = _job_decoder.decode(raw)
            before = current.status
            updated = change(current)
            if updated is None:
                return Updated(before, current)
            keys, args = _zops(follow(before, updated) if follow is not None else ())
            reply = await self._swap(
                keys=[key, *keys], args=[raw, _job_encoder.encode(updated), *args]
            )
            if reply == 1:
                self._wrote_job(job_id)
                return Updated(before, updated)
            raw = reply  # another write came first (or the job is gone: None)
        raise RuntimeError(f"job {job_id} kept changing; update abandoned")

    async def begin_refresh(
        self, job_id: str, lease_seconds: float, bucket: Bucket | None = None
    ) -> Begun:
        """One round trip before an upstream refresh: take the job's lease (one holder
        per ``lease_seconds`` across processes), read the job, and spend ``bucket``'s
        tokens, each step only when the one before succeeded."""
        keys = [f"{self.prefix}lease:{job_id}", self._job(job_id)]
        args: list[Any] = [max(1, int(lease_seconds * 1000))]
        if bucket is not None:
            keys.append(bucket.key)
            args += [bucket.capacity, bucket.per_second, bucket.cost]
        reply = await self._begin(keys=keys, args=args)
        if not reply[0]:
            return Begun(False, None, None)
        grant = Grant.parse(reply[2:5]) if len(reply) > 2 else None
        return Begun(True, reply[1], grant)

    # ------------------------------------------------------------- refresh schedule

    async def schedule(self, job_id: str, at: float) -> None:
        """The background refresher should look at ``job_id`` at ``at`` (epoch seconds)."""
        await self.redis.zadd(self.due_key, {job_id: at})

    async def unschedule(self, job_id: str) -> None:
        await self.redis.zrem(self.due_key, job_id)

    async def claim_due(self, limit: int, claim_seconds: float, now: float) -> list[str]:
        """Take up to ``limit`` due job ids; each is pushed ``claim_seconds`` ahead so no
        other process takes it meanwhile (and it comes back if this one dies)."""
        ids = await self._claim_due(keys=[self.due_key], args=[now, limit, claim_seconds])
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

    async def release_idempotency(self, owner: str, idem_key: str) -> None:
        await self.redis.delete(self._idem(owner, idem_key))

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
