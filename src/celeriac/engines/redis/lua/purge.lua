-- Drop ready and delayed messages of one queue; leased ones stay (their tasks are running).
-- KEYS[1..10]  priority streams
-- KEYS[11]     delayed sorted set
-- KEYS[12]     delayed hash
-- ARGV[1]      group
-- Returns how many messages were dropped.
local dropped = 0
for s = 1, 10 do
  local stream = KEYS[s]
  if redis.call('XLEN', stream) > 0 then
    local start = '-'
    local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
    if ok then
      for _, g in ipairs(groups) do
        local name, last
        for f = 1, #g, 2 do
          if g[f] == 'name' then name = g[f + 1] elseif g[f] == 'last-delivered-id' then last = g[f + 1] end
        end
        if name == ARGV[1] then start = '(' .. last end
      end
    end
    while true do
      local entries = redis.call('XRANGE', stream, start, '+', 'COUNT', 500)
      if #entries == 0 then break end
      for _, e in ipairs(entries) do redis.call('XDEL', stream, e[1]) end
      dropped = dropped + #entries
      start = '(' .. entries[#entries][1]
    end
  end
end
dropped = dropped + redis.call('ZCARD', KEYS[11])
redis.call('DEL', KEYS[11], KEYS[12])
return dropped
