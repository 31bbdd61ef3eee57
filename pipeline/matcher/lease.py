"""The lease that keeps one matcher active per site (key ``P:S:matcher:lease``, ``lua/lease.lua`` and
``lua/release.lua``).

A matcher holds the lease while it renews it; further matchers wait as standbys and take over when the
lease of a dead one runs out (``seconds``). Renewing also reads the site's epoch in the same round trip.

The lease holds a token unique to the process (its consumer name and a random suffix), so two matchers
started with the same consumer name are still told apart: one is active, the other a standby. Every write
of the matcher is fenced with the token (``pipeline.bus.batch.Fence``): a matcher that lost its lease
(paused past it, then resumed) writes nothing.
"""

from __future__ import annotations

import secrets
import time

from pipeline.bus.connect import Client
from pipeline.bus.scripts import script
from pipeline.keys import Keys


class Lease:
    """The lease of ``keys.site`` for the matcher named ``holder``; ``token`` is what it holds in Redis."""

    def __init__(self, client: Client, keys: Keys, holder: str, seconds: float) -> None:
        self.client, self.keys, self.holder, self.seconds = client, keys, holder, seconds
        self.token = f"{holder}/{secrets.token_hex(6)}"
        self._script = client.register_script(script("lease"))

    def hold(self) -> tuple[bool, bytes | None]:
        """Take or renew the lease if it is free or ours; returns (held, the site's epoch)."""
        held, epoch = self._script(keys=[self.keys.lease, self.keys.epoch], args=[self.token, int(self.seconds * 1000)])
        return bool(held), epoch

    def acquire(self, wait: bool = True) -> bool:
        """Hold the lease; with ``wait``, stand by until it is free. Returns whether it is held."""
        while True:
            if self.hold()[0]:
                return True
            if not wait:
                return False
            time.sleep(min(1.0, self.seconds / 4))

    def release(self) -> None:
        """Give the lease up if it is ours, so a standby takes over at once."""
        self.client.register_script(script("release"))(keys=[self.keys.lease], args=[self.token])
