"""Synthetic people: a deterministic appearance per identity, drawn in a walking pose.

Identities differ in clothing colours, patterns, build and accessories; every fourth identity copies
the one before it except for the top's pattern, so a model must look at texture, not only colour. A
pattern is drawn in a colour that stands out from the top's (``MIN_PATTERN_CONTRAST``), so that the texture
which tells such near twins apart can be seen at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

RENDERER_VERSION = 2  # bumped when people are drawn differently, so models cached on older renders are retrained
MIN_PATTERN_CONTRAST = 80.0  # RGB distance between a top and its pattern; closer ones are made lighter/darker
PATTERNS = ("solid", "stripes", "checks", "dots")
_SKIN = ((224, 172, 140), (198, 134, 94), (141, 85, 54), (240, 200, 170), (110, 70, 50))
_HAIR = ((20, 15, 10), (90, 60, 30), (200, 170, 90), (130, 40, 20), (160, 160, 160))


@dataclass(frozen=True)
class Appearance:
    """What one identity looks like; colours are RGB."""

    pid: int
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    top: tuple[int, int, int]
    top_pattern: str
    pattern_color: tuple[int, int, int]
    bottom: tuple[int, int, int]
    shoes: tuple[int, int, int]
    height: float  # relative body height, ~0.9..1.05
    build: float  # relative body width, ~0.85..1.15
    bag: tuple[int, int, int] | None


def _color(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated or neutral clothing colour, sampled in HSV so identities stay distinguishable."""
    if rng.random() < 0.25:  # greys, black, white
        v = int(rng.integers(20, 236))
        return (v, v, v)
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(120, 256), rng.integers(70, 256)]]])
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return (int(r), int(g), int(b))


def contrasting(color: tuple[int, int, int], against: tuple[int, int, int]) -> tuple[int, int, int]:
    """``color``, or when it is closer than ``MIN_PATTERN_CONTRAST`` to ``against``, ``against`` made much
    lighter (dark colours) or darker (light ones), keeping its hue."""
    if float(np.linalg.norm(np.subtract(color, against, dtype=np.float32))) >= MIN_PATTERN_CONTRAST:
        return color
    h, s, v = (int(x) for x in cv2.cvtColor(np.uint8([[against]]), cv2.COLOR_RGB2HSV)[0, 0])
    v = v + 120 if v < 128 else v - 120
    r, g, b = cv2.cvtColor(np.uint8([[[h, s, v]]]), cv2.COLOR_HSV2RGB)[0, 0]
    return (int(r), int(g), int(b))


def appearance(pid: int, seed: int = 0) -> Appearance:
    """The appearance of identity ``pid`` in world ``seed`` (the same inputs give the same person)."""
    rng = np.random.default_rng([seed, pid])
    app = Appearance(
        pid=pid,
        skin=_SKIN[int(rng.integers(len(_SKIN)))],
        hair=_HAIR[int(rng.integers(len(_HAIR)))],
        top=_color(rng),
        top_pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
        pattern_color=_color(rng),
        bottom=_color(rng),
        shoes=_color(rng),
        height=float(rng.uniform(0.9, 1.05)),
        build=float(rng.uniform(0.85, 1.15)),
        bag=_color(rng) if rng.random() < 0.3 else None,
    )
    app = replace(app, pattern_color=contrasting(app.pattern_color, app.top))
    if pid % 4 == 3 and pid > 0:  # a near twin of pid - 1: same everything but the pattern
        twin = appearance(pid - 1, seed)
        pattern = PATTERNS[(PATTERNS.index(twin.top_pattern) + 1 + pid % 3) % len(PATTERNS)]
        app = replace(twin, pid=pid, top_pattern=pattern)
    return app


def _pattern_layer(h: int, w: int, app: Appearance, scale: float) -> np.ndarray:
    layer = np.empty((h, w, 3), np.uint8)
    layer[:] = app.top
    step = max(3, round(10 * scale))
    if app.top_pattern == "stripes":
        for y in range(0, h, step):
            layer[y : y + max(1, step // 2)] = app.pattern_color
    elif app.top_pattern == "checks":
        yy, xx = np.mgrid[0:h, 0:w]
        layer[((yy // step) + (xx // step)) % 2 == 1] = app.pattern_color
    elif app.top_pattern == "dots":
        for y in range(step // 2, h, step):
            for x in range(step // 2 + (y // step % 2) * step // 2, w, step):
                cv2.circle(layer, (x, y), max(1, step // 4), app.pattern_color, -1)
    return layer


def render_person(app: Appearance, phase: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``app`` mid-stride (``phase`` in radians: the walk cycle) filling a ``height`` x ``width`` box.

    Returns ``(image uint8[H,W,3] RGB, mask uint8[H,W])``; the mask is 255 on the person.
    """
    img = np.zeros((height, width, 3), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    body_h = 0.94 * height * app.height / 1.05
    top = height - body_h - 0.02 * height
    cx = width / 2
    s = body_h / 240.0  # drawing unit: a 240-pixel-tall person
    half_w = 22 * s * app.build
    swing = math.sin(phase)

    def pt(x: float, y: float) -> tuple[int, int]:
        return (round(x), round(y))

    def limb(x0, y0, length, angle, thickness, color, end_color=None):
        x1, y1 = x0 + length * math.sin(angle), y0 + length * math.cos(angle)
        for target, value in ((img, color), (mask, 255)):
            cv2.line(target, pt(x0, y0), pt(x1, y1), value, max(1, int(thickness)), cv2.LINE_AA)
        if end_color is not None:
            for target, value in ((img, end_color), (mask, 255)):
                cv2.circle(target, pt(x1, y1), max(1, int(thickness * 0.55)), value, -1, cv2.LINE_AA)

    hip_y, shoulder_y = top + 120 * s, top + 42 * s
    # back leg and arm first, so the front ones overlap them
    limb(cx - 7 * s * app.build, hip_y, 112 * s, 0.45 * swing, 15 * s, app.bottom, app.shoes)
    limb(cx - half_w + 3 * s, shoulder_y + 4 * s, 72 * s, -0.5 * swing, 10 * s, app.top, app.skin)
    limb(cx + 7 * s * app.build, hip_y, 112 * s, -0.45 * swing, 15 * s, app.bottom, app.shoes)
    torso = np.array(
        [
            pt(cx - half_w, shoulder_y),
            pt(cx + half_w, shoulder_y),
            pt(cx + half_w * 0.85, hip_y + 6 * s),
            pt(cx - half_w * 0.85, hip_y + 6 * s),
        ],
        np.int32,
    )
    torso_mask = np.zeros_like(mask)
    cv2.fillPoly(torso_mask, [torso], 255)
    img[torso_mask > 0] = _pattern_layer(height, width, app, s)[torso_mask > 0]
    mask |= torso_mask
    if app.bag is not None:
        x0 = cx + half_w - 2 * s
        for target, value in ((img, app.bag), (mask, 255)):
            cv2.rectangle(target, pt(x0, hip_y - 30 * s), pt(x0 + 16 * s, hip_y + 8 * s), value, -1)
    limb(cx + half_w - 3 * s, shoulder_y + 4 * s, 72 * s, 0.5 * swing, 10 * s, app.top, app.skin)
    head_c, head_r = pt(cx, top + 20 * s), max(2, int(19 * s))
    for target, value in ((img, app.skin), (mask, 255)):
        cv2.circle(target, head_c, head_r, value, -1, cv2.LINE_AA)
    cv2.ellipse(img, head_c, (head_r, int(head_r * 0.75)), 0, 180, 360, app.hair, -1, cv2.LINE_AA)
    return img, mask
