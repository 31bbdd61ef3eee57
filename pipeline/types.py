"""Plain, frozen values passed between the pipeline's stages (see docs/architecture.md, "Data flow")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame. ``timestamp``: seconds (stream time when the source has one, else wall clock)."""

    camera_id: str
    index: int
    timestamp: float
    image: np.ndarray  # uint8[H,W,3] RGB


@dataclass(frozen=True)
class TrackedBox:
    """One tracked person in one frame; ``box`` is (x1, y1, x2, y2) in pixels."""

    camera_id: str
    track_id: int
    box: tuple[float, float, float, float]
    score: float
    timestamp: float


@dataclass(frozen=True, eq=False)
class Tracklet:
    """A closed piece of one camera's track: ``crops uint8[T,H,W,3]`` RGB at the embedder's input size."""

    camera_id: str
    track_id: int
    seq: int  # 0, 1, 2, ... for the successive tracklets of one long track
    t_start: float
    t_end: float
    crops: np.ndarray
    boxes: np.ndarray  # float32[T,4]: the crops' boxes in the frame
    times: np.ndarray  # float64[T]: the crops' frame timestamps
    path: np.ndarray  # float64[N,7]: per frame of the tracklet (``PATH_COLUMNS``), detected or filled in
    t_closed: float | None = (
        None  # stream time of the frame it closed at (the matcher's order: pipeline.matcher.reorder)
    )


MAX_PATH_ROWS = 4096  # a tracklet closes when its path reaches this many frames (a record's limit)
PATH_COLUMNS = ("frame", "timestamp", "x1", "y1", "x2", "y2", "score")
"""The columns of a tracklet's ``path``: one row per frame from its first to its last detection, ``frame`` being the
source's frame index; ``score`` the detector's confidence, 0 on a frame where the box was filled in (a frame the
detector skipped or missed the person on, the box interpolated between the detections on either side)."""


@dataclass(frozen=True, eq=False)
class TrackletEmbedding:
    """A tracklet as published: its feature, attention and best view, without the crops."""

    site: str
    camera_id: str
    track_id: int
    seq: int
    t_start: float
    t_end: float
    feature: np.ndarray  # float32[D], L2-normalised
    attention: np.ndarray  # float32[T], sums to 1
    thumbnail: bytes  # JPEG of the crop with the highest attention
    model_id: str
    path: np.ndarray | None = None  # float64[N,7]: the tracklet's per-frame boxes (``PATH_COLUMNS``), if known
    t_closed: float | None = None  # stream time of the frame it closed at, if known (else ``t_end`` stands for it)

    @property
    def tracklet_id(self) -> str:
        """Unique within a site: the matcher uses it to process each tracklet once."""
        return f"{self.camera_id}:{self.track_id}:{self.seq}"


def closing_time(t: Tracklet | TrackletEmbedding) -> float:
    """When ``t`` closed, in stream time: its ``t_closed``, else (a producer that does not say) its ``t_end``."""
    return t.t_end if t.t_closed is None else t.t_closed
