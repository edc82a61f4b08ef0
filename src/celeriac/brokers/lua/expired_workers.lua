-- Workers whose lease has lapsed, by Redis's clock.
-- KEYS[1]  sorted set of workers (score = lease expiry in ms)
-- KEYS[2]  hash of worker queues
-- Returns a flat array: name, queues, ...
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local names = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - 1, 'LIMIT', 0, 100)
local out = {}
for _, name in ipairs(names) do
  out[#out + 1] = name
  out[#out + 1] = redis.call('HGET', KEYS[2], name) or ''
end
return out
