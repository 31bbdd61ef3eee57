"""Turns on the CPU between the two inference services of a camera process.

The embedding service and the detection service both run networks that spread over every core. Run at the
same moment they slow each other down, and a tracklet's embedding waits behind frames that could wait: a
frame waits in its camera's buffer at no cost to anyone, while every moment a closed tracklet waits delays its
sighting. So the embedder goes first: while it runs a batch, the detector does not start one (the batch it is
running finishes), and it resumes when the embedder is done. The detector never waits longer than
``max_wait`` seconds at a time, so an embedder that is never idle slows detection down but cannot stop it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class Turns:
    """``first()`` around the embedder's work; ``after()`` before each detector batch."""

    def __init__(self, max_wait: float = 0.5) -> None:
        self.max_wait = max_wait
        self.cond = threading.Condition()
        self.running = 0  # batches of the first service running now
        self.waited = 0  # times the second service waited for its turn

    @contextlib.contextmanager
    def first(self) -> Iterator[None]:
        with self.cond:
            self.running += 1
        try:
            yield
        finally:
            with self.cond:
                self.running -= 1
                self.cond.notify_all()

    def after(self) -> None:
        with self.cond:
            if self.running:
                self.waited += 1
                self.cond.wait_for(lambda: not self.running, self.max_wait)
