"""Publishing to a site's Redis: tracklet records, camera status and dead letters (keys: ``pipeline.keys``).

Credentials never reach Redis: a camera's status error is redacted (``crosscam.redact``) before it is stored
and again when it is read. A status write that fails (Redis down or restarting) is skipped and kept: the
camera's latest status is written with the next one that succeeds; it never raises into the camera's threads.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable

import redis

from crosscam.redact import redact
from pipeline.bus import records
from pipeline.bus.connect import Client, master_of, wait_replicas
from pipeline.ids import is_camera_id
from pipeline.keys import Keys, shown, text
from pipeline.types import TrackletEmbedding

log = logging.getLogger(__name__)

DEFAULT_MAXLEN = 100_000
DEAD_MAXLEN = 10_000
"""Entries of the dead-letter stream kept (approximately: ``MAXLEN ~``); a dead letter is never larger than a
valid record (``records.bounded``), so the stream stays below about 3 GB even when every record is at its
limits, and about 200 MB for ordinary records."""


class Publisher:
    """Writes a site's tracklets and camera status to Redis."""

    def __init__(
        self, client: Client, keys: Keys, maxlen: int = DEFAULT_MAXLEN, replicas: int = 0, replica_timeout: float = 1.0
    ) -> None:
        """``replicas``: a record counts as published once that many replicas hold it (``wait_replicas``)."""
        self.client, self.keys, self.maxlen = client, keys, maxlen
        self.replicas, self.replica_timeout = replicas, replica_timeout
        self.counts: collections.Counter[str] = collections.Counter()
        self._unsent: dict[str, tuple[str, str, dict[str, float]]] = {}  # camera -> its latest failed status
        self._status_down = False
        self._lock = threading.Lock()  # cameras report from their own threads

    def publish(self, tracklet: TrackletEmbedding) -> str:
        """Append one tracklet record; returns its stream id. The record and the ``published`` count are one
        transaction, so a retry after a failure never counts twice. A tracklet with a field over its size
        limit raises ``records.RecordTooLarge`` naming the field and the limit, and is counted ``refused`` (here and
        in the site's ``stats``). With ``replicas``, returns once they hold it and raises ``ReplicationError`` (a
        ``ConnectionError``: publish it again) when they do not in time."""
        try:
            fields = records.encode(tracklet)
        except records.RecordTooLarge as e:
            self.counts["refused"] += 1
            with contextlib.suppress(redis.RedisError):  # the site's count, when Redis answers
                self.client.hincrby(self.keys.stats, "refused", 1)
            raise records.RecordTooLarge(f"tracklet {tracklet.tracklet_id} not published: {e}") from None
        node = master_of(self.client, self.keys.stats) if self.replicas else None  # pinned: see wait_replicas
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.keys.tracklets, fields, maxlen=self.maxlen, approximate=True)
        pipe.hincrby(self.keys.stats, "published", 1)
        pipe.zadd(self.keys.tracks, {tracklet.camera_id: tracklet.track_id}, gt=True)  # see ``last_track``
        entry, *_ = pipe.execute()
        if node is not None:
            wait_replicas(node, self.keys.stats, self.replicas, self.replica_timeout)
        if self._unsent:
            self._send_unsent()
        return text(entry)

    def count(self, name: str, amount: int) -> None:
        """Add ``amount`` to the site counter ``name`` (``stats`` hash)."""
        self.client.hincrby(self.keys.stats, name, amount)

    def camera_status(self, camera_id: str, state: str, error: str = "", **counters: float) -> None:
        """Record a camera's state (``connecting``, ``streaming``, ...) with a heartbeat and counters; ``error``
        is stored with credentials redacted. When Redis cannot be reached the status is kept (the latest per
        camera) and written with the next status that gets through; this never raises for it."""
        with self._lock:
            self._unsent.pop(camera_id, None)
            try:
                self._write_status(camera_id, state, error, counters)
            except redis.RedisError as e:
                self._unsent[camera_id] = (state, error, counters)
                if not self._status_down:
                    log.warning("camera status not written, kept for later (Redis: %s)", redact(e))
                self._status_down = True
                return
        self._send_unsent()

    def _send_unsent(self) -> None:
        """Write the statuses kept while Redis was unreachable (the latest of each camera)."""
        with self._lock:
            for camera, (s, err, c) in list(self._unsent.items()):
                try:
                    self._write_status(camera, s, err, c)
                except redis.RedisError:
                    self._status_down = True
                    return
                self._unsent.pop(camera, None)
            if self._status_down:
                log.info("camera status written again")
            self._status_down = False

    def _write_status(self, camera_id: str, state: str, error: str, counters: dict[str, float]) -> None:
        now = time.time()
        key = self.keys.camera(camera_id)
        previous = self.client.hget(key, "state")
        fields = {
            "state": state,
            "heartbeat": repr(now),
            "error": redact(error),
            **{k: repr(v) for k, v in counters.items()},
        }
        if previous is None or text(previous) != state:
            fields["since"] = repr(now)
        pipe = self.client.pipeline()
        pipe.sadd(self.keys.cameras, camera_id)
        pipe.hset(key, mapping=fields)
        pipe.execute()


