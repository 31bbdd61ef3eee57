-- Take or renew the matcher's lease, and read the site's epoch (pipeline.matcher.lease.Lease).
-- KEYS[1]: the lease (P:S:matcher:lease); KEYS[2]: the epoch (P:S:epoch).
-- ARGV[1]: this matcher's lease token (its consumer name and a random suffix, unique per process);
-- ARGV[2]: the lease in milliseconds.
-- Returns {held, epoch}: the lease is taken when free and renewed when ours (held = 1); when another
-- matcher holds it, held = 0. The epoch (bumped by unlink and prune) comes in the same round trip.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  return {0, redis.call('GET', KEYS[2])}
end
return {1, redis.call('GET', KEYS[2])}
