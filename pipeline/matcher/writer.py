"""Writes behind: a linked batch's write is sent while the matcher links the next one.

The Redis server runs one batch's script while the matcher links the next (Redis would otherwise wait for
the matcher, and the matcher for Redis). At most one batch waits (``queue``) and one is in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

Write = Callable[[], object]  # sends one batch's write (a fenced script call)


def _nothing() -> None:
    pass


class WriteBehind:
    """One waiting and one in-flight write, each a call that sends it, the tracklet ids it marks, and what to
    do once it is written (``done``: the matcher counts a batch when Redis took it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._queued: tuple[Write, set[str], Callable[[], None]] | None = None
        self._inflight: Future | None = None
        self._inflight_ids: set[str] = set()
        self._inflight_done: Callable[[], None] = _nothing

    @property
    def queued(self) -> bool:
        """Whether a write waits to be sent."""
        return self._queued is not None

    def unwritten(self) -> set[str]:
        """Tracklet ids of the waiting and the in-flight batch: linked, not yet marked ingested in Redis."""
        return (self._queued[1] if self._queued else set()) | self._inflight_ids

    def queue(self, write: Write, ids: set[str], done: Callable[[], None] = _nothing) -> None:
        """Make ``write`` the waiting write (the one before must have been sent)."""
        assert self._queued is None, "send() the waiting write before queueing another"
        self._queued = (write, ids, done)

    def send(self) -> None:
        """Send the waiting write, once the one in flight has finished (its error is raised)."""
        self.wait()
        if self._queued is None:
            return
        (write, ids, done), self._queued = self._queued, None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-write")
        self._inflight, self._inflight_ids, self._inflight_done = self._pool.submit(write), ids, done

    def wait(self) -> None:
        """Wait for the write in flight; raises its error."""
        future, done = self._inflight, self._inflight_done
        self._inflight, self._inflight_ids, self._inflight_done = None, set(), _nothing
        if future is not None:
            future.result()
            done()

    def flush(self) -> None:
        """Send the waiting write and wait for it."""
        self.send()
        self.wait()

    def discard(self) -> tuple[bool, BaseException | None]:
        """Drop the waiting write and wait for the one in flight. Returns (whether a write was dropped,
        the in-flight write's error or None): either way, those records must be read again."""
        dropped, self._queued = self._queued is not None, None
        try:
            self.wait()
        except Exception as e:
            return dropped, e
        return dropped, None
