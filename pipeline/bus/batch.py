"""Many Redis writes sent as one command: a list of commands run by a tiny server-side script.

redis-py spends tens of microseconds of Python per pipelined command (queueing, packing, parsing its
reply). The matcher writes several commands per tracklet, so at thousands of tracklets per second that
overhead dominates. ``Commands`` collects the writes as plain lists instead and sends them as one
``EVALSHA`` whose script runs them in order: one MessagePack argument holds every command, binary
values included. Redis' Lua has MessagePack built in (``cmsgpack``); with binary values inline the script
needs no pass over the arguments to resolve references (a batch of 128 tracklets runs in about 5.5 ms).

A script stops at the first command that fails; the commands before it stay applied (Redis does not
roll scripts back). Callers put what must not happen after a failure last: the matcher its ingest
marks and its stream acknowledgements.

The commands name their keys themselves; the script call declares one key of the site (the matcher's
lease), which routes it on Redis Cluster to the master of the site's slot. Every key of a site hashes to
that slot (``pipeline.keys``), so the commands run there as on a single server. On a cluster the script
goes as EVAL (a replica promoted by a failover has not loaded it).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgpack

from pipeline.bus.connect import Pipeline, is_cluster
from pipeline.bus.scripts import script


def _arg(v) -> str | bytes:
    if type(v) is str or isinstance(v, bytes):
        return v
    if isinstance(v, bytearray | memoryview):
        return bytes(v)
    if isinstance(v, float):
        return repr(v)  # exact: Lua would round numbers to 14 digits
    return str(v)


CHUNK = 1000  # members per ZADD (2,000 values), ids per XACK 2,000: within the script's unpack limit


class Commands:
    """Write commands collected for one ``EVALSHA``; ``queue(pipe)`` adds it to a pipeline or transaction."""

    def __init__(self) -> None:
        self.commands: list[list] = []

    def __len__(self) -> int:
        return len(self.commands)

    def call(self, *args) -> None:
        self.commands.append([a if type(a) is str else _arg(a) for a in args])

    def add(self, args: list) -> None:
        """A command whose arguments are all ``str`` or ``bytes`` already (hot paths: nothing converted)."""
        self.commands.append(args)

    def hset(self, key: str, mapping: dict) -> None:
        args = ["HSET", key]
        for k, v in mapping.items():
            args += (k, v if type(v) is str or type(v) is bytes else _arg(v))
        self.commands.append(args)

    def zadd(self, key: str, mapping: dict, gt: bool = False) -> None:
        self.zadd_args(key, [_arg(x) for m, s in mapping.items() for x in (s, m)], gt)

    def zadd_args(self, key: str, args: list, gt: bool = False) -> None:
        """ZADD of ``args`` = [score, member, score, member, ...], all ``str`` or ``bytes`` already."""
        head = ["ZADD", key, "GT"] if gt else ["ZADD", key]
        for k in range(0, len(args), 2 * CHUNK):  # Lua's unpack takes fewer than 8,000 values; none when empty
            self.commands.append(head + args[k : k + 2 * CHUNK])

    def xack(self, key: str, group: str, ids: list) -> None:
        for k in range(0, len(ids), 2 * CHUNK):
            self.call("XACK", key, group, *ids[k : k + 2 * CHUNK])

    def xadd(self, key: str, fields: dict, maxlen: int | None = None) -> None:
        trim = ["MAXLEN", "~", maxlen] if maxlen else []
        self.call("XADD", key, *trim, "*", *(x for kv in fields.items() for x in kv))

    def queue(self, pipe: Pipeline, keys: Sequence[str] = ()) -> None:
        """Add the collected commands to ``pipe`` as one script call (nothing when empty). ``keys``: the
        script's declared keys, ``[the site's lease key]`` (KEYS[1]; what routes it on Redis Cluster)."""
        if not self.commands:
            return
        # use_bin_type=False: the raw string types of the MessagePack spec that Redis' cmsgpack reads
        arg = msgpack.packb(self.commands, use_bin_type=False)
        if is_cluster(pipe):
            pipe.execute_command("EVAL", script("batch"), len(keys), *keys, arg)
        else:
            pipe.register_script(script("batch"))(keys=list(keys), args=[arg], client=pipe)