def write_watermarks(client: Client, keys: Keys, marks: dict[str, float]) -> None:
    """Each camera's watermark (``pipeline.embedding``) into its status hash, field ``watermark`` (stream seconds;
    ``inf`` once the camera has ended)."""
    pipe = client.pipeline(transaction=False)
    for camera, mark in marks.items():
        pipe.sadd(keys.cameras, camera)
        pipe.hset(keys.camera(camera), "watermark", repr(float(mark)))
    pipe.execute()


def _no_report(problem: str) -> None:
    pass


def read_watermarks(client: Client, keys: Keys, bad: Callable[[str], None] = _no_report) -> dict[str, float]:
    """The watermarks of the site's cameras that publish one. Workers write these keys, so what does not hold up
    is left out and reported to ``bad`` (naming the key and the value): a camera id that is not one, a key of
    another type, a watermark that is not ``inf`` (the camera ended), ``-inf`` (it is there and has handed over
    nothing yet) or seconds as a record's times are (``records.SECONDS``, from ``-1``: a watermark lies just below
    a closing time, at or above 0, to ``records.MAX_SECONDS``)."""
    try:
        members = client.smembers(keys.cameras)
    except redis.ResponseError as e:  # a key of another type
        bad(f"{keys.cameras}: unreadable ({e})")
        return {}
    cameras = []
    for member in sorted(members):
        camera = member.decode(errors="backslashreplace") if isinstance(member, bytes) else str(member)
        if is_camera_id(camera):
            cameras.append(camera)
        else:
            bad(f"{keys.cameras}: member {camera[:64]!r} is not a camera id")
    if not cameras:
        return {}
    pipe = client.pipeline(transaction=False)
    for camera in cameras:
        pipe.hget(keys.camera(camera), "watermark")
    out = {}
    for camera, raw in zip(cameras, pipe.execute(raise_on_error=False), strict=True):
        if raw is None:
            continue
        raw = raw.encode() if isinstance(raw, str) else raw
        if isinstance(raw, Exception):
            bad(f"{keys.camera(camera)}: unreadable ({raw})")
        elif raw in (b"inf", b"-inf") or (records.SECONDS.fullmatch(raw) and -1.0 <= float(raw) <= records.MAX_SECONDS):
            out[camera] = float(raw)
        else:
            bad(
                f"{keys.camera(camera)}: watermark {raw[:40]!r} is not inf, -inf or seconds from -1 to "
                f"{records.MAX_SECONDS:.0f}"
            )
    return out


def last_track(client: Client, keys: Keys, camera_id: str) -> int:
    """The highest track id published for ``camera_id`` (0 when none): a worker numbers its tracks after it, so
    a restarted worker does not publish a tracklet id (``camera:track:seq``) the site already holds."""
    score = client.zscore(keys.tracks, camera_id)
    return int(score or 0)


def camera_status(client: Client, keys: Keys, camera_id: str) -> dict[str, str]:
    """A camera's status hash as ``str`` fields (credentials redacted, also from statuses stored before; bytes that
    are not UTF-8 shown as backslash escapes)."""
    return {shown(k): redact(shown(v)) for k, v in client.hgetall(keys.camera(camera_id)).items()}


def dead_letter(client: Client, keys: Keys, source_id: str, fields: dict, reason: str) -> None:
    """Move a record that cannot be processed to the dead-letter stream (trimmed to about ``DEAD_MAXLEN``
    entries), keeping its fields within their size limits: an oversized value is replaced by a note of its size
    (``records.bounded``). ``client`` may be a pipeline: the commands then run with the rest of it."""
    entry = {
        **records.bounded(fields),
        "reason": reason[: records.MAX_TEXT_BYTES * 4],
        "source_id": source_id,
    }
    pipe = client if hasattr(client, "execute") else client.pipeline()
    pipe.xadd(keys.dead, entry, maxlen=DEAD_MAXLEN, approximate=True)
    pipe.hincrby(keys.stats, "dead_letters", 1)
    if pipe is not client:
        pipe.execute()
