"""The embedding service: tracklets from every camera of a process, batched into one embedder.

A bounded queue decouples it from the camera threads, so a slow embedder never stalls detection: when
the queue is full the oldest waiting tracklet is dropped and counted (``counts["dropped"]``), the same
policy as a live camera's frame buffer.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from models.embedder import Embedder
from pipeline.types import Tracklet, TrackletEmbedding

log = logging.getLogger(__name__)


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
            site, t.camera_id, t.track_id, t.seq, t.t_start, t.t_end, f, a, thumbnail(t, a), embedder.spec.model_id
        )
        for t, f, a in zip(tracklets, features, attention, strict=True)
    ]


class EmbeddingService:
    """``submit`` tracklets from any thread; a worker thread embeds them in batches of up to ``max_batch``,
    waiting at most ``max_wait`` seconds for a batch to fill, and hands each result to ``publish``."""

    def __init__(
        self,
        embedder: Embedder,
        site: str,
        publish: Callable[[TrackletEmbedding], object],
        max_batch: int = 32,
        max_wait: float = 0.05,
        capacity: int = 256,
    ) -> None:
        self.embedder, self.site, self.publish = embedder, site, publish
        self.max_batch, self.max_wait, self.capacity = max_batch, max_wait, capacity
        self.queue: collections.deque[Tracklet] = collections.deque()
        self.cond = threading.Condition()
        self.counts: collections.Counter[str] = collections.Counter()
        self._stop = False
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

    def stop(self, timeout: float = 60.0) -> None:
        """Embed what is queued, then stop."""
        with self.cond:
            self._stop = True
            self.cond.notify_all()
        self._thread.join(timeout)

    def _next_batch(self) -> list[Tracklet]:
        with self.cond:
            while not self.queue and not self._stop:
                self.cond.wait(0.5)
            deadline = time.monotonic() + self.max_wait
            while len(self.queue) < self.max_batch and not self._stop and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            return [self.queue.popleft() for _ in range(min(self.max_batch, len(self.queue)))]

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                if self._stop:
                    return
                continue
            try:
                for result in embed_batch(self.embedder, batch, self.site):
                    self.publish(result)
                    self.counts["published"] += 1
                self.counts["batches"] += 1
            except Exception:  # one bad batch must not end the service: log, count, go on
                log.exception("embedding or publishing a batch of %d tracklets failed", len(batch))
                self.counts["failed"] += len(batch)
