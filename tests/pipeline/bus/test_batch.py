"""Batched writes run by one server-side script, against a real Redis."""

from __future__ import annotations

import pytest
import redis

from pipeline.bus.batch import Commands, Fence


def free(keys) -> Fence:
    """The fence of a tool's write while no matcher holds the site's lease, at the site's first epoch."""
    return Fence.of(keys, "", None)


def test_commands_run_in_order_with_exact_values(redis_client, bus_keys):
    k = f"{bus_keys.prefix}:cmd"
    blob = bytes(range(256)) * 3  # binary, with NUL bytes
    t = 1732261234.123456789  # more digits than Lua's number formatting keeps
    w = Commands()
    w.hset(f"{k}:h", {"blob": blob, "t": repr(t), "n": 7, "f": 0.1 + 0.2, "cam": "Kamera Süd", "big": blob * 100})
    w.zadd(f"{k}:z", {"a": t, "b": 1.5})
    w.zadd(f"{k}:z", {"a": 0.0}, gt=True)  # GT: does not lower a's score
    w.zadd(f"{k}:z", {})  # nothing to add: no command (Redis refuses a ZADD without members)
    w.call("HINCRBY", f"{k}:h", "n", 2)
    w.xadd(f"{k}:s", {"x": "1"}, maxlen=10)
    assert w.run(redis_client, free(bus_keys)) == 5
    h = redis_client.hgetall(f"{k}:h")
    assert h[b"blob"] == blob and float(h[b"t"]) == t and h[b"n"] == b"9" and float(h[b"f"]) == 0.1 + 0.2
    assert h[b"cam"].decode() == "Kamera Süd" and h[b"big"] == blob * 100  # UTF-8 text; a 76 kB value
    assert redis_client.zscore(f"{k}:z", "a") == t and redis_client.zscore(f"{k}:z", "b") == 1.5
    assert redis_client.xlen(f"{k}:s") == 1


def test_a_failing_command_is_reported(redis_client, bus_keys):
    w = Commands()
    w.call("INCR", f"{bus_keys.prefix}:not-a-number")
    redis_client.set(f"{bus_keys.prefix}:not-a-number", "x")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        w.run(redis_client, free(bus_keys))


def test_large_sets_and_acknowledgements_fit_the_script(redis_client, bus_keys):
    """A ZADD of 10,000 members or an XACK of 5,000 ids (a matcher batch of up to 10,000) is split into
    commands Lua's unpack can pass on (it refuses about 8,000 values and more)."""
    k = f"{bus_keys.prefix}:big"
    ids = [redis_client.xadd(f"{k}:s", {"i": str(i)}) for i in range(5000)]
    redis_client.xgroup_create(f"{k}:s", "g", id="0")
    redis_client.xreadgroup("g", "c", {f"{k}:s": ">"}, count=5000)
    w = Commands()
    w.zadd(f"{k}:z", {f"m{i}": float(i) for i in range(10_000)})
    w.xack(f"{k}:s", "g", ids)
    w.run(redis_client, free(bus_keys))
    assert redis_client.zcard(f"{k}:z") == 10_000 and redis_client.zscore(f"{k}:z", "m9999") == 9999.0
    assert redis_client.xpending(f"{k}:s", "g")["pending"] == 0


def test_a_batch_sent_again_runs_once(redis_client, bus_keys):
    """A client that sends a batch again after its reply was lost (redis-py retries a command on a broken
    connection; a cluster client rides out a failover) must not apply it twice: the decisions stream and the
    site's counters would count its tracklets twice."""
    k = f"{bus_keys.prefix}:once"
    w = Commands()
    w.call("HINCRBY", f"{k}:h", "n", 1)
    w.xadd(f"{k}:s", {"x": "1"})
    assert w.run(redis_client, free(bus_keys)) == 2
    assert w.run(redis_client, free(bus_keys)) == 2  # the same batch again: nothing runs
    assert redis_client.hget(f"{k}:h", "n") == b"1" and redis_client.xlen(f"{k}:s") == 1
    other = Commands()
    other.call("HINCRBY", f"{k}:h", "n", 1)
    other.run(redis_client, free(bus_keys))  # another batch runs
    assert redis_client.hget(f"{k}:h", "n") == b"2"
