-- Create the consumer group on each priority stream of a queue (idempotent).
-- KEYS[1..n]  streams
-- ARGV[1]     group name
-- Returns the number of groups created.
local created = 0
for i = 1, #KEYS do
  local ok = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[i], ARGV[1], '0', 'MKSTREAM')
  if ok then created = created + 1 end
end
return created
