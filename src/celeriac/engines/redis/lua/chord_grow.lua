-- Add one member to a chord that has not fired: the size chord_part completes at grows by one
-- and the member joins the list of added members, in one step. The same member added again
-- (its adding task re-run after its worker died) grows nothing.
-- KEYS[1]      the chord's hash (size, join), under the join queue's hash tag
-- KEYS[2]      the chord's list of added members, same tag (outlives the hash: the join reads it)
-- ARGV[1]      member (the new header task's id)
-- Returns 1 if the chord expects the member now, 0 if the chord is unknown, expired or fired.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'added:' .. ARGV[1], '1') == 0 then return 1 end
redis.call('HINCRBY', KEYS[1], 'size', 1)
redis.call('RPUSH', KEYS[2], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left > 0 then redis.call('PEXPIRE', KEYS[2], left) end
return 1
