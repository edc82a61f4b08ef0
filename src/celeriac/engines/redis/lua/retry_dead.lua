-- Put dead letters back in circulation with a fresh redelivery count.
-- KEYS[1]      dead-letter stream
-- KEYS[2..11]  priority streams, priority 0 first
-- ARGV[1...]   dead-letter ids (none: all of them)
-- Returns how many were put back.
local ids = ARGV
if #ids == 0 then
  ids = {}
  for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do ids[#ids + 1] = e[1] end
end
local moved = 0
for _, id in ipairs(ids) do
  local entry = redis.call('XRANGE', KEYS[1], id, id)
  if entry[1] then
    local fields = entry[1][2]
    local priority, body = 0, ''
    for f = 1, #fields, 2 do
      if fields[f] == 'p' then priority = tonumber(fields[f + 1]) elseif fields[f] == 'b' then body = fields[f + 1] end
    end
    redis.call('XADD', KEYS[2 + priority], '*', 'b', body)
    redis.call('XDEL', KEYS[1], id)
    moved = moved + 1
  end
end
return moved
