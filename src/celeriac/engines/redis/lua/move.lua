-- Take leased entries off a stream and put their messages somewhere else, atomically:
-- back in the ready stream, into the delayed set, or into the dead letters.
-- KEYS[1]      the stream the entries were leased from
-- KEYS[2..11]  the queue's priority streams, priority 0 first
-- KEYS[12]     delayed sorted set
-- KEYS[13]     delayed hash
-- KEYS[14]     dead-letter stream
-- ARGV[1]      group
-- ARGV[2]      where: 'ready', 'delayed' or 'dead'
-- ARGV[3]      delay in ms (delayed), or the reason (dead)
-- ARGV[4]      dead-letter cap (stream MAXLEN)
-- ARGV[5...]   groups of 4: entry id, priority, redeliveries, body ('': the entry's own,
--              for a caller that holds only the tag, as the supervisor of a killed process)
-- Returns the number of entries moved. An entry no longer pending (already acked, or
-- recovered by someone else) is skipped, so a late caller cannot duplicate a message.
local group, where = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local moved = 0
for i = 5, #ARGV, 4 do
  local id, priority, redeliveries, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if redis.call('XACK', KEYS[1], group, id) == 1 then
    if body == '' then
      local entry = redis.call('XRANGE', KEYS[1], id, id)
      if entry[1] then
        local fields = entry[1][2]
        for f = 1, #fields, 2 do
          if fields[f] == 'b' then body = fields[f + 1] end
        end
      end
    end
    redis.call('XDEL', KEYS[1], id)
    if where == 'ready' then
      local stream = KEYS[2 + tonumber(priority)]
      if redeliveries == '0' then
        redis.call('XADD', stream, '*', 'b', body)
      else
        redis.call('XADD', stream, '*', 'b', body, 'd', redeliveries)
      end
    elseif where == 'delayed' then
      local key = 'r:' .. id .. ':' .. now
      redis.call('ZADD', KEYS[12], now + tonumber(ARGV[3]), key)
      redis.call('HSET', KEYS[13], key, priority .. ':' .. redeliveries .. ':' .. body)
    else
      redis.call('XADD', KEYS[14], 'MAXLEN', '~', ARGV[4], '*', 'p', priority,
                 'reason', ARGV[3], 'time', now, 'b', body)
    end
    moved = moved + 1
  end
end
return moved
