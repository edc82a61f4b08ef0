-- An incarnation's leases were recovered: move it from the lease set to the "gone" set, where
-- the registry still shows it as offline for a while, unless it heartbeated again meanwhile.
-- KEYS[1]  sorted set of incarnations (score = lease expiry in ms)
-- KEYS[2]  sorted set of gone incarnations (score = when recovered, ms)
-- KEYS[3]  hash of what each incarnation last reported running
-- ARGV[1]  incarnation
-- ARGV[2]  '1' to move it even though its lease has not lapsed (evicted: proved dead)
-- Returns 1 if moved.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and (ARGV[2] == '1' or tonumber(score) < now) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 1
end
return 0
