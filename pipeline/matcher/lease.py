"""The lease that keeps one matcher active per site (key ``P:{S}:matcher:lease``, ``lua/lease.lua`` and
``lua/release.lua``).

A matcher holds the lease while it renews it; further matchers wait as standbys and take over when the
lease of a dead one runs out (``seconds``). Renewing also reads the site's epoch in the same round trip.

The lease holds a token (the consumer name and a random suffix) that is new for every tenure: each time a
matcher takes the lease (free, not renewed) it does so with a fresh token. So two matchers started with the
same consumer name are still told apart (one active, one standby), and every write of the matcher, fenced
with the token of the tenure it was made in (``pipeline.bus.batch.Fence``), is refused once that tenure
ended: a matcher paused past its lease writes nothing when it resumes, even if no other matcher took the
lease meanwhile or one took it and gave it up again.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator

from pipeline.bus.connect import Client
from pipeline.bus.scripts import script
from pipeline.keys import Keys

log = logging.getLogger(__name__)

STOP_POLL = 0.05  # seconds between a standby's looks at its stop request


class Lease:
    """The lease of ``keys.site`` for the matcher named ``holder``. ``token`` is the one it holds the lease
    with (or last held it with); ``tenure`` counts the times it took the lease."""

    def __init__(self, client: Client, keys: Keys, holder: str, seconds: float) -> None:
        self.client, self.keys, self.holder, self.seconds = client, keys, holder, seconds
        self.token = self._new_token()
        self.tenure = 0
        self._script = client.register_script(script("lease"))

    def _new_token(self) -> str:
        return f"{self.holder}/{secrets.token_hex(6)}"

    def hold(self) -> tuple[bool, bytes | None]:
        """Take the lease if it is free (a new tenure, with a new token) or renew it if ours; returns (held,
        the site's epoch)."""
        fresh = self._new_token()
        held, epoch = self._script(
            keys=[self.keys.lease, self.keys.epoch], args=[self.token, int(self.seconds * 1000), fresh]
        )
        if held == 2:
            self.token, self.tenure = fresh, self.tenure + 1
        return bool(held), epoch

    @contextlib.contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the lease from a thread (every third of it) while the block runs: a gallery load that takes
        longer than the lease must not let it lapse, or the next step would find a new tenure and load again."""
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.seconds / 3):
                try:
                    self.hold()
                except Exception as e:  # an outage: the step after the block finds it too
                    log.debug("lease renewal failed: %s", e)

        thread = threading.Thread(target=renew, name=f"lease-{self.holder}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def acquire(self, wait: bool = True, stop: Callable[[], bool] = lambda: False) -> bool:
        """Hold the lease; with ``wait``, stand by until it is free (looking every quarter of the lease, at most
        every second) or ``stop()`` is true (checked every ``STOP_POLL`` seconds). Returns whether it is held."""
        told = False
        while not stop():
            if self.hold()[0]:
                return True
            if not wait:
                return False
            if not told:
                log.info(
                    "matcher %s: another matcher holds the lease of site %s; standing by", self.holder, self.keys.site
                )
                told = True
            next_try = time.monotonic() + min(1.0, self.seconds / 4)
            while not stop() and time.monotonic() < next_try:
                time.sleep(STOP_POLL)
        return False

    def release(self) -> None:
        """Give the lease up if it is ours, so a standby takes over at once."""
        self.client.register_script(script("release"))(keys=[self.keys.lease], args=[self.token])
