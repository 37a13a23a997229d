"""Rate limits kept in Redis, atomic (Lua), shared by every gateway process.

* ``take``: a token bucket (capacity, refill per second), on Redis' own clock so that
  processes with skewed clocks agree. Used for requests per minute per client key and,
  through ``Store.begin_refresh``, for each provider's budget.
* Jobs in flight per client key: the sorted set ``slot_key(owner)`` of job ids, a slot
  taken by ``SLOT_LUA`` inside ``Store.open_job`` (once the job's record is written) and
  freed once the job's final record is (``JobCore.follow``; the background refresher
  frees it too if a process died in between); a slot older than ``SLOT_MAX_AGE`` is
  dropped so that a job nobody ever finishes cannot block its key for good.

Every key here is one structure that its scripts touch alone, and carries its own name
as its Redis Cluster hash tag: ``bucket:{rpm:key_abc}``, ``bucket:{upstream:musicgpt}``,
``lease-set:{elevenlabs}``, ``inflight:{key_abc}`` (the last shares the owner's tag with
the owner's ``idem:{key_abc}:...`` keys: ``Store.open_job`` takes both in one script).

Usage::

    limits = Limits(redis, prefix="mgw:")
    grant = await limits.take("rpm:key_abc", capacity=600, per_second=10)
    if not grant.allowed:
        ...  # 429, Retry-After: ceil(grant.retry_after)
    limits.slot_key("key_abc")   # the sorted set Store.open_job takes slots in
"""

from __future__ import annotations

from typing import NamedTuple

from gateway.store.redis_pool import RedisClient

SLOT_MAX_AGE = 3600  # seconds

# A token bucket as a Lua function: returns {allowed (0/1), seconds until ``cost`` is
# back, tokens left, reserved (0/1)}. With ``reserve``, a take the bucket cannot cover
# now is a reservation: its tokens are taken anyway (the level goes below zero) and the
# wait says when they would have been there, so takers that come later wait behind it:
# first come, first served, however many wait (the fair share of a tight budget).
BUCKET_LUA = """
local function take(key, cap, rate, cost, reserve)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local b = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(b[1])
  local ts = tonumber(b[2])
  if tokens == nil or ts == nil then
    tokens = cap
    ts = now
  end
  tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
  local allowed = 0
  local reserved = 0
  local wait = 0
  if tokens >= cost then
    tokens = tokens - cost
    allowed = 1
  elseif reserve == 1 then
    wait = (cost - tokens) / rate
    tokens = tokens - cost
    reserved = 1
  else
    wait = (cost - tokens) / rate
  end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  local behind = math.max(0, -tokens) / rate
  redis.call('PEXPIRE', key, math.ceil((cap / rate + behind) * 1000) + 1000)
  return {allowed, tostring(wait), tostring(tokens), reserved}
end
"""

# KEYS[1] the bucket; ARGV capacity, refill per second, cost, reserve (0/1).
TAKE = (
    BUCKET_LUA
    + "return take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),"
    + " tonumber(ARGV[4] or '0'))"
)

# A slot among a key's jobs in flight as a Lua function, shared with ``Store.open_job``:
# 1 when ``member`` holds one (now or already), 0 when ``limit`` are taken.
SLOT_LUA = """
local function acquire_slot(key, member, limit, age)
  local now = tonumber(redis.call('TIME')[1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - age)
  if redis.call('ZSCORE', key, member) then
    return 1
  end
  if redis.call('ZCARD', key) >= limit then
    return 0
  end
  redis.call('ZADD', key, now, member)
  redis.call('EXPIRE', key, age)
  return 1
end
"""


# A lease among ``limit`` holders of one key (a provider's concurrent generations, shared
# by every process): members scored by their expiry; expired ones drop out, so a holder
# that died frees its place after ``ttl``. Returns {1, 0} when held (or renewed), {0,
# seconds until the first lease expires} when all are taken.
LEASE_LUA = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(ttl) + 1)
  return {1, '0'}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tostring(math.max(0, tonumber(first[2]) - now))}
"""

# Whether ``member`` holds a lease on KEYS[1] now (its expiry is in the future).
LEASED_LUA = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expiry and tonumber(expiry) > now then return 1 end
return 0
"""


class Grant(NamedTuple):
    allowed: bool
    retry_after: float  # seconds until one token is back (0 when allowed)
    remaining: float  # tokens left
    reserved: bool = False  # not now, but the tokens are held for ``retry_after`` from now

    @classmethod
    def parse(cls, reply: list[object]) -> Grant:
        """From ``BUCKET_LUA``'s ``take`` reply: {allowed, wait, left, reserved}."""
        allowed, wait, left, reserved = reply
        return cls(bool(allowed), float(wait), float(left), bool(reserved))  # type: ignore[arg-type]


class Bucket(NamedTuple):
    """A token bucket to spend from, named in full (``Store.begin_refresh`` spends it)."""

    key: str  # full Redis key, from ``Limits.bucket_key``
    capacity: float
    per_second: float
    cost: float


class Limits:
    def __init__(self, redis: RedisClient, *, prefix: str) -> None:
        self.prefix = prefix
        self.redis = redis
        self._take = redis.register_script(TAKE)
        self._lease = redis.register_script(LEASE_LUA)
        self._leased = redis.register_script(LEASED_LUA)

    def bucket_key(self, bucket: str) -> str:
        return f"{self.prefix}bucket:{{{bucket}}}"

    def slot_key(self, owner: str) -> str:
        """The sorted set of ``owner``'s jobs in flight (member: job id)."""
        return f"{self.prefix}inflight:{{{owner}}}"

    async def take(
        self, bucket: str, *, capacity: float, per_second: float, cost: float = 1
    ) -> Grant:
        """Take ``cost`` tokens from ``bucket`` if it holds them (atomic)."""
        return await self.take_from(Bucket(self.bucket_key(bucket), capacity, per_second, cost))

    async def take_from(self, bucket: Bucket) -> Grant:
        """``take`` for a ``Bucket`` built by a caller (same script, same key)."""
        reply = await self._take(
            keys=[bucket.key], args=[bucket.capacity, bucket.per_second, bucket.cost, 0]
        )
        return Grant.parse(reply)

    def lease_key(self, name: str) -> str:
        """The sorted set of ``name``'s current lease holders (member: job id)."""
        return f"{self.prefix}lease-set:{{{name}}}"

    async def lease(self, name: str, member: str, *, limit: int, ttl: float) -> tuple[bool, float]:
        """Hold (or renew) one of ``limit`` leases on ``name`` for ``ttl`` seconds. Returns
        (held, seconds until a place may free up when not held)."""
        held, wait = await self._lease(keys=[self.lease_key(name)], args=[member, limit, ttl])
        return bool(held), float(wait)

    async def leased(self, name: str, member: str) -> bool:
        """Whether ``member`` holds one of ``name``'s leases now (renewed, not lapsed)."""
        return bool(await self._leased(keys=[self.lease_key(name)], args=[member]))

    async def release(self, name: str, member: str) -> None:
        await self.redis.zrem(self.lease_key(name), member)
