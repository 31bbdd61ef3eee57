"""A camera worker: source -> detector + tracker -> tracklet buffer -> embedding service -> Redis."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from pipeline.bus import Publisher
from pipeline.embedding import EmbeddingService
from pipeline.sources import Source, SourceState
from pipeline.tracking import CameraTracker
from pipeline.tracklets import TrackletBuffer

log = logging.getLogger(__name__)


@dataclass
class WorkerReport:
    camera_id: str
    frames: int = 0
    seconds: float = 0.0
    boxes: int = 0
    tracklets: int = 0
    final_state: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class CameraWorker:
    """Runs one camera until its source ends or ``max_seconds`` pass; reports status to Redis."""

    def __init__(
        self,
        source: Source,
        tracker: CameraTracker,
        buffer: TrackletBuffer,
        service: EmbeddingService,
        publisher: Publisher,
        status_every: float = 2.0,
    ) -> None:
        self.source, self.tracker, self.buffer = source, tracker, buffer
        self.service, self.publisher, self.status_every = service, publisher, status_every
        self.camera_id = source.spec.camera_id
        self.report = WorkerReport(self.camera_id)

    def _status(self, state: SourceState | None = None, error: str = "") -> None:
        r = self.report
        self.publisher.camera_status(
            self.camera_id,
            (state or self.source.state).value,
            error or self.source.error,
            frames=r.frames,
            fps=round(r.fps, 2),
            tracklets=r.tracklets,
            dropped_frames=self.source.buffer.dropped,
        )

    def run(self, max_seconds: float | None = None) -> WorkerReport:
        start = last_status = time.monotonic()
        r = self.report
        try:
            for frame in self.source.frames():
                boxes = self.tracker.update(frame)
                r.frames += 1
                r.boxes += len(boxes)
                for tracklet in self.buffer.add(frame, boxes):
                    self.service.submit(tracklet)
                    r.tracklets += 1
                now = time.monotonic()
                r.seconds = now - start
                if now - last_status >= self.status_every:
                    self._status()
                    last_status = now
                if max_seconds is not None and r.seconds >= max_seconds:
                    break
        finally:
            self.source.stop()
            for tracklet in self.buffer.flush():
                self.service.submit(tracklet)
                r.tracklets += 1
            r.seconds = time.monotonic() - start
            r.final_state = self.source.state.value
            r.counts = dict(self.buffer.counts) | {f"source_{k}": v for k, v in self.source.counts.items()}
            self._status()
        return r
