-- A worker is alive: extend its lease (which covers every entry its consumers hold).
-- KEYS[1]  sorted set of workers, score = lease expiry in ms (Redis clock)
-- KEYS[2]  hash of worker info (name -> info)
-- KEYS[3]  hash of worker queues (name -> comma-separated queues)
-- KEYS[4]  hash of last heartbeat times (name -> ms)
-- KEYS[5]  sorted set of workers recovered after their lease lapsed (kept a while, for status)
-- ARGV[1]  worker name
-- ARGV[2]  lease in ms
-- ARGV[3]  info
-- ARGV[4]  queues
-- Returns 1 when the lease had lapsed before this beat (its tasks may have been recovered).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local previous = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[4], ARGV[1], now)
redis.call('ZREM', KEYS[5], ARGV[1])
if previous and tonumber(previous) < now then return 1 end
return 0
