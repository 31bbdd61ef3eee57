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
A person cut by the frame edge in every frame (sitting at the border of the view, half behind a door frame) is
still described: when a tracklet has fewer than ``min_crops`` whole crops, its edge crops (the largest boxes
first) make it up, if the person stayed (the tracklet spans half of ``max_seconds`` or more). Someone who only
crosses the edge on the way in or out is not described by the cut views alone (on synthetic scenes, where every
walker enters and leaves through the edge, describing them by their cut views made linking worse).

Every frame. A tracklet's ``path`` has a row for every frame the camera processed from its first detection to its
last: the tracked box (clipped to the frame) where the detector ran and found the person, else (a frame the motion gate or ``detector.every``
skipped, or a detection missed) the box interpolated between the detections on either side, with score 0. A
track's next tracklet starts where the previous one ended: the frames between its last detection and the next
tracklet's first are filled in the same way. Frames after a track's last detection are not claimed.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.types import MAX_PATH_ROWS, Frame, TrackedBox, Tracklet


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
    edge: list[tuple[np.ndarray, tuple[float, float, float, float], float]] = field(default_factory=list)
    # ^ crops cut by the frame edge, (crop, box, time): used only when too few whole crops
    rows: list[list[float]] = field(default_factory=list)  # path rows; a frame without a detection has a NaN box
    anchor: list[float] | None = None  # the track's previous tracklet's last row, when this one continues it


NAN_BOX = [float("nan")] * 4


def fill_path(rows: np.ndarray) -> np.ndarray:
    """``rows`` (``float64[N,7]``, ``PATH_COLUMNS``) with every NaN box interpolated linearly in frame index between
    the detected rows on either side; rows after the last detected one are dropped (so are those before the first,
    which a tracklet never has)."""
    detected = np.flatnonzero(~np.isnan(rows[:, 2]))
    if len(detected) == 0:
        return rows[:0]
    rows = rows[detected[0] : detected[-1] + 1].copy()
    missing = np.isnan(rows[:, 2])
    if missing.any():
        have = ~missing
        for c in range(2, 6):
            rows[missing, c] = np.interp(rows[missing, 0], rows[have, 0], rows[have, c])
        rows[missing, 6] = 0.0
    return rows


