-- Run a batch of Redis commands in order (pipeline.bus.batch.Commands).
-- KEYS[1]: the site's lease key (P:{S}:matcher:lease), declared so that Redis Cluster routes the script to
-- the master of the site's slot; every key the commands name is of the same site, hence of the same slot.
-- ARGV[1]: a MessagePack array of commands, each an array of strings (the command and its arguments;
-- binary values inline). Returns the number of commands run. The script stops at the first command that
-- fails; the commands before it stay applied (Redis does not roll scripts back).
local commands = cmsgpack.unpack(ARGV[1])
for _, c in ipairs(commands) do
  redis.call(unpack(c))
end
return #commands
