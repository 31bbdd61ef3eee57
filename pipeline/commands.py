"""Many Redis writes sent as one command: a list of commands run by a tiny server-side script.

redis-py spends tens of microseconds of Python per pipelined command (queueing, packing, parsing its
reply). The matcher writes several commands per tracklet, so at thousands of tracklets per second that
overhead dominates. ``Commands`` collects the writes as plain lists instead and sends them as one
``EVALSHA`` whose script runs them in order (atomically, like MULTI/EXEC): one JSON argument holds the
commands, binary values travel as separate arguments that the JSON refers to by position.

Every key is named in the commands, so this suits a single Redis server (not Redis Cluster, where a
script must declare its keys).
"""

from __future__ import annotations

import json

# A JSON number in a command stands for a binary argument (ARGV[n]); every other value is a string.
_SCRIPT = """
local commands = cjson.decode(ARGV[1])
for _, c in ipairs(commands) do
  for i = 1, #c do
    if type(c[i]) == 'number' then c[i] = ARGV[c[i]] end
  end
  redis.call(unpack(c))
end
return #commands
"""


class Commands:
    """Write commands collected for one ``EVALSHA``; ``queue(pipe)`` adds it to a pipeline or transaction."""

    def __init__(self) -> None:
        self.commands: list[list] = []
        self.binaries: list[bytes] = []

    def __len__(self) -> int:
        return len(self.commands)

    def _arg(self, v) -> str | int:
        if isinstance(v, bytes | bytearray | memoryview):
            self.binaries.append(bytes(v))
            return len(self.binaries) + 1  # ARGV[1] is the JSON
        if isinstance(v, float):
            return repr(v)  # exact: Lua would round numbers to 14 digits
        return str(v)

    def call(self, *args) -> None:
        self.commands.append([a if type(a) is str else self._arg(a) for a in args])

    def hset(self, key: str, mapping: dict) -> None:
        args = ["HSET", key]
        for k, v in mapping.items():
            args += (k, v if type(v) is str else self._arg(v))
        self.commands.append(args)

    def zadd(self, key: str, mapping: dict, gt: bool = False) -> None:
        if mapping:
            self.call("ZADD", key, *(["GT"] if gt else []), *(x for m, s in mapping.items() for x in (s, m)))

    def xadd(self, key: str, fields: dict, maxlen: int | None = None) -> None:
        trim = ["MAXLEN", "~", maxlen] if maxlen else []
        self.call("XADD", key, *trim, "*", *(x for kv in fields.items() for x in kv))

    def queue(self, pipe) -> None:
        """Add the collected commands to ``pipe`` as one script call (nothing when empty)."""
        if not self.commands:
            return
        pipe.register_script(_SCRIPT)(
            args=[json.dumps(self.commands, separators=(",", ":")), *self.binaries], client=pipe
        )
