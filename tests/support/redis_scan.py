"""Everything a Redis server holds, for tests that must prove some data is nowhere in it."""

from __future__ import annotations


def every_value(client) -> list[bytes]:
    """Every key, and every field, member, element and value of every key (streams' entries included)."""
    out: list[bytes] = []
    for key in client.scan_iter(count=1000):
        out.append(key)
        kind = client.type(key).decode()
        if kind == "string":
            out.append(client.get(key))
        elif kind == "hash":
            for k, v in client.hgetall(key).items():
                out += [k, v]
        elif kind == "set":
            out += list(client.smembers(key))
        elif kind == "zset":
            out += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "list":
            out += client.lrange(key, 0, -1)
        elif kind == "stream":
            for _, fields in client.xrange(key):
                for k, v in fields.items():
                    out += [k, v]
    return out
