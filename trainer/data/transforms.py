"""Augmentations that treat a clip as one object: the same flip, crop and colour change for every frame,
and per-frame random erasing that records which frames were erased (the attention loss needs that)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augment:
    """Training augmentation of the bag of tricks, applied consistently across a clip's frames."""

    flip: float = 0.5  # probability of a horizontal flip
    pad: int = 10  # zero padding before the random crop, pixels
    erase: float = 0.5  # probability that a frame is randomly erased (Zhong et al. 2020)
    erase_area: tuple[float, float] = (0.02, 0.4)
    erase_ratio: float = 0.3  # aspect ratios in [r, 1/r]
    color: float = 0.0  # probability that a clip's colours are jittered (another camera's white balance)
    color_gain: float = 0.2  # per-channel gain in [1 - g, 1 + g]
    color_shift: float = 25.0  # brightness offset in [-s, s], pixel values
    erase_fill: str = "random"  # "random" pixels (Zhong et al.) or "mean": MEAN_FILL, the AAAI-2020 code's


# The AAAI-2020 code erases after normalisation and writes the ImageNet mean (0.485, 0.456, 0.406) into the
# normalised tensor; these RGB pixel values normalise to exactly that: 255 * (m + m * s), for a model with
# ImageNet normalisation and RGB input (every ResNet / OSNet / MobileNet architecture here).
MEAN_FILL = np.array(
    [round(255 * (m + m * s)) for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), strict=True)],
    dtype=np.uint8,
)


def jitter_colors(frames: np.ndarray, gain: np.ndarray, shift: float) -> np.ndarray:
    """``uint8[T,H,W,3]`` with each channel scaled by ``gain[c]`` and ``shift`` added, clipped to 0..255."""
    out = frames.astype(np.float32) * np.asarray(gain, np.float32) + np.float32(shift)
    return np.clip(out, 0, 255).astype(np.uint8)


def resize_clip(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """``uint8[T,h,w,3]`` -> ``uint8[T,height,width,3]`` (bilinear)."""
    if frames.shape[1:3] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames])


def augment_clip(frames: np.ndarray, aug: Augment, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Flip, pad-and-crop and colour-jitter the whole clip alike, then erase a random rectangle in some frames.

    Returns the new ``uint8[T,H,W,3]`` clip and ``bool[T]``: which frames were erased. Erased pixels
    get random values, as in random erasing's default, or ``MEAN_FILL`` (``erase_fill="mean"``).
    """
    t, h, w, _ = frames.shape
    out = frames[:, :, ::-1] if rng.random() < aug.flip else frames
    if aug.pad:
        padded = np.pad(out, ((0, 0), (aug.pad, aug.pad), (aug.pad, aug.pad), (0, 0)))
        y, x = rng.integers(0, 2 * aug.pad + 1, size=2)
        out = padded[:, y : y + h, x : x + w]
    out = np.ascontiguousarray(out)
    if aug.color and rng.random() < aug.color:
        gain = rng.uniform(1 - aug.color_gain, 1 + aug.color_gain, size=3)
        out = jitter_colors(out, gain, rng.uniform(-aug.color_shift, aug.color_shift))
    erased = np.zeros(t, dtype=bool)
    for i in range(t):
        if rng.random() >= aug.erase:
            continue
        for _ in range(20):  # find a rectangle that fits, as random erasing does
            area = rng.uniform(*aug.erase_area) * h * w
            ratio = math.exp(rng.uniform(math.log(aug.erase_ratio), math.log(1 / aug.erase_ratio)))
            eh, ew = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
            if 0 < eh < h and 0 < ew < w:
                y, x = int(rng.integers(0, h - eh)), int(rng.integers(0, w - ew))
                out[i, y : y + eh, x : x + ew] = (
                    MEAN_FILL if aug.erase_fill == "mean" else rng.integers(0, 256, size=(eh, ew, 3), dtype=np.uint8)
                )
                erased[i] = True
                break
    return out, erased
