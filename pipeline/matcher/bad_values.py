"""Values the matcher read from keys another role writes, and ignored.

Workers write the site's models, camera status hashes (with the watermarks), camera set and counters
(docs/security.md): whatever one holds must not stop the matcher or change what it links. Where the matcher
reads such a value it checks it (finite, in range, of its type); a bad one is ignored and reported here: each
distinct problem is logged once and counted once, in the matcher's ``bad_values`` count.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

REMEMBERED = 1000  # distinct problems remembered; past it they are forgotten (and a repeat is logged again)


class BadValues:
    """Reports of ignored values for the matcher named ``name``, counted in ``counts["bad_values"]`` (the
    matcher's counts; a dict of its own by default)."""

    def __init__(self, name: str, counts: dict[str, int] | None = None) -> None:
        self.name = name
        self.counts = counts if counts is not None else {}
        self.counts.setdefault("bad_values", 0)
        self._seen: set[str] = set()
        self._lock = threading.Lock()  # writes behind report from their own thread

    def __call__(self, problem: str) -> None:
        """Report ``problem`` (names the key and the value ignored): logged and counted the first time."""
        with self._lock:
            if problem in self._seen:
                return
            if len(self._seen) >= REMEMBERED:
                self._seen.clear()
            self._seen.add(problem)
            self.counts["bad_values"] += 1
        log.warning("matcher %s: ignoring %s", self.name, problem)