class TrackletBuffer:
    """One camera's open tracks. ``add`` a frame's boxes, get back the tracklets that closed."""

    def __init__(self, camera_id: str, policy: TrackletPolicy, first_track: int = 0) -> None:
        """``first_track``: added to the tracker's ids (which start at 1 in every process), so the tracklets of a
        restarted worker carry ids the site has not seen (``pipeline.bus.publisher.last_track``)."""
        self.camera_id, self.policy, self.first_track = camera_id, policy, first_track
        self.open: dict[int, _Open] = {}
        self.next_seq: dict[int, int] = {}
        self.counts: Counter[str] = Counter()
        self.ended: dict[int, list[float]] = {}  # track -> the last detected row of its last closed tracklet
        self.recent: deque[tuple[int, float]] = deque()  # (frame index, time) of the frames of the last lost_after s
        self.now = float("-inf")  # the time of the last frame added: tracklets closed by ``flush`` close then

    def add(self, frame: Frame, boxes: list[TrackedBox]) -> list[Tracklet]:
        p, now, closed = self.policy, frame.timestamp, []
        self.now = now
        seen = set()
        for b in boxes:
            seen.add(b.track_id)
            track = self.open.get(b.track_id)
            if track is None:
                track = self.open[b.track_id] = self._start(b.track_id, now)
            track.last_seen = now
            h, w = frame.image.shape[:2]
            x1, y1, x2, y2 = max(0.0, b.box[0]), max(0.0, b.box[1]), min(float(w), b.box[2]), min(float(h), b.box[3])
            box = [x1, y1, x2, y2] if x2 > x1 and y2 > y1 else NAN_BOX  # the part inside the frame
            track.rows.append([frame.index, now, *box, b.score])
            self._collect(track, frame, b.box, now)
            if (
                len(track.crops) >= p.max_length
                or now - track.t_start >= p.max_seconds
                or len(track.rows) >= MAX_PATH_ROWS
            ):
                closed += self._close(b.track_id)
        for track_id, track in self.open.items():
            if track_id not in seen:
                track.rows.append([frame.index, now, *NAN_BOX, 0.0])
        for track_id in [t for t, o in self.open.items() if now - o.last_seen > p.lost_after]:
            closed += self._close(track_id)
        self.recent.append((frame.index, now))
        while self.recent and now - self.recent[0][1] > p.lost_after:
            self.recent.popleft()
        for track_id in [t for t, row in self.ended.items() if now - row[1] > p.lost_after]:
            del self.ended[track_id]  # too long ago to be continued
        return closed

    def _start(self, track_id: int, now: float) -> _Open:
        """A new open tracklet of ``track_id``; one that continues the track's previous tracklet (ended less than
        ``lost_after`` ago) takes the frames between the two into its path (filled in when it closes)."""
        seq = self.next_seq.get(track_id, 0)
        track = _Open(track_id, seq, now, now)
        last = self.ended.pop(track_id, None)
        if last is not None and now - last[1] <= self.policy.lost_after:
            track.anchor = last
            track.rows = [[i, t, *NAN_BOX, 0.0] for i, t in self.recent if i > last[0]]
        return track

    def _collect(self, track: _Open, frame: Frame, box: tuple[float, float, float, float], now: float) -> None:
        """Keep the crop of ``box`` when it is usable; one cut by the frame edge is kept aside (``_Open.edge``)."""
        p = self.policy
        reason = crop_quality(frame.image, box, p)
        if reason:
            self.counts[f"rejected_{reason}"] += 1
            if reason == "edge" and len(track.edge) < p.max_length:
                crop = self._crop(frame.image, box)
                if crop is not None:
                    track.edge.append((crop, box, now))
            return
        crop = self._crop(frame.image, box)
        track.crops.append(crop)
        track.boxes.append(box)
        track.times.append(now)
        track.sharpness.append(sharpness(crop))
        self.counts["collected"] += 1

    def _crop(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
        """The part of ``image`` inside ``box`` (clipped to the frame) at the crops' size; None when empty."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (int(v) for v in box)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if x2 - x1 < 2 or y2 - y1 < 2:
            return None
        p = self.policy
        return cv2.resize(image[y1:y2, x1:x2], (p.crop_width, p.crop_height), interpolation=cv2.INTER_AREA)

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
        rows = np.array(track.rows, np.float64).reshape(-1, 7)
        closed_at = self.now
        if track.anchor is not None:  # the frames since the previous tracklet, filled from its last detection
            rows = fill_path(np.concatenate([np.array([track.anchor], np.float64), rows]))[1:]
        else:
            rows = fill_path(rows)
        if not len(rows):  # every box outside the frame: no one to describe
            self.counts["dropped_outside"] += 1
            return []
        self.ended[track_id] = rows[-1].tolist()
        crops, boxes, times, sharp = track.crops, track.boxes, track.times, track.sharpness
        lingers = track.last_seen - track.t_start >= p.max_seconds / 2
        if len(crops) < p.min_crops and track.edge and lingers:  # a person kept cut by the frame edge: edge crops
            edge = sorted(track.edge, key=lambda e: -(e[1][2] - e[1][0]) * (e[1][3] - e[1][1]))
            extra = edge[: max(p.frames, p.min_crops) - len(crops)]
            extra.sort(key=lambda e: e[2])
            crops = crops + [e[0] for e in extra]
            boxes = boxes + [e[1] for e in extra]
            times = times + [e[2] for e in extra]
            sharp = sharp + [sharpness(e[0]) for e in extra]
            self.counts["edge_used"] += len(extra)
        if len(crops) < p.min_crops:
            self.counts["dropped_short"] += 1
            return []
        drop = blurred(np.array(sharp), p.blur_ratio, p.min_crops)
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
                float(rows[0, 1]),
                track.last_seen,
                np.stack([crops[i] for i in idx]),
                np.array([boxes[i] for i in idx], np.float32),
                np.array([times[i] for i in idx], np.float64),
                rows,
                closed_at,
            )
        ]
