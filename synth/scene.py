"""A synthetic multi-camera world with exact ground truth, rendered live as camera streams.

People walk across the views of several non-overlapping cameras, one after another, with transit
delays in between; in a view a person crosses at some depth (farther: smaller and higher in the frame)
and people are drawn far to near, so crossing paths occlude each other. Every fourth person differs from
the one before only in the pattern of their top (``synth.people``). The ground truth is exact: each
person's visits (camera, enter, exit) and, for any frame, every visible person's box and global id.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import numpy as np

from crosscam.errors import CrosscamError
from synth.camera import CameraStyle, apply_style, background, camera_style
from synth.people import Appearance, appearance, render_person


@dataclass(frozen=True)
class Visit:
    """One passage of one person through one camera's view (times in seconds from the scene's start)."""

    pid: int
    camera: int
    t_enter: float
    t_exit: float
    depth: float  # 0 far .. 1 near
    leftward: bool


@dataclass(frozen=True)
class SceneSpec:
    cameras: int = 3
    people: int = 8
    seconds: float = 60.0
    seed: int = 1
    fps: float = 10.0
    width: int = 480
    height: int = 270
    arrivals: float = 0.25  # people enter their first camera within this share of the scene

    @classmethod
    def from_url(cls, url: str, label: str | None = None) -> SceneSpec:
        """``synth://?cameras=3&people=8&seconds=60&seed=1`` (every key optional); errors name ``label`` or ``url``."""
        name = label or url
        query = parse_qs(urlparse(url).query)
        known = {
            "cameras": int,
            "people": int,
            "seconds": float,
            "seed": int,
            "fps": float,
            "width": int,
            "height": int,
            "arrivals": float,
        }
        unknown = sorted(set(query) - set(known))
        if unknown:
            raise CrosscamError(f"{name}: unknown synth:// parameter(s) {unknown}; use {', '.join(known)}")
        try:
            values = {k: known[k](v[-1]) for k, v in query.items()}
        except ValueError as e:
            raise CrosscamError(f"{name}: bad synth:// parameter value ({e})") from e
        spec = cls(**values)
        if spec.cameras < 1 or spec.people < 1 or spec.seconds <= 0 or spec.fps <= 0 or not 0 < spec.arrivals <= 1:
            raise CrosscamError(f"{name}: cameras, people, seconds and fps must be positive, arrivals in (0, 1]")
        return spec


def walk_box(depth: float, progress: float, leftward: bool, width: int, height: int) -> tuple[float, ...]:
    """The box (x1, y1, x2, y2) of a person crossing a view at ``depth`` (0 far .. 1 near), ``progress``
    (0 .. 1) of the way across; boxes start and end just outside the frame."""
    ph = height * (0.45 + 0.3 * depth)
    pw = ph * 0.45
    feet = height * (0.72 + 0.25 * depth)
    x = -pw + progress * (width + pw)
    if leftward:
        x = width - pw - x
    return (x, feet - ph, x + pw, feet)


@dataclass(frozen=True)
class Box:
    pid: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2, not clipped to the frame
    depth: float


class Scene:
    """The world of ``spec``: who is where when, and what each camera sees."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        self.people: dict[int, Appearance] = {p: appearance(p, spec.seed) for p in range(1, spec.people + 1)}
        self.styles: dict[int, CameraStyle] = {c: camera_style(c, spec.seed) for c in range(spec.cameras)}
        self.backgrounds = {
            c: background(self.styles[c], spec.height, spec.width, np.random.default_rng([spec.seed, c]))
            for c in range(spec.cameras)
        }
        self.visits: list[Visit] = []
        for pid in self.people:
            t = rng.uniform(0, spec.seconds * spec.arrivals)
            route = rng.permutation(spec.cameras)[: max(1, min(spec.cameras, int(rng.integers(2, 4))))]
            for cam in route:
                dur = rng.uniform(4.0, 7.0)
                if t + dur > spec.seconds:
                    break
                self.visits.append(Visit(pid, int(cam), t, t + dur, float(rng.uniform(0, 1)), bool(rng.random() < 0.5)))
                t += dur + rng.uniform(1.5, 4.0)  # transit to the next camera

    def boxes(self, camera: int, t: float) -> list[Box]:
        """People in ``camera``'s view at time ``t``, far to near (drawing order)."""
        w, h = self.spec.width, self.spec.height
        out = []
        for v in self.visits:
            if v.camera != camera or not v.t_enter <= t < v.t_exit:
                continue
            progress = (t - v.t_enter) / (v.t_exit - v.t_enter)
            out.append(Box(v.pid, walk_box(v.depth, progress, v.leftward, w, h), v.depth))
        return sorted(out, key=lambda b: b.depth)

    def render(self, camera: int, index: int) -> tuple[np.ndarray, list[Box]]:
        """Frame ``index`` of ``camera`` (uint8[H,W,3] RGB) and the ground-truth boxes in it."""
        t = index / self.spec.fps
        frame = self.backgrounds[camera].copy()
        h, w = frame.shape[:2]
        visible = self.boxes(camera, t)
        for b in visible:
            x1, y1, x2, y2 = (round(v) for v in b.box)
            if x2 - x1 < 4 or y2 - y1 < 8:
                continue
            person, mask = render_person(self.people[b.pid], phase=t * 5.0 + b.pid, height=y2 - y1, width=x2 - x1)
            cx1, cy1, cx2, cy2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
            if cx2 <= cx1 or cy2 <= cy1:
                continue
            sub = (slice(cy1 - y1, cy2 - y1), slice(cx1 - x1, cx2 - x1))
            region = frame[cy1:cy2, cx1:cx2]
            m = mask[sub] > 0
            region[m] = person[sub][m]
        rng = np.random.default_rng([self.spec.seed, camera, index])
        return apply_style(frame, self.styles[camera], rng), visible

    def frame_count(self) -> int:
        return int(self.spec.seconds * self.spec.fps)
