-- A snippet, not a script: layout._lua puts it where a script says "-- include: write_results".
-- Stores result records: per record the keys KEYS[k], KEYS[k + 1] (meta key, done-list key)
-- from KEYS[first_key] on, the arguments ARGV[a] (data) and ARGV[a + 1] ('1' if ready) from
-- ARGV[first_arg] on; ttl in ms (0: none). A ready record pushes its done list, waking waiters.
local function write_results(first_key, first_arg, ttl)
  for i = first_key, #KEYS, 2 do
    local at = first_arg + (i - first_key)
    if ttl > 0 then
      redis.call('SET', KEYS[i], ARGV[at], 'PX', ttl)
    else
      redis.call('SET', KEYS[i], ARGV[at])
    end
    if ARGV[at + 1] == '1' then
      redis.call('RPUSH', KEYS[i + 1], '1')
      if ttl > 0 then redis.call('PEXPIRE', KEYS[i + 1], ttl) end
    end
  end
end
