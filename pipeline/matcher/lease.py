"""The lease that keeps one matcher active per site (key ``P:S:matcher:lease``, script ``lua/lease.lua``).

A matcher holds the lease while it renews it; further matchers wait as standbys and take over when the
lease of a dead one runs out (``seconds``). Renewing also reads the site's epoch in the same round trip.
"""

from __future__ import annotations

import time

from pipeline.bus.connect import Client
from pipeline.bus.scripts import script
from pipeline.keys import Keys, text


class Lease:
    """The lease of ``keys.site`` for the matcher named ``holder``."""

    def __init__(self, client: Client, keys: Keys, holder: str, seconds: float) -> None:
        self.client, self.keys, self.holder, self.seconds = client, keys, holder, seconds
        self._script = client.register_script(script("lease"))

    def hold(self) -> tuple[bool, bytes | None]:
        """Take or renew the lease if it is free or ours; returns (held, the site's epoch)."""
        held, epoch = self._script(
            keys=[self.keys.lease, self.keys.epoch], args=[self.holder, int(self.seconds * 1000)]
        )
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
        if text(self.client.get(self.keys.lease)) == self.holder:
            self.client.delete(self.keys.lease)
