"""Records waiting for Redis: a bounded, in-order backlog that rides out an outage.

A process that publishes keeps what it could not publish in memory, oldest first, and retries with a bounded
exponential backoff (``Retry``); when Redis is back the backlog is published in order. When the backlog is
full the OLDEST waiting item is dropped and counted (``dropped``; logged once per outage), as a live camera
drops its oldest frame: the newest data is the most useful once the site recovers.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import redis

from crosscam.redact import redact

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT = (
    redis.ConnectionError,  # refused, reset, closed; BusyLoadingError (a restarted server loading its data)
    redis.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica during a failover
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.MasterDownError,
    redis.exceptions.OutOfMemoryError,
)
"""Errors that pass when the server recovers: the item is kept and retried. Other errors refuse the item."""


def transient(error: BaseException) -> bool:
    """Whether ``error`` is an outage of Redis (retry later) rather than a problem of the item."""
    return isinstance(error, TRANSIENT)


@dataclass(frozen=True)
class Retry:
    """Bounded exponential backoff: delay_n = min(max_delay, initial * 2^n)."""

    initial: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.initial * 2 ** min(attempt, 32))


class Backlog(Generic[T]):
    """Items waiting to be published, oldest first, at most ``capacity``. ``flush(publish)`` publishes them in
    order until one fails: a transient failure (``transient``) keeps it and waits the backoff before the next
    try; any other failure refuses that item (logged and counted ``refused``) and goes on."""

    def __init__(self, capacity: int, retry: Retry | None = None, clock: Callable[[], float] = time.monotonic):
        if capacity < 1:
            raise ValueError(f"backlog capacity must be at least 1, got {capacity}")
        self.capacity, self.retry, self.clock = capacity, retry or Retry(), clock
        self.items: collections.deque[T] = collections.deque()
        self.counts: collections.Counter[str] = collections.Counter()
        self.unreported_drops = 0  # drops not yet written to the site's counters
        self._attempt = 0
        self._next_try = 0.0
        self._down_since: float | None = None
        self._outage_drops = 0

    def __len__(self) -> int:
        return len(self.items)

    @property
    def down(self) -> bool:
        """Whether the last try failed for an outage."""
        return self._down_since is not None

    def add(self, item: T) -> None:
        if len(self.items) >= self.capacity:
            self.items.popleft()
            self.counts["dropped"] += 1
            self.unreported_drops += 1
            if self._outage_drops == 0:
                log.warning(
                    "backlog full (%d items): dropping the oldest waiting items until Redis is back", self.capacity
                )
            self._outage_drops += 1
        self.items.append(item)

    def flush(self, publish: Callable[[T], object], force: bool = False) -> bool:
        """Publish waiting items in order; True when none is left. Until the backoff has passed after a failed
        try, it does nothing (``force``: try now)."""
        if not self.items:
            return True
        now = self.clock()
        if now < self._next_try and not force:
            return False
        while self.items:
            try:
                publish(self.items[0])
            except Exception as e:
                if not transient(e):
                    self.items.popleft()
                    self.counts["refused"] += 1
                    log.error("not published, dropped: %s", redact(e))
                    continue
                self._failed(e, now)
                return False
            self.items.popleft()
            self.counts["published"] += 1
            if self._down_since is not None:
                self._recovered(now)
        return True

    def _failed(self, error: BaseException, now: float) -> None:
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "Redis unreachable (%s): keeping up to %d items in memory and retrying", redact(error), self.capacity
            )
        self._next_try = now + self.retry.delay(self._attempt)
        self._attempt += 1

    def _recovered(self, now: float) -> None:
        log.warning(
            "Redis reachable again after %.1f s; publishing %d waiting items in order (%d oldest dropped meanwhile)",
            now - (self._down_since or now),
            len(self.items) + 1,
            self._outage_drops,
        )
        self._down_since, self._attempt, self._next_try, self._outage_drops = None, 0, 0.0, 0
