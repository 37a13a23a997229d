"""Look-ups by other names, one part of ``Store`` (``store.indexes``): a provider's
native job ids to the gateway's job ids (account-level callbacks), and a client key's
``Idempotency-Key`` to its entry. Keys: ``native:p:id`` (one key each, no tag needed) and
``idem:{key id}:h`` (the owner's tag, as its in-flight slots have: ``Store.open_job``
binds one and takes a slot in one script)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from gateway.store.redis_pool import RedisClient


class IdempotencyEntry(msgspec.Struct, array_like=True):
    """What one ``Idempotency-Key`` stands for: the request's fingerprint and its job."""

    fingerprint: str
    job_id: str


idem_decoder = msgspec.msgpack.Decoder(IdempotencyEntry)
_idem_encoder = msgspec.msgpack.Encoder()

# KEYS[1] an Idempotency-Key's entry; ARGV[1] the entry as read: deleted only if unchanged.
_RELEASE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Indexes:
    """Native ids to job ids, and Idempotency-Keys to their entries."""

    def __init__(self, redis: RedisClient, prefix: str, retention: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.retention = retention

    async def index_native(self, provider: str, native_ids: Sequence[str], job_id: str) -> None:
        """Remember which job each native id belongs to, for the job's retention."""
        if native_ids:
            async with self.redis.pipeline(transaction=False) as pipe:
                for native_id in native_ids:
                    pipe.set(self._native(provider, native_id), job_id, ex=self.retention)
                await pipe.execute()

    async def job_for_native(self, provider: str, native_id: str) -> str | None:
        """The job id a provider's native id belongs to, if indexed."""
        raw = await self.redis.get(self._native(provider, native_id))
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    def _native(self, provider: str, native_id: str) -> str:
        return f"{self.prefix}native:{provider}:{native_id}"

    def idempotency_key(self, owner: str, idem_key: str) -> str:
        """An Idempotency-Key's entry: the owner's tag, as its in-flight slots have."""
        digest = hashlib.sha256(idem_key.encode()).hexdigest()[:32]
        return f"{self.prefix}idem:{{{owner}}}:{digest}"

    async def get_idempotency(self, owner: str, idem_key: str) -> IdempotencyEntry | None:
        raw = await self.redis.get(self.idempotency_key(owner, idem_key))
        return None if raw is None else idem_decoder.decode(raw)

    async def release_idempotency(self, owner: str, idem_key: str) -> None:
        await self.redis.delete(self.idempotency_key(owner, idem_key))

    async def release_orphan(self, owner: str, idem_key: str, entry: IdempotencyEntry) -> bool:
        """Unbind ``idem_key`` if it still holds ``entry`` (compare-and-delete): for an
        entry whose job record is gone, so that a retry binds it to a new job."""
        key = self.idempotency_key(owner, idem_key)
        raw = _idem_encoder.encode(entry)
        return bool(await self.redis.eval(_RELEASE_IF, 1, key, raw))
