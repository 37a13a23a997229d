"""The Lua scripts behind ``Store``'s one-round-trip operations, and their argument
helper. Each runs atomically in Redis; ``Store`` (``gateway/store/store.py``) calls them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.store.limits import BUCKET_LUA, SLOT_LUA

ZOp = tuple[str, str, float | None]  # (sorted set key, member, score; None removes it)

# Sorted-set changes that ride along with a job write: KEYS[2..] and, after the two
# leading arguments, one (member, score) pair per key; an empty score removes the member.
ZOPS_LUA = """
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
PUT = (
    ZOPS_LUA
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
OPEN = (
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
SWAP = (
    ZOPS_LUA
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
BEGIN = (
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


def zops(ops: Sequence[ZOp]) -> tuple[list[str], list[Any]]:
    keys: list[str] = []
    args: list[Any] = []
    for key, member, score in ops:
        keys.append(key)
        args += [member, "" if score is None else repr(float(score))]
    return keys, args


CLAIM_DUE = """
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {ids, first[2] or false}
"""
