-- Delete a consumer of a group if it has nothing pending (pipeline.matcher.consumer.Matcher.start).
-- KEYS[1]: the stream; ARGV[1]: the group; ARGV[2]: the consumer. Returns 1 when deleted, else 0.
-- Checked and deleted at once: a consumer deleted with records pending would lose them from the group.
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
