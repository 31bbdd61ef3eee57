"""Rendering one tracklet: a person walking past one camera, as a detector would crop it."""

from __future__ import annotations

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
