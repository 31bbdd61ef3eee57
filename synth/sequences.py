"""Rendering one tracklet: a person walking past one camera, as a detector would crop it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from synth.camera import CameraStyle, apply_style, background, occlude
from synth.people import Appearance, render_person


def render_tracklet(
    app: Appearance,
    style: CameraStyle,
    frames: int,
    height: int,
    width: int,
    rng: np.random.Generator,
    occlusion_prob: float = 0.15,
) -> np.ndarray:
    """``uint8[frames, height, width, 3]`` RGB crops of ``app`` walking in front of ``style``'s camera.

    The walk cycle advances each frame; the crop box jitters in scale and position like a detector's;
    with probability ``occlusion_prob`` a run of frames is partly occluded.
    """
    out = np.empty((frames, height, width, 3), np.uint8)
    scene = background(style, height, width, rng)
    phase, step = rng.uniform(0, 2 * np.pi), rng.uniform(0.35, 0.6)
    occluded = set()
    if rng.random() < occlusion_prob and frames > 2:
        start = int(rng.integers(0, frames - 1))
        occluded = set(range(start, min(frames, start + int(rng.integers(2, max(3, frames // 2))))))
    for f in range(frames):
        scale = rng.uniform(0.82, 1.0)
        ph, pw = max(8, int(height * scale)), max(4, int(width * scale))
        person, mask = render_person(app, phase + f * step, ph, pw)
        y0 = int(rng.integers(0, height - ph + 1))
        x0 = int(np.clip((width - pw) // 2 + rng.integers(-width // 12, width // 12 + 1), 0, width - pw))
        frame = scene.copy()
        region = frame[y0 : y0 + ph, x0 : x0 + pw]
        region[mask > 0] = person[mask > 0]
        if f in occluded:
            frame = occlude(frame, rng, tuple(int(c) for c in rng.integers(30, 220, 3)))
        out[f] = apply_style(frame, style, rng)
    return out


def render_scene_tracklet(
    app: Appearance,
    style: CameraStyle,
    frames: int,
    height: int,
    width: int,
    rng: np.random.Generator,
    passerby: Appearance | None = None,
    frame_size: tuple[int, int] = (270, 480),
) -> np.ndarray:
    """Crops of ``app`` crossing a whole camera view as in a live scene (``synth.scene``): the person at a
    random depth, cut by the frame's edges near the ends of the walk, with a loose box like a motion
    detector's and, when ``passerby`` is given, someone else crossing nearer to the camera."""
    import cv2

    from synth.scene import walk_box

    fh, fw = frame_size
    out = np.empty((frames, height, width, 3), np.uint8)
    scene = background(style, fh, fw, rng)
    depth, leftward = float(rng.uniform(0, 1)), bool(rng.random() < 0.5)
    step = 1.0 / (10 * rng.uniform(4.0, 7.0))  # 10 frames/s over a 4-7 s walk
    start = rng.uniform(0.0, max(0.0, 1.0 - frames * step))
    other = (min(1.0, depth + 0.2), not leftward, rng.uniform(0, 1)) if passerby is not None else None
    phase = rng.uniform(0, 2 * np.pi)
    for f in range(frames):
        people = [(app, walk_box(depth, start + f * step, leftward, fw, fh))]
        if other is not None:
            people.append((passerby, walk_box(other[0], (other[2] + f * step) % 1.0, other[1], fw, fh)))
        x1, y1, x2, y2 = people[0][1]
        bw, bh = x2 - x1, y2 - y1
        jx, jy = rng.uniform(-0.08, 0.08, 2)
        grow = rng.uniform(1.0, 1.25)
        cx, cy = (x1 + x2) / 2 + jx * bw, (y1 + y2) / 2 + jy * bh
        ox1, ox2 = max(0, int(cx - grow * bw / 2)), min(fw, int(cx + grow * bw / 2))
        oy1, oy2 = max(0, int(cy - grow * bh / 2)), min(fh, int(cy + grow * bh / 2))
        if ox2 - ox1 < 4 or oy2 - oy1 < 8:  # walked out of view: the detector's last, edge-cut box
            ox1, ox2 = (0, fw // 10) if ox2 < fw // 2 else (fw - fw // 10, fw)
            oy1, oy2 = max(0, int(y1)), min(fh, int(y2))
        region = scene[oy1:oy2, ox1:ox2].copy()
        for person_app, box in people:  # only the part of the frame the crop shows is drawn
            x1, y1, x2, y2 = (round(v) for v in box)
            person, mask = render_person(person_app, phase + f * 0.5, y2 - y1, x2 - x1)
            cx1, cy1, cx2, cy2 = max(ox1, x1), max(oy1, y1), min(ox2, x2), min(oy2, y2)
            if cx2 > cx1 and cy2 > cy1:
                m = mask[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1] > 0
                region[cy1 - oy1 : cy2 - oy1, cx1 - ox1 : cx2 - ox1][m] = person[
                    cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1
                ][m]
        # the camera's blur is scaled to the whole frame's height, as in synth.scene
        styled = apply_style(region, replace(style, blur=style.blur * fh / region.shape[0]), rng)
        out[f] = cv2.resize(styled, (width, height), interpolation=cv2.INTER_AREA)
    return out
