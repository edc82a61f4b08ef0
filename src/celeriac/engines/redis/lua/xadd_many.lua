-- Append many messages to one priority stream, in order.
-- KEYS[1]     the stream
-- ARGV[1...]  message bodies
-- Returns the number appended.
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'b', ARGV[i])
end
return #ARGV
