"""Camera looks: background, colour cast, brightness, blur, noise and occlusion, applied to crops."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CameraStyle:
    """How one camera sees the world: per-channel gain (colour cast), brightness, blur and noise."""

    camid: int
    gain: tuple[float, float, float]
    brightness: float  # added to pixel values
    blur: float  # Gaussian sigma in pixels at 256-pixel height
    noise: float  # Gaussian noise sigma
    background: tuple[int, int, int]  # base colour of the scene behind people


def camera_style(camid: int, seed: int = 0) -> CameraStyle:
    rng = np.random.default_rng([seed, 1000 + camid])
    return CameraStyle(
        camid=camid,
        gain=tuple(float(g) for g in rng.uniform(0.8, 1.2, 3)),
        brightness=float(rng.uniform(-30, 30)),
        blur=float(rng.uniform(0.0, 1.6)),
        noise=float(rng.uniform(2, 9)),
        background=tuple(int(c) for c in rng.integers(60, 200, 3)),
    )


def background(style: CameraStyle, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A textured backdrop: the camera's base colour with a vertical gradient and blotches."""
    base = np.array(style.background, np.float32)
    ramp = np.linspace(-25, 25, height, dtype=np.float32)[:, None, None]
    img = (
        base
        + ramp
        + rng.normal(0, 6, (height // 8 + 1, width // 8 + 1, 3))
        .astype(np.float32)
        .repeat(8, 0)
        .repeat(8, 1)[:height, :width]
    )
    return np.clip(img, 0, 255).astype(np.uint8)


def apply_style(img: np.ndarray, style: CameraStyle, rng: np.random.Generator) -> np.ndarray:
    """Colour cast, brightness, blur (scaled with the image height) and sensor noise."""
    out = img.astype(np.float32) * np.array(style.gain, np.float32) + style.brightness
    sigma = style.blur * img.shape[0] / 256
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    out += rng.normal(0, style.noise, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def occlude(img: np.ndarray, rng: np.random.Generator, color: tuple[int, int, int]) -> np.ndarray:
    """Hide a band at the bottom or one side (a car, a pillar, another person) of a crop."""
    h, w = img.shape[:2]
    out = img.copy()
    if rng.random() < 0.5:
        out[int(h * rng.uniform(0.55, 0.8)) :] = color
    else:
        cut = int(w * rng.uniform(0.25, 0.45))
        if rng.random() < 0.5:
            out[:, :cut] = color
        else:
            out[:, w - cut :] = color
    return out
