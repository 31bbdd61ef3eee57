"""Reading clips of a tracklet from disk; a corrupt or missing frame is skipped, counted and replaced
by another readable frame of the same tracklet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from trainer.data.index import Tracklet


@dataclass
class BadFrames:
    """The frames that could not be read, for the report at the end of a run."""

    paths: set[str] = field(default_factory=set)

    def add(self, path: str) -> None:
        self.paths.add(path)

    def __len__(self) -> int:
        return len(self.paths)


def read_rgb(path: str) -> np.ndarray | None:
    """An image as ``uint8[H,W,3]`` RGB, or None when it is missing or cannot be decoded."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_clip(tracklet: Tracklet, indices: Sequence[int], height: int, width: int, bad: BadFrames) -> np.ndarray | None:
    """``uint8[T,height,width,3]`` for the frames ``indices`` of ``tracklet``.

    An unreadable frame is recorded in ``bad`` and replaced by the next readable frame of the tracklet
    (wrapping around); None when no frame of the tracklet can be read.
    """
    n = len(tracklet.paths)
    cache: dict[int, np.ndarray | None] = {}

    def load(i: int) -> np.ndarray | None:
        if i not in cache:
            img = read_rgb(tracklet.paths[i])
            if img is None:
                bad.add(tracklet.paths[i])
            elif img.shape[:2] != (height, width):
                img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
            cache[i] = img
        return cache[i]

    out = np.empty((len(indices), height, width, 3), np.uint8)
    for j, i in enumerate(indices):
        for step in range(n):
            img = load((int(i) + step) % n)
            if img is not None:
                out[j] = img
                break
        else:
            return None
    return out
