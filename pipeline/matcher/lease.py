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

import secrets
import time

from pipeline.bus.connect import Client
from pipeline.bus.scripts import script
from pipeline.keys import Keys


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
