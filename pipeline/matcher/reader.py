"""Reading the site's tracklet stream in the consumer group ``matcher``: this consumer's own pending records
first (a restart under the same name), then records another consumer left pending for ``claim_idle`` seconds
(XAUTOCLAIM, looked for at start and then every ``claim_idle / 4`` seconds), then new ones.

A pending record can be trimmed from the stream (``redis.maxlen``) before it is processed. Redis then returns
it without fields: XREADGROUP of pending records gives its id with no fields; XAUTOCLAIM lists its id
apart (Redis 7, which also drops it from the group's pending list) or, before Redis 7, gives an entry with
neither id nor fields while it claims the id all the same. ``read`` hands every such record on as
``(id, {})`` (``trimmed``), which the matcher counts and acknowledges; an XAUTOCLAIM entry with neither id nor
fields makes the next read take this consumer's own pending records, where it comes with its id."""

from __future__ import annotations

import time

import redis

from pipeline.bus.connect import BusError, Client
from pipeline.keys import GROUP, Keys, text

Entry = tuple[bytes, dict]  # (stream id, fields) as redis-py returns them

UNDELIVERED_CAP = 10_000
"""Before Redis 7 the group reports no lag: the records after its last delivered id are counted on the server, up
to this many (a bounded cost for a periodic check; past it the backlog reads as at least this)."""

_COUNT_AFTER = """
local n, after, cap = 0, ARGV[1], tonumber(ARGV[2])
while n < cap do
    local page = redis.call('XRANGE', KEYS[1], '(' .. after, '+', 'COUNT', 100)
    if #page == 0 then break end
    n = n + #page
    after = page[#page][1]
end
return math.min(n, cap)
"""


def trimmed(entry: Entry) -> bool:
    """Whether a pending record was trimmed from the stream before it was processed: no fields (a record
    as published always has some)."""
    return not entry[1]


class GroupReader:
    """Batches of up to ``batch`` stream entries for ``consumer``."""

    def __init__(self, client: Client, keys: Keys, consumer: str, batch: int, claim_idle: float) -> None:
        self.client, self.keys, self.consumer, self.batch, self.claim_idle = client, keys, consumer, batch, claim_idle
        self.own_pending = True  # read our own pending records before anything else
        self.pending_after = "0"  # own pending records are read from after this id (those before are held or done)
        self.next_claim = 0.0  # when to look for another consumer's stale records next (monotonic clock)

    def ensure_group(self) -> None:
        """Create the consumer group (from the stream's start) unless it exists. A key of the stream's name that
        is not a stream is an error naming it (another program writes under the site's prefix)."""
        kind = text(self.client.type(self.keys.tracklets))
        if kind not in ("none", "stream"):
            raise BusError(
                f"{self.keys.tracklets} holds a {kind}, not a stream of tracklets: another program writes under "
                "the site's key prefix; give the site another redis.prefix or database, or delete the key"
            )
        try:
            self.client.xgroup_create(self.keys.tracklets, GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def rewinding(self) -> bool:
        """Whether the next read takes this consumer's own pending records (write every batch behind first:
        their records are still pending too)."""
        return self.own_pending

    def reread(self) -> None:
        """Read this consumer's pending records again next, from the first (their batch was not written)."""
        self.own_pending, self.pending_after = True, "0"

    def read(self, block_ms: int) -> list[Entry]:
        """The next batch: own pending, else claimed, else new entries (waiting up to ``block_ms``)."""
        stream = self.keys.tracklets
        if self.own_pending:  # from after the last one read: records held for ordering stay pending meanwhile
            got = self.client.xreadgroup(GROUP, self.consumer, {stream: self.pending_after}, count=self.batch)
            entries = got[0][1] if got else []
            if entries:
                self.pending_after = text(entries[-1][0])
                return entries
            self.own_pending, self.pending_after = False, "0"
        now = time.monotonic()
        if now >= self.next_claim:
            claimed = self.client.xautoclaim(
                stream,
                GROUP,
                self.consumer,
                min_idle_time=int(self.claim_idle * 1000),
                start_id="0-0",
                count=self.batch,
            )
            entries = [e for e in claimed[1] if e[0] is not None] if claimed else []
            if claimed and len(entries) < len(claimed[1]):  # trimmed, claimed by id (before Redis 7)
                self.own_pending = True
            # trimmed, listed apart (Redis 7): as entries without fields, counted by the matcher
            entries += [(e, {}) for e in (claimed[2] if claimed and len(claimed) > 2 else [])]
            if entries:
                return entries
            if self.own_pending:
                return []  # no wait for new records: the trimmed ones claimed are read (by id) next
            self.next_claim = now + self.claim_idle / 4
        got = self.client.xreadgroup(GROUP, self.consumer, {stream: ">"}, count=self.batch, block=block_ms)
        return got[0][1] if got else []

    def backlog(self) -> int:
        """Records not yet delivered to the group plus those pending."""
        groups = {text(g["name"]): g for g in self.client.xinfo_groups(self.keys.tracklets)}
        g = groups.get(GROUP, {})
        lag = g.get("lag")
        if lag is None and g:  # Redis 6.2: no lag reported, so count what follows the last delivered id
            after = text(g.get("last-delivered-id") or "0-0")
            lag = self.client.eval(_COUNT_AFTER, 1, self.keys.tracklets, after, UNDELIVERED_CAP)
        return int(lag or 0) + int(g.get("pending") or 0)
