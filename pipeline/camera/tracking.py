"""Tracking people, one tracker instance per camera.

``yolo``: person boxes from Ultralytics YOLO (``pipeline.camera.detection``: any weights it loads, the
detector shared by the cameras of a process and batched across them), gated by motion
(``pipeline.camera.motion``), tracked with Ultralytics' ByteTrack or BoT-SORT. ``motion``: OpenCV background
subtraction keeping person-shaped blobs, tracked with ByteTrack: for static cameras and synthetic scenes without
weights.

Ultralytics numbers tracks with one counter shared by every tracker in a process (``BaseTrack._count``),
and a tracker reset sets it back to 0. Each camera therefore maps Ultralytics' ids to its own sequence
1, 2, 3, ... in order of first appearance, so ids never collide within or across cameras.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from pipeline.camera.detection import PERSON, DetectorError, YoloDetector, load_yolo
from pipeline.camera.motion import GateOptions, MotionGate
from pipeline.camera.runtimes import resolve_weights
from pipeline.types import Frame, TrackedBox

__all__ = ["PERSON", "DetectorError", "DetectorOptions", "MotionTracker", "Tracks", "YoloTracker", "load_yolo"]

log = logging.getLogger(__name__)

Detect = Callable[[np.ndarray], np.ndarray]
"""One RGB picture -> its person boxes ``float32[N,6]``: a ``DetectionService.detect`` or a detector's own."""


@dataclass(frozen=True)
class DetectorOptions:
    weights: str = "motion"  # "motion", or a path Ultralytics can load
    runtime: str = "auto"  # auto, as-is, openvino, onnx, engine (pipeline.camera.runtimes)
    conf: float = 0.3
    iou: float = 0.5
    imgsz: int = 640
    device: str = "cpu"
    half: bool = False
    every: int = 1  # run the detector on every k-th frame (others give no boxes)
    gate: float = 0.002  # least fraction of the picture that moved for the detector to run (0: always run)
    gate_refresh: float = 0.5  # with tracks open, detect at least this often (seconds) even without motion
    gate_idle: float = 2.0  # with no track open, detect at least this often (seconds): finds people sitting still
    batch: int = 8  # most cameras' frames detected at once by the process's shared detector
    tracker: str = "bytetrack.yaml"  # or botsort.yaml
    min_area: int = 400  # motion: smallest blob, pixels
    min_aspect: float = 1.1  # motion: person-shaped blobs are taller than wide (h / w)
    max_aspect: float = 5.0

    def detector(self, cache_dir: str | Path | None = None) -> YoloDetector:
        """A YOLO detector of these options, its weights exported for ``runtime`` into ``cache_dir`` if need be."""
        weights = resolve_weights(
            self.weights, self.runtime, imgsz=self.imgsz, device=self.device, half=self.half, cache_dir=cache_dir
        )
        return YoloDetector(weights, self.conf, self.iou, self.imgsz, self.device, self.half)


class CameraTracker(Protocol):
    def update(self, frame: Frame) -> list[TrackedBox]: ...


class _IdSpace:
    """Ultralytics track ids -> this camera's own 1, 2, 3, ..."""

    def __init__(self) -> None:
        self.mapping: dict[int, int] = {}

    def __call__(self, raw: int) -> int:
        if raw not in self.mapping:
            self.mapping[raw] = len(self.mapping) + 1
        return self.mapping[raw]


def _tracker_args(name: str):
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    return IterableSimpleNamespace(**YAML.load(check_yaml(name)))


class Tracks:
    """Ultralytics' ByteTrack or BoT-SORT (``tracker``: its YAML) for one camera, fed boxes from any detector;
    the same trackers and settings ``YOLO.track`` uses."""

    def __init__(self, camera_id: str, tracker: str = "bytetrack.yaml") -> None:
        from ultralytics.trackers.track import TRACKER_MAP

        args = _tracker_args(tracker)
        self.camera_id = camera_id
        self.tracker = TRACKER_MAP[args.tracker_type](args=args)
        self.ids = _IdSpace()

    @property
    def active(self) -> bool:
        """Whether any track is being followed now."""
        return bool(self.tracker.tracked_stracks)

    @property
    def searching(self) -> bool:
        """Whether a track the detector missed is being looked for (lost, not yet given up)."""
        return bool(self.tracker.lost_stracks)

    def update(self, frame: Frame, boxes: np.ndarray) -> list[TrackedBox]:
        """Advance the tracks by one frame with its boxes ``float32[N,6]`` (x1, y1, x2, y2, confidence, class)."""
        from ultralytics.engine.results import Boxes

        tracks = self.tracker.update(Boxes(boxes, frame.image.shape[:2]), frame.image)
        return [
            TrackedBox(
                self.camera_id, self.ids(int(t[4])), tuple(float(v) for v in t[:4]), float(t[5]), frame.timestamp
            )
            for t in tracks
        ]


