"""When the identities of the in-memory gallery expire in Redis (``matcher.ttl``). Pure: no Redis, no clock.

With a TTL every write of an identity sets its keys to expire ``ttl`` seconds later. The matcher notes, per
identity, the time it built that write (before Redis ran it, so the key lives at least that long) and forgets
an identity ``margin`` seconds before that deadline: it never links a tracklet to, or merges into, an
identity whose keys Redis may already have deleted; a person seen again after that is a new identity.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class Expiry:
    """Deadlines (on one monotonic clock) of identities that expire; identities without one never do."""

    def __init__(self, margin: float) -> None:
        self.margin = margin
        self.deadlines: dict[int, float] = {}
        self._heap: list[tuple[float, int]] = []  # (deadline, identity); stale pairs are skipped

    def __len__(self) -> int:
        return len(self.deadlines)

    def set(self, identities: Iterable[int], deadline: float) -> None:
        """These identities' keys expire at ``deadline`` (a write of them, or their TTL read at a reload)."""
        for identity in identities:
            self.deadlines[identity] = deadline
            heapq.heappush(self._heap, (deadline, identity))
        if len(self._heap) > 2 * len(self.deadlines) + 1024:  # drop the stale pairs now and then
            self._heap = [(d, i) for i, d in self.deadlines.items()]
            heapq.heapify(self._heap)

    def clear(self) -> None:
        self.deadlines.clear()
        self._heap.clear()

    def discard(self, identities: Iterable[int]) -> None:
        """These identities are gone (merged away): they no longer expire."""
        for identity in identities:
            self.deadlines.pop(identity, None)

    def due(self, now: float) -> list[int]:
        """The identities within ``margin`` of their deadline at ``now``, no longer tracked once returned."""
        out = []
        heap, limit = self._heap, now + self.margin
        while heap and heap[0][0] <= limit:
            deadline, identity = heapq.heappop(heap)
            if self.deadlines.get(identity) == deadline:
                del self.deadlines[identity]
                out.append(identity)
        return out
