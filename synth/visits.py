"""Where a person is in a camera's view: visits (walking across, or staying put), their boxes over time,
and the rule for which boxes are drawn (pure arithmetic, shared by the renderer and the ground truth)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WALK_RATE = 5.0  # radians of the walk cycle a second
STILL_PHASE = 0.0  # walk-cycle phase (radians) of someone not walking: legs and arms straight down
STILL_WIDTH = 0.25  # a still person's box width, of its height: the figure standing still with arms down fills most
SWAY_PIXELS = 2.0  # how far a stationary person sways sideways, so their image is not frozen
SWAY_PERIOD = 4.0  # seconds
MIN_DRAWN_WIDTH, MIN_DRAWN_HEIGHT = 4, 8  # pixels: smaller boxes are not drawn


@dataclass(frozen=True)
class Stay:
    """A person who stops in a view: walks in from one side, sits or stands still, walks out to a side.
    Times are in seconds from the scene's start."""

    x: float  # centre of the box while still (pixels; the sway moves it by up to SWAY_PIXELS)
    share: float  # height of the box while still, of a standing person's at that depth (seated ~0.65)
    t_still: float  # stops here (the visit's t_enter when already there at the start)
    t_rise: float  # starts to walk out (the visit's t_exit when staying to the end)
    from_left: bool  # walks in from the left edge
    to_left: bool  # walks out to the left edge


@dataclass(frozen=True)
class Visit:
    """One passage of one person through one camera's view (times in seconds from the scene's start):
    walking across, or with a ``stay``, stopping in it for a while."""

    pid: int
    camera: int
    t_enter: float
    t_exit: float
    depth: float  # 0 far .. 1 near
    leftward: bool
    stay: Stay | None = None
    floor: bool = False  # walks on a shared floor (``floor_box``: feet at a pace that does not depend on depth)


@dataclass(frozen=True)
class Box:
    pid: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2, not clipped to the frame
    depth: float
    phase: float = STILL_PHASE  # walk-cycle phase (radians) to draw the person in


def walk_phase(t, pid: int):
    """The walk-cycle phase (radians) of person ``pid`` walking at time ``t`` (seconds; a float or an array)."""
    return t * WALK_RATE + pid


def walk_box(depth: float, progress, leftward: bool, width: int, height: int) -> tuple:
    """The box (x1, y1, x2, y2) of a person crossing a view at ``depth`` (0 far .. 1 near), ``progress``
    (0 .. 1, a float or an array) of the way across; boxes start and end just outside the frame."""
    ph = height * (0.45 + 0.3 * depth)
    pw = ph * 0.45
    feet = height * (0.72 + 0.25 * depth)
    x = -pw + progress * (width + pw)
    if leftward:
        x = width - pw - x
    return (x, feet - ph, x + pw, feet)


FLOOR_MARGIN = 0.45 * 0.75 / 2  # of the frame's height: half the widest walker's box, the feet's reach outside


def floor_box(depth: float, progress, leftward: bool, width: int, height: int) -> tuple:
    """The box (x1, y1, x2, y2) of a person walking on a floor several cameras share (``synth.floor``): like
    ``walk_box``, but the feet (bottom centre) move across at a pace that does not depend on depth, so they are
    an affine function of (``progress``, ``depth``) and so of the person's floor position."""
    ph = height * (0.45 + 0.3 * depth)
    pw = ph * 0.45
    feet = height * (0.72 + 0.25 * depth)
    m = height * FLOOR_MARGIN
    cx = -m + progress * (width + 2 * m)
    if leftward:
        cx = width - cx
    return (cx - pw / 2, feet - ph, cx + pw / 2, feet)


def walker_box(v: Visit, progress, width: int, height: int) -> tuple:
    """The box of walking visit ``v`` at ``progress`` (0 .. 1, a float or an array) of the way across."""
    box = floor_box if v.floor else walk_box
    return box(v.depth, progress, v.leftward, width, height)


def visit_boxes(v: Visit, t: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The boxes ``float[N,4]`` (x1, y1, x2, y2) of visit ``v`` at times ``t`` ``float[N]`` (seconds, inside the
    visit) and the walk-cycle phases ``float[N]`` to draw them in."""
    t = np.asarray(t, np.float64)
    walking = walk_phase(t, v.pid)
    if v.stay is None:
        progress = (t - v.t_enter) / (v.t_exit - v.t_enter)
        x1, y1, x2, y2 = walker_box(v, progress, width, height)
        return np.stack(np.broadcast_arrays(x1, y1, x2, y2), axis=1), walking
    s = v.stay
    ph = height * (0.45 + 0.3 * v.depth)
    pw = ph * 0.45
    feet = height * (0.72 + 0.25 * v.depth)
    start = -pw / 2 if s.from_left else width + pw / 2  # box centres just outside the frame
    end = -pw / 2 if s.to_left else width + pw / 2
    cx = s.x + SWAY_PIXELS * np.sin(2 * np.pi * t / SWAY_PERIOD + v.pid)
    half = np.full_like(t, STILL_WIDTH * s.share * ph / 2)
    top = np.full_like(t, feet - s.share * ph)
    arriving, leaving = t < s.t_still, t >= s.t_rise
    if s.t_still > v.t_enter:
        cx = np.where(arriving, start + (s.x - start) * (t - v.t_enter) / (s.t_still - v.t_enter), cx)
    if v.t_exit > s.t_rise:
        cx = np.where(leaving, s.x + (end - s.x) * (t - s.t_rise) / (v.t_exit - s.t_rise), cx)
    moving = arriving | leaving
    top, half = np.where(moving, feet - ph, top), np.where(moving, pw / 2, half)
    boxes = np.stack([cx - half, top, cx + half, np.full_like(t, feet)], axis=1)
    return boxes, np.where(moving, walking, STILL_PHASE)


def drawn_boxes(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which of ``boxes`` ``float[N,4]`` a frame of ``width`` x ``height`` shows, and where: the boxes rounded
    to pixels ``int[N,4]`` (what a person is drawn to fill), the same clipped to the frame ``int[N,4]``, and
    ``bool[N]``: drawn (at least MIN_DRAWN_WIDTH x MIN_DRAWN_HEIGHT pixels, and some of it in the frame)."""
    r = np.rint(np.asarray(boxes, np.float64).reshape(-1, 4)).astype(np.int64)
    c = np.stack(
        [np.maximum(r[:, 0], 0), np.maximum(r[:, 1], 0), np.minimum(r[:, 2], width), np.minimum(r[:, 3], height)],
        axis=1,
    )
    big = (r[:, 2] - r[:, 0] >= MIN_DRAWN_WIDTH) & (r[:, 3] - r[:, 1] >= MIN_DRAWN_HEIGHT)
    return r, c, big & (c[:, 2] > c[:, 0]) & (c[:, 3] > c[:, 1])
