-- Reserve the next start slot of a global rate limit (GCRA with no burst): starts are spaced
-- INTERVAL apart cluster-wide, by Redis's clock.
-- KEYS[1]  the limit's key (holds the earliest free slot, in ms)
-- ARGV[1]  interval in ms
-- Returns ms from now until the reserved slot (0: start now).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local free = tonumber(redis.call('GET', KEYS[1]) or now)
if free < now then free = now end
redis.call('SET', KEYS[1], free + interval, 'PX', free + interval - now + 1000)
return free - now
