-- Count one header task into its chord, in one step with storing its result; the step that
-- counts the last distinct member enqueues the chord's join message. A member counted before
-- (a header task run again after its worker died) counts nothing, so the join goes out once.
-- A failed member (failed, revoked or dead-lettered) enqueues the join at once, as Celery fails a
-- chord on its first failed header task. Firing deletes the chord's keys: closed to later members.
-- KEYS[1]      the chord's hash (size, join), under the join queue's hash tag
-- KEYS[2]      the chord's member set, same tag
-- KEYS[3]      the join queue's priority stream
-- KEYS[4..]    pairs of result keys: meta key, done-list key (one pair per record; only when
--              the result store is this server, which makes the script single-server)
-- ARGV[1]      member (the header task's id)
-- ARGV[2]      result ttl in ms (0: none)
-- ARGV[3]      '1' if the member failed (fire now), else '0'
-- ARGV[4..]    pairs per record: data, '1' if ready
-- Returns 1 if this call completed the chord and enqueued the join message, else 0.
-- include: write_results
write_results(4, 4, tonumber(ARGV[2]))
local size = redis.call('HGET', KEYS[1], 'size')
if not size then return 0 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left > 0 then redis.call('PEXPIRE', KEYS[2], left) end
if ARGV[3] ~= '1' and redis.call('SCARD', KEYS[2]) ~= tonumber(size) then return 0 end
redis.call('XADD', KEYS[3], '*', 'b', redis.call('HGET', KEYS[1], 'join'))
redis.call('DEL', KEYS[1], KEYS[2])
return 1
