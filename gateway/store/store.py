"""Redis persistence: job records and client keys, msgpack-encoded with msgspec. Its
parts: ``keys`` (client keys, ``gateway/store/keys.py``), ``schedule`` (the refresh
schedule, ``schedule.py``) and ``indexes`` (``indexes.py``); the Lua scripts behind the
one-round-trip job operations are in ``gateway/store/scripts.py``.

Keys (all under the configured prefix, default ``mgw:``; the part in braces is the key's
Redis Cluster hash tag, so keys that one script touches together share one slot)::

    job:{id}           JobRecord (msgpack), expires after the retention period
    lease:{id}         short-lived refresh lease (one refresher per job at a time)
    idem:{key id}:h    IdempotencyEntry for one Idempotency-Key of one client key (24 h)
    inflight:{key id}  sorted set: the client key's jobs in flight (``Limits.slot_key``)
    due                sorted set: in-flight job id -> when the background refresher is due
    key:sha256         KeyRecord (msgpack) for a client key, found by the key's hash
    keyid:key id       sha256 of that key, so ``keys revoke <id>`` can find it
    native:p:id        job id of provider p's native job id (routes account-level callbacks)

How a create and a job's updates span the three slots of a job's record, the schedule
and the owner's slots, and why a process dying midway leaves nothing that stays wrong:
``gateway/store/schedule.py``.

Usage::

    store = Store(redis, prefix="mgw:", retention_seconds=30 * 86400)
    await store.put_job(record)
    record = await store.get_job("mus_...")
    done = await store.update_job("mus_...", change, follow=...)  # compare-and-set, retried
    begun = await store.begin_refresh("mus_...", 2.0, bucket)  # lease + read + budget
    record = await store.get_job_cached("mus_...")   # a final job may come from memory
    key = await store.keys.lookup_key("mgw_...")     # from memory for up to cache_seconds

Two small per-process caches keep Redis off the hot path of a client polling a finished
job: key records found by ``keys.lookup_key`` and final job records read by
``get_job_cached``, each for at most ``cache_seconds`` (default ``CACHE_SECONDS``). A
revocation or limit change made by another process therefore applies within that time
(at once through this ``Store``); a final job's later changes (renewed download URLs, a
late artefact) show within it too, and a cached final job is never served past its
``refresh_after``. Every write through this ``Store`` drops the entry it makes stale.
The caches read the time from ``clock`` (monotonic) and ``wall_clock`` (epoch seconds,
for ``refresh_after``): the real clocks unless a test passes its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import msgspec

from gateway.store.indexes import IdempotencyEntry, Indexes, idem_decoder
from gateway.store.keys import Keys
from gateway.store.limits import TAKE, Bucket, Grant
from gateway.store.memo import CACHE_SECONDS, remember
from gateway.store.redis_pool import RedisClient, in_order
from gateway.store.schedule import Schedule, zop_commands
from gateway.store.scripts import ADMIT, BEGIN, SWAP, ZOp
from providers.base import JobError, Output, is_final


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """A note on the request kept with its job: ``parameter_ignored`` and its param."""

    code: str
    param: str
    message: str


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
    # The provider's typed state (its ``state_type``) as msgpack bytes; a plain map in
    # records written before states were typed.
    state: bytes | dict[str, Any] | None = None
    refresh_after: float | None = None
    refreshed_at: float = 0.0
    metadata: dict[str, str] | None = None
    webhook_url: str | None = None
    callback_token: str | None = None
    answer_status: int | None = None  # HTTP status of a create that failed (replayed)
    submitting: bool = False  # the upstream create is under way
    version: int = 0  # bumped on every snapshot merge (optimistic concurrency)
    # A synchronous provider's job, run by the generation worker: the normalized request
    # it runs (msgpack), and when an attempt began the upstream call (None: not yet, so a
    # retry after a crash may run it; set: it may have been sent, never run it again).
    request: bytes | None = None
    started_at: float | None = None
    origin: str | None = None  # the base URL the job was created through (stored outputs)
    # What the request asked that the model does not use (the parameter policy), shown on
    # every read; and the create's upstream exchange (JSON, secrets scrubbed) when the
    # client asked to see it, shown on the create's answer only.
    notices: list[Notice] = []
    debug: bytes | None = None
    # An asynchronous provider's create under way (``submitting``): when its process gives
    # it up at the latest (the provider's ``create_timeout`` after it began), and whether a
    # callback URL went with it (a lost answer may then be reconciled). Cleared with
    # ``submitting``. See ``gateway/jobs/lost.py``.
    submit_until: float | None = None
    reconcilable: bool = False
    # An asynchronous job converted to its ``format`` before it completes: "wanted" from
    # its create, "due" once its provider finished (``in_progress`` while converted), None
    # when done. See ``gateway/jobs/mirror.py``.
    conversion: str | None = None


_job_encoder = msgspec.msgpack.Encoder()
_job_decoder = msgspec.msgpack.Decoder(JobRecord)


def decode_job(raw: bytes) -> JobRecord:
    return _job_decoder.decode(raw)


class Updated(NamedTuple):
    """What ``update_job`` did: the status the job had before, the record as stored now
    (the unchanged current one when ``change`` skipped), and the stored bytes it replaced
    (decoded only by a caller that needs the record as it was)."""

    before: str
    record: JobRecord
    prior: bytes


class Opened(NamedTuple):
    """What ``open_job`` did: ``created`` (then ``raw``, the bytes stored, lets the next
    ``update_job`` skip its read); else ``existing`` is the Idempotency-Key's binding (a
    replay), or None when the owner had no free slot."""

    created: bool
    existing: IdempotencyEntry | None = None
    raw: bytes | None = None


class Begun(NamedTuple):
    """What ``begin_refresh`` found: the lease (False: another refresh holds it), the
    job's stored bytes (None: no such job), the budget's answer (None: no budget)."""

    leased: bool
    raw: bytes | None
    grant: Grant | None


class Store:
    """Jobs in Redis, with its parts: ``keys`` (client keys), ``schedule`` (the refresh
    schedule) and ``indexes`` (native ids, Idempotency-Keys)."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str,
        retention_seconds: int,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention = retention_seconds
        self.cache_seconds = cache_seconds
        self.clock = clock  # measures the caches' lifetimes (a test may pass a fake one)
        self.wall_clock = wall_clock  # epoch seconds, compared with a job's refresh_after
        self.due_key = f"{prefix}due"
        self.keys = Keys(redis, prefix, cache_seconds=cache_seconds, clock=clock)
        self.schedule = Schedule(redis, self.due_key)
        self.indexes = Indexes(redis, prefix, retention_seconds)
        self._begin = redis.register_script(BEGIN)
        self._take = redis.register_script(TAKE)
        self._finals: dict[str, tuple[float, JobRecord]] = {}  # job id -> (expires, record)
        self._job_writes = 0  # bumped by every job write through this Store
        # job id -> (writes when it started, the Redis read under way), shared by readers
        self._reads: dict[str, tuple[int, asyncio.Future[JobRecord | None]]] = {}

    def job_key(self, job_id: str) -> str:
        """The Redis key of a job's record (tagged with the job id)."""
        return f"{self.prefix}job:{{{job_id}}}"

    _job = job_key

    def lease_key(self, job_id: str) -> str:
        """The job's refresh lease (the job's tag: taken with a read of its record)."""
        return f"{self.prefix}lease:{{{job_id}}}"

    # ------------------------------------------------------------------------ jobs

    def _wrote_job(self, job_id: str) -> None:
        """Before and after each job write: no read in between is cached, and no entry
        cached from before survives it."""
        self._job_writes += 1
        self._finals.pop(job_id, None)

    async def put_job(self, record: JobRecord, *, zsets: Sequence[ZOp] = ()) -> None:
        """Store ``record``, then apply the sorted-set changes ``zsets`` (e.g. the refresh
        schedule, ``due_key``) in order, in the same round trip on one server."""
        self._wrote_job(record.id)
        raw = _job_encoder.encode(record)
        write = ("SET", self._job(record.id), raw, "EX", self.retention)
        replies = await in_order(self.redis, [write, *zop_commands(zsets)])
        self._wrote_job(record.id)
        if isinstance(replies[0], Exception):
            raise replies[0]
        if any(isinstance(r, Exception) for r in replies):
            await self.schedule.apply_zops(zsets)  # again (idempotent); logged if it fails

    async def open_job(
        self,
        record: JobRecord,
        *,
        due: float,
        slot: tuple[str, int, int] | None = None,
        idempotency: tuple[str, IdempotencyEntry, int] | None = None,
    ) -> Opened:
        """Store a new job and put it on the refresh schedule at ``due``, kept only when
        its owner admits it: with ``slot`` (the owner's sorted set, limit, max age) if the
        owner has a free in-flight slot (then taken); with ``idempotency`` (the client's
        Idempotency-Key, its entry, seconds to keep it) if that key is not bound already
        (then bound to this job). Schedule, record, admission (one script), in this order
        (``gateway/store/schedule.py``): one round trip on one server."""
        raw = _job_encoder.encode(record)
        slots, limit, age = slot if slot is not None else (None, 0, 0)
        idem_key = None
        if idempotency is not None:
            idem_key = self.indexes.idempotency_key(record.owner, idempotency[0])
        steps: list[tuple[Any, ...]] = [
            ("ZADD", self.due_key, repr(due), record.id),  # first: never unscheduled
            ("SET", self._job(record.id), raw, "EX", self.retention),
        ]
        if slots is not None or idempotency is not None:
            entry, ttl = (b"", 0) if idempotency is None else (idempotency[1], idempotency[2])
            entry = entry and _job_encoder.encode(entry)
            keys = [slots or idem_key, idem_key or slots]  # one stands in for a missing one
            steps.append(("EVAL", ADMIT, 2, *keys, record.id, limit, age, entry, ttl))
        self._wrote_job(record.id)
        replies = await in_order(self.redis, steps)
        self._wrote_job(record.id)
        failed = next((r for r in replies if isinstance(r, Exception)), None)
        if failed is None and (len(replies) == 2 or replies[2][0] == 1):
            return Opened(True, raw=raw)
        # Not admitted (or a step failed): the record goes, then its schedule (and an
        # admission that ran after a failed step, on one server, which runs them all).
        undo: list[tuple[Any, ...]] = [("DEL", self._job(record.id))]
        if failed is not None and len(replies) > 2 and replies[2] == [1]:
            undo += [("DEL", idem_key)] if idem_key else []
            undo += [("ZREM", slots, record.id)] if slots else []
        await in_order(self.redis, [*undo, ("ZREM", self.due_key, record.id)])
        if failed is not None:
            raise failed
        if replies[2][0] == 2:
            return Opened(False, idem_decoder.decode(replies[2][1]))
        return Opened(False)

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
            if self.clock() < expires and (
                record.refresh_after is None or self.wall_clock() < record.refresh_after
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
            remember(self._finals, job_id, self.clock() + self.cache_seconds, record)
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
        ``follow(status before, new record)`` names sorted-set changes applied after it
        (``apply_zops``).
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
                return Updated(before, current, raw)
            ops = list(follow(before, updated)) if follow is not None else []
            # Only due again (in flight): with the compare-and-set; a final job's release
            # waits for its record (``gateway/store/schedule.py``).
            early = ops if all(score is not None for _, _, score in ops) else []
            swap = ("EVAL", SWAP, 1, key, raw, _job_encoder.encode(updated))
            replies = await in_order(self.redis, [swap, *zop_commands(early)])
            reply = replies[0]
            if isinstance(reply, Exception):
                raise reply
            if reply == 1:
                self._wrote_job(job_id)
                if ops and (not early or any(isinstance(r, Exception) for r in replies)):
                    await self.schedule.apply_zops(ops)
                return Updated(before, updated, raw)
            raw = reply  # another write came first (or the job is gone: None)
        raise RuntimeError(f"job {job_id} kept changing; update abandoned")

    async def begin_refresh(
        self,
        job_id: str,
        lease_seconds: float,
        bucket: Bucket | None = None,
        *,
        reserve: bool = False,
    ) -> Begun:
        """Before an upstream refresh: take the job's lease (one holder per
        ``lease_seconds`` across processes) and read the job (one script, the job's
        slot), then spend ``bucket``'s tokens (the provider's slot), each step only when
        the one before succeeded. A reservation made for the job (``reserve_for``) pays
        instead of the bucket; with ``reserve``, tokens the bucket lacks now are reserved
        (``Grant.reserved``: the caller comes back at ``retry_after``)."""
        reply = await self._begin(
            keys=[self.lease_key(job_id), self._job(job_id), self.paid_key(job_id)],
            args=[max(1, int(lease_seconds * 1000))],
        )
        if not reply[0]:
            return Begun(False, None, None)
        raw = reply[1] or None
        if raw is None or bucket is None:
            return Begun(True, raw, None)
        turn, wait_ms = int(reply[2]), int(reply[3])
        if turn == 1:  # its booked turn has come: paid for when it was booked
            return Begun(True, raw, Grant(True, 0.0, 0.0))
        if turn == -1:  # booked, not yet its turn: no second booking
            return Begun(True, raw, Grant(False, wait_ms / 1000, 0.0, reserved=True))
        taken = await self._take(
            keys=[bucket.key],
            args=[bucket.capacity, bucket.per_second, bucket.cost, 1 if reserve else 0],
        )
        return Begun(True, raw, Grant.parse(taken))

    def paid_key(self, job_id: str) -> str:
        """A reservation of the provider's budget waiting for the job's next refresh."""
        return f"{self.prefix}paid:{{{job_id}}}"

    async def reserve_for(self, job_id: str, turn: float, grace: float) -> None:
        """Book the job's turn of the budget (``Grant.reserved``) ``turn`` seconds from
        now; the booking lapses ``grace`` seconds after it (a refresher that died
        meanwhile loses the turn, nothing more)."""
        grace_ms = max(1, int(grace * 1000))
        await self.redis.set(
            self.paid_key(job_id), str(grace_ms), px=max(1, int(turn * 1000)) + grace_ms
        )

    async def delete_job(self, job_id: str) -> None:
        self._wrote_job(job_id)
        await self.redis.delete(self._job(job_id))
        self._wrote_job(job_id)
