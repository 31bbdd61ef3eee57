"""Stopping a long-running verb cleanly (``worker``, ``run``, ``matcher``, ``api``, ``demo``).

Inside ``stop_signals()`` the first SIGINT (Ctrl-C) or SIGTERM (``docker stop``, systemd) does not end the
process: it sets the ``StopRequest`` the verb hands to what it runs, which then stops in order (cameras stop
reading, open tracklets are closed and published, cameras are marked ``stopped``, the matcher writes what it
linked and releases its lease), and the verb prints its summary and exits 0. A second signal ends the process
at once with exit code 130, without any of that.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

EXIT_AT_ONCE = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest(threading.Event):
    """Set when the process is asked to stop; ``by`` names the signal that asked (``SIGTERM``), if one did."""

    def __init__(self) -> None:
        super().__init__()
        self.by: str | None = None


def _say(line: str) -> None:
    """A line on stderr from a signal handler (``os.write``: no buffer another print may hold)."""
    with contextlib.suppress(OSError):
        os.write(2, f"crosscam: {line}\n".encode())


@contextlib.contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM set the yielded ``StopRequest``; a second one exits 130 at once. The handlers before
    are restored on leaving. Off the main thread (where Python cannot take signals) it only yields the request."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, _frame) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            _say(f"{name} again: stopping at once")
            os._exit(EXIT_AT_ONCE)
        stop.by = name
        _say(f"{name}: stopping cleanly (send it again to stop at once)")
        stop.set()

    before = {s: signal.signal(s, handle) for s in SIGNALS}
    try:
        yield stop
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
