-- Incarnations whose lease has lapsed, by Redis's clock, with where to look for their leases.
-- KEYS[1]  sorted set of incarnations (score = lease expiry in ms)
-- KEYS[2]  hash of worker queues
-- KEYS[3]  hash of what each incarnation last reported running
-- KEYS[4]  the pulse: when any worker last heartbeated (ms)
-- ARGV[1]  the caller's own incarnation ('' for none)
-- ARGV[2]  stall threshold in ms
-- Returns a flat array: incarnation, queues, running, ... Empty while the caller's own lease is
-- not live (it was paused or cut off: others' lapsed leases may be its own view of a stall) or
-- while nobody has heartbeated for longer than the stall threshold (the broker itself may have
-- been away; the next heartbeat extends every lease).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then
  local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not mine or tonumber(mine) < now then return {} end
end
local pulse = redis.call('GET', KEYS[4])
if pulse and now - tonumber(pulse) > tonumber(ARGV[2]) then return {} end
local names = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - 1, 'LIMIT', 0, 100)
local out = {}
for _, name in ipairs(names) do
  out[#out + 1] = name
  out[#out + 1] = redis.call('HGET', KEYS[2], name) or ''
  out[#out + 1] = redis.call('HGET', KEYS[3], name) or ''
end
return out
