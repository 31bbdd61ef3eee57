-- Run a batch of Redis commands in order, fenced and at most once (pipeline.bus.batch.Commands).
-- KEYS[1]: the site's matcher lease; KEYS[2]: the site's epoch; KEYS[3]: the id of the last batch run. All
-- three are of one site, hence (hash tag) of one Redis Cluster slot, where every key the commands name is too:
-- declaring them routes the script to the master of that slot.
-- ARGV[1]: the writer's lease token ('' for a writer that runs only while no matcher holds the lease);
-- ARGV[2]: the epoch the writer's state was loaded at ('' when the site has none yet);
-- ARGV[3]: a MessagePack array of commands, each an array of strings (the command and its arguments;
-- binary values inline). Two pseudo-commands: {'HSETCARD', hash, field, zset} sets the hash's field to the
-- sorted set's size (a counter that cannot go stale); {'COUNT', hash, field, n} adds n to a counter of a hash
-- that other roles write too (the site's stats): a field that is not an integer starts again at n, and a key of
-- another type is left alone, instead of failing the batch;
-- ARGV[4]: this batch's id: a batch sent again (a client's retry after a lost reply) runs nothing.
-- Runs nothing and returns the error 'FENCED ...' unless the lease holds ARGV[1] and the epoch is ARGV[2]:
-- a matcher that lost its lease, or whose gallery predates an unlink or prune, writes nothing.
-- Else returns {the number of commands (run now, or by the first send of the batch), the fields of COUNT
-- commands that did not hold an integer (or whose key is not a hash)}. The script stops at the
-- first command that fails; the commands before it stay applied (Redis does not roll scripts back).
local holder = redis.call('GET', KEYS[1]) or ''
if holder ~= ARGV[1] then
  return redis.error_reply('FENCED the lease is held by ' .. (holder == '' and 'no one' or holder))
end
local epoch = redis.call('GET', KEYS[2]) or ''
if epoch ~= ARGV[2] then
  return redis.error_reply('FENCED the epoch is ' .. epoch .. ', the batch was made at ' .. ARGV[2])
end
local commands = cmsgpack.unpack(ARGV[3])
if redis.call('GET', KEYS[3]) == ARGV[4] then
  return {#commands, {}}
end
redis.call('SET', KEYS[3], ARGV[4], 'PX', 3600000)
local bad = {}
for _, c in ipairs(commands) do
  if c[1] == 'HSETCARD' then
    redis.call('HSET', c[2], c[3], redis.call('ZCARD', c[4]))
  elseif c[1] == 'COUNT' then
    local done = redis.pcall('HINCRBY', c[2], c[3], c[4])
    if type(done) == 'table' and done.err then
      redis.pcall('HSET', c[2], c[3], c[4])
      bad[#bad + 1] = c[3]
    end
  else
    redis.call(unpack(c))
  end
end
return {#commands, bad}
