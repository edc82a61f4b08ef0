-- The highest priority of one queue (or shard) that has a message ready (not yet leased), so
-- a consumer of a sharded queue leases from the shard holding the most urgent message first.
-- KEYS[1..10]  the queue's priority streams, priority 9 first, priority 0 last
-- ARGV[1]      consumer group name
-- Returns the priority (0..9), or -1 when nothing is ready.
for i = 1, #KEYS do
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 1 then
    local last = '0-0'  -- a stream without the group yet: everything in it is ready
    local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', key)
    if ok then
      for _, group in ipairs(groups) do
        local fields = {}
        for f = 1, #group, 2 do fields[group[f]] = group[f + 1] end
        if fields['name'] == ARGV[1] then last = fields['last-delivered-id'] end
      end
    end
    if #redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 1) > 0 then
      return 10 - i
    end
  end
end
return -1
