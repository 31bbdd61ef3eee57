"""Cutting each camera's tracks into tracklets: bounded crops per track, a quality filter, and the
rules that close a tracklet (track ended, length reached, time limit passed).

Crop quality. A crop is unusable when its box is too small or cut by the frame edge (decided as it comes).
Blur is judged relative to the tracklet itself, when it closes: a crop whose sharpness (variance of the
Laplacian of its grey levels, measured on the crop at the embedder's input size, so that a large and a
small person are measured at one scale) is below ``blur_ratio`` times the median of its tracklet's crops
is blurred, and dropped; the ``min_crops`` sharpest are always kept. A soft camera, or a person in a soft
part of the picture, therefore still gets published, from their own sharpest views, while the frames
smeared by motion or a focus hunt are left out. A fixed threshold cannot do both: variance-of-Laplacian
figures differ by orders of magnitude between cameras, resolutions and backgrounds (docs/pipeline.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.types import Frame, TrackedBox, Tracklet


@dataclass(frozen=True)
class TrackletPolicy:
    """How tracks become tracklets. Sizes in pixels, times in seconds."""

    frames: int = 4  # T: crops per published tracklet, sampled evenly from those collected
    crop_height: int = 256  # crops are resized to the embedder's input at capture, so memory is bounded
    crop_width: int = 128
    max_length: int = 48  # a tracklet closes when it holds this many crops...
    max_seconds: float = 8.0  # ...or spans this long: a long track gives periodic tracklets
    lost_after: float = 1.0  # a track unseen this long has ended
    min_crops: int = 2  # a shorter tracklet is dropped (counted)
    min_box_height: int = 40  # smaller boxes are too small to describe a person
    edge_margin: int = 2  # a box this close to the frame edge is cut by it
    blur_ratio: float = 0.33  # a crop below this fraction of its tracklet's median sharpness is blurred


def even_indices(n: int, frames: int) -> np.ndarray:
    """``frames`` indexes spread evenly over ``0..n-1``; fewer than ``frames`` crops repeat in order."""
    if n >= frames:
        return np.round(np.linspace(0, n - 1, frames)).astype(int)
    return np.arange(frames) % n


def crop_quality(image: np.ndarray, box: tuple[float, float, float, float], policy: TrackletPolicy) -> str | None:
    """None for a usable box, else why not: ``small`` or ``edge`` (blur is judged per tracklet: ``blurred``)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    if y2 - y1 < policy.min_box_height or x2 - x1 < 2:
        return "small"
    m = policy.edge_margin
    if x1 <= m or y1 <= m or x2 >= w - m or y2 >= h - m:
        return "edge"
    return None


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of ``crop`` (``uint8[H,W,3]`` RGB) in grey levels: high for crisp edges,
    low for blur. Pass crops of one size (the embedder's input) to compare them."""
    return float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def blurred(values: np.ndarray, ratio: float, keep: int) -> np.ndarray:
    """``bool[N]``: which of a tracklet's crops, of sharpness ``values`` (``float[N]``), are blurred.

    A crop is blurred when its sharpness is below ``ratio`` times the median of ``values``; the ``keep``
    sharpest crops never are (so blur alone never leaves a tracklet too short to publish). ``ratio`` 0
    turns the rule off.
    """
    values = np.asarray(values, np.float64)
    out = values < ratio * np.median(values) if len(values) else np.zeros(0, bool)
    if len(values) - out.sum() < keep:
        out[np.argsort(-values, kind="stable")[:keep]] = False
    return out


@dataclass
class _Open:
    track_id: int
    seq: int
    t_start: float
    last_seen: float
    crops: list[np.ndarray] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)  # of each crop, at the crops' size
    path: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # every frame seen


class TrackletBuffer:
    """One camera's open tracks. ``add`` a frame's boxes, get back the tracklets that closed."""

    def __init__(self, camera_id: str, policy: TrackletPolicy, first_track: int = 0) -> None:
        """``first_track``: added to the tracker's ids (which start at 1 in every process), so the tracklets of a
        restarted worker carry ids the site has not seen (``pipeline.bus.publisher.last_track``)."""
        self.camera_id, self.policy, self.first_track = camera_id, policy, first_track
        self.open: dict[int, _Open] = {}
        self.next_seq: dict[int, int] = {}
        self.counts: Counter[str] = Counter()

    def add(self, frame: Frame, boxes: list[TrackedBox]) -> list[Tracklet]:
        p, now, closed = self.policy, frame.timestamp, []
        for b in boxes:
            track = self.open.get(b.track_id)
            if track is None:
                seq = self.next_seq.get(b.track_id, 0)
                track = self.open[b.track_id] = _Open(b.track_id, seq, now, now)
            track.last_seen = now
            track.path.append((now, *b.box))
            reason = crop_quality(frame.image, b.box, p)
            if reason:
                self.counts[f"rejected_{reason}"] += 1
            else:
                x1, y1, x2, y2 = (int(v) for v in b.box)
                crop = cv2.resize(
                    frame.image[y1:y2, x1:x2], (p.crop_width, p.crop_height), interpolation=cv2.INTER_AREA
                )
                track.crops.append(crop)
                track.boxes.append(b.box)
                track.times.append(now)
                track.sharpness.append(sharpness(crop))
                self.counts["collected"] += 1
            if len(track.crops) >= p.max_length or now - track.t_start >= p.max_seconds:
                closed += self._close(b.track_id)
        for track_id in [t for t, o in self.open.items() if now - o.last_seen > p.lost_after]:
            closed += self._close(track_id)
        return closed

    def flush(self) -> list[Tracklet]:
        """Close every open track (the source ended)."""
        closed = []
        for track_id in list(self.open):
            closed += self._close(track_id)
        return closed

    def _close(self, track_id: int) -> list[Tracklet]:
        track = self.open.pop(track_id)
        self.next_seq[track_id] = track.seq + 1
        p = self.policy
        if len(track.crops) < p.min_crops:
            self.counts["dropped_short"] += 1
            return []
        drop = blurred(np.array(track.sharpness), p.blur_ratio, p.min_crops)
        if drop.any():
            self.counts["rejected_blurred"] += int(drop.sum())
        kept = np.flatnonzero(~drop)
        idx = kept[even_indices(len(kept), p.frames)]
        self.counts["tracklets"] += 1
        return [
            Tracklet(
                self.camera_id,
                self.first_track + track_id,
                track.seq,
                track.t_start,
                track.last_seen,
                np.stack([track.crops[i] for i in idx]),
                np.array([track.boxes[i] for i in idx], np.float32),
                np.array([track.times[i] for i in idx], np.float64),
                np.array(track.path, np.float64).reshape(-1, 5),
            )
        ]
