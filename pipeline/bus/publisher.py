"""Publishing to a site's Redis: tracklet records, camera status and dead letters (keys: ``pipeline.keys``)."""

from __future__ import annotations

import time

from pipeline.bus import records
from pipeline.bus.connect import Client, master_of, wait_replicas
from pipeline.keys import Keys, text
from pipeline.types import TrackletEmbedding

DEFAULT_MAXLEN = 100_000


class Publisher:
    """Writes a site's tracklets and camera status to Redis."""

    def __init__(
        self, client: Client, keys: Keys, maxlen: int = DEFAULT_MAXLEN, replicas: int = 0, replica_timeout: float = 1.0
    ) -> None:
        """``replicas``: a record counts as published once that many replicas hold it (``wait_replicas``)."""
        self.client, self.keys, self.maxlen = client, keys, maxlen
        self.replicas, self.replica_timeout = replicas, replica_timeout

    def publish(self, tracklet: TrackletEmbedding) -> str:
        """Append one tracklet record; returns its stream id. With ``replicas``, returns once they hold it and
        raises ``ReplicationError`` (a ``ConnectionError``: publish it again) when they do not in time."""
        if self.replicas:
            node = master_of(self.client, self.keys.stats)  # pinned before the write: see wait_replicas
        entry = self.client.xadd(self.keys.tracklets, records.encode(tracklet), maxlen=self.maxlen, approximate=True)
        if self.replicas:  # the counter goes on the pinned connection, and WAIT after it
            wait_replicas(
                node, self.keys.stats, self.replicas, self.replica_timeout, ("HINCRBY", self.keys.stats, "published", 1)
            )
        else:
            self.client.hincrby(self.keys.stats, "published", 1)
        return text(entry)

    def camera_status(self, camera_id: str, state: str, error: str = "", **counters: float) -> None:
        """Record a camera's state (``connecting``, ``streaming``, ...) with a heartbeat and counters."""
        now = time.time()
        key = self.keys.camera(camera_id)
        previous = self.client.hget(key, "state")
        fields = {"state": state, "heartbeat": repr(now), "error": error, **{k: repr(v) for k, v in counters.items()}}
        if previous is None or text(previous) != state:
            fields["since"] = repr(now)
        pipe = self.client.pipeline()
        pipe.sadd(self.keys.cameras, camera_id)
        pipe.hset(key, mapping=fields)
        pipe.execute()


def camera_status(client: Client, keys: Keys, camera_id: str) -> dict[str, str]:
    """A camera's status hash as ``str`` fields."""
    return {text(k): text(v) for k, v in client.hgetall(keys.camera(camera_id)).items()}


def _field_name(name: bytes | str) -> str:
    """A record's field name as text; bytes that are not UTF-8 are kept as backslash escapes, so a malformed
    record can always be dead-lettered."""
    return name.decode(errors="backslashreplace") if isinstance(name, bytes) else str(name)


def dead_letter(client: Client, keys: Keys, source_id: str, fields: dict, reason: str) -> None:
    """Move a record that cannot be processed to the dead-letter stream, keeping every original field.
    ``client`` may be a pipeline: the commands then run with the rest of it."""
    entry = {
        **{_field_name(k): v for k, v in fields.items()},
        "reason": reason,
        "source_id": source_id,
    }
    pipe = client if hasattr(client, "execute") else client.pipeline()
    pipe.xadd(keys.dead, entry)
    pipe.hincrby(keys.stats, "dead_letters", 1)
    if pipe is not client:
        pipe.execute()
