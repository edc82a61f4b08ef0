-- Drop a recovered worker from the lease set, unless it heartbeated again meanwhile.
-- KEYS[1]  sorted set of workers
-- ARGV[1]  worker name
-- Returns 1 if removed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) < now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
