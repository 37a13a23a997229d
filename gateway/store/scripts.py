"""The Lua scripts behind ``Store``'s atomic operations. Each runs atomically in Redis and
touches the keys of one hash tag only (one slot of a Redis Cluster): a job's own keys
(``{job id}``), or one client key's (``{key id}``). ``Store`` (``gateway/store/store.py``)
calls them and says how the steps that span several slots are ordered."""

from __future__ import annotations

from gateway.store.limits import SLOT_LUA

ZOp = tuple[str, str, float | None]  # (sorted set key, member, score; None removes it)

# A new job's admission by its owner, all or nothing: KEYS[1] the owner's in-flight set,
# KEYS[2] the Idempotency-Key (each stands in for the other when that one is not used:
# both carry the owner's tag); ARGV job id, slot limit (0: none), slot max age, the key's
# entry ('': none), its seconds. {1}: admitted; {0}: no slot free; {2, entry}: the
# Idempotency-Key is bound already (nothing taken).
ADMIT = (
    SLOT_LUA
    + """
if ARGV[4] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then
    return {2, existing}
  end
end
local limit = tonumber(ARGV[2])
if limit > 0 and acquire_slot(KEYS[1], ARGV[1], limit, tonumber(ARGV[3])) == 0 then
  return {0}
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
end
return {1}
"""
)

# Compare-and-set: KEYS[1] job; ARGV[1] the bytes the change was computed from, ARGV[2]
# the new record. Returns 1 when written, else the current bytes (nil: no such job).
SWAP = """
local current = redis.call('GET', KEYS[1])
if not current then
  return false
end
if current ~= ARGV[1] then
  return current
end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""

# KEYS[1] the job's refresh lease, KEYS[2] the job, KEYS[3] its booked turn of the
# provider's budget (value: the grace in ms the booking outlives its turn by; it expires
# then); ARGV[1] lease ms. {0}: another holds the lease; {1, record or false, turn, ms}:
# leased, the job as stored now, and its booking: 1 its turn has come (taken: it pays
# for this refresh), -1 booked for ``ms`` from now, 0 none.
BEGIN = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return {0}
end
local turn, wait = 0, 0
local left = redis.call('PTTL', KEYS[3])
if left > 0 then
  wait = left - tonumber(redis.call('GET', KEYS[3]) or '0')
  if wait <= 5 then
    redis.call('DEL', KEYS[3])
    turn, wait = 1, 0
  else
    turn = -1
  end
end
return {1, redis.call('GET', KEYS[2]) or false, turn, wait}
"""

# KEYS[1] the refresh schedule; ARGV now, limit, seconds a claim holds. Takes up to
# ``limit`` due ids, each pushed ahead by the claim; returns them and the first score.
CLAIM_DUE = """
local now = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {ids, first[2] or false}
"""
