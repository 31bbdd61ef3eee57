"""The motion gate: the detector runs on a camera's frame only when something in the picture moved.

A fixed camera watching an empty corridor spends most of its time on frames where nothing changes; detecting
people there is wasted work. The gate keeps a running average of a small, blurred grey copy of the picture
(OpenCV's ``accumulateWeighted``, as Frigate's motion detector does) and says a frame moved when at least
``threshold`` of its pixels differ from that average by more than ``diff`` grey levels. Skipped frames give
no detections; the tracker is not updated on them, so its tracks keep their state and resume when detection
does (they coast). While tracks are open the detector also runs at least every ``refresh`` seconds, so a
person who stands still keeps being seen, and with none open at least every ``idle`` seconds, so a person who
sits still from the start (part of the average, never "moving") is found within ``idle`` seconds. When the
detector misses someone it was tracking (a still person detected unsteadily, a person half hidden), it runs on
every frame until the tracker finds them again or gives them up, as it would without the gate. The frames
in between get their boxes filled in from the detections on either side (``pipeline.camera.tracklets``).

Cost: a resize to ``width`` pixels wide, a blur, a difference and an average, well under a millisecond for a
480x360 frame on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class GateOptions:
    threshold: float = 0.002  # least fraction of the picture that must change; 0 turns the gate off
    diff: int = 20  # grey levels a pixel must differ from the average to count as changed
    width: int = 160  # the picture is compared at this width (its height in proportion)
    alpha: float = 0.2  # weight of each new frame in the running average
    refresh: float = 0.5  # seconds: with tracks open, detect at least this often even without motion
    idle: float = 2.0  # seconds: with no track open, detect at least this often (finds people who sit still)


def changed_fraction(grey: np.ndarray, average: np.ndarray, diff: int) -> float:
    """Fraction of pixels of ``grey`` (``uint8[H,W]``) that differ from ``average`` (``float32[H,W]``) by
    more than ``diff`` grey levels."""
    return float(np.count_nonzero(cv2.absdiff(grey, cv2.convertScaleAbs(average)) > diff)) / grey.size


class MotionGate:
    """One camera's gate: ``wants(image, t, tracking)`` says whether to run the detector on this frame."""

    def __init__(self, options: GateOptions | None = None) -> None:
        self.options = options or GateOptions()
        self.average: np.ndarray | None = None
        self.last_detect = float("-inf")
        self.last_fraction = 1.0

    def small_grey(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        width = min(self.options.width, w)
        height = max(1, round(h * width / w))
        grey = cv2.cvtColor(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        return cv2.GaussianBlur(grey, (5, 5), 0)

    def moved(self, image: np.ndarray) -> bool:
        """Whether ``image`` (``uint8[H,W,3]``) differs from the recent average; updates the average."""
        o = self.options
        grey = self.small_grey(image)
        if self.average is None or self.average.shape != grey.shape:
            self.average = grey.astype(np.float32)
            self.last_fraction = 1.0
            return True
        self.last_fraction = changed_fraction(grey, self.average, o.diff)
        cv2.accumulateWeighted(grey, self.average, o.alpha)
        return self.last_fraction >= o.threshold

    def wants(self, image: np.ndarray, t: float, tracking: bool, searching: bool = False) -> bool:
        """Run the detector on this frame (at time ``t``, seconds)? Yes when it moved, while ``searching`` (the
        detector missed a tracked person: every frame until they are found or given up), or when ``refresh``
        seconds (``tracking``: tracks are open) or ``idle`` seconds (none open) passed since the last detection;
        always when the gate is off."""
        o = self.options
        if o.threshold <= 0:
            return True
        moved = self.moved(image)
        if moved or searching or t - self.last_detect >= (o.refresh if tracking else o.idle):
            self.last_detect = t
            return True
        return False
