"""Detecting and tracking people, one tracker instance per camera.

``yolo``: Ultralytics YOLO with any weights it loads (.pt, .onnx, OpenVINO folder, TensorRT .engine),
person class only, with ByteTrack or BoT-SORT. ``motion``: OpenCV background subtraction keeping
person-shaped blobs, tracked with ByteTrack: for static cameras and synthetic scenes without weights.

Ultralytics numbers tracks with one counter shared by every tracker in a process (``BaseTrack._count``),
and a tracker reset sets it back to 0. Each camera therefore maps Ultralytics' ids to its own sequence
1, 2, 3, ... in order of first appearance, so ids never collide within or across cameras.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from crosscam.errors import CrosscamError
from pipeline.types import Frame, TrackedBox

PERSON = 0  # COCO class id


class DetectorError(CrosscamError):
    """Detector weights that cannot be found or loaded."""


@dataclass(frozen=True)
class DetectorOptions:
    weights: str = "motion"  # "motion", or a path Ultralytics can load
    conf: float = 0.3
    iou: float = 0.5
    imgsz: int = 640
    device: str = "cpu"
    half: bool = False
    every: int = 1  # run the detector on every k-th frame (others give no boxes)
    tracker: str = "bytetrack.yaml"  # or botsort.yaml
    min_area: int = 400  # motion: smallest blob, pixels
    min_aspect: float = 1.1  # motion: person-shaped blobs are taller than wide (h / w)
    max_aspect: float = 5.0


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


class YoloTracker:
    """YOLO + ByteTrack / BoT-SORT for one camera (its own model instance, so its own tracker)."""

    def __init__(self, camera_id: str, options: DetectorOptions) -> None:
        self.camera_id, self.options = camera_id, options
        self.model = load_yolo(options.weights)
        self.ids = _IdSpace()
        self.frames = 0
        try:  # Ultralytics loads weights lazily: one blank frame surfaces a bad file now, and warms up
            self._track(np.zeros((64, 64, 3), np.uint8))
        except Exception as e:
            raise DetectorError(
                f"{options.weights}: Ultralytics cannot load these weights ({type(e).__name__}: {e})"
            ) from e

    def _track(self, bgr: np.ndarray):
        o = self.options
        extra = {"half": True} if o.half else {}  # Ultralytics warns when `half` is passed at all
        return self.model.track(
            bgr,
            persist=True,
            tracker=o.tracker,
            classes=[PERSON],
            conf=o.conf,
            iou=o.iou,
            imgsz=o.imgsz,
            device=o.device,
            verbose=False,
            **extra,
        )[0]

    def update(self, frame: Frame) -> list[TrackedBox]:
        self.frames += 1
        if (self.frames - 1) % self.options.every:
            return []
        boxes = self._track(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)).boxes
        if boxes is None or boxes.id is None:
            return []
        return [
            TrackedBox(self.camera_id, self.ids(int(i)), tuple(float(v) for v in xyxy), float(s), frame.timestamp)
            for xyxy, i, s in zip(boxes.xyxy.tolist(), boxes.id.int().tolist(), boxes.conf.tolist(), strict=True)
        ]


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


class MotionTracker:
    """Background subtraction (MOG2) -> person-shaped blobs -> ByteTrack, for one camera."""

    def __init__(self, camera_id: str, options: DetectorOptions) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker

        self.camera_id, self.options = camera_id, options
        self.subtractor = cv2.createBackgroundSubtractorMOG2(history=200, varThreshold=25, detectShadows=True)
        self.tracker = BYTETracker(_tracker_args("bytetrack.yaml"))
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self.ids = _IdSpace()

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
        from ultralytics.engine.results import Boxes

        dets = self.detect(frame.image)
        tracks = self.tracker.update(Boxes(dets, frame.image.shape[:2]), frame.image)
        return [
            TrackedBox(
                self.camera_id, self.ids(int(t[4])), tuple(float(v) for v in t[:4]), float(t[5]), frame.timestamp
            )
            for t in tracks
        ]


def make_tracker(camera_id: str, options: DetectorOptions) -> CameraTracker:
    if options.weights == "motion":
        return MotionTracker(camera_id, options)
    return YoloTracker(camera_id, options)
