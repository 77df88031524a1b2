"""Lua scripts of the Redis bus backend; each runs atomically on the server.

- APPEND: add a batch of entries to their partition streams, all or none, and record the
  topics; one command instead of a pipeline of XADDs. The entries' ids come back as one
  space-separated string: the client splits it at once, where a reply of one string per
  entry is parsed element by element (redis-py's parser is Python).
- COORDINATE: a consumer's lease round: heartbeat, renew its leases, take free ones up to
  its fair share (partitions ÷ live consumers, rounded up), by the server's clock.
- RELEASE: give up leases, only those the consumer still holds.
- REQUEUE: move one dead letter back to its partition stream, once even under concurrent
  replays.
"""

from __future__ import annotations

APPEND = """
local count = tonumber(ARGV[1])
local ids = {}
for i = 1, count do
  local at = 1 + (i - 1) * 3
  if ARGV[at + 3] == '' then
    ids[i] = redis.call('XADD', KEYS[i], '*', 'k', ARGV[at + 1], 'v', ARGV[at + 2])
  else
    ids[i] = redis.call('XADD', KEYS[i], '*', 'k', ARGV[at + 1], 'v', ARGV[at + 2],
                        'h', ARGV[at + 3])
  end
end
for j = 2 + count * 3, #ARGV do
  redis.call('SADD', KEYS[count + 1], ARGV[j])
end
return table.concat(ids, ' ')
"""

RELEASE = """
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 0
"""

REQUEUE = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('XADD', KEYS[2], '*', 'k', ARGV[2], 'v', ARGV[3], 'h', ARGV[4])
  return 1
end
return 0
"""

COORDINATE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local me, ttl = ARGV[1], tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, me)
redis.call('PEXPIRE', KEYS[1], ttl * 4)
redis.call('SADD', KEYS[2], ARGV[3])
local target = math.ceil((#KEYS - 2) / redis.call('ZCARD', KEYS[1]))
local held = {}
for i = 3, #KEYS do
  if redis.call('GET', KEYS[i]) == me then
    redis.call('PEXPIRE', KEYS[i], ttl)
    held[#held + 1] = i - 3
  end
end
for i = 3, #KEYS do
  if #held >= target then break end
  if redis.call('SET', KEYS[i], me, 'NX', 'PX', ttl) then held[#held + 1] = i - 3 end
end
return {target, held}
"""
