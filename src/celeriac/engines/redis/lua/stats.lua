-- Depth of one queue.
-- KEYS[1..10]  priority streams, priority 0 first
-- KEYS[11]     delayed sorted set
-- KEYS[12]     dead-letter stream
-- ARGV[1]      group
-- Returns: ready count for priorities 0..9, then unacked, delayed, dead (13 integers).
-- Acked entries are deleted, so what a stream holds is ready + leased.
local out = {}
local unacked = 0
for s = 1, 10 do
  local length = redis.call('XLEN', KEYS[s])
  local pending = 0
  if length > 0 then
    local ok, summary = pcall(redis.call, 'XPENDING', KEYS[s], ARGV[1])
    if ok then pending = summary[1] end
  end
  out[s] = length - pending
  unacked = unacked + pending
end
out[11] = unacked
out[12] = redis.call('ZCARD', KEYS[11])
out[13] = redis.call('XLEN', KEYS[12])
return out
