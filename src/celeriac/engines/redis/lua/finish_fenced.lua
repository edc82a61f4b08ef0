-- Store a task's results and ack its entry only if the entry is still leased to this consumer,
-- in one step: an attempt whose lease lapsed (its message recovered and handed to another
-- worker) must not replace that worker's result. Used only when the worker is unsure its
-- lease held; the usual finish is plain commands. Single server only (keys of several slots).
-- KEYS[1]      the entry's priority stream
-- KEYS[2..]    pairs of result keys: meta key, done-list key (one pair per record)
-- ARGV[1]      group
-- ARGV[2]      consumer
-- ARGV[3]      entry id
-- ARGV[4]      result ttl in ms (0: none)
-- ARGV[5..]    pairs per record: data, '1' if ready
-- Returns 1 if written and acked, 0 if the entry is no longer this consumer's.
-- include: write_results
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #pending == 0 then return 0 end
write_results(2, 5, tonumber(ARGV[4]))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
