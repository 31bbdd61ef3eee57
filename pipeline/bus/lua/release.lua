-- Give the matcher's lease up if it is held by this token (pipeline.matcher.lease.Lease.release).
-- KEYS[1]: the lease (P:{S}:matcher:lease); ARGV[1]: the token. Returns 1 when given up, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