class YoloTracker:
    """YOLO boxes -> motion gate and detect-every-k -> ByteTrack / BoT-SORT, for one camera. ``detect``: the
    process's shared ``DetectionService.detect``; by default the camera loads its own detector.

    ``counts``: ``detected`` frames, and those skipped by the motion gate (``gated``) or by ``every``, and frames the detector failed on (``errors``, skipped)."""

    def __init__(
        self, camera_id: str, options: DetectorOptions, detect: Detect | None = None, max_errors: int = 25
    ) -> None:
        """``max_errors``: frames in a row the detector may fail on (each skipped, counted ``errors``) before the
        camera stops with the error."""
        self.camera_id, self.options = camera_id, options
        self.detect = detect or _own_detect(options)
        self.tracks = Tracks(camera_id, options.tracker)
        self.gate = MotionGate(
            GateOptions(threshold=options.gate, refresh=options.gate_refresh, idle=options.gate_idle)
        )
        self.frames = 0
        self.counts: collections.Counter[str] = collections.Counter()
        self.failed_in_a_row, self.max_errors = 0, max_errors

    @property
    def ids(self) -> _IdSpace:
        return self.tracks.ids

    def update(self, frame: Frame) -> list[TrackedBox]:
        self.frames += 1
        if (self.frames - 1) % self.options.every:
            self.counts["skipped_every"] += 1
            return []
        if not self.gate.wants(frame.image, frame.timestamp, self.tracks.active, self.tracks.searching):
            self.counts["gated"] += 1
            return []
        try:
            boxes = self.detect(frame.image)
        except DetectorError as e:  # one frame the detector could not take: skipped; many in a row end the camera
            self.counts["errors"] += 1
            self.failed_in_a_row += 1
            if self.failed_in_a_row >= self.max_errors:
                raise DetectorError(f"{e} ({self.failed_in_a_row} frames in a row)") from e
            if self.failed_in_a_row == 1:
                log.warning("camera %s: frame %d not detected, skipped: %s", self.camera_id, frame.index, e)
            return []
        self.failed_in_a_row = 0
        self.counts["detected"] += 1
        return self.tracks.update(frame, boxes)


def _own_detect(options: DetectorOptions) -> Detect:
    detector = options.detector()
    return lambda image: detector.detect([image])[0]


class MotionTracker:
    """Background subtraction (MOG2) -> person-shaped blobs -> ByteTrack, for one camera."""

    def __init__(self, camera_id: str, options: DetectorOptions) -> None:
        self.camera_id, self.options = camera_id, options
        self.subtractor = cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25, detectShadows=True)
        self.tracks = Tracks(camera_id, "bytetrack.yaml")
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    @property
    def ids(self) -> _IdSpace:
        return self.tracks.ids

    def detect(self, image: np.ndarray) -> np.ndarray:
        """``float32[N,6]``: x1, y1, x2, y2, confidence, class of person-shaped moving blobs."""
        o = self.options
        mask = self.subtractor.apply(image)
        mask = np.where(mask == 255, 255, 0).astype(np.uint8)  # drop shadows (127)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.kernel, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        rows = []
        for c in contours:
            x, y, w, h = cv2.boundingRect(c)
            if w * h >= o.min_area and o.min_aspect <= h / max(w, 1) <= o.max_aspect:
                fill = cv2.contourArea(c) / (w * h)
                rows.append([x, y, x + w, y + h, min(0.99, 0.5 + fill / 2), PERSON])
        return np.array(rows, np.float32).reshape(-1, 6)

    def update(self, frame: Frame) -> list[TrackedBox]:
        return self.tracks.update(frame, self.detect(frame.image))


def make_tracker(camera_id: str, options: DetectorOptions, detect: Detect | None = None) -> CameraTracker:
    """The camera's tracker: ``MotionTracker`` for ``motion``, else ``YoloTracker`` (detecting with ``detect``,
    by default a detector of its own)."""
    if options.weights == "motion":
        return MotionTracker(camera_id, options)
    return YoloTracker(camera_id, options, detect)
