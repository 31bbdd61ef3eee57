"""The ground plane (docs/pipeline.md, "Ground plane"): where on a floor plan a tracklet walked, and how far apart
two tracklets were at the same moments. Pure functions over NumPy, and the plain values the rules use.

A camera's homography maps image pixels to plan metres, fitted to four or more measured pairs ``[u, v, X, Y]``
(a mark on the floor at pixel (u, v) lies at (X, Y) on the plan). A person's place on the plan is the foot point
of their box (its bottom centre) mapped by it. Two tracklets on different cameras are compared at their shared
moments (the times of one inside the other's span, the other's positions interpolated there): the median of the
distances, over at least ``GroundPlane.moments`` of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from crosscam.errors import ConfigError

MIN_POINTS = 4
COLLINEAR = 1e-3  # points whose spread across their best line is below this share of the spread along it
MAX_CONDITION = 1e6  # condition number of the homography between normalised points: above it, degenerate
POINTS_HINT = (
    "give 4 or more [u, v, X, Y] pairs: marks on the floor the camera sees (pixels) and their places on the "
    "plan (metres), spread over the area people walk"
)


def check_points(camera: str, points: Sequence[Sequence[float]]) -> np.ndarray:
    """``points`` as ``float64[N,4]`` rows (u, v, X, Y), checked: at least 4, finite, neither the image points
    nor the plan points on one line. Errors (``ConfigError``) are one line naming ``camera``."""
    rows = [list(p) for p in points]
    if len(rows) < MIN_POINTS:
        raise ConfigError(f"camera {camera}: ground has {len(rows)} point pairs; {POINTS_HINT}")
    if any(len(r) != 4 for r in rows):
        raise ConfigError(f"camera {camera}: each ground point is [u, v, X, Y]; {POINTS_HINT}")
    try:
        a = np.asarray(rows, np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"camera {camera}: ground points must be numbers; {POINTS_HINT}") from None
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])
        raise ConfigError(f"camera {camera}: ground point {bad} {rows[bad]} is not finite; give measured numbers")
    for what, cols, where in (("image", slice(0, 2), "pixels"), ("plan", slice(2, 4), "metres")):
        if collinear(a[:, cols]):
            raise ConfigError(
                f"camera {camera}: the ground's {what} points lie on one line; pick floor marks spread over the "
                f"area people walk, not along one line ({where})"
            )
    return a


def collinear(xy: np.ndarray) -> bool:
    """Whether the points ``float[N,2]`` lie on one line (or one point): their spread across the best line is
    below ``COLLINEAR`` of the spread along it."""
    centred = xy - xy.mean(axis=0)
    s = np.linalg.svd(centred, compute_uv=False)
    return bool(s[0] == 0 or s[1] <= COLLINEAR * s[0])


def _normaliser(xy: np.ndarray) -> np.ndarray:
    """The similarity ``float64[3,3]`` that moves ``xy`` to centroid 0 and mean distance sqrt(2) (Hartley)."""
    c = xy.mean(axis=0)
    d = np.sqrt(((xy - c) ** 2).sum(axis=1)).mean()
    s = math.sqrt(2) / d
    return np.array([[s, 0, -s * c[0]], [0, s, -s * c[1]], [0, 0, 1]])


def homography(camera: str, points: Sequence[Sequence[float]]) -> np.ndarray:
    """The homography ``float64[3,3]`` from image pixels to plan metres that fits ``points`` (least squares over
    all of them, OpenCV's ``findHomography``), scaled so the image's calibrated area maps with a positive third
    coordinate. Degenerate points (a homography that is not invertible, or nearly so: three of four points on
    a line) raise a ``ConfigError`` naming ``camera``."""
    import cv2

    a = check_points(camera, points)
    ti, tp = _normaliser(a[:, :2]), _normaliser(a[:, 2:])
    img = apply(ti, a[:, :2])
    plan = apply(tp, a[:, 2:])
    hn, _ = cv2.findHomography(img, plan, 0)
    degenerate = (
        f"camera {camera}: the ground points give no usable homography (three of them on one line, or pairs that "
        "contradict each other); check each [u, v, X, Y] pair and pick marks spread over the floor"
    )
    if hn is None or hn.shape != (3, 3) or not np.isfinite(hn).all():
        raise ConfigError(degenerate)
    det = float(np.linalg.det(hn))
    if det == 0 or not math.isfinite(det) or np.linalg.cond(hn) > MAX_CONDITION:
        raise ConfigError(degenerate)
    h = np.linalg.inv(tp) @ hn @ ti
    w = h[2] @ np.c_[a[:, :2], np.ones(len(a))].T
    if (w > 0).any() and (w < 0).any():
        raise ConfigError(
            f"camera {camera}: the ground points lie on both sides of the camera's horizon; check each "
            "[u, v, X, Y] pair (pixels of floor marks, and their plan metres)"
        )
    return h if w[0] > 0 else -h


def apply(h: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``xy float[N,2]`` mapped by the homography ``h float[3,3]``; a point mapped beyond the horizon (third
    coordinate at or below 0, with ``h`` scaled as ``homography`` scales it) is NaN."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    p = np.c_[xy, np.ones(len(xy))] @ h.T
    w = p[:, 2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p[:, :2] / w
    out[(w[:, 0] <= 0)] = np.nan
    return out


def foot_points(path: np.ndarray) -> np.ndarray:
    """The foot point of each box of a tracklet's ``path`` (``float64[N,7]``: frame, timestamp, x1, y1, x2, y2,
    score): the bottom centre ``float64[N,2]`` in pixels."""
    return np.stack([(path[:, 2] + path[:, 4]) / 2, path[:, 5]], axis=1)


@dataclass(frozen=True, eq=False)
class PlanTrack:
    """Where a tracklet was on the plan: ``times float64[N]`` (seconds, increasing) and ``xy float64[N,2]``
    (metres)."""

    times: np.ndarray
    xy: np.ndarray

    def __post_init__(self) -> None:
        if self.times.ndim != 1 or self.xy.shape != (len(self.times), 2):
            raise ValueError(f"plan track of {self.times.shape} times and {self.xy.shape} positions")


def plan_track(h: np.ndarray, path: np.ndarray | None) -> PlanTrack | None:
    """A tracklet's ``path`` on the plan through the homography ``h`` (every frame's box, filled-in ones too:
    their boxes are interpolated between detections); frames beyond the horizon are left out. None when no
    frame remains."""
    if path is None or len(path) == 0:
        return None
    xy = apply(h, foot_points(path))
    keep = np.isfinite(xy).all(axis=1)
    times = path[keep, 1]
    if not len(times):
        return None
    order = np.argsort(times, kind="stable")
    return PlanTrack(times[order], xy[keep][order])


def shared_distance(a: PlanTrack, b: PlanTrack, moments: int) -> tuple[float, int] | None:
    """The median distance (metres) between ``a`` and ``b`` at their shared moments (``a``'s times inside
    ``b``'s span; ``b``'s positions linearly interpolated there) and the number of those moments; None when
    there are fewer than ``moments``."""
    lo, hi = max(a.times[0], b.times[0]), min(a.times[-1], b.times[-1])
    if hi < lo:
        return None
    pick = (a.times >= lo) & (a.times <= hi)
    n = int(pick.sum())
    if n < max(moments, 1):
        return None
    t = a.times[pick]
    bx, by = np.interp(t, b.times, b.xy[:, 0]), np.interp(t, b.times, b.xy[:, 1])
    d = np.hypot(a.xy[pick, 0] - bx, a.xy[pick, 1] - by)
    return float(np.median(d)), n


@dataclass(frozen=True, eq=False)
class PlanSighting:
    """A sighting's plan track, on ``camera``."""

    camera: str
    track: PlanTrack

    @property
    def t_end(self) -> float:
        return float(self.track.times[-1])


