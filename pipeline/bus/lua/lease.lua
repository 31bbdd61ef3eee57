-- Take or renew the matcher's lease, and read the site's epoch (pipeline.matcher.lease.Lease).
-- KEYS[1]: the lease (P:{S}:matcher:lease); KEYS[2]: the epoch (P:{S}:epoch).
-- ARGV[1]: the token this matcher holds the lease with; ARGV[2]: the lease in milliseconds; ARGV[3]: the
-- token to take a free lease with (a new one for every tenure, so writes made in an earlier tenure stay
-- refused after a lapse, even when no other matcher took the lease meanwhile).
-- Returns {held, epoch}: held = 1 when renewed (ours), 2 when taken (it was free: ARGV[3] now holds it),
-- 0 when another matcher holds it. The epoch (bumped by unlink and prune) comes in the same round trip.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, redis.call('GET', KEYS[2])}
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
  return {2, redis.call('GET', KEYS[2])}
end
return {0, redis.call('GET', KEYS[2])}
