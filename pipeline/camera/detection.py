"""Detecting people with YOLO, and sharing one detector among the cameras of a process.

``YoloDetector`` runs Ultralytics YOLO (any weights it loads: .pt, .onnx, an OpenVINO folder, a TensorRT
.engine) on a list of pictures at once, person class only. ``DetectionService`` lets every camera thread of a
process call one detector: each call waits while the detector runs, and the requests that arrived meanwhile
go in the next batch (up to ``max_batch``), so under load the frames the cameras are waiting on are detected together,
and a lone request never waits for a batch to fill (``max_wait`` 0). One model in memory for all the cameras,
and one inference at a time on the CPU's cores instead of several fighting over them.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from crosscam.errors import CrosscamError
from pipeline.turns import Turns

log = logging.getLogger(__name__)

PERSON = 0  # COCO class id


class DetectorError(CrosscamError):
    """Detector weights that cannot be found or loaded."""


def load_yolo(weights: str):
    """Ultralytics YOLO for detection; offline, a missing file is a clear error, never a download attempt."""
    path = Path(weights)
    if not path.exists():
        raise DetectorError(
            f"{weights}: detector weights not found. Pass --detector with a local .pt, .onnx, OpenVINO folder or "
            "TensorRT .engine file (e.g. an export of yolov8n.pt), or use --detector motion for static cameras"
        )
    try:
        from ultralytics import YOLO

        return YOLO(str(path), task="detect")
    except Exception as e:  # Ultralytics raises many types for unreadable weights
        raise DetectorError(f"{weights}: Ultralytics cannot load these weights ({type(e).__name__}: {e})") from e


class YoloDetector:
    """``detect(images)``: person boxes ``float32[N,6]`` (x1, y1, x2, y2, confidence, class) for each RGB picture."""

    def __init__(
        self,
        weights: str,
        conf: float = 0.3,
        iou: float = 0.5,
        imgsz: int = 640,
        device: str = "cpu",
        half: bool = False,
    ) -> None:
        self.weights = weights
        self.model = load_yolo(weights)
        self.options = {"conf": conf, "iou": iou, "imgsz": imgsz, "device": device, "classes": [PERSON]}
        if half:  # Ultralytics warns when `half` is passed at all
            self.options["half"] = True
        try:  # Ultralytics loads weights lazily: one blank picture surfaces a bad file now, and warms up
            self.detect([np.zeros((64, 64, 3), np.uint8)])
        except Exception as e:
            raise DetectorError(f"{weights}: Ultralytics cannot load these weights ({type(e).__name__}: {e})") from e

    def detect(self, images: list[np.ndarray]) -> list[np.ndarray]:
        bgr = [cv2.cvtColor(i, cv2.COLOR_RGB2BGR) for i in images]
        results = self.model.predict(bgr, verbose=False, **self.options)
        return [r.boxes.data.cpu().numpy().astype(np.float32).reshape(-1, 6) for r in results]


@dataclass
class _Request:
    image: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    boxes: np.ndarray | None = None
    error: BaseException | None = None


class DetectionService:
    """One detector shared by the camera threads of a process (module docstring). ``detect(image)`` from any
    thread; ``counts``: ``batches``, ``images`` and the largest batch run (``largest``)."""

    def __init__(
        self, detector: YoloDetector, max_batch: int = 8, max_wait: float = 0.0, turns: Turns | None = None
    ) -> None:
        """``turns``: shared with the process's embedding service, which then goes first (``pipeline.turns``)."""
        self.detector, self.max_batch, self.max_wait = detector, max_batch, max_wait
        self.turns = turns
        self.pending: collections.deque[_Request] = collections.deque()
        self.cond = threading.Condition()
        self.counts: collections.Counter[str] = collections.Counter()
        self.thread: threading.Thread | None = None
        self.stopped = False

    def detect(self, image: np.ndarray) -> np.ndarray:
        """The person boxes of one RGB picture, detected in the next batch. A detector that fails on this picture
        raises ``DetectorError`` here, in this camera's thread only."""
        request = _Request(image)
        with self.cond:
            if self.stopped:
                raise DetectorError(f"{self.detector.weights}: the detection service has stopped")
            if self.thread is None or not self.thread.is_alive():  # first use, or the thread died: (re)start it
                self.thread = threading.Thread(target=self._run, name="detector", daemon=True)
                self.thread.start()
            self.pending.append(request)
            self.cond.notify_all()
        while not request.done.wait(1.0):
            with self.cond:
                if not (self.thread and self.thread.is_alive()) and not request.done.is_set():
                    raise DetectorError(f"{self.detector.weights}: the detection service stopped unexpectedly")
        if request.error is not None:
            raise DetectorError(
                f"{self.detector.weights}: detection failed ({type(request.error).__name__}: {request.error})"
            ) from request.error
        return request.boxes

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join(10)

    def _take(self) -> list[_Request]:
        with self.cond:
            while not self.pending and not self.stopped:
                self.cond.wait()
            deadline = time.monotonic() + self.max_wait
            while len(self.pending) < self.max_batch and not self.stopped and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            n = min(self.max_batch, len(self.pending))
            return [self.pending.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return  # stopped, nothing left
            self.counts["batches"] += 1
            self.counts["images"] += len(batch)
            self.counts["largest"] = max(self.counts["largest"], len(batch))
            try:
                if self.turns is not None:
                    self.turns.after()
                self._detect(batch)
            finally:  # whatever happened, no camera waits forever
                for r in batch:
                    if r.boxes is None and r.error is None:
                        r.error = RuntimeError("no result for this picture")
                    r.done.set()

    def _detect(self, batch: list[_Request]) -> None:
        """Boxes (or an error) for each request; when a batch fails, each picture is tried alone, so only the
        camera whose picture fails gets the error."""
        try:
            boxes = self.detector.detect([r.image for r in batch])
            if len(boxes) != len(batch):
                raise RuntimeError(f"{len(boxes)} results for {len(batch)} pictures")
        except Exception as e:
            if len(batch) == 1:
                batch[0].error = e
                return
            log.warning("detecting a batch of %d failed (%s); trying each picture alone", len(batch), e)
            for r in batch:
                self._detect([r])
            return
        for r, b in zip(batch, boxes, strict=True):
            r.boxes = b
