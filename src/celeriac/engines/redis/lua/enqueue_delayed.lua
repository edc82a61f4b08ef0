-- Store a message as delayed, due DELAY ms after Redis's own clock.
-- KEYS[1]  the queue's delayed sorted set (member = key, score = due time in ms)
-- KEYS[2]  the queue's delayed hash (key -> "<priority>:<redeliveries>:<body>")
-- KEYS[3]  the queue's wake-up list, pushed when this message became the soonest
-- ARGV[1]  key (unique per delayed message)
-- ARGV[2]  delay in ms
-- ARGV[3]  priority 0-9
-- ARGV[4]  redeliveries
-- ARGV[5]  body
-- Returns the due time in ms.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], due, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. ':' .. ARGV[4] .. ':' .. ARGV[5])
local head = redis.call('ZRANGE', KEYS[1], 0, 0)
if head[1] == ARGV[1] then
  redis.call('LPUSH', KEYS[3], '1')
  redis.call('LTRIM', KEYS[3], 0, 0)
end
return due
