"""A ``crosscam`` verb run as a real process (``python -m pipeline``), to signal it and read what it prints."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.support.paths import REPO

HANG_GUARD = 120.0  # seconds: a bound that only catches a process that does not end, never a speed test


class Verb:
    """``crosscam ARGV`` in a process of its own; stderr is read as it comes (``wait_for_line``)."""

    def __init__(self, *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if k != "CROSSCAM_REDIS_URL"}
        environ |= {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"} | (env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", *argv],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._out: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=lambda: self._out.append(self.proc.stdout.read()), daemon=True)
        self._out_reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = HANG_GUARD) -> bool:
        """Whether a line of stderr matches ``pattern`` before the process ends (or ``timeout``, a hang guard)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any(re.search(pattern, line) for line in self.lines):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return False
                self._cond.wait(min(left, 0.2))

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = HANG_GUARD) -> tuple[int, str]:
        """Wait for the exit (killing the process past ``timeout``); its exit code and stdout."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(10)
        self._out_reader.join(10)
        return self.proc.returncode, "".join(self._out)

    def answer(self, timeout: float = HANG_GUARD) -> tuple[int, dict | None]:
        """Its exit code and its ``--json`` answer (the last line of stdout; None when there is none)."""
        code, out = self.finish(timeout)
        lines = out.strip().splitlines()
        try:
            return code, json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            return code, None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()
