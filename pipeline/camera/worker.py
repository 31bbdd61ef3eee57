"""A camera worker: source -> detector + tracker -> tracklet buffer -> a tracklet callback.

``CameraStages`` turns frames into closed tracklets; ``CameraWorker`` feeds it from a live source and
reports the camera's status. Where the tracklets go is the caller's choice (the site hands them to the
embedding service, ``pipeline.site``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from crosscam.redact import redact
from pipeline.camera.sources import Source
from pipeline.camera.tracking import CameraTracker
from pipeline.camera.tracklets import TrackletBuffer
from pipeline.types import Frame, Tracklet

log = logging.getLogger(__name__)

StatusCallback = Callable[..., None]
"""``(camera_id, state, error, **counters)``: ``Publisher.camera_status``."""


@dataclass
class WorkerReport:
    camera_id: str
    frames: int = 0
    seconds: float = 0.0
    boxes: int = 0
    tracklets: int = 0
    final_state: str = ""
    error: str = ""  # the source's last error, credentials redacted
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        """The report as plain values (what ``crosscam worker`` and ``run`` print as JSON)."""
        return {
            "camera": self.camera_id,
            "frames": self.frames,
            "fps": self.fps,
            "boxes": self.boxes,
            "tracklets": self.tracklets,
            "final_state": self.final_state,
            "error": self.error,
            "counts": self.counts,
        }


class CameraStages:
    """One camera's stages: ``process(frame)`` tracks people and hands each tracklet that closes to
    ``on_tracklet``; ``finish()`` closes the tracklets still open. Counts go to ``report``. After each frame,
    ``on_progress(camera, t)`` hears its time: every tracklet closed at or before it has been handed over (``inf``
    once finished); the camera's watermark, by which the matcher orders tracklets (``pipeline.embedding``)."""

    def __init__(
        self,
        camera_id: str,
        tracker: CameraTracker,
        buffer: TrackletBuffer,
        on_tracklet: Callable[[Tracklet], None],
        on_progress: Callable[[str, float], None] | None = None,
    ) -> None:
        self.camera_id, self.tracker, self.buffer, self.on_tracklet = camera_id, tracker, buffer, on_tracklet
        self.on_progress = on_progress
        self.report = WorkerReport(camera_id)

    def process(self, frame: Frame) -> None:
        boxes = self.tracker.update(frame)
        self.report.frames += 1
        self.report.boxes += len(boxes)
        for tracklet in self.buffer.add(frame, boxes):
            self._hand_off(tracklet)
        if self.on_progress is not None:
            self.on_progress(self.camera_id, frame.timestamp)

    def finish(self) -> None:
        for tracklet in self.buffer.flush():
            self._hand_off(tracklet)
        if self.on_progress is not None:
            self.on_progress(self.camera_id, float("inf"))

    def _hand_off(self, tracklet: Tracklet) -> None:
        self.on_tracklet(tracklet)
        self.report.tracklets += 1


class CameraWorker:
    """Runs one camera until its source ends, ``max_seconds`` pass or ``stop`` is set (also while its source
    reconnects); reports its status through ``on_status`` every ``status_every`` seconds and when it stops."""

    def __init__(
        self,
        source: Source,
        stages: CameraStages,
        on_status: StatusCallback | None = None,
        status_every: float = 2.0,
    ) -> None:
        self.source, self.stages, self.on_status, self.status_every = source, stages, on_status, status_every
        self.camera_id = stages.camera_id
        self.report = stages.report
        self.failure = ""  # why the camera's own stages stopped it, if they did
        self._status_failed = False

    def _status(self) -> None:
        """Report the camera's status; a report that fails (Redis down, ...) is logged once and skipped: the
        next one carries the newer status, and the camera goes on."""
        if self.on_status is None:
            return
        r = self.report
        try:
            self.on_status(
                self.camera_id,
                "failed" if self.failure else self.source.state.value,
                self.failure or redact(self.source.error),
                frames=r.frames,
                fps=round(r.fps, 2),
                tracklets=r.tracklets,
                dropped_frames=self.source.buffer.dropped,
            )
        except Exception as e:
            if not self._status_failed:
                log.warning("camera %s: status not reported, will retry: %s", self.camera_id, redact(e))
            self._status_failed = True
        else:
            self._status_failed = False

    def run(self, max_seconds: float | None = None, stop: threading.Event | None = None) -> WorkerReport:
        """Process the source's frames until it ends, ``max_seconds`` pass or ``stop`` is set; then stop the
        source (``stopped``), close the tracklets still open and hand them over, and report the final status.
        An error in the camera's stages (a detector that keeps failing, ...) stops this camera only: it ends
        ``failed`` with the error, logged and in its status and report."""
        start = last_status = time.monotonic()
        deadline = math.inf if max_seconds is None else start + max_seconds
        r = self.report

        def done() -> bool:
            return (stop is not None and stop.is_set()) or time.monotonic() >= deadline

        try:
            for frame in self.source.frames(until=done):
                self.stages.process(frame)
                now = time.monotonic()
                r.seconds = now - start
                if now - last_status >= self.status_every:
                    self._status()
                    last_status = now
                if done():
                    break
        except Exception as e:
            self.failure = redact(f"camera {self.camera_id}: {type(e).__name__}: {e}")
            log.error("%s; the camera stops (the others go on)", self.failure)
        finally:
            self.source.stop()
            self.stages.finish()
            r.seconds = time.monotonic() - start
            r.final_state = "failed" if self.failure else self.source.state.value
            r.error = self.failure or redact(self.source.error)
            r.counts = (
                dict(self.stages.buffer.counts)
                | {f"detector_{k}": v for k, v in getattr(self.stages.tracker, "counts", {}).items()}
                | {f"source_{k}": v for k, v in self.source.counts.items()}
            )
            self._status()
        return r
