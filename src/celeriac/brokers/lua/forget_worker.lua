-- A worker's lapsed lease was recovered: move it from the lease set to the "gone" set, where
-- the registry still shows it as offline for a while, unless it heartbeated again meanwhile.
-- KEYS[1]  sorted set of workers (score = lease expiry in ms)
-- KEYS[2]  sorted set of gone workers (score = when recovered, ms)
-- ARGV[1]  worker name
-- Returns 1 if moved.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) < now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  return 1
end
return 0
