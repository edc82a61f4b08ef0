-- Give back every entry leased to the named consumers of one queue.
-- KEYS[1..10]  the queue's priority streams, priority 0 first
-- KEYS[11]     dead-letter stream
-- ARGV[1]      group
-- ARGV[2]      match mode: 'prefix' (every consumer whose name starts with ARGV[3]) or 'exact'
-- ARGV[3]      consumer name or prefix
-- ARGV[4]      redelivery cap: an entry handed out more times than this is dead-lettered
-- ARGV[5]      dead-letter cap (stream MAXLEN)
-- ARGV[6...]   entries to charge one redelivery, as '<priority>:<entry id>' (the ones that had
--              started: entry ids of different priority streams can be equal)
-- Returns a flat array of dead-lettered messages: priority, entry id, body, redeliveries, ...
-- Each entry is taken with XACK first, so two workers recovering the same dead worker
-- at once cannot both re-add it.
local group, mode, name = ARGV[1], ARGV[2], ARGV[3]
local cap, dead_cap = tonumber(ARGV[4]), ARGV[5]
local charged = {}
for i = 6, #ARGV do charged[ARGV[i]] = true end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = {}
for s = 1, 10 do
  local stream = KEYS[s]
  local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', stream, group)
  if ok then
    for _, info in ipairs(consumers) do
      local consumer
      for f = 1, #info, 2 do if info[f] == 'name' then consumer = info[f + 1] end end
      local match = (mode == 'exact' and consumer == name) or
                    (mode == 'prefix' and string.sub(consumer, 1, #name) == name)
      if match then
        while true do
          local pending = redis.call('XPENDING', stream, group, '-', '+', 100, consumer)
          if #pending == 0 then break end
          for _, p in ipairs(pending) do
            local id = p[1]
            local entry = redis.call('XRANGE', stream, id, id)
            redis.call('XACK', stream, group, id)
            redis.call('XDEL', stream, id)
            if entry[1] then
              local fields = entry[1][2]
              local body, redeliveries = '', 0
              for f = 1, #fields, 2 do
                if fields[f] == 'b' then body = fields[f + 1]
                elseif fields[f] == 'd' then redeliveries = tonumber(fields[f + 1]) end
              end
              if charged[(s - 1) .. ':' .. id] then redeliveries = redeliveries + 1 end
              if redeliveries > cap then
                local reason = 'redelivered ' .. redeliveries ..
                               ' times: the process running it died each time (poison message?)'
                redis.call('XADD', KEYS[11], 'MAXLEN', '~', dead_cap, '*', 'p', s - 1,
                           'reason', reason, 'time', now, 'b', body)
                dead[#dead + 1] = s - 1
                dead[#dead + 1] = id
                dead[#dead + 1] = body
                dead[#dead + 1] = redeliveries
              elseif redeliveries == 0 then
                redis.call('XADD', stream, '*', 'b', body)
              else
                redis.call('XADD', stream, '*', 'b', body, 'd', redeliveries)
              end
            end
          end
        end
        redis.call('XGROUP', 'DELCONSUMER', stream, group, consumer)
      end
    end
  end
end
return dead