@dataclass(frozen=True, eq=False)
class GroundPlane:
    """Each camera's homography (image pixels to plan metres; cameras without one are not constrained) and the
    distances that decide: within ``near`` metres at the shared moments (median, over at least ``moments``)
    two sightings on different cameras are one person; farther than ``far`` they are two. ``keep``: seconds of
    stream time an identity's plan tracks are kept for (behind the latest tracklet's end)."""

    homographies: Mapping[str, np.ndarray] = field(default_factory=dict)
    near: float = 1.0
    far: float = 3.0
    moments: int = 5
    keep: float = 60.0

    def __post_init__(self) -> None:
        if not (0 < self.near < self.far and math.isfinite(self.far)):
            raise ConfigError(f"ground distances: near {self.near} m must be above 0 and below far {self.far} m")

    def track(self, camera: str, path: np.ndarray | None) -> PlanTrack | None:
        """The plan track of a tracklet of ``camera`` with ``path`` (None: the camera has no homography, or the
        tracklet no path)."""
        h = self.homographies.get(camera)
        return None if h is None else plan_track(h, path)


def ground_plane(points: Mapping[str, Sequence[Sequence[float]]], near: float, far: float) -> GroundPlane | None:
    """The ground plane of cameras with measured ``points`` (camera -> ``[[u, v, X, Y], ...]``); None when no
    camera has any."""
    homographies = {camera: homography(camera, p) for camera, p in points.items() if p}
    return GroundPlane(homographies, near, far) if homographies else None


@dataclass(frozen=True)
class Near:
    """An identity seen close to a tracklet: the largest of its sightings' median distances, over how many
    shared moments in all."""

    distance: float
    moments: int


@dataclass(frozen=True)
class Placement:
    """A tracklet against the identities seen on other cameras at the same moments: ``near``, each within
    ``near`` metres at every shared moment measured; ``far``, those farther than ``far`` at some (not this
    person). ``scores``: the near identities' cosine scores (for the decision)."""

    near: Mapping[int, Near] = field(default_factory=dict)
    far: frozenset[int] = frozenset()
    scores: Mapping[int, float] = field(default_factory=dict)


def place(track: PlanTrack, camera: str, seen: Iterable[tuple[int, PlanSighting]], ground: GroundPlane) -> Placement:
    """Where ``track`` (on ``camera``) stands against ``seen``, (identity, plan sighting) pairs: an identity is
    far when one of its sightings on another camera is farther than ``ground.far`` at the shared moments, near
    when every one measured is within ``ground.near`` (and none is far)."""
    worst: dict[int, float] = {}
    moments: dict[int, int] = {}
    for identity, s in seen:
        if s.camera == camera:
            continue
        got = shared_distance(track, s.track, ground.moments)
        if got is None:
            continue
        worst[identity] = max(worst.get(identity, 0.0), got[0])
        moments[identity] = moments.get(identity, 0) + got[1]
    far = frozenset(i for i, d in worst.items() if d > ground.far)
    near = {i: Near(d, moments[i]) for i, d in sorted(worst.items()) if d <= ground.near}
    return Placement(near, far)


def apart(a: Iterable[PlanSighting], b: Iterable[PlanSighting], ground: GroundPlane) -> bool:
    """Whether two identities' plan tracks say they are two people: a sighting of one farther than
    ``ground.far`` from a sighting of the other, on another camera, at their shared moments."""
    b = list(b)
    for x in a:
        for y in b:
            if x.camera == y.camera:
                continue
            got = shared_distance(x.track, y.track, ground.moments)
            if got is not None and got[0] > ground.far:
                return True
    return False
