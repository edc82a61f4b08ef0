-- Lease up to COUNT ready messages of one queue to one consumer, highest priority first.
-- KEYS[1..10]  the queue's priority streams, priority 9 first, priority 0 last
-- ARGV[1]      consumer group name
-- ARGV[2]      consumer name ("<worker>/<suffix>")
-- ARGV[3]      COUNT, the most messages to lease
-- Returns a flat array: priority, entry id, body, redeliveries, ... (4 items per message)
-- A stream whose group is missing (first use, or deleted by hand) gets it created at id 0,
-- so messages added before any worker started are still delivered.
local group, consumer = ARGV[1], ARGV[2]
local remaining = tonumber(ARGV[3])
local out = {}
for i = 1, #KEYS do
  if remaining <= 0 then break end
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 1 then
    local ok, reply = pcall(redis.call, 'XREADGROUP', 'GROUP', group, consumer,
                            'COUNT', remaining, 'STREAMS', key, '>')
    if not ok then
      redis.call('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
      reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', remaining, 'STREAMS', key, '>')
    end
    if reply then
      local priority = 10 - i
      for _, entry in ipairs(reply[1][2]) do
        local fields = entry[2]
        local body, redeliveries = nil, '0'
        for f = 1, #fields, 2 do
          if fields[f] == 'b' then body = fields[f + 1] elseif fields[f] == 'd' then redeliveries = fields[f + 1] end
        end
        out[#out + 1] = priority
        out[#out + 1] = entry[1]
        out[#out + 1] = body or ''
        out[#out + 1] = redeliveries
        remaining = remaining - 1
      end
    end
  end
end
return out
