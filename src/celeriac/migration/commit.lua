-- Take one message out of Celery's broker and record that celeriac holds it, atomically.
-- KEYS[1]  where the message is: a queue list (mode "list") or kombu's unacked hash ("unacked")
-- KEYS[2]  kombu's unacked_index sorted set (mode "unacked"; any key otherwise)
-- KEYS[3]  journal hash "releasing": task id -> what to release in celeriac
-- KEYS[4]  journal hash "copying": task id -> queue (copies whose Celery message is still there)
-- KEYS[5]  journal set "done": task ids moved
-- ARGV[1]  mode, "list" or "unacked"
-- ARGV[2]  the list element (mode "list") or the delivery tag (mode "unacked")
-- ARGV[3]  task id
-- ARGV[4]  what to release ("" when celeriac already has the task: nothing to release)
-- ARGV[5]  seconds the "done" set is kept
-- Returns 1 if the message was taken out, 0 if it was gone (a Celery worker took it).
local removed
if ARGV[1] == 'list' then
  removed = redis.call('LREM', KEYS[1], -1, ARGV[2])
else
  removed = redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
end
if removed == 0 then
  return 0  -- the mover drops its copy, then the "copying" entry
end
redis.call('HDEL', KEYS[4], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
end
redis.call('SADD', KEYS[5], ARGV[3])
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[5]))
return 1
