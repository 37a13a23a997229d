"""The outbox's Lua scripts (``gateway/notify/webhooks.py``). Every key they touch has the
outbox's hash tag, ``{wh}``: one slot of a Redis Cluster."""

# KEYS: seen, msg, due.  ARGV: id, ttl, due_at, blob.
ENQUEUE = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], 'm', ARGV[4], 'attempts', 0, 'last_error', '', 'claim', '')
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""

# KEYS: due.  ARGV: now, claimed_until, limit.  Due ids, pushed to ``claimed_until``.
CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
end
return ids
"""

# KEYS: due, then the ids' msg keys.  ARGV: claim token, the ids.  Marks each message with
# the token (one gone leaves the schedule); returns id, blob, attempts, id, blob, ...
READ = """
local out = {}
for i = 2, #KEYS do
  local id = ARGV[i]
  local f = redis.call('HMGET', KEYS[i], 'm', 'attempts')
  if f[1] then
    redis.call('HSET', KEYS[i], 'claim', ARGV[1])
    out[#out + 1] = id
    out[#out + 1] = f[1]
    out[#out + 1] = f[2] or '0'
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

# KEYS: due, dead, then one msg key per outcome.  ARGV: claim token, dead limit, then per
# outcome: id, action (done|retry|dead), next_due, attempts, last_error, dead entry.
# Returns one 0/1 per outcome: 0 when the claim was lost to another worker.
FINISH = """
local done = {}
for i = 3, #KEYS do
  local key, a = KEYS[i], 3 + (i - 3) * 6
  local id, action = ARGV[a], ARGV[a + 1]
  if redis.call('HGET', key, 'claim') ~= ARGV[1] then
    done[#done + 1] = 0
  elseif action == 'retry' then
    redis.call('HSET', key, 'attempts', ARGV[a + 3], 'last_error', ARGV[a + 4], 'claim', '')
    redis.call('ZADD', KEYS[1], ARGV[a + 2], id)
    done[#done + 1] = 1
  else
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], id)
    if action == 'dead' then
      redis.call('LPUSH', KEYS[2], ARGV[a + 5])
      redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
    end
    done[#done + 1] = 1
  end
end
return done
"""
