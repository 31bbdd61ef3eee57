"""The embedding service: tracklets from every camera of a process, batched into one embedder.

A bounded queue decouples it from the camera threads, so a slow embedder never stalls detection: when
the queue is full the oldest waiting tracklet is dropped and counted (``counts["dropped"]``), the same
policy as a live camera's frame buffer.

Embedded tracklets wait in a bounded backlog (``pipeline.bus.backlog``) until they are published: while Redis
is unreachable the service goes on embedding, keeps up to ``backlog`` tracklets in memory, retries with a
bounded backoff and publishes them in order once Redis is back; when the backlog is full the oldest is
dropped and counted (``counts["backlog_dropped"]``, reported to ``report_drops`` once Redis is back). A
tracklet the publisher refuses (a field over its size limit) is logged and counted (``counts["refused"]``).
What Redis still cannot take when the service stops goes to ``spool`` (``pipeline.bus.spool``: on disk, published
by the next start; ``counts["spooled"]``), or, without one or when it fails, is counted ``unpublished``.

Watermarks. Each camera's stages report their progress (``progress``): the time of the frame they last
processed, every tracklet closed at or before it handed over. The service publishes, per camera, that time, or,
when it still holds a tracklet of the camera (queued, or embedded and not yet published), just below the
earliest closing time among them: the camera's watermark, at or below which every tracklet of it is on the
stream. The matcher links in stream order up to the lowest watermark (``pipeline.matcher.reorder``). They are
written every ``WATERMARK_EVERY`` seconds and once more at the end.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from models.embedder import Embedder
from pipeline.bus.backlog import Backlog, Retry
from pipeline.turns import Turns
from pipeline.types import Tracklet, TrackletEmbedding, closing_time

log = logging.getLogger(__name__)

WATERMARK_EVERY = 0.05  # seconds between writes of the cameras' watermarks (a small HSET each camera)


def thumbnail(tracklet: Tracklet, attention: np.ndarray, quality: int = 85) -> bytes:
    """JPEG of the crop the network weighted most: it picks the best view of the person."""
    crop = tracklet.crops[int(np.argmax(attention))]
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode a thumbnail")
    return jpeg.tobytes()


def decode_image(data: bytes) -> np.ndarray | None:
    """An encoded image (JPEG, PNG, ...) as uint8[H,W,3] RGB, or None when it is not one."""
    array = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(array, cv2.IMREAD_COLOR) if array.size else None
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def embed_images(embedder: Embedder, images: list[np.ndarray]) -> np.ndarray:
    """One feature for crops of one person (any sizes), embedded together as one tracklet."""
    spec = embedder.spec.input
    clip = np.stack([cv2.resize(i, (spec.width, spec.height), interpolation=cv2.INTER_AREA) for i in images])
    features, _ = embedder.embed(clip[None])
    return features[0]


def embed_batch(embedder: Embedder, tracklets: list[Tracklet], site: str) -> list[TrackletEmbedding]:
    features, attention = embedder.embed(np.stack([t.crops for t in tracklets]))
    return [
        TrackletEmbedding(
            site,
            t.camera_id,
            t.track_id,
            t.seq,
            t.t_start,
            t.t_end,
            f,
            a,
            thumbnail(t, a),
            embedder.spec.model_id,
            t.path,
            t.t_closed,
        )
        for t, f, a in zip(tracklets, features, attention, strict=True)
    ]


class EmbeddingService:
    """``submit`` tracklets from any thread; a worker thread embeds them in batches of up to ``max_batch``,
    waiting at most ``max_wait`` seconds for a batch to fill, and hands each result to ``publish`` in order,
    through a backlog of at most ``backlog`` results that rides out a Redis outage (module docstring)."""

    def __init__(
        self,
        embedder: Embedder,
        site: str,
        publish: Callable[[TrackletEmbedding], object],
        max_batch: int = 32,
        max_wait: float = 0.05,
        capacity: int = 256,
        backlog: int = 5000,
        retry: Retry | None = None,
        report_drops: Callable[[int], object] | None = None,
        turns: Turns | None = None,
        publish_watermarks: Callable[[dict[str, float]], object] | None = None,
        spool: Callable[[list[TrackletEmbedding]], object] | None = None,
    ) -> None:
        """``publish_watermarks``: writes the cameras' watermarks (``pipeline.bus.publisher.write_watermarks``); None: none are.
        ``spool``: keeps what is still unpublished at the stop, oldest first, and returns where (module docstring)."""
        self.embedder, self.site, self.publish = embedder, site, publish
        self.spool = spool
        self.publish_watermarks = publish_watermarks
        self._progress: dict[str, float] = {}  # camera -> stream time before which it closes no more tracklets
        self._next_marks = 0.0
        self.turns = turns or Turns()
        self.max_batch, self.max_wait, self.capacity = max_batch, max_wait, capacity
        self.queue: collections.deque[Tracklet] = collections.deque()
        self.backlog: Backlog[TrackletEmbedding] = Backlog(backlog, retry)
        self.report_drops = report_drops
        self.cond = threading.Condition()
        self.counts: collections.Counter[str] = collections.Counter()
        self._stop = False
        self._stop_by = float("inf")
        self._thread = threading.Thread(target=self._run, name="embedding-service", daemon=True)

    def start(self) -> EmbeddingService:
        self._thread.start()
        return self

    def submit(self, tracklet: Tracklet) -> None:
        with self.cond:
            if len(self.queue) >= self.capacity:
                self.queue.popleft()
                self.counts["dropped"] += 1
            self.queue.append(tracklet)
            self.counts["submitted"] += 1
            self.cond.notify_all()

    def progress(self, camera: str, at: float) -> None:
        """Camera ``camera`` has handed over every tracklet it closed at or before stream time ``at`` (``inf``: it
        ended)."""
        with self.cond:
            self._progress[camera] = at

    def watermarks(self) -> dict[str, float]:
        """Per camera that reported progress: the stream time at or below which all its tracklets are published."""
        with self.cond:
            marks = dict(self._progress)
            held = [(t.camera_id, closing_time(t)) for t in self.queue]
        held += [(t.camera_id, closing_time(t)) for t in list(self.backlog.items)]
        for camera, closed in held:
            if camera in marks and closed <= marks[camera]:
                marks[camera] = math.nextafter(closed, -math.inf)
        return marks

    def _write_watermarks(self, force: bool = False) -> None:
        """Publish the watermarks (every ``WATERMARK_EVERY`` seconds, or now with ``force``); a failure is retried
        with the next."""
        now = time.monotonic()
        if self.publish_watermarks is None or (now < self._next_marks and not force):
            return
        self._next_marks = now + WATERMARK_EVERY
        marks = self.watermarks()
        if not marks:
            return
        try:
            self.publish_watermarks(marks)
        except Exception as e:  # Redis down: the next write carries newer ones
            log.debug("watermarks not written yet: %s", e)

    def stop(self, timeout: float = 60.0) -> None:
        """Embed what is queued and publish the backlog (trying for up to ``timeout`` seconds while Redis is
        unreachable), then stop; what is still unpublished then is spooled, else logged and counted ``unpublished``."""
        with self.cond:
            self._stop = True
            self._stop_by = time.monotonic() + timeout
            self.cond.notify_all()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout + 5.0)

    def _next_batch(self) -> list[Tracklet]:
        with self.cond:
            if not self.queue and not self._stop:
                idle = WATERMARK_EVERY if self.publish_watermarks is not None else 0.5  # cameras move on meanwhile
                self.cond.wait(0.2 if self.backlog else idle)
            if not self.queue:
                return []
            deadline = time.monotonic() + self.max_wait
            while len(self.queue) < self.max_batch and not self._stop and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            return [self.queue.popleft() for _ in range(min(self.max_batch, len(self.queue)))]

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                self._embed(batch)
            published = self._flush()
            self._write_watermarks()
            if self._stop and not batch and not self.queue:
                if published:
                    self._write_watermarks(force=True)
                    return
                if time.monotonic() >= self._stop_by:
                    self._keep_unpublished()
                    return
                with self.cond:
                    self.cond.wait(0.2)

    def _keep_unpublished(self) -> None:
        """At the stop, with Redis still unreachable: spool the backlog, else count it lost (``unpublished``)."""
        waiting = list(self.backlog.items)
        if self.spool is not None:
            try:
                where = self.spool(waiting)
            except OSError as e:
                log.error("the waiting tracklets could not be spooled (%s)", e)
            else:
                self.backlog.items.clear()
                self.counts["spooled"] += len(waiting)
                log.warning(
                    "%d embedded tracklets not published (Redis unreachable at the stop): spooled to %s, published "
                    "by the next start",
                    len(waiting),
                    where,
                )
                return
        self.counts["unpublished"] += len(waiting)
        log.error("%d embedded tracklets not published: Redis still unreachable at stop", len(waiting))

    def _embed(self, batch: list[Tracklet]) -> None:
        try:
            with self.turns.first():
                results = embed_batch(self.embedder, batch, self.site)
        except Exception:  # one bad batch must not end the service: log, count, go on
            log.exception("embedding a batch of %d tracklets failed", len(batch))
            self.counts["failed"] += len(batch)
            return
        for result in results:
            self.backlog.add(result)
        self.counts["batches"] += 1

    def _publish_one(self, result: TrackletEmbedding) -> None:
        self.publish(result)
        self.counts["published"] += 1

    def _flush(self) -> bool:
        """Publish the backlog in order (when its backoff allows); True when nothing is left waiting."""
        done = self.backlog.flush(self._publish_one)
        self.counts["backlog_dropped"] = self.backlog.counts["dropped"]
        self.counts["refused"] = self.backlog.counts["refused"]
        if done and self.backlog.unreported_drops and self.report_drops is not None:
            try:
                self.report_drops(self.backlog.unreported_drops)
                self.backlog.unreported_drops = 0
            except Exception as e:  # reported with a later flush
                log.debug("dropped-tracklet count not reported yet: %s", e)
        return done
