"""A synthetic multi-camera world with exact ground truth, rendered live as camera streams.

People walk across the views of several cameras, one after another, with transit delays in between; in a
view a person crosses at some depth (farther: smaller and higher in the frame) and people are drawn far to
near, so crossing paths occlude each other. Every fourth person differs from the one before only in the
pattern of their top (``synth.people``). The default layout's views never overlap; the ``site`` layout has
overlapping views and a transit window per pair of views (``synth.layout``). ``seated`` people stay put in
one view (``synth.seated``). The ground truth is exact: each person's visits (camera, enter, exit), for any
frame every visible person's box and global id, and the layout's overlaps and transit windows.
"""

from __future__ import annotations

import numpy as np

from synth.camera import CameraStyle, apply_style, background, camera_style
from synth.floor import ground_points
from synth.layout import APART_TRANSIT, VISIT_SECONDS, Layout, apart_layout, site_layout, site_walks
from synth.people import Appearance, appearance, render_person
from synth.seated import stationary_visits
from synth.spec import SceneSpec
from synth.visits import Box, Stay, Visit, drawn_boxes, visit_boxes, walk_box, walk_phase, walker_box

__all__ = ["Box", "Scene", "SceneSpec", "Stay", "Visit", "walk_box"]

# Seeds of the generators beside the scene's own (np.random.default_rng(seed)), so that a new kind of
# randomness never shifts what the default scene draws: [seed, STREAMS, k].
STREAMS = 9000
LAYOUT_STREAM, WALK_STREAM, SEATED_STREAM = 1, 2, 3


class Scene:
    """The world of ``spec``: who is where when, and what each camera sees."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec.check("scene")
        rng = np.random.default_rng(spec.seed)
        walkers = list(range(1, spec.people + 1))
        seated = list(range(spec.people + 1, spec.people + spec.seated + 1))
        self.people: dict[int, Appearance] = {p: appearance(p, spec.seed) for p in walkers + seated}
        self.stationary: list[int] = seated  # the people who stay put in one view (pids after the walkers')
        self.styles: dict[int, CameraStyle] = {c: camera_style(c, spec.seed) for c in range(spec.cameras)}
        self.backgrounds = {
            c: background(self.styles[c], spec.height, spec.width, np.random.default_rng([spec.seed, c]))
            for c in range(spec.cameras)
        }
        self.visits: list[Visit] = []
        if spec.layout == "site":
            self.layout: Layout = site_layout(spec.cameras, spec.overlap, self._stream(LAYOUT_STREAM))
            self.visits += site_walks(walkers, self.layout, spec.seconds, spec.arrivals, self._stream(WALK_STREAM))
        else:
            self.layout = apart_layout(spec.cameras)
            for pid in walkers:
                t = rng.uniform(0, spec.seconds * spec.arrivals)
                route = rng.permutation(spec.cameras)[: max(1, min(spec.cameras, int(rng.integers(2, 4))))]
                for cam in route:
                    dur = rng.uniform(*VISIT_SECONDS)
                    if t + dur > spec.seconds:
                        break
                    depth, leftward = float(rng.uniform(0, 1)), bool(rng.random() < 0.5)
                    self.visits.append(Visit(pid, int(cam), t, t + dur, depth, leftward))
                    t += dur + rng.uniform(*APART_TRANSIT)  # transit to the next camera
        self.visits += stationary_visits(
            seated, spec.cameras, spec.seconds, spec.width, spec.height, self._stream(SEATED_STREAM)
        )

    def _stream(self, k: int) -> np.random.Generator:
        return np.random.default_rng([self.spec.seed, STREAMS, k])

    def transit_windows(self) -> dict[tuple[int, int], tuple[float, float]]:
        """The true transit window (min, max seconds from leaving ``a``'s view to entering ``b``'s) of each
        ordered pair ``(a, b)`` of cameras that do not share a view; every walker's gap lies inside it."""
        return self.layout.camera_windows()

    def overlapping_pairs(self) -> set[frozenset[int]]:
        """The pairs of cameras that share a view: a walker seen by one is seen by the other at the same time."""
        return self.layout.overlapping_pairs()

    def ground_points(self, camera: int) -> list[tuple[float, float, float, float]]:
        """Four (u, v, X, Y) pairs, image pixels to floor-plan metres, that give ``camera``'s view of its group's
        floor exactly (``synth.floor``): a walker's feet (the bottom centre of their box) map to their place on
        the plan. Empty for a camera that shares no view (the ``apart`` layout's, a group of one)."""
        for g, group in enumerate(self.layout.groups):
            if camera in group and len(group) > 1:
                return ground_points(g, group.index(camera), self.spec.width, self.spec.height)
        return []

    def boxes(self, camera: int, t: float) -> list[Box]:
        """People in ``camera``'s view at time ``t``, far to near (drawing order)."""
        w, h = self.spec.width, self.spec.height
        out = []
        for v in self.visits:
            if v.camera != camera or not v.t_enter <= t < v.t_exit:
                continue
            if v.stay is None:  # the arithmetic of visit_boxes on one time, without NumPy's overhead
                progress = (t - v.t_enter) / (v.t_exit - v.t_enter)
                out.append(Box(v.pid, walker_box(v, progress, w, h), v.depth, walk_phase(t, v.pid)))
                continue
            box, phase = visit_boxes(v, np.array([t]), w, h)
            out.append(Box(v.pid, tuple(float(x) for x in box[0]), v.depth, float(phase[0])))
        return sorted(out, key=lambda b: b.depth)

    def render(self, camera: int, index: int) -> tuple[np.ndarray, list[Box]]:
        """Frame ``index`` of ``camera`` (uint8[H,W,3] RGB) and the ground-truth boxes in it."""
        t = index / self.spec.fps
        frame = self.backgrounds[camera].copy()
        h, w = frame.shape[:2]
        visible = self.boxes(camera, t)
        rounded, clipped, drawn = drawn_boxes(np.array([b.box for b in visible]), w, h)
        for b, (x1, y1, x2, y2), (cx1, cy1, cx2, cy2), shown in zip(
            visible, rounded.tolist(), clipped.tolist(), drawn, strict=True
        ):
            if not shown:
                continue
            person, mask = render_person(self.people[b.pid], phase=b.phase, height=y2 - y1, width=x2 - x1)
            sub = (slice(cy1 - y1, cy2 - y1), slice(cx1 - x1, cx2 - x1))
            region = frame[cy1:cy2, cx1:cx2]
            m = mask[sub] > 0
            region[m] = person[sub][m]
        rng = np.random.default_rng([self.spec.seed, camera, index])
        return apply_style(frame, self.styles[camera], rng), visible

    def frame_count(self) -> int:
        return int(self.spec.seconds * self.spec.fps)
