-- Move due delayed messages of one queue to their priority stream, atomically.
-- KEYS[1]      delayed sorted set
-- KEYS[2]      delayed hash
-- KEYS[3..12]  priority streams, priority 0 first, priority 9 last
-- ARGV[1]      the most messages to move in this call
-- Returns ms until the next delayed message is due, 0 if more are due now, -1 if none wait.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, key in ipairs(due) do
  local packed = redis.call('HGET', KEYS[2], key)
  if packed then
    local priority, redeliveries, start = string.match(packed, '^(%d):(%d+):()')
    local body = string.sub(packed, start)
    local stream = KEYS[3 + tonumber(priority)]
    if redeliveries == '0' then
      redis.call('XADD', stream, '*', 'b', body)
    else
      redis.call('XADD', stream, '*', 'b', body, 'd', redeliveries)
    end
    redis.call('HDEL', KEYS[2], key)
  end
  redis.call('ZREM', KEYS[1], key)
end
if #due == tonumber(ARGV[1]) then return 0 end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if head[2] == nil then return -1 end
local wait = tonumber(head[2]) - now
if wait < 0 then return 0 end
return wait
