"""Many Redis writes sent as one command: a list of commands run by a tiny server-side script, fenced.

redis-py spends tens of microseconds of Python per pipelined command (queueing, packing, parsing its
reply). The matcher writes several commands per tracklet, so at thousands of tracklets per second that
overhead dominates. ``Commands`` collects the writes as plain lists instead and sends them as one
``EVALSHA`` whose script runs them in order: one MessagePack argument holds every command, binary
values included. Redis' Lua has MessagePack built in (``cmsgpack``); with binary values inline the script
needs no pass over the arguments to resolve references (a batch of 128 tracklets runs in about 5.5 ms).

**Fenced.** The script first checks, atomically with the writes, that the site's matcher lease holds the
writer's token and that the site's epoch is the one the writer's state was loaded at (a ``Fence``: one
``GET`` and compare each). Otherwise it runs nothing and the call raises ``Fenced``: a matcher that was
paused past its lease, or whose gallery predates an ``unlink`` or ``prune``, writes nothing.

A script stops at the first command that fails; the commands before it stay applied (Redis does not
roll scripts back). Callers put what must not happen after a failure last: the matcher its ingest
marks and its stream acknowledgements.

The script declares its keys (the lease, the epoch, the last batch's id); every other key it writes is the
same site's, so on Redis Cluster, where a site's keys share one hash slot (``pipeline.keys``), it runs on the
master of that slot. On a cluster the script goes as EVAL (a replica promoted by a failover has not loaded
it). A batch runs at most once: a client that sends it again after a lost reply (redis-py's retries, a
cluster client riding out a failover) finds its id stored and runs nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import msgpack
import redis
from redis.commands.core import CoreCommands

from crosscam.errors import CrosscamError
from pipeline.bus.connect import Client, is_cluster
from pipeline.bus.scripts import script
from pipeline.keys import Keys, text


class Fenced(CrosscamError):
    """A batch refused by its fence: the lease is not the writer's, or the site's epoch moved on."""


@dataclass(frozen=True)
class Fence:
    """What a batch needs to run: the lease key ``lease`` holding ``token`` ('' : no matcher holds it) and the
    epoch key ``epoch`` at ``at`` ('' : the site has no epoch yet); ``last``: the key of the last batch's id."""

    lease: str
    epoch: str
    last: str
    token: str
    at: str

    @classmethod
    def of(cls, keys: Keys, token: str, epoch: bytes | str | None) -> Fence:
        return cls(keys.lease, keys.epoch, keys.last_batch, token, text(epoch))


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
    """Write commands collected for one fenced ``EVALSHA``; ``run(client, fence)`` sends them."""

    def __init__(self) -> None:
        self.commands: list[list] = []
        self.id = secrets.token_hex(8)  # the script runs a batch of this id once, however often it is sent
        self.bad_counters: list[str] = []  # after ``run``: fields of ``count`` that held no integer

    def __len__(self) -> int:
        return len(self.commands)

    def call(self, *args) -> None:
        self.commands.append([a if type(a) is str else _arg(a) for a in args])

    def add(self, args: list) -> None:
        """A command whose arguments are all ``str`` or ``bytes`` already (hot paths: nothing converted)."""
        self.commands.append(args)

    def pipeline(self) -> Recorder:
        """A pipeline-like front: redis-py's command methods (``xadd``, ``hset``, ...) on it add commands here,
        for code written against a pipeline (its commands then run, fenced, with this batch)."""
        return Recorder(self)

    def hset(self, key: str, mapping: dict) -> None:
        args = ["HSET", key]
        for k, v in mapping.items():
            args += (k, v if type(v) is str or type(v) is bytes else _arg(v))
        self.commands.append(args)

    def count(self, key: str, field: str, amount: int) -> None:
        """Add ``amount`` to the counter ``field`` of the hash ``key``, which other roles may write too: a field that
        holds no integer starts again at ``amount`` (listed in ``bad_counters`` once the batch ran) and a key of
        another type is left alone, rather than failing the batch."""
        self.commands.append(["COUNT", key, field, str(int(amount))])

    def hset_card(self, key: str, field: str, zset: str) -> None:
        """Set ``key``'s ``field`` to the size of the sorted set ``zset`` when the batch runs (a counter that
        cannot go stale: it is counted, not incremented)."""
        self.commands.append(["HSETCARD", key, field, zset])

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

    def run(self, client: Client, fence: Fence) -> int:
        """Run the collected commands now, as one script call behind ``fence``; returns how many ran (0 when
        empty: nothing is sent). Raises ``Fenced`` when the fence refuses them (then none ran)."""
        if not self.commands:
            return 0
        # use_bin_type=False: the raw string types of the MessagePack spec that Redis' cmsgpack reads
        packed = msgpack.packb(self.commands, use_bin_type=False)
        keys, args = [fence.lease, fence.epoch, fence.last], [fence.token, fence.at, packed, self.id]
        try:
            if is_cluster(client):  # EVAL: a replica promoted by a failover has not loaded the script
                ran, bad = client.execute_command("EVAL", script("batch"), len(keys), *keys, *args)
            else:
                ran, bad = client.register_script(script("batch"))(keys=keys, args=args)
        except redis.ResponseError as e:
            if str(e).startswith("FENCED "):
                raise Fenced(f"batch refused: {str(e).removeprefix('FENCED ')}") from None
            raise
        self.bad_counters = [text(f) for f in bad]
        return int(ran)


class Recorder(CoreCommands):
    """redis-py's command methods, each adding its command to a ``Commands`` instead of sending it."""

    def __init__(self, commands: Commands) -> None:
        self._commands = commands

    def execute_command(self, *args, **options) -> None:
        self._commands.call(*args)

    def hincrby(self, name: str, key: str, amount: int = 1) -> None:
        """A counter: ``Commands.count`` (a field or key another role broke does not fail the batch)."""
        self._commands.count(name, key, amount)

    def execute(self) -> list:
        """Nothing to send here: the commands run with their batch (``Commands.run``)."""
        return []
