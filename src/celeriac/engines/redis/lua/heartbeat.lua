-- A worker incarnation is alive: extend its lease (which covers every entry its consumers hold).
-- KEYS[1]  sorted set of incarnations, score = lease expiry in ms (Redis clock)
-- KEYS[2]  hash of worker info (incarnation -> info)
-- KEYS[3]  hash of worker queues (incarnation -> comma-separated queues)
-- KEYS[4]  hash of last heartbeat times (incarnation -> ms)
-- KEYS[5]  sorted set of incarnations recovered after their lease lapsed (kept a while, for status)
-- KEYS[6]  hash of what each incarnation last reported running (incarnation -> "q\31p\31id\30...")
-- KEYS[7]  the pulse: when any worker last heartbeated (ms)
-- ARGV[1]  incarnation
-- ARGV[2]  lease in ms
-- ARGV[3]  info
-- ARGV[4]  queues
-- ARGV[5]  running
-- ARGV[6]  '1' for the incarnation's first beat
-- ARGV[7]  stall threshold in ms: a silence longer than this means the broker was away
-- Returns 0 (ok), 1 (the lease had lapsed: its tasks may have been recovered) or 2 (not the
-- first beat, yet nothing was known of this incarnation: the broker lost its data).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, lease = ARGV[1], tonumber(ARGV[2])
local pulse = redis.call('GET', KEYS[7])
if pulse and now - tonumber(pulse) > tonumber(ARGV[7]) then
  -- Nobody got through for longer than a live worker's beats can pause: leases that lapsed
  -- meanwhile prove no death. Give every registered incarnation one more lease to beat again.
  local leases = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #leases, 2 do
    if tonumber(leases[i + 1]) < now + lease then
      redis.call('ZADD', KEYS[1], now + lease, leases[i])
    end
  end
end
redis.call('SET', KEYS[7], now)
local previous = redis.call('ZSCORE', KEYS[1], me)
local recovered = redis.call('ZSCORE', KEYS[5], me)
redis.call('ZADD', KEYS[1], now + lease, me)
redis.call('HSET', KEYS[2], me, ARGV[3])
redis.call('HSET', KEYS[3], me, ARGV[4])
redis.call('HSET', KEYS[4], me, now)
redis.call('HSET', KEYS[6], me, ARGV[5])
redis.call('ZREM', KEYS[5], me)
if recovered or (previous and tonumber(previous) < now) then return 1 end
if not previous and ARGV[6] ~= '1' then return 2 end
return 0
